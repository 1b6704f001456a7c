// pipesched: forward-only (inference) schedules.
#pragma once

#include "pipesched/pipeline/schedule.hpp"

namespace pipesched {

/// Inference: forwards only. With v = 1 every rank runs micro-batches 0..m-1 in order;
/// with v > 1 (loop placement) the forwards go in groups of g = min(p, m) micro-batches,
/// each group through chunk 0, then chunk 1, ..., as in interleaved 1F1B.
/// Time (m+p-1)F for v = 1.
struct forward_only_family {
  static constexpr const char* name = "forward-only";
  static constexpr diagnostic check(params const& pr) {
    if (auto d = check_common(pr)) return d;
    if (pr.g < 0 || pr.g > pr.m) return {errc::group_size_out_of_range};
    return {};
  }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    int const v = pr.v < 1 ? 1 : pr.v;
    int const g = pr.g > 0 ? pr.g : (pr.p < pr.m ? pr.p : pr.m);
    table t = make_table(pr.p, pr.m, v, placement::loop);
    t.forward_only = true;
    for (int r = 0; r < pr.p; ++r)
      for (int first = 0; first < pr.m; first += g)
        for (int k = 0; k < v; ++k)
          for (int j = first; j < first + g && j < pr.m; ++j) push(t, op::forward, stage_of(placement::loop, pr.p, r, k), j);
    t.memory_bound_chunks = 1;
    return t;
  }
};

template <class... Ps> using forward_only = schedule<forward_only_family, Ps...>;

} // namespace pipesched
