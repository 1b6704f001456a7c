// pipesched: DualPipeV (DeepSeek-V3; PyTorch's ScheduleDualPipeV) — V placement with
// overlapped forward-backward pairs.
#pragma once

#include "pipesched/pipeline/schedule.hpp"

namespace pipesched {

namespace detail {

/// The eight phases on one rank, in DualPipe's terms: `hp` ranks in the (half) pipeline, this
/// rank at position `h` of it, `mc` micro-batches through each of its two chunks; the rank's
/// chunk 0 is stage s0 with micro-batches base0.., its chunk 1 stage s1 with base1..
/// (DualPipeV: hp = p, h = r, mc = m, both bases 0). The rank at h = hp - 1 runs its first
/// (F(s0), B(s1)) of phase 4 apart.
constexpr void dualpipe_phases(table& t, int r, int hp, int h, int mc, int s0, int s1, int base0, int base1) {
  int const p = hp, m = mc;
  // next micro-batch (from 0) of F(s0), F(s1), B/I(s0), B/I(s1)
  int nf0 = 0, nf1 = 0, nb0 = 0, nb1 = 0;
  // pending W's: stages and micro-batches of the I's not yet closed, oldest first
  vec<int> wq_stage, wq_mb;
  std::size_t whead = 0;
  auto& list = t.lists[static_cast<std::size_t>(r)];
  auto fwd = [&](int chunk) -> bool {
    int& n = chunk == 0 ? nf0 : nf1;
    if (n >= m) return false;
    push(t, op::forward, chunk == 0 ? s0 : s1, (chunk == 0 ? base0 : base1) + n++);
    return true;
  };
  auto bwd = [&](int chunk, bool split) -> bool {
    int& n = chunk == 0 ? nb0 : nb1;
    if (n >= m) return false;
    int const s = chunk == 0 ? s0 : s1;
    int const j = (chunk == 0 ? base0 : base1) + n;
    push(t, split ? op::backward_input : op::backward, s, j);
    if (split) {
      wq_stage.push_back(s);
      wq_mb.push_back(j);
    }
    ++n;
    return true;
  };
  auto weight = [&] {
    if (whead >= wq_stage.size()) return;
    push(t, op::backward_weight, wq_stage[whead], wq_mb[whead]);
    ++whead;
  };
  // F(chunk f) overlapped with B(chunk b): flagged when both halves are emitted
  auto overlapped = [&](int f, int b) {
    bool const has_f = fwd(f);
    bool const has_b = bwd(b, false);
    if (has_f && has_b) list[list.size() - 2].flags = overlap_next;
  };
  int const step1 = 2 * (p - h - 1), step2 = h + 1, step3 = p - h - 1;
  int const step4 = m - 2 * p + h + 1 > 0 ? m - 2 * p + h + 1 : 0;
  int const step5 = p - h - 1, step6 = h + 1, step7 = p - h - 1;
  for (int i = 0; i < step1; ++i) fwd(0);
  for (int i = 0; i < step2; ++i) {
    fwd(0);
    fwd(1);
  }
  for (int i = 0; i < step3; ++i) {
    bwd(1, true);
    weight();
    fwd(1);
  }
  for (int i = 0; i < step4; ++i) {
    if (i == 0 && h == p - 1) {
      fwd(0);
      bwd(1, false);
    } else {
      overlapped(0, 1);
    }
    overlapped(1, 0);
  }
  for (int i = 0; i < step5; ++i) {
    bwd(1, false);
    overlapped(1, 0);
  }
  bool zb = false;
  for (int i = 0; i < step6; ++i) {
    if (i == step6 / 2 && h % 2 == 1) zb = true;
    bwd(1, zb);
    if (i == step6 / 2 && h % 2 == 0) zb = true;
    bwd(0, zb);
  }
  for (int i = 0; i < step7; ++i) {
    weight();
    bwd(0, true);
  }
  while (whead < wq_stage.size()) weight();
}

/// Rank r's DualPipeV order, s0 = r (chunk 0) and s1 = 2p-1-r (chunk 1). The eight phases
/// of the reference, each pass of a (kind, chunk) taking that kind's next micro-batch:
///   1. 2(p-r-1) x F(s0)
///   2. (r+1) x (F(s0), F(s1))
///   3. (p-r-1) x (I(s1), W of the oldest pending I, F(s1))
///   4. (m-2p+r+1) x ((F(s0); B(s1)) overlapped, (F(s1); B(s0)) overlapped) — the last
///      rank's very first (F(s0), B(s1)) is not overlapped
///   5. (p-r-1) x (B(s1), (F(s1); B(s0)) overlapped)
///   6. (r+1) x (B(s1), B(s0)), I instead of B from step (r+1)/2 on: before s1's pass when r
///      is odd, before s0's when r is even
///   7. (p-r-1) x (W of the oldest pending I, I(s0))
///   8. the pending W's, oldest first ((r+1) of them when m >= 2p).
/// Every (kind, chunk) runs m passes over phases 1-7 when m >= 2p - r - 1. Below that the
/// count of phase 4 is negative: it is taken as 0, and each (kind, chunk) stops emitting once
/// its m passes are out (a pair one of whose halves is gone is its other half alone). Each
/// kind's totals over phases 1-7 are then 2p-r-1 > m, so every pass is still emitted, in the
/// same relative order as a longer run's prefix.
constexpr void dualpipe_v_rank(table& t, int r) {
  dualpipe_phases(t, r, t.ranks, r, t.microbatches, r, 2 * t.ranks - 1 - r, 0, 0);
}

} // namespace detail

/// DualPipeV: V placement (rank r holds stages r and 2p-1-r), DeepSeek's eight phases with
/// overlapped forward-backward pairs in phases 4 and 5 and the zero-bubble split (I then W)
/// in the ramp-up and the cool-down. Memory p + 1/2 units (2p + 1 chunk-activations).
/// Reference (pairs costing F + B, F = B = W = 1 per chunk): p = 4, m = 8: makespan 51,
/// memory 4.5; m = 10: 63. PyTorch needs m >= 2p; here any m >= 1 (phase 4 shrinks to
/// nothing and each kind of pass stops at m, see dualpipe_v_rank).
struct dualpipe_v_family {
  static constexpr const char* name = "dualpipe-v";
  static constexpr diagnostic check(params const& pr) {
    if (auto d = check_common(pr)) return d;
    if (pr.v != 0 && pr.v != 2) return {errc::needs_two_chunks};
    return {};
  }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    table t = make_table(pr.p, pr.m, 2, placement::v_shape);
    t.split_backward = true;
    for (int r = 0; r < pr.p; ++r) detail::dualpipe_v_rank(t, r);
    t.memory_bound_chunks = 2 * pr.p + 1;
    return t;
  }
};

template <class... Ps> using dualpipe_v = schedule<dualpipe_v_family, Ps...>;

} // namespace pipesched
