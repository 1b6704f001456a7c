// pipesched: list-scheduling simulation of a table under a cost model.
#pragma once

#include "pipesched/analysis/cost.hpp"
#include "pipesched/core/graph.hpp"
#include "pipesched/core/table.hpp"

namespace pipesched {

struct op_time {
  double start = 0;
  double end = 0;
};

/// What a simulation reports. Memory is in the reference unit (the activations one
/// micro-batch leaves on one rank's whole slice of the model); `peak_chunks` counts
/// chunk-activations (1/v of the unit each on a rank holding v stages).
struct simulation {
  diagnostic error{};
  double makespan = 0;
  double max_rank_span = 0;
  double bubble_ratio = 0;
  vec<double> rank_start, rank_end, busy, idle;
  vec<int> peak_chunks;
  vec<double> peak_memory;
  vec<double> peak_bytes; ///< peak_memory times sim_costs::activation_bytes
  vec<vec<op_time>> times; ///< per rank, per list entry (transfers: zero length)
  /// Compute passes (rank, position) in an order that respects every dependency.
  vec<detail::op_ref> order;
  constexpr bool ok() const { return error.ok(); }
};

namespace detail {

/// Peak of the running chunk-activation count on each rank (F +1, B -1, W -1, I 0).
constexpr vec<int> peak_chunk_counts(table const& t) {
  vec<int> peaks(static_cast<std::size_t>(t.ranks), 0);
  for (int r = 0; r < t.ranks; ++r) {
    int cur = 0, peak = 0;
    for (action const& a : t.lists[static_cast<std::size_t>(r)]) {
      if (a.kind == op::forward) {
        if (t.forward_only) {
          peak = peak < 1 ? 1 : peak;
          continue;
        }
        ++cur;
      } else if (a.kind == op::backward || a.kind == op::backward_weight) {
        --cur;
      }
      peak = cur > peak ? cur : peak;
    }
    peaks[static_cast<std::size_t>(r)] = peak;
  }
  return peaks;
}

} // namespace detail

/// Runs every rank's compute passes in list order, each starting when its rank is free and
/// its inputs have arrived (dependency end + link time between the ranks). Transfers in a
/// lowered table take no time here. Reports cyclic_wait when the orders wait on each other.
constexpr simulation simulate(table const& t, sim_costs const& costs = {}) {
  simulation sim{};
  if (!t.ok()) {
    sim.error = t.error;
    return sim;
  }
  detail::op_index ix{};
  if (auto d = detail::build_index(t, ix)) {
    sim.error = d;
    return sim;
  }
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  sim.times.assign(p, {});
  for (std::size_t r = 0; r < p; ++r) sim.times[r].assign(t.lists[r].size(), op_time{-1.0, -1.0});
  vec<std::size_t> ptr(p, 0);
  vec<double> free_at(p, 0.0);
  std::size_t remaining = t.total_actions();
  sim.order.reserve(remaining);
  // Worklist of ranks to advance: a rank runs until its next pass waits on another rank;
  // finishing a pass wakes the ranks of the passes that consume its output.
  vec<int> work;
  work.reserve(p * 2);
  for (std::size_t r = p; r-- > 0;) work.push_back(static_cast<int>(r));
  vec<char> queued(p, 1);
  while (!work.empty()) {
    std::size_t const r = static_cast<std::size_t>(work.back());
    work.pop_back();
    queued[r] = 0;
    auto const& list = t.lists[r];
    auto& times = sim.times[r];
    while (ptr[r] < list.size()) {
      action const& a = list[ptr[r]];
      if (!is_compute(a.kind)) {
        times[ptr[r]] = op_time{free_at[r], free_at[r]};
        ++ptr[r];
        --remaining;
        continue;
      }
      auto dp = detail::dependencies(t, ix, a);
      double start = free_at[r];
      bool ready = true;
      for (int k = 0; k < dp.n; ++k) {
        double end = sim.times[static_cast<std::size_t>(dp.d[k].rank)][static_cast<std::size_t>(dp.d[k].pos)].end;
        if (end < 0) {
          ready = false;
          break;
        }
        double arrive = dp.d[k].rank == static_cast<int>(r) ? end : end + costs.link(dp.d[k].rank, static_cast<int>(r), t.ranks);
        start = arrive > start ? arrive : start;
      }
      if (!ready) break;
      double end = start + costs.duration(a.kind, a.stage);
      times[ptr[r]] = op_time{start, end};
      free_at[r] = end;
      sim.order.push_back(detail::op_ref{static_cast<int>(r), static_cast<int>(ptr[r])});
      ++ptr[r];
      --remaining;
      // wake the rank that consumes this pass's output
      int consumer = -1;
      if (a.kind == op::forward) consumer = t.next_stage(a.mb, a.stage);
      else if (makes_input_grad(a.kind)) consumer = t.prev_stage(a.mb, a.stage);
      if (consumer >= 0) {
        std::size_t q = static_cast<std::size_t>(t.rank_of(consumer));
        if (q != r && !queued[q]) {
          queued[q] = 1;
          work.push_back(static_cast<int>(q));
        }
      }
    }
  }
  if (remaining > 0) {
    for (std::size_t r = 0; r < p; ++r)
      if (ptr[r] < t.lists[r].size()) {
        action const& a = t.lists[r][ptr[r]];
        sim.error = diagnostic{errc::cyclic_wait, static_cast<int>(r), static_cast<int>(ptr[r]), a.stage, a.mb};
        return sim;
      }
  }
  sim.rank_start.assign(p, 0.0);
  sim.rank_end.assign(p, 0.0);
  sim.busy.assign(p, 0.0);
  sim.idle.assign(p, 0.0);
  double max_busy = 0;
  for (std::size_t r = 0; r < p; ++r) {
    bool first = true;
    for (std::size_t i = 0; i < t.lists[r].size(); ++i) {
      if (!is_compute(t.lists[r][i].kind)) continue;
      op_time const& tm = sim.times[r][i];
      if (first) {
        sim.rank_start[r] = tm.start;
        first = false;
      }
      sim.rank_end[r] = tm.end > sim.rank_end[r] ? tm.end : sim.rank_end[r];
      sim.busy[r] += tm.end - tm.start;
    }
    double span = sim.rank_end[r] - sim.rank_start[r];
    sim.idle[r] = span - sim.busy[r];
    sim.makespan = sim.rank_end[r] > sim.makespan ? sim.rank_end[r] : sim.makespan;
    sim.max_rank_span = span > sim.max_rank_span ? span : sim.max_rank_span;
    max_busy = sim.busy[r] > max_busy ? sim.busy[r] : max_busy;
  }
  sim.bubble_ratio = sim.max_rank_span > 0 ? 1.0 - max_busy / sim.max_rank_span : 0.0;
  sim.peak_chunks = detail::peak_chunk_counts(t);
  // one chunk-activation is 1/S of the layers; the unit is 1/p of them
  double const v = static_cast<double>(t.stages) / static_cast<double>(t.ranks);
  sim.peak_memory.assign(p, 0.0);
  sim.peak_bytes.assign(p, 0.0);
  for (std::size_t r = 0; r < p; ++r) {
    sim.peak_memory[r] = static_cast<double>(sim.peak_chunks[r]) / v;
    sim.peak_bytes[r] = sim.peak_memory[r] * costs.activation_bytes;
  }
  return sim;
}

} // namespace pipesched
