// pipesched: 1F1B (PipeDream-flush).
#pragma once

#include "pipesched/pipeline/schedule.hpp"

namespace pipesched {

namespace detail {
/// The 1F1B order of rank r on a one-chunk pipeline: w = min(p-r-1, m) warm-up forwards,
/// m-w (forward, backward) pairs, then w backwards. `bwd` is B or I; with `weights`, each
/// I is followed by its W after `defer` further I's (ZB-H1 style) — defer < 0: no W at all.
constexpr void one_f_one_b_rank(table& t, int r, op bwd, int defer) {
  int const p = t.ranks, m = t.microbatches;
  int const w = (p - r - 1) < m ? (p - r - 1) : m;
  int next_w = 0; // next micro-batch whose W is pending
  int done_b = 0;
  auto backward = [&](int j) {
    push(t, bwd, r, j);
    ++done_b;
    if (defer >= 0)
      while (next_w < done_b - defer) push(t, op::backward_weight, r, next_w++);
  };
  for (int j = 0; j < w; ++j) push(t, op::forward, r, j);
  for (int i = 0; i < m - w; ++i) {
    push(t, op::forward, r, w + i);
    backward(i);
  }
  for (int i = m - w; i < m; ++i) backward(i);
  if (defer >= 0)
    while (next_w < m) push(t, op::backward_weight, r, next_w++);
}
} // namespace detail

/// 1F1B: warm-up forwards, one forward / one backward pairs, cool-down backwards.
/// Time (m+p-1)(F+B+W) with c = 0 for any costs; memory min(p-r, m) on rank r. Any m >= 1.
struct one_f_one_b_family {
  static constexpr const char* name = "1f1b";
  static constexpr diagnostic check(params const& pr) {
    if (auto d = check_common(pr)) return d;
    if (pr.v > 1) return {errc::needs_one_chunk};
    return {};
  }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    table t = make_table(pr.p, pr.m, 1, placement::loop);
    for (int r = 0; r < pr.p; ++r) detail::one_f_one_b_rank(t, r, op::backward, -1);
    t.memory_bound_chunks = pr.p < pr.m ? pr.p : pr.m;
    return t;
  }
};

template <class... Ps> using one_f_one_b = schedule<one_f_one_b_family, Ps...>;

} // namespace pipesched
