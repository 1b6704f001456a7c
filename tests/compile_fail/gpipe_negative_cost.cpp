// expect: costs<F,B,W,C> must be non-negative
#include <pipesched/schedules/gpipe.hpp>
static_assert(pipesched::gpipe<pipesched::stages<4>, pipesched::microbatches<8>, pipesched::costs<-1.0>>::valid);
