// pipesched: ZB-V, the zero-bubble schedule on V placement.
#pragma once

#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/core/vec.hpp"
#include "pipesched/schedules/split_timing.hpp"

namespace pipesched {

namespace detail {

/// Parameter check of the V-placement families: two chunks per rank (v = 0 or 2).
constexpr diagnostic check_zb_v(params const& pr) {
  if (auto d = check_common(pr)) return d;
  if (pr.v != 0 && pr.v != 2) return {errc::needs_two_chunks};
  return {};
}

/// How one run of the ZB-V list scheduler breaks ties.
struct zb_v_rule {
  int weights_first = 2;    ///< W before anything else once a rank holds >= limit - weights_first + 1
  bool chunk0_input = true; ///< among ready I passes, chunk 0's (stage r) before chunk 1's
};

struct zb_v_run {
  table t;
  double makespan = 0;
  double span = 0; ///< largest rank span
};

/// The ZB-V list scheduler under the cost model of `pr` and a limit of `limit`
/// chunk-activations per rank. Time advances from event to event (a rank frees up, an input
/// arrives); a free rank picks, among its passes whose inputs have arrived:
///   1. the oldest W, when it holds limit-1 or more chunk-activations and has forwards left;
///   2. the chunk-1 forward (stage 2p-1-r) if it fits in memory;
///   3. the chunk-0 forward (stage r) if it fits and leaves room for one chunk-1 forward, so
///      the micro-batches already started can always turn at the bottom of the V;
///   4. an I (chunk 0's first by default); 5. the oldest pending W.
/// Forwards and I passes run in micro-batch order per stage. The per-rank lists are the
/// order of the picks; simulating them under the same costs gives the same times.
constexpr zb_v_run zb_v_schedule(params const& pr, int limit, zb_v_rule rule) {
  int const p = pr.p, m = pr.m, S = 2 * p;
  double const f = pr.cost.f, b = pr.cost.b, w = pr.cost.w, c = pr.cost.c;
  zb_v_run out{};
  out.t = make_table(p, m, 2, placement::v_shape);
  table& t = out.t;
  t.split_backward = true;
  t.memory_bound_chunks = limit;
  auto const P = static_cast<std::size_t>(p);
  auto const M = static_cast<std::size_t>(m);
  // arrival time of the input of F and of I per (stage, micro-batch) on the stage's rank;
  // -1: its producer has not run yet
  vec<double> in_f(static_cast<std::size_t>(S) * M, -1.0), in_i(static_cast<std::size_t>(S) * M, -1.0);
  for (std::size_t j = 0; j < M; ++j) in_f[j] = 0.0;
  // per rank and kind (0: F chunk 0, 1: F chunk 1, 2: I chunk 1, 3: I chunk 0): the next
  // micro-batch and the offset of the stage's row in in_f / in_i
  vec<int> next(P * 4, 0), row(P * 4, 0);
  for (int r = 0; r < p; ++r)
    for (int k = 0; k < 4; ++k) row[static_cast<std::size_t>(r * 4 + k)] = ((k == 0 || k == 3) ? r : S - 1 - r) * m;
  vec<int> held_v(P, 0), wq_v(P * 2 * M, 0), whead_v(P, 0), wtail_v(P, 0);
  vec<double> free_v(P, 0.0), first_v(P, -1.0), last_v(P, 0.0);
  // raw pointers into the arrays: cheaper than vec::operator[] in constant evaluation
  double *const inf = in_f.data(), *const ini = in_i.data();
  double *const free_at = free_v.data(), *const first = first_v.data(), *const last = last_v.data();
  int *const nxt = next.data(), *const rows = row.data(), *const held = held_v.data();
  int *const wq = wq_v.data(), *const whead = whead_v.data(), *const wtail = wtail_v.data();
  for (std::size_t r = 0; r < P; ++r) t.lists[r].reserve(6 * M);
  int const i_pref = rule.chunk0_input ? 3 : 2, i_other = rule.chunk0_input ? 2 : 3;
  std::size_t const total = 6 * M * P;
  std::size_t done = 0;
  double now = 0.0;
  while (done < total) {
    bool progress = true;
    while (progress) { // passes of zero cost may run several in a row at one time
      progress = false;
      for (int r = 0; r < p; ++r) {
        if (free_at[r] > now) continue;
        int* const nx = nxt + 4 * r;
        int const* const rw = rows + 4 * r;
        bool ready[4] = {false, false, false, false};
        for (int k = 0; k < 4; ++k) {
          if (nx[k] >= m) continue;
          double a = (k < 2 ? inf : ini)[rw[k] + nx[k]];
          ready[k] = a >= 0 && a <= now;
        }
        bool const has_w = whead[r] < wtail[r];
        int pick = -1; // a kind as above, or 4: W
        if (has_w && (nx[0] < m || nx[1] < m) && held[r] >= limit - rule.weights_first + 1) pick = 4;
        else if (ready[1] && held[r] + 1 <= limit) pick = 1;
        else if (ready[0] && held[r] + 2 <= limit) pick = 0;
        else if (ready[i_pref]) pick = i_pref;
        else if (ready[i_other]) pick = i_other;
        else if (has_w) pick = 4;
        if (pick < 0) continue;
        double end = now;
        if (pick == 4) {
          int const code = wq[2 * m * r + whead[r]++];
          push(t, op::backward_weight, code / m, code % m);
          end = now + w;
          --held[r];
        } else {
          int const j = nx[pick]++;
          int const s = rw[pick] / m;
          if (pick < 2) {
            push(t, op::forward, s, j);
            end = now + f;
            ++held[r];
            if (s + 1 < S) inf[(s + 1) * m + j] = end + (s == p - 1 ? 0.0 : c);
            else ini[s * m + j] = end; // the loss
          } else {
            push(t, op::backward_input, s, j);
            end = now + b;
            wq[2 * m * r + wtail[r]++] = s * m + j;
            if (s > 0) ini[(s - 1) * m + j] = end + (s == p ? 0.0 : c);
          }
        }
        if (first[r] < 0) first[r] = now;
        last[r] = end;
        free_at[r] = end;
        ++done;
        // another sweep at this time only after a pass of zero cost: any other pass ends
        // after now, and so does every input it sends, so nothing new is ready at now
        if (end <= now) progress = true;
      }
    }
    if (done == total) break;
    // the next moment something changes: a rank frees up or an input arrives
    double soon = -1.0;
    for (int r = 0; r < p; ++r) {
      double x = free_at[r];
      if (x <= now)
        for (int k = 0; k < 4; ++k) {
          int const j = nxt[4 * r + k];
          if (j >= m) continue;
          double a = (k < 2 ? inf : ini)[rows[4 * r + k] + j];
          if (a > now && (x <= now || a < x)) x = a;
        }
      if (x > now && (soon < 0 || x < soon)) soon = x;
    }
    if (soon < 0) {
      out.t = failed({errc::cyclic_wait, -1, -1, -1, -1, "the ZB-V scheduler stalled"});
      return out;
    }
    now = soon;
  }
  for (int r = 0; r < p; ++r) {
    out.makespan = last[r] > out.makespan ? last[r] : out.makespan;
    double span = last[r] - first[r];
    out.span = span > out.span ? span : out.span;
  }
  return out;
}

/// The cost-blind textbook ZB-V: PyTorch's ZBV order (torch.distributed.pipelining
/// ScheduleZBVZeroBubble; reference: schedules.md, "How the reference greedy generators use
/// costs and link latency", last paragraph, names it the textbook order). Rank r (stages
/// s0 = r, s1 = 2p-1-r), built for n = max(2p-1, m) micro-batches with the passes of
/// micro-batches >= m left out:
///   1. 2(p-r)-1 forwards of s0;
///   2. r pairs (F s1, F s0);
///   3. p-r triples (F s1, I s1, W s1);
///   4. while s1 has forwards behind s0 or s0 has forwards left: (F s0 while any are left,
///      I s0, W s0, F s1, I s1, W s1);
///   5. r pairs (I s0, I s1); p-r pairs (I s0, oldest W of s0);
///   6. the remaining W's of s1, then of s0.
/// Memory: at most 2p chunk-activations (rank 0: 2p-1 forwards of s0, then one of s1).
constexpr table zb_v_textbook_table(params const& pr) {
  int const p = pr.p, m = pr.m;
  table t = make_table(p, m, 2, placement::v_shape);
  t.split_backward = true;
  t.memory_bound_chunks = 2 * p;
  int const n = 2 * p - 1 > m ? 2 * p - 1 : m;
  for (int r = 0; r < p; ++r) {
    t.lists[static_cast<std::size_t>(r)].reserve(6 * static_cast<std::size_t>(m));
    int const s0 = r, s1 = 2 * p - 1 - r;
    auto add = [&](op kind, int s, int j) {
      if (j < m) push(t, kind, s, j); // the micro-batches m..n-1 only shape the order
    };
    int f0 = 0, f1 = 0, i0 = 0, i1 = 0; // next forward / input backward per chunk
    for (int k = 0; k < 2 * (p - r) - 1; ++k) add(op::forward, s0, f0++);
    for (int k = 0; k < r; ++k) {
      add(op::forward, s1, f1++);
      add(op::forward, s0, f0++);
    }
    for (int k = 0; k < p - r; ++k) {
      add(op::forward, s1, f1++);
      add(op::backward_input, s1, i1);
      add(op::backward_weight, s1, i1++);
    }
    while (f1 < f0 || f0 < n) {
      if (f0 < n) add(op::forward, s0, f0++);
      add(op::backward_input, s0, i0);
      add(op::backward_weight, s0, i0++);
      add(op::forward, s1, f1++);
      add(op::backward_input, s1, i1);
      add(op::backward_weight, s1, i1++);
    }
    int w0 = i0, w1 = i1; // next weight pass per chunk
    for (int k = 0; k < r; ++k) {
      add(op::backward_input, s0, i0++);
      add(op::backward_input, s1, i1++);
    }
    for (int k = 0; k < p - r; ++k) {
      add(op::backward_input, s0, i0++);
      add(op::backward_weight, s0, w0++);
    }
    while (w1 < i1) add(op::backward_weight, s1, w1++);
    while (w0 < i0) add(op::backward_weight, s0, w0++);
  }
  return t;
}

/// How one run of the reference ZB-V greedy fills waits (zb_v_reference_greedy).
struct zb_v_greedy_rule {
  bool fill_before_forward = true;  ///< an extra W may go before an F
  bool fill_before_backward = true; ///< an extra W may go before chunk 1's I
};

/// A run of zb_v_reference_greedy: the order, its list-order times, its largest per-rank idle.
struct zb_v_greedy_run {
  timed_order order;
  vec<double> idle; ///< per rank: idle time after its first forward
  double worst_idle = 0;
};

/// The zero-bubble repository's ZB-V greedy (its rules as shared/reference/schedules.md
/// describes them, "How the reference greedy generators use costs and link latency"), on
/// V placement: rank r holds stage r (chunk 0) and 2p-1-r (chunk 1); every pass starts at
/// max(rank free, input there), an input from another rank after its producer's end + c.
///  1. one chunk-0 forward on every rank; from the last rank down, rank i adds chunk-0
///     forwards (one on each of ranks 0..i) while it holds at most `limit` - 2 - 2i and
///     its clock plus F is no later than its first chunk-1 input arrives, then runs its
///     first chunk-1 forward; then, rank by rank upwards, ranks i..p-1 (from the top) add
///     forwards of alternating chunks until rank i has run as many as rank i-1 and more
///     chunk-1 forwards than it;
///  2. 2m rounds: every rank places one I — chunk 0's (its gradient from rank i+1, or the
///     turn on the last rank) when that is placed and chunk 0 is behind, else chunk 1's;
///     ranks with chunk 0's in descending order, then the others ascending — then, ranks
///     ascending, one F — chunk 1's when its input is placed and chunk 1 is behind, else
///     chunk 0's when its input is;
///  3. the W's left.
/// Before an F or I whose input comes from another rank, the rank runs pending W's (oldest
/// first) while the input arrives no earlier than now + W, then one more when the wait
/// left exceeds the largest idle any rank has gathered (or the largest approved idle minus
/// its own approved idle) minus its own — before chunk 1's I only when
/// `fill_before_backward`, before an F only when `fill_before_forward`. Before an F, W's
/// also run while the rank holds `limit`. `approved`: per-rank idle of an earlier run (or
/// null).
constexpr zb_v_greedy_run zb_v_reference_greedy(params const& pr, int limit, zb_v_greedy_rule rule,
                                                double const* approved) {
  int const p = pr.p, m = pr.m, S = 2 * p;
  double const F = pr.cost.f, B = pr.cost.b, W = pr.cost.w, c = pr.cost.c;
  zb_v_greedy_run run{};
  timed_order& out = run.order;
  out.t = make_table(p, m, 2, placement::v_shape);
  table& t = out.t;
  t.split_backward = true;
  t.memory_bound_chunks = limit;
  std::size_t const up = static_cast<std::size_t>(p), um = static_cast<std::size_t>(m);
  std::size_t const sm = static_cast<std::size_t>(S) * um;
  for (auto& l : t.lists) l.reserve(6 * um);
  vec<action>* const lists = t.lists.data();
  vec<double> times(2 * sm + 3 * up, -1.0);
  double* const f_end = times.data(); // [s*m + j], < 0: not placed
  double* const i_end = f_end + sm;   // [s*m + j]
  double* const now = i_end + sm;     // [r]
  double* const idle = now + up;      // [r]
  double* const first = idle + up;    // [r] < 0: nothing run yet
  vec<int> counts(8 * up, 0);
  int* const nf = counts.data();  // [2r + k] forwards placed of chunk k
  int* const ni = nf + 2 * up;    // [2r + k] I's placed of chunk k
  int* const held = ni + 2 * up;  // [r] chunk-activations held
  int* const whead = held + up;   // [r] W's placed
  int* const wtail = whead + up;  // [r] I's placed: the W queue's end
  vec<int> wq(up * 2 * um, 0);    // per rank, its I's in order, as s*m + j
  int* const queue = wq.data();
  for (std::size_t r = 0; r < up; ++r) now[r] = idle[r] = 0.0;
  double approved_worst = -1;
  if (approved)
    for (std::size_t r = 0; r < up; ++r) approved_worst = approved[r] > approved_worst ? approved[r] : approved_worst;
  double worst_idle = 0;
  auto stage_of = [&](std::size_t r, int k) { return k == 0 ? static_cast<int>(r) : S - 1 - static_cast<int>(r); };
  // end of the producer of F / I (chunk k, micro-batch j) on rank r on another rank, or -1
  // when its input is local (or the batch, or the loss); placed: >= 0
  auto f_producer = [&](std::size_t r, int k, int j) {
    std::size_t const jj = static_cast<std::size_t>(j);
    if (k == 0) return r == 0 ? -2.0 : f_end[(r - 1) * um + jj];
    return r + 1 == up ? -2.0 : f_end[static_cast<std::size_t>(S - 2 - static_cast<int>(r)) * um + jj];
  };
  auto i_producer = [&](std::size_t r, int k, int j) {
    std::size_t const jj = static_cast<std::size_t>(j);
    if (k == 1) return r == 0 ? -2.0 : i_end[static_cast<std::size_t>(S - static_cast<int>(r)) * um + jj];
    return r + 1 == up ? -2.0 : i_end[(r + 1) * um + jj];
  };
  auto run_weight = [&](std::size_t r) {
    int const key = queue[r * 2 * um + static_cast<std::size_t>(whead[r]++)];
    int const s = key / m;
    lists[r].push_back(make_action(op::backward_weight, s, key % m, s < p ? 0 : 1));
    --held[r];
    now[r] += W;
  };
  auto fill = [&](std::size_t r, double producer_end, bool extra) {
    if (producer_end < 0) return; // the input is local (or the batch): nothing to wait for
    double const arrival = producer_end + c;
    while (whead[r] < wtail[r] && arrival >= now[r] + W) run_weight(r);
    double allowed = worst_idle;
    if (approved && approved_worst - approved[r] > allowed) allowed = approved_worst - approved[r];
    if (extra && whead[r] < wtail[r] && arrival - now[r] > allowed - idle[r]) run_weight(r);
  };
  auto place = [&](std::size_t r, op kind, int k) {
    std::size_t const slot = 2 * r + static_cast<std::size_t>(k);
    int const j = kind == op::forward ? nf[slot] : ni[slot];
    int const s = stage_of(r, k);
    std::size_t const at = static_cast<std::size_t>(s) * um + static_cast<std::size_t>(j);
    // ready: after the local predecessor (F chunk 0 -> F chunk 1 at the turn, the loss, the
    // I of the other chunk at the turn) and the producer on another rank
    double ready = now[r];
    double local = -1;
    if (kind == op::forward && k == 1 && r + 1 == up) local = f_end[static_cast<std::size_t>(p - 1) * um + static_cast<std::size_t>(j)];
    if (kind == op::backward_input && k == 1 && r == 0) local = f_end[at];
    if (kind == op::backward_input && k == 0 && r + 1 == up) local = i_end[static_cast<std::size_t>(p) * um + static_cast<std::size_t>(j)];
    ready = local > ready ? local : ready;
    double const prod = kind == op::forward ? f_producer(r, k, j) : i_producer(r, k, j);
    if (prod >= 0 && prod + c > ready) ready = prod + c;
    if (first[r] < 0) first[r] = ready;
    if (nf[2 * r] > 0 && ready > now[r]) {
      idle[r] += ready - now[r];
      worst_idle = idle[r] > worst_idle ? idle[r] : worst_idle;
    }
    lists[r].push_back(make_action(kind, s, j, k));
    if (kind == op::forward) {
      now[r] = ready + F;
      f_end[at] = now[r];
      ++nf[slot];
      ++held[r];
    } else {
      now[r] = ready + B;
      i_end[at] = now[r];
      ++ni[slot];
      queue[r * 2 * um + static_cast<std::size_t>(wtail[r]++)] = s * m + j;
    }
  };
  // 1. warm-up
  for (std::size_t r = 0; r < up; ++r) place(r, op::forward, 0);
  for (std::size_t i = up; i-- > 0;) {
    if (i + 1 < up) {
      double const arrival = f_end[static_cast<std::size_t>(S - 2 - static_cast<int>(i)) * um] + c;
      while (held[i] + 2 + 2 * static_cast<int>(i) <= limit && now[i] + F <= arrival && nf[2 * i] < m)
        for (std::size_t q = 0; q <= i; ++q) place(q, op::forward, 0);
    }
    place(i, op::forward, 1);
  }
  int turn = 0;
  for (std::size_t i = 1; i < up; ++i)
    while (nf[2 * i] + nf[2 * i + 1] < nf[2 * i - 2] + nf[2 * i - 1] ||
           (nf[2 * i + 1] <= nf[2 * i - 1] && nf[2 * i - 1] < m)) {
      bool any = false;
      for (std::size_t q = up; q-- > i;) {
        std::size_t const slot = 2 * q + static_cast<std::size_t>(turn);
        if (nf[slot] >= m || held[q] >= limit) continue;
        // chunk 1 needs its input placed (from above, or the turn)
        if (turn == 1 && (nf[2 * q + 1] >= nf[2 * q] || (q + 1 < up && f_producer(q, 1, nf[slot]) < 0))) continue;
        if (turn == 0 && q > 0 && f_producer(q, 0, nf[slot]) < 0) continue;
        place(q, op::forward, turn);
        any = true;
      }
      turn = 1 - turn;
      if (!any && !(nf[2 * i] + nf[2 * i + 1] < nf[2 * i - 2] + nf[2 * i - 1])) break;
      if (!any && turn == 0) break; // neither chunk can move: stop catching up
    }
  // 2. rounds
  vec<int> order_v(up, 0);
  int* const order = order_v.data();
  for (int round = 0; round < 2 * m; ++round) {
    // chunk 0's I where its gradient is placed (or the turn), else chunk 1's
    std::size_t n0 = 0;
    for (std::size_t r = up; r-- > 0;) {
      int const j0 = ni[2 * r], j1 = ni[2 * r + 1];
      bool const zero = j0 < j1 && (r + 1 == up || i_producer(r, 0, j0) >= 0 || j1 >= m);
      if (zero) order[n0++] = static_cast<int>(r);
    }
    for (std::size_t n = 0; n < n0; ++n) { // descending
      std::size_t const r = static_cast<std::size_t>(order[n]);
      if (r + 1 < up && i_producer(r, 0, ni[2 * r]) < 0) continue;
      fill(r, r + 1 < up ? i_producer(r, 0, ni[2 * r]) : -1.0, true);
      place(r, op::backward_input, 0);
    }
    for (std::size_t r = 0; r < up; ++r) {
      bool was_zero = false;
      for (std::size_t n = 0; n < n0; ++n) was_zero = was_zero || static_cast<std::size_t>(order[n]) == r;
      if (was_zero) continue;
      int const j1 = ni[2 * r + 1];
      if (j1 >= nf[2 * r + 1]) continue;
      double const prod = i_producer(r, 1, j1);
      if (r > 0 && prod < 0) continue;
      fill(r, r > 0 ? prod : -1.0, rule.fill_before_backward);
      place(r, op::backward_input, 1);
    }
    for (std::size_t r = 0; r < up; ++r) {
      if (nf[2 * r + 1] >= m) continue;
      int k = -1;
      if (nf[2 * r + 1] >= nf[2 * r]) k = 0;
      else if (r + 1 == up || f_producer(r, 1, nf[2 * r + 1]) >= 0) k = 1;
      else if (nf[2 * r] < m && (r == 0 || f_producer(r, 0, nf[2 * r]) >= 0)) k = 0;
      if (k < 0 || (k == 0 && nf[2 * r] >= m)) continue;
      if (k == 0 && r > 0 && f_producer(r, 0, nf[2 * r]) < 0) continue;
      while (held[r] >= limit && whead[r] < wtail[r]) run_weight(r);
      if (held[r] >= limit) continue;
      double const prod = k == 0 ? (r == 0 ? -1.0 : f_producer(r, 0, nf[2 * r])) : (r + 1 == up ? -1.0 : f_producer(r, 1, nf[2 * r + 1]));
      fill(r, prod, rule.fill_before_forward);
      place(r, op::forward, k);
    }
  }
  for (std::size_t r = 0; r < up; ++r) {
    if (nf[2 * r] < m || nf[2 * r + 1] < m || ni[2 * r] < m || ni[2 * r + 1] < m) return run;
    while (whead[r] < wtail[r]) run_weight(r);
    double const span = now[r] - first[r];
    out.time.span = span > out.time.span ? span : out.time.span;
    out.time.makespan = now[r] > out.time.makespan ? now[r] : out.time.makespan;
  }
  for (std::size_t r = 0; r < up; ++r) run.idle.push_back(idle[r]);
  run.worst_idle = worst_idle;
  out.time.ok = true;
  return run;
}

/// The reference's four variants (W's filling before F's, before I's), each re-run with its
/// per-rank idle as the approved idle while that lowers its largest idle; of all runs, the
/// shortest list-order span (then makespan).
constexpr timed_order zb_v_reference_best(params const& pr, int limit) {
  timed_order best{};
  for (int v = 0; v < 4; ++v) {
    zb_v_greedy_rule const rule{(v & 1) != 0, (v & 2) != 0};
    zb_v_greedy_run run = zb_v_reference_greedy(pr, limit, rule, nullptr);
    for (int again = 0; again < 4 && run.order.time.ok; ++again) {
      if (!best.time.ok || shorter(run.order.time, best.time)) best = run.order;
      zb_v_greedy_run next = zb_v_reference_greedy(pr, limit, rule, run.idle.data());
      if (!next.order.time.ok || next.worst_idle >= run.worst_idle) break;
      run = static_cast<zb_v_greedy_run&&>(next);
    }
  }
  return best;
}

} // namespace detail

/// ZB-V (zero bubble, V placement): rank r holds stages r and 2p-1-r; backward split into
/// I and W. At most 2p chunk-activations (p in the reference unit, as 1F1B's rank 0) on
/// every rank. Candidates, all simulated under `params::cost` (F, B, W and the link latency
/// c):
///  1. detail::zb_v_schedule, a list scheduler that follows the costs and the latency (see
///     there for the rule), with up to three tie-breaking variants; between them the shortest
///     makespan (then the largest rank span) wins;
///  2. while that winner leaves some rank idle: the textbook order (PyTorch's ZBV,
///     detail::zb_v_textbook_table), as built and with its W's moved into the waits for late
///     inputs (detail::float_weights_into_waits, limited to its own peak memory). Each
///     replaces the best so far only when its largest rank span is shorter (or equal with a
///     shorter makespan); and the reference repository's ZB-V greedy, its four variants
///     and re-runs (detail::zb_v_reference_best). (Floating the list scheduler's W's too wins rarely, 2 of the 100
///     cases of tests/cpu/schedules_textbook.cpp, and costs constexpr operations that
///     generation near p = 16 cannot spare.)
/// So the largest rank span is never longer than the textbook order's, for any costs and
/// latency, within 2p chunk-activations. With F = B = W, c = 0 and m >= 2p the first run
/// already has every rank busy from its first pass to its last (zero bubble) and nothing else
/// is built, which keeps generation at p = 16, m = 128 within the compilers' default
/// constexpr limits. Any m >= 1.
struct zb_v_family {
  static constexpr const char* name = "zb-v";
  static constexpr diagnostic check(params const& pr) { return detail::check_zb_v(pr); }
  static constexpr table generate(params const& pr) {
    table own = generate_own(pr);
    table alt = alternative(pr);
    if (prefer_alternative(own, alt, pr)) return alt;
    return own;
  }
  // generate() in two constant evaluations for the compiler (split_generator): the orders
  // above, then the reference repository's greedy (detail::zb_v_reference_best), taken when
  // the first leaves a rank idle and it is shorter
  static constexpr table alternative(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    cost_model const& c = pr.cost;
    if (c.f == c.b && c.b == c.w && c.c == 0 && pr.m >= 2 * pr.p) return failed({errc::not_generated}); // zero bubble already
    detail::timed_order greedy = detail::zb_v_reference_best(pr, 2 * pr.p);
    if (!greedy.time.ok) return failed({errc::not_generated});
    return static_cast<table&&>(greedy.t);
  }
  static constexpr bool prefer_alternative(table const& own, table const& alt, params const& pr) {
    if (!own.ok() || !alt.ok()) return false;
    detail::split_timing const mine = detail::time_split_order(own, pr.cost);
    double const busy = 2.0 * pr.m * (pr.cost.f + pr.cost.b + pr.cost.w);
    if (mine.ok && mine.span <= busy) return false; // no rank idles: nothing to gain
    detail::split_timing const theirs = detail::time_split_order(alt, pr.cost);
    return theirs.ok && (!mine.ok || detail::shorter(theirs, mine));
  }
  static constexpr table generate_own(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    int const limit = 2 * pr.p;
    constexpr detail::zb_v_rule rules[] = {{2, true}, {3, true}, {2, false}};
    detail::zb_v_run best = detail::zb_v_schedule(pr, limit, rules[0]);
    // busy time of every rank: no order has a rank span below it
    double const busy = 2.0 * pr.m * (pr.cost.f + pr.cost.b + pr.cost.w);
    auto idle_left = [&] { return best.t.ok() && best.span > busy; };
    for (std::size_t i = 1; i < sizeof(rules) / sizeof(rules[0]) && idle_left(); ++i) {
      detail::zb_v_run run = detail::zb_v_schedule(pr, limit, rules[i]);
      if (run.t.ok() && (run.makespan < best.makespan || (run.makespan == best.makespan && run.span < best.span)))
        best = static_cast<detail::zb_v_run&&>(run);
    }
    if (!best.t.ok() || idle_left()) {
      // more candidates (2. above); a list scheduler that stalled counts as endless
      detail::split_timing best_time{best.t.ok() ? best.span : 1e300, best.t.ok() ? best.makespan : 1e300, true};
      table winner = static_cast<table&&>(best.t);
      auto consider = [&](table&& t, detail::split_timing const& time) {
        if (time.ok && detail::shorter(time, best_time)) {
          winner = static_cast<table&&>(t);
          best_time = time;
        }
      };
      table book = detail::zb_v_textbook_table(pr);
      detail::split_timing const book_time = detail::time_split_order(book, pr.cost);
      // floated with its own peak as the limit: floating raises no rank's memory
      detail::floated_order floated_book = detail::float_weights_into_waits(book, pr.cost, detail::peak_chunks(book));
      consider(static_cast<table&&>(book), book_time);
      consider(static_cast<table&&>(floated_book.t), floated_book.time);
      return winner;
    }
    return static_cast<table&&>(best.t);
  }
};

template <class... Ps> using zb_v = schedule<zb_v_family, Ps...>;

} // namespace pipesched
