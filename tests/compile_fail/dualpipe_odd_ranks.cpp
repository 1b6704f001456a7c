// expect: dualpipe needs an even number of ranks
#include <pipesched/schedules/dualpipe.hpp>
static_assert(pipesched::dualpipe<pipesched::stages<3>, pipesched::microbatches<8>>::valid);
