// expect: exactly two chunks per rank
// V placement holds two chunks per rank: asking V-Half for three must stop the build with the
// parameter check's message.
#include <pipesched/schedules/v_shape.hpp>

using S = pipesched::v_half<pipesched::stages<4>, pipesched::microbatches<8>, pipesched::chunks<3>>;
static_assert(S::valid);

int main() { return 0; }
