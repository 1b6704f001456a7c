// Textbook per-rank orders of the cost-aware families, written from shared/reference/schedules.md
// (and, for ZB-V, from PyTorch's ZBV, which schedules.md names as the cost-blind textbook order)
// and independent of the generators in include/pipesched/schedules/: built with make_table and
// push only, simulated with pipesched::simulate. tests/cpu/schedules_textbook.cpp compares the
// generators against them; tests/cpu/schedules_interleaved.cpp and bench/schedule_quality.cpp
// use the interleaved rule. Every builder follows its source literally: no padding, no search,
// no cost model. A textbook order may wait on itself (the plain interleaved rule does for some
// short groups); callers simulate it and leave such cases out.
#pragma once

#include <algorithm>
#include <deque>
#include <utility>
#include <vector>

#include "pipesched/core/table.hpp"

namespace textbook {

using pipesched::op;
using pipesched::placement;
using pipesched::table;

/// Interleaved 1F1B, schedules.md "Interleaved 1F1B (Megatron virtual pipeline)", the plain
/// rule: forwards group by group (groups of g, the last takes the remainder), every chunk
/// 0..v-1 of a group, within a chunk every micro-batch of the group; the k-th backward is the
/// k-th forward with its chunk mirrored; rank r warms up with min(2(p-r-1) + (v-1)g, m v)
/// forwards, then (forward, backward) pairs, then the remaining backwards. Loop placement
/// (schedules.md, Placements): chunk k of rank r is stage k p + r.
inline table interleaved(int p, int m, int v, int g) {
  table t = pipesched::make_table(p, m, v, placement::loop);
  std::vector<std::pair<int, int>> list; // (chunk, micro-batch)
  for (int first = 0; first < m; first += g)
    for (int c = 0; c < v; ++c)
      for (int j = first; j < std::min(first + g, m); ++j) list.emplace_back(c, j);
  int const n = static_cast<int>(list.size()); // v m
  for (int r = 0; r < p; ++r) {
    int const w = std::min(2 * (p - r - 1) + (v - 1) * g, m * v);
    auto fwd = [&](int i) { pipesched::push(t, op::forward, list[i].first * p + r, list[i].second); };
    auto bwd = [&](int i) { pipesched::push(t, op::backward, (v - 1 - list[i].first) * p + r, list[i].second); };
    for (int i = 0; i < w; ++i) fwd(i);
    for (int i = 0; i < n - w; ++i) {
      fwd(w + i);
      bwd(i);
    }
    for (int i = n - w; i < n; ++i) bwd(i);
  }
  return t;
}

/// Megatron's default group size (schedules.md: "Megatron's default g = p"; with m < p one
/// group of m).
inline int megatron_group(int p, int m) { return std::min(p, m); }
/// Megatron accepts g when p <= g <= m and (m mod g = 0 or m mod g >= p) (schedules.md).
inline bool megatron_accepts(int p, int m, int g) { return p <= g && g <= m && (m % g == 0 || m % g >= p); }
/// PyTorch's group size g = m / max(1, floor(m/p)) (schedules.md); 0 when PyTorch refuses m
/// (the division is not exact).
inline int pytorch_group(int p, int m) {
  int const rounds = std::max(1, m / p);
  return m % rounds == 0 ? m / rounds : 0;
}

/// 1F1B's rank r with the backward split into I and W, W's deferred by `defer` I's
/// (schedules.md, 1F1B: warm-up w = min(p-r-1, m), then m-w pairs (F, I), then w I's; Zero
/// bubble, ZB-H1: "the 1F1B order with rank r's weight passes deferred by r into the idle
/// tail"): after I(k) comes W(k - defer) when k >= defer; the W's left run at the end.
inline void one_f_one_b_split(table& t, int p, int m, int r, int defer) {
  int const w = std::min(p - r - 1, m);
  int next_w = 0;
  auto input = [&](int k) {
    pipesched::push(t, op::backward_input, r, k);
    if (k >= defer) pipesched::push(t, op::backward_weight, r, next_w++);
  };
  for (int j = 0; j < w; ++j) pipesched::push(t, op::forward, r, j);
  for (int k = 0; k < m - w; ++k) {
    pipesched::push(t, op::forward, r, w + k);
    input(k);
  }
  for (int k = m - w; k < m; ++k) input(k);
  while (next_w < m) pipesched::push(t, op::backward_weight, r, next_w++);
}

/// ZB-H1 (schedules.md, Zero bubble, one chunk).
inline table zb_h1(int p, int m) {
  table t = pipesched::make_table(p, m, 1, placement::loop);
  t.split_backward = true;
  for (int r = 0; r < p; ++r) one_f_one_b_split(t, p, m, r, r);
  return t;
}

/// ZB-H2, cost-blind (schedules.md, Zero bubble: "extra warm-up forwards and W's fill the
/// tail; bubble (p-1)(F+B-2W), zero when F+B <= 2W; memory 2p-1 to 2p"; the "1F1B-like ZB-H2"
/// of "How the reference greedy generators use costs"): the order the paper's rule gives in
/// unit time steps (F = B = W = 1, c = 0), whatever the real costs: at every step each rank
/// runs the I whose gradient has arrived, else its next forward while it holds fewer than
/// 2p-1 activations, else its oldest pending W; I's and forwards in micro-batch order.
/// Rank 0 holds 2p-1 at most (the reference's memory).
inline table zb_h2(int p, int m) {
  table t = pipesched::make_table(p, m, 1, placement::loop);
  t.split_backward = true;
  int const cap = 2 * p - 1, never = 1 << 30;
  // step at which F / I of (rank, micro-batch) ends; never: not run yet
  std::vector<int> f_end(static_cast<std::size_t>(p * m), never), i_end(f_end);
  std::vector<int> nf(static_cast<std::size_t>(p), 0), ni(nf), nw(nf);
  auto at = [&](std::vector<int>& v, int r, int j) -> int& { return v[static_cast<std::size_t>(r * m + j)]; };
  for (int step = 0, left = 3 * p * m; left > 0; ++step) {
    // decide every rank's pass from what had ended by the start of this step, then run them
    std::vector<std::pair<op, int>> run(static_cast<std::size_t>(p), {op::forward, -1});
    for (int r = 0; r < p; ++r) {
      int const jf = nf[r], ji = ni[r];
      if (ji < jf && (r == p - 1 || at(i_end, r + 1, ji) <= step)) run[r] = {op::backward_input, ji};
      else if (jf < m && jf - nw[r] < cap && (r == 0 || at(f_end, r - 1, jf) <= step)) run[r] = {op::forward, jf};
      else if (nw[r] < ji) run[r] = {op::backward_weight, nw[r]};
    }
    for (int r = 0; r < p; ++r) {
      auto const [kind, j] = run[r];
      if (j < 0) continue;
      pipesched::push(t, kind, r, j);
      --left;
      if (kind == op::forward) at(f_end, r, nf[r]++) = step + 1;
      else if (kind == op::backward_input) at(i_end, r, ni[r]++) = step + 1;
      else ++nw[r];
    }
  }
  return t;
}

/// ZB-V as PyTorch builds it (torch.distributed.pipelining ScheduleZBVZeroBubble,
/// _calculate_single_rank_operations, torch 2.15; schedules.md names it the cost-blind
/// textbook ZB-V): V placement (rank r holds stage r and 2p-1-r), the order built for
/// n = max(2p-1, m) micro-batches, then the passes of micro-batches >= m dropped.
inline table zb_v(int p, int m) {
  table t = pipesched::make_table(p, m, 2, placement::v_shape);
  t.split_backward = true;
  int const n = std::max(2 * p - 1, m);
  for (int r = 0; r < p; ++r) {
    int const s0 = r, s1 = 2 * p - 1 - r;
    auto add = [&](op kind, int s, int j) {
      if (j < m) pipesched::push(t, kind, s, j);
    };
    int f0 = 0, f1 = 0, b0 = 0, b1 = 0;
    for (int i = 0; i < 2 * (p - r) - 1; ++i) add(op::forward, s0, f0++);
    for (int i = 0; i < r; ++i) {
      add(op::forward, s1, f1++);
      add(op::forward, s0, f0++);
    }
    for (int i = 0; i < p - r; ++i) {
      add(op::forward, s1, f1++);
      add(op::backward_input, s1, b1);
      add(op::backward_weight, s1, b1++);
    }
    while (f1 < f0 || f0 < n) {
      if (f0 < n) add(op::forward, s0, f0++);
      add(op::backward_input, s0, b0);
      add(op::backward_weight, s0, b0++);
      add(op::forward, s1, f1++);
      add(op::backward_input, s1, b1);
      add(op::backward_weight, s1, b1++);
    }
    int w0 = b0, w1 = b1;
    for (int i = 0; i < r; ++i) {
      add(op::backward_input, s0, b0++);
      add(op::backward_input, s1, b1++);
    }
    for (int i = 0; i < p - r; ++i) {
      add(op::backward_input, s0, b0++);
      add(op::backward_weight, s0, w0++);
    }
    while (w1 < b1) add(op::backward_weight, s1, w1++);
    while (w0 < b0) add(op::backward_weight, s0, w0++);
  }
  return t;
}

/// V-Half (half = true) or V-Min from their building blocks, schedules.md "V-shape family":
/// micro-batch 0's passes on rank i get the slots of the reference's table (F chunk-0
/// forward, f chunk-1 forward, B chunk-1 input backward, b chunk-0 input backward); micro-batch
/// j's are those + 6j; then each idle slot takes the oldest pending W (one whose I ran in an
/// earlier slot), and the W's left run at the end. The reference's last step (moving warm-up
/// and cool-down passes to earlier free slots without raising the peak) is left out: it only
/// ever shortens the order, so the order here is no shorter than the reference's.
inline table v_block(bool half, int p, int m) {
  table t = pipesched::make_table(p, m, 2, placement::v_shape);
  t.split_backward = true;
  for (int i = 0; i < p; ++i) {
    int slot[4];
    if (half) {
      int const g = p % 2 == 0 ? 3 : 0;
      slot[0] = 2 * i, slot[1] = 3 * p - i - 2, slot[2] = 3 * p + g + 2 * i - 1, slot[3] = 6 * p + g - i - 2;
    } else {
      int const g = p % 3 == 0 ? 2 : 0;
      slot[0] = i, slot[1] = 2 * p - i - 1, slot[2] = 2 * p + g + i, slot[3] = 4 * p + g - i - 1;
    }
    int const stage[4] = {i, 2 * p - 1 - i, 2 * p - 1 - i, i};
    op const kind[4] = {op::forward, op::forward, op::backward_input, op::backward_input};
    int const end = slot[3] + 6 * (m - 1) + 1;
    std::vector<int> at(static_cast<std::size_t>(end), -1); // 4j + pass, or -1: idle
    for (int j = 0; j < m; ++j)
      for (int k = 0; k < 4; ++k) at[static_cast<std::size_t>(slot[k] + 6 * j)] = 4 * j + k;
    std::deque<std::pair<int, int>> pending; // W's (stage, micro-batch), oldest first
    for (int s = 0; s < end; ++s) {
      int const x = at[static_cast<std::size_t>(s)];
      if (x < 0) {
        if (!pending.empty()) {
          pipesched::push(t, op::backward_weight, pending.front().first, pending.front().second);
          pending.pop_front();
        }
        continue;
      }
      int const j = x / 4, k = x % 4;
      pipesched::push(t, kind[k], stage[k], j);
      if (k >= 2) pending.emplace_back(stage[k], j);
    }
    for (auto const& [s, j] : pending) pipesched::push(t, op::backward_weight, s, j);
  }
  return t;
}

/// Looped BFS, schedules.md "Looped BFS" (PyTorch's ScheduleLoopedBFS): loop placement; rank r
/// runs, for each of its stages ascending, the forwards of micro-batches 0..m-1, then for each
/// of its stages descending the fused backwards of micro-batches m-1..0. Written from the
/// rank's stage set (stages s with s mod p = r), not from chunk indices.
inline table looped_bfs(int p, int m, int v) {
  table t = pipesched::make_table(p, m, v, placement::loop);
  for (int r = 0; r < p; ++r) {
    std::vector<int> mine;
    for (int s = 0; s < p * v; ++s)
      if (s % p == r) mine.push_back(s); // ascending
    for (int s : mine)
      for (int j = 0; j < m; ++j) pipesched::push(t, op::forward, s, j);
    for (auto it = mine.rbegin(); it != mine.rend(); ++it)
      for (int j = m - 1; j >= 0; --j) pipesched::push(t, op::backward, *it, j);
  }
  return t;
}

/// Whether PyTorch accepts m for its interleaved zero bubble: rounds = max(1, floor(m/p))
/// must divide m (schedules.md, "Interleaved zero bubble").
inline bool interleaved_zb_accepts(int p, int m) { return m % std::max(1, m / p) == 0; }

/// Interleaved zero bubble as schedules.md "Interleaved zero bubble" transcribes PyTorch's
/// ScheduleInterleavedZeroBubble, step by step: rounds = max(1, floor(m/p)), mpr = m/rounds;
/// rank r has w_r = min((v-1) mpr + (p-1-r), m v) warm-up steps; step i < v m runs a forward of
/// stage ((i / mpr) mod v) p + r, step i >= w_r an input backward of stage
/// (v-1 - ((i - w_r)/mpr) mod v) p + r; within a stage micro-batches are taken in order (a
/// counter per stage and pass, as PyTorch keeps them); each step's forward comes before its
/// backward; the k-th input backward (k from 0) is followed, when k >= r, by the W of the
/// oldest input backward still without one; the W's left run at the end. Only for m that
/// PyTorch accepts (interleaved_zb_accepts).
inline table interleaved_zb(int p, int m, int v) {
  table t = pipesched::make_table(p, m, v, placement::loop);
  t.split_backward = true;
  int const rounds = std::max(1, m / p), mpr = m / rounds, total = m * v;
  for (int r = 0; r < p; ++r) {
    int const w = std::min((v - 1) * mpr + (p - 1 - r), total);
    std::vector<int> next_f(static_cast<std::size_t>(p * v), 0), next_i(next_f);
    std::deque<std::pair<int, int>> pending; // (stage, micro-batch) of I's without their W
    for (int i = 0; i < total + w; ++i) { // w warm-up steps, v m - w steps with both, w cool-down
      if (i < total) {
        int const s = ((i / mpr) % v) * p + r;
        pipesched::push(t, op::forward, s, next_f[static_cast<std::size_t>(s)]++);
      }
      if (i >= w) {
        int const k = i - w;
        int const s = (v - 1 - (k / mpr) % v) * p + r;
        int const j = next_i[static_cast<std::size_t>(s)]++;
        pipesched::push(t, op::backward_input, s, j);
        pending.emplace_back(s, j);
        if (k >= r) {
          pipesched::push(t, op::backward_weight, pending.front().first, pending.front().second);
          pending.pop_front();
        }
      }
    }
    for (auto const& [s, j] : pending) pipesched::push(t, op::backward_weight, s, j);
  }
  return t;
}

} // namespace textbook
