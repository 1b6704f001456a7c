// pipesched: skip paths — the rules a path and a set of paths must meet.
//
// A path lists the model stages one micro-batch visits, in order; stage s lives on rank s.
// Rules (check_path for one path, check_paths for a set; path types are checked by the
// compiler, skip_paths/path_types.hpp):
// - it starts at stage 0; in layout `last` it ends at stage S-1 (the head);
// - its stages are distinct and within 0..S-1;
// - the frontier is the highest stage visited so far. A visit below the frontier is a
//   swap and must go to exactly frontier - 1; a path makes at most max_swaps swaps;
// - a visit above the frontier jumps at most max_jump stages past it;
// - every path of a set keeps the same number of stages;
// - the skippable stages (1..S-2 in layout `last`, 1..S-1 in `round_trip`) are visited by
//   counts that differ by at most one (balance).
#pragma once

#include <cstdint>

#include "pipesched/core/vec.hpp"

namespace pipesched {

/// Where the head (and the loss) sits.
enum class path_layout : std::uint8_t {
  last,       ///< on the last stage: every path ends at stage S-1
  round_trip, ///< on stage 0's rank: every path returns there (SkipPipe's layout)
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

/// Most visits below the frontier one path may make.
inline constexpr int max_swaps = 2;
/// Most stages a visit may go past the frontier.
inline constexpr int max_jump = 4;

/// One path's rules for `stage_count` model stages: `stages[0..length)` in visit order.
constexpr path_rule check_path(int const* stages, int length, int stage_count, path_layout layout) {
  if (length < 1) return path_rule::empty;
  if (stages[0] != 0) return path_rule::not_from_stage_zero;
  int frontier = 0, swaps = 0;
  for (int i = 0; i < length; ++i) {
    int const stage = stages[i];
    if (stage < 0 || stage >= stage_count) return path_rule::stage_out_of_range;
    for (int earlier = 0; earlier < i; ++earlier)
      if (stages[earlier] == stage) return path_rule::repeated_stage;
    if (i == 0) continue;
    if (stage < frontier) {
      if (stage != frontier - 1) return path_rule::swap_not_one_below;
      if (++swaps > max_swaps) return path_rule::too_many_swaps;
    } else {
      if (stage - frontier > max_jump) return path_rule::jump_too_far;
      frontier = stage;
    }
  }
  if (layout == path_layout::last && stages[length - 1] != stage_count - 1) return path_rule::not_to_last_stage;
  return path_rule::ok;
}

constexpr path_rule check_path(vec<int> const& path, int stage_count, path_layout layout) {
  return check_path(path.data(), static_cast<int>(path.size()), stage_count, layout);
}

/// How many stages a path may skip from: 1..S-2 in layout last, 1..S-1 in round_trip.
constexpr int skippable_count(int stage_count, path_layout layout) {
  return layout == path_layout::last ? (stage_count > 2 ? stage_count - 2 : 0) : stage_count - 1;
}

/// Every path's rules, equal lengths and balance over the skippable stages.
constexpr path_rule check_paths(vec<vec<int>> const& paths, int stage_count, path_layout layout) {
  if (paths.empty()) return path_rule::empty;
  for (auto const& path : paths) {
    if (path.size() != paths[0].size()) return path_rule::unequal_length;
    if (auto r = check_path(path, stage_count, layout); r != path_rule::ok) return r;
  }
  int const skippable = skippable_count(stage_count, layout);
  vec<int> visits(static_cast<std::size_t>(stage_count), 0); // micro-batches visiting each stage
  for (auto const& path : paths)
    for (int stage : path) ++visits[static_cast<std::size_t>(stage)];
  int fewest = 1 << 30, most = -1;
  for (int stage = 1; stage <= skippable; ++stage) {
    int const count = visits[static_cast<std::size_t>(stage)];
    fewest = count < fewest ? count : fewest;
    most = count > most ? count : most;
  }
  if (skippable > 0 && most - fewest > 1) return path_rule::unbalanced;
  return path_rule::ok;
}

} // namespace pipesched
