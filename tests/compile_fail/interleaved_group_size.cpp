// expect: group_size<G> must be between
// interleaved_1f1b refuses a group size larger than the number of micro-batches.
#include "pipesched/schedules/interleaved.hpp"

using bad = pipesched::interleaved_1f1b<pipesched::stages<4>, pipesched::microbatches<8>, pipesched::group_size<9>>;
static_assert(bad::valid);
