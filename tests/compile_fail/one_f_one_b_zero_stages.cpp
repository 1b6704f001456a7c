// expect: ranks<P> must be at least 1
// A pipeline needs at least one rank: instantiating a schedule with stages<0> must stop
// the build with the parameter check's message.
#include <pipesched/schedules/one_f_one_b.hpp>

using S = pipesched::one_f_one_b<pipesched::stages<0>, pipesched::microbatches<4>>;
static_assert(S::valid);

int main() { return 0; }
