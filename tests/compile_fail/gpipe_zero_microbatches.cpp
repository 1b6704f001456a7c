// expect: microbatches<M> must be at least 1
#include <pipesched/schedules/gpipe.hpp>
static_assert(pipesched::gpipe<pipesched::stages<4>, pipesched::microbatches<0>>::valid);
