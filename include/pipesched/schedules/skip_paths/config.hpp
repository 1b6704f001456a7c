// pipesched: skip paths — what a skip schedule is made from, and its costs.
#pragma once

#include <cstdint>

#include "pipesched/core/diagnostic.hpp"
#include "pipesched/core/params.hpp"
#include "pipesched/pipeline/cost.hpp"
#include "pipesched/schedules/skip_paths/rules.hpp"

namespace pipesched {

/// How paths are assigned.
enum class path_method : std::uint8_t {
  rotation,   ///< micro-batch j skips {first + (j*k + t) mod n : t < k}, kept stages ascending
  cost_aware, ///< per micro-batch the cheapest valid path under the cost model, quotas kept
};

/// What a skip schedule is made from.
struct skip_config {
  int stages = 0;       ///< S model stages, one per rank
  int keep = 0;         ///< K stages each micro-batch visits (stage 0, and S-1 in layout last, counted)
  int microbatches = 0; ///< m
  int memory = 0;       ///< at most this many micro-batches in flight per rank; 0: m
  path_layout layout = path_layout::last;
  path_method method = path_method::cost_aware;
  /// Per-pass costs (base, or per_stage with S entries) and links (S x S latency and
  /// bandwidth, row = sender). Fused backwards: a backward costs b + w.
  sim_costs costs{};
  /// round_trip: the head's passes cost this fraction of stage 0's (SkipPipe: loss = F/4).
  double head_fraction = 0.25;
  /// cost_aware: rounds of local search after the candidates (0: none). Each round tries
  /// every adjacent swap and every exchange of one stage between neighbouring micro-batches
  /// and keeps those that shorten the simulated iteration; meant for run time.
  int search_rounds = 0;
  /// Rounds of local search on the per-rank orders of the final table (0: none): a move
  /// swaps two adjacent steps of different micro-batches on one rank and stays when the cap
  /// still holds on that rank, nothing waits in a cycle and the simulated iteration gets
  /// shorter (or as long, with the passes ending earlier in sum); then pseudo-random kicks,
  /// each followed by the same descent; a bounded number of simulations. Meant for run time.
  int order_search_rounds = 0;
};

/// Checks a configuration; a bad_path diagnostic says what is wrong.
constexpr diagnostic check_config(skip_config const& c) {
  if (c.stages < 1) return {errc::zero_ranks};
  if (c.microbatches < 1) return {errc::zero_microbatches};
  if (c.stages > max_ranks - 1 || c.microbatches > max_index) return {errc::too_large};
  int const fixed = c.layout == path_layout::last && c.stages > 1 ? 2 : 1;
  if (c.keep < fixed || c.keep > c.stages)
    return {errc::bad_path,
            -1,
            -1,
            -1,
            -1,
            "keep K must be between 1 (2 in layout last: stage 0 and the head's stage) and S"};
  if (c.memory < 0) return {errc::bad_path, -1, -1, -1, -1, "the memory cap must be at least 1 (0: no cap)"};
  std::size_t const S = static_cast<std::size_t>(c.stages);
  if (!c.costs.per_stage.empty() && c.costs.per_stage.size() != S)
    return {errc::bad_path, -1, -1, -1, -1, "per-stage costs need one entry per stage"};
  if ((!c.costs.latency.empty() && c.costs.latency.size() != S * S) ||
      (!c.costs.bandwidth.empty() && c.costs.bandwidth.size() != S * S))
    return {errc::bad_path, -1, -1, -1, -1, "link matrices need S x S entries"};
  cost_model const& b = c.costs.base;
  if (b.f < 0 || b.b < 0 || b.w < 0 || b.c < 0 || b.f + b.b + b.w <= 0) return {errc::negative_cost};
  return {};
}

/// The costs simulate() needs for a skip table: the configuration's, with the head stage's
/// entry added in layout round_trip.
constexpr sim_costs skip_sim_costs(skip_config const& c) {
  sim_costs sc = c.costs;
  if (c.layout != path_layout::round_trip) return sc;
  if (sc.per_stage.empty()) sc.per_stage.assign(static_cast<std::size_t>(c.stages), sc.base);
  cost_model head = sc.per_stage[0];
  head.f *= c.head_fraction;
  head.b *= c.head_fraction;
  head.w *= c.head_fraction;
  sc.per_stage.push_back(head);
  return sc;
}

/// The same configuration with every stage kept in order: the full pipeline to compare against.
constexpr skip_config full_pipeline(skip_config c) {
  c.keep = c.stages;
  c.method = path_method::rotation; // every path 0, 1, ..., S-1: no reordering either
  c.search_rounds = 0; // (order_search_rounds stays: the same order search for both)
  return c;
}

namespace detail {

/// The highest stage a path may skip: S-2 in layout last (S-1 holds the head), S-1 in
/// round_trip. The skippable stages are 1..last_skippable_stage.
constexpr int last_skippable_stage(skip_config const& c) {
  return c.layout == path_layout::last ? c.stages - 2 : c.stages - 1;
}

/// How many skippable stages each path keeps: K minus stage 0 (and minus the head's stage
/// S-1 in layout last).
constexpr int kept_skippable_count(skip_config const& c) {
  return c.keep - (c.layout == path_layout::last && c.stages > 1 ? 2 : 1);
}

/// Total work of one visit to `stage`: its forward and its (fused) backward.
constexpr double visit_work(sim_costs const& costs, int stage) {
  cost_model const& x = costs.of(stage);
  return x.f + x.b + x.w;
}

} // namespace detail

} // namespace pipesched
