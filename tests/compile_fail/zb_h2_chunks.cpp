// expect: holds one chunk per rank
// zb_h2 holds one chunk per rank: chunks<2> is refused.
#include "pipesched/schedules/zero_bubble.hpp"

using bad = pipesched::zb_h2<pipesched::stages<4>, pipesched::microbatches<8>, pipesched::chunks<2>>;
static_assert(bad::valid);
