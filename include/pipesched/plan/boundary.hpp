// pipesched: which boundary each buffer view holds, and how many bytes each boundary has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipesched/core/action.hpp"
#include "pipesched/core/config.hpp"
#include "pipesched/plan/step.hpp"

namespace pipesched {

/// The three boundary views of an action (io::in, io::out, io::aux).
enum class field : std::uint8_t { in, out, aux };

/// Index of a boundary in a byte table of 2S entries: the activation stage s sends forward
/// (its output) is s; the gradient of that activation, coming back, is S + s.
///
/// Field f of action a in lowered table t holds (straight or skip routes alike):
///
/// | action            | in            | out           | aux          |
/// |-------------------|---------------|---------------|--------------|
/// | F of s            | act(prev(s))  | act(s)        |              |
/// | B, I of s         | grad(s)       | grad(prev(s)) | act(prev(s)) |
/// | W of s            | grad(s)       |               | act(prev(s)) |
/// | SEND_F of s       | act(s)        |               |              |
/// | RECV_F of t       |               | act(prev(t))  |              |
/// | SEND_B of s       | grad(prev(s)) |               |              |
/// | RECV_B of s       |               | grad(s)       |              |
///
/// Returns -1 where the field holds nothing (no slot, or no neighbour on the route).
template <class Table> constexpr int boundary_key(Table const& t, action const& a, field f) {
  std::uint16_t const slot = f == field::in ? a.in : (f == field::out ? a.out : a.aux);
  if (slot == no_slot) return -1;
  int const s = a.stage, S = t.stages;
  auto act = [&](int x) { return x < 0 ? -1 : x; };
  auto grad = [&](int x) { return x < 0 ? -1 : S + x; };
  int const prev = t.prev_stage(a.mb, s);
  switch (a.kind) {
  case op::forward: return f == field::in ? act(prev) : act(s);
  case op::backward:
  case op::backward_input: return f == field::in ? grad(s) : (f == field::out ? grad(prev) : act(prev));
  case op::backward_weight: return f == field::in ? grad(s) : act(prev);
  case op::send_act: return act(s);
  case op::recv_act: return act(prev);
  case op::send_grad: return grad(prev);
  case op::recv_grad: return grad(s);
  }
  return -1;
}

/// A rank's boundary buffers as a plan reads them: the slots (address, capacity) and the
/// byte count of every boundary (2S entries, boundary_key order). Each view a functor or a
/// transport gets is the slot's address with the boundary's own size.
struct boundary_views {
  view const* slots = nullptr;
  std::size_t const* bytes = nullptr;
};

/// Bytes of every boundary of a model, given per stage: what stage s sends forward (its
/// output activation) and the gradient of it that comes back. Real models differ per stage
/// (an embedding, a vocabulary head, skip routes of other widths).
struct boundary_sizes {
  /// S entries: bytes of stage s's output activation (the last stage's is unused: it goes
  /// to the loss).
  std::vector<std::size_t> activation{};
  /// S entries, or empty: the gradient of each activation has the activation's size.
  std::vector<std::size_t> gradient{};
};

/// The byte table of 2S entries (boundary_key order) for `stages` global stages: from
/// `sizes` when it gives activations, else `uniform` for every boundary. Throws
/// std::invalid_argument naming the problem when a list has the wrong length.
inline std::vector<std::size_t> boundary_byte_table(int stages, boundary_sizes const& sizes, std::size_t uniform) {
  std::size_t const S = static_cast<std::size_t>(stages);
  std::vector<std::size_t> bytes(2 * S, uniform);
  if (sizes.activation.empty()) {
    if (!sizes.gradient.empty())
      throw std::invalid_argument("pipesched: boundary sizes give gradients but no activations: give activation "
                                  "bytes for each of the " +
                                  std::to_string(stages) + " stages");
    return bytes;
  }
  if (sizes.activation.size() != S)
    throw std::invalid_argument("pipesched: boundary sizes give " + std::to_string(sizes.activation.size()) +
                                " activation sizes, the schedule has " + std::to_string(stages) +
                                " stages: give one per stage (stage s's output)");
  if (!sizes.gradient.empty() && sizes.gradient.size() != S)
    throw std::invalid_argument("pipesched: boundary sizes give " + std::to_string(sizes.gradient.size()) +
                                " gradient sizes, the schedule has " + std::to_string(stages) +
                                " stages: give one per stage, or none (gradients as large as the activations)");
  for (std::size_t s = 0; s < S; ++s) {
    bytes[s] = sizes.activation[s];
    bytes[S + s] = sizes.gradient.empty() ? sizes.activation[s] : sizes.gradient[s];
  }
  return bytes;
}

/// Capacity of each of rank r's `slots` slots in lowered table t: the largest boundary the
/// slot ever holds (`bytes`: 2S entries, boundary_key order).
template <class Table>
std::vector<std::size_t> slot_capacities(Table const& t, int r, int slots, std::size_t const* bytes) {
  std::vector<std::size_t> cap(static_cast<std::size_t>(slots), 0);
  std::size_t const n = t.size(static_cast<std::size_t>(r));
  for (std::size_t i = 0; i < n; ++i) {
    action const& a = t.at(static_cast<std::size_t>(r), i);
    for (field f : {field::in, field::out, field::aux}) {
      int const key = boundary_key(t, a, f);
      if (key < 0) continue;
      std::uint16_t const slot = f == field::in ? a.in : (f == field::out ? a.out : a.aux);
      std::size_t& c = cap[slot];
      c = bytes[key] > c ? bytes[key] : c;
    }
  }
  return cap;
}

} // namespace pipesched
