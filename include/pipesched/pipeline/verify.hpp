// pipesched: verification — coverage, dependencies, no cyclic wait, the memory bound.
#pragma once

#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/core/graph.hpp"
#include "pipesched/core/table.hpp"

namespace pipesched {

namespace detail {

/// Same-rank order: a backward after its own forward, W after its I.
constexpr diagnostic check_local_order(table const& t, op_index const& ix) {
  for (int s = 0; s < t.stages; ++s)
    for (int j = 0; j < t.microbatches; ++j) {
      auto f = ix.at(0, s, j), b = ix.at(1, s, j), w = ix.at(2, s, j);
      if (f.found() && b.found() && b.pos < f.pos) return {errc::backward_before_forward, b.rank, b.pos, s, j};
      if (w.found() && b.found() && w.pos < b.pos) return {errc::weight_before_input, w.rank, w.pos, s, j};
      if (w.found() && !b.found()) return {errc::missing_pass, w.rank, w.pos, s, j, "W without its I"};
    }
  return {};
}

/// Runs a lowered table with blocking rendezvous transfers: a SEND completes only together
/// with the matching RECV that its peer has reached. Checks every data dependency on the way.
/// `route`: neighbours_on_routes(t).
constexpr diagnostic check_rendezvous(table const& t, route_neighbours const& route) {
  // Raw pointers and few calls in the hot loop: this runs inside the compiler for every
  // schedule type, where nvcc's budget charges each call.
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  std::size_t const m = static_cast<std::size_t>(t.microbatches);
  std::size_t const sm = static_cast<std::size_t>(t.stages) * m;
  // per (stage, micro-batch): 0 F done, 1 B/I done, 2 W done, 3 activation received,
  // 4 gradient received
  vec<char> state(sm * 5, 0);
  char* const st = state.data();
  int const* const srank = t.stage_rank.data();
  bool const straight = t.paths.empty();
  int const last_stage = t.stages - 1;
  int const* const prev_on_route = route.prev.data();
  int const* const next_on_route = route.next.data();
  vec<action const*> lists(p, nullptr);
  vec<std::size_t> sizes(p, 0);
  vec<std::size_t> ptr_v(p, 0);
  action const* const* const lp = lists.data();
  std::size_t const* const ln = sizes.data();
  std::size_t* const ptr = ptr_v.data();
  for (std::size_t r = 0; r < p; ++r) {
    lists[r] = t.lists[r].data();
    sizes[r] = t.lists[r].size();
  }
  std::size_t remaining = t.total_actions();
  auto fail = [&](errc e, std::size_t r, action const& a, const char* why) {
    return diagnostic{e, static_cast<int>(r), static_cast<int>(ptr[r]), a.stage, a.mb, why};
  };
  // Worklist of ranks to advance. A rank stops at a receive (its sender completes the pair)
  // and at a send whose peer is not yet at the matching receive; reaching a receive wakes
  // the sender, completing a pair wakes the receiver.
  vec<int> work;
  vec<char> queued_v(p, 1);
  char* const queued = queued_v.data();
  for (std::size_t r = p; r-- > 0;) work.push_back(static_cast<int>(r));
  while (!work.empty()) {
    std::size_t const r = static_cast<std::size_t>(work.back());
    work.pop_back();
    queued[r] = 0;
    action const* const list = lp[r];
    std::size_t const len = ln[r];
    while (ptr[r] < len) {
      action const& a = list[ptr[r]];
      int const s = a.stage, j = a.mb;
      std::size_t const here = (static_cast<std::size_t>(s) * m + static_cast<std::size_t>(j)) * 5;
      std::size_t const sj = static_cast<std::size_t>(s) * m + static_cast<std::size_t>(j);
      int const prev = straight ? s - 1 : prev_on_route[sj];
      int const next = straight ? (s < last_stage ? s + 1 : -1) : next_on_route[sj];
      if (a.kind == op::forward) {
        if ((a.flags & overlap_next) != 0 && ptr[r] + 1 < len) {
          // an overlapped pair: the backward half's inputs must be there before the pair
          // starts, so it cannot depend on the forward half
          action const& b = list[ptr[r] + 1];
          if (b.kind == op::backward || b.kind == op::backward_input) {
            std::size_t const bh = (static_cast<std::size_t>(b.stage) * m + static_cast<std::size_t>(b.mb)) * 5;
            if (!st[bh]) return fail(errc::bad_overlap, r, a, "the backward half's own forward has not run before the pair");
            int const bn = straight ? (b.stage < last_stage ? b.stage + 1 : -1)
                                    : next_on_route[static_cast<std::size_t>(b.stage) * m + static_cast<std::size_t>(b.mb)];
            if (bn >= 0) {
              bool const local = srank[bn] == static_cast<int>(r);
              std::size_t const need =
                  local ? (static_cast<std::size_t>(bn) * m + static_cast<std::size_t>(b.mb)) * 5 + 1 : bh + 4;
              if (!st[need])
                return fail(local ? errc::cyclic_wait : errc::missing_recv, r, a,
                            "the backward half of an overlapped pair: output gradient not there before the pair");
            }
          }
        }
        if (prev >= 0) {
          bool const local = srank[prev] == static_cast<int>(r);
          std::size_t const need = local ? (static_cast<std::size_t>(prev) * m + static_cast<std::size_t>(j)) * 5 : here + 3;
          if (!st[need]) return fail(local ? errc::cyclic_wait : errc::missing_recv, r, a, "input activation");
        }
        st[here] = 1;
        ++ptr[r];
        --remaining;
        continue;
      }
      if (a.kind == op::backward || a.kind == op::backward_input) {
        if (!st[here]) return fail(errc::backward_before_forward, r, a, nullptr);
        if (next >= 0) {
          bool const local = srank[next] == static_cast<int>(r);
          std::size_t const need =
              local ? (static_cast<std::size_t>(next) * m + static_cast<std::size_t>(j)) * 5 + 1 : here + 4;
          if (!st[need]) return fail(local ? errc::cyclic_wait : errc::missing_recv, r, a, "output gradient");
        }
        st[here + 1] = 1;
        ++ptr[r];
        --remaining;
        continue;
      }
      if (a.kind == op::backward_weight) {
        if (!st[here + 1]) return fail(errc::weight_before_input, r, a, nullptr);
        st[here + 2] = 1;
        ++ptr[r];
        --remaining;
        continue;
      }
      std::size_t const q = a.peer;
      if (q >= p || q == r) return fail(errc::transfer_mismatch, r, a, "peer out of range");
      if (a.kind == op::recv_act || a.kind == op::recv_grad) {
        // the sender completes the pair: wake it if it waits at its send to us (waking a peer
        // that waits at a receive too would ping-pong forever)
        if (ptr[q] < ln[q]) {
          action const& c = lp[q][ptr[q]];
          if ((c.kind == op::send_act || c.kind == op::send_grad) && c.peer == r && !queued[q]) {
            queued[q] = 1;
            work.push_back(static_cast<int>(q));
          }
        }
        break;
      }
      bool const act = a.kind == op::send_act;
      if (!st[here + (act ? 0 : 1)]) return fail(errc::transfer_mismatch, r, a, "send before its producer");
      if (ptr[q] >= ln[q]) return fail(errc::transfer_mismatch, r, a, "the peer has nothing left to receive");
      action const& b = lp[q][ptr[q]];
      bool const b_recv = b.kind == op::recv_act || b.kind == op::recv_grad;
      if (!b_recv || b.peer != r) break; // the peer is busy elsewhere: it wakes us at its receive
      int const expect = act ? next : prev;
      if (b.kind != (act ? op::recv_act : op::recv_grad) || b.mb != a.mb || b.stage != expect)
        return fail(errc::transfer_mismatch, r, a, "the peer's receive is for another boundary");
      st[(static_cast<std::size_t>(b.stage) * m + static_cast<std::size_t>(j)) * 5 + (act ? 3 : 4)] = 1;
      ++ptr[r];
      ++ptr[q];
      remaining -= 2;
      if (!queued[q]) {
        queued[q] = 1;
        work.push_back(static_cast<int>(q));
      }
    }
  }
  if (remaining > 0) {
    for (std::size_t r = 0; r < p; ++r)
      if (ptr[r] < ln[r]) return fail(errc::transfer_deadlock, r, lp[r][ptr[r]], nullptr);
  }
  return {};
}

/// The position in rank list `list` of the pass that makes the rank hold more than `places`
/// micro-batches at once, or -1: a micro-batch holds a place from its first compute pass on
/// the rank to its last (a skip table's cap, table::memory_bound_microbatches; list order
/// alone decides it, since a rank runs one pass at a time; transfers are ignored). `first`
/// and `last` are scratch of one entry per micro-batch.
constexpr int place_over_cap(vec<action> const& list, int places, vec<int>& first, vec<int>& last) {
  std::size_t const m = first.size();
  for (std::size_t j = 0; j < m; ++j) first[j] = last[j] = -1;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (!is_compute(list[i].kind) || list[i].mb >= m) continue;
    if (first[list[i].mb] < 0) first[list[i].mb] = static_cast<int>(i);
    last[list[i].mb] = static_cast<int>(i);
  }
  int held = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (!is_compute(list[i].kind) || list[i].mb >= m) continue;
    if (first[list[i].mb] == static_cast<int>(i) && ++held > places) return static_cast<int>(i);
    if (last[list[i].mb] == static_cast<int>(i)) --held;
  }
  return -1;
}

/// verify_structure into the caller's index, whose routes' neighbours verify_flow reuses.
constexpr diagnostic verify_structure(table const& t, op_index& ix) {
  if (!t.ok()) return t.error;
  if (auto d = build_index(t, ix)) return d;
  if (auto d = check_coverage(t, ix)) return d;
  return check_local_order(t, ix);
}

/// verify_flow with the routes' neighbours made by the caller (neighbours_on_routes(t)).
constexpr diagnostic verify_flow(table const& t, route_neighbours const& route) {
  if (!t.ok()) return t.error;
  if (t.lowered) {
    if (auto d = check_rendezvous(t, route)) return d;
  } else {
    simulation const sim = simulate_times(t, sim_costs{}, route);
    if (!sim.ok()) return sim.error;
  }
  if (t.memory_bound_chunks > 0) {
    auto peaks = detail::peak_chunk_counts(t);
    for (int r = 0; r < t.ranks; ++r)
      if (peaks[static_cast<std::size_t>(r)] > t.memory_bound_chunks)
        return {errc::memory_bound_exceeded, r, -1, -1, -1};
  }
  if (t.memory_bound_microbatches > 0) {
    std::size_t const m = static_cast<std::size_t>(t.microbatches);
    vec<int> first(m, -1), last(m, -1);
    for (int r = 0; r < t.ranks; ++r) {
      auto const& l = t.lists[static_cast<std::size_t>(r)];
      int const i = detail::place_over_cap(l, t.memory_bound_microbatches, first, last);
      if (i >= 0)
        return {errc::memory_bound_exceeded, r, i, l[static_cast<std::size_t>(i)].stage, l[static_cast<std::size_t>(i)].mb,
                "a rank holds more micro-batches at once than the schedule's cap"};
    }
  }
  return {};
}

} // namespace detail

/// The static checks of a table: ranges and placement, coverage, same-rank order.
constexpr diagnostic verify_structure(table const& t) {
  detail::op_index ix{};
  return detail::verify_structure(t, ix);
}

/// The dynamic checks of a structurally valid table: executing each rank in list order
/// finishes (no cyclic wait); for lowered tables, blocking rendezvous transfers finish and
/// every input is received before it is read; the generator's memory bound holds.
constexpr diagnostic verify_flow(table const& t) { return detail::verify_flow(t, neighbours_on_routes(t)); }

/// Checks a table (compute-only or lowered): verify_structure, then verify_flow. The routes'
/// neighbours are made once for both.
constexpr diagnostic verify(table const& t) {
  detail::op_index ix{};
  if (auto d = detail::verify_structure(t, ix)) return d;
  return detail::verify_flow(t, ix.route);
}

} // namespace pipesched
