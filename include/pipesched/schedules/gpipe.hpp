// pipesched: GPipe (fill-drain).
#pragma once

#include "pipesched/pipeline/schedule.hpp"

namespace pipesched {

/// GPipe: every rank runs the forwards of micro-batches 0..m-1, then their backwards
/// (fused B) in the same order. Time (m+p-1)(F+B+W) with c = 0; memory m on every rank.
struct gpipe_family {
  static constexpr const char* name = "gpipe";
  static constexpr diagnostic check(params const& pr) {
    if (auto d = check_common(pr)) return d;
    if (pr.v > 1) return {errc::needs_one_chunk};
    return {};
  }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    table t = make_table(pr.p, pr.m, 1, placement::loop);
    for (int s = 0; s < pr.p; ++s) {
      for (int j = 0; j < pr.m; ++j) push(t, op::forward, s, j);
      for (int j = 0; j < pr.m; ++j) push(t, op::backward, s, j);
    }
    t.memory_bound_chunks = pr.m;
    return t;
  }
};

template <class... Ps> using gpipe = schedule<gpipe_family, Ps...>;

} // namespace pipesched
