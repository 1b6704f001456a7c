// 00: a schedule is a type. Print the per-rank compute order of 1F1B on 4 ranks with 8
// micro-batches, and its simulated makespan (every pass costs 1 by default).
#include <cstdio>

#include <pipesched/pipesched.hpp>

int main() {
  using S = pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<8>>;
  pipesched::table const t = S::make(); // the same table the compiler checked

  std::printf("%s: p=%d ranks, m=%d micro-batches\n", S::name, S::ranks, S::microbatches);
  for (int r = 0; r < t.ranks; ++r) {
    std::printf("rank %d:", r);
    for (pipesched::action const& a : t.lists[static_cast<std::size_t>(r)]) {
      if (!pipesched::is_compute(a.kind)) continue; // skip the SEND/RECV the lowering added
      std::printf(" %s%d", pipesched::op_name(a.kind), static_cast<int>(a.mb));
    }
    std::printf("\n");
  }

  pipesched::simulation const sim = pipesched::simulate(t);
  if (!sim.ok()) {
    std::printf("simulation failed: %s\n", pipesched::to_string(sim.error).c_str());
    return 1;
  }
  std::printf("makespan %g, bubble %.1f%%\n", sim.makespan, 100.0 * sim.bubble_ratio);
  return sim.makespan == 33 ? 0 : 1;
}
