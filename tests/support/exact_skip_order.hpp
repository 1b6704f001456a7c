// Test support: the shortest iteration a skip table's routes allow over every per-rank order,
// by branch and bound — computed apart from the library's event simulation, to measure how
// far its orders are from the best on small cases (tests/cpu/schedules_skip_paths.cpp,
// bench/bench_skip_paths.cpp).
//
// The model is the table's: micro-batch j runs its route's chain of steps — forwards along
// the route, the last forward together with its backward (one step), backwards in reverse —
// each step on its stage's rank, the next after the previous one ends plus the link between
// their ranks; a rank runs one step at a time; on every rank a micro-batch holds a place from
// the start of its first step there to the end of its last step there, and at most `places`
// are held at once: the memory cap as skip_config defines it (micro-batches in flight per
// rank; in layout round_trip stage 0 and the head together on rank 0), which verify also
// checks (table::memory_bound_microbatches); its activation bound alone (C + 1 on rank 0 in
// round_trip) is looser there: it accepts orders with C + 1 micro-batches' stage-0
// activations while no head pass runs (skip.exact_search.counts_the_cap_not_chunks). The
// library's admission
// rule (places on the whole route taken at entry, micro-batches entering in id order) is not
// assumed: any order that meets the model counts.
//
// The search appends steps one at a time, each at the earliest time its rank and input
// allow (semi-active schedules: some shortest schedule is one, since a place is held by list
// order alone and moving a step earlier in time, its order unchanged, breaks nothing). Three
// prunings, each switchable so a test can check that it changes no optimum:
// - bound: the longest of every micro-batch's remaining chain and, per rank, the earliest
//   start any remaining step there can have + their work + the shortest chain after one;
// - dominance: the same steps done with every rank and micro-batch free no later than in a
//   state already searched;
// - left shift: a step is not appended at t while another step on its rank that frees or
//   keeps places (not a micro-batch's first step on the rank) could run wholly before t —
//   moving that one first delays nothing and only lowers the held count between.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "pipesched/core/table.hpp"
#include "pipesched/core/vec.hpp"
#include "pipesched/pipeline/cost.hpp"

namespace exact_skip {

struct options {
  bool bound = true, dominance = true, left_shift = true;
  long node_limit = 2'000'000; ///< the search gives up (complete = false) past this many nodes
};

struct result {
  bool complete = false;  ///< the search ended within the node limit: `makespan` is the optimum
  double makespan = 0;    ///< the shortest found (`upper` when nothing shorter exists)
  bool improved = false;  ///< a schedule shorter than `upper` was found: `lists` hold it
  long nodes = 0;
  pipesched::vec<pipesched::vec<pipesched::action>> lists; ///< per rank, the passes of the shortest found
};

namespace detail {

struct search {
  int ranks = 0, mbs = 0, places = 0;
  options opt;
  // per micro-batch, per step
  std::vector<std::vector<int>> rank;
  std::vector<std::vector<double>> work, link, after; // link: from the previous step; after: chain after the step
  std::vector<std::vector<char>> first_here, last_here;
  // state
  std::vector<int> next;
  std::vector<double> rank_free, mb_free, rank_work;
  std::vector<int> held;
  std::vector<std::vector<double>> start, best_start;
  double best = 0;
  long nodes = 0;
  bool gave_up = false;
  std::unordered_map<std::string, std::vector<std::vector<double>>> seen;

  double step_start(int j) const {
    std::size_t const k = static_cast<std::size_t>(next[static_cast<std::size_t>(j)]);
    double const input = mb_free[static_cast<std::size_t>(j)] + link[static_cast<std::size_t>(j)][k];
    double const free = rank_free[static_cast<std::size_t>(rank[static_cast<std::size_t>(j)][k])];
    return input > free ? input : free;
  }
  bool can_run(int j) const {
    std::size_t const J = static_cast<std::size_t>(j), k = static_cast<std::size_t>(next[J]);
    if (k >= rank[J].size()) return false;
    return !first_here[J][k] || held[static_cast<std::size_t>(rank[J][k])] < places;
  }
  double lower_bound() const {
    double lb = 0;
    std::vector<double> head(static_cast<std::size_t>(ranks), 1e300), tail(static_cast<std::size_t>(ranks), 1e300);
    for (std::size_t j = 0; j < static_cast<std::size_t>(mbs); ++j) {
      double at = mb_free[j];
      for (std::size_t k = static_cast<std::size_t>(next[j]); k < rank[j].size(); ++k) {
        at += link[j][k];
        std::size_t const r = static_cast<std::size_t>(rank[j][k]);
        head[r] = std::min(head[r], at);
        tail[r] = std::min(tail[r], after[j][k]);
        at += work[j][k];
      }
      lb = std::max(lb, at);
    }
    for (std::size_t r = 0; r < static_cast<std::size_t>(ranks); ++r)
      if (rank_work[r] > 0) lb = std::max(lb, std::max(rank_free[r], head[r]) + rank_work[r] + tail[r]);
    return lb;
  }
  /// Whether a state with the same steps done and times no later was searched already (else
  /// records this one).
  bool dominated() {
    std::string key(reinterpret_cast<char const*>(next.data()), next.size() * sizeof(int));
    std::vector<double> times(rank_free);
    for (std::size_t j = 0; j < static_cast<std::size_t>(mbs); ++j)
      times.push_back(next[j] > 0 && static_cast<std::size_t>(next[j]) < rank[j].size() ? mb_free[j] : 0.0);
    auto& list = seen[key];
    for (auto const& other : list) {
      bool no_later = true;
      for (std::size_t i = 0; i < times.size() && no_later; ++i) no_later = other[i] <= times[i] + 1e-9;
      if (no_later) return true;
    }
    std::erase_if(list, [&](std::vector<double> const& other) {
      for (std::size_t i = 0; i < times.size(); ++i)
        if (times[i] > other[i] + 1e-9) return false;
      return true;
    });
    list.push_back(times);
    return false;
  }
  void run(int left) {
    if (gave_up) return;
    if (++nodes > opt.node_limit) {
      gave_up = true;
      return;
    }
    if (left == 0) {
      double end = 0;
      for (double f : rank_free) end = std::max(end, f);
      if (end < best - 1e-9) {
        best = end;
        best_start = start;
      }
      return;
    }
    if (opt.bound && lower_bound() >= best - 1e-9) return;
    if (opt.dominance && dominated()) return;
    std::vector<std::pair<double, int>> runnable;
    for (int j = 0; j < mbs; ++j)
      if (can_run(j)) runnable.push_back({step_start(j), j});
    std::sort(runnable.begin(), runnable.end());
    for (auto const& [t, j] : runnable) {
      std::size_t const J = static_cast<std::size_t>(j), k = static_cast<std::size_t>(next[J]);
      int const r = rank[J][k];
      if (opt.left_shift) {
        bool shift = false;
        for (auto const& [t2, j2] : runnable) {
          std::size_t const J2 = static_cast<std::size_t>(j2), k2 = static_cast<std::size_t>(next[J2]);
          if (j2 != j && rank[J2][k2] == r && !first_here[J2][k2] && t2 + work[J2][k2] <= t + 1e-9) shift = true;
        }
        if (shift) continue;
      }
      std::size_t const R = static_cast<std::size_t>(r);
      double const saved_rank = rank_free[R], saved_mb = mb_free[J];
      int const saved_held = held[R];
      if (first_here[J][k]) ++held[R];
      if (last_here[J][k]) --held[R];
      rank_free[R] = mb_free[J] = t + work[J][k];
      rank_work[R] -= work[J][k];
      start[J][k] = t;
      ++next[J];
      run(left - 1);
      --next[J];
      rank_work[R] += work[J][k];
      rank_free[R] = saved_rank;
      mb_free[J] = saved_mb;
      held[R] = saved_held;
    }
  }
};

} // namespace detail

/// The shortest iteration of t's routes (t: a compute skip table; its lists give each pass's
/// action) under `places` per rank (0: no cap) with `costs`, searching for one shorter than
/// `upper` (e.g. the library's own).
inline result shortest_order(pipesched::table const& t, pipesched::sim_costs const& costs, int places, double upper,
                             options opt = {}) {
  using pipesched::op;
  detail::search s;
  s.ranks = t.ranks;
  s.mbs = static_cast<int>(t.paths.size());
  s.places = places > 0 ? places : s.mbs;
  s.opt = opt;
  s.rank_work.assign(static_cast<std::size_t>(s.ranks), 0.0);
  int steps = 0;
  for (auto const& route : t.paths) {
    std::size_t const L = route.size(), n = 2 * L - 1;
    std::vector<int> rank(n);
    std::vector<double> work(n), link(n, 0.0), after(n, 0.0);
    for (std::size_t k = 0; k < n; ++k) {
      int const stage = k < L ? route[k] : route[2 * L - 2 - k];
      rank[k] = t.rank_of(stage);
      work[k] = k + 1 < L ? costs.duration(op::forward, stage)
                : k + 1 == L ? costs.duration(op::forward, stage) + costs.duration(op::backward, stage)
                             : costs.duration(op::backward, stage);
      if (k > 0) link[k] = costs.link(rank[k - 1], rank[k], t.ranks);
      s.rank_work[static_cast<std::size_t>(rank[k])] += work[k];
    }
    for (std::size_t k = n - 1; k-- > 0;) after[k] = after[k + 1] + link[k + 1] + work[k + 1];
    std::vector<char> first(n, 0), last(n, 0);
    for (std::size_t k = 0; k < n; ++k) {
      first[k] = std::find(rank.begin(), rank.begin() + static_cast<std::ptrdiff_t>(k), rank[k]) ==
                 rank.begin() + static_cast<std::ptrdiff_t>(k);
      last[k] = std::find(rank.begin() + static_cast<std::ptrdiff_t>(k) + 1, rank.end(), rank[k]) == rank.end();
    }
    s.rank.push_back(rank);
    s.work.push_back(work);
    s.link.push_back(link);
    s.after.push_back(after);
    s.first_here.push_back(first);
    s.last_here.push_back(last);
    s.start.push_back(std::vector<double>(n, 0.0));
    steps += static_cast<int>(n);
  }
  s.next.assign(static_cast<std::size_t>(s.mbs), 0);
  s.rank_free.assign(static_cast<std::size_t>(s.ranks), 0.0);
  s.mb_free.assign(static_cast<std::size_t>(s.mbs), 0.0);
  s.held.assign(static_cast<std::size_t>(s.ranks), 0);
  s.best = upper;
  s.run(steps);
  result out;
  out.complete = !s.gave_up;
  out.makespan = s.best;
  out.nodes = s.nodes;
  out.improved = !s.best_start.empty();
  if (!out.improved) return out;
  // the lists: each rank's passes by start (a step of the last forward with its backward: F, then B)
  struct timed {
    double at;
    int order;
    pipesched::action a;
  };
  std::vector<std::vector<timed>> by_rank(static_cast<std::size_t>(t.ranks));
  auto pass = [&](op kind, int stage, int mb) {
    for (auto const& list : t.lists)
      for (pipesched::action const& a : list)
        if (a.kind == kind && a.stage == stage && a.mb == mb) return a;
    return pipesched::action{};
  };
  for (std::size_t j = 0; j < t.paths.size(); ++j) {
    auto const& route = t.paths[j];
    std::size_t const L = route.size();
    int const mb = static_cast<int>(j);
    for (std::size_t k = 0; k < 2 * L - 1; ++k) {
      auto& list = by_rank[static_cast<std::size_t>(s.rank[j][k])];
      double const at = s.best_start[j][k];
      int const stage = k < L ? route[k] : route[2 * L - 2 - k];
      if (k + 1 <= L) list.push_back({at, 0, pass(op::forward, stage, mb)});
      if (k + 1 >= L) list.push_back({at, 1, pass(op::backward, stage, mb)});
    }
  }
  for (auto& list : by_rank) {
    std::stable_sort(list.begin(), list.end(),
                     [](timed const& a, timed const& b) { return a.at != b.at ? a.at < b.at : a.order < b.order; });
    pipesched::vec<pipesched::action> passes;
    for (timed const& x : list) passes.push_back(x.a);
    out.lists.push_back(passes);
  }
  return out;
}

} // namespace exact_skip
