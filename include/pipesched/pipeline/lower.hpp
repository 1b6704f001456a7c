// pipesched: lowering — transfers in one global order, and boundary buffer slots.
#pragma once

#include <cstdint>
#include <utility>

#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/core/table.hpp"
#include "pipesched/core/vec.hpp"

namespace pipesched {

namespace detail {

/// Gives every boundary of a lowered table a buffer slot, rank by rank in list order: a
/// boundary takes a free slot when it is written first (a receive, or the pass that
/// produces it) and frees it after its last reader (the send; for an input activation and
/// an output gradient, the B or the W that closes its backward). Slots are taken at a
/// boundary's first write, so a rank's slot count equals the largest number of boundaries
/// alive at one position of its list. With `extra` > 0 (double buffering) the rank gets that
/// many slots more and uses them as a round robin — a new boundary takes the slot freed
/// longest ago, never the one just freed — so that a receive or a pass need not wait for the
/// last reader of the newest free slot. A slot freed by an action is not reused by an output
/// of the same action. Reads of boundaries with no writer (only in broken imported tables, which
/// verify() rejects) stay no_slot.
constexpr void assign_slots(table& t, int extra = 0) {
  std::size_t const sm = static_cast<std::size_t>(t.stages) * static_cast<std::size_t>(t.microbatches);
  // what holds each boundary: 0 activation entering s, 1 activation leaving s for another
  // rank (sender side), 2 gradient of s's output, 3 input gradient leaving s (sender side)
  vec<std::int32_t> where(sm * 4, -1);
  auto key = [&](int what, int s, int j) {
    return static_cast<std::size_t>(what) * sm +
           static_cast<std::size_t>(s) * static_cast<std::size_t>(t.microbatches) + static_cast<std::size_t>(j);
  };
  t.slot_count.assign(static_cast<std::size_t>(t.ranks), 0);
  vec<std::int32_t> free_slots;
  // One walk of rank r's list. pool < 0: free slots reused last-freed-first, new slots made
  // when none is free (the count is the peak of live boundaries). pool >= 0: a fixed pool of
  // that many slots, reused first-freed-first (a round robin: the slot freed longest ago).
  // Returns the number of slots used.
  auto walk = [&](int r, std::int32_t pool) -> std::int32_t {
    free_slots.clear();
    std::size_t head = 0;
    std::int32_t created = 0;
    if (pool >= 0)
      for (std::int32_t k = 0; k < pool; ++k) free_slots.push_back(k);
    std::int32_t dying[2] = {-1, -1};
    int ndying = 0;
    auto take = [&](int what, int s, int j) -> std::uint16_t {
      std::int32_t slot;
      if (pool >= 0) {
        slot = head < free_slots.size() ? free_slots[head++] : created; // a valid table never runs out
        created = pool;
      } else if (free_slots.empty()) {
        slot = created++;
      } else {
        slot = free_slots.back();
        free_slots.pop_back();
      }
      where[key(what, s, j)] = slot;
      return static_cast<std::uint16_t>(slot);
    };
    auto read = [&](int what, int s, int j, bool last) -> std::uint16_t {
      std::int32_t& w = where[key(what, s, j)];
      if (w < 0) return no_slot;
      std::uint16_t slot = static_cast<std::uint16_t>(w);
      if (last) {
        dying[ndying++] = w;
        w = -1;
      }
      return slot;
    };
    auto& list = t.lists[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < list.size(); ++i) {
      action& a = list[i];
      int const s = a.stage, j = a.mb;
      ndying = 0;
      switch (a.kind) {
      case op::forward: {
        if (t.prev_stage(j, s) >= 0) a.in = read(0, s, j, t.forward_only);
        int nx = t.next_stage(j, s);
        if (nx >= 0) a.out = t.rank_of(nx) == r ? take(0, nx, j) : take(1, s, j);
        break;
      }
      case op::backward:
      case op::backward_input: {
        bool const last = a.kind == op::backward;
        if (t.next_stage(j, s) >= 0) a.in = read(2, s, j, last);
        if (t.prev_stage(j, s) >= 0) a.aux = read(0, s, j, last);
        int pv = t.prev_stage(j, s);
        if (pv >= 0) a.out = t.rank_of(pv) == r ? take(2, pv, j) : take(3, s, j);
        break;
      }
      case op::backward_weight:
        if (t.next_stage(j, s) >= 0) a.in = read(2, s, j, true);
        if (t.prev_stage(j, s) >= 0) a.aux = read(0, s, j, true);
        break;
      case op::recv_act: a.out = take(0, s, j); break;
      case op::send_act: a.in = read(1, s, j, true); break;
      case op::recv_grad: a.out = take(2, s, j); break;
      case op::send_grad: a.in = read(3, s, j, true); break;
      }
      for (int k = 0; k < ndying; ++k) free_slots.push_back(dying[k]);
    }
    return created;
  };
  for (int r = 0; r < t.ranks; ++r) {
    std::int32_t const peak = walk(r, -1);
    // double buffering: a round robin over the peak plus `extra` slots, so that at every new
    // boundary at least extra + 1 slots are free and the one freed last is not the one taken
    t.slot_count[static_cast<std::size_t>(r)] = extra > 0 ? walk(r, peak + extra) : peak;
  }
}

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

} // namespace detail

namespace detail {

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
/// RECV appended to the consumer's incoming runs, keyed by the pass's end.
template <class Timing>
constexpr void collect_transfers(table const& t, Timing const& timing, vec<vec<int>>& consumer_rank,
                                 vec<incoming_runs>& incoming) {
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
                                  : (forward ? t.next_stage(a.mb, s) : t.prev_stage(a.mb, s));
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
template <class Timing> constexpr table insert_transfers(table const& t, Timing const& timing) {
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  vec<vec<int>> consumer_rank(p);
  vec<incoming_runs> incoming(p);
  collect_transfers(t, timing, consumer_rank, incoming);
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

} // namespace detail

/// Lowers a compute table: inserts SEND/RECV pairs in one global order, then assigns
/// boundary buffer slots. The order is the timeline of a simulation of the compute passes
/// under `costs`: each pass at its start, its output's SEND (on its rank) and RECV (on the
/// consumer's rank) together at its end. Every rank therefore posts matching transfers in
/// the same order and blocking transfers cannot wait in a cycle. Neighbouring stages on the
/// same rank exchange nothing. Returns the input's error, or cyclic_wait, on failure.
constexpr table lower(table const& t, sim_costs const& costs = {}, int extra_slots = 0) {
  if (!t.ok() || t.lowered) return t;
  simulation sim = detail::simulate_times(t, costs);
  if (!sim.ok()) return failed(sim.error);
  vec<vec<int>> const topo = detail::topo_order(t, sim);
  auto timing = [&](std::size_t r, std::size_t i) {
    op_time const tm = sim.times[r][i];
    return std::pair<detail::sweep_key, double>{detail::sweep_key{tm.start, topo[r][i], 0}, tm.end};
  };
  table out = detail::insert_transfers(t, timing);
  detail::assign_slots(out, extra_slots);
  return out;
}

} // namespace pipesched
