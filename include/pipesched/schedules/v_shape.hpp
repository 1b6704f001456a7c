// pipesched: V-Half and V-Min, the memory-controlled V-shape schedules.
#pragma once

#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/core/vec.hpp"
#include "pipesched/schedules/split_timing.hpp"
#include "pipesched/schedules/v_shape_reference.hpp"

namespace pipesched {

namespace detail {

/// Parameter check of the V-shape families: two chunks per rank (v = 0 or 2).
constexpr diagnostic check_v_shape(params const& pr) {
  if (auto d = check_common(pr)) return d;
  if (pr.v != 0 && pr.v != 2) return {errc::needs_two_chunks};
  return {};
}

/// A building block: the slots of micro-batch 0's four compute passes on every rank, given
/// as four chains through the ranks (unit slots, F = B = W = 1). Pass kinds on rank r:
/// 0 "F" forward of chunk 0 (stage r), 1 "f" forward of chunk 1 (stage 2p-1-r),
/// 2 "B" input backward of chunk 1, 3 "b" input backward of chunk 0.
///   F(r) = step_f * r                     f(p-1) = F(p-1) + turn_bottom, f(r) = f(r+1) + step_ff
///   B(0) = f(0) + turn_loss, B(r) = B(r-1) + step_bb
///   b(p-1) = B(p-1) + turn_back, b(r) = b(r+1) + step_b
/// Micro-batch j uses the slots + 6j. The block is usable when each rank's four slots differ
/// modulo 6; the two slots left in every period of 6 take the W passes.
struct v_block {
  int step_f, step_ff, step_bb, step_b;
  int turn_bottom, turn_loss, turn_back;
};

/// V-Min's block (Qi et al. 2024): F = r, f = 2p-r-1, B = 2p+g+r, b = 4p+g-r-1,
/// g = 2 when p mod 3 = 0, else 0.
constexpr v_block v_min_block(int p) { return {1, 1, 1, 1, 1, p % 3 == 0 ? 3 : 1, 1}; }
/// V-Half's block: F = 2r, f = 3p-r-2, B = 3p+g+2r-1, b = 6p+g-r-2, g = 3 when p is even, else 0.
constexpr v_block v_half_block(int p) { return {2, 1, 2, 1, 1, p % 2 == 0 ? 4 : 1, 2}; }

/// Slots of micro-batch 0: base[4r + kind].
constexpr void block_slots(v_block const& b, int p, int* base) {
  for (int r = 0; r < p; ++r) base[4 * r] = b.step_f * r;
  base[4 * (p - 1) + 1] = base[4 * (p - 1)] + b.turn_bottom;
  for (int r = p - 2; r >= 0; --r) base[4 * r + 1] = base[4 * (r + 1) + 1] + b.step_ff;
  base[2] = base[1] + b.turn_loss;
  for (int r = 1; r < p; ++r) base[4 * r + 2] = base[4 * (r - 1) + 2] + b.step_bb;
  base[4 * (p - 1) + 3] = base[4 * (p - 1) + 2] + b.turn_back;
  for (int r = p - 2; r >= 0; --r) base[4 * r + 3] = base[4 * (r + 1) + 3] + b.step_b;
}

constexpr bool block_usable(int const* base, int p) {
  for (int r = 0; r < p; ++r)
    for (int x = 0; x < 4; ++x)
      for (int y = x + 1; y < 4; ++y)
        if ((base[4 * r + x] - base[4 * r + y]) % 6 == 0) return false;
  return true;
}

/// The slot layout of a V-shape schedule while it is being built. Pass codes in `occ`:
/// kind * m + mb for the four kinds, -1 for a free slot, and for W's 4m + n (the rank's n-th
/// W) while squeezing, (kind + 2) * m + mb (the W of I kind, mb) once final_weights ran.
struct v_layout {
  int p = 0, m = 0, len = 0;
  int lag = 0;    ///< after final_weights: the most slots between an I and its W
  vec<int> slot;  ///< [(4r + kind) * m + mb]
  vec<int> wslot; ///< [2m r + n]: slot of the rank's n-th W (explicit W's only)
  vec<int> wsrc;  ///< [2m r + n]: code of the I pass whose weights the n-th W computes
  vec<int> occ;   ///< [len r + s]
};

/// Lays micro-batch j's passes at the block's slots + 6j; false when two passes collide.
constexpr bool lay_out(v_layout& L, int const* base) {
  int const p = L.p, m = L.m;
  int bound = 0;
  for (int i = 0; i < 4 * p; ++i) bound = base[i] > bound ? base[i] : bound;
  L.len = bound + 6 * (m - 1) + 2 * m + 2;
  L.slot.assign(static_cast<std::size_t>(4 * p * m), 0);
  L.wslot.assign(static_cast<std::size_t>(2 * p * m), 0);
  L.wsrc.assign(static_cast<std::size_t>(2 * p * m), 0);
  L.occ.assign(static_cast<std::size_t>(p) * static_cast<std::size_t>(L.len), -1);
  int* const slot = L.slot.data();
  int* const occ = L.occ.data();
  for (int r = 0; r < p; ++r)
    for (int k = 0; k < 4; ++k)
      for (int j = 0; j < m; ++j) {
        int s = base[4 * r + k] + 6 * j;
        if (occ[L.len * r + s] >= 0) return false;
        occ[L.len * r + s] = k * m + j;
        slot[(4 * r + k) * m + j] = s;
      }
  return true;
}

/// Puts each rank's W's into its free slots, one per free slot while any is pending, the
/// oldest I's W first.
constexpr void place_weights(v_layout& L) {
  int const m = L.m, len = L.len;
  int* const occ = L.occ.data();
  for (int r = 0; r < L.p; ++r) {
    int* const o = occ + len * r;
    int* const src = L.wsrc.data() + 2 * m * r;
    int tail = 0, n = 0; // I's seen, W's placed
    for (int s = 0; s < len && n < 2 * m; ++s) {
      if (o[s] >= 0) {
        if (o[s] >= 2 * m && o[s] < 4 * m) src[tail++] = o[s];
      } else if (n < tail) {
        o[s] = 4 * m + n;
        L.wslot[static_cast<std::size_t>(2 * m * r + n)] = s;
        ++n;
      }
    }
  }
}

/// Peak chunk-activations of rank r from slot `from` on, starting from count c0 and p0
/// pending W's: a forward adds one, a W in `occ` removes one and, when `implicit`, every
/// free slot runs one pending W. Writes the count and the pending W's after each slot to
/// `cur` and `pend` when given.
constexpr int memory_profile(v_layout const& L, int r, int from, int c0, int p0, bool implicit, int* cur, int* pend) {
  int const m = L.m;
  int const* const o = L.occ.data() + L.len * r;
  int c = c0, pd = p0, peak = c0;
  for (int s = from; s < L.len; ++s) {
    int const x = o[s];
    if (x < 0) {
      if (implicit && pd > 0) --c, --pd;
    } else if (x < 2 * m) ++c;
    else if (x < 4 * m) ++pd;
    else --c;
    peak = c > peak ? c : peak;
    if (cur) cur[s] = c, pend[s] = pd;
  }
  return peak;
}

/// Kind (0..3, 4 for W) and index (micro-batch, or n for the n-th W) of a pass code.
constexpr int code_kind(int x, int m) { return x >= 4 * m ? 4 : x / m; }
constexpr int code_index(int x, int m) { return x >= 4 * m ? x - 4 * m : x % m; }

/// The earliest slot the pass with code x may take on rank r: after its inputs and after the
/// same kind's previous micro-batch (for W n: after its I and after W n-1).
constexpr int earliest_slot(v_layout const& L, int r, int x) {
  int const p = L.p, m = L.m;
  if (x >= 4 * m) { // W n: after its I and after W n-1
    int const n = x - 4 * m;
    int const src = L.wsrc[static_cast<std::size_t>(2 * m * r + n)];
    int const i = L.slot[static_cast<std::size_t>((4 * r + src / m) * m + src % m)];
    int const w = n > 0 ? L.wslot[static_cast<std::size_t>(2 * m * r + n - 1)] : -1;
    return (i > w ? i : w) + 1;
  }
  int const k = x / m, j = x % m;
  int const* const at = L.slot.data() + j; // at[(4 rank + kind) m]: the slot of micro-batch j's pass
  int d = j > 0 ? at[(4 * r + k) * m - 1] : -1;
  if (k > 0 && at[(4 * r + k - 1) * m] > d) d = at[(4 * r + k - 1) * m]; // same rank: F, f, B, b in turn
  int const q = (k == 0 || k == 2) ? r - 1 : r + 1;                      // the neighbour that feeds this chain
  if (q >= 0 && q < p && at[(4 * q + k) * m] > d) d = at[(4 * q + k) * m];
  return d + 1;
}

/// Moves passes to earlier free slots, in the order of their current slots (ties by rank),
/// each to the earliest free slot its inputs allow without raising its rank's peak memory.
/// The steady state stays as laid out: it runs from the first chunk-0 input backward on
/// rank 0 to the next chunk-0 forward of micro-batch m-1 on any rank. With explicit W's
/// (`weights`), warm-up and cool-down passes move and the memory is the running count;
/// without, only cool-down passes move and every pending W counts as run in the next free slot.
constexpr void squeeze(v_layout& L, bool weights) {
  int const p = L.p, m = L.m, len = L.len;
  auto const N = static_cast<std::size_t>(p) * static_cast<std::size_t>(len);
  vec<int> cur_v(N, 0), pend_v(N, 0), limit_v(static_cast<std::size_t>(p), 0), last_v(static_cast<std::size_t>(p), 0);
  int *const cur = cur_v.data(), *const pend = pend_v.data(), *const limit = limit_v.data();
  int *const occ = L.occ.data(), *const slot = L.slot.data(), *const last_f = last_v.data();
  int end = 0; // one past the last occupied slot
  for (int r = 0; r < p; ++r) {
    limit[r] = memory_profile(L, r, 0, 0, 0, !weights, cur + len * r, pend + len * r);
    last_f[r] = slot[4 * r * m + m - 1];
    for (int u = len - 1; u >= end; --u)
      if (occ[len * r + u] >= 0) {
        end = u + 1;
        break;
      }
  }
  int phase = 0; // 0 warm-up, 1 steady, 2 cool-down
  for (int s = 0; s < end; ++s)
    for (int r = 0; r < p; ++r) {
      // passes move only to slots already passed, so occ still holds this round's layout here
      int const x = occ[len * r + s];
      if (x < 0) continue;
      int const k = code_kind(x, m), j = code_index(x, m);
      if (phase == 0 && k == 3 && r == 0) {
        // the steady state: skip to the next chunk-0 forward of micro-batch m-1
        int ns = end, nr = p;
        for (int q = 0; q < p; ++q) {
          int const u = last_f[q];
          if ((u > s || (u == s && q > r)) && (u < ns || (u == ns && q < nr))) ns = u, nr = q;
        }
        if (nr == p) return; // no cool-down left
        s = ns;
        r = nr;
        phase = 2;
        continue;
      }
      if (phase == 0 && !weights) continue;
      int* const o = occ + len * r;
      int* const c = cur + len * r;
      int* const pd = pend + len * r;
      int const d = earliest_slot(L, r, x);
      int to = -1;
      if (weights) {
        // explicit W's: the running count c[] changes by +1 (a forward) or -1 (a W) over [to, s)
        if (k < 2) {
          int mx = 0;
          for (int u = s - 1; u >= d; --u) {
            mx = c[u] > mx ? c[u] : mx;
            if (mx + 1 > limit[r]) break;
            if (o[u] < 0) to = u;
          }
        } else
          for (int u = d; u < s && to < 0; ++u)
            if (o[u] < 0) to = u;
        if (to < 0) continue;
        int const delta = k < 2 ? 1 : (k == 4 ? -1 : 0);
        for (int u = to; u < s; ++u) c[u] += delta;
      } else {
        for (int u = d; u < s && to < 0; ++u) {
          if (o[u] >= 0) continue;
          // replay the count from u with the pass moved there, until it rejoins the old one
          int cc = u > 0 ? c[u - 1] : 0, pp = u > 0 ? pd[u - 1] : 0;
          bool fits = true;
          for (int v = u; v < len; ++v) {
            int const y = v == u ? x : (v == s ? -1 : o[v]);
            if (y < 0) {
              if (pp > 0) --cc, --pp;
            } else if (y < 2 * m) ++cc;
            else ++pp;
            if (cc > limit[r]) {
              fits = false;
              break;
            }
            if (v >= s && cc == c[v] && pp == pd[v]) break;
          }
          if (fits) to = u;
        }
        if (to < 0) continue;
      }
      o[to] = x;
      o[s] = -1;
      if (k == 4) L.wslot[static_cast<std::size_t>(2 * m * r + j)] = to;
      else slot[(4 * r + k) * m + j] = to;
      if (!weights) { // the count from `to` on, until it rejoins the old one after s
        int cc = to > 0 ? c[to - 1] : 0, pp = to > 0 ? pd[to - 1] : 0;
        for (int v = to; v < len; ++v) {
          int const y = o[v];
          if (y < 0) {
            if (pp > 0) --cc, --pp;
          } else if (y < 2 * m) ++cc;
          else ++pp;
          if (v >= s && cc == c[v] && pp == pd[v]) break;
          c[v] = cc;
          pd[v] = pp;
        }
      }
    }
}

constexpr void drop_weights(v_layout& L) {
  int* const occ = L.occ.data();
  int const top = 4 * L.m;
  for (std::size_t i = 0; i < L.occ.size(); ++i)
    if (occ[i] >= top) occ[i] = -1;
}

/// Puts each rank's W's into its free slots, oldest I first, one per free slot while any is
/// pending; a W is coded (kind + 2) * m + mb after its I's code kind * m + mb (kinds 4, 5).
constexpr void final_weights(v_layout& L) {
  int const m = L.m, len = L.len;
  vec<int> fifo_v(static_cast<std::size_t>(4 * m), 0); // pairs (code, slot)
  int* const fifo = fifo_v.data();
  L.lag = 0;
  for (int r = 0; r < L.p; ++r) {
    int* const o = L.occ.data() + len * r;
    int head = 0, tail = 0;
    for (int s = 0; s < len; ++s) {
      int const x = o[s];
      if (x < 0) {
        if (head < tail) {
          o[s] = 2 * m + fifo[2 * head];
          L.lag = s - fifo[2 * head + 1] > L.lag ? s - fifo[2 * head + 1] : L.lag;
          ++head;
        } else if (tail == 2 * m) break;
      } else if (x >= 2 * m) {
        fifo[2 * tail] = x;
        fifo[2 * tail + 1] = s;
        ++tail;
      }
    }
  }
}

/// Each rank's passes in slot order: order[6m r + i] is a pass code (see final_weights).
constexpr void v_order(v_layout const& L, vec<int>& order_v) {
  int const p = L.p, m = L.m, len = L.len;
  order_v.assign(static_cast<std::size_t>(6 * p * m), 0);
  for (int r = 0; r < p; ++r) {
    int const* const o = L.occ.data() + len * r;
    int* const out = order_v.data() + 6 * m * r;
    int n = 0;
    for (int s = 0; s < len && n < 6 * m; ++s)
      if (o[s] >= 0) out[n++] = o[s];
  }
}

/// The per-rank order for L.m + k micro-batches from a finished layout whose steady state
/// repeats every 6 slots: k more periods go in at slot X, and the passes after X get
/// micro-batch + k. at[(6 rank + kind) m' + mb] receives the new slots when given.
constexpr void insert_periods(v_layout const& L, int X, int k, vec<int>& order_v, int* at) {
  int const p = L.p, m0 = L.m, len = L.len, m = m0 + k;
  order_v.assign(static_cast<std::size_t>(6 * p * m), 0);
  for (int r = 0; r < p; ++r) {
    int const* const o = L.occ.data() + len * r;
    int* const out = order_v.data() + 6 * m * r;
    int n = 0;
    auto emit = [&](int u, int shift) {
      if (o[u] < 0) return;
      int const kind = o[u] / m0, j = o[u] % m0 + shift;
      out[n++] = kind * m + j;
      if (at) at[(6 * r + kind) * m + j] = u + 6 * shift;
    };
    for (int u = 0; u < X; ++u) emit(u, 0);
    for (int q = 0; q <= k; ++q)
      for (int u = X; u < X + 6; ++u) emit(u, q);
    for (int u = X + 6; u < len && n < 6 * m; ++u) emit(u, k);
  }
}

/// The order for m > L.m micro-batches by repeating the steady state (see insert_periods) at
/// the first slot X around which every rank is busy and repeats itself (pass for pass, one
/// micro-batch later, 6 slots on) for `reach` = 6 + the longest I-to-W distance slots on
/// either side. The layout for a few periods more is checked against every dependency (F, I
/// and W each after its input; longer runs differ only by more of the same periods). False
/// when there is no such X or a check fails.
constexpr bool extend_order(v_layout const& L, int m, vec<int>& order_v) {
  int const p = L.p, m0 = L.m, len = L.len, reach = 6 + L.lag;
  int const* const occ = L.occ.data();
  int run = 0, X = -1;
  for (int u = 0; u + 6 < len && X < 0; ++u) {
    bool same = true;
    for (int r = 0; r < p && same; ++r) {
      int const a = occ[len * r + u], b = occ[len * r + u + 6];
      same = a >= 0 && b >= 0 && b / m0 == a / m0 && b % m0 == a % m0 + 1;
    }
    run = same ? run + 1 : 0;
    if (run == 2 * reach + 6) X = u + 1 - reach - 6;
  }
  if (X < 0) return false;
  int const kc = (m - m0) < reach / 6 + 3 ? m - m0 : reach / 6 + 3, mc = m0 + kc;
  vec<int> at_v(static_cast<std::size_t>(6 * p * mc), -1);
  int const* const at = at_v.data();
  insert_periods(L, X, kc, order_v, at_v.data());
  for (int r = 0; r < p; ++r)
    for (int j = 0; j < mc; ++j) {
      int const* const a = at + j; // a[(6 rank + kind) mc]
      int const f0 = a[6 * r * mc], f1 = a[(6 * r + 1) * mc], i1 = a[(6 * r + 2) * mc], i0 = a[(6 * r + 3) * mc];
      if (f0 < 0 || f1 < 0 || i1 < 0 || i0 < 0 || a[(6 * r + 4) * mc] <= i1 || a[(6 * r + 5) * mc] <= i0) return false;
      if (r > 0 && f0 <= a[6 * (r - 1) * mc]) return false;
      if (f1 <= (r == p - 1 ? f0 : a[(6 * (r + 1) + 1) * mc])) return false;
      if (i1 <= (r == 0 ? f1 : a[(6 * (r - 1) + 2) * mc])) return false;
      if (i0 <= (r == p - 1 ? i1 : a[(6 * (r + 1) + 3) * mc])) return false;
    }
  if (kc < m - m0) insert_periods(L, X, m - m0, order_v, nullptr);
  return true;
}

/// The table of a per-rank order (see v_order).
constexpr table v_table(int p, int m, vec<int> const& order) {
  table t = make_table(p, m, 2, placement::v_shape);
  t.split_backward = true;
  for (int r = 0; r < p; ++r) {
    t.lists[static_cast<std::size_t>(r)].reserve(static_cast<std::size_t>(6 * m));
    int const* const o = order.data() + 6 * m * r;
    int const s0 = r, s1 = 2 * p - 1 - r;
    for (int i = 0; i < 6 * m; ++i) {
      int const x = o[i];
      int const k = x / m, j = x % m;
      int const stage = (k == 0 || k == 3 || k == 5) ? s0 : s1;
      push(t, k < 2 ? op::forward : (k < 4 ? op::backward_input : op::backward_weight), stage, j);
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
  vec<int> end_v(P * 4 * static_cast<std::size_t>(m), -1), pos_v(P, 0), free_v(P, 0), first_v(P, -1);
  int *const e = end_v.data(), *const pos = pos_v.data(), *const fr = free_v.data(), *const first = first_v.data();
  int left = 6 * p * m;
  while (left > 0) {
    int const before = left;
    for (int r = 0; r < p; ++r) {
      int const* const o = order.data() + 6 * m * r;
      while (pos[r] < 6 * m) {
        int const x = o[pos[r]];
        int const k = x / m, j = x % m;
        int ready = 0;
        if (k == 0) ready = r == 0 ? 0 : e[(4 * (r - 1)) * m + j];
        else if (k == 1) ready = r == p - 1 ? e[(4 * r) * m + j] : e[(4 * (r + 1) + 1) * m + j];
        else if (k == 2) ready = r == 0 ? e[(4 * r + 1) * m + j] : e[(4 * (r - 1) + 2) * m + j];
        else if (k == 3) ready = r == p - 1 ? e[(4 * r + 2) * m + j] : e[(4 * (r + 1) + 3) * m + j];
        else ready = e[(4 * r + k - 2) * m + j];
        if (ready < 0) break;
        int const start = ready > fr[r] ? ready : fr[r];
        if (first[r] < 0) first[r] = start;
        fr[r] = start + 1;
        if (k < 4) e[(4 * r + k) * m + j] = start + 1;
        ++pos[r];
        --left;
      }
    }
    if (left == before) return {};
  }
  unit_times u{0, 0};
  for (int r = 0; r < p; ++r) {
    u.span = fr[r] - first[r] > u.span ? fr[r] - first[r] : u.span;
    u.makespan = fr[r] > u.makespan ? fr[r] : u.makespan;
  }
  return u;
}

/// The finished slot layout of a V-shape schedule built from a building block; false when
/// the block's passes collide or its memory before squeezing exceeds `budget`
/// chunk-activations on some rank:
/// 1. micro-batch j's passes at the block's slots + 6j;
/// 2. each rank's W's into its free slots, oldest first;
/// 3. warm-up and cool-down squeezed with those W's in place; the W's removed;
/// 4. cool-down squeezed again with the W's implicit; the W's put back, oldest first.
/// No step raises a rank's peak memory, so the result stays within the block's peak.
constexpr bool v_block_layout(v_block const& blk, int p, int m, int budget, v_layout& L) {
  vec<int> base_v(static_cast<std::size_t>(4 * p), 0);
  block_slots(blk, p, base_v.data());
  if (!block_usable(base_v.data(), p)) return false;
  L = v_layout{};
  L.p = p;
  L.m = m;
  if (!lay_out(L, base_v.data())) return false;
  for (int r = 0; r < p; ++r)
    if (memory_profile(L, r, 0, 0, 0, true, nullptr, nullptr) > budget) return false;
  place_weights(L);
  squeeze(L, true);
  drop_weights(L);
  squeeze(L, false);
  final_weights(L);
  return true;
}

/// Blocks tried besides a family's own, found by a search over chain steps and turns at
/// F = B = W = 1 (each is used only where its passes do not collide and it fits the budget):
/// - V-Half: steps (1, 2) with a gap of 1 or 4 at the loss (one idle slot less than V-Half's
///   own block for odd p >= 9 and even p >= 16), steps (2, 1) turning early (p = 2);
/// - V-Min: the gap 5 at the loss (four idle slots less for p mod 3 = 2, p >= 5), and for
///   p <= 3, where V-Min's memory equals V-Half's, the V-Half candidates;
/// - with few micro-batches the memory stays low and blocks of the other family fit: V-Half
///   tries V-Min's chains (gaps 1, 3, 5) for m <= p + 1, V-Min tries the other chains for m <= 6.
constexpr int v_candidates(bool half, int p, int m, v_block* out) {
  int n = 0;
  if (half || p <= 3) {
    out[n++] = v_block{1, 2, 1, 2, 2, p % 2 == 0 ? 4 : 1, 1};
    if (p % 2 == 0) out[n++] = v_block{2, 1, 2, 1, 2, 4, 1};
  }
  if (!half) out[n++] = v_block{1, 1, 1, 1, 1, 5, 1};
  if (half && m <= p + 1)
    for (int t : {1, 3, 5}) out[n++] = v_block{1, 1, 1, 1, 1, t, 1};
  if (!half && m <= 6)
    for (v_block const& b : {v_block{1, 1, 1, 1, 1, 1, 1}, v_block{1, 1, 1, 1, 1, 3, 1}, v_block{1, 2, 1, 2, 2, 1, 1},
                             v_block{1, 2, 1, 2, 2, 4, 1}, v_block{2, 1, 2, 1, 1, 4, 2}})
      out[n++] = b;
  return n;
}

/// Micro-batches at which candidate blocks are built and compared: from about 2p on the idle
/// time no longer changes, and longer runs are such a run with more steady-state periods.
constexpr int v_trial_microbatches(int p, int m) { return m < 2 * p + 6 ? m : 2 * p + 6; }

/// The family's own block, then its candidates, each built for (p, min(m, 2p + 6)) and run at
/// unit costs; the shortest largest rank span (then makespan) within `budget` wins, ties to
/// the earlier block. For more micro-batches the winner's steady state is repeated (see
/// extend_order; should that fail, or without `repeat`, the winner is built again for twice
/// as many micro-batches and so on up to m: the same order, at a higher cost in constant
/// evaluation). The order depends on (p, m) only.
constexpr table v_shape_schedule(bool half, int p, int m, int budget, bool repeat = true) {
  int const m0 = v_trial_microbatches(p, m);
  v_block blocks[16] = {half ? v_half_block(p) : v_min_block(p)};
  int const n = 1 + v_candidates(half, p, m, blocks + 1);
  v_layout best, L;
  vec<int> order;
  v_block best_block{};
  unit_times best_u{};
  for (int i = 0; i < n; ++i) {
    if (!v_block_layout(blocks[i], p, m0, budget, L)) continue;
    v_order(L, order);
    unit_times u = unit_run(p, m0, order);
    if (u.span < 0) continue;
    if (best_u.span < 0 || u.span < best_u.span || (u.span == best_u.span && u.makespan < best_u.makespan)) {
      best = static_cast<v_layout&&>(L);
      best_block = blocks[i];
      best_u = u;
    }
  }
  if (best_u.span < 0) return failed({errc::memory_bound_exceeded, -1, -1, -1, -1, "no V-shape building block fits"});
  int mb = m0;
  while (mb < m && !(repeat && extend_order(best, m, order))) {
    mb = repeat && 2 * mb < m ? 2 * mb : m;
    v_block_layout(best_block, p, mb, budget, best);
  }
  if (mb == m) v_order(best, order);
  table t = v_table(p, m, order);
  t.memory_bound_chunks = budget;
  return t;
}

/// The textbook order of a building block (schedules.md, "V-shape family", without its
/// last step): micro-batch j's passes at the block's slots + 6j, each free slot taking the
/// oldest pending W (one whose I ran in an earlier slot), the W's left at the end. A failed
/// table when the block's passes collide.
constexpr table v_block_plain(v_block const& blk, int p, int m) {
  vec<int> base_v(static_cast<std::size_t>(4 * p), 0);
  block_slots(blk, p, base_v.data());
  v_layout L{};
  L.p = p;
  L.m = m;
  if (!block_usable(base_v.data(), p) || !lay_out(L, base_v.data()))
    return failed({errc::memory_bound_exceeded, -1, -1, -1, -1, "the building block's passes collide"});
  final_weights(L);
  vec<int> order;
  v_order(L, order);
  return v_table(p, m, order);
}

/// V-Half (half) or V-Min for params `pr` within `budget` chunk-activations: the building-
/// block order of v_shape_schedule, which is made for F = B = W and no latency, and, where
/// the costs are other or m < 2p (the blocks' warm-up and cool-down then dominate), more
/// candidates timed under pr.cost: the family's own block squeezed (the reference greedy's
/// order, when another block won at unit costs) and laid out plainly (the textbook order,
/// v_block_plain), and the winner and the plain order with their W's moved into the waits
/// for late inputs (float_weights_into_waits, at most `budget`). The shortest largest rank span (then
/// makespan) wins, so the result is never longer than the textbook order under any costs
/// and latency, at no more than `budget` (tests/cpu/schedules_textbook.cpp).
constexpr table v_shape_for_costs(bool half, params const& pr, int budget) {
  int const p = pr.p, m = pr.m;
  table ours = v_shape_schedule(half, p, m, budget);
  cost_model const& c = pr.cost;
  bool const balanced = c.f == c.b && c.b == c.w && c.c == 0;
  if (!ours.ok() || (balanced && m >= 2 * p)) return ours;
  split_timing best_time = time_split_order(ours, c);
  table plain = v_block_plain(half ? v_half_block(p) : v_min_block(p), p, m);
  floated_order floated_ours = float_weights_into_waits(ours, c, budget);
  table winner = static_cast<table&&>(ours);
  auto consider = [&](table&& t, split_timing const& time) {
    if (t.ok() && time.ok && peak_chunks(t) <= budget && shorter(time, best_time)) {
      winner = static_cast<table&&>(t);
      best_time = time;
    }
  };
  consider(static_cast<table&&>(floated_ours.t), floated_ours.time);
  {
    // the family's own block with the reference's last step (squeezed): the reference greedy's
    // order, when another block won at unit costs
    v_layout L{};
    if (v_block_layout(half ? v_half_block(p) : v_min_block(p), p, m, budget, L)) {
      vec<int> order;
      v_order(L, order);
      table own = v_table(p, m, order);
      split_timing const own_time = time_split_order(own, c);
      consider(static_cast<table&&>(own), own_time);
    }
  }
  if (plain.ok() && peak_chunks(plain) <= budget) {
    split_timing const plain_time = time_split_order(plain, c);
    floated_order floated_plain = float_weights_into_waits(plain, c, peak_chunks(plain));
    consider(static_cast<table&&>(plain), plain_time);
    consider(static_cast<table&&>(floated_plain.t), floated_plain.time);
  }
  winner.memory_bound_chunks = budget;
  return winner;
}

/// The reference's construction (v_shape_reference.hpp) with the family's memory bound,
/// `budget` chunk-activations.
constexpr table reference_v_candidate(bool half, params const& pr, int budget) {
  table t = reference_v_order(pr.p, pr.m, !half);
  t.memory_bound_chunks = budget;
  return t;
}

/// Whether the reference's construction `alt` beats `own` under `cost`: it fits `budget`
/// chunk-activations and its list-order run has a shorter largest rank span (or an equal one
/// and a shorter makespan).
constexpr bool reference_v_order_shorter(table const& own, table const& alt, cost_model const& cost, int budget) {
  if (!own.ok() || !alt.ok() || peak_chunks(alt) > budget) return false;
  split_timing const a = time_split_order(alt, cost);
  return a.ok && shorter(a, time_split_order(own, cost));
}

/// v_shape_for_costs and the reference repository's construction (v_shape_reference.hpp),
/// the shorter (reference_v_order_shorter). The V-shape families' generate().
constexpr table v_shape_with_reference(bool half, params const& pr, int budget) {
  table own = v_shape_for_costs(half, pr, budget);
  table alt = reference_v_candidate(half, pr, budget);
  if (reference_v_order_shorter(own, alt, pr.cost, budget)) return alt;
  return own;
}

} // namespace detail

/// V-Half (Qi et al. 2024, V placement, backward split into I and W): peak activation
/// memory floor((p+2)/2) in the reference unit on every rank, about half of 1F1B's, for
/// any m >= 1. Built from building blocks (detail::v_block_layout): V-Half's own block and a
/// few others that fit the same memory (detail::v_candidates) are laid out, squeezed and run
/// at unit costs, and the one with the fewest idle slots on the worst rank is kept (idle
/// slots: with F = B = W = 1 per chunk and no latency, a rank's span from its first pass to
/// its last, minus its 6m busy slots). With other costs or latency, or m < 2p, the textbook
/// block order and W's moved into waits are timed as well (detail::v_shape_for_costs): never
/// longer than the textbook order.
struct v_half_family {
  static constexpr const char* name = "v-half";
  static constexpr int budget(params const& pr) { return 2 * ((pr.p + 2) / 2); }
  static constexpr diagnostic check(params const& pr) { return detail::check_v_shape(pr); }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    return detail::v_shape_with_reference(true, pr, budget(pr));
  }
  // the same in two constant evaluations for the compiler (split_generator)
  static constexpr table generate_own(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    return detail::v_shape_for_costs(true, pr, budget(pr));
  }
  static constexpr table alternative(params const& pr) { return detail::reference_v_candidate(true, pr, budget(pr)); }
  static constexpr bool prefer_alternative(table const& own, table const& alt, params const& pr) {
    return detail::reference_v_order_shorter(own, alt, pr.cost, budget(pr));
  }
};

/// V-Min: peak activation memory floor((p+4)/3) in the reference unit on every rank (about
/// a third of 1F1B's), for any m >= 1; built as V-Half, from V-Min's block and the others
/// that fit, and timed against the textbook order and the reference's construction as
/// V-Half (detail::v_shape_for_costs, detail::v_shape_with_reference).
struct v_min_family {
  static constexpr const char* name = "v-min";
  static constexpr int budget(params const& pr) { return 2 * ((pr.p + 4) / 3); }
  static constexpr diagnostic check(params const& pr) { return detail::check_v_shape(pr); }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    return detail::v_shape_with_reference(false, pr, budget(pr));
  }
  static constexpr table generate_own(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    return detail::v_shape_for_costs(false, pr, budget(pr));
  }
  static constexpr table alternative(params const& pr) { return detail::reference_v_candidate(false, pr, budget(pr)); }
  static constexpr bool prefer_alternative(table const& own, table const& alt, params const& pr) {
    return detail::reference_v_order_shorter(own, alt, pr.cost, budget(pr));
  }
};

template <class... Ps> using v_half = schedule<v_half_family, Ps...>;
template <class... Ps> using v_min = schedule<v_min_family, Ps...>;

} // namespace pipesched
