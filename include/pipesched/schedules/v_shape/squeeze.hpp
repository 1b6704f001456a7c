// pipesched: V-shape schedules — squeezing a layout: passes move to earlier free slots
// without raising their rank's peak memory.
#pragma once

#include "pipesched/schedules/v_shape/layout.hpp"

namespace pipesched::detail {

/// One rank's running memory counts while squeezing, per slot: the chunk-activations held
/// after the slot and (implicit W's) the W's pending after it; `limit`, the rank's peak
/// before squeezing, is never exceeded. Raw pointers into squeeze's arrays.
struct rank_counts {
  int* held;
  int* pending;
  int limit;
};

/// Explicit W's: where the pass in slot `from` moves, the earliest free slot in
/// [earliest, from), or -1. A forward moved to slot `to` holds one more activation over
/// [to, from), so it goes only as far down as that stays within the limit; an input backward
/// or a W holds no more, so it takes the first free slot.
constexpr int explicit_move_target(int const* row, rank_counts const& counts, int earliest, int from, bool forward) {
  int to = -1;
  if (forward) {
    int const* const held = counts.held;
    int most = 0; // the most held over [u, from)
    for (int u = from - 1; u >= earliest; --u) {
      most = held[u] > most ? held[u] : most;
      if (most + 1 > counts.limit) break;
      if (row[u] < 0) to = u; // free
    }
  } else {
    for (int u = earliest; u < from && to < 0; ++u)
      if (row[u] < 0) to = u; // free
  }
  return to;
}

/// Implicit W's (every free slot runs one pending W): where pass `code` in slot `from`
/// moves, the earliest free slot u in [earliest, from) such that the counts replayed from u
/// with the pass there (and slot `from` free) stay within the limit until they rejoin the
/// old counts after `from`; -1 when there is none. The count rule is memory_profile's.
constexpr int implicit_move_target(int const* row, rank_counts const& counts, int earliest, int from, int code, int len,
                                   int first_input) {
  int const* const held = counts.held;
  int const* const pending = counts.pending;
  for (int u = earliest; u < from; ++u) {
    if (row[u] >= 0) continue; // taken
    int replay_held = u > 0 ? held[u - 1] : 0, replay_pending = u > 0 ? pending[u - 1] : 0;
    bool fits = true;
    for (int v = u; v < len; ++v) {
      int const y = v == u ? code : (v == from ? -1 : row[v]);
      if (y < 0) { // free: runs a pending W
        if (replay_pending > 0) --replay_held, --replay_pending;
      } else if (y < first_input) ++replay_held;
      else ++replay_pending;
      if (replay_held > counts.limit) {
        fits = false;
        break;
      }
      if (v >= from && replay_held == held[v] && replay_pending == pending[v]) break;
    }
    if (fits) return u;
  }
  return -1;
}

/// Implicit W's, after a pass moved from slot `from` to `to`: the counts from `to` on,
/// until they rejoin the old ones after `from`.
constexpr void recount_implicit(int const* row, rank_counts const& counts, int to, int from, int len, int first_input) {
  int* const held = counts.held;
  int* const pending = counts.pending;
  int now_held = to > 0 ? held[to - 1] : 0, now_pending = to > 0 ? pending[to - 1] : 0;
  for (int v = to; v < len; ++v) {
    int const y = row[v];
    if (y < 0) { // free: runs a pending W
      if (now_pending > 0) --now_held, --now_pending;
    } else if (y < first_input) ++now_held;
    else ++now_pending;
    if (v >= from && now_held == held[v] && now_pending == pending[v]) break;
    held[v] = now_held;
    pending[v] = now_pending;
  }
}

/// A place in squeeze's sweep (slot-major, then rank).
struct sweep_place {
  int slot, rank;
};

/// Where the steady state ends: the first chunk-0 forward of micro-batch m-1 (on any rank,
/// `last_forward[q]` its slot on rank q) after place `at` in sweep order; rank p when none.
constexpr sweep_place steady_state_end(int const* last_forward, int p, sweep_place at, int end) {
  sweep_place next{end, p};
  for (int q = 0; q < p; ++q) {
    int const u = last_forward[q];
    bool const after = u > at.slot || (u == at.slot && q > at.rank);
    bool const earlier = u < next.slot || (u == next.slot && q < next.rank);
    if (after && earlier) next = sweep_place{u, q};
  }
  return next;
}

/// Moves passes to earlier free slots, in the order of their current slots (ties by rank),
/// each to the earliest free slot its inputs allow (earliest_slot) without raising its
/// rank's peak memory. The steady state stays as laid out: it runs from the first chunk-0
/// input backward on rank 0 to the next chunk-0 forward of micro-batch m-1 on any rank
/// (that forward stays too). With explicit W's (`weights`), warm-up and cool-down passes
/// move and the memory is the running count; without, only cool-down passes move and every
/// pending W counts as run in the next free slot.
constexpr void squeeze(v_layout& L, bool weights) {
  int const p = L.p, m = L.m, len = L.len, first_input = first_input_code(m), first_weight = first_weight_code(m);
  auto const N = static_cast<std::size_t>(p) * static_cast<std::size_t>(len);
  vec<int> held_v(N, 0), pending_v(N, 0), limit_v(static_cast<std::size_t>(p), 0),
      last_forward_v(static_cast<std::size_t>(p), 0);
  int *const held = held_v.data(), *const pending = pending_v.data(), *const limit = limit_v.data();
  int *const occupant = L.occupant.data(), *const pass_slot = L.pass_slot.data(),
             *const last_forward = last_forward_v.data();
  int end = 0; // one past the last occupied slot
  for (int r = 0; r < p; ++r) {
    limit[r] = memory_profile(L, r, 0, 0, 0, !weights, held + len * r, pending + len * r);
    last_forward[r] = pass_slot[(4 * r + v_forward0) * m + m - 1];
    for (int u = len - 1; u >= end; --u)
      if (occupant[len * r + u] >= 0) {
        end = u + 1;
        break;
      }
  }
  bool warm_up = true; // then the steady state (skipped), then the cool-down
  for (int s = 0; s < end; ++s)
    for (int r = 0; r < p; ++r) {
      // passes move only to slots already passed, so the layout still holds this round's passes here
      int const x = occupant[len * r + s];
      if (x < 0) continue; // free
      // code_kind, code_index (inline: this runs per pass inside the compiler)
      int const kind = x >= first_weight ? squeeze_weight : x / m, index = x >= first_weight ? x - first_weight : x % m;
      if (warm_up && kind == v_input_backward0 && r == 0) {
        // the steady state: go on after the next chunk-0 forward of micro-batch m-1
        sweep_place const next = steady_state_end(last_forward, p, sweep_place{s, r}, end);
        if (next.rank == p) return; // no cool-down left
        s = next.slot;
        r = next.rank;
        warm_up = false;
        continue;
      }
      if (warm_up && !weights) continue;
      int* const row = occupant + len * r;
      rank_counts const counts{held + len * r, pending + len * r, limit[r]};
      int const earliest = earliest_slot(L, r, x);
      int const to = weights ? explicit_move_target(row, counts, earliest, s, x < first_input)
                             : implicit_move_target(row, counts, earliest, s, x, len, first_input);
      if (to < 0) continue;
      if (weights) { // a forward holds one more over [to, s), a W one less
        int const change = x < first_input ? 1 : (kind == squeeze_weight ? -1 : 0);
        for (int u = to; u < s; ++u) counts.held[u] += change;
      }
      row[to] = x;
      row[s] = free_slot;
      if (kind == squeeze_weight) L.weight_slot[static_cast<std::size_t>(2 * m * r + index)] = to;
      else pass_slot[(4 * r + kind) * m + index] = to;
      if (!weights) recount_implicit(row, counts, to, s, len, first_input);
    }
}

} // namespace pipesched::detail
