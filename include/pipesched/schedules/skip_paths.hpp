// pipesched: skip and reorder paths — each micro-batch visits its own subset of the stages.
//
// A path lists the model stages one micro-batch visits, in order; stage s lives on rank s.
// Rules (checked by check_path / check_paths, and at compile time for path types):
// starts at stage 0; in layout `last` ends at stage S-1 (the head); stages distinct; a
// visit below the frontier (highest stage so far) is a swap and must be frontier - 1, at
// most 2 swaps; a forward jump goes at most 4 past the frontier; every path keeps K stages;
// the skippable stages (1..S-2 in layout `last`, 1..S-1 in `round_trip`) are visited by
// counts that differ by at most one.
//
// Layout `round_trip` (the head and the loss on stage 0's rank): the table gets one more
// stage, S, placed on rank 0 (chunk 1), and every table path ends with it. A path type or
// an assigned path holds the model stages only; the table adds stage S. simulate, lower
// and verify read it as any other stage, so the return to rank 0 costs a transfer there
// and back like every other hop.
#pragma once

#include <cstdint>

#include "pipesched/pipeline/cost.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/core/table.hpp"

namespace pipesched {

/// Where the head (and the loss) sits.
enum class path_layout : std::uint8_t {
  last,       ///< on the last stage: every path ends at stage S-1
  round_trip, ///< on stage 0's rank: every path returns there (SkipPipe's layout)
};

/// How paths are assigned.
enum class path_method : std::uint8_t {
  rotation,   ///< micro-batch j skips {first + (j*k + t) mod n : t < k}, kept stages ascending
  cost_aware, ///< per micro-batch the cheapest valid path under the cost model, quotas kept
};

/// The rule a path or a path set breaks (path_rule::ok when none).
enum class path_rule : std::uint8_t {
  ok,
  empty,
  not_from_stage_zero,
  not_to_last_stage,
  stage_out_of_range,
  repeated_stage,
  swap_not_one_below,
  too_many_swaps,
  jump_too_far,
  unequal_length,
  unbalanced,
};

constexpr const char* path_rule_text(path_rule r) {
  switch (r) {
  case path_rule::ok: return "ok";
  case path_rule::empty: return "a path is empty";
  case path_rule::not_from_stage_zero: return "a path must start at stage 0";
  case path_rule::not_to_last_stage: return "in layout last a path must end at stage S-1, which holds the head";
  case path_rule::stage_out_of_range: return "a path names a stage outside 0..S-1";
  case path_rule::repeated_stage: return "a path visits a stage twice";
  case path_rule::swap_not_one_below: return "a visit below the frontier must be exactly frontier - 1";
  case path_rule::too_many_swaps: return "a path makes more than 2 swaps";
  case path_rule::jump_too_far: return "a path jumps more than 4 stages past its frontier";
  case path_rule::unequal_length: return "the paths do not all have the same length";
  case path_rule::unbalanced: return "stage visit counts differ by more than one";
  }
  return "?";
}

inline constexpr int max_swaps = 2;
inline constexpr int max_jump = 4;

/// One path's rules for S model stages.
constexpr path_rule check_path(int const* st, int len, int S, path_layout layout) {
  if (len < 1) return path_rule::empty;
  if (st[0] != 0) return path_rule::not_from_stage_zero;
  int frontier = 0, swaps = 0;
  for (int i = 0; i < len; ++i) {
    if (st[i] < 0 || st[i] >= S) return path_rule::stage_out_of_range;
    for (int k = 0; k < i; ++k)
      if (st[k] == st[i]) return path_rule::repeated_stage;
    if (i == 0) continue;
    if (st[i] < frontier) {
      if (st[i] != frontier - 1) return path_rule::swap_not_one_below;
      if (++swaps > max_swaps) return path_rule::too_many_swaps;
    } else {
      if (st[i] - frontier > max_jump) return path_rule::jump_too_far;
      frontier = st[i];
    }
  }
  if (layout == path_layout::last && st[len - 1] != S - 1) return path_rule::not_to_last_stage;
  return path_rule::ok;
}

constexpr path_rule check_path(vec<int> const& pth, int S, path_layout layout) {
  return check_path(pth.data(), static_cast<int>(pth.size()), S, layout);
}

/// How many stages a path may skip from: 1..S-2 in layout last, 1..S-1 in round_trip.
constexpr int skippable_count(int S, path_layout layout) {
  return layout == path_layout::last ? (S > 2 ? S - 2 : 0) : S - 1;
}

/// Every path's rules, equal lengths and balance over the skippable stages.
constexpr path_rule check_paths(vec<vec<int>> const& paths, int S, path_layout layout) {
  if (paths.empty()) return path_rule::empty;
  for (auto const& pth : paths) {
    if (pth.size() != paths[0].size()) return path_rule::unequal_length;
    if (auto r = check_path(pth, S, layout); r != path_rule::ok) return r;
  }
  int const n = skippable_count(S, layout);
  vec<int> count(static_cast<std::size_t>(S), 0);
  for (auto const& pth : paths)
    for (int s : pth) ++count[static_cast<std::size_t>(s)];
  int lo = 1 << 30, hi = -1;
  for (int s = 1; s <= n; ++s) {
    int c = count[static_cast<std::size_t>(s)];
    lo = c < lo ? c : lo;
    hi = c > hi ? c : hi;
  }
  if (n > 0 && hi - lo > 1) return path_rule::unbalanced;
  return path_rule::ok;
}

/// What a skip schedule is made from.
struct skip_config {
  int stages = 0;       ///< S model stages, one per rank
  int keep = 0;         ///< K stages each micro-batch visits (stage 0, and S-1 in layout last, counted)
  int microbatches = 0; ///< m
  int memory = 0;       ///< at most this many micro-batches in flight per rank; 0: m
  path_layout layout = path_layout::last;
  path_method method = path_method::cost_aware;
  /// Per-pass costs (base, or per_stage with S entries) and links (S x S latency and
  /// bandwidth, row = sender). Fused backwards: a backward costs b + w.
  sim_costs costs{};
  /// round_trip: the head's passes cost this fraction of stage 0's (SkipPipe: loss = F/4).
  double head_fraction = 0.25;
  /// cost_aware: rounds of local search after the candidates (0: none). Each round tries
  /// every adjacent swap and every exchange of one stage between neighbouring micro-batches
  /// and keeps those that shorten the simulated iteration; meant for run time.
  int search_rounds = 0;
};

/// Checks a configuration; a bad_path diagnostic says what is wrong.
constexpr diagnostic check_config(skip_config const& c) {
  if (c.stages < 1) return {errc::zero_ranks};
  if (c.microbatches < 1) return {errc::zero_microbatches};
  if (c.stages > max_ranks - 1 || c.microbatches > max_index) return {errc::too_large};
  int const fixed = c.layout == path_layout::last && c.stages > 1 ? 2 : 1;
  if (c.keep < fixed || c.keep > c.stages)
    return {errc::bad_path,
            -1,
            -1,
            -1,
            -1,
            "keep K must be between 1 (2 in layout last: stage 0 and the head's stage) and S"};
  if (c.memory < 0) return {errc::bad_path, -1, -1, -1, -1, "the memory cap must be at least 1 (0: no cap)"};
  std::size_t const S = static_cast<std::size_t>(c.stages);
  if (!c.costs.per_stage.empty() && c.costs.per_stage.size() != S)
    return {errc::bad_path, -1, -1, -1, -1, "per-stage costs need one entry per stage"};
  if ((!c.costs.latency.empty() && c.costs.latency.size() != S * S) ||
      (!c.costs.bandwidth.empty() && c.costs.bandwidth.size() != S * S))
    return {errc::bad_path, -1, -1, -1, -1, "link matrices need S x S entries"};
  cost_model const& b = c.costs.base;
  if (b.f < 0 || b.b < 0 || b.w < 0 || b.c < 0 || b.f + b.b + b.w <= 0) return {errc::negative_cost};
  return {};
}

/// The costs simulate() needs for a skip table: the configuration's, with the head stage's
/// entry added in layout round_trip.
constexpr sim_costs skip_sim_costs(skip_config const& c) {
  sim_costs sc = c.costs;
  if (c.layout != path_layout::round_trip) return sc;
  if (sc.per_stage.empty()) sc.per_stage.assign(static_cast<std::size_t>(c.stages), sc.base);
  cost_model h = sc.per_stage[0];
  h.f *= c.head_fraction;
  h.b *= c.head_fraction;
  h.w *= c.head_fraction;
  sc.per_stage.push_back(h);
  return sc;
}

namespace detail {

inline constexpr double skip_infinity = 1e300;

constexpr double link_round_trip(sim_costs const& sc, int a, int b, int p) {
  return sc.link(a, b, p) + sc.link(b, a, p);
}

/// Paths by the rotation rule; with stride g (coprime to n), the skipped stages are
/// first + ((j*k + t) * g mod n), which spreads them (g = 1: the plain rule).
constexpr vec<vec<int>> rotation_paths(skip_config const& c, int g = 1) {
  int const S = c.stages, n = skippable_count(S, c.layout), k = S - c.keep;
  vec<vec<int>> out(static_cast<std::size_t>(c.microbatches));
  vec<char> skip(static_cast<std::size_t>(S), 0);
  for (int j = 0; j < c.microbatches; ++j) {
    for (auto& x : skip) x = 0;
    for (int t = 0; t < k; ++t)
      skip[static_cast<std::size_t>(1 + static_cast<int>((static_cast<long long>(j * k + t) * g) % n))] = 1;
    auto& pth = out[static_cast<std::size_t>(j)];
    for (int s = 0; s < S; ++s)
      if (!skip[static_cast<std::size_t>(s)]) pth.push_back(s);
  }
  return out;
}

/// Paths that keep evenly spread stages: micro-batch j keeps the skippable stages
/// first + (j + floor(t * n / kept)) mod n, t < kept, in ascending order. Every window of
/// consecutive micro-batches then visits the stages evenly, so the counts stay balanced,
/// and the skipped runs stay short (the jump limit holds whenever n <= 4 * kept).
constexpr vec<vec<int>> spread_paths(skip_config const& c) {
  int const S = c.stages, n = skippable_count(S, c.layout);
  bool const last = c.layout == path_layout::last;
  int const cnt = c.keep - (last && S > 1 ? 2 : 1);
  vec<vec<int>> out(static_cast<std::size_t>(c.microbatches));
  vec<char> keep(static_cast<std::size_t>(S), 0);
  for (int j = 0; j < c.microbatches; ++j) {
    for (auto& x : keep) x = 0;
    keep[0] = 1;
    if (last) keep[static_cast<std::size_t>(S - 1)] = 1;
    for (int t = 0; t < cnt; ++t) keep[static_cast<std::size_t>(1 + (j + t * n / cnt) % n)] = 1;
    auto& pth = out[static_cast<std::size_t>(j)];
    for (int s = 0; s < S; ++s)
      if (keep[static_cast<std::size_t>(s)]) pth.push_back(s);
  }
  return out;
}

/// Cost-aware paths. Quotas: every skippable stage gets floor(T/n) visits, the cheapest
/// T mod n get one more (T = m * kept skippable stages). Micro-batch j (R = m - j left)
/// must take every stage whose remaining quota is R and may take only stages with quota
/// left, which keeps the rest feasible. Among those paths (swaps and jumps within the
/// limits) it takes the one of least cost: the round-trip latency of its hops plus, per
/// visited stage, how far the stage is ahead of its even share so far times the stage's
/// work (which spreads visits over time as the rotation rule does). Ties: the
/// lexicographically smallest path. A dynamic programme over (frontier, last visit below
/// the frontier?, stages kept, swaps made), O(S * K) states per micro-batch.
constexpr vec<vec<int>> cost_aware_paths(skip_config const& c, double spread, diagnostic& err) {
  int const S = c.stages, m = c.microbatches;
  bool const last = c.layout == path_layout::last;
  int const n = skippable_count(S, c.layout);
  int const hi = last ? S - 2 : S - 1;              // last skippable stage
  int const cnt = c.keep - (last && S > 1 ? 2 : 1); // skippable stages kept per path
  vec<vec<int>> out(static_cast<std::size_t>(m));
  if (S == 1) {
    for (auto& pth : out) pth.push_back(0);
    return out;
  }
  sim_costs const& sc = c.costs;
  auto work = [&](int s) {
    cost_model const& x = sc.of(s);
    return x.f + x.b + x.w;
  };
  // quotas
  vec<int> quota(static_cast<std::size_t>(S), 0);
  int const T = m * cnt;
  for (int s = 1; s <= hi; ++s) quota[static_cast<std::size_t>(s)] = n > 0 ? T / n : 0;
  int extra = n > 0 ? T % n : 0;
  vec<char> got_extra(static_cast<std::size_t>(S), 0);
  while (extra-- > 0) {
    int best = -1;
    for (int s = 1; s <= hi; ++s)
      if (!got_extra[static_cast<std::size_t>(s)] && (best < 0 || work(s) < work(best))) best = s;
    got_extra[static_cast<std::size_t>(best)] = 1;
    ++quota[static_cast<std::size_t>(best)];
  }
  vec<int> left = quota;                              // remaining quota
  vec<double> used(static_cast<std::size_t>(S), 0.0); // visits so far
  // DP: state (f, sw, kept, swaps) -> least cost to the end
  std::size_t const K1 = static_cast<std::size_t>(cnt + 1);
  auto sid = [&](int f, int sw, int kept, int swp) {
    return ((static_cast<std::size_t>(f) * 2 + static_cast<std::size_t>(sw)) * K1 + static_cast<std::size_t>(kept)) *
               3 +
           static_cast<std::size_t>(swp);
  };
  vec<double> g(static_cast<std::size_t>(S) * 2 * K1 * 3, skip_infinity);
  vec<double> node(static_cast<std::size_t>(S), 0.0);
  vec<char> must(static_cast<std::size_t>(S), 0), may(static_cast<std::size_t>(S), 0);
  vec<int> must_before(static_cast<std::size_t>(S) + 1, 0);
  // round-trip link time between every two stages' ranks
  vec<double> rt_link(static_cast<std::size_t>(S) * static_cast<std::size_t>(S), 0.0);
  for (int a = 0; a < S; ++a)
    for (int b = 0; b < S; ++b) rt_link[static_cast<std::size_t>(a * S + b)] = link_round_trip(sc, a, b, S);
  auto hop = [&](int a, int b) { return rt_link[static_cast<std::size_t>(a * S + b)]; };
  for (int j = 0; j < m; ++j) {
    int const R = m - j;
    for (int s = 0; s < S; ++s) {
      std::size_t const u = static_cast<std::size_t>(s);
      bool const skippable = s >= 1 && s <= hi;
      must[u] = skippable && left[u] >= R;
      may[u] = !skippable || left[u] > 0;
      // ahead of the even share (visits by j + 1 micro-batches) costs, behind it pays
      double share = static_cast<double>(quota[u]) * static_cast<double>(j + 1) / static_cast<double>(m);
      node[u] = skippable ? spread * (used[u] + 1.0 - share) * work(s) : 0.0;
    }
    // transitions from (f, sw, kept, swp): plain to y, or swap y then y-1
    for (int s = 0; s < S; ++s)
      must_before[static_cast<std::size_t>(s) + 1] =
          must_before[static_cast<std::size_t>(s)] + must[static_cast<std::size_t>(s)];
    auto skip_ok = [&](int a, int b) { // stages a+1 .. b-1 may all be skipped
      return b <= a + 1 || must_before[static_cast<std::size_t>(b)] == must_before[static_cast<std::size_t>(a) + 1];
    };
    auto end_cost = [&](int f, int sw, int kept) -> double {
      int const lv = sw ? f - 1 : f;
      if (kept != cnt) return skip_infinity;
      if (last) return (f == S - 1 && !sw) ? 0.0 : skip_infinity;
      if (!skip_ok(f, S)) return skip_infinity;
      return hop(lv, 0);
    };
    // raw pointers: this loop runs inside the compiler, where every operation counts
    double* const gp = g.data();
    char const* const mayp = may.data();
    double const* const nodep = node.data();
    int const* const mb = must_before.data();
    double const* const hopp = rt_link.data();
    int const K1i = cnt + 1;
    for (int f = S - 1; f >= 0; --f) {
      int const ahead = f < hi ? hi - f : 0;
      for (int sw = 0; sw < 2; ++sw) {
        int const lv = sw ? f - 1 : f;
        for (int kept = 0; kept <= cnt; ++kept)
          for (int swp = 0; swp < 3; ++swp) {
            int const here = ((f * 2 + sw) * K1i + kept) * 3 + swp;
            // unreachable or hopeless: more kept than stages passed, too few stages left, or
            // more swaps than kept pairs
            if ((sw && (f < 2 || swp == 0)) || kept > f || cnt - kept > ahead || 2 * swp > kept) {
              gp[here] = skip_infinity;
              continue;
            }
            double best = end_cost(f, sw, kept);
            if (!(last && f == S - 1))
              for (int y = f + 1; y <= f + max_jump && y < S; ++y) {
                if (y - 1 > f && mb[y - 1] != mb[f + 1]) break; // would skip a stage that must be kept
                if (!mayp[y]) continue;
                bool const y_fixed = last && y == S - 1;
                int const k1 = kept + (y_fixed ? 0 : 1);
                double const h = hopp[lv * S + y];
                if (k1 <= cnt && mb[y] == mb[f + 1]) {
                  double v = h + nodep[y] + gp[((y * 2) * K1i + k1) * 3 + swp];
                  best = v < best ? v : best;
                }
                // swap: y, then y-1 (both skippable)
                if (!y_fixed && y - 1 > f && swp < max_swaps && mayp[y - 1] && kept + 2 <= cnt) {
                  double v = h + hopp[y * S + y - 1] + nodep[y] + nodep[y - 1] +
                             gp[((y * 2 + 1) * K1i + kept + 2) * 3 + swp + 1];
                  best = v < best ? v : best;
                }
              }
            gp[here] = best;
          }
      }
    }
    double const total = g[sid(0, 0, 0, 0)];
    if (!(total < skip_infinity / 2)) {
      err = diagnostic{
          errc::bad_path, -1, -1, -1, j, "no path meets the jump limit and the visit quotas: keep more stages"};
      return {};
    }
    // walk forward, taking the lexicographically smallest optimal step
    auto& pth = out[static_cast<std::size_t>(j)];
    pth.push_back(0);
    int f = 0, sw = 0, kept = 0, swp = 0;
    for (;;) {
      int const lv = sw ? f - 1 : f;
      double const here = g[sid(f, sw, kept, swp)];
      double const tol = 1e-9 * (1.0 + (here < 0 ? -here : here));
      bool moved = false;
      if (!(last && f == S - 1))
        for (int y = f + 1; y <= f + max_jump && y < S && !moved; ++y) {
          if (!skip_ok(f, y - 1)) break;
          if (!may[static_cast<std::size_t>(y)]) continue;
          bool const y_fixed = last && y == S - 1;
          if (!y_fixed && y - 1 > f && swp < max_swaps && may[static_cast<std::size_t>(y - 1)] && kept + 2 <= cnt) {
            double v = hop(lv, y) + hop(y, y - 1) + node[static_cast<std::size_t>(y)] +
                       node[static_cast<std::size_t>(y - 1)] + g[sid(y, 1, kept + 2, swp + 1)];
            if (v <= here + tol) {
              pth.push_back(y);
              pth.push_back(y - 1);
              f = y, sw = 1, kept += 2, ++swp;
              moved = true;
              break;
            }
          }
          int const k1 = kept + (y_fixed ? 0 : 1);
          if (k1 <= cnt && skip_ok(f, y)) {
            double v = hop(lv, y) + node[static_cast<std::size_t>(y)] + g[sid(y, 0, k1, swp)];
            if (v <= here + tol) {
              pth.push_back(y);
              f = y, sw = 0, kept = k1;
              moved = true;
              break;
            }
          }
        }
      if (!moved) break; // the end is optimal here
    }
    for (int s : pth) {
      std::size_t const u = static_cast<std::size_t>(s);
      if (s >= 1 && s <= hi) {
        --left[u];
        used[u] += 1.0;
      }
    }
  }
  return out;
}

constexpr table skip_table_unchecked(skip_config const& c, vec<vec<int>> const& model_paths);

/// Local search from `paths` (valid) for c.search_rounds rounds: moves are an adjacent swap
/// toggled in one path (x, x+1 <-> x+1, x) and one stage exchanged between micro-batches j
/// and j+1 (paths re-sorted ascending); a move stays when it meets the rules and shortens
/// the simulated iteration. Visit counts do not change, so balance holds.
constexpr vec<vec<int>> improve_paths(skip_config const& c, vec<vec<int>> paths, double& best_time) {
  sim_costs const sc = skip_sim_costs(c);
  int const S = c.stages, m = c.microbatches;
  bool const last = c.layout == path_layout::last;
  int const hi = last ? S - 2 : S - 1;
  auto try_move = [&](vec<vec<int>>& cand) {
    if (check_paths(cand, S, c.layout) != path_rule::ok) return false;
    table t = skip_table_unchecked(c, cand);
    if (!t.ok()) return false;
    double ms = simulate(t, sc).makespan;
    if (ms < best_time - 1e-12 * (1 + best_time)) {
      best_time = ms;
      paths = cand;
      return true;
    }
    return false;
  };
  auto sorted = [](vec<int> v) {
    for (std::size_t i = 1; i < v.size(); ++i)
      for (std::size_t k = i; k > 0 && v[k - 1] > v[k]; --k) {
        int x = v[k];
        v[k] = v[k - 1];
        v[k - 1] = x;
      }
    return v;
  };
  for (int round = 0; round < c.search_rounds; ++round) {
    bool improved = false;
    for (int j = 0; j < m; ++j) {
      std::size_t const uj = static_cast<std::size_t>(j);
      // toggle adjacent swaps
      for (std::size_t i = 1; i + 1 < paths[uj].size(); ++i) {
        int a = paths[uj][i], b = paths[uj][i + 1];
        if ((a + 1 == b || a == b + 1) && a >= 1 && b >= 1 && a <= hi && b <= hi) {
          vec<vec<int>> cand = paths;
          cand[uj][i] = b;
          cand[uj][i + 1] = a;
          improved |= try_move(cand);
        }
      }
      // exchange one stage with the next micro-batch
      if (j + 1 >= m) continue;
      std::size_t const uk = uj + 1;
      for (std::size_t i = 1; i < paths[uj].size(); ++i)
        for (std::size_t q = 1; q < paths[uk].size(); ++q) {
          int a = paths[uj][i], b = paths[uk][q];
          if (a > hi || b > hi || a == b) continue;
          bool a_in_k = false, b_in_j = false;
          for (int x : paths[uk]) a_in_k |= x == a;
          for (int x : paths[uj]) b_in_j |= x == b;
          if (a_in_k || b_in_j) continue;
          vec<vec<int>> cand = paths;
          cand[uj][i] = b;
          cand[uk][q] = a;
          cand[uj] = sorted(cand[uj]);
          cand[uk] = sorted(cand[uk]);
          improved |= try_move(cand);
        }
    }
    if (!improved) break;
  }
  return paths;
}

/// The cost-aware assignment: the candidates below that meet every rule, each run through
/// the event simulation and simulate() under c's costs; the one with the shortest
/// iteration wins (ties: the earlier candidate). Candidates: the plain rotation rule, the
/// spread rule, and the greedy path search weighing the even spread of visits against the
/// links at several ratios.
constexpr vec<vec<int>> best_paths(skip_config const& c, diagnostic& err) {
  sim_costs const sc = skip_sim_costs(c);
  vec<vec<int>> best;
  double best_time = skip_infinity;
  vec<vec<vec<int>>> seen;
  auto consider = [&](vec<vec<int>> const& cand) {
    if (cand.empty() || check_paths(cand, c.stages, c.layout) != path_rule::ok) return;
    for (auto const& x : seen)
      if (x == cand) return; // simulated already
    seen.push_back(cand);
    table t = skip_table_unchecked(c, cand);
    if (!t.ok()) return;
    double ms = simulate(t, sc).makespan;
    if (ms < best_time) {
      best_time = ms;
      best = cand;
    }
  };
  int const n = skippable_count(c.stages, c.layout);
  if (n > 0) consider(rotation_paths(c));
  if (n > 0 && c.keep < c.stages) consider(spread_paths(c));
  for (double spread : {0.25, 1.0, 4.0, 16.0}) {
    diagnostic e{};
    vec<vec<int>> cand = cost_aware_paths(c, spread, e);
    if (!e) consider(cand);
  }
  if (n == 0) consider(rotation_paths(c));
  if (!best.empty()) best = improve_paths(c, best, best_time);
  if (best.empty())
    err = diagnostic{
        errc::bad_path, -1, -1, -1, -1, "no assignment meets the jump limit and the balance rule: keep more stages"};
  return best;
}

} // namespace detail

/// Paths meeting every rule for configuration c (an empty result and `err` set when none
/// could be found).
constexpr vec<vec<int>> assign_paths(skip_config const& c, diagnostic& err) {
  err = check_config(c);
  if (err) return {};
  vec<vec<int>> out;
  if (c.method == path_method::rotation) {
    out = detail::rotation_paths(c);
  } else {
    out = detail::best_paths(c, err);
  }
  if (err) return {};
  if (auto r = check_paths(out, c.stages, c.layout); r != path_rule::ok) {
    err = diagnostic{errc::bad_path, -1, -1, -1, -1, path_rule_text(r)};
    return {};
  }
  return out;
}

/// The compute table of paths `paths` (model stages; checked) under configuration c: rank
/// s holds stage s (and the head stage S in layout round_trip). The per-rank order comes
/// from one event simulation of every micro-batch's chain (forwards along its path, the
/// last forward and its backward together, backwards in reverse): a rank runs one pass at a
/// time, picking among the passes whose input has arrived by (arrival, backward first,
/// micro-batch); micro-batches enter stage 0 in id order, and one enters only when every
/// rank on its path has a free place among its `memory` (so none waits for memory later).
constexpr table skip_table(skip_config const& c, vec<vec<int>> const& model_paths) {
  if (auto d = check_config(c)) return failed(d);
  if (static_cast<int>(model_paths.size()) != c.microbatches)
    return failed({errc::bad_path, -1, -1, -1, -1, "one path per micro-batch"});
  if (auto r = check_paths(model_paths, c.stages, c.layout); r != path_rule::ok)
    return failed({errc::bad_path, -1, -1, -1, -1, path_rule_text(r)});
  return detail::skip_table_unchecked(c, model_paths);
}

constexpr table detail::skip_table_unchecked(skip_config const& c, vec<vec<int>> const& model_paths) {
  int const S = c.stages, m = c.microbatches;
  int const M = c.memory > 0 ? c.memory : m;
  bool const rt = c.layout == path_layout::round_trip;
  table t = make_table(S, m, 1, placement::loop);
  if (rt) {
    t.stages = S + 1;
    t.place = placement::custom;
    t.stage_rank.push_back(0);
    t.stage_chunk.push_back(1);
  }
  t.paths = model_paths;
  if (rt)
    for (auto& pth : t.paths) pth.push_back(S);
  sim_costs const sc = skip_sim_costs(c);
  std::size_t const L = t.paths[0].size();
  std::size_t const steps = 2 * L - 1; // the last forward and its backward are one step
  std::size_t const p = static_cast<std::size_t>(S);
  vec<std::size_t> nxt(static_cast<std::size_t>(m), 0); // next step of each micro-batch
  vec<double> ready(static_cast<std::size_t>(m), 0.0);  // when its input arrives
  vec<double> free_at(p, 0.0);
  vec<int> admitted(p, 0);      // micro-batches let onto each rank so far
  vec<vec<double>> released(p); // when each place on a rank was freed, in order
  int next_admit = 0;
  std::size_t remaining = static_cast<std::size_t>(m) * steps;
  auto stage_at = [&](int j, std::size_t k) { // stage of step k of micro-batch j
    auto const& pth = t.paths[static_cast<std::size_t>(j)];
    return k < L ? pth[k] : pth[2 * L - 2 - k];
  };
  // admission time of micro-batch j, or a negative value while some rank has no place yet
  auto admit_time = [&](int j) {
    double at = 0;
    for (int s : model_paths[static_cast<std::size_t>(j)]) {
      std::size_t const q = static_cast<std::size_t>(s);
      int const need = admitted[q] - M; // index of the release it waits for
      if (need < 0) continue;
      if (static_cast<std::size_t>(need) >= released[q].size()) return -1.0;
      double r = released[q][static_cast<std::size_t>(need)];
      at = r > at ? r : at;
    }
    return at;
  };
  // the rank of each micro-batch's next step; each rank's best candidate of a round
  vec<int> next_rank(static_cast<std::size_t>(m), 0);
  vec<int> cand(p, -1);
  vec<double> cand_ready(p, 0.0);
  vec<char> cand_back(p, 0);
  int first_open = 0; // micro-batches below it are done; above next_admit none has started
  while (remaining > 0) {
    // each rank's candidate among the open micro-batches; commit the one that starts first
    for (std::size_t r = 0; r < p; ++r) cand[r] = -1;
    while (first_open < m && nxt[static_cast<std::size_t>(first_open)] >= steps) ++first_open;
    int const last_open = next_admit < m ? next_admit : m - 1;
    for (int j = first_open; j <= last_open; ++j) {
      std::size_t const k = nxt[static_cast<std::size_t>(j)];
      if (k >= steps) continue;
      std::size_t const r = static_cast<std::size_t>(next_rank[static_cast<std::size_t>(j)]);
      double rd = ready[static_cast<std::size_t>(j)];
      if (k == 0) {
        double at = admit_time(j);
        if (at < 0) continue;
        rd = at > rd ? at : rd;
      }
      bool const back = k >= L - 1;
      // passes ready by the time the rank is free compete on (ready, backward first, id)
      double const fr = free_at[r];
      bool better = cand[r] < 0;
      if (!better) {
        double const key = rd > fr ? rd : fr;
        double const ckey = cand_ready[r] > fr ? cand_ready[r] : fr;
        if (key != ckey) better = key < ckey;
        else if (rd != cand_ready[r]) better = rd < cand_ready[r];
        else if (back != static_cast<bool>(cand_back[r])) better = back;
      }
      if (better) {
        cand[r] = j;
        cand_ready[r] = rd;
        cand_back[r] = back;
      }
    }
    int best_j = -1;
    double best_start = 0;
    for (std::size_t r = 0; r < p; ++r) {
      if (cand[r] < 0) continue;
      double const start = cand_ready[r] > free_at[r] ? cand_ready[r] : free_at[r];
      if (best_j < 0 || start < best_start) {
        best_j = cand[r];
        best_start = start;
      }
    }
    if (best_j < 0) return failed({errc::cyclic_wait, -1, -1, -1, -1, "skip event simulation stalled"});
    int const j = best_j;
    std::size_t const k = nxt[static_cast<std::size_t>(j)];
    int const s = stage_at(j, k);
    std::size_t const r = static_cast<std::size_t>(t.rank_of(s));
    double end = best_start;
    if (k == 0) {
      ++next_admit;
      for (int q : model_paths[static_cast<std::size_t>(j)]) ++admitted[static_cast<std::size_t>(q)];
    }
    if (k == L - 1) { // last forward, then its backward
      push(t, op::forward, s, j);
      push(t, op::backward, s, j);
      end += sc.duration(op::forward, s) + sc.duration(op::backward, s);
    } else {
      op const kind = k < L ? op::forward : op::backward;
      push(t, kind, s, j);
      end += sc.duration(kind, s);
    }
    bool const backward = k >= L - 1;
    // a rank's place is freed by the micro-batch's last backward there: its first stage there
    if (backward) {
      auto const& pth = t.paths[static_cast<std::size_t>(j)];
      std::size_t first = 0;
      while (t.rank_of(pth[first]) != static_cast<int>(r)) ++first;
      if (pth[first] == s) released[r].push_back(end);
    }
    free_at[r] = end;
    ++nxt[static_cast<std::size_t>(j)];
    --remaining;
    if (nxt[static_cast<std::size_t>(j)] < steps) {
      int const s2 = stage_at(j, nxt[static_cast<std::size_t>(j)]);
      int const r2 = t.rank_of(s2);
      next_rank[static_cast<std::size_t>(j)] = r2;
      ready[static_cast<std::size_t>(j)] = end + sc.link(static_cast<int>(r), r2, S);
    }
  }
  t.memory_bound_chunks = rt ? M + 1 : M;
  return t;
}

/// Paths for c and their compute table (failed when no paths meet the rules).
constexpr table make_skip(skip_config const& c) {
  diagnostic err{};
  vec<vec<int>> paths = assign_paths(c, err);
  if (err) return failed(err);
  return skip_table(c, paths);
}

/// The same configuration with every stage kept in order: the full pipeline to compare against.
constexpr skip_config full_pipeline(skip_config c) {
  c.keep = c.stages;
  c.method = path_method::rotation; // every path 0, 1, ..., S-1: no reordering either
  c.search_rounds = 0;
  return c;
}

/// Model paths of a skip table (the head stage of layout round_trip dropped).
constexpr vec<vec<int>> model_paths(table const& t) {
  vec<vec<int>> out = t.paths;
  if (t.place == placement::custom && t.stages == t.ranks + 1)
    for (auto& pth : out)
      if (!pth.empty() && pth.back() == t.ranks) pth.pop_back();
  return out;
}

// ---- compile time: paths as types, and schedule families ----

/// A path written as a type: path<0, 2, 1, 5>.
template <int... Stages> struct path {
  static constexpr int size = static_cast<int>(sizeof...(Stages));
  static constexpr int stages[size > 0 ? size : 1] = {Stages...};
};

/// The paths of micro-batches 0, 1, ... over S model stages.
template <int S, class... Paths> struct path_set {
  static constexpr int stage_count = S;
  static constexpr int count = static_cast<int>(sizeof...(Paths));
  static constexpr vec<vec<int>> make() {
    vec<vec<int>> out;
    auto add = [&](int const* st, int n) {
      vec<int> v;
      for (int i = 0; i < n; ++i) v.push_back(st[i]);
      out.push_back(static_cast<vec<int>&&>(v));
    };
    (add(Paths::stages, Paths::size), ...);
    return out;
  }
};

namespace detail {

template <class Set> constexpr path_rule check_path_set(path_layout layout) {
  return check_paths(Set::make(), Set::stage_count, layout);
}

/// One static_assert per rule, so the compiler prints the sentence for the one that fired.
template <path_rule R> constexpr bool report_path_rule() {
  static_assert(R != path_rule::empty, "pipesched: a path set needs at least one path, each with at least stage 0");
  static_assert(R != path_rule::not_from_stage_zero, "pipesched: every path must start at stage 0 (the embedding)");
  static_assert(R != path_rule::not_to_last_stage,
                "pipesched: in layout last every path must end at stage S-1, which holds the head; use "
                "path_layout::round_trip for paths that return to stage 0");
  static_assert(R != path_rule::stage_out_of_range, "pipesched: a path names a stage outside 0..S-1");
  static_assert(R != path_rule::repeated_stage, "pipesched: a path visits the same stage twice");
  static_assert(R != path_rule::swap_not_one_below,
                "pipesched: a visit below the frontier (highest stage so far) must be exactly frontier - 1");
  static_assert(R != path_rule::too_many_swaps, "pipesched: a path may make at most 2 swaps");
  static_assert(R != path_rule::jump_too_far, "pipesched: a path may jump at most 4 stages past its frontier");
  static_assert(R != path_rule::unequal_length, "pipesched: every path of a set must keep the same number of stages");
  static_assert(R != path_rule::unbalanced,
                "pipesched: unbalanced paths: the skippable stages' visit counts may differ by at most one");
  return R == path_rule::ok;
}

constexpr skip_config skip_config_of(params const& pr, int keep, int memory, path_layout layout) {
  skip_config c{};
  c.stages = pr.p;
  c.keep = keep;
  c.microbatches = pr.m;
  c.memory = memory;
  c.layout = layout;
  c.costs = sim_costs{pr.cost};
  return c;
}

} // namespace detail

/// True for a path set that meets every rule; otherwise compilation stops with the rule.
template <class Set, path_layout Layout = path_layout::last>
inline constexpr bool valid_paths = detail::report_path_rule<detail::check_path_set<Set>(Layout)>();

/// Assigned paths (cost-aware) as a family: ranks<S> ranks, each micro-batch keeps K.
template <int K, int Memory = 0, path_layout Layout = path_layout::last, path_method Method = path_method::cost_aware>
struct skip_paths_family {
  static constexpr const char* name = "skip";
  static constexpr diagnostic check(params const& pr) {
    if (auto d = check_common(pr)) return d;
    if (pr.v > 1) return {errc::needs_one_chunk};
    skip_config c = detail::skip_config_of(pr, K, Memory, Layout);
    c.method = Method;
    return check_config(c);
  }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    skip_config c = detail::skip_config_of(pr, K, Memory, Layout);
    c.method = Method;
    return make_skip(c);
  }
};

/// Paths given as a path_set type: checked when the family is named.
template <class Set, path_layout Layout = path_layout::last, int Memory = 0> struct given_paths_family {
  static_assert(detail::report_path_rule<detail::check_path_set<Set>(Layout)>(),
                "pipesched: the path set breaks a rule");
  static constexpr const char* name = "skip-given";
  static constexpr diagnostic check(params const& pr) {
    if (auto d = check_common(pr)) return d;
    if (pr.p != Set::stage_count) return {errc::bad_path, -1, -1, -1, -1, "ranks<P> must equal the path set's S (one stage per rank)"};
    if (pr.m != Set::count) return {errc::bad_path, -1, -1, -1, -1, "microbatches<M> must equal the number of paths"};
    return {};
  }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    skip_config c = detail::skip_config_of(pr, 0, Memory, Layout);
    vec<vec<int>> paths = Set::make();
    c.keep = static_cast<int>(paths[0].size());
    return skip_table(c, paths);
  }
};

/// skip_paths<K, ranks<S>, microbatches<M>, ...>: cost-aware paths keeping K stages.
template <int K, class... Ps> using skip_paths = schedule<skip_paths_family<K>, Ps...>;
/// skip_given<path_set<S, path<...>, ...>, ranks<S>, microbatches<M>>: the given paths.
template <class Set, class... Ps> using skip_given = schedule<given_paths_family<Set>, Ps...>;

} // namespace pipesched
