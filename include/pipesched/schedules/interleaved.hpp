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

/// PyTorch's group size (schedules.md, Interleaved 1F1B): m / max(1, floor(m/p)) micro-batches
/// per round. PyTorch refuses m when that division is not exact; we round it up, so the m
/// micro-batches still go in max(1, floor(m/p)) groups, the last one shorter.
constexpr int interleaved_pytorch_group(int p, int m) {
  int const rounds = m / p > 1 ? m / p : 1;
  return (m + rounds - 1) / rounds;
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
/// (tests/cpu/schedules_interleaved.cpp checks it). About a tenth of the constexpr
/// operations of generating and simulating the table, which is what lets the default
/// simulate several group sizes at p = 16, m = 127 inside the compiler's budget.
constexpr interleaved_score run_interleaved(int p, int m, int v, int g, cost_model const& cost) {
  interleaved_score out{};
  interleaved_list const l = make_interleaved_list(p, m, v, g);
  int const n = l.size(), S = p * v;
  int const* const ch = l.chunk.data();
  int const* const mb = l.mb.data();
  std::size_t const sm = static_cast<std::size_t>(S) * static_cast<std::size_t>(m);
  vec<double> ends(2 * sm, -1.0); // F then B end of (stage, micro-batch)
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
  double const fused = cost.b + cost.w;
  for (bool progress = true, down = true; progress; down = !down) {
    progress = false;
    // alternate the sweep's direction: forwards hand over to the next rank, backwards to
    // the previous one
    for (int q = 0; q < p; ++q) {
      int const r = down ? q : p - 1 - q;
      int const w = interleaved_warmup(p, v, l, r);
      int s = step[r];
      double now = free_at[r];
      for (; s < 2 * n; ++s) {
        // step s: warm-up forward s; then pairs (forward w + k, backward k); then backwards
        bool fwd = s < w;
        int i = s;
        if (s >= w && s < 2 * n - w) {
          fwd = (s - w) % 2 == 0;
          i = fwd ? w + (s - w) / 2 : (s - w) / 2;
        } else if (s >= w) {
          i = s - n;
        }
        int const j = mb[i];
        if (j < 0) continue; // phantom
        double ready = now, dur = cost.f;
        std::size_t key;
        if (fwd) {
          int const st = ch[i] * p + r;
          key = static_cast<std::size_t>(st) * static_cast<std::size_t>(m) + static_cast<std::size_t>(j);
          if (st > 0) {
            double const e = fe[key - static_cast<std::size_t>(m)];
            if (e < 0) break;
            ready = e + c > ready ? e + c : ready;
          }
        } else {
          int const st = (v - 1 - ch[i]) * p + r;
          key = static_cast<std::size_t>(st) * static_cast<std::size_t>(m) + static_cast<std::size_t>(j);
          if (fe[key] < 0) break; // its own forward (earlier on this rank)
          if (st + 1 < S) {
            double const e = be[key + static_cast<std::size_t>(m)];
            if (e < 0) break;
            ready = e + c > ready ? e + c : ready;
          }
          dur = fused;
        }
        if (first[r] < 0) first[r] = ready;
        now = ready + dur;
        (fwd ? fe : be)[key] = now;
        live[r] += fwd ? 1 : -1;
        peak[r] = live[r] > peak[r] ? live[r] : peak[r];
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
constexpr int interleaved_default_group(params const& pr, int v) {
  int const p = pr.p, m = pr.m;
  int const textbook = p < m ? p : m; // Megatron's g = p (m when m < p)
  // One candidate only (no simulation): v = 1 (groups change nothing), m <= p (every rule
  // gives g = m), m a multiple of p (PyTorch's g is p as well, and every g > p holds more
  // memory than g = p: rank 0 peaks at min(2(p-1) + (v-1)g + 1, v m) chunk-activations, which
  // grows with g below v m, and g = p stays below v m for m >= 2p; every g < p was never
  // shorter in the sweep of docs/01_schedules.md).
  if (v == 1 || m <= p || m % p == 0) return textbook;
  int const cand[3] = {textbook, interleaved_pytorch_group(p, m), m};
  interleaved_score sc[3] = {};
  for (int i = 0; i < 3; ++i) {
    bool dup = false;
    for (int k = 0; k < i; ++k) dup = dup || cand[k] == cand[i];
    if (!dup) sc[i] = run_interleaved(p, m, v, cand[i], pr.cost);
  }
  // the memory budget: the larger peak of the two textbook rules (Megatron's, PyTorch's)
  int budget = sc[0].peak;
  if (sc[1].ok && sc[1].peak > budget) budget = sc[1].peak;
  int best = 0; // Megatron's g: within the budget, and never a cyclic wait (padded groups)
  for (int i = 1; i < 3; ++i) {
    interleaved_score const& a = sc[i];
    interleaved_score const& b = sc[best];
    if (!a.ok || a.peak > budget) continue;
    if (!b.ok) {
      best = i;
      continue;
    }
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
/// Megatron's g = p (g = m when m < p) and PyTorch's g = m / max(1, floor(m/p)) (rounded up
/// where PyTorch would refuse m). The generator builds the orders for g = p, PyTorch's g and
/// g = m, simulates each under the given costs and link latency, and keeps the shortest
/// (smallest largest rank span, then smallest makespan) among those whose peak
/// chunk-activations on any rank do not exceed the larger of the two textbook rules' peaks;
/// ties go to less memory, then to the smaller g. So the default is never longer than
/// either textbook rule's order and never holds more memory than the hungrier of the two.
/// Bounded search: the candidates are simulated only when v > 1, m > p and m mod p != 0;
/// otherwise the rule is exact without it (v = 1: groups change nothing; m <= p: every
/// rule gives g = m; m a multiple of p: PyTorch's g is p, and g = m holds more memory than
/// g = p), so p = 16, m = 128 costs the compiler no simulation at all.
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

/// Interleaved 1F1B as a type: `interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>`.
template <class... Ps> using interleaved_1f1b = schedule<interleaved_1f1b_family, Ps...>;

} // namespace pipesched
