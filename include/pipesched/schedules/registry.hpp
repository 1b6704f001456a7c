// pipesched: every named schedule, for tools and run-time callers.
#pragma once

#include <string_view>

#include "pipesched/lower/lower.hpp"
#include "pipesched/schedules/forward_only.hpp"
#include "pipesched/schedules/gpipe.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"

namespace pipesched {

/// A schedule family seen at run time: its name, check and generator.
struct schedule_info {
  std::string_view name;
  diagnostic (*check)(params const&);
  table (*generate)(params const&);
  std::string_view summary;
};

namespace detail {
template <class Family> constexpr schedule_info entry(std::string_view summary) {
  return {Family::name, &Family::check, &Family::generate, summary};
}
} // namespace detail

/// One line per schedule: adding a family to the tools is adding its line here.
inline constexpr schedule_info schedule_registry[] = {
    detail::entry<gpipe_family>("fill-drain: all forwards, then all backwards; memory m"),
    detail::entry<one_f_one_b_family>("one forward, one backward; memory p on rank 0"),
    detail::entry<forward_only_family>("inference: forwards only"),
};

/// The registered schedule called `name`, or nullptr.
constexpr schedule_info const* find_schedule(std::string_view name) {
  for (auto const& e : schedule_registry)
    if (e.name == name) return &e;
  return nullptr;
}

/// Generates schedule `name` for run-time parameters; lowered (transfers and buffer slots)
/// unless `lowered` is false. Errors come back in the table's `error`.
constexpr table make_schedule(std::string_view name, params const& pr, bool lowered = true) {
  schedule_info const* e = find_schedule(name);
  if (e == nullptr) return failed({errc::unknown_schedule});
  if (auto d = e->check(pr)) return failed(d);
  table t = e->generate(pr);
  if (!lowered) return t;
  return lower(t, sim_costs{pr.cost});
}

} // namespace pipesched
