// pipesched: verification — coverage, dependencies, no cyclic wait, the memory bound.
#pragma once

#include "pipesched/analysis/simulate.hpp"
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
constexpr diagnostic check_rendezvous(table const& t) {
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  std::size_t const sm = static_cast<std::size_t>(t.stages) * static_cast<std::size_t>(t.microbatches);
  auto key = [&](int s, int j) {
    return static_cast<std::size_t>(s) * static_cast<std::size_t>(t.microbatches) + static_cast<std::size_t>(j);
  };
  // 0: F done, 1: B/I done, 2: W done, 3: activation received, 4: gradient received
  vec<char> state(sm * 5, 0);
  char* const st = state.data();
  auto flag = [st, &key](int what, int s, int j) -> char& { return st[key(s, j) * 5 + static_cast<std::size_t>(what)]; };
  vec<std::size_t> ptr(p, 0);
  std::size_t remaining = t.total_actions();
  auto fail = [&](errc e, std::size_t r, action const& a, const char* why) {
    return diagnostic{e, static_cast<int>(r), static_cast<int>(ptr[r]), a.stage, a.mb, why};
  };
  // Worklist of ranks to advance. A rank stops at a receive (its sender completes the pair)
  // and at a send whose peer is not yet at the matching receive; reaching a receive wakes
  // the sender, completing a pair wakes the receiver.
  vec<int> work;
  vec<char> queued(p, 1);
  for (std::size_t r = p; r-- > 0;) work.push_back(static_cast<int>(r));
  auto wake = [&](std::size_t q) {
    if (!queued[q]) {
      queued[q] = 1;
      work.push_back(static_cast<int>(q));
    }
  };
  while (!work.empty()) {
    std::size_t const r = static_cast<std::size_t>(work.back());
    work.pop_back();
    queued[r] = 0;
    auto const& list = t.lists[r];
    while (ptr[r] < list.size()) {
      action const& a = list[ptr[r]];
      int const s = a.stage, j = a.mb;
      if (is_compute(a.kind)) {
        if (a.kind == op::forward) {
          int prev = t.prev_stage(j, s);
          if (prev >= 0) {
            bool local = t.rank_of(prev) == static_cast<int>(r);
            if (local ? !flag(0, prev, j) : !flag(3, s, j))
              return fail(local ? errc::cyclic_wait : errc::missing_recv, r, a, "input activation");
          }
          flag(0, s, j) = 1;
        } else if (makes_input_grad(a.kind)) {
          if (!flag(0, s, j)) return fail(errc::backward_before_forward, r, a, nullptr);
          int next = t.next_stage(j, s);
          if (next >= 0) {
            bool local = t.rank_of(next) == static_cast<int>(r);
            if (local ? !flag(1, next, j) : !flag(4, s, j))
              return fail(local ? errc::cyclic_wait : errc::missing_recv, r, a, "output gradient");
          }
          flag(1, s, j) = 1;
        } else {
          if (!flag(1, s, j)) return fail(errc::weight_before_input, r, a, nullptr);
          flag(2, s, j) = 1;
        }
        ++ptr[r];
        --remaining;
        continue;
      }
      std::size_t q = a.peer;
      if (q >= p || q == r) return fail(errc::transfer_mismatch, r, a, "peer out of range");
      if (is_recv(a.kind)) {
        // the sender completes the pair: wake it if it waits at its send to us (waking a peer
        // that waits at a receive too would ping-pong forever)
        if (ptr[q] < t.lists[q].size() && is_send(t.lists[q][ptr[q]].kind) && t.lists[q][ptr[q]].peer == r) wake(q);
        break;
      }
      bool act = a.kind == op::send_act;
      if (!flag(act ? 0 : 1, s, j)) return fail(errc::transfer_mismatch, r, a, "send before its producer");
      if (ptr[q] >= t.lists[q].size()) return fail(errc::transfer_mismatch, r, a, "the peer has nothing left to receive");
      action const& b = t.lists[q][ptr[q]];
      if (!is_recv(b.kind) || b.peer != r) break; // the peer is busy elsewhere: it wakes us at its receive
      int expect = act ? t.next_stage(j, s) : t.prev_stage(j, s);
      if (b.kind != (act ? op::recv_act : op::recv_grad) || b.mb != a.mb || b.stage != expect)
        return fail(errc::transfer_mismatch, r, a, "the peer's receive is for another boundary");
      flag(act ? 3 : 4, b.stage, j) = 1;
      ++ptr[r];
      ++ptr[q];
      remaining -= 2;
      wake(q);
    }
  }
  if (remaining > 0) {
    for (std::size_t r = 0; r < p; ++r)
      if (ptr[r] < t.lists[r].size()) return fail(errc::transfer_deadlock, r, t.lists[r][ptr[r]], nullptr);
  }
  return {};
}

} // namespace detail

/// The static checks of a table: ranges and placement, coverage, same-rank order.
constexpr diagnostic verify_structure(table const& t) {
  if (!t.ok()) return t.error;
  detail::op_index ix{};
  if (auto d = detail::build_index(t, ix)) return d;
  if (auto d = detail::check_coverage(t, ix)) return d;
  return detail::check_local_order(t, ix);
}

/// The dynamic checks of a structurally valid table: executing each rank in list order
/// finishes (no cyclic wait); for lowered tables, blocking rendezvous transfers finish and
/// every input is received before it is read; the generator's memory bound holds.
constexpr diagnostic verify_flow(table const& t) {
  if (!t.ok()) return t.error;
  if (t.lowered) {
    if (auto d = detail::check_rendezvous(t)) return d;
  } else {
    simulation sim = simulate(t);
    if (!sim.ok()) return sim.error;
  }
  if (t.memory_bound_chunks > 0) {
    auto peaks = detail::peak_chunk_counts(t);
    for (int r = 0; r < t.ranks; ++r)
      if (peaks[static_cast<std::size_t>(r)] > t.memory_bound_chunks)
        return {errc::memory_bound_exceeded, r, -1, -1, -1};
  }
  return {};
}

/// Checks a table (compute-only or lowered): verify_structure, then verify_flow.
constexpr diagnostic verify(table const& t) {
  if (auto d = verify_structure(t)) return d;
  return verify_flow(t);
}

} // namespace pipesched
