// pipesched: the static buffer plan — boundary slots per rank, known at compile time.
#pragma once

#include <cstddef>
#include <vector>

#include "pipesched/core/config.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/step.hpp"

namespace pipesched {

/// How many boundary buffers each rank of S needs: the lowered table's peak number of
/// boundaries alive at once on that rank (lowering colours their lifetimes into slots).
/// Their size is the user's, chosen at run time; a backend allocates them once, before
/// the first iteration, and reuses them for every iteration.
template <schedule_type S> struct buffer_plan {
  static_assert(detail::checked<S>); // a schedule that fails verification stops the build here
  static constexpr int ranks = S::ranks;
  /// Slots of rank r.
  static constexpr int slots(int r) { return S::lowered.slot_count[r]; }
  /// Bytes of each of rank r's slots: the largest boundary it ever holds, for the
  /// boundary byte table `bytes` (boundary_byte_table: 2S entries).
  static std::vector<std::size_t> slot_bytes(int r, std::vector<std::size_t> const& bytes) {
    return slot_capacities(S::lowered, r, slots(r), bytes.data());
  }
  /// The largest slot count of any rank.
  static constexpr int max_slots = [] {
    int n = 0;
    for (int r = 0; r < S::ranks; ++r) n = slots(r) > n ? slots(r) : n;
    return n;
  }();
  /// Slots of all ranks together.
  static constexpr int total_slots = [] {
    int n = 0;
    for (int r = 0; r < S::ranks; ++r) n += slots(r);
    return n;
  }();
};

/// Alignment of every slot inside a rank's block of boundary storage.
inline constexpr std::size_t slot_alignment = 256;

/// Distance between consecutive slots of `slot_bytes` bytes in one block.
PIPESCHED_HD constexpr std::size_t slot_stride(std::size_t slot_bytes) {
  return (slot_bytes + slot_alignment - 1) / slot_alignment * slot_alignment;
}

/// Bytes of one rank's block of `slots` slots of `slot_bytes` bytes.
PIPESCHED_HD constexpr std::size_t block_bytes(int slots, std::size_t slot_bytes) {
  return static_cast<std::size_t>(slots) * slot_stride(slot_bytes);
}

/// Fills views[0..slots) with the slots of a block that starts at `base`.
PIPESCHED_HD inline void carve_slots(void* base, int slots, std::size_t slot_bytes, view* views) {
  for (int k = 0; k < slots; ++k)
    views[k] =
        view{static_cast<unsigned char*>(base) + static_cast<std::size_t>(k) * slot_stride(slot_bytes), slot_bytes};
}

/// Bytes of one block holding slots of the given sizes, each at an aligned offset.
inline std::size_t block_bytes(std::vector<std::size_t> const& slot_bytes) {
  std::size_t n = 0;
  for (std::size_t b : slot_bytes) n += slot_stride(b);
  return n;
}

/// Fills views with the slots of the given sizes of a block that starts at `base`.
inline void carve_slots(void* base, std::vector<std::size_t> const& slot_bytes, view* views) {
  std::size_t offset = 0;
  for (std::size_t k = 0; k < slot_bytes.size(); ++k) {
    views[k] = view{static_cast<unsigned char*>(base) + offset, slot_bytes[k]};
    offset += slot_stride(slot_bytes[k]);
  }
}

} // namespace pipesched
