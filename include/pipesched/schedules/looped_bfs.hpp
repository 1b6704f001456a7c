// pipesched: looped breadth-first (PyTorch's looped BFS).
#pragma once

#include "pipesched/pipeline/schedule.hpp"

namespace pipesched {

/// Looped BFS under loop placement (chunk k of rank r is stage k*p + r), v chunks per rank
/// (default 2). Rank r runs, for each of its stages in ascending order, the forwards of every
/// micro-batch 0..m-1; then, for each of its stages in descending order, the fused backwards
/// of every micro-batch in descending order (reference: schedules.md, "Looped BFS"; the rule
/// of PyTorch's ScheduleLoopedBFS). The order depends on (p, m, v) only. No constraint on m.
///
/// Memory: every forward precedes every backward on a rank, so all m v chunk-activations are
/// live at once: m units on every rank (memory_bound_chunks = m v).
///
/// Time (c = 0): (v max(m, p) + min(m, p) - 1)(F+B+W) for per-chunk costs, i.e.
/// (v m + p - 1)(F+B+W) for m >= p (as interleaved 1F1B, at m units of memory) and
/// (v p + m - 1)(F+B+W) for m < p; v = 1 is GPipe draining in reverse order, (m+p-1)(F+B+W).
/// Closed form, lower bound: rank p-1 starts no earlier than (p-1)F, runs v m (F+B+W) of
/// passes, and after its last pass (the backward of stage p-1, micro-batch 0) the backwards
/// of stages p-2..0 of that micro-batch remain, one after another: (p-1)(B+W) more; so
/// (v m + p - 1)(F+B+W) at least. Any m: micro-batch 0's forwards through all v p stages,
/// then the last stage's other m-1 forwards and its m backwards (all on rank p-1, in list
/// order), then micro-batch 0's backwards through the other v p - 1 stages form one chain:
/// (v p + m - 1)(F+B+W) at least. That the order reaches the larger of the two bounds is
/// what tests/cpu/schedules_looped_bfs.cpp checks over a sweep of p, m, v and costs.
struct looped_bfs_family {
  static constexpr const char* name = "looped-bfs";
  static constexpr diagnostic check(params const& pr) { return check_common(pr); }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    int const p = pr.p, m = pr.m, v = pr.v > 0 ? pr.v : 2;
    table t = make_table(p, m, v, placement::loop);
    for (int r = 0; r < p; ++r) {
      t.lists[static_cast<std::size_t>(r)].reserve(2 * static_cast<std::size_t>(v) * static_cast<std::size_t>(m));
      for (int k = 0; k < v; ++k)
        for (int j = 0; j < m; ++j) push(t, op::forward, stage_of(placement::loop, p, r, k), j);
      for (int k = v - 1; k >= 0; --k)
        for (int j = m - 1; j >= 0; --j) push(t, op::backward, stage_of(placement::loop, p, r, k), j);
    }
    t.memory_bound_chunks = v * m;
    return t;
  }
};

/// Looped BFS as a type: `looped_bfs<ranks<4>, microbatches<8>, chunks<2>>`.
template <class... Ps> using looped_bfs = schedule<looped_bfs_family, Ps...>;

} // namespace pipesched
