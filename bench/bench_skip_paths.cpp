// Skip paths on a geo-distributed-style network: how much shorter the iteration gets than
// the full pipeline and than the plain rotation rule, and how long the assignment takes.
//
// Model (SkipPipe's evaluation, scaled): S nodes, one stage each, spread over 5 regions in
// a scrambled order (node s in region (7 s) mod 5). Forward 0.10 s per stage and
// micro-batch, backward 1.5 x forward (B = 0.10, W = 0.05). Link time = one-way latency of
// the region pair + 8 MB / bandwidth (10 Gb/s inside a region, 1 Gb/s between regions).
// Counters: makespan (cost-aware paths), full (every stage kept), rotation (the plain rule;
// -1 when it breaks the jump limit), spread (the spread rule), the reductions in percent,
// and the seconds the assignment and event simulation take (the benchmark's time).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include <pipesched/pipeline/simulate.hpp>
#include <pipesched/schedules/skip_paths.hpp>

#include "../tests/support/exact_skip_order.hpp" // the exhaustive search, apart from the library

namespace {

using namespace pipesched;

/// One-way latencies in seconds between 5 regions (US-East, US-West, EU, Asia, Australia).
constexpr double region_latency[5][5] = {
    {0.001, 0.035, 0.040, 0.090, 0.100}, {0.035, 0.001, 0.070, 0.055, 0.075}, {0.040, 0.070, 0.001, 0.110, 0.130},
    {0.090, 0.055, 0.110, 0.001, 0.060}, {0.100, 0.075, 0.130, 0.060, 0.001},
};

skip_config geo_config(int S, int K, int m, int memory) {
  skip_config c{};
  c.stages = S;
  c.keep = K;
  c.microbatches = m;
  c.memory = memory;
  c.costs = sim_costs{cost_model{0.10, 0.10, 0.05, 0}};
  c.costs.latency.assign(static_cast<std::size_t>(S * S), 0.0);
  c.costs.bandwidth.assign(static_cast<std::size_t>(S * S), 0.0);
  c.costs.boundary_bytes = 8e6;
  c.search_rounds = 2;
  for (int a = 0; a < S; ++a)
    for (int b = 0; b < S; ++b) {
      int ra = (7 * a) % 5, rb = (7 * b) % 5;
      std::size_t k = static_cast<std::size_t>(a * S + b);
      c.costs.latency[k] = region_latency[ra][rb];
      c.costs.bandwidth[k] = ra == rb ? 10e9 / 8 : 1e9 / 8; // bytes per second
    }
  return c;
}

double makespan_of(skip_config const& c, vec<vec<int>> const& paths) {
  if (paths.empty()) return -1;
  table t = skip_table(c, paths);
  return t.ok() ? simulate(t, skip_sim_costs(c)).makespan : -1;
}

/// geo_config of the benchmark's arguments S, K, m, cap.
skip_config geo_config_of(benchmark::State const& state) {
  return geo_config(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), static_cast<int>(state.range(2)),
                    static_cast<int>(state.range(3)));
}

/// The benchmark's loop: make_skip(c) and its simulated iteration (`ms`); false (the
/// benchmark marked failed) when c makes no table.
bool timed_make_skip(benchmark::State& state, skip_config const& c, double& ms) {
  for (auto _ : state) {
    table t = make_skip(c);
    if (!t.ok()) {
      state.SkipWithError(to_string(t.error).c_str());
      return false;
    }
    ms = simulate(t, skip_sim_costs(c)).makespan;
    benchmark::DoNotOptimize(ms);
  }
  return true;
}

void skip_geo(benchmark::State& state) {
  skip_config c = geo_config_of(state);
  double ms = 0;
  if (!timed_make_skip(state, c, ms)) return;
  skip_config full = full_pipeline(c);
  double const full_ms = simulate(make_skip(full), skip_sim_costs(c)).makespan;
  skip_config rot = c;
  rot.method = path_method::rotation;
  diagnostic e{};
  vec<vec<int>> rp = assign_paths(rot, e);
  double const rot_ms = e ? -1 : makespan_of(c, rp);
  double const spread_ms = makespan_of(c, detail::spread_paths(c));
  state.counters["makespan"] = ms;
  state.counters["full"] = full_ms;
  state.counters["rotation"] = rot_ms;
  state.counters["spread"] = spread_ms;
  state.counters["vs_full_pct"] = 100.0 * (1.0 - ms / full_ms);
  state.counters["vs_rotation_pct"] = rot_ms > 0 ? 100.0 * (1.0 - ms / rot_ms) : 0.0;
  state.counters["vs_spread_pct"] = spread_ms > 0 ? 100.0 * (1.0 - ms / spread_ms) : 0.0;
}

/// The geo benchmarks' settings: S, K, m, memory cap (0: none).
void geo_settings(benchmark::internal::Benchmark* b) {
  b->ArgNames({"S", "K", "m", "cap"});
  for (auto const& a : std::vector<std::vector<std::int64_t>>{
           {8, 6, 16, 0}, {12, 9, 16, 0}, {16, 13, 16, 0}, {20, 17, 20, 0},
           {20, 15, 20, 0}, {20, 10, 20, 0}, {20, 10, 20, 6}, {20, 10, 64, 8}})
    b->Args(a);
}

BENCHMARK(skip_geo)
    ->Apply(geo_settings)
    ->Unit(benchmark::kMillisecond);

/// skip_geo's configurations with skip_config::order_search_rounds = 2 (a local search on the
/// per-rank orders after the four orders): the benchmark's time is the whole make_skip;
/// counters: makespan, without (make_skip without the order search), gain_pct, and the full
/// pipeline given the same order search (full, vs_full_pct).
void skip_geo_order_search(benchmark::State& state) {
  skip_config const plain = geo_config_of(state);
  skip_config c = plain;
  c.order_search_rounds = 2;
  double ms = 0;
  if (!timed_make_skip(state, c, ms)) return;
  double const without = simulate(make_skip(plain), skip_sim_costs(c)).makespan;
  double const full_ms = simulate(make_skip(full_pipeline(c)), skip_sim_costs(c)).makespan;
  state.counters["makespan"] = ms;
  state.counters["without"] = without;
  state.counters["gain_pct"] = 100.0 * (1.0 - ms / without);
  state.counters["full"] = full_ms;
  state.counters["vs_full_pct"] = 100.0 * (1.0 - ms / full_ms);
}
BENCHMARK(skip_geo_order_search)
    ->Apply(geo_settings)
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

/// Unit costs (F = B = W = 1), S stages, K kept, m micro-batches, a cap of `memory`.
skip_config unit_config(int S, int K, int m, int memory, bool round_trip) {
  skip_config c{};
  c.stages = S;
  c.keep = K;
  c.microbatches = m;
  c.memory = memory;
  c.layout = round_trip ? path_layout::round_trip : path_layout::last;
  c.costs = sim_costs{cost_model{1, 1, 1, 0}};
  return c;
}

/// A lower bound on any iteration of table t (a skip table, routes in t.paths) under a cap
/// of `places` micro-batches per rank, computed apart from the library's simulation:
/// - per rank, every pass as a job with a head (the shortest time from the start of its
///   micro-batch's chain to the pass) and a tail (from the pass to the end of that chain):
///   one rank runs one pass at a time, so for every set of its passes the iteration lasts at
///   least the smallest head + the set's work + the smallest tail (the one-machine bound with
///   heads and tails; the sets tried are "head ≥ h and tail ≥ q" for every h and q present);
/// - places (when the cap binds): a micro-batch holds a place on rank 0 from its first
///   forward to its last backward, at least its whole chain D_j, and at most `places` are
///   held at once, so the iteration lasts at least Σ D_j / places, and at least
///   ⌈m / places⌉ · min D_j (each place serves its micro-batches one after another).
double cap_lower_bound(table const& t, sim_costs const& costs, int places) {
  struct job {
    double head, work, tail;
  };
  std::vector<std::vector<job>> jobs(static_cast<std::size_t>(t.ranks));
  double held = 0, shortest = 1e300;
  for (auto const& route : t.paths) {
    std::vector<int> rank;
    std::vector<double> work;
    for (int s : route) {
      rank.push_back(t.rank_of(s));
      work.push_back(costs.duration(op::forward, s));
    }
    for (std::size_t k = route.size(); k-- > 0;) {
      rank.push_back(t.rank_of(route[k]));
      work.push_back(costs.duration(op::backward, route[k]));
    }
    std::vector<double> start(rank.size());
    double at = 0;
    for (std::size_t i = 0; i < rank.size(); ++i) {
      if (i > 0) at += costs.link(rank[i - 1], rank[i], t.ranks);
      start[i] = at;
      at += work[i];
    }
    for (std::size_t i = 0; i < rank.size(); ++i)
      jobs[static_cast<std::size_t>(rank[i])].push_back({start[i], work[i], at - start[i] - work[i]});
    held += at;
    shortest = std::min(shortest, at);
  }
  double bound = 0;
  for (auto const& on_rank : jobs)
    for (job const& h : on_rank)
      for (job const& q : on_rank) {
        double sum = 0;
        for (job const& j : on_rank) sum += j.head >= h.head && j.tail >= q.tail ? j.work : 0.0;
        if (sum > 0) bound = std::max(bound, h.head + sum + q.tail); // the set is not empty
      }
  int const m = static_cast<int>(t.paths.size());
  if (places > 0 && places < m)
    bound = std::max({bound, held / places, ((m + places - 1) / places) * shortest});
  return bound;
}

/// Under a binding memory cap make_skip keeps the shortest of four per-rank orders
/// (docs/05_skip_paths.md, "The per-rank order"). Over the grid of the skip.goal test with
/// caps K and K/2 and unit costs, on each table's own paths:
/// - tables (the grid's valid ones); shortened and lengthened against the earliest-start
///   order alone (what make_skip used before 2026-12-02; its candidate search still uses
///   only it), and the largest reduction in percent; alternating_shortened: the tables the
///   third order (alternating) makes shorter than the first two, and its largest reduction;
///   most_work_remaining_shortened: the tables the fourth makes shorter than the other three,
///   and its largest reduction;
/// - the iterations over the busiest rank plus K round trips with cap K (not a bound: a
///   yardstick kept from before), earliest order alone and kept, with the worst excess;
/// - against cap_lower_bound above: the tables below it (bound_below; must be 0: a table
///   under the bound would break the cap or the simulation); of the tables whose cap binds
///   (cap < m), how many, how many are more than 5% and 10% over the bound (and of those in
///   layout round_trip, how many and how many more than 10% over), and the worst excess in
///   percent; the worst excess where the cap does not bind.
/// Then every stage kept with cap S (S ≤ 16, S < m ≤ 40): how much longer the earliest-start
/// order alone is than 1F1B's (m + S − 1)(F + B + W) at worst, and the cases the kept order
/// misses it. The benchmark's time is the whole sweep.
void skip_cap_orders(benchmark::State& state) {
  cost_model const u{1, 1, 1, 0};
  int tables = 0, shortened = 0, lengthened = 0, over_before = 0, over_after = 0, full_misses = 0;
  int alternating_shortened = 0, mwr_shortened = 0, bound_below = 0, binding = 0, over_bound_5 = 0, over_bound_10 = 0;
  int binding_round_trip = 0, over_bound_10_round_trip = 0;
  double best_gain = 0, alternating_gain = 0, mwr_gain = 0, full_worst = 1, over_worst = 1, bound_worst = 1, free_bound_worst = 1;
  for (auto _ : state) {
    tables = shortened = lengthened = over_before = over_after = full_misses = 0;
    alternating_shortened = mwr_shortened = bound_below = binding = over_bound_5 = over_bound_10 = 0;
    binding_round_trip = over_bound_10_round_trip = 0;
    best_gain = alternating_gain = mwr_gain = 0;
    full_worst = over_worst = bound_worst = free_bound_worst = 1;
    for (int lay = 0; lay < 2; ++lay)
      for (int S = 2; S <= 16; ++S)
        for (int K = (lay == 0 ? 2 : 1); K <= S; ++K)
          for (int m : {1, 4, 8, 16, 32})
            for (int M : {K, K / 2}) {
              if (M < 1) continue; // K = 1 has no cap K/2
              skip_config const c = unit_config(S, K, m, M, lay == 1);
              table const kept = make_skip(c);
              if (!kept.ok()) continue;
              ++tables;
              vec<vec<int>> const paths = model_paths(kept);
              sim_costs const costs = skip_sim_costs(c);
              simulation const sk = simulate(kept, costs);
              double const tk = sk.makespan;
              double te = simulate(detail::skip_table_in_order(c, paths, detail::skip_order::earliest), costs).makespan;
              double two = te, three = te; // the shortest of the first two, and of the first three orders
              if (detail::skip_cap_binds(c)) {
                table const b = detail::skip_table_in_order(c, paths, detail::skip_order::by_position);
                if (b.ok()) two = std::min(two, simulate(b, costs).makespan);
                table const a = detail::skip_table_in_order(c, paths, detail::skip_order::alternating);
                three = a.ok() ? std::min(two, simulate(a, costs).makespan) : two;
              }
              shortened += tk < te - 1e-9;
              lengthened += tk > te + 1e-9;
              best_gain = std::max(best_gain, 100.0 * (1.0 - tk / te));
              if (three < two - 1e-9) {
                ++alternating_shortened;
                alternating_gain = std::max(alternating_gain, 100.0 * (1.0 - three / two));
              }
              if (tk < three - 1e-9) {
                ++mwr_shortened;
                mwr_gain = std::max(mwr_gain, 100.0 * (1.0 - tk / three));
              }
              double const bound = cap_lower_bound(kept, costs, M);
              bound_below += tk < bound - 1e-9;
              if (detail::skip_cap_binds(c)) {
                ++binding;
                over_bound_5 += tk > 1.05 * bound + 1e-9;
                over_bound_10 += tk > 1.10 * bound + 1e-9;
                binding_round_trip += lay;
                over_bound_10_round_trip += lay && tk > 1.10 * bound + 1e-9;
                bound_worst = std::max(bound_worst, tk / bound);
              } else {
                free_bound_worst = std::max(free_bound_worst, tk / bound);
              }
              if (M == K) {
                double busiest = 0;
                for (double b : sk.busy) busiest = std::max(busiest, b);
                double const sum = busiest + K * (u.f + u.b + u.w) + (lay ? 0.25 * 3 : 0);
                over_before += te > sum + 1e-9;
                over_after += tk > sum + 1e-9;
                over_worst = std::max(over_worst, tk / sum);
              }
            }
    for (int S = 2; S <= 16; ++S)
      for (int m = S + 1; m <= 40; ++m) {
        skip_config c{};
        c.stages = c.keep = S;
        c.microbatches = m;
        c.memory = S;
        c.costs = sim_costs{u};
        table const kept = make_skip(c);
        double const one_f_one_b = (m + S - 1) * (u.f + u.b + u.w);
        double const tk = simulate(kept, skip_sim_costs(c)).makespan;
        table const earliest = detail::skip_table_in_order(c, model_paths(kept), detail::skip_order::earliest);
        full_worst = std::max(full_worst, simulate(earliest, skip_sim_costs(c)).makespan / one_f_one_b);
        full_misses += tk > one_f_one_b + 1e-9;
      }
  }
  state.counters["tables"] = tables;
  state.counters["shortened"] = shortened;
  state.counters["lengthened"] = lengthened;
  state.counters["best_gain_pct"] = best_gain;
  state.counters["alternating_shortened"] = alternating_shortened;
  state.counters["alternating_gain_pct"] = alternating_gain;
  state.counters["most_work_remaining_shortened"] = mwr_shortened;
  state.counters["most_work_remaining_gain_pct"] = mwr_gain;
  state.counters["capK_over_sum_before"] = over_before;
  state.counters["capK_over_sum_after"] = over_after;
  state.counters["capK_worst_over_sum_pct"] = 100.0 * (over_worst - 1.0);
  state.counters["bound_below"] = bound_below;
  state.counters["binding_tables"] = binding;
  state.counters["binding_over_bound_5pct"] = over_bound_5;
  state.counters["binding_over_bound_10pct"] = over_bound_10;
  state.counters["binding_round_trip_tables"] = binding_round_trip;
  state.counters["binding_round_trip_over_bound_10pct"] = over_bound_10_round_trip;
  state.counters["binding_worst_over_bound_pct"] = 100.0 * (bound_worst - 1.0);
  state.counters["free_worst_over_bound_pct"] = 100.0 * (free_bound_worst - 1.0);
  state.counters["full_capS_earliest_worst_pct"] = 100.0 * (full_worst - 1.0);
  state.counters["full_capS_misses_1f1b"] = full_misses;
}
BENCHMARK(skip_cap_orders)->Iterations(1)->Unit(benchmark::kSecond);

/// skip_config::order_search_rounds = 2 against make_skip without it, unit costs, over
/// S ∈ {4, 8, 12}, K ∈ {2, S/2, S − 1, S}, m ∈ {8, 16, 32}, caps K and K/2 where they bind
/// (cap < m), both layouts: tables; shortened (never lengthened: lengthened must be 0); the
/// largest and the mean reduction in percent, also per layout; of the tables more than 10%
/// over cap_lower_bound, how many before and after. The benchmark's time is the whole sweep
/// (both make_skip calls and the bounds).
void skip_cap_order_search(benchmark::State& state) {
  int tables = 0, shortened = 0, lengthened = 0, over10_before = 0, over10_after = 0;
  double best_gain = 0, sum_gain = 0, best_gain_last = 0, best_gain_round_trip = 0;
  for (auto _ : state) {
    tables = shortened = lengthened = over10_before = over10_after = 0;
    best_gain = sum_gain = best_gain_last = best_gain_round_trip = 0;
    for (int lay = 0; lay < 2; ++lay)
      for (int S : {4, 8, 12})
        for (int K : {2, S / 2, S - 1, S})
          for (int m : {8, 16, 32})
            for (int M : {K, K / 2}) {
              if (M < 1 || M >= m || (lay == 0 && K < 2)) continue;
              skip_config c = unit_config(S, K, m, M, lay == 1);
              table const plain = make_skip(c);
              if (!plain.ok()) continue;
              c.order_search_rounds = 2;
              table const searched = make_skip(c);
              if (!searched.ok()) continue;
              ++tables;
              sim_costs const costs = skip_sim_costs(c);
              double const before = simulate(plain, costs).makespan, after = simulate(searched, costs).makespan;
              double const bound = cap_lower_bound(plain, costs, M);
              shortened += after < before - 1e-9;
              lengthened += after > before + 1e-9;
              double const gain = 100.0 * (1.0 - after / before);
              best_gain = std::max(best_gain, gain);
              (lay ? best_gain_round_trip : best_gain_last) = std::max(lay ? best_gain_round_trip : best_gain_last, gain);
              sum_gain += gain;
              over10_before += before > 1.10 * bound + 1e-9;
              over10_after += after > 1.10 * bound + 1e-9;
            }
  }
  state.counters["tables"] = tables;
  state.counters["shortened"] = shortened;
  state.counters["lengthened"] = lengthened;
  state.counters["best_gain_pct"] = best_gain;
  state.counters["mean_gain_pct"] = tables > 0 ? sum_gain / tables : 0.0;
  state.counters["best_gain_last_pct"] = best_gain_last;
  state.counters["best_gain_round_trip_pct"] = best_gain_round_trip;
  state.counters["over_bound_10pct_before"] = over10_before;
  state.counters["over_bound_10pct_after"] = over10_after;
}
BENCHMARK(skip_cap_order_search)->Iterations(1)->Unit(benchmark::kSecond);

/// make_skip against the shortest iteration its routes allow, on small cases: S ≤ 4, every
/// K, m = 2..6, caps K and K/2 where they bind, both layouts, unit costs. The optimum comes
/// from the exhaustive search of tests/support/exact_skip_order.hpp (branch and bound over
/// every per-rank order, apart from the library; up to 4 million nodes a case). Counters:
/// cases, complete (searches that ended), optimal (make_skip equals the optimum), the cases
/// over it per layout, the worst excess in percent — of make_skip, and of the shortest of
/// the first three orders (make_skip before most_work_remaining) — and how far the optimum
/// is above cap_lower_bound at worst (the bound's own slack).
void skip_cap_exact(benchmark::State& state) {
  int cases = 0, complete = 0, optimal = 0, last_over = 0, round_trip_over = 0, searched_optimal = 0;
  double worst = 1, worst_three = 1, bound_slack = 1, searched_worst = 1;
  constexpr int order_rounds = 20;
  for (auto _ : state) {
    cases = complete = optimal = last_over = round_trip_over = searched_optimal = 0;
    worst = worst_three = bound_slack = searched_worst = 1;
    for (int lay = 0; lay < 2; ++lay)
      for (int S = 2; S <= 4; ++S)
        for (int K = (lay == 0 ? 2 : 1); K <= S; ++K)
          for (int m = 2; m <= 6; ++m)
            for (int M : {K, K / 2}) {
              if (M < 1 || M >= m) continue;
              skip_config const c = unit_config(S, K, m, M, lay == 1);
              table const kept = make_skip(c);
              if (!kept.ok()) continue;
              ++cases;
              sim_costs const costs = skip_sim_costs(c);
              double const time = simulate(kept, costs).makespan;
              vec<vec<int>> const paths = model_paths(kept);
              double three = 1e300;
              for (auto order : {detail::skip_order::earliest, detail::skip_order::by_position,
                                 detail::skip_order::alternating}) {
                table const t = detail::skip_table_in_order(c, paths, order);
                if (t.ok()) three = std::min(three, simulate(t, costs).makespan);
              }
              exact_skip::options o;
              o.node_limit = 4'000'000;
              exact_skip::result const best = exact_skip::shortest_order(kept, costs, M, time + 0.01, o);
              if (!best.complete || !best.improved) continue;
              ++complete;
              bool const over = time > best.makespan + 1e-9;
              optimal += !over;
              (lay ? round_trip_over : last_over) += over;
              worst = std::max(worst, time / best.makespan);
              skip_config searched_config = c;
              searched_config.order_search_rounds = order_rounds;
              double const searched = simulate(make_skip(searched_config), costs).makespan;
              searched_optimal += searched <= best.makespan + 1e-9;
              searched_worst = std::max(searched_worst, searched / best.makespan);
              worst_three = std::max(worst_three, three / best.makespan);
              bound_slack = std::max(bound_slack, best.makespan / cap_lower_bound(kept, costs, M));
            }
  }
  state.counters["cases"] = cases;
  state.counters["complete"] = complete;
  state.counters["optimal"] = optimal;
  state.counters["last_over_optimum"] = last_over;
  state.counters["round_trip_over_optimum"] = round_trip_over;
  state.counters["worst_over_optimum_pct"] = 100.0 * (worst - 1.0);
  state.counters["three_orders_worst_over_optimum_pct"] = 100.0 * (worst_three - 1.0);
  state.counters["optimum_over_bound_worst_pct"] = 100.0 * (bound_slack - 1.0);
  state.counters["order_search_optimal"] = searched_optimal;
  state.counters["order_search_worst_over_optimum_pct"] = 100.0 * (searched_worst - 1.0);
}
BENCHMARK(skip_cap_exact)->Iterations(1)->Unit(benchmark::kSecond);

} // namespace
