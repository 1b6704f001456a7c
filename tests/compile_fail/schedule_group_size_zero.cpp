// expect: group_size<0> is not a group size: leave group_size<G> out
#include <pipesched/schedules/interleaved.hpp>
static_assert(pipesched::interleaved_1f1b<pipesched::ranks<4>, pipesched::microbatches<8>, pipesched::group_size<0>>::valid);
