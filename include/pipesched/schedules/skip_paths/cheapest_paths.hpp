// pipesched: skip paths — the cost-aware greedy assignment: micro-batch by micro-batch, the
// cheapest path that keeps every stage's visit quota reachable, found by a dynamic programme.
//
// Pieces, in the order they are used:
// - visit_quotas: how often each skippable stage is visited over the iteration;
// - path_search / prepare_micro_batch: what one micro-batch's search reads (hop costs,
//   visit costs, which stages it must and may visit);
// - path_state, state_index: the programme's states and their place in the cost table
//   (path_search_view: the same tables as raw pointers, for the loop inside the compiler);
// - choose_step: the transition; fill_costs_to_end takes its minimum backwards over every
//   state (least cost to the end; written out with what does not depend on the state
//   hoisted, for the compilers' budgets, and checked against choose_step state by state by
//   skip.cheapest_paths.fill_equals_the_transition), walk_cheapest_path runs it forwards
//   from the start (the lexicographically smallest optimal path);
// - cost_aware_paths: the loop over micro-batches.
#pragma once

#include "pipesched/schedules/skip_paths/config.hpp"

namespace pipesched::detail {

inline constexpr double skip_infinity = 1e300;

constexpr double link_round_trip(sim_costs const& sc, int a, int b, int p) {
  return sc.link(a, b, p) + sc.link(b, a, p);
}

/// Visits each skippable stage gets over the iteration: of T = m * kept visits (kept:
/// skippable stages per path, n skippable stages) every stage gets floor(T / n), and the
/// T mod n stages of least visit work (ties: the lower stage) one more.
constexpr vec<int> visit_quotas(skip_config const& c) {
  int const S = c.stages, last = last_skippable_stage(c), skippable = skippable_count(S, c.layout);
  sim_costs const& costs = c.costs;
  vec<int> quota(static_cast<std::size_t>(S), 0);
  int const total = c.microbatches * kept_skippable_count(c);
  for (int s = 1; s <= last; ++s) quota[static_cast<std::size_t>(s)] = skippable > 0 ? total / skippable : 0;
  int extra = skippable > 0 ? total % skippable : 0;
  vec<char> got_extra(static_cast<std::size_t>(S), 0);
  while (extra-- > 0) {
    int cheapest = -1;
    for (int s = 1; s <= last; ++s)
      if (!got_extra[static_cast<std::size_t>(s)] &&
          (cheapest < 0 || visit_work(costs, s) < visit_work(costs, cheapest)))
        cheapest = s;
    got_extra[static_cast<std::size_t>(cheapest)] = 1;
    ++quota[static_cast<std::size_t>(cheapest)];
  }
  return quota;
}

/// A state of one micro-batch's path search: the path so far.
struct path_state {
  int frontier = 0; ///< highest stage visited so far
  int swapped = 0;  ///< 1: the last visit was a swap, so the path stands on frontier - 1
  int kept = 0;     ///< skippable stages visited so far
  int swaps = 0;    ///< swaps made so far (at most max_swaps)

  /// The stage the path stands on.
  constexpr int position() const { return swapped ? frontier - 1 : frontier; }
};

/// What one micro-batch's path search reads and writes. The tables are sized once for the
/// configuration; prepare_micro_batch refills the per-micro-batch ones.
struct path_search {
  int stages = 0;          ///< S
  int to_keep = 0;         ///< skippable stages every path keeps
  int last_skippable = 0;  ///< the skippable stages are 1..last_skippable
  bool head_last = false;  ///< layout last: every path ends at S-1, a stage that is not skippable
  vec<double> round_trip;  ///< [a S + b]: link time from stage a's rank to b's and back
  vec<double> visit_cost;  ///< per stage: what visiting it costs this micro-batch (0 if not skippable)
  vec<char> must_visit;    ///< per stage: this micro-batch must visit it (its quota needs every one left)
  vec<char> may_visit;     ///< per stage: this micro-batch may visit it (quota left, or not skippable)
  vec<int> must_before;    ///< [s] (S + 1 entries): how many stages below s must be visited
  vec<double> cost_to_end; ///< per state (state_index): least cost from the state to the path's end
};

/// Raw pointers into a path_search: the fill runs once per state inside the compiler, where
/// every call (vec::operator[] included) counts against the budget.
struct path_search_view {
  int stages, to_keep;
  bool head_last;
  int per_swapped;  ///< cost_to_end's stride of `swapped` (per_kept of it per value of `kept`)
  int per_frontier; ///< cost_to_end's stride of `frontier`
  double const* round_trip;
  double const* visit_cost;
  char const* may_visit;
  int const* must_before;
  double const* cost_to_end;
};

/// cost_to_end's stride of `kept`: one entry per number of swaps.
inline constexpr int per_kept = max_swaps + 1;

constexpr path_search_view view_of(path_search const& search) {
  int const per_swapped = (search.to_keep + 1) * per_kept;
  return {search.stages,
          search.to_keep,
          search.head_last,
          per_swapped,
          2 * per_swapped,
          search.round_trip.data(),
          search.visit_cost.data(),
          search.may_visit.data(),
          search.must_before.data(),
          search.cost_to_end.data()};
}

/// Place of a state in path_search::cost_to_end: frontier-major, then swapped, kept, swaps.
constexpr std::size_t state_index(path_search_view const& v, path_state const& at) {
  return static_cast<std::size_t>(at.frontier * v.per_frontier + at.swapped * v.per_swapped + at.kept * per_kept +
                                  at.swaps);
}

/// Sizes the search tables for configuration c and fills the round-trip link times.
constexpr path_search make_path_search(skip_config const& c) {
  path_search search;
  int const S = c.stages;
  std::size_t const stages = static_cast<std::size_t>(S);
  search.stages = S;
  search.to_keep = kept_skippable_count(c);
  search.last_skippable = last_skippable_stage(c);
  search.head_last = c.layout == path_layout::last;
  search.round_trip.assign(stages * stages, 0.0);
  for (int a = 0; a < S; ++a)
    for (int b = 0; b < S; ++b)
      search.round_trip[static_cast<std::size_t>(a * S + b)] = link_round_trip(c.costs, a, b, S);
  search.visit_cost.assign(stages, 0.0);
  search.must_visit.assign(stages, 0);
  search.may_visit.assign(stages, 0);
  search.must_before.assign(stages + 1, 0);
  search.cost_to_end.assign(stages * 2 * static_cast<std::size_t>(search.to_keep + 1) * per_kept, skip_infinity);
  return search;
}

/// The per-micro-batch tables for micro-batch j of m, given each stage's quota, its quota
/// left and its visits so far (`spread` weighs the even spread of visits against the links).
/// A stage whose quota left equals the micro-batches left must be visited (which keeps every
/// quota reachable); one with none left may not. Visiting a stage costs how far it is ahead
/// of its even share (the visits of j + 1 micro-batches) times its work: ahead costs,
/// behind pays.
constexpr void prepare_micro_batch(path_search& search, skip_config const& c, double spread, int j,
                                   vec<int> const& quota, vec<int> const& quota_left, vec<double> const& visits) {
  int const S = search.stages, m = c.microbatches, micro_batches_left = m - j;
  for (int s = 0; s < S; ++s) {
    std::size_t const u = static_cast<std::size_t>(s);
    bool const skippable = s >= 1 && s <= search.last_skippable;
    search.must_visit[u] = skippable && quota_left[u] >= micro_batches_left;
    search.may_visit[u] = !skippable || quota_left[u] > 0;
    double const share = static_cast<double>(quota[u]) * static_cast<double>(j + 1) / static_cast<double>(m);
    search.visit_cost[u] = skippable ? spread * (visits[u] + 1.0 - share) * visit_work(c.costs, s) : 0.0;
  }
  for (int s = 0; s < S; ++s)
    search.must_before[static_cast<std::size_t>(s) + 1] =
        search.must_before[static_cast<std::size_t>(s)] + search.must_visit[static_cast<std::size_t>(s)];
}

/// What a path does next: ends, visits one stage, or swaps (visits a stage, then the one below).
enum class path_step_kind : std::uint8_t { end, visit, swap };

struct path_step {
  path_step_kind kind = path_step_kind::end;
  int stage = 0;   ///< visit: the stage; swap: the first stage (the second is stage - 1)
  double cost = 0; ///< the step's hops and visits plus the least cost from where it leads
  path_state to{};
};

/// The transition of the path search: the walk-back takes its steps with it, and the fill's
/// value of every state is its minimum (fill_costs_to_end writes that minimum out). From
/// state (f, swapped, kept, swaps) (a path_state, passed as its fields) a path may
/// - end: layout last only at frontier S-1 after a plain visit; round_trip anywhere, paying
///   the hop back to stage 0, if no stage above the frontier must still be visited; either
///   way only with every skippable stage to keep kept;
/// - visit y (frontier < y <= frontier + max_jump), skipping the stages between (none of
///   them a must), if y may be visited;
/// - swap: visit y, then y - 1 (both skippable, y - 1 above the frontier), with a swap left.
/// Steps come in walk-back order: y ascending, for each y the swap before the visit, so the
/// first optimal step gives the lexicographically smallest optimal path.
/// Returns the least cost over ending here and every step (`taken` null: the fill's value), or, with
/// `taken`, stores there the first step costing at most `good_enough`, else the end (the
/// walk-back: good_enough is the state's least cost plus a tolerance), and returns its cost.
constexpr double choose_step(path_search_view const& v, int f, int swapped, int kept, int swaps, double good_enough,
                             path_step* taken) {
  // locals and raw pointers: this runs once per step of every path inside the compiler,
  // where every operation counts (a member access and a call too)
  int const S = v.stages;
  int const from = swapped ? f - 1 : f; // path_state::position()
  double const* const round_trip = v.round_trip;
  double const* const visit_cost = v.visit_cost;
  double const* const cost_to_end = v.cost_to_end;
  int const* const must_before = v.must_before;
  bool const pick_first = taken != nullptr;
  // stages f+1 .. y-1 hold no must iff must_before[y] == must_before[f + 1]
  int const musts_to_frontier = must_before[f + 1];
  // ending here
  double best = skip_infinity;
  if (kept == v.to_keep) {
    if (v.head_last) best = (f == S - 1 && !swapped) ? 0.0 : skip_infinity;
    else if (S <= f + 1 || must_before[S] == musts_to_frontier) best = round_trip[from * S + 0];
  }
  if (!(v.head_last && f == S - 1)) // in layout last, S - 1 (the head) ends every path
    for (int y = f + 1; y <= f + max_jump && y < S; ++y) {
      if (y - 1 > f && must_before[y - 1] != musts_to_frontier) break; // would skip a must
      if (!v.may_visit[y]) continue;
      bool const y_is_head = v.head_last && y == S - 1; // visited, but not a skippable stage
      double const hop = round_trip[from * S + y];
      // swap: y, then y - 1, to state (y, swapped, kept + 2, swaps + 1)
      if (!y_is_head && y - 1 > f && swaps < max_swaps && v.may_visit[y - 1] && kept + 2 <= v.to_keep) {
        double const cost = hop + round_trip[y * S + y - 1] + visit_cost[y] + visit_cost[y - 1] +
                            cost_to_end[y * v.per_frontier + v.per_swapped + (kept + 2) * per_kept + swaps + 1];
        if (!pick_first) best = cost < best ? cost : best;
        else if (cost <= good_enough) {
          *taken = path_step{path_step_kind::swap, y, cost, path_state{y, 1, kept + 2, swaps + 1}};
          return cost;
        }
      }
      // visit y, to state (y, not swapped, kept (+ 1 unless y is the head), swaps)
      int const kept_after = kept + (y_is_head ? 0 : 1);
      if (kept_after <= v.to_keep && must_before[y] == musts_to_frontier) {
        // (cost_to_end's index is state_index, written out)
        double const cost = hop + visit_cost[y] + cost_to_end[y * v.per_frontier + kept_after * per_kept + swaps];
        if (!pick_first) best = cost < best ? cost : best;
        else if (cost <= good_enough) {
          *taken = path_step{path_step_kind::visit, y, cost, path_state{y, 0, kept_after, swaps}};
          return cost;
        }
      }
    }
  if (pick_first) *taken = path_step{path_step_kind::end, f, best, path_state{f, swapped, kept, swaps}};
  return best;
}

/// Fills search.cost_to_end for the current micro-batch, frontier from S-1 down (every step
/// raises the frontier, so the states a step leads to are filled first). States no path
/// reaches, or from which the path cannot keep enough stages, cost infinity.
///
/// Each state's value is choose_step's (the fill is its minimum, written out): for one
/// frontier and `swapped` the steps a path may take (which y, swap or visit, and their hops
/// and visit costs) do not depend on `kept` or `swaps`, so they are worked out once per
/// (frontier, swapped) pair and each state adds only its cost to the end. The sums are the
/// same sums in the same order (hops and visits first, then the cost to the end), so every
/// value is choose_step's to the bit, and the walk-back (choose_step itself) finds the same
/// paths; in the compiler this costs about a third of calling choose_step per state.
constexpr void fill_costs_to_end(path_search& search) {
  int const S = search.stages, to_keep = search.to_keep, last_skippable = search.last_skippable;
  path_search_view const view = view_of(search);
  double* const cost_to_end = search.cost_to_end.data();
  double const* const round_trip = view.round_trip;
  double const* const visit_cost = view.visit_cost;
  char const* const may_visit = view.may_visit;
  int const* const must_before = view.must_before;
  int const per_frontier = view.per_frontier, per_swapped = view.per_swapped;
  bool const head_last = view.head_last;
  for (int f = S - 1; f >= 0; --f) {
    int const skippable_above = f < last_skippable ? last_skippable - f : 0;
    int const musts_to_frontier = must_before[f + 1];
    // ending here (with every stage to keep kept), per `swapped`
    double end_cost[2] = {skip_infinity, skip_infinity};
    for (int swapped = 0; swapped < 2; ++swapped) {
      int const from = swapped ? f - 1 : f;
      if (head_last) end_cost[swapped] = (f == S - 1 && !swapped) ? 0.0 : skip_infinity;
      else if ((S <= f + 1 || must_before[S] == musts_to_frontier) && from >= 0) end_cost[swapped] = round_trip[from * S + 0];
    }
    // the steps from frontier f (choose_step's loop over y, its conditions that do not
    // depend on kept or swaps): up to max_jump stages y, each a swap and a visit
    int step_y[max_jump] = {};
    bool step_head[max_jump] = {}, step_swap[max_jump] = {}, step_visit[max_jump] = {};
    int steps = 0;
    if (!(head_last && f == S - 1))
      for (int y = f + 1; y <= f + max_jump && y < S; ++y) {
        if (y - 1 > f && must_before[y - 1] != musts_to_frontier) break; // would skip a must
        if (!may_visit[y]) continue;
        bool const y_is_head = head_last && y == S - 1;
        step_y[steps] = y;
        step_head[steps] = y_is_head;
        step_swap[steps] = !y_is_head && y - 1 > f && may_visit[y - 1];
        step_visit[steps] = must_before[y] == musts_to_frontier;
        ++steps;
      }
    for (int swapped = 0; swapped < 2; ++swapped) {
      if (swapped && f < 2) continue; // no such state (they stay infinite, as made)
      int const from = swapped ? f - 1 : f;
      // per step: its hops and visit costs from this position, and where in cost_to_end the
      // state it leads to sits, less the part that depends on kept and swaps
      double swap_base[max_jump] = {}, visit_base[max_jump] = {};
      int swap_to[max_jump] = {}, visit_to[max_jump] = {};
      for (int i = 0; i < steps; ++i) {
        int const y = step_y[i];
        double const hop = round_trip[from * S + y];
        if (step_swap[i]) swap_base[i] = hop + round_trip[y * S + y - 1] + visit_cost[y] + visit_cost[y - 1];
        visit_base[i] = hop + visit_cost[y];
        swap_to[i] = y * per_frontier + per_swapped + 2 * per_kept + 1; // (y, 1, kept + 2, swaps + 1)
        visit_to[i] = y * per_frontier + (step_head[i] ? 0 : per_kept);  // (y, 0, kept (+ 1), swaps)
      }
      // the states that can reach the end (the others stay infinite, as made): at most
      // f stages kept, enough stages left above to keep, a swap state has made a swap, at
      // most one swap per two kept
      int const kept_low = to_keep - skippable_above > 0 ? to_keep - skippable_above : 0;
      int const kept_high = f < to_keep ? f : to_keep;
      for (int kept = kept_low; kept <= kept_high; ++kept)
        for (int swaps = swapped; swaps <= max_swaps && 2 * swaps <= kept; ++swaps) {
          int const at = kept * per_kept + swaps; // the state's place, less frontier and swapped
          bool const may_swap = swaps < max_swaps && kept + 2 <= to_keep, may_keep = kept < to_keep;
          double best = kept == to_keep ? end_cost[swapped] : skip_infinity;
          for (int i = 0; i < steps; ++i) {
            if (step_swap[i] && may_swap) {
              double const cost = swap_base[i] + cost_to_end[swap_to[i] + at];
              best = cost < best ? cost : best;
            }
            if (step_visit[i] && (may_keep || step_head[i])) {
              double const cost = visit_base[i] + cost_to_end[visit_to[i] + at];
              best = cost < best ? cost : best;
            }
          }
          cost_to_end[f * per_frontier + swapped * per_swapped + at] = best;
        }
    }
  }
}

/// The lexicographically smallest path of least cost from stage 0 (cost_to_end filled).
constexpr vec<int> walk_cheapest_path(path_search const& search) {
  path_search_view const view = view_of(search);
  vec<int> path;
  path.push_back(0);
  path_state at{};
  for (;;) {
    double const here = view.cost_to_end[state_index(view, at)];
    double const tolerance = 1e-9 * (1.0 + (here < 0 ? -here : here));
    path_step step{};
    choose_step(view, at.frontier, at.swapped, at.kept, at.swaps, here + tolerance, &step);
    if (step.kind == path_step_kind::end) break; // ending here is optimal
    path.push_back(step.stage);
    if (step.kind == path_step_kind::swap) path.push_back(step.stage - 1);
    at = step.to;
  }
  return path;
}

/// Cost-aware paths. Quotas (visit_quotas): micro-batch j (R = m - j left) must take every
/// stage whose remaining quota is R and may take only stages with quota left, which keeps
/// the rest feasible. Among those paths (swaps and jumps within the limits) it takes the one
/// of least cost: the round-trip latency of its hops plus, per visited stage, how far the
/// stage is ahead of its even share so far times the stage's work (which spreads visits over
/// time as the rotation rule does). Ties: the lexicographically smallest path. A dynamic
/// programme over (frontier, last visit below the frontier?, stages kept, swaps made),
/// O(S * K) states per micro-batch.
constexpr vec<vec<int>> cost_aware_paths(skip_config const& c, double spread, diagnostic& err) {
  int const S = c.stages, m = c.microbatches, last_skippable = last_skippable_stage(c);
  vec<vec<int>> out(static_cast<std::size_t>(m));
  if (S == 1) {
    for (auto& path : out) path.push_back(0);
    return out;
  }
  vec<int> const quota = visit_quotas(c);
  vec<int> quota_left = quota;
  vec<double> visits(static_cast<std::size_t>(S), 0.0); // visits so far
  path_search search = make_path_search(c);
  for (int j = 0; j < m; ++j) {
    prepare_micro_batch(search, c, spread, j, quota, quota_left, visits);
    fill_costs_to_end(search);
    double const total = search.cost_to_end[state_index(view_of(search), path_state{})];
    if (!(total < skip_infinity / 2)) {
      err = diagnostic{
          errc::bad_path, -1, -1, -1, j, "no path meets the jump limit and the visit quotas: keep more stages"};
      return {};
    }
    auto& path = out[static_cast<std::size_t>(j)];
    path = walk_cheapest_path(search);
    for (int s : path) {
      std::size_t const u = static_cast<std::size_t>(s);
      if (s >= 1 && s <= last_skippable) {
        --quota_left[u];
        visits[u] += 1.0;
      }
    }
  }
  return out;
}

} // namespace pipesched::detail
