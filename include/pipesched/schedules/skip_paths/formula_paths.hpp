// pipesched: skip paths — the two assignments given by a formula (rotation and spread).
#pragma once

#include "pipesched/schedules/skip_paths/config.hpp"

namespace pipesched::detail {

/// Paths by the rotation rule: with k = S - K stages skipped per path and n skippable
/// stages, micro-batch j skips stages 1 + ((j*k + t) * stride mod n), t < k, and keeps
/// the others in ascending order. A stride coprime to n spreads the skipped stages
/// (stride 1: the plain rule).
constexpr vec<vec<int>> rotation_paths(skip_config const& c, int stride = 1) {
  int const S = c.stages, skippable = skippable_count(S, c.layout), skipped_per_path = S - c.keep;
  vec<vec<int>> out(static_cast<std::size_t>(c.microbatches));
  vec<char> skipped(static_cast<std::size_t>(S), 0); // this micro-batch skips stage s
  for (int j = 0; j < c.microbatches; ++j) {
    for (auto& x : skipped) x = 0;
    for (int t = 0; t < skipped_per_path; ++t)
      skipped[static_cast<std::size_t>(
          1 + static_cast<int>((static_cast<long long>(j * skipped_per_path + t) * stride) % skippable))] = 1;
    auto& path = out[static_cast<std::size_t>(j)];
    for (int s = 0; s < S; ++s)
      if (!skipped[static_cast<std::size_t>(s)]) path.push_back(s);
  }
  return out;
}

/// Paths that keep evenly spread stages: micro-batch j keeps the skippable stages
/// 1 + (j + floor(t * n / kept)) mod n, t < kept, in ascending order (n skippable stages,
/// kept of them per path). Every window of consecutive micro-batches then visits the
/// stages evenly, so the counts stay balanced, and the skipped runs stay short (the jump
/// limit holds whenever n <= 4 * kept).
constexpr vec<vec<int>> spread_paths(skip_config const& c) {
  int const S = c.stages, skippable = skippable_count(S, c.layout);
  bool const head_last = c.layout == path_layout::last;
  int const kept = kept_skippable_count(c);
  vec<vec<int>> out(static_cast<std::size_t>(c.microbatches));
  vec<char> visited(static_cast<std::size_t>(S), 0); // this micro-batch visits stage s
  for (int j = 0; j < c.microbatches; ++j) {
    for (auto& x : visited) x = 0;
    visited[0] = 1;
    if (head_last) visited[static_cast<std::size_t>(S - 1)] = 1;
    for (int t = 0; t < kept; ++t) visited[static_cast<std::size_t>(1 + (j + t * skippable / kept) % skippable)] = 1;
    auto& path = out[static_cast<std::size_t>(j)];
    for (int s = 0; s < S; ++s)
      if (visited[static_cast<std::size_t>(s)]) path.push_back(s);
  }
  return out;
}

} // namespace pipesched::detail
