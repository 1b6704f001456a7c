// pipesched: interleaved zero bubble (PyTorch's interleaved zero bubble, ZB1P over v chunks).
#pragma once

#include "pipesched/core/vec.hpp"
#include "pipesched/pipeline/schedule.hpp"

namespace pipesched {

namespace detail {

/// Group sizes of the interleaved zero-bubble order: rounds = max(1, floor(m/p)) groups,
/// sizes as equal as possible, the larger ones first. `first` is the first group's size.
struct izb_groups {
  int rounds = 1, small = 1, large_count = 0;
  constexpr int first() const { return large_count > 0 ? small + 1 : small; }
};

constexpr izb_groups make_izb_groups(int p, int m) {
  izb_groups g{};
  g.rounds = m / p > 1 ? m / p : 1;
  g.small = m / g.rounds;
  g.large_count = m % g.rounds;
  return g;
}

/// The order described at interleaved_zb_family.
constexpr table interleaved_zb_table(int p, int m, int v) {
  izb_groups const g = make_izb_groups(p, m);
  int const n = v * m;
  // the forward list every rank walks: group by group, chunk 0..v-1, the group's micro-batches
  vec<int> list_v(2 * static_cast<std::size_t>(n), 0);
  int* const chunk = list_v.data(); // raw pointers: cheap in constant evaluation
  int* const mb = chunk + n;
  for (int k = 0, first = 0, i = 0; k < g.rounds; ++k) {
    int const size = g.small + (k < g.large_count ? 1 : 0);
    for (int c = 0; c < v; ++c)
      for (int j = first; j < first + size; ++j, ++i) chunk[i] = c, mb[i] = j;
    first += size;
  }
  table t = make_table(p, m, v, placement::loop);
  t.split_backward = true;
  vec<int> done_v(static_cast<std::size_t>(n), 0); // list entries of this rank's I's, in order
  int* const done = done_v.data();
  for (int r = 0; r < p; ++r) {
    t.lists[static_cast<std::size_t>(r)].reserve(3 * static_cast<std::size_t>(n));
    int const warm = (v - 1) * g.first() + (p - 1 - r);
    int const w = warm < n ? warm : n;
    int inputs = 0, weights = 0;
    auto forward = [&](int i) { push(t, op::forward, chunk[i] * p + r, mb[i]); };
    auto weight = [&] {
      int const i = done[weights++];
      push(t, op::backward_weight, (v - 1 - chunk[i]) * p + r, mb[i]);
    };
    auto input = [&](int i) { // backward i: list entry i with its chunk mirrored
      push(t, op::backward_input, (v - 1 - chunk[i]) * p + r, mb[i]);
      done[inputs++] = i;
      if (inputs > r) weight(); // from the (r+1)-th I on, the oldest pending W follows
    };
    for (int i = 0; i < w; ++i) forward(i);
    for (int i = 0; i < n - w; ++i) {
      forward(w + i);
      input(i);
    }
    for (int i = n - w; i < n; ++i) input(i);
    while (weights < inputs) weight();
  }
  int const bound = (v - 1) * g.first() + p;
  t.memory_bound_chunks = bound < n ? bound : n;
  return t;
}

} // namespace detail

/// Interleaved zero bubble (ZB1P over v chunks; reference: schedules.md, "Interleaved zero
/// bubble", the rule of PyTorch's ScheduleInterleavedZeroBubble) under loop placement (chunk k
/// of rank r is stage k*p + r), v chunks per rank (default 2), backward split into I and W.
///
/// Order. The micro-batches form rounds = max(1, floor(m/p)) groups; all ranks walk the same
/// forward list: group by group, chunk 0..v-1, and within a chunk every micro-batch of the
/// group. Rank r runs w_r = min((v-1) G + (p-1-r), v m) warm-up forwards (G: the first
/// group's size; one step of lag per rank, not two as in interleaved 1F1B), then pairs
/// (forward w_r+i, I of list entry i with its chunk mirrored), then the remaining I's; from
/// rank r's (r+1)-th I on, each I is followed by the W of the oldest pending I (rank r holds r
/// back); the W's left run at the end. The order depends on (p, m, v) only.
///
/// Any m >= 1. PyTorch takes groups of mpr = m / rounds micro-batches and refuses m when
/// m mod rounds != 0. We split m into the same number of groups as evenly as possible, the
/// larger groups first (sizes ceil(m/rounds) and floor(m/rounds)); when m mod rounds = 0 that
/// is PyTorch's grouping, so the order is PyTorch's (tests/cpu/schedules_interleaved_zb.cpp
/// compares them at every p, m, v PyTorch accepts in its sweep). Every group holds at least
/// p micro-batches when m >= p (floor(m/rounds) >= p), so no group needs the phantom padding
/// of interleaved 1F1B, and the first group is the largest, so each rank's warm-up, sized by
/// the first group, covers the chunk-(v-1) forward each later group's first backward needs.
/// The test verifies the order over p = 1..8, m = 1..48, v = 1..4 (compute-only and
/// lowered); with m < p (one group of m) PyTorch's rule itself never waits on itself.
///
/// Memory: on rank r, before the I of backward k, w_r + k + 1 forwards and max(0, k - r) W's
/// have run; from k = r on that is w_r + r + 1 = (v-1) G + p live chunk-activations, never
/// more (before, fewer). So memory_bound_chunks = min((v-1) G + p, v m), reached on every
/// rank: ((v-1) G + p)/v units, e.g. p = 4, m = 8, v = 2: 8 chunk-activations = 4 units.
struct interleaved_zb_family {
  static constexpr const char* name = "interleaved-zb";
  static constexpr diagnostic check(params const& pr) { return check_common(pr); }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    return detail::interleaved_zb_table(pr.p, pr.m, pr.v > 0 ? pr.v : 2);
  }
};

/// Interleaved zero bubble as a type: `interleaved_zb<ranks<4>, microbatches<8>, chunks<2>>`.
template <class... Ps> using interleaved_zb = schedule<interleaved_zb_family, Ps...>;

} // namespace pipesched
