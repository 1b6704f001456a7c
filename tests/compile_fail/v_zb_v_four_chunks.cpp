// expect: exactly two chunks per rank
// ZB-V places two chunks per rank in a V: chunks<4> must stop the build with the parameter
// check's message.
#include <pipesched/schedules/zb_v.hpp>

using S = pipesched::zb_v<pipesched::stages<4>, pipesched::microbatches<8>, pipesched::chunks<4>>;
static_assert(S::valid);

int main() { return 0; }
