// pipesched: a lowered table frozen into fixed-size arrays, readable in device code.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pipesched/core/action.hpp"
#include "pipesched/core/config.hpp"
#include "pipesched/core/table.hpp"

namespace pipesched {

/// R ranks, S global stages, N actions in all. Plain aggregate of arrays: a constexpr
/// object of this type can be read in constant expressions on host and device.
template <std::size_t R, std::size_t S, std::size_t N> struct static_table {
  int ranks = 0;
  int microbatches = 0;
  int chunks = 0;
  int stages = 0;
  bool split_backward = false;
  bool forward_only = false;
  action actions[N > 0 ? N : 1] = {};
  std::uint32_t offset[R + 1] = {};
  std::uint16_t slot_count[R] = {};
  std::uint16_t stage_rank[S > 0 ? S : 1] = {};

  static constexpr std::size_t capacity = N;
  PIPESCHED_HD constexpr std::size_t size(std::size_t rank) const { return offset[rank + 1] - offset[rank]; }
  PIPESCHED_HD constexpr action const& at(std::size_t rank, std::size_t i) const { return actions[offset[rank] + i]; }
};

/// Copies a lowered table into a static_table of exactly the right size.
template <std::size_t R, std::size_t S, std::size_t N> constexpr static_table<R, S, N> freeze(table const& t) {
  static_table<R, S, N> st{};
  if (!t.ok() || static_cast<std::size_t>(t.ranks) != R) return st;
  st.ranks = t.ranks;
  st.microbatches = t.microbatches;
  st.chunks = t.chunks;
  st.stages = t.stages;
  st.split_backward = t.split_backward;
  st.forward_only = t.forward_only;
  std::size_t k = 0;
  for (std::size_t r = 0; r < R; ++r) {
    st.offset[r] = static_cast<std::uint32_t>(k);
    for (action const& a : t.lists[r]) st.actions[k++] = a;
    st.slot_count[r] = r < t.slot_count.size() ? static_cast<std::uint16_t>(t.slot_count[r]) : 0;
  }
  st.offset[R] = static_cast<std::uint32_t>(k);
  for (std::size_t s = 0; s < S && s < t.stage_rank.size(); ++s)
    st.stage_rank[s] = static_cast<std::uint16_t>(t.stage_rank[s]);
  return st;
}

} // namespace pipesched
