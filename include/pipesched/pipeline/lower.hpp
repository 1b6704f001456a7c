// pipesched: lowering — transfers in one global order (pipeline/transfers.hpp), and
// boundary buffer slots (pipeline/slots.hpp).
#pragma once

#include <utility>

#include "pipesched/core/table.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/slots.hpp"
#include "pipesched/pipeline/transfers.hpp"

namespace pipesched {

/// Lowers a compute table: inserts SEND/RECV pairs in one global order, then assigns
/// boundary buffer slots. The order is the timeline of a simulation of the compute passes
/// under `costs`: each pass at its start, its output's SEND (on its rank) and RECV (on the
/// consumer's rank) together at its end. Every rank therefore posts matching transfers in
/// the same order and blocking transfers cannot wait in a cycle. Neighbouring stages on the
/// same rank exchange nothing. Returns the input's error, or cyclic_wait, on failure.
constexpr table lower(table const& t, sim_costs const& costs = {}, int extra_slots = 0) {
  if (!t.ok() || t.lowered) return t;
  route_neighbours const route = neighbours_on_routes(t); // once for the three passes below
  simulation sim = detail::simulate_times(t, costs, route);
  if (!sim.ok()) return failed(sim.error);
  vec<vec<int>> const topo = detail::topo_order(t, sim);
  auto timing = [&](std::size_t r, std::size_t i) {
    op_time const tm = sim.times[r][i];
    return std::pair<detail::sweep_key, double>{detail::sweep_key{tm.start, topo[r][i], 0}, tm.end};
  };
  table out = detail::insert_transfers(t, timing, route);
  detail::assign_slots(out, extra_slots, route);
  return out;
}

} // namespace pipesched
