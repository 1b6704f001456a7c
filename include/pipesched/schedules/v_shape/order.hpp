// pipesched: V-shape schedules — from a finished layout to per-rank orders and tables:
// reading the order, repeating the steady state for more micro-batches, the table, and a
// run at unit costs to compare orders.
#pragma once

#include "pipesched/core/table.hpp"
#include "pipesched/schedules/v_shape/layout.hpp"

namespace pipesched::detail {

/// Each rank's passes in slot order: order[6m r + i] is a final pass code (see final_weights).
constexpr void v_order(v_layout const& L, vec<int>& order_v) {
  int const p = L.p, m = L.m, len = L.len;
  order_v.assign(static_cast<std::size_t>(6 * p * m), 0);
  for (int r = 0; r < p; ++r) {
    int const* const row = L.occupant.data() + len * r;
    int* const out = order_v.data() + 6 * m * r;
    int n = 0;
    for (int s = 0; s < len && n < 6 * m; ++s)
      if (row[s] >= 0) out[n++] = row[s]; // taken
  }
}

/// The per-rank order for L.m + k micro-batches from a finished layout whose steady state
/// repeats every 6 slots: k more periods go in at slot X, and the passes after X get
/// micro-batch + k. at[(6 rank + kind) m' + mb] receives the new slots when given.
constexpr void insert_periods(v_layout const& L, int X, int k, vec<int>& order_v, int* at) {
  int const p = L.p, m0 = L.m, len = L.len, m = m0 + k;
  order_v.assign(static_cast<std::size_t>(6 * p * m), 0);
  for (int r = 0; r < p; ++r) {
    int const* const row = L.occupant.data() + len * r;
    int* const out = order_v.data() + 6 * m * r;
    int n = 0;
    // the pass in slot u, `shift` micro-batches (and periods) later
    auto emit = [&](int u, int shift) {
      if (row[u] < 0) return; // free
      int const kind = row[u] / m0, j = row[u] % m0 + shift;
      out[n++] = kind * m + j; // pass_code, inline: this runs per pass inside the compiler
      if (at) at[(6 * r + kind) * m + j] = u + 6 * shift;
    };
    for (int u = 0; u < X; ++u) emit(u, 0);
    for (int q = 0; q <= k; ++q)
      for (int u = X; u < X + 6; ++u) emit(u, q);
    for (int u = X + 6; u < len && n < 6 * m; ++u) emit(u, k);
  }
}

/// The first slot X around which every rank is busy and repeats itself (pass for pass, one
/// micro-batch later, 6 slots on) for `reach` slots on either side, or -1.
constexpr int repeating_slot(v_layout const& L, int reach) {
  int const p = L.p, m = L.m, len = L.len;
  int const* const occupant = L.occupant.data();
  int run = 0; // slots in a row at which every rank repeats
  for (int u = 0; u + 6 < len; ++u) {
    bool same = true;
    for (int r = 0; r < p && same; ++r) {
      int const now = occupant[len * r + u], period_later = occupant[len * r + u + 6];
      same = now >= 0 && period_later >= 0 && period_later / m == now / m && period_later % m == now % m + 1;
    }
    run = same ? run + 1 : 0;
    if (run == 2 * reach + 6) return u + 1 - reach - 6;
  }
  return -1;
}

/// Whether the slots `at` ([(6 rank + kind) m + mb], final kinds) of an order for m
/// micro-batches meet every dependency: each pass placed, each W after its I, F and B
/// after the rank below (F, B of rank 0: after f, the turn at the loss), f and b after the
/// rank above (f, b of rank p-1: after F, B, the turn at the bottom).
constexpr bool slots_meet_dependencies(int const* at, int p, int m) {
  for (int r = 0; r < p; ++r)
    for (int j = 0; j < m; ++j) {
      int const* const a = at + j; // a[(6 rank + kind) m]: micro-batch j's pass
      int const f0 = a[6 * r * m], f1 = a[(6 * r + 1) * m], i1 = a[(6 * r + 2) * m], i0 = a[(6 * r + 3) * m];
      if (f0 < 0 || f1 < 0 || i1 < 0 || i0 < 0 || a[(6 * r + 4) * m] <= i1 || a[(6 * r + 5) * m] <= i0) return false;
      if (r > 0 && f0 <= a[6 * (r - 1) * m]) return false;
      if (f1 <= (r == p - 1 ? f0 : a[(6 * (r + 1) + 1) * m])) return false;
      if (i1 <= (r == 0 ? f1 : a[(6 * (r - 1) + 2) * m])) return false;
      if (i0 <= (r == p - 1 ? i1 : a[(6 * (r + 1) + 3) * m])) return false;
    }
  return true;
}

/// The order for m > L.m micro-batches by repeating the steady state (see insert_periods) at
/// the first slot X around which every rank is busy and repeats itself (repeating_slot) for
/// `reach` = 6 + the longest I-to-W distance slots on either side. The layout for a few
/// periods more is checked against every dependency (F, I and W each after its input; longer
/// runs differ only by more of the same periods). False when there is no such X or a check
/// fails.
constexpr bool extend_order(v_layout const& L, int m, vec<int>& order_v) {
  int const p = L.p, m0 = L.m, reach = 6 + L.lag;
  int const X = repeating_slot(L, reach);
  if (X < 0) return false;
  int const checked_periods = (m - m0) < reach / 6 + 3 ? m - m0 : reach / 6 + 3, checked_m = m0 + checked_periods;
  vec<int> at_v(static_cast<std::size_t>(6 * p * checked_m), -1);
  insert_periods(L, X, checked_periods, order_v, at_v.data());
  if (!slots_meet_dependencies(at_v.data(), p, checked_m)) return false;
  if (checked_periods < m - m0) insert_periods(L, X, m - m0, order_v, nullptr);
  return true;
}

/// The table of a per-rank order (see v_order).
constexpr table v_table(int p, int m, vec<int> const& order) {
  table t = make_table(p, m, 2, placement::v_shape);
  t.split_backward = true;
  for (int r = 0; r < p; ++r) {
    t.lists[static_cast<std::size_t>(r)].reserve(static_cast<std::size_t>(6 * m));
    int const* const codes = order.data() + 6 * m * r;
    int const chunk0_stage = r, chunk1_stage = 2 * p - 1 - r;
    for (int i = 0; i < 6 * m; ++i) {
      int const kind = codes[i] / m, j = codes[i] % m;
      // chunk 0: F, b and its W (v_kind 0, 3, 5; literals: a named constant costs an operation
      // per read inside the compiler); chunk 1: f, B and its W
      int const stage = (kind == 0 || kind == 3 || kind == 5) ? chunk0_stage : chunk1_stage;
      push(t, kind < 2 ? op::forward : (kind < 4 ? op::backward_input : op::backward_weight), stage, j);
    }
  }
  return t;
}

/// Largest rank span and makespan of a per-rank order at unit costs (F = B = W = 1, c = 0):
/// list scheduling, each pass starting when its rank is free and its input is done.
struct unit_times {
  int span = -1; ///< -1: the order would hang
  int makespan = -1;
};

constexpr unit_times unit_run(int p, int m, vec<int> const& order) {
  auto const P = static_cast<std::size_t>(p);
  vec<int> end_v(P * 4 * static_cast<std::size_t>(m), -1), next_v(P, 0), free_v(P, 0), first_v(P, -1);
  // end[(4 rank + kind) m + mb]: when compute pass (kind, mb) of the rank ends, -1 not yet
  int *const end = end_v.data(), *const next = next_v.data(), *const free_at = free_v.data(),
             *const first_start = first_v.data();
  int left = 6 * p * m;
  while (left > 0) {
    int const before = left;
    for (int r = 0; r < p; ++r) {
      int const* const codes = order.data() + 6 * m * r;
      while (next[r] < 6 * m) {
        int const x = codes[next[r]];
        int const kind = x / m, j = x % m;
        // when the input is done: the chain's previous pass (F, B up the ranks, f, b down);
        // kinds as literals (v_kind: 0 F, 1 f, 2 B, 3 b, 4 and 5 the W's), see v_table
        int ready = 0;
        if (kind == 0) ready = r == 0 ? 0 : end[(4 * (r - 1)) * m + j];
        else if (kind == 1) ready = r == p - 1 ? end[(4 * r) * m + j] : end[(4 * (r + 1) + 1) * m + j];
        else if (kind == 2) ready = r == 0 ? end[(4 * r + 1) * m + j] : end[(4 * (r - 1) + 2) * m + j];
        else if (kind == 3) ready = r == p - 1 ? end[(4 * r + 2) * m + j] : end[(4 * (r + 1) + 3) * m + j];
        else ready = end[(4 * r + kind - 2) * m + j]; // a W: after its I
        if (ready < 0) break;
        int const start = ready > free_at[r] ? ready : free_at[r];
        if (first_start[r] < 0) first_start[r] = start;
        free_at[r] = start + 1;
        if (kind < 4) end[(4 * r + kind) * m + j] = start + 1;
        ++next[r];
        --left;
      }
    }
    if (left == before) return {};
  }
  unit_times u{0, 0};
  for (int r = 0; r < p; ++r) {
    u.span = free_at[r] - first_start[r] > u.span ? free_at[r] - first_start[r] : u.span;
    u.makespan = free_at[r] > u.makespan ? free_at[r] : u.makespan;
  }
  return u;
}

} // namespace pipesched::detail
