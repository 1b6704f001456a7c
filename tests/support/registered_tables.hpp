// Test support: every registered schedule family made at the sizes it accepts (the run-time
// table executors' tests run them all).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pipesched/schedules/registry.hpp"

namespace registered_tables {

/// A registered family's table at one size, named "<family> p<p> m<m>".
struct named_table {
  std::string name;
  pipesched::table t;
  bool mirrored = false; ///< DualPipe: table stages p..2p-1 are copies of the model's 0..p-1
};

/// Every registered family at each (p, m) of `sizes` that it accepts, in registry order.
inline std::vector<named_table> every_family(std::initializer_list<std::pair<int, int>> sizes) {
  std::vector<named_table> out;
  for (auto const& e : pipesched::schedule_registry)
    for (auto [p, m] : sizes) {
      pipesched::params const pr{p, m};
      if (e.check(pr)) continue;
      out.push_back({std::string(e.name) + " p" + std::to_string(p) + " m" + std::to_string(m),
                     pipesched::make_schedule(e.name, pr), e.name == std::string_view("dualpipe")});
    }
  return out;
}

} // namespace registered_tables
