// expect: chunks<0> is not a chunk count: leave chunks<V> out
// Zero means "the default" only in run-time params; as a type it is refused.
#include <pipesched/schedules/interleaved.hpp>
static_assert(pipesched::interleaved_1f1b<pipesched::ranks<4>, pipesched::microbatches<8>, pipesched::chunks<0>>::valid);
