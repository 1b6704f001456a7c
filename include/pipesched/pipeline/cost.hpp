// pipesched: the cost model the simulator reads.
#pragma once

#include "pipesched/core/action.hpp"
#include "pipesched/core/params.hpp"
#include "pipesched/core/vec.hpp"

namespace pipesched {

/// Costs for a simulation: per-pass costs, optional per-stage overrides (uneven stages),
/// optional per-link latency and bandwidth matrices (p x p, row = sender) and the size of
/// one boundary tensor.
struct sim_costs {
  cost_model base{};
  vec<cost_model> per_stage;  ///< empty, or one entry per global stage
  vec<double> latency;        ///< empty, or p*p latencies
  vec<double> bandwidth;      ///< empty, or p*p bytes per time unit (0: infinite)
  double boundary_bytes = 0;          ///< bytes of one activation or gradient boundary
  double activation_bytes = 0;        ///< bytes one micro-batch leaves on one rank's slice
  /// simulate_lowered: a boundary slot is rewritten (a receive into it, a pass writing it)
  /// only after every read of its previous boundary has ended, the send included — what a
  /// GPU executor with fixed slots enforces. Off: slots are free.
  bool slot_reuse = false;

  constexpr sim_costs() = default;
  constexpr sim_costs(cost_model c) : base(c) {}

  constexpr cost_model const& of(int stage) const {
    return per_stage.empty() ? base : per_stage[static_cast<std::size_t>(stage)];
  }
  /// Duration of compute pass kind at stage.
  constexpr double duration(op kind, int stage) const {
    cost_model const& c = of(stage);
    switch (kind) {
    case op::forward: return c.f;
    case op::backward: return c.b + c.w;
    case op::backward_input: return c.b;
    case op::backward_weight: return c.w;
    default: return 0.0;
    }
  }
  /// Duration of an overlapped pair: forward `f` at stage sf with backward `k` (B or I) at
  /// stage sb. The pair saves (f + b + w) - fb of the forward's stage (nothing when fb is 0)
  /// off running the halves back to back, and never ends before its longer half would:
  /// with uniform costs a pair F + B costs fb, a pair F + I costs fb - w.
  constexpr double pair_duration(int sf, op k, int sb) const {
    double const df = duration(op::forward, sf), db = duration(k, sb);
    cost_model const& c = of(sf);
    double d = df + db;
    if (c.fb > 0) d -= c.f + c.b + c.w - c.fb;
    double const longer = df > db ? df : db;
    return d > longer ? d : longer;
  }
  /// Time for a boundary to go from rank a to rank b (0 on the same rank).
  constexpr double link(int a, int b, int p) const {
    if (a == b) return 0.0;
    std::size_t k = static_cast<std::size_t>(a) * static_cast<std::size_t>(p) + static_cast<std::size_t>(b);
    double t = latency.empty() ? base.c : latency[k];
    if (!bandwidth.empty() && bandwidth[k] > 0) t += boundary_bytes / bandwidth[k];
    return t;
  }
  /// Whether these costs fit a table of `stages` stages on `ranks` ranks: per_stage empty or
  /// one entry per stage, latency and bandwidth empty or ranks x ranks (what duration() and
  /// link() index).
  constexpr bool fits(int stages, int ranks) const {
    std::size_t const links = static_cast<std::size_t>(ranks) * static_cast<std::size_t>(ranks);
    return (per_stage.empty() || per_stage.size() == static_cast<std::size_t>(stages)) &&
           (latency.empty() || latency.size() == links) && (bandwidth.empty() || bandwidth.size() == links);
  }
};

} // namespace pipesched
