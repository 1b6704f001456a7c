// pipesched: list-scheduling simulation of a table under a cost model.
#pragma once

#include <vector>

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
  std::vector<double> rank_start, rank_end, busy, idle;
  std::vector<int> peak_chunks;
  std::vector<double> peak_memory;
  std::vector<double> peak_bytes; ///< peak_memory times sim_costs::activation_bytes
  std::vector<std::vector<op_time>> times; ///< per rank, per list entry (transfers: zero length)
  /// Compute passes (rank, position) in an order that respects every dependency.
  std::vector<detail::op_ref> order;
  constexpr bool ok() const { return error.ok(); }
};

namespace detail {

/// Peak of the running chunk-activation count on each rank (F +1, B -1, W -1, I 0).
constexpr std::vector<int> peak_chunk_counts(table const& t) {
  std::vector<int> peaks(static_cast<std::size_t>(t.ranks), 0);
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
  std::vector<std::vector<char>> done(p);
  for (std::size_t r = 0; r < p; ++r) {
    sim.times[r].assign(t.lists[r].size(), op_time{});
    done[r].assign(t.lists[r].size(), 0);
  }
  std::vector<std::size_t> ptr(p, 0);
  std::vector<double> free_at(p, 0.0);
  std::size_t remaining = t.total_actions();
  sim.order.reserve(remaining);
  while (remaining > 0) {
    bool progress = false;
    for (std::size_t r = 0; r < p; ++r) {
      auto const& list = t.lists[r];
      while (ptr[r] < list.size()) {
        action const& a = list[ptr[r]];
        if (!is_compute(a.kind)) {
          sim.times[r][ptr[r]] = op_time{free_at[r], free_at[r]};
          done[r][ptr[r]] = 1;
          ++ptr[r];
          --remaining;
          progress = true;
          continue;
        }
        auto dp = detail::dependencies(t, ix, a);
        double start = free_at[r];
        bool ready = true;
        for (int k = 0; k < dp.n; ++k) {
          auto d = dp.d[k];
          if (!done[static_cast<std::size_t>(d.rank)][static_cast<std::size_t>(d.pos)]) {
            ready = false;
            break;
          }
          double arrive = sim.times[static_cast<std::size_t>(d.rank)][static_cast<std::size_t>(d.pos)].end +
                          costs.link(d.rank, static_cast<int>(r), t.ranks);
          start = arrive > start ? arrive : start;
        }
        if (!ready) break;
        double end = start + costs.duration(a.kind, a.stage);
        sim.times[r][ptr[r]] = op_time{start, end};
        done[r][ptr[r]] = 1;
        free_at[r] = end;
        sim.order.push_back(detail::op_ref{static_cast<int>(r), static_cast<int>(ptr[r])});
        ++ptr[r];
        --remaining;
        progress = true;
      }
    }
    if (!progress) {
      for (std::size_t r = 0; r < p; ++r)
        if (ptr[r] < t.lists[r].size()) {
          action const& a = t.lists[r][ptr[r]];
          sim.error = diagnostic{errc::cyclic_wait, static_cast<int>(r), static_cast<int>(ptr[r]), a.stage, a.mb};
          return sim;
        }
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
