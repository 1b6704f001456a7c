// pipesched: skip and reorder paths — each micro-batch visits its own subset of the stages.
//
// A path lists the model stages one micro-batch visits, in order; stage s lives on rank s.
// The rules a path and a path set meet are in skip_paths/rules.hpp.
//
// Layout `round_trip` (the head and the loss on stage 0's rank): the table gets one more
// stage, S, placed on rank 0 (chunk 1), and every table path ends with it. A path type or
// an assigned path holds the model stages only; the table adds stage S. simulate, lower
// and verify read it as any other stage, so the return to rank 0 costs a transfer there
// and back like every other hop.
//
// The pieces (skip_paths/), each including those before it:
//   rules.hpp           path_layout, path_rule, check_path / check_paths
//   config.hpp          skip_config, check_config, skip_sim_costs, full_pipeline
//   formula_paths.hpp   the rotation and spread rules
//   cheapest_paths.hpp  the cost-aware greedy: visit quotas and the dynamic programme
//   event_order.hpp     skip_table: the per-rank order from one event simulation
//   assignment.hpp      the candidates timed, the local search, assign_paths, make_skip
//   path_types.hpp      path<...>, path_set<...>, valid_paths (checked by the compiler)
// and this header: the schedule families (skip_paths, skip_given).
#pragma once

#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/schedules/skip_paths/assignment.hpp"
#include "pipesched/schedules/skip_paths/config.hpp"
#include "pipesched/schedules/skip_paths/event_order.hpp"
#include "pipesched/schedules/skip_paths/path_types.hpp"
#include "pipesched/schedules/skip_paths/rules.hpp"

namespace pipesched {

namespace detail {

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
