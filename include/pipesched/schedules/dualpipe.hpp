// pipesched: DualPipe (DeepSeek-V3), bidirectional — half of the micro-batches enter from
// each end of the pipeline, overlapped forward-backward pairs.
#pragma once

#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/schedules/dualpipe_v.hpp"

namespace pipesched {

/// DualPipe: p even, m even. The model's p stages sit twice: direction A puts model stage i
/// on rank i (table stage i), direction B on rank p-1-i (table stage p+i, the mirror copy).
/// That is V placement (rank r holds table stages r and 2p-1-r), with routes: micro-batches
/// 0..m/2-1 take stages 0..p-1, micro-batches m/2..m-1 take stages p..2p-1 (table::paths).
/// Rank r runs DualPipeV's eight phases with p/2 ranks, m/2 micro-batches per chunk and its
/// half rank h = min(r, p-1-r) (DeepSeek's `step`): its chunk 0 is the direction that
/// enters on its side (A for r < p/2, B otherwise), its chunk 1 the other; the middle ranks
/// (h = p/2-1) run their first (F, B) of phase 4 apart. Each rank holds two model stages'
/// parameters (2x 1F1B's; the copies' gradients are summed by the user) and at most p + 1
/// stage-activations (DeepSeek's README: p + 1), the bound verify() enforces
/// (memory_bound_chunks = p + 1; note simulate's peak_memory counts a chunk as 1/2 of a rank's
/// slice, while here each chunk is a whole model stage: p + 1 stage-activations read as
/// (p + 1)/2). Any even m >= 2 (DeepSeek requires m >= 2p).
struct dualpipe_family {
  static constexpr const char* name = "dualpipe";
  static constexpr diagnostic check(params const& pr) {
    if (auto d = check_common(pr)) return d;
    if (pr.v != 0 && pr.v != 2) return {errc::needs_two_chunks};
    if (pr.p % 2 != 0 || pr.m % 2 != 0) return {errc::needs_even_split};
    return {};
  }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    int const p = pr.p, m = pr.m;
    table t = make_table(p, m, 2, placement::v_shape);
    t.split_backward = true;
    t.paths.resize(static_cast<std::size_t>(m));
    for (int j = 0; j < m; ++j) {
      auto& path = t.paths[static_cast<std::size_t>(j)];
      path.reserve(static_cast<std::size_t>(p));
      int const first = j < m / 2 ? 0 : p;
      for (int i = 0; i < p; ++i) path.push_back(first + i);
    }
    for (int r = 0; r < p; ++r) {
      int const h = r < p - 1 - r ? r : p - 1 - r;
      bool const second_half = r >= p / 2;
      // chunk 0 of DeepSeek's rank: the direction entering on its side
      int const a = r, b = 2 * p - 1 - r; // direction A's and B's stage on this rank
      int const s0 = second_half ? b : a, s1 = second_half ? a : b;
      int const base0 = second_half ? m / 2 : 0, base1 = second_half ? 0 : m / 2;
      detail::dualpipe_phases(t, r, p / 2, h, m / 2, s0, s1, base0, base1);
    }
    t.memory_bound_chunks = p + 1;
    return t;
  }
};

template <class... Ps> using dualpipe = schedule<dualpipe_family, Ps...>;

} // namespace pipesched
