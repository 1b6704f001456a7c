// pipesched: every named schedule, for tools and run-time callers.
#pragma once

#include <string_view>

#include "pipesched/pipeline/lower.hpp"
#include "pipesched/schedules/dualpipe.hpp"
#include "pipesched/schedules/dualpipe_v.hpp"
#include "pipesched/schedules/forward_only.hpp"
#include "pipesched/schedules/gpipe.hpp"
#include "pipesched/schedules/interleaved.hpp"
#include "pipesched/schedules/interleaved_zb.hpp"
#include "pipesched/schedules/looped_bfs.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/v_shape.hpp"
#include "pipesched/schedules/zb_v.hpp"
#include "pipesched/schedules/zero_bubble.hpp"

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
    detail::entry<interleaved_1f1b_family>("interleaved 1F1B over v chunks per rank (loop placement)"),
    detail::entry<zb_h1_family>("zero bubble H1: 1F1B with weight passes deferred into the tail; memory p"),
    detail::entry<zb_h2_family>("zero bubble H2: extra warm-up forwards, W fills the tail; memory up to 2p"),
    detail::entry<zb_v_family>("zero bubble V: two chunks per rank in a V; memory p"),
    detail::entry<v_half_family>("V-shape, half of 1F1B's memory"),
    detail::entry<v_min_family>("V-shape, a third of 1F1B's memory"),
    detail::entry<looped_bfs_family>(
        "looped BFS: per chunk all forwards, then backwards in reverse (loop placement); memory m"),
    detail::entry<interleaved_zb_family>(
        "interleaved zero bubble (PyTorch's, any m): I/W split, W deferred; memory p for m a multiple of p"),
    detail::entry<dualpipe_v_family>("DualPipeV: V placement, overlapped forward-backward pairs; memory p + 1/2"),
    detail::entry<dualpipe_family>("DualPipe: bidirectional, half of the micro-batches from each end, overlapped pairs; "
                                   "2x parameters, p + 1 stage-activations"),
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
  return lower(t, sim_costs{pr.cost}, pr.extra_slots);
}

} // namespace pipesched
