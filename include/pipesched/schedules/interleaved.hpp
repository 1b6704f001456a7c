// pipesched: interleaved 1F1B (Megatron's virtual pipeline).
#pragma once

#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/core/vec.hpp"

namespace pipesched {

namespace detail {

/// The forward list every rank of an interleaved schedule walks: micro-batches in groups
/// of g (the last group takes the remainder); for each group, chunk 0..v-1, and within a
/// chunk every micro-batch of the group. With v > 1 a group shorter than p is padded with
/// phantom entries (mb = -1) up to p; phantoms hold no pass.
struct interleaved_list {
  vec<int> chunk, mb;
  int first_group = 0; ///< padded size of the first group
  constexpr int size() const { return static_cast<int>(mb.size()); }
};

constexpr interleaved_list make_interleaved_list(int p, int m, int v, int g) {
  interleaved_list l{};
  auto padded = [&](int first) {
    int const size = (first + g < m ? first + g : m) - first;
    return v > 1 && size < p ? p : size;
  };
  std::size_t n = 0;
  for (int first = 0; first < m; first += g) n += static_cast<std::size_t>(padded(first) * v);
  l.chunk.assign(n, 0);
  l.mb.assign(n, -1);
  int* const ch = l.chunk.data(); // raw pointers: cheap in constant evaluation
  int* const mb = l.mb.data();
  std::size_t i = 0;
  for (int first = 0; first < m; first += g) {
    int const last = first + g < m ? first + g : m;
    int const size = padded(first);
    if (first == 0) l.first_group = size;
    for (int c = 0; c < v; ++c)
      for (int j = first; j < first + size; ++j, ++i) {
        ch[i] = c;
        mb[i] = j < last ? j : -1;
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
  vec<int> prefix_v(static_cast<std::size_t>(n) + 1, 0);
  int* const prefix = prefix_v.data();
  int const* const mb = l.mb.data();
  for (int i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + (mb[i] >= 0);
  if (len >= n) return prefix[n];
  int best = 0;
  for (int i = 0; i + len <= n; ++i) {
    int const c = prefix[i + len] - prefix[i];
    best = c > best ? c : best;
  }
  return best;
}

/// The interleaved order with group size g (1 <= g <= m), v chunks: the rule described at
/// interleaved_1f1b_family.
constexpr table interleaved_table(int p, int m, int v, int g) {
  interleaved_list const l = make_interleaved_list(p, m, v, g);
  int const n = l.size();
  table t = make_table(p, m, v, placement::loop);
  for (int r = 0; r < p; ++r) {
    int const w = interleaved_warmup(p, v, l, r);
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
  t.memory_bound_chunks = interleaved_memory_bound(p, v, l);
  return t;
}

/// PyTorch's group size (schedules.md, Interleaved 1F1B): g = m / max(1, floor(m/p)), or 0
/// where PyTorch refuses m (the division is not exact). Its groups all hold g >= min(p, m)
/// micro-batches, so none is padded.
constexpr int interleaved_pytorch_group(int p, int m) {
  int const rounds = m / p > 1 ? m / p : 1;
  return m % rounds == 0 ? m / rounds : 0;
}

/// What the default group size is chosen by: the largest rank span and the makespan of the
/// order for group size g under the parameters' costs and link latency, and its peak
/// chunk-activations on any rank.
struct interleaved_score {
  bool ok = false; ///< false: the order waits on itself (not reached: padded groups)
  double span = 0;
  double makespan = 0;
  int peak = 0;
};

/// Runs the interleaved order with group size g straight from its forward list, without
/// building the table: each rank in list order, each pass starting when the rank is free
/// and its input has arrived (producer's end + c across ranks) -- simulate()'s rule, with
/// the same arithmetic, so the times are the same to the bit
/// (tests/cpu/schedules_interleaved.cpp checks it). Written for the compiler's constexpr
/// budget (flat arrays, raw pointers, keys precomputed per list entry): a few times cheaper
/// than generating and simulating the table.
constexpr interleaved_score run_interleaved(int p, int m, int v, int g, cost_model const& cost) {
  interleaved_score out{};
  interleaved_list const l = make_interleaved_list(p, m, v, g);
  int const n = l.size();
  using key_t = long long;
  key_t const M = m, sm = static_cast<key_t>(p) * v * M; // (stage, micro-batch) keys: stage * m + mb
  // per list entry, the key of its forward and of its backward on rank 0 (rank r adds r m);
  // -1: a phantom
  vec<key_t> keys_v(2 * static_cast<std::size_t>(n), -1);
  key_t* const fkey = keys_v.data();
  key_t* const bkey = fkey + n;
  for (int i = 0; i < n; ++i) {
    int const j = l.mb[static_cast<std::size_t>(i)], c = l.chunk[static_cast<std::size_t>(i)];
    if (j < 0) continue;
    fkey[i] = static_cast<key_t>(c) * p * M + j;
    bkey[i] = static_cast<key_t>(v - 1 - c) * p * M + j;
  }
  vec<double> ends(2 * static_cast<std::size_t>(sm), -1.0); // F then B end per key
  double* const fe = ends.data();
  double* const be = fe + sm;
  std::size_t const up = static_cast<std::size_t>(p);
  vec<double> times(3 * up, 0.0);
  double* const free_at = times.data();
  double* const first = free_at + up;
  vec<int> state(3 * up, 0);
  int* const step = state.data(); // next step of each rank, 0..2n
  int* const live = step + up;
  int* const peak = live + up;
  for (std::size_t r = 0; r < up; ++r) first[r] = -1.0;
  double const c = p > 1 ? cost.c : 0.0; // loop placement: neighbouring stages on different ranks
  double const f = cost.f, fused = cost.b + cost.w;
  for (bool progress = true, down = true; progress; down = !down) {
    progress = false;
    // alternate the sweep's direction: forwards hand over to the next rank, backwards to
    // the previous one
    for (int q = 0; q < p; ++q) {
      int const r = down ? q : p - 1 - q;
      int const w = interleaved_warmup(p, v, l, r);
      int const pairs_end = 2 * n - w;
      key_t const rm = static_cast<key_t>(r) * M;
      int s = step[r];
      double now = free_at[r];
      for (; s < 2 * n; ++s) {
        // step s: warm-up forward s; then pairs (forward w + k, backward k); then backwards
        bool fwd = s < w;
        key_t key;
        if (fwd) key = fkey[s];
        else if (s < pairs_end) {
          int const k = s - w;
          fwd = (k & 1) == 0;
          key = fwd ? fkey[w + (k >> 1)] : bkey[k >> 1];
        } else key = bkey[s - n];
        if (key < 0) continue; // phantom
        key += rm;
        double ready = now;
        if (fwd) {
          if (key >= M) { // stage > 0: the previous stage's forward, on another rank
            double const e = fe[key - M];
            if (e < 0) break;
            ready = e + c > ready ? e + c : ready;
          }
          now = ready + f;
          fe[key] = now;
          ++live[r];
          peak[r] = live[r] > peak[r] ? live[r] : peak[r];
        } else {
          if (fe[key] < 0) break;  // its own forward (earlier on this rank)
          if (key + M < sm) { // stage < S-1: the next stage's backward, on another rank
            double const e = be[key + M];
            if (e < 0) break;
            ready = e + c > ready ? e + c : ready;
          }
          now = ready + fused;
          be[key] = now;
          --live[r];
        }
        if (first[r] < 0) first[r] = ready;
      }
      if (s != step[r]) progress = true;
      step[r] = s;
      free_at[r] = now;
    }
  }
  out.ok = true;
  for (std::size_t r = 0; r < up; ++r) {
    out.ok = out.ok && step[r] == 2 * n;
    double const span = free_at[r] - first[r];
    out.span = span > out.span ? span : out.span;
    out.makespan = free_at[r] > out.makespan ? free_at[r] : out.makespan;
    out.peak = peak[r] > out.peak ? peak[r] : out.peak;
  }
  return out;
}

/// a shorter than b: smaller largest rank span, then smaller makespan (relative 1e-9).
constexpr int compare_time(double a, double b) {
  double const tol = 1e-9 * (1.0 + (a > b ? a : b));
  return a < b - tol ? -1 : (a > b + tol ? 1 : 0);
}

/// The default group size for (p, m, v, costs); see interleaved_1f1b_family.
///
/// Candidates: Megatron's g = p and PyTorch's g (the two textbook rules), g = m (one group),
/// and, when m is not a multiple of p, g = p-1 and the balanced g = ceil(m / ceil(m/p)) (as
/// many groups as g = p, their sizes differing by at most one): groups shorter than p are
/// padded to p, so these spread the phantoms over several groups instead of one short last
/// group, often shorter and never more memory than g = p. The memory budget is the larger of
/// the two textbook rules' peaks. What needs no simulation (rank 0 of an order whose first
/// group g >= p peaks at min(2(p-1) + (v-1)g + 1, v m) chunk-activations, by the warm-up
/// rule; below v m this grows with g, and for g <= m/2 it stays below v m):
///  - v = 1: groups change nothing, every g gives the same order;
///  - m <= p: every rule gives g = m (one group, padded to p);
///  - m a multiple of p: PyTorch's g is p as well, g = m >= 2p holds more than g = p, and
///    no g < p was shorter in the exhaustive sweep of bench/schedule_quality.cpp;
///  - g = m otherwise: it is PyTorch's g when m < 2p, and holds more than the budget when
///    m >= 2p (PyTorch's g <= m/2 and g = p are both below it).
/// So at most four simulations (g = p, PyTorch's g when PyTorch accepts m, p-1, balanced),
/// and none at all when m is a multiple of p (the compile-budget case p = 16, m = 128).
constexpr int interleaved_default_group(params const& pr, int v) {
  int const p = pr.p, m = pr.m;
  int const megatron = p < m ? p : m; // Megatron's g = p (one group of m when m < p)
  if (v == 1 || m <= p || m % p == 0) return megatron;
  int const groups = (m + p - 1) / p;
  int const cand[4] = {megatron, interleaved_pytorch_group(p, m), p - 1, (m + groups - 1) / groups};
  interleaved_score sc[4] = {};
  for (int i = 0; i < 4; ++i) {
    bool dup = cand[i] < 1;
    for (int k = 0; k < i; ++k) dup = dup || cand[k] == cand[i];
    if (!dup) sc[i] = run_interleaved(p, m, v, cand[i], pr.cost);
  }
  // the budget: the larger peak of the two textbook rules (sc[1] is empty where PyTorch
  // refuses m); g = p itself is always within it and never waits on itself (padded groups)
  int const budget = sc[1].peak > sc[0].peak ? sc[1].peak : sc[0].peak;
  int best = 0;
  for (int i = 1; i < 4; ++i) {
    interleaved_score const& a = sc[i];
    interleaved_score const& b = sc[best];
    if (!a.ok || a.peak > budget) continue;
    int c = compare_time(a.span, b.span);
    if (c == 0) c = compare_time(a.makespan, b.makespan);
    if (c == 0) c = a.peak < b.peak ? -1 : (a.peak > b.peak ? 1 : (cand[i] < cand[best] ? -1 : 1));
    if (c < 0) best = i;
  }
  return cand[best];
}

} // namespace detail

/// Interleaved 1F1B under loop placement (chunk k of rank r is stage k*p + r).
///
/// Defaults: v = 2 chunks; group size g chosen per (p, m, v, costs) as below; an explicit
/// g (group_size<G>, params::g > 0) must lie in 1..m and is used as given.
///
/// Order. All ranks walk the same forward list (detail::make_interleaved_list); the k-th
/// backward is the k-th list entry with its chunk mirrored (v-1-chunk), as a fused B. Rank r
/// runs w_r = min(2(p-r-1) + (v-1)G, n) list entries of warm-up forwards, then pairs
/// (forward w_r+i, backward i), then the remaining backwards; n is the list length and G
/// the first group's size. Phantom entries are skipped, so where a pair holds a phantom
/// forward the rank runs the backward alone.
///
/// Default group size (detail::interleaved_default_group). The textbook rules are
/// Megatron's g = p (g = m when m < p) and PyTorch's g = m / max(1, floor(m/p)) (where that
/// division is exact; PyTorch refuses the other m). The generator considers those, g = m,
/// and for m not a multiple of p also g = p-1 and the balanced g = ceil(m / ceil(m/p)); it
/// keeps the shortest under the given costs and link latency (smallest largest rank span,
/// then smallest makespan, as simulate() computes them) among those whose peak
/// chunk-activations on any rank do not exceed the larger of the two textbook rules' peaks;
/// ties go to less memory, then to the smaller g. So the default is never longer than
/// either textbook rule's order (as we build it: short groups padded) and never holds more
/// memory than the hungrier of the two. Only m > p not a multiple of p simulates anything
/// (at most four candidates, straight from their forward lists: detail::run_interleaved), so
/// p = 16, m = 128 costs the compiler nothing more, and p = 16, m = 127, v = 4 stays within
/// g++'s default constexpr budget.
///
/// Groups shorter than p (v > 1). The forward of chunk c+1 on rank 0 waits for the forward
/// of chunk c on rank p-1, which sits only `group size` entries earlier in the list. When
/// the group is shorter than p this wait meets rank p-1 waiting for rank 0's backwards and
/// the plain rule hangs (e.g. p = 4, m = 5, v = 3, or any g <= p-2). Padding such a group to
/// p restores Megatron's condition (every group >= p), and deleting the phantoms keeps
/// the schedule free of cyclic waits and can only shorten it. In effect each rank, entering
/// a short group, trades the missing forwards for backwards, so its lead over rank p-1
/// shrinks to what the group allows. Cases (g: the group size used):
///  - g >= p and (m mod g = 0 or m mod g >= p) (Megatron's condition): the plain rule; time
///    (v m + p - 1)(F+B+W) for any per-chunk costs; rank-0 memory min(2(p-1)+(v-1)g+1, vm)
///    chunks, i.e. p + (p-1)/v units for g = p.
///  - g = p with 0 < m mod p: the last group is padded; time lies between
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
    int const v = pr.v > 0 ? pr.v : 2;
    int const g = pr.g > 0 ? pr.g : detail::interleaved_default_group(pr, v);
    return detail::interleaved_table(pr.p, pr.m, v, g);
  }
};

/// Interleaved 1F1B as a type: `interleaved_1f1b<ranks<4>, microbatches<8>, chunks<2>>`.
template <class... Ps> using interleaved_1f1b = schedule<interleaved_1f1b_family, Ps...>;

} // namespace pipesched
