// pipesched: skip paths written as types — path<...>, path_set<S, ...> and valid_paths,
// which stops compilation with the sentence of the rule a path set breaks.
#pragma once

#include "pipesched/core/vec.hpp"
#include "pipesched/schedules/skip_paths/rules.hpp"

namespace pipesched {

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

} // namespace detail

/// True for a path set that meets every rule; otherwise compilation stops with the rule.
template <class Set, path_layout Layout = path_layout::last>
inline constexpr bool valid_paths = detail::report_path_rule<detail::check_path_set<Set>(Layout)>();

} // namespace pipesched
