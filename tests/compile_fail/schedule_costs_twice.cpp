// expect: a schedule parameter is given twice
#include <pipesched/schedules/zero_bubble.hpp>
static_assert(pipesched::zb_h1<pipesched::ranks<4>, pipesched::microbatches<8>, pipesched::costs<1.0, 2.0, 1.0>,
                               pipesched::costs<1.0, 1.0, 1.0>>::valid);
