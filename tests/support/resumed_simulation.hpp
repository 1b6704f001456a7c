// Test support: a simulation resumed where one rank's list changed (detail::sim_resume)
// against the same table simulated from the start. The trials move one entry of one rank's
// list to another place near it (or to either end), as the order search of skip paths does
// with its steps; many trials wait in a cycle, which the resumed simulation must report as
// the full one does.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <string>

#include "pipesched/core/table.hpp"
#include "pipesched/pipeline/simulate.hpp"

namespace pipesched::testing {

struct resumed_counts {
  long trials = 0;  ///< moves simulated both ways
  long ok = 0;      ///< of those, without a cycle
  long resumed = 0; ///< of those, where the resumed simulation kept some passes' times
};

/// t with rank r's entry `from` moved to position `to` of the list without it.
inline table moved_entry(table t, std::size_t r, std::size_t from, std::size_t to) {
  vec<action>& list = t.lists[r];
  action const a = list[from];
  vec<action> out;
  for (std::size_t i = 0; i < list.size(); ++i)
    if (i != from) out.push_back(list[i]);
  vec<action> with;
  for (std::size_t i = 0; i <= out.size(); ++i) {
    if (i == to) with.push_back(a);
    if (i < out.size()) with.push_back(out[i]);
  }
  list = with;
  return t;
}

/// Every rank's entries each moved up to `reach` places either way and to both ends: the
/// resumed simulation gives the same times (to the bit), or the same error, as the full one.
inline resumed_counts check_resumed_simulations(table const& t, sim_costs const& costs, std::string const& what,
                                                std::size_t reach = 4) {
  resumed_counts n;
  route_neighbours const route = neighbours_on_routes(t);
  detail::flat_times base;
  simulation const first = detail::simulate_times(t, costs, route, {}, &base);
  INFO(what);
  REQUIRE(first.ok());
  CHECK(first.times.empty()); // the times went to `base`
  for (std::size_t r = 0; r < t.lists.size(); ++r) {
    std::size_t const len = t.lists[r].size();
    for (std::size_t from = 0; from < len; ++from)
      for (std::size_t to = 0; to < len; ++to) {
        bool const near = (to + reach >= from && to <= from + reach) || to == 0 || to + 1 == len;
        if (to == from || !near) continue;
        table const trial = moved_entry(t, r, from, to);
        std::size_t const changed = from < to ? from : to;
        INFO("rank " << r << ": entry " << from << " moved to " << to);
        detail::flat_times full_times, resumed_times;
        simulation const full = detail::simulate_times(trial, costs, route, {}, &full_times);
        simulation const resumed =
            detail::simulate_times(trial, costs, route, detail::sim_resume{&base, r, changed}, &resumed_times);
        ++n.trials;
        REQUIRE(full.ok() == resumed.ok());
        if (!full.ok()) {
          CHECK(resumed.error.code == full.error.code);
          CHECK(resumed.error.rank == full.error.rank);
          CHECK(resumed.error.position == full.error.position);
          continue;
        }
        ++n.ok;
        CHECK(resumed_times.off == full_times.off);
        CHECK(resumed_times.start == full_times.start);
        CHECK(resumed_times.end == full_times.end);
        // `order` holds only the passes simulated: fewer when some times were kept
        CHECK(resumed.order.size() <= full.order.size());
        n.resumed += resumed.order.size() < full.order.size();
      }
  }
  return n;
}

} // namespace pipesched::testing
