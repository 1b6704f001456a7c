// pipesched: run-time parameters of a schedule and its cost model.
#pragma once

#include "pipesched/core/diagnostic.hpp"

namespace pipesched {

/// Per-pass costs of one stage (one chunk when v > 1). `b` is the input-gradient pass;
/// a fused backward costs b + w. `c` is the latency of a transfer between ranks. `fb` is the
/// cost of an overlapped pair of a forward and a fused backward (0: none given, the halves
/// cost f + b + w back to back — no gain); see sim_costs::pair_duration.
struct cost_model {
  double f = 1.0;
  double b = 1.0;
  double w = 1.0;
  double c = 0.0;
  double fb = 0.0;
  constexpr double fused_backward() const { return b + w; }
  friend constexpr bool operator==(cost_model const&, cost_model const&) = default;
};

/// What a generator is given. Zero means "the schedule's default" for v and g.
struct params {
  int p = 0; ///< ranks
  int m = 0; ///< micro-batches
  int v = 0; ///< chunks per rank (0: the schedule's own, 1 or 2)
  int g = 0; ///< interleaved group size (0: min(p, m))
  cost_model cost{};
  /// Boundary slots per rank beyond the peak number of live boundaries: freed slots are
  /// reused in the order they were freed, so with extra slots a receive lands in a slot
  /// freed longer ago (double buffering) instead of waiting for the newest one's last reader.
  int extra_slots = 0;
  friend constexpr bool operator==(params const&, params const&) = default;
};

inline constexpr int max_ranks = 4096;
inline constexpr int max_index = 65535;

/// Checks shared by every generator.
constexpr diagnostic check_common(params const& pr) {
  if (pr.p < 1) return {errc::zero_ranks};
  if (pr.m < 1) return {errc::zero_microbatches};
  if (pr.v < 0) return {errc::zero_chunks};
  if (pr.extra_slots < 0 || pr.extra_slots > 64) return {errc::extra_slots_out_of_range};
  if (pr.p > max_ranks || pr.m > max_index || pr.p * (pr.v < 1 ? 1 : pr.v) > max_index) return {errc::too_large};
  if (pr.cost.f < 0 || pr.cost.b < 0 || pr.cost.w < 0 || pr.cost.c < 0 || pr.cost.fb < 0 || pr.cost.f + pr.cost.b + pr.cost.w <= 0)
    return {errc::negative_cost};
  return {};
}

} // namespace pipesched
