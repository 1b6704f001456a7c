// pipesched: skip paths — assigning paths: the candidates, timed; the local search; the
// public entry points assign_paths and make_skip.
#pragma once

#include <initializer_list>

#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/schedules/skip_paths/cheapest_paths.hpp"
#include "pipesched/schedules/skip_paths/event_order.hpp"
#include "pipesched/schedules/skip_paths/formula_paths.hpp"

namespace pipesched {

namespace detail {

/// `path` with its stages in ascending order (insertion sort: paths are short).
constexpr vec<int> ascending(vec<int> path) {
  for (std::size_t i = 1; i < path.size(); ++i)
    for (std::size_t k = i; k > 0 && path[k - 1] > path[k]; --k) {
      int const x = path[k];
      path[k] = path[k - 1];
      path[k - 1] = x;
    }
  return path;
}

/// Whether `path` visits `stage`.
constexpr bool visits(vec<int> const& path, int stage) {
  bool found = false;
  for (int x : path) found |= x == stage;
  return found;
}

/// Local search from `paths` (valid) for c.search_rounds rounds: moves are an adjacent swap
/// toggled in one path (x, x+1 <-> x+1, x) and one stage exchanged between micro-batches j
/// and j+1 (paths re-sorted ascending); a move stays when it meets the rules and shortens
/// the simulated iteration. Visit counts do not change, so balance holds. `best_table` is
/// the earliest-start table of `paths` (time `best_time`), and stays that of the result.
constexpr vec<vec<int>> improve_paths(skip_config const& c, vec<vec<int>> paths, double& best_time,
                                      table& best_table) {
  int const m = c.microbatches, last_skippable = last_skippable_stage(c);
  // keeps `candidate` when it meets the rules and its iteration is shorter
  auto try_move = [&](vec<vec<int>>& candidate) {
    if (check_paths(candidate, c.stages, c.layout) != path_rule::ok) return false;
    double time = 0;
    table simulated = skip_table_unchecked(c, candidate, time);
    if (!simulated.ok()) return false;
    if (time < best_time - 1e-12 * (1 + best_time)) {
      best_time = time;
      best_table = static_cast<table&&>(simulated);
      paths = candidate;
      return true;
    }
    return false;
  };
  for (int round = 0; round < c.search_rounds; ++round) {
    bool improved = false;
    for (int j = 0; j < m; ++j) {
      std::size_t const mb = static_cast<std::size_t>(j);
      // toggle an adjacent swap: two consecutive skippable stages trade places
      for (std::size_t i = 1; i + 1 < paths[mb].size(); ++i) {
        int const a = paths[mb][i], b = paths[mb][i + 1];
        if ((a + 1 == b || a == b + 1) && a >= 1 && b >= 1 && a <= last_skippable && b <= last_skippable) {
          vec<vec<int>> candidate = paths;
          candidate[mb][i] = b;
          candidate[mb][i + 1] = a;
          improved |= try_move(candidate);
        }
      }
      // exchange one skippable stage with the next micro-batch (each visits one the other skips)
      if (j + 1 >= m) continue;
      std::size_t const next = mb + 1;
      for (std::size_t i = 1; i < paths[mb].size(); ++i)
        for (std::size_t q = 1; q < paths[next].size(); ++q) {
          int const a = paths[mb][i], b = paths[next][q];
          if (a > last_skippable || b > last_skippable || a == b) continue;
          if (visits(paths[next], a) || visits(paths[mb], b)) continue;
          vec<vec<int>> candidate = paths;
          candidate[mb][i] = b;
          candidate[next][q] = a;
          candidate[mb] = ascending(candidate[mb]);
          candidate[next] = ascending(candidate[next]);
          improved |= try_move(candidate);
        }
    }
    if (!improved) break;
  }
  return paths;
}

/// The cost-aware assignment: the candidates below that meet every rule, each run through
/// the event simulation (earliest-start order) under c's costs; the one with the shortest
/// iteration (simulate()'s time of its lists) wins (ties: the earlier candidate).
/// Candidates: the plain rotation rule, the spread rule, and the greedy path search weighing
/// the even spread of visits against the links at several ratios. The local search (c.search_rounds) then starts from the winner
/// (and never makes the final table longer). `best_table` and `best_time`: the winner's
/// earliest-start table and its time (skip_table_unchecked's), for make_skip.
constexpr vec<vec<int>> best_paths(skip_config const& c, diagnostic& err, table& best_table, double& best_time) {
  vec<vec<int>> best;
  best_time = skip_infinity;
  vec<vec<vec<int>>> timed; // candidates simulated already
  auto consider = [&](vec<vec<int>> const& candidate) {
    if (candidate.empty() || check_paths(candidate, c.stages, c.layout) != path_rule::ok) return;
    for (auto const& x : timed)
      if (x == candidate) return;
    timed.push_back(candidate);
    double time = 0;
    table simulated = skip_table_unchecked(c, candidate, time);
    if (!simulated.ok()) return;
    if (time < best_time) {
      best_time = time;
      best_table = static_cast<table&&>(simulated);
      best = candidate;
    }
  };
  int const skippable = skippable_count(c.stages, c.layout);
  if (skippable > 0) consider(rotation_paths(c));
  if (skippable > 0 && c.keep < c.stages) consider(spread_paths(c));
  for (double spread : {0.25, 1.0, 4.0, 16.0}) {
    diagnostic e{};
    vec<vec<int>> candidate = cost_aware_paths(c, spread, e);
    if (!e) consider(candidate);
  }
  if (skippable == 0) consider(rotation_paths(c));
  if (!best.empty() && c.search_rounds > 0) {
    // the search times its moves in the earliest-start order; under a binding cap the final
    // table is the shortest of four orders (skip_table_shortest), so the searched paths are
    // kept only when that final table is no longer than the unsearched paths' own
    double const unsearched_time = best_time;
    table unsearched_table = best_table;
    vec<vec<int>> searched = improve_paths(c, best, best_time, best_table);
    if (skip_cap_binds(c) && searched != best) {
      double before_time = 0, after_time = 0;
      table const before = skip_table_shortest_from(c, best, unsearched_table, unsearched_time, &before_time);
      table const after = skip_table_shortest_from(c, searched, best_table, best_time, &after_time);
      if (before.ok() && (!after.ok() || before_time < after_time)) {
        searched = best;
        best_time = unsearched_time;
        best_table = static_cast<table&&>(unsearched_table);
      }
    }
    best = static_cast<vec<vec<int>>&&>(searched);
  }
  if (best.empty())
    err = diagnostic{
        errc::bad_path, -1, -1, -1, -1, "no assignment meets the jump limit and the balance rule: keep more stages"};
  return best;
}

/// assign_paths, and with the cost-aware method also the earliest-start table of the paths
/// and its time (`timed`: whether they are set; the rotation rule times nothing).
constexpr vec<vec<int>> assign_paths_timed(skip_config const& c, diagnostic& err, table& earliest, double& time,
                                           bool& timed) {
  timed = false;
  err = check_config(c);
  if (err) return {};
  vec<vec<int>> out;
  if (c.method == path_method::rotation) {
    out = rotation_paths(c);
  } else {
    out = best_paths(c, err, earliest, time);
    timed = !err;
  }
  if (err) return {};
  if (auto r = check_paths(out, c.stages, c.layout); r != path_rule::ok) {
    err = diagnostic{errc::bad_path, -1, -1, -1, -1, path_rule_text(r)};
    return {};
  }
  return out;
}

} // namespace detail

/// Paths meeting every rule for configuration c (an empty result and `err` set when none
/// could be found).
constexpr vec<vec<int>> assign_paths(skip_config const& c, diagnostic& err) {
  table earliest;
  double time = 0;
  bool timed = false;
  return detail::assign_paths_timed(c, err, earliest, time, timed);
}

/// Paths for c and their compute table (failed when no paths meet the rules): skip_table of
/// assign_paths' result, without simulating the chosen paths' earliest-start order twice.
constexpr table make_skip(skip_config const& c) {
  diagnostic err{};
  table earliest;
  double time = 0;
  bool timed = false;
  vec<vec<int>> paths = detail::assign_paths_timed(c, err, earliest, time, timed);
  if (err) return failed(err);
  if (!timed) return skip_table(c, paths);
  return detail::skip_table_from_earliest(c, paths, static_cast<table&&>(earliest), time);
}

} // namespace pipesched
