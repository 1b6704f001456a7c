// pipesched: lowering, first step — SEND/RECV pairs inserted in one global sweep order.
#pragma once

#include <cstdint>

#include "pipesched/core/table.hpp"
#include "pipesched/core/vec.hpp"
#include "pipesched/pipeline/simulate.hpp"

namespace pipesched::detail {

/// A point of the global sweep: pass `pos` of rank `rank` starts (phase 0) or its output
/// crosses to another rank (phase 1) at `time`; `topo` breaks ties (dependency order).
struct sweep_key {
  double time = 0;
  int topo = 0;
  int phase = 0;
  constexpr bool before(sweep_key const& o) const {
    if (time != o.time) return time < o.time;
    if (topo != o.topo) return topo < o.topo;
    return phase < o.phase;
  }
};

/// A table's description without its lists (cheaper than a copy when they are rebuilt).
constexpr table copy_without_lists(table const& t) {
  table out{};
  out.ranks = t.ranks;
  out.microbatches = t.microbatches;
  out.chunks = t.chunks;
  out.stages = t.stages;
  out.place = t.place;
  out.split_backward = t.split_backward;
  out.forward_only = t.forward_only;
  out.lowered = t.lowered;
  out.memory_bound_chunks = t.memory_bound_chunks;
  out.memory_bound_microbatches = t.memory_bound_microbatches;
  out.stage_rank = t.stage_rank;
  out.stage_chunk = t.stage_chunk;
  out.paths = t.paths;
  out.slot_count = t.slot_count;
  out.error = t.error;
  return out;
}

/// A RECV of a rank's list, with the sweep point at which it goes in (the end of the pass
/// that sends it).
struct incoming_transfer {
  sweep_key key;
  action recv;
};

/// The RECVs one rank gets, in runs: one run per sending peer, in the sender's list order,
/// so each run is sorted by sweep key (a rank's passes follow one another in time and in
/// dependency order).
struct incoming_runs {
  vec<incoming_transfer> recvs; ///< run after run
  vec<std::size_t> run_start;   ///< index in recvs of each run's first RECV
  int last_sender = -1;         ///< the sender of the last run
};

/// The RECV, on the reader's rank, of the output of `pass` (on rank `sender`): stage
/// `reader_stage` (chunk `reader_chunk`) reads it.
constexpr action recv_action(action const& pass, int reader_stage, int reader_chunk, int sender) {
  return action{pass.kind == op::forward ? op::recv_act : op::recv_grad,
                static_cast<std::uint8_t>(reader_chunk),
                static_cast<std::uint16_t>(reader_stage),
                pass.mb,
                static_cast<std::uint16_t>(sender),
                no_slot,
                no_slot,
                no_slot,
                0};
}

/// For every compute pass whose output goes to another rank: that rank in
/// consumer_rank[r][i] (-1 when the output stays on the rank or there is none), and its
/// RECV appended to the consumer's incoming runs, keyed by the pass's end. `route`:
/// neighbours_on_routes(t).
template <class Timing>
constexpr void collect_transfers(table const& t, Timing const& timing, route_neighbours const& route,
                                 vec<vec<int>>& consumer_rank, vec<incoming_runs>& incoming) {
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  int const* const stage_rank = t.stage_rank.data();
  int const* const stage_chunk = t.stage_chunk.data();
  bool const straight = t.paths.empty(); // every route 0..S-1: the neighbour is stage s +- 1
  int const last_stage = t.stages - 1;
  for (std::size_t r = 0; r < p; ++r) {
    action const* const list = t.lists[r].data();
    std::size_t const n = t.lists[r].size();
    consumer_rank[r].assign(n, -1);
    int* const consumer = consumer_rank[r].data();
    for (std::size_t i = 0; i < n; ++i) {
      action const& a = list[i];
      bool const forward = a.kind == op::forward;
      if (!forward && a.kind != op::backward && a.kind != op::backward_input) continue;
      int const s = a.stage;
      // the stage that reads this pass's output: the next on the route (forward), the previous (backward)
      int const reader = straight ? (forward ? (s < last_stage ? s + 1 : -1) : s - 1)
                                  : (forward ? route.after(a.mb, s) : route.before(a.mb, s));
      if (reader < 0) continue;
      int const q = stage_rank[reader];
      if (q == static_cast<int>(r)) continue;
      consumer[i] = q;
      incoming_runs& in = incoming[static_cast<std::size_t>(q)];
      if (in.last_sender != static_cast<int>(r)) { // a new run: the first RECV from r
        in.run_start.push_back(in.recvs.size());
        in.last_sender = static_cast<int>(r);
      }
      auto const [start, end] = timing(r, i);
      in.recvs.push_back(incoming_transfer{sweep_key{end, start.topo, 1},
                                           recv_action(a, reader, stage_chunk[reader], static_cast<int>(r))});
    }
  }
}

/// The merge step: rank q's lowered list, from a k-way merge of
/// - its own events: each compute pass at its start (phase 0), and at its end (phase 1) its
///   SEND when consumer[i] >= 0; in list order start i, end i, start i+1, ... except that an
///   overlapped pair (i, i+1) runs start i, start i+1, end i, end i+1 (one point of the sweep);
/// - its incoming runs (collect_transfers), each already sorted,
/// by sweep key: time, then dependency order (topo), then phase; on equal keys the own
/// events come first, then the earlier run. `run_next` and `run_end` are scratch arrays of
/// at least one entry per run.
template <class Timing>
constexpr void merge_rank_events(table const& t, Timing const& timing, std::size_t q, int const* consumer,
                                 incoming_runs const& in, vec<action>& merged, std::size_t* run_next,
                                 std::size_t* run_end) {
  action const* const list = t.lists[q].data();
  std::size_t const n = t.lists[q].size();
  incoming_transfer const* const recvs = in.recvs.data();
  std::size_t const runs = in.run_start.size();
  for (std::size_t k = 0; k < runs; ++k) {
    run_next[k] = in.run_start[k];
    run_end[k] = k + 1 < runs ? in.run_start[k + 1] : in.recvs.size();
  }
  merged.resize(n + in.recvs.size() + n); // upper bound; trimmed below
  action* const out = merged.data();
  std::size_t written = 0;
  // The hot loop avoids function calls (nvcc's constexpr budget charges each call).
  // The own stream: event `own_event` (of 2n) is pass own_pass's start (own_phase 0) or end
  // (1), with sweep key own_key; own_fresh says whether these describe own_event yet.
  std::size_t own_event = 0, own_pass = 0, own_phase = 0;
  sweep_key own_key{};
  bool own_fresh = false;
  for (;;) {
    bool const own_left = own_event < 2 * n;
    if (own_left && !own_fresh) {
      // own event e: pass e/2, phase e%2 — except in an overlapped pair (x, x+1)
      std::size_t const x = own_event / 2, ph = own_event % 2;
      if ((list[x].flags & overlap_next) != 0 && x + 1 < n &&
          (list[x + 1].kind == op::backward || list[x + 1].kind == op::backward_input)) {
        own_pass = x + ph; // the pair's first two events: start x, start x+1
        own_phase = 0;
      } else if (x > 0 && (list[x - 1].flags & overlap_next) != 0 &&
                 (list[x].kind == op::backward || list[x].kind == op::backward_input)) {
        own_pass = x - 1 + ph; // its last two: end x-1, end x
        own_phase = 1;
      } else {
        own_pass = x;
        own_phase = ph;
      }
      auto const [start, end] = timing(q, own_pass);
      own_key = start;
      if (own_phase) {
        own_key.time = end;
        own_key.phase = 1;
      }
      own_fresh = true;
    }
    // the smallest head among the own stream and the runs (time, then topo, then phase)
    std::size_t pick = runs; // runs: the own stream
    sweep_key best = own_key;
    bool have = own_left;
    for (std::size_t k = 0; k < runs; ++k) {
      if (run_next[k] == run_end[k]) continue;
      sweep_key const& head = recvs[run_next[k]].key;
      bool const smaller =
          !have || head.time < best.time ||
          (head.time == best.time && (head.topo < best.topo || (head.topo == best.topo && head.phase < best.phase)));
      if (smaller) {
        pick = k;
        best = head;
        have = true;
      }
    }
    if (!have) break; // every stream is empty
    if (pick < runs) {
      out[written++] = recvs[run_next[pick]++].recv;
      continue;
    }
    action const& pass = list[own_pass];
    if (own_phase == 0) {
      out[written++] = pass;
    } else if (consumer[own_pass] >= 0) {
      out[written++] = action{pass.kind == op::forward ? op::send_act : op::send_grad,
                              pass.chunk,
                              pass.stage,
                              pass.mb,
                              static_cast<std::uint16_t>(consumer[own_pass]),
                              no_slot,
                              no_slot,
                              no_slot,
                              0}; // the SEND, to the consumer's rank
    }
    ++own_event;
    own_fresh = false;
  }
  merged.resize(written);
}

/// Inserts the transfers of a compute table in the sweep order given by `times` (start and
/// end of every pass, per rank) and `topo` (a dependency order of the passes, per rank).
/// No buffer slots yet (assign_slots does that).
///
/// Each rank's list is the projection of one global order onto the rank: its own passes
/// (at their starts), its SENDs (at its passes' ends) and the RECVs of what its peers send
/// it (at those passes' ends), sorted by (time, dependency order, phase). So each rank
/// merges its own events with one sorted run per sending peer (merge_rank_events) — a few
/// streams, which is cheap enough to run inside the compiler for large tables.
/// `timing(r, i)` gives pass i of rank r as a sweep_key with phase 0 (its start), and its end.
/// An overlapped pair (a flagged F and the pass after it) must have one time and one `topo`
/// for both halves (topo_order gives that); its own events run start F, start B, end F, end B.
/// `route`: neighbours_on_routes(t), looked up per pass instead of searching each route.
template <class Timing>
constexpr table insert_transfers(table const& t, Timing const& timing, route_neighbours const& route) {
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  vec<vec<int>> consumer_rank(p);
  vec<incoming_runs> incoming(p);
  collect_transfers(t, timing, route, consumer_rank, incoming);
  table out = copy_without_lists(t);
  out.lists.resize(p);
  vec<std::size_t> run_next, run_end; // the merge's cursors, one per run
  for (std::size_t q = 0; q < p; ++q) {
    run_next.resize(incoming[q].run_start.size());
    run_end.resize(incoming[q].run_start.size());
    merge_rank_events(t, timing, q, consumer_rank[q].data(), incoming[q], out.lists[q], run_next.data(),
                      run_end.data());
  }
  out.lowered = true;
  return out;
}
template <class Timing> constexpr table insert_transfers(table const& t, Timing const& timing) {
  return insert_transfers(t, timing, neighbours_on_routes(t));
}

/// Whether entries k-1 and k of a simulation's order are the two halves of one overlapped
/// pair (the simulation places them one after the other).
constexpr bool pair_in_order(table const& t, vec<op_ref> const& order, std::size_t k) {
  if (k == 0) return false;
  op_ref const a = order[k - 1], b = order[k];
  return a.rank == b.rank && b.pos == a.pos + 1 &&
         (t.lists[static_cast<std::size_t>(a.rank)][static_cast<std::size_t>(a.pos)].flags & overlap_next) != 0 &&
         makes_input_grad(t.lists[static_cast<std::size_t>(b.rank)][static_cast<std::size_t>(b.pos)].kind);
}

/// Dependency-order index of every pass of a simulation, per rank. The two halves of an
/// overlapped pair share the later one: the pair is one point of the sweep, so the receives
/// of both halves come before it and both sends after it (insert_transfers).
constexpr vec<vec<int>> topo_order(table const& t, simulation const& sim) {
  vec<vec<int>> topo(static_cast<std::size_t>(t.ranks));
  for (std::size_t r = 0; r < topo.size(); ++r) topo[r].assign(t.lists[r].size(), 0);
  for (std::size_t k = 0; k < sim.order.size(); ++k) {
    topo[static_cast<std::size_t>(sim.order[k].rank)][static_cast<std::size_t>(sim.order[k].pos)] = static_cast<int>(k);
    if (pair_in_order(t, sim.order, k))
      topo[static_cast<std::size_t>(sim.order[k - 1].rank)][static_cast<std::size_t>(sim.order[k - 1].pos)] =
          static_cast<int>(k);
  }
  return topo;
}

} // namespace pipesched::detail
