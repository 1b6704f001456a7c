// pipesched: a table frozen into fixed-size arrays, readable in device code.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pipesched/core/action.hpp"
#include "pipesched/core/config.hpp"
#include "pipesched/core/table.hpp"

namespace pipesched {

/// Entries the flattened routes of t take in a static_table: for each micro-batch its
/// length, then its stages; 0 when every micro-batch visits 0..S-1.
constexpr std::size_t route_entries(table const& t) {
  if (t.paths.empty()) return 0;
  std::size_t n = 0;
  for (auto const& pth : t.paths) n += pth.size() + 1;
  return n;
}

/// R ranks, S global stages, N actions in all, L route entries (route_entries(); 0: no
/// paths). Plain aggregate of arrays: a constexpr object of this type can be read in
/// constant expressions on host and device.
template <std::size_t R, std::size_t S, std::size_t N, std::size_t L = 0> struct static_table {
  int ranks = 0;
  int microbatches = 0;
  int chunks = 0;
  int stages = 0;
  placement place = placement::loop;
  bool split_backward = false;
  bool forward_only = false;
  bool lowered = false;
  int memory_bound_chunks = 0;
  int memory_bound_microbatches = 0;
  diagnostic error{}; ///< why the table is empty, when it is
  action actions[N > 0 ? N : 1] = {};
  std::uint32_t offset[R + 1] = {};
  std::uint16_t slot_count[R] = {};
  std::uint16_t stage_rank[S > 0 ? S : 1] = {};
  std::uint8_t stage_chunk[S > 0 ? S : 1] = {};
  /// Routes of the micro-batches (table::paths), flattened: per micro-batch its length,
  /// then its stages. Unused when L == 0.
  std::uint16_t routes[L > 0 ? L : 1] = {};

  static constexpr std::size_t capacity = N;
  PIPESCHED_HD constexpr std::size_t size(std::size_t rank) const { return offset[rank + 1] - offset[rank]; }
  PIPESCHED_HD constexpr action const& at(std::size_t rank, std::size_t i) const { return actions[offset[rank] + i]; }
  constexpr bool ok() const { return error.ok(); }

  /// Position of micro-batch j's route in `routes` (its length entry).
  constexpr std::size_t route_offset(int j) const {
    std::size_t q = 0;
    for (int k = 0; k < j; ++k) q += std::size_t{routes[q]} + 1;
    return q;
  }
  /// The stage before s on micro-batch j's route, or -1 at its start (as table::prev_stage).
  constexpr int prev_stage(int j, int s) const {
    if constexpr (L == 0) {
      return s - 1;
    } else {
      std::size_t const q = route_offset(j);
      for (std::size_t i = 0; i < routes[q]; ++i)
        if (routes[q + 1 + i] == s) return i == 0 ? -1 : static_cast<int>(routes[q + i]);
      return -1;
    }
  }
  /// The stage after s on micro-batch j's route, or -1 at its end (as table::next_stage).
  constexpr int next_stage(int j, int s) const {
    if constexpr (L == 0) {
      return s + 1 < stages ? s + 1 : -1;
    } else {
      std::size_t const q = route_offset(j);
      for (std::size_t i = 0; i < routes[q]; ++i)
        if (routes[q + 1 + i] == s) return i + 1 == routes[q] ? -1 : static_cast<int>(routes[q + 2 + i]);
      return -1;
    }
  }
};

/// Copies a table into a static_table of exactly the right size (an empty one carrying
/// the error when the table failed).
template <std::size_t R, std::size_t S, std::size_t N, std::size_t L = 0>
constexpr static_table<R, S, N, L> freeze(table const& t) {
  static_table<R, S, N, L> st{};
  st.error = t.error;
  if (!t.ok()) return st;
  if (static_cast<std::size_t>(t.ranks) != R || static_cast<std::size_t>(t.stages) != S || t.total_actions() != N ||
      route_entries(t) != L) {
    st.error = diagnostic{errc::too_large, -1, -1, -1, -1, "the table's size changed between two evaluations"};
    return st;
  }
  st.ranks = t.ranks;
  st.microbatches = t.microbatches;
  st.chunks = t.chunks;
  st.stages = t.stages;
  st.place = t.place;
  st.split_backward = t.split_backward;
  st.forward_only = t.forward_only;
  st.lowered = t.lowered;
  st.memory_bound_chunks = t.memory_bound_chunks;
  st.memory_bound_microbatches = t.memory_bound_microbatches;
  std::size_t k = 0;
  for (std::size_t r = 0; r < R; ++r) {
    st.offset[r] = static_cast<std::uint32_t>(k);
    action const* src = t.lists[r].data();
    for (std::size_t i = 0, n = t.lists[r].size(); i < n; ++i) st.actions[k++] = src[i];
    st.slot_count[r] = r < t.slot_count.size() ? static_cast<std::uint16_t>(t.slot_count[r]) : 0;
  }
  st.offset[R] = static_cast<std::uint32_t>(k);
  for (std::size_t s = 0; s < S; ++s) {
    st.stage_rank[s] = static_cast<std::uint16_t>(t.stage_rank[s]);
    st.stage_chunk[s] = static_cast<std::uint8_t>(t.stage_chunk[s]);
  }
  std::size_t q = 0;
  for (auto const& pth : t.paths) {
    st.routes[q++] = static_cast<std::uint16_t>(pth.size());
    for (int s : pth) st.routes[q++] = static_cast<std::uint16_t>(s);
  }
  return st;
}

/// The table a static_table was frozen from.
template <std::size_t R, std::size_t S, std::size_t N, std::size_t L>
constexpr table thaw(static_table<R, S, N, L> const& st) {
  if (!st.ok()) return failed(st.error);
  table t{};
  t.ranks = st.ranks;
  t.microbatches = st.microbatches;
  t.chunks = st.chunks;
  t.stages = st.stages;
  t.place = st.place;
  t.split_backward = st.split_backward;
  t.forward_only = st.forward_only;
  t.lowered = st.lowered;
  t.memory_bound_chunks = st.memory_bound_chunks;
  t.memory_bound_microbatches = st.memory_bound_microbatches;
  t.stage_rank.resize(S);
  t.stage_chunk.resize(S);
  for (std::size_t s = 0; s < S; ++s) {
    t.stage_rank[s] = st.stage_rank[s];
    t.stage_chunk[s] = st.stage_chunk[s];
  }
  t.lists.resize(R);
  t.slot_count.resize(R);
  for (std::size_t r = 0; r < R; ++r) {
    std::size_t n = st.size(r);
    t.lists[r].resize(n);
    action* dst = t.lists[r].data();
    for (std::size_t i = 0; i < n; ++i) dst[i] = st.actions[st.offset[r] + i];
    t.slot_count[r] = st.slot_count[r];
  }
  if constexpr (L > 0) { // (a plain loop draws nvcc's "pointless comparison" warning for L = 0)
    for (std::size_t q = 0; q < L;) {
      std::size_t const len = st.routes[q++];
      vec<int> pth(len, 0);
      for (std::size_t i = 0; i < len; ++i) pth[i] = st.routes[q++];
      t.paths.push_back(static_cast<vec<int>&&>(pth));
    }
  }
  return t;
}

} // namespace pipesched
