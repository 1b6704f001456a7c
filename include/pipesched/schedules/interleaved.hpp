// pipesched: interleaved 1F1B (Megatron's virtual pipeline).
#pragma once

#include <vector>

#include "pipesched/pipeline/schedule.hpp"

namespace pipesched {

namespace detail {

/// The forward list every rank of an interleaved schedule walks: micro-batches in groups
/// of g (the last group takes the remainder); for each group, chunk 0..v-1, and within a
/// chunk every micro-batch of the group. With v > 1 a group shorter than p is padded with
/// phantom entries (mb = -1) up to p; phantoms hold no pass.
struct interleaved_list {
  std::vector<int> chunk, mb;
  int first_group = 0; ///< padded size of the first group
  constexpr int size() const { return static_cast<int>(mb.size()); }
};

constexpr interleaved_list make_interleaved_list(int p, int m, int v, int g) {
  interleaved_list l{};
  for (int first = 0; first < m; first += g) {
    int const last = first + g < m ? first + g : m;
    int size = last - first;
    if (v > 1 && size < p) size = p;
    if (first == 0) l.first_group = size;
    for (int c = 0; c < v; ++c)
      for (int j = first; j < first + size; ++j) {
        l.chunk.push_back(c);
        l.mb.push_back(j < last ? j : -1);
      }
  }
  return l;
}

/// Warm-up length of rank r, in entries of the (padded) list.
constexpr int interleaved_warmup(int p, int v, interleaved_list const& l, int r) {
  int const w = 2 * (p - r - 1) + (v - 1) * l.first_group;
  return w < l.size() ? w : l.size();
}

/// Largest number of real entries in w+1 consecutive list entries (w: rank 0's warm-up),
/// capped by the total: a bound on every rank's live chunk-activations (see below).
constexpr int interleaved_memory_bound(int p, int v, interleaved_list const& l) {
  int const n = l.size(), len = interleaved_warmup(p, v, l, 0) + 1;
  std::vector<int> prefix(static_cast<std::size_t>(n) + 1, 0);
  for (int i = 0; i < n; ++i)
    prefix[static_cast<std::size_t>(i) + 1] =
        prefix[static_cast<std::size_t>(i)] + (l.mb[static_cast<std::size_t>(i)] >= 0);
  if (len >= n) return prefix[static_cast<std::size_t>(n)];
  int best = 0;
  for (int i = 0; i + len <= n; ++i) {
    int const c = prefix[static_cast<std::size_t>(i + len)] - prefix[static_cast<std::size_t>(i)];
    best = c > best ? c : best;
  }
  return best;
}

} // namespace detail

/// Interleaved 1F1B under loop placement (chunk k of rank r is stage k*p + r).
///
/// Defaults: v = 2 chunks, group size g = min(p, m); g must lie in 1..m.
///
/// Order. All ranks walk the same forward list (detail::make_interleaved_list); the k-th
/// backward is the k-th list entry with its chunk mirrored (v-1-chunk), as a fused B. Rank r
/// runs w_r = min(2(p-r-1) + (v-1)G, n) list entries of warm-up forwards, then pairs
/// (forward w_r+i, backward i), then the remaining backwards; n is the list length and G
/// the first group's size. Phantom entries are skipped, so where a pair holds a phantom
/// forward the rank runs the backward alone.
///
/// Groups shorter than p (v > 1). The forward of chunk c+1 on rank 0 waits for the forward
/// of chunk c on rank p-1, which sits only `group size` entries earlier in the list. When
/// the group is shorter than p this wait meets rank p-1 waiting for rank 0's backwards and
/// the plain rule hangs (e.g. p = 4, m = 5, v = 3, or any g <= p-2). Padding such a group to
/// p restores Megatron's condition (every group >= p), and deleting the phantoms keeps
/// the schedule free of cyclic waits and can only shorten it. In effect each rank, entering
/// a short group, trades the missing forwards for backwards, so its lead over rank p-1
/// shrinks to what the group allows. Cases:
///  - g >= p and (m mod g = 0 or m mod g >= p) (Megatron's condition): the plain rule; time
///    (v m + p - 1)(F+B+W) for any per-chunk costs; rank-0 memory min(2(p-1)+(v-1)g+1, vm)
///    chunks, i.e. p + (p-1)/v units for g = p.
///  - the default g = p with 0 < m mod p: the last group is padded; time lies between
///    (v m + p - 1)(F+B+W) and the padded schedule's (v p ceil(m/p) + p - 1)(F+B+W).
///  - m < p (default g = m, one group): every rank runs all its forwards first (warm-up
///    covers the list); time (v p + m - 1)(F+B+W).
///  - g < p: every group is padded to p; valid, with less memory and more idle time.
///  - v = 1: groups change nothing; the order is 1F1B with warm-up min(2(p-r-1), m).
///
/// Memory bound. Live chunk-activations on rank r after the pair for backward i count the
/// real entries among forwards 0..w_r+i less backwards 0..i-1, i.e. at most the real
/// entries of a window of w_r+1 <= w_0+1 consecutive list entries; memory_bound_chunks is
/// the largest such window count.
struct interleaved_1f1b_family {
  static constexpr const char* name = "interleaved";
  static constexpr diagnostic check(params const& pr) {
    if (auto d = check_common(pr)) return d;
    if (pr.g < 0 || pr.g > pr.m) return {errc::group_size_out_of_range};
    return {};
  }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    int const p = pr.p, m = pr.m;
    int const v = pr.v > 0 ? pr.v : 2;
    int const g = pr.g > 0 ? pr.g : (p < m ? p : m);
    detail::interleaved_list const l = detail::make_interleaved_list(p, m, v, g);
    int const n = l.size();
    table t = make_table(p, m, v, placement::loop);
    for (int r = 0; r < p; ++r) {
      int const w = detail::interleaved_warmup(p, v, l, r);
      auto pass = [&](op kind, int i) {
        int const j = l.mb[static_cast<std::size_t>(i)];
        if (j < 0) return;
        int const c = l.chunk[static_cast<std::size_t>(i)];
        push(t, kind, stage_of(placement::loop, p, r, kind == op::forward ? c : v - 1 - c), j);
      };
      for (int i = 0; i < w; ++i) pass(op::forward, i);
      for (int i = 0; i < n - w; ++i) {
        pass(op::forward, w + i);
        pass(op::backward, i);
      }
      for (int i = n - w; i < n; ++i) pass(op::backward, i);
    }
    t.memory_bound_chunks = detail::interleaved_memory_bound(p, v, l);
    return t;
  }
};

/// Interleaved 1F1B as a type: `interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>`.
template <class... Ps> using interleaved_1f1b = schedule<interleaved_1f1b_family, Ps...>;

} // namespace pipesched
