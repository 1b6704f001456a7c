// expect: holds one chunk per rank
// zb_h1 holds one chunk per rank: chunks<2> is refused.
#include "pipesched/schedules/zero_bubble.hpp"

using bad = pipesched::zb_h1<pipesched::stages<4>, pipesched::microbatches<8>, pipesched::chunks<2>>;
static_assert(bad::valid);
