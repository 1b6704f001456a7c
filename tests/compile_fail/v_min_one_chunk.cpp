// expect: exactly two chunks per rank
// V-Min with one chunk per rank is not a V: the parameter check's message must stop the build.
#include <pipesched/schedules/v_shape.hpp>

using S = pipesched::v_min<pipesched::stages<4>, pipesched::microbatches<8>, pipesched::chunks<1>>;
static_assert(S::valid);

int main() { return 0; }
