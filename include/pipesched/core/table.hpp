// pipesched: the per-rank table every generator produces and every analysis reads.
#pragma once

#include <cstdint>

#include "pipesched/core/vec.hpp"

#include "pipesched/core/action.hpp"
#include "pipesched/core/diagnostic.hpp"
#include "pipesched/core/params.hpp"

namespace pipesched {

/// How global stages map to ranks.
enum class placement : std::uint8_t {
  loop,   ///< chunk k of rank r is stage k*p + r (v = 1: stage r)
  v_shape, ///< v = 2: rank r holds stage r and stage 2p-1-r
  custom, ///< given stage by stage
};

/// Global stage of chunk k on rank r.
constexpr int stage_of(placement pl, int p, int r, int k) {
  if (pl == placement::v_shape) return k == 0 ? r : 2 * p - 1 - r;
  return k * p + r;
}

/// A schedule: for each rank, its ordered list of actions; plus what is needed to read it
/// (stage placement, micro-batch routes). Generators fill `lists` with compute actions only;
/// `lower()` adds the transfers and buffer slots. Usable in constant expressions.
struct table {
  int ranks = 0;        ///< p
  int microbatches = 0; ///< m
  int chunks = 1;       ///< v: stages per rank
  int stages = 0;       ///< S = p * v
  placement place = placement::loop;
  bool split_backward = false; ///< backward is I + W rather than a fused B
  bool forward_only = false;   ///< inference: no backward at all
  bool lowered = false;        ///< lists hold transfers and slots
  /// Peak activation memory the generator promises, in chunk-activations (1/v of the
  /// reference unit); 0 when it promises none. verify() checks it.
  int memory_bound_chunks = 0;
  /// The most micro-batches a rank holds at once, a micro-batch held on a rank from its first
  /// pass there to its last (the cap of skip paths, skip_config::memory); 0 when none is
  /// promised. verify() checks it from list order.
  int memory_bound_microbatches = 0;
  vec<int> stage_rank;  ///< rank of each global stage
  vec<int> stage_chunk; ///< chunk index of each global stage on its rank
  /// Route of each micro-batch through the stages; empty: every micro-batch visits 0..S-1.
  vec<vec<int>> paths;
  vec<vec<action>> lists; ///< one list per rank
  vec<int> slot_count;            ///< buffer slots per rank (lowered tables)
  diagnostic error{};                     ///< set when the generator refused its parameters

  constexpr bool ok() const { return error.ok(); }
  constexpr int rank_of(int s) const { return stage_rank[static_cast<std::size_t>(s)]; }
  constexpr int chunk_of(int s) const { return stage_chunk[static_cast<std::size_t>(s)]; }

  constexpr int route_length(int j) const {
    return paths.empty() ? stages : static_cast<int>(paths[static_cast<std::size_t>(j)].size());
  }
  constexpr int route_at(int j, int i) const {
    return paths.empty() ? i : paths[static_cast<std::size_t>(j)][static_cast<std::size_t>(i)];
  }
  /// Position of stage s in micro-batch j's route, or -1 when j skips s.
  constexpr int route_index(int j, int s) const {
    if (paths.empty()) return (s >= 0 && s < stages) ? s : -1;
    auto const& pth = paths[static_cast<std::size_t>(j)];
    for (std::size_t i = 0; i < pth.size(); ++i)
      if (pth[i] == s) return static_cast<int>(i);
    return -1;
  }
  /// The stage after s on j's route, or -1 at the route's end (the loss).
  constexpr int next_stage(int j, int s) const {
    if (paths.empty()) return s + 1 < stages ? s + 1 : -1;
    int i = route_index(j, s);
    return (i < 0 || i + 1 >= route_length(j)) ? -1 : route_at(j, i + 1);
  }
  /// The stage before s on j's route, or -1 at the route's start (the input).
  constexpr int prev_stage(int j, int s) const {
    if (paths.empty()) return s - 1;
    int i = route_index(j, s);
    return i <= 0 ? -1 : route_at(j, i - 1);
  }
  constexpr std::size_t total_actions() const {
    std::size_t n = 0;
    for (auto const& l : lists) n += l.size();
    return n;
  }
};

/// The stage before and after each (stage, micro-batch) on the micro-batch's route, and the
/// stage's position on it, at [stage * microbatches + mb]: table::prev_stage, next_stage and
/// route_index of every pair at once (-1 at a route's ends and for stages off it; a stage's
/// first place on the route counts, as in route_index). The arrays are empty for a table
/// without routes, where before(), after() and index() answer s - 1, s + 1 and s. For the
/// loops that ask per pass: searching the route each time costs the compilers' constexpr
/// budgets a multiple (nvcc's front end refused DualPipe at p = 16, m = 128 for it).
struct route_neighbours {
  vec<int> prev, next, pos;
  int stages = 0, microbatches = 0;

  /// table::prev_stage(j, s) of the table these were made from.
  constexpr int before(int j, int s) const {
    if (prev.empty()) return s - 1;
    return in_range(j, s) ? prev[flat(j, s)] : -1;
  }
  /// table::next_stage(j, s).
  constexpr int after(int j, int s) const {
    if (next.empty()) return s + 1 < stages ? s + 1 : -1;
    return in_range(j, s) ? next[flat(j, s)] : -1;
  }
  /// table::route_index(j, s).
  constexpr int index(int j, int s) const {
    if (pos.empty()) return (s >= 0 && s < stages) ? s : -1;
    return in_range(j, s) ? pos[flat(j, s)] : -1;
  }

private:
  constexpr bool in_range(int j, int s) const { return s >= 0 && s < stages && j >= 0 && j < microbatches; }
  constexpr std::size_t flat(int j, int s) const {
    return static_cast<std::size_t>(s) * static_cast<std::size_t>(microbatches) + static_cast<std::size_t>(j);
  }
};
constexpr route_neighbours neighbours_on_routes(table const& t) {
  route_neighbours out;
  out.stages = t.stages;
  out.microbatches = t.microbatches;
  if (t.paths.empty() || t.stages < 1 || t.microbatches < 1) return out;
  std::size_t const S = static_cast<std::size_t>(t.stages), m = static_cast<std::size_t>(t.microbatches);
  out.prev.assign(S * m, -1);
  out.next.assign(S * m, -1);
  out.pos.assign(S * m, -1);
  int* const pos = out.pos.data();
  for (std::size_t j = 0; j < m && j < t.paths.size(); ++j) {
    int const* const route = t.paths[j].data();
    std::size_t const len = t.paths[j].size();
    for (std::size_t i = 0; i < len; ++i) {
      if (route[i] < 0 || static_cast<std::size_t>(route[i]) >= S) continue;
      std::size_t const k = static_cast<std::size_t>(route[i]) * m + j;
      if (pos[k] >= 0) continue;
      pos[k] = static_cast<int>(i);
      out.prev[k] = i > 0 ? route[i - 1] : -1;
      out.next[k] = i + 1 < len ? route[i + 1] : -1;
    }
  }
  return out;
}

/// An empty table carrying only an error.
constexpr table failed(diagnostic d) {
  table t{};
  t.error = d;
  return t;
}

/// A table with p ranks and v chunks each under placement pl, and empty lists.
constexpr table make_table(int p, int m, int v, placement pl) {
  table t{};
  t.ranks = p;
  t.microbatches = m;
  t.chunks = v;
  t.stages = p * v;
  t.place = pl;
  t.stage_rank.assign(static_cast<std::size_t>(t.stages), 0);
  t.stage_chunk.assign(static_cast<std::size_t>(t.stages), 0);
  for (int r = 0; r < p; ++r)
    for (int k = 0; k < v; ++k) {
      int s = stage_of(pl, p, r, k);
      t.stage_rank[static_cast<std::size_t>(s)] = r;
      t.stage_chunk[static_cast<std::size_t>(s)] = k;
    }
  t.lists.assign(static_cast<std::size_t>(p), vec<action>{});
  return t;
}

/// Appends compute action (kind, stage, mb) to the list of the stage's rank.
constexpr void push(table& t, op kind, int stage, int mb) {
  t.lists[static_cast<std::size_t>(t.rank_of(stage))].push_back(make_action(kind, stage, mb, t.chunk_of(stage)));
}

} // namespace pipesched
