// pipesched: list-scheduling simulation of a table under a cost model.
#pragma once

#include "pipesched/pipeline/cost.hpp"
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

/// Fills the metrics of a simulation whose `times` are set: rank spans, busy and idle
/// time, makespan, bubble ratio and peak memory.
constexpr void finish_metrics(table const& t, simulation& sim, sim_costs const& costs) {
  std::size_t const p = static_cast<std::size_t>(t.ranks);
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
      // the second half of an overlapped pair shares the first half's interval
      bool const second = i > 0 && overlaps_next(t.lists[r][i - 1]) && makes_input_grad(t.lists[r][i].kind);
      if (!second) sim.busy[r] += tm.end - tm.start;
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
}

} // namespace detail

namespace detail {

/// A simulation's pass times in flat arrays: rank r's list entry i at off[r] + i.
struct flat_times {
  vec<std::size_t> off;
  vec<double> start, end;
};

/// Where simulate_times may resume instead of starting over: `base` holds the flat times
/// of a table that differs from the one simulated only in rank `rank`'s list from position
/// `from` on (the same passes there, in another order; every other list the same). With no
/// base it starts over. (An entry flagged overlap_next pairs with the one after it, so
/// positions before `from` that end in such entries are simulated again too.)
///
/// Why the kept times are exact (base simulated without a cycle): call changed the passes
/// of `rank` at positions >= from and every pass that waits on one of them, directly or
/// through others (its inputs, or the pass before it on its rank); no other pass can
/// change its times, since all it waits on is the same in both tables. Those positions hold
/// the same passes in both tables, and what waits on them is the same, so the changed
/// passes are the same in both; in base each starts no earlier than the pass at `from`
/// did, at T0. So every pass that started before T0 in base keeps its times: on each rank
/// the passes before the first one that started at T0 or later (on `rank`, every pass
/// before `from`) are kept; the rest are simulated as usual.
struct sim_resume {
  flat_times const* base = nullptr;
  std::size_t rank = 0, from = 0;
};

/// simulate() without the metrics: times, order and error only (what lowering needs).
/// `route`: neighbours_on_routes(t), made once by a caller that simulates tables of the
/// same routes many times (the order search of skip paths). With `resume` (sim_resume) it
/// simulates only from where the table changed, and `order` then holds only the passes it
/// simulated; with `flat` the times go there (flat_times) and `times` stays empty.
constexpr simulation simulate_times(table const& t, sim_costs const& costs, route_neighbours const& route,
                                    sim_resume const& resume = {}, flat_times* flat = nullptr) {
  simulation sim{};
  if (!t.ok()) {
    sim.error = t.error;
    return sim;
  }
  if (t.ranks < 1 || static_cast<int>(t.lists.size()) != t.ranks || t.microbatches < 1 || t.stages < 1 ||
      static_cast<int>(t.stage_rank.size()) != t.stages) {
    sim.error = diagnostic{errc::zero_ranks, -1, -1, -1, -1, "malformed table"};
    return sim;
  }
  if (!costs.fits(t.stages, t.ranks)) {
    sim.error = diagnostic{errc::cost_shape};
    return sim;
  }
  // The hot loops below use flat arrays and raw pointers: this function runs inside the
  // compiler for every schedule type, where each operation counts against a fixed budget.
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  std::size_t const m = static_cast<std::size_t>(t.microbatches);
  std::size_t const S = static_cast<std::size_t>(t.stages);
  vec<std::size_t> off(p + 1, 0);
  for (std::size_t r = 0; r < p; ++r) off[r + 1] = off[r] + t.lists[r].size();
  std::size_t const n = off[p];
  // global id of each compute pass: key = (stage*m + mb)*3 + {F, B|I, W}
  vec<int> id_of(S * m * 3, -1);
  int* const kid = id_of.data();
  for (std::size_t r = 0; r < p; ++r) {
    action const* l = t.lists[r].data();
    for (std::size_t i = 0, len = t.lists[r].size(); i < len; ++i) {
      action const& a = l[i];
      if (a.kind > op::backward_weight) continue; // transfers
      if (a.stage >= S || a.mb >= m || t.stage_rank[a.stage] != static_cast<int>(r)) {
        sim.error = diagnostic{a.stage >= S ? errc::stage_out_of_range
                                            : (a.mb >= m ? errc::microbatch_out_of_range : errc::wrong_rank),
                               static_cast<int>(r), static_cast<int>(i), a.stage, a.mb};
        return sim;
      }
      std::size_t const slot = a.kind == op::forward ? 0u : (a.kind == op::backward_weight ? 2u : 1u);
      std::size_t k = (static_cast<std::size_t>(a.stage) * m + a.mb) * 3 + slot;
      if (kid[k] >= 0) {
        sim.error = diagnostic{errc::duplicate_pass, static_cast<int>(r), static_cast<int>(i), a.stage, a.mb};
        return sim;
      }
      kid[k] = static_cast<int>(off[r] + i);
    }
  }
  vec<double> start_v(n, 0.0), end_v(n, -1.0);
  double* const st = start_v.data();
  double* const en = end_v.data();
  int const* const srank = t.stage_rank.data();
  bool const uniform_links = costs.latency.empty() && costs.bandwidth.empty();
  bool const uniform_costs = costs.per_stage.empty();
  cost_model const& base = costs.base;
  vec<std::size_t> ptr(p, 0);
  vec<double> free_at(p, 0.0);
  sim.order.resize(n);
  detail::op_ref* const order = sim.order.data();
  bool const straight = t.paths.empty();
  int const last_stage = t.stages - 1;
  // with routes: each pass's neighbours on its route, looked up (not searched) per pass
  if (!straight && (route.prev.size() != S * m || route.stages != t.stages || route.microbatches != t.microbatches)) {
    sim.error = diagnostic{errc::bad_path, -1, -1, -1, -1, "route neighbours of another table"};
    return sim;
  }
  int const* const prev_on_route = route.prev.data();
  int const* const next_on_route = route.next.data();
  std::size_t done = 0, ordered = 0;
  if (resume.base) {
    flat_times const& b = *resume.base;
    if (b.off.size() != p + 1 || b.off[p] != n || resume.rank >= p || resume.from >= t.lists[resume.rank].size()) {
      sim.error = diagnostic{errc::zero_ranks, -1, -1, -1, -1, "resumed from the times of another table"};
      return sim;
    }
    // an entry flagged to overlap the next pairs with whatever follows it: the pass before
    // `from` may have been paired in base, or be now, so it is simulated again
    action const* const changed = t.lists[resume.rank].data();
    std::size_t from = resume.from;
    while (from > 0 && overlaps_next(changed[from - 1])) --from;
    double const t0 = b.start[b.off[resume.rank] + from];
    for (std::size_t r = 0; r < p; ++r) {
      std::size_t const len = t.lists[r].size();
      if (b.off[r + 1] - b.off[r] != len) {
        sim.error = diagnostic{errc::zero_ranks, -1, -1, -1, -1, "resumed from the times of another table"};
        return sim;
      }
      std::size_t keep = 0;
      if (r == resume.rank)
        keep = from;
      else
        while (keep < len && b.start[off[r] + keep] < t0) ++keep;
      for (std::size_t i = 0; i < keep; ++i) {
        st[off[r] + i] = b.start[off[r] + i];
        en[off[r] + i] = b.end[off[r] + i];
      }
      ptr[r] = keep;
      free_at[r] = keep > 0 ? b.end[off[r] + keep - 1] : 0.0;
      done += keep;
    }
  }
  // Worklist of ranks to advance: a rank runs until its next pass waits on another rank;
  // finishing a pass wakes the rank that consumes its output.
  vec<int> work;
  work.reserve(p * 2);
  for (std::size_t r = p; r-- > 0;) work.push_back(static_cast<int>(r));
  vec<char> queued(p, 1);
  while (!work.empty()) {
    std::size_t const r = static_cast<std::size_t>(work.back());
    work.pop_back();
    queued[r] = 0;
    action const* const list = t.lists[r].data();
    std::size_t const len = t.lists[r].size();
    std::size_t i = ptr[r];
    double fr = free_at[r];
    while (i < len) {
      action const& a = list[i];
      std::size_t const g = off[r] + i;
      if (a.kind > op::backward_weight) { // transfers take no time here
        st[g] = fr;
        en[g] = fr;
        ++i;
        ++done;
        continue;
      }
      // an overlapped pair (a flagged F and the B or I after it) starts once both halves'
      // inputs are ready; both halves end together
      bool const pair = (a.flags & overlap_next) != 0 && i + 1 < len &&
                        (list[i + 1].kind == op::backward || list[i + 1].kind == op::backward_input);
      int const halves = pair ? 2 : 1;
      // what a pass waits for: F: F of the previous stage; B/I: B/I of the next stage
      // (or the own F for the loss) and the own F; W: its I. This is detail::dependencies()
      // (core/graph.hpp, used by simulate_lowered) written out without calls, for the
      // compilers' constexpr budgets; tests/cpu/analysis_simulate_lowered.cpp checks the
      // two simulators agree pass by pass.
      int dep[4] = {-1, -1, -1, -1};
      int dep_rank[4] = {0, 0, 0, 0};
      int nd = 0;
      int consumer[2] = {-1, -1};
      for (int h = 0; h < halves; ++h) {
        action const& x = list[i + static_cast<std::size_t>(h)];
        int const s = x.stage, j = x.mb;
        std::size_t const base_key = (static_cast<std::size_t>(s) * m + static_cast<std::size_t>(j)) * 3;
        if (x.kind == op::forward) {
          int prev = straight ? s - 1 : prev_on_route[static_cast<std::size_t>(s) * m + static_cast<std::size_t>(j)];
          if (prev >= 0) {
            dep_rank[nd] = srank[prev];
            dep[nd++] = kid[(static_cast<std::size_t>(prev) * m + static_cast<std::size_t>(j)) * 3];
          }
          consumer[h] = straight ? (s < last_stage ? s + 1 : -1)
                                 : next_on_route[static_cast<std::size_t>(s) * m + static_cast<std::size_t>(j)];
        } else if (x.kind == op::backward_weight) {
          dep_rank[nd] = static_cast<int>(r);
          dep[nd++] = kid[base_key + 1];
        } else {
          int next = straight ? (s < last_stage ? s + 1 : -1)
                              : next_on_route[static_cast<std::size_t>(s) * m + static_cast<std::size_t>(j)];
          if (next >= 0) {
            dep_rank[nd] = srank[next];
            dep[nd++] = kid[(static_cast<std::size_t>(next) * m + static_cast<std::size_t>(j)) * 3 + 1];
          }
          dep_rank[nd] = static_cast<int>(r);
          dep[nd++] = kid[base_key];
          consumer[h] = straight ? s - 1 : prev_on_route[static_cast<std::size_t>(s) * m + static_cast<std::size_t>(j)];
        }
      }
      double begin = fr;
      bool ready = true;
      for (int k = 0; k < nd; ++k) {
        int const d = dep[k];
        if (d < 0) continue; // missing pass: verify() reports it
        double const e = en[d];
        if (e < 0) {
          ready = false;
          break;
        }
        double arrive = e;
        int const dr = dep_rank[k];
        if (dr != static_cast<int>(r)) arrive += uniform_links ? base.c : costs.link(dr, static_cast<int>(r), t.ranks);
        begin = arrive > begin ? arrive : begin;
      }
      if (!ready) break;
      double dur;
      if (pair) {
        dur = costs.pair_duration(a.stage, list[i + 1].kind, list[i + 1].stage);
      } else if (uniform_costs) {
        dur = a.kind == op::forward ? base.f
              : a.kind == op::backward ? base.b + base.w
              : a.kind == op::backward_input ? base.b
                                             : base.w;
      } else {
        dur = costs.duration(a.kind, a.stage);
      }
      for (int h = 0; h < halves; ++h) {
        st[g + static_cast<std::size_t>(h)] = begin;
        en[g + static_cast<std::size_t>(h)] = begin + dur;
        order[ordered++] = detail::op_ref{static_cast<int>(r), static_cast<int>(i)};
        ++i;
        ++done;
        if (consumer[h] >= 0) {
          std::size_t q = static_cast<std::size_t>(srank[consumer[h]]);
          if (q != r && !queued[q]) {
            queued[q] = 1;
            work.push_back(static_cast<int>(q));
          }
        }
      }
      fr = begin + dur;
    }
    ptr[r] = i;
    free_at[r] = fr;
  }
  sim.order.resize(ordered);
  if (done < n) {
    for (std::size_t r = 0; r < p; ++r)
      if (ptr[r] < t.lists[r].size()) {
        action const& a = t.lists[r][ptr[r]];
        sim.error = diagnostic{errc::cyclic_wait, static_cast<int>(r), static_cast<int>(ptr[r]), a.stage, a.mb,
                               overlaps_next(a) ? "an overlapped pair waits for both halves' inputs: one half may need "
                                                  "the other's output"
                                                : nullptr};
        return sim;
      }
  }
  if (flat) {
    flat->off = static_cast<vec<std::size_t>&&>(off);
    flat->start = static_cast<vec<double>&&>(start_v);
    flat->end = static_cast<vec<double>&&>(end_v);
    return sim;
  }
  sim.times.resize(p);
  for (std::size_t r = 0; r < p; ++r) {
    std::size_t const len = t.lists[r].size();
    sim.times[r].resize(len);
    op_time* tm = sim.times[r].data();
    for (std::size_t i = 0; i < len; ++i) tm[i] = op_time{st[off[r] + i], en[off[r] + i]};
  }
  return sim;
}

constexpr simulation simulate_times(table const& t, sim_costs const& costs) {
  return simulate_times(t, costs, neighbours_on_routes(t));
}

} // namespace detail

/// Runs every rank's compute passes in list order, each starting when its rank is free and
/// its inputs have arrived (dependency end + link time between the ranks). Transfers in a
/// lowered table take no time here. Reports cyclic_wait when the orders wait on each other.
constexpr simulation simulate(table const& t, sim_costs const& costs = {}) {
  simulation sim = detail::simulate_times(t, costs);
  if (sim.ok()) detail::finish_metrics(t, sim, costs);
  return sim;
}

} // namespace pipesched
