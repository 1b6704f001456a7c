// Consumer that vendors pipesched with add_subdirectory: builds a schedule type and
// simulates it.
#include <pipesched/pipesched.hpp>

#include <cstdio>

int main() {
  using S = pipesched::one_f_one_b<pipesched::stages<4>, pipesched::microbatches<8>>;
  static_assert(S::valid);
  auto const sim = pipesched::simulate(S::make());
  std::printf("%s p=%d m=%d makespan=%g\n", S::name, S::ranks, S::microbatches, sim.makespan);
  bool const ok = sim.ok() && sim.makespan == 33 && S::lowered.ranks == 4;
  std::puts(ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
