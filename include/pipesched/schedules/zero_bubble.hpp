// pipesched: zero-bubble schedules with one chunk per rank (ZB-H1, ZB-H2).
#pragma once

#include <vector>

#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/split_timing.hpp"

namespace pipesched {

namespace detail {

constexpr diagnostic zb_check(params const& pr) {
  if (auto d = check_common(pr)) return d;
  if (pr.v > 1) return {errc::needs_one_chunk};
  return {};
}

/// Greedy list scheduler for one chunk per rank with split backward. Ranks advance in time
/// order; a rank that is free runs, by priority: the next I whose gradient has arrived; the
/// next F whose input has arrived, while fewer than `cap` activations are live on the rank
/// (F adds one, W releases one); its oldest pending W. Otherwise it idles until the next
/// arrival. I's and W's go in micro-batch order. The live count never exceeds `cap`.
/// `span` receives the largest rank span of the times it assigned (an upper bound on the
/// span of the list-order run, which can only start passes earlier).
constexpr table zb_greedy(params const& pr, int cap, double& span) {
  int const p = pr.p, m = pr.m;
  double const c = pr.cost.c;
  double const inf = 1e300;
  table t = make_table(p, m, 1, placement::loop);
  t.split_backward = true;
  for (auto& l : t.lists) l.reserve(3 * static_cast<std::size_t>(m));
  vec<action>* const lst = t.lists.data();
  std::size_t const up = static_cast<std::size_t>(p), um = static_cast<std::size_t>(m), pm = up * um;
  std::vector<double> buf(2 * pm + 4 * up, -1.0);
  double* const f_end = buf.data();        // [r*m + j]
  double* const i_end = f_end + pm;        // [r*m + j]
  double* const free_at = i_end + pm;      // [r]
  double* const idle_since = free_at + up; // [r], < 0 while the rank is busy
  double* const first = idle_since + up;   // [r] start of the rank's first pass
  double* const last = first + up;         // [r] end of the rank's last pass
  std::vector<int> counts(3 * up, 0);
  int* const nf = counts.data(); // passes done so far, per kind
  int* const ni = nf + up;
  int* const nw = ni + up;
  for (std::size_t r = 0; r < up; ++r) free_at[r] = 0.0;
  auto wake = [&](std::size_t q, double arrival) {
    if (idle_since[q] < 0) return;
    double const tq = arrival > idle_since[q] ? arrival : idle_since[q];
    free_at[q] = tq < free_at[q] ? tq : free_at[q];
  };
  for (int remaining = 3 * p * m; remaining > 0;) {
    std::size_t r = 0;
    for (std::size_t q = 1; q < up; ++q)
      if (free_at[q] < free_at[r]) r = q;
    double const now = free_at[r];
    if (now >= inf) break; // every rank waits: not reached for cap >= 1 (verify would say)
    idle_since[r] = -1.0;
    std::size_t const row = r * um;
    int const jf = nf[r], ji = ni[r];
    double f_in = inf, i_in = inf; // arrival of the next F's input and the next I's gradient
    if (jf < m && jf - nw[r] < cap) {
      double const e = r == 0 ? 0.0 : f_end[row - um + static_cast<std::size_t>(jf)];
      f_in = e < 0 ? inf : (r == 0 ? 0.0 : e + c);
    }
    if (ji < jf) {
      double const e = r + 1 == up ? 0.0 : i_end[row + um + static_cast<std::size_t>(ji)];
      i_in = e < 0 ? inf : (r + 1 == up ? 0.0 : e + c);
    }
    double end = now;
    if (i_in <= now) {
      lst[r].push_back(make_action(op::backward_input, static_cast<int>(r), ji)); // stage r: one chunk per rank
      end = i_end[row + static_cast<std::size_t>(ji)] = now + pr.cost.b;
      ++ni[r];
      if (r > 0) wake(r - 1, end + c);
    } else if (f_in <= now) {
      lst[r].push_back(make_action(op::forward, static_cast<int>(r), jf));
      end = f_end[row + static_cast<std::size_t>(jf)] = now + pr.cost.f;
      ++nf[r];
      if (r + 1 < up) wake(r + 1, end + c);
    } else if (nw[r] < ji) {
      lst[r].push_back(make_action(op::backward_weight, static_cast<int>(r), nw[r]));
      end = now + pr.cost.w;
      ++nw[r];
    } else {
      idle_since[r] = now;
      free_at[r] = f_in < i_in ? f_in : i_in;
      continue;
    }
    if (first[r] < 0) first[r] = now;
    free_at[r] = last[r] = end;
    --remaining;
  }
  span = 0;
  for (std::size_t r = 0; r < up; ++r) {
    double const s = last[r] - first[r];
    span = s > span ? s : span;
  }
  t.memory_bound_chunks = cap < m ? cap : m;
  return t;
}

/// The zero-bubble repository's ZB-H2-like greedy, as shared/reference/schedules.md describes
/// it ("How the reference greedy generators use costs and link latency"), one chunk per rank,
/// at most `limit` live activations per rank:
///  1. micro-batch 0's forwards on every rank; then, from the last rank down, rank j adds
///     warm-up forwards (each with the forwards of the same micro-batch on the ranks below
///     that lack it, so every input exists) while it and they hold fewer than `limit` and
///     the forward ends no later than micro-batch 0's input gradient reaches rank j (rank
///     j+1's I end + c; on the last rank its own loss, so none), then runs that I;
///  2. for each following micro-batch: one forward per rank (ranks up, where the rank below
///     is ahead), then one I per rank (ranks down);
///  3. what a full memory held back, then the W's left, at the end.
/// Before every F or I the rank runs pending W's (oldest first) while they fit in the wait
/// for its input, then one more if the wait left exceeds the largest idle time any rank has
/// gathered so far minus its own; before an F, also while it holds `limit`. Every pass is
/// placed at max(rank free, input there), as time_split_order runs lists, so the times it
/// returns are the list-order run's.
constexpr timed_order zb_h2_reference_greedy(params const& pr, int limit) {
  int const p = pr.p, m = pr.m;
  double const F = pr.cost.f, B = pr.cost.b, W = pr.cost.w, c = pr.cost.c;
  timed_order out{};
  out.t = make_table(p, m, 1, placement::loop);
  table& t = out.t;
  t.split_backward = true;
  t.memory_bound_chunks = limit;
  std::size_t const up = static_cast<std::size_t>(p), um = static_cast<std::size_t>(m), pm = up * um;
  for (auto& l : t.lists) l.reserve(3 * um);
  vec<double> times(2 * pm + 3 * up, -1.0);
  double* const f_end = times.data();   // [r*m + j], < 0: not placed
  double* const i_end = f_end + pm;     // [r*m + j]
  double* const now = i_end + pm;       // [r] the rank's clock
  double* const idle = now + up;        // [r] idle since the rank's first pass
  double* const first = idle + up;      // [r] start of its first pass, < 0: none yet
  vec<int> counts(4 * up, 0);
  int* const nf = counts.data(); // F's placed
  int* const ni = nf + up;       // I's placed
  int* const nw = ni + up;       // W's placed
  int* const held = nw + up;     // live activations (F +1, W -1)
  for (std::size_t r = 0; r < up; ++r) now[r] = idle[r] = 0.0;
  double worst_idle = 0;
  auto run_weight = [&](std::size_t r) {
    t.lists[r].push_back(make_action(op::backward_weight, static_cast<int>(r), nw[r]++));
    --held[r];
    now[r] += W;
  };
  // pass kind k (F or I) of micro-batch j on rank r, its input there at `in`
  auto place = [&](std::size_t r, op k, int j, double in) {
    if (k == op::forward)
      while (held[r] >= limit && nw[r] < ni[r]) run_weight(r);
    while (nw[r] < ni[r] && now[r] + W <= in) run_weight(r);
    if (nw[r] < ni[r] && in - now[r] > 0 && in - now[r] > worst_idle - idle[r]) run_weight(r);
    double const begin = in > now[r] ? in : now[r];
    if (first[r] < 0) first[r] = begin;
    else if (begin > now[r]) {
      idle[r] += begin - now[r];
      worst_idle = idle[r] > worst_idle ? idle[r] : worst_idle;
    }
    std::size_t const at = r * um + static_cast<std::size_t>(j);
    t.lists[r].push_back(make_action(k, static_cast<int>(r), j));
    if (k == op::forward) {
      now[r] = begin + F;
      f_end[at] = now[r];
      ++nf[r];
      ++held[r];
    } else {
      now[r] = begin + B;
      i_end[at] = now[r];
      ++ni[r];
    }
  };
  // when the input of F(r, j) / I(r, j) is there (its producer placed)
  auto forward_input = [&](std::size_t r, int j) { return r == 0 ? 0.0 : f_end[(r - 1) * um + static_cast<std::size_t>(j)] + c; };
  auto grad_input = [&](std::size_t r, int j) {
    return r + 1 == up ? f_end[r * um + static_cast<std::size_t>(j)] : i_end[(r + 1) * um + static_cast<std::size_t>(j)] + c;
  };
  // a rank may run its next forward: one left, memory for it (or a W to make some), and
  // its input placed (the rank below ahead of it)
  auto forward_ok = [&](std::size_t r) {
    return nf[r] < m && (held[r] < limit || nw[r] < ni[r]) && (r == 0 || nf[r - 1] > nf[r]);
  };
  // 1. warm-up
  for (std::size_t r = 0; r < up; ++r) place(r, op::forward, 0, forward_input(r, 0));
  for (std::size_t j = up; j-- > 0;) {
    if (j + 1 < up) {
      double const arrival = grad_input(j, 0);
      while (nf[j] < m) {
        // rank j's next forward k, with the ranks below placing theirs first where missing:
        // when would it end, and is there memory on each?
        int const k = nf[j];
        double end = 0;
        bool room = true;
        for (std::size_t q = 0; q <= j && room; ++q) {
          if (nf[q] > k) {
            end = f_end[q * um + static_cast<std::size_t>(k)];
            continue;
          }
          room = held[q] < limit;
          double const in = q == 0 ? 0.0 : end + c;
          end = (in > now[q] ? in : now[q]) + F;
        }
        if (!room || end > arrival) break;
        for (std::size_t q = 0; q <= j; ++q)
          if (nf[q] == k) place(q, op::forward, k, forward_input(q, k));
      }
    }
    place(j, op::backward_input, 0, grad_input(j, 0));
  }
  // 2. steady state and cool-down: one round per micro-batch
  for (int k = 1; k < m; ++k) {
    for (std::size_t r = 0; r < up; ++r)
      if (forward_ok(r)) place(r, op::forward, nf[r], forward_input(r, nf[r]));
    for (std::size_t r = up; r-- > 0;)
      if (ni[r] < nf[r] && (r + 1 == up || ni[r + 1] > ni[r])) place(r, op::backward_input, ni[r], grad_input(r, ni[r]));
  }
  // 3. what a full memory or a missing input held back, then the W's
  for (bool more = true; more;) {
    more = false;
    for (std::size_t r = 0; r < up; ++r)
      for (; forward_ok(r); more = true) place(r, op::forward, nf[r], forward_input(r, nf[r]));
    for (std::size_t r = up; r-- > 0;)
      for (; ni[r] < nf[r] && (r + 1 == up || ni[r + 1] > ni[r]); more = true)
        place(r, op::backward_input, ni[r], grad_input(r, ni[r]));
  }
  for (std::size_t r = 0; r < up; ++r) {
    if (nf[r] < m || ni[r] < m) return out; // not reached: every rank can always go on
    while (nw[r] < ni[r]) run_weight(r);
    double const span = now[r] - first[r];
    out.time.span = span > out.time.span ? span : out.time.span;
    out.time.makespan = now[r] > out.time.makespan ? now[r] : out.time.makespan;
  }
  out.time.ok = true;
  return out;
}

/// ZB-H1's order: 1F1B with I for B, and rank r's W's deferred by r.
constexpr table zb_h1_table(params const& pr) {
  table t = make_table(pr.p, pr.m, 1, placement::loop);
  t.split_backward = true;
  for (auto& l : t.lists) l.reserve(3 * static_cast<std::size_t>(pr.m));
  for (int r = 0; r < pr.p; ++r) one_f_one_b_rank(t, r, op::backward_input, r);
  t.memory_bound_chunks = pr.p < pr.m ? pr.p : pr.m;
  return t;
}

/// The cost-blind textbook ZB-H2 (reference: schedules.md, Zero bubble, ZB-H2: "extra
/// warm-up forwards and W's fill the tail", memory 2p-1; the "1F1B-like ZB-H2" of "How the
/// reference greedy generators use costs and link latency"): the order the paper's rule
/// gives in unit time steps (F = B = W = 1, c = 0), whatever the real costs. At every step
/// each rank runs, decided from what had ended before the step: the I whose gradient has
/// arrived; else its next forward while it holds fewer than 2p-1 activations; else its
/// oldest pending W. I's and forwards go in micro-batch order. Memory min(2p-1, m).
constexpr table zb_h2_unit_step_table(params const& pr) {
  int const p = pr.p, m = pr.m;
  table t = make_table(p, m, 1, placement::loop);
  t.split_backward = true;
  for (auto& l : t.lists) l.reserve(3 * static_cast<std::size_t>(m));
  int const cap = 2 * p - 1, never = 1 << 30;
  std::size_t const up = static_cast<std::size_t>(p), um = static_cast<std::size_t>(m);
  // raw pointers into one buffer: cheaper than operator[] in constant evaluation
  std::vector<int> buf(2 * up * um + 5 * up, 0);
  int* const f_step = buf.data();    // [r*m + j]: step at whose end F(r, j) is done; never: not run
  int* const i_step = f_step + up * um; // [r*m + j]: the same for I(r, j)
  int* const nf = i_step + up * um;     // [r]: passes done per kind
  int* const ni = nf + up;
  int* const nw = ni + up;
  int* const kind = nw + up; // [r]: this step's pass, 0 F, 1 I, 2 W
  int* const mb = kind + up; // [r]: its micro-batch, -1: idle
  for (std::size_t k = 0; k < 2 * up * um; ++k) buf[k] = never;
  for (int step = 0, left = 3 * p * m; left > 0; ++step) {
    for (int r = 0; r < p; ++r) { // decide from what had ended before the step
      int const jf = nf[r], ji = ni[r];
      mb[r] = -1;
      if (ji < jf && (r + 1 == p || i_step[(r + 1) * m + ji] <= step)) kind[r] = 1, mb[r] = ji;
      else if (jf < m && jf - nw[r] < cap && (r == 0 || f_step[(r - 1) * m + jf] <= step)) kind[r] = 0, mb[r] = jf;
      else if (nw[r] < ji) kind[r] = 2, mb[r] = nw[r];
    }
    for (int r = 0; r < p; ++r) {
      if (mb[r] < 0) continue;
      --left;
      if (kind[r] == 0) {
        push(t, op::forward, r, mb[r]);
        f_step[r * m + nf[r]++] = step + 1;
      } else if (kind[r] == 1) {
        push(t, op::backward_input, r, mb[r]);
        i_step[r * m + ni[r]++] = step + 1;
      } else {
        push(t, op::backward_weight, r, mb[r]);
        ++nw[r];
      }
    }
  }
  t.memory_bound_chunks = cap < m ? cap : m;
  return t;
}

} // namespace detail

/// ZB-H1 (zero-bubble paper): rank r runs the 1F1B order (w = min(p-r-1, m) warm-up F's,
/// then (F, I) pairs, then the remaining I's) and defers its W's by r: after each I it
/// runs the oldest W once r more I's have passed, and the rest at the end, in the idle
/// tail. Memory: min(p, m) on every rank (w + 1 + r live at most).
/// Time (c = 0), I cost B: m >= p: m(F+B+W) + (p-1) max(F+B-W, F, B), which is the paper's
/// m(F+B+W) + (p-1)(F+B-W) when W <= min(F, B); m < p: (m+p-1)(F+B) + W + (m-1) max(0,
/// W - min(F, B)).
struct zb_h1_family {
  static constexpr const char* name = "zb-h1";
  static constexpr diagnostic check(params const& pr) { return detail::zb_check(pr); }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    return detail::zb_h1_table(pr);
  }
};

/// ZB-H2 (zero-bubble paper): more warm-up forwards, and W's fill the tail. Candidates, all
/// simulated under the given costs and link latency (params::cost):
///  1. the ZB-H1 order, and detail::zb_greedy with a cap of 2p-1 and of 2p live activations
///     per rank (it follows the costs and the latency); of these the smallest largest rank
///     span wins (ties: the earlier, so less memory);
///  2. while that winner leaves some rank idle: the cost-blind textbook order
///     (detail::zb_h2_unit_step_table), and the textbook order and the winner with their W's
///     moved into the waits for late inputs (detail::float_weights_into_waits, limit
///     min(2p, m)), and the reference repository's ZB-H2-like greedy as schedules.md
///     describes it (detail::zb_h2_reference_greedy, same limit). Each replaces the best so
///     far only when its list-order run has a shorter largest rank span (or an equal one and
///     a shorter makespan).
/// Hence the rank span never exceeds ZB-H1's nor the textbook order's, for any costs and
/// latency, and the memory is at most min(2p, m) (min(p, m) when the ZB-H1 order is kept,
/// e.g. often for m < 2p-1, where the warm-up cannot grow).
/// Largest rank span (c = 0), m >= 2p-1, against the paper's m(F+B+W) + (p-1)(F+B-2W)+:
///  - exact when F = B = W (zero bubble; makespan span + (p-1)F; memory 2p-1 on every
///    rank) and when F >= B and F+B <= 2W (zero bubble);
///  - F = B, W <= F/2, m >= 2p: at most the formula (the cap of 2p fills more);
///  - F < B: the first gradient reaches rank 0 after pF + (p-1)B, more than 2p forwards
///    can cover, so the warm-up idles and the formula is out of reach;
///  - other F >= B: at most the formula (tests/cpu/schedules_zero_bubble.cpp,
///    schedule.zb_h2.formula.bound_when_f_ge_b).
struct zb_h2_family {
  static constexpr const char* name = "zb-h2";
  static constexpr diagnostic check(params const& pr) { return detail::zb_check(pr); }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    table best = detail::zb_h1_table(pr);
    double best_span = detail::time_split_order(best, pr.cost).span;
    for (int cap = 2 * pr.p - 1; cap <= 2 * pr.p; ++cap) {
      double span = 0;
      table t = detail::zb_greedy(pr, cap, span);
      if (span < best_span - 1e-9 * (best_span > 1 ? best_span : 1)) {
        best = static_cast<table&&>(t);
        best_span = span;
      }
    }
    // busy time of every rank: no order has a rank span below it
    double const busy = pr.m * (pr.cost.f + pr.cost.b + pr.cost.w);
    if (best_span > busy) { // more candidates (2. above)
      // zb_greedy's span is an upper bound: compare list-order runs from here on
      detail::split_timing best_time = detail::time_split_order(best, pr.cost);
      auto consider = [&](table&& t, detail::split_timing const& time) {
        if (time.ok && detail::shorter(time, best_time)) {
          best = static_cast<table&&>(t);
          best_time = time;
        }
      };
      int const limit = 2 * pr.p < pr.m ? 2 * pr.p : pr.m; // the reference's ZB-H2 memory, min(2p, m)
      table book = detail::zb_h2_unit_step_table(pr);
      detail::split_timing const book_time = detail::time_split_order(book, pr.cost);
      detail::floated_order floated_book = detail::float_weights_into_waits(book, pr.cost, limit);
      detail::floated_order floated_best = detail::float_weights_into_waits(best, pr.cost, limit);
      consider(static_cast<table&&>(book), book_time);
      consider(static_cast<table&&>(floated_book.t), floated_book.time);
      consider(static_cast<table&&>(floated_best.t), floated_best.time);
      detail::timed_order greedy = detail::zb_h2_reference_greedy(pr, limit);
      consider(static_cast<table&&>(greedy.t), greedy.time);
    }
    return best;
  }
};

/// ZB-H1 as a type: `zb_h1<ranks<4>, microbatches<8>, costs<1.0, 1.0, 1.0>>`.
template <class... Ps> using zb_h1 = schedule<zb_h1_family, Ps...>;
/// ZB-H2 as a type: `zb_h2<ranks<4>, microbatches<8>, costs<1.0, 2.0, 1.0>>`.
template <class... Ps> using zb_h2 = schedule<zb_h2_family, Ps...>;

} // namespace pipesched
