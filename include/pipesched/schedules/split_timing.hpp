// pipesched: timing of a split-backward order (F, I, W) run strictly in list order, used by
// the zero-bubble generators to compare their candidate orders.
#pragma once

#include "pipesched/core/table.hpp"
#include "pipesched/core/vec.hpp"

namespace pipesched::detail {

/// Times of a split-backward table run in list order.
struct split_timing {
  double span = 0;     ///< largest rank span (first start to last end on a rank)
  double makespan = 0; ///< end of the last pass on any rank
  bool ok = false;     ///< false when the orders wait on each other
};

/// An order of passes and its list-order times (a generator that places every pass at
/// max(rank free, input there) knows them without a run).
struct timed_order {
  table t;
  split_timing time; ///< time.ok false: no order was made
};

/// Largest number of chunk-activations any rank holds in `order` (F +1, W -1).
constexpr int peak_chunks(table const& order) {
  int peak = 0;
  for (auto const& list : order.lists) {
    int held = 0;
    for (action const& a : list) {
      held += a.kind == op::forward ? 1 : a.kind == op::backward_weight ? -1 : 0;
      peak = held > peak ? held : peak;
    }
  }
  return peak;
}

/// Whether `a` is strictly better than `b`: a shorter largest rank span, or an equal one
/// (up to rounding) and a shorter makespan.
constexpr bool shorter(split_timing const& a, split_timing const& b) {
  double const eps = 1e-9 * (b.span > 1 ? b.span : 1);
  return a.span < b.span - eps || (a.span <= b.span + eps && a.makespan < b.makespan - eps);
}

/// Runs every rank's list in order, each pass starting at max(rank free, inputs ready)
/// (reference: schedules.md, Dependencies, rule 4). Inputs: F(s, j) needs F(s-1, j);
/// I(s, j) needs I(s+1, j), the last stage's I its own F (the loss); W follows its I on the
/// same rank by list order. A dependency between two ranks costs the link latency c (rule 3;
/// V placement: the turn at rank p-1 stays on one rank and costs nothing). Plain routes
/// (every micro-batch visits 0..S-1) only: the generators that call it build no others.
constexpr split_timing time_split_order(table const& t, cost_model const& cost) {
  int const p = t.ranks, m = t.microbatches, S = t.stages;
  auto const up = static_cast<std::size_t>(p), sm = static_cast<std::size_t>(S) * static_cast<std::size_t>(m);
  vec<double> buf(2 * sm + 2 * up, -1.0);
  double* const f_end = buf.data();   // [s*m + j], < 0: not run yet
  double* const i_end = f_end + sm;   // [s*m + j]
  double* const free_at = i_end + sm; // [r]
  double* const start = free_at + up; // [r], < 0: nothing run yet
  vec<std::size_t> next_v(up, 0);     // position of each rank's next pass
  std::size_t* const next = next_v.data();
  for (std::size_t r = 0; r < up; ++r) free_at[r] = 0.0;
  int const* const rank = t.stage_rank.data();
  bool progress = true;
  // sweeps over the ranks, downwards and upwards in turn: forwards travel to higher ranks
  // and input gradients to lower ones, so each direction's chains advance in one sweep
  for (std::size_t sweep = 0; progress; ++sweep) {
    progress = false;
    for (std::size_t i = 0; i < up; ++i) {
      std::size_t const r = sweep % 2 == 0 ? i : up - 1 - i;
      action const* const l = t.lists[r].data();
      std::size_t const n = t.lists[r].size();
      std::size_t k = next[r];
      double now = free_at[r];
      for (; k < n; ++k) {
        action const& a = l[k];
        int const s = a.stage;
        std::size_t const key = static_cast<std::size_t>(s) * static_cast<std::size_t>(m) + a.mb;
        double ready = now, dur = cost.w;
        if (a.kind == op::forward) {
          if (s > 0) {
            double const e = f_end[key - static_cast<std::size_t>(m)];
            if (e < 0) break;
            double const in = e + (rank[s - 1] == rank[s] ? 0.0 : cost.c);
            ready = in > ready ? in : ready;
          }
          dur = cost.f;
        } else if (a.kind == op::backward_input) {
          double const e = s + 1 < S ? i_end[key + static_cast<std::size_t>(m)] : f_end[key];
          if (e < 0) break;
          double const in = e + (s + 1 < S && rank[s + 1] != rank[s] ? cost.c : 0.0);
          ready = in > ready ? in : ready;
          dur = cost.b;
        }
        if (start[r] < 0) start[r] = ready;
        now = ready + dur;
        if (a.kind == op::forward) f_end[key] = now;
        else if (a.kind == op::backward_input) i_end[key] = now;
      }
      if (k != next[r]) progress = true;
      next[r] = k;
      free_at[r] = now;
    }
  }
  split_timing out{};
  for (std::size_t r = 0; r < up; ++r) {
    if (next[r] < t.lists[r].size()) return out;
    double const span = free_at[r] - (start[r] < 0 ? 0.0 : start[r]);
    out.span = span > out.span ? span : out.span;
    out.makespan = free_at[r] > out.makespan ? free_at[r] : out.makespan;
  }
  out.ok = true;
  return out;
}

/// A split-backward order with its W passes moved, and its list-order times.
struct floated_order {
  table t;
  split_timing time;
};

/// `order`'s F and I passes in their order, with its W passes taken out and run where they
/// fill a wait. Every rank runs its F's and I's in list order, each at max(rank free, input
/// there) as in time_split_order; when its next F or I waits for an input, it first runs its
/// pending W's (in their list order, each once its I ran) while the W ends no later than the
/// input arrives, so the wait is filled and nothing starts later. That is the reference
/// greedy generators' W rule ("places pending W's (oldest first) while the awaited input
/// arrives no earlier than now + W (the W fills the wait)": schedules.md, "How the reference
/// greedy generators use costs and link latency"). A W also runs before an F while the rank
/// holds `limit` chunk-activations ("Whenever memory would exceed the limit, W's are placed
/// first", same section), and the W's left run at the end. With the W's out of the way the
/// I's reach the upstream ranks sooner, which is what a link latency c > 0 makes costly.
/// `limit` must be at least peak_chunks(order); then no rank holds more than `limit` (the W's
/// ahead of an F in `order` have had their I's run by then, so enough of them are ready to
/// bring the count down to what `order` holds there), and the result promises the larger of
/// `limit` and what `order` promises (memory_bound_chunks); with `limit` = peak_chunks(order)
/// the peak does not grow. The F and I passes keep their order, so the result is valid
/// whenever `order` is; time.ok is false when `order` waits on itself. Not always shorter
/// than `order` (a W held back may have to run before a forward later): callers time both.
constexpr floated_order float_weights_into_waits(table const& order, cost_model const& cost, int limit) {
  int const p = order.ranks, m = order.microbatches, S = order.stages;
  floated_order out{};
  out.t = make_table(p, m, order.chunks, order.place);
  table& t = out.t;
  t.split_backward = true;
  t.memory_bound_chunks = order.memory_bound_chunks > limit ? order.memory_bound_chunks : limit;
  auto const up = static_cast<std::size_t>(p), sm = static_cast<std::size_t>(S) * static_cast<std::size_t>(m);
  // Each rank's F and I passes (in `passes`) and its W's (in `weights`), both in list order,
  // rank r's from offset[r] on; either kind runs in its own order, so a cursor per rank and
  // kind is all the state. Raw pointers: cheaper than operator[] in constant evaluation.
  std::size_t total = 0;
  for (auto const& list : order.lists) total += list.size();
  vec<action> split_v(total, action{});
  vec<std::size_t> index_v(5 * up, 0);
  action* const passes = split_v.data();
  std::size_t *const offset = index_v.data(), *const pass_end = offset + up, *const weight_end = pass_end + up;
  std::size_t *const next_pass = weight_end + up, *const next_weight = next_pass + up;
  action* const weights = passes; // filled from the top of each rank's range downwards, then reversed
  {
    std::size_t at = 0;
    for (std::size_t r = 0; r < up; ++r) {
      action const* const l = order.lists[r].data();
      std::size_t const n = order.lists[r].size();
      offset[r] = at;
      std::size_t f = at, w = at + n; // F/I from the bottom, W's from the top of the range
      for (std::size_t k = 0; k < n; ++k) {
        if (l[k].kind == op::backward_weight) weights[--w] = l[k];
        else passes[f++] = l[k];
      }
      for (std::size_t a = w, b = at + n; a + 1 < b; ++a, --b) { // W's back in list order
        action const x = weights[a];
        weights[a] = weights[b - 1];
        weights[b - 1] = x;
      }
      pass_end[r] = f;
      weight_end[r] = at + n;
      next_pass[r] = at;
      next_weight[r] = f;
      t.lists[r].reserve(n);
      at += n;
    }
  }
  vec<double> buf(2 * sm + 2 * up, -1.0);
  double* const f_end = buf.data();   // [s*m + j], < 0: not run yet
  double* const i_end = f_end + sm;   // [s*m + j]
  double* const free_at = i_end + sm; // [r]
  double* const start = free_at + up; // [r], < 0: nothing run yet
  vec<int> held_v(up, 0);             // chunk-activations held (F +1, W -1)
  int* const held = held_v.data();
  for (std::size_t r = 0; r < up; ++r) free_at[r] = 0.0;
  int const* const rank = order.stage_rank.data();
  auto key_of = [m](action const& a) {
    return static_cast<std::size_t>(a.stage) * static_cast<std::size_t>(m) + a.mb;
  };
  bool progress = true;
  for (std::size_t sweep = 0; progress; ++sweep) { // ranks up and down in turn, as above
    progress = false;
    for (std::size_t i = 0; i < up; ++i) {
      std::size_t const r = sweep % 2 == 0 ? i : up - 1 - i;
      vec<action>& ran_list = t.lists[r]; // the same actions, in the order they run
      double now = free_at[r];
      std::size_t k = next_pass[r], w = next_weight[r];
      auto weight_ready = [&] { return w < weight_end[r] && i_end[key_of(weights[w])] >= 0; };
      auto run_weight = [&] {
        ran_list.push_back(weights[w++]);
        now += cost.w;
        --held[r];
      };
      for (; k < pass_end[r]; ++k) {
        action const& a = passes[k];
        std::size_t const key = key_of(a);
        int const s = a.stage;
        double input = now; // when the pass's input is there
        double dur = cost.f;
        if (a.kind == op::forward) {
          if (s > 0) {
            double const e = f_end[key - static_cast<std::size_t>(m)];
            if (e < 0) break;
            input = e + (rank[s - 1] == rank[s] ? 0.0 : cost.c);
          }
          while (held[r] >= limit && weight_ready()) run_weight(); // room for the activation
        } else {
          double const e = s + 1 < S ? i_end[key + static_cast<std::size_t>(m)] : f_end[key];
          if (e < 0) break;
          input = e + (s + 1 < S && rank[s + 1] != rank[s] ? cost.c : 0.0);
          dur = cost.b;
        }
        while (now + cost.w <= input && weight_ready()) run_weight(); // fill the wait
        double const begin = input > now ? input : now;
        if (start[r] < 0) start[r] = begin;
        now = begin + dur;
        ran_list.push_back(a);
        if (a.kind == op::forward) {
          f_end[key] = now;
          ++held[r];
        } else {
          i_end[key] = now;
        }
      }
      if (k == pass_end[r]) // every F and I has run: the W's left, in order
        while (weight_ready()) run_weight();
      if (k != next_pass[r] || w != next_weight[r]) progress = true;
      next_pass[r] = k;
      next_weight[r] = w;
      free_at[r] = now;
    }
  }
  for (std::size_t r = 0; r < up; ++r) {
    if (t.lists[r].size() < order.lists[r].size()) return out;
    double const span = free_at[r] - (start[r] < 0 ? 0.0 : start[r]);
    out.time.span = span > out.time.span ? span : out.time.span;
    out.time.makespan = free_at[r] > out.time.makespan ? free_at[r] : out.time.makespan;
  }
  out.time.ok = true;
  return out;
}

} // namespace pipesched::detail
