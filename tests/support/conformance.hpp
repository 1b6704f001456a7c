// Test support: what every generated table must satisfy, whatever its family.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "check_slots.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/core/diagnostic.hpp"
#include "pipesched/pipeline/lower.hpp"

namespace pipesched::testing {

/// Verifies the compute table and its lowering (rendezvous, slots); returns the lowered
/// table. `label` names the case in failure messages.
inline table check_conformance(table const& t, cost_model const& cost, std::string const& label) {
  INFO(label);
  REQUIRE_MESSAGE(t.ok(), to_string(t.error));
  diagnostic d = verify(t);
  CHECK_MESSAGE(d.ok(), to_string(d));
  table low = lower(t, sim_costs{cost});
  REQUIRE_MESSAGE(low.ok(), to_string(low.error));
  diagnostic dl = verify(low);
  CHECK_MESSAGE(dl.ok(), to_string(dl));
  slot_report rep = check_slots(low);
  CHECK_MESSAGE(rep.ok, rep.problem);
  if (rep.ok)
    for (int r = 0; r < low.ranks; ++r)
      CHECK(low.slot_count[static_cast<std::size_t>(r)] == rep.peak_live[static_cast<std::size_t>(r)]);
  return low;
}

} // namespace pipesched::testing
