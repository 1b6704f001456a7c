// pipesched: the passes and the small POD action every table is made of.
#pragma once

#include <cstdint>

#include "pipesched/core/config.hpp"

namespace pipesched {

/// What one entry of a rank's list does.
enum class op : std::uint8_t {
  forward,         ///< F: forward of one micro-batch through one stage
  backward,        ///< B: fused backward (input and weight gradients together)
  backward_input,  ///< I: input-gradient backward only
  backward_weight, ///< W: weight-gradient backward only
  send_act,        ///< send a stage's output activation to the rank of the next stage
  recv_act,        ///< receive a stage's input activation from the rank of the previous stage
  send_grad,       ///< send a stage's input gradient to the rank of the previous stage
  recv_grad,       ///< receive a stage's output gradient from the rank of the next stage
};

inline constexpr int op_count = 8;

PIPESCHED_HD constexpr bool is_compute(op k) { return k <= op::backward_weight; }
PIPESCHED_HD constexpr bool is_transfer(op k) { return k >= op::send_act; }
PIPESCHED_HD constexpr bool is_send(op k) { return k == op::send_act || k == op::send_grad; }
PIPESCHED_HD constexpr bool is_recv(op k) { return k == op::recv_act || k == op::recv_grad; }
/// F, or a backward pass that produces the input gradient (B or I).
PIPESCHED_HD constexpr bool makes_input_grad(op k) { return k == op::backward || k == op::backward_input; }

/// The letters PyTorch's action format uses ("F", "B", "I", "W", "SEND_F", ...).
constexpr const char* op_name(op k) {
  switch (k) {
  case op::forward: return "F";
  case op::backward: return "B";
  case op::backward_input: return "I";
  case op::backward_weight: return "W";
  case op::send_act: return "SEND_F";
  case op::recv_act: return "RECV_F";
  case op::send_grad: return "SEND_B";
  case op::recv_grad: return "RECV_B";
  }
  return "?";
}

/// Bits of action::flags.
inline constexpr std::uint8_t overlap_next = 1; ///< this F and the next action (a B or I) are one overlapped pair

inline constexpr std::uint16_t no_slot = 0xffff;
inline constexpr std::uint16_t no_rank = 0xffff;

/// One entry of a rank's list.
///
/// - stage: the global stage index (for transfers: the stage that sends for SEND_*, the
///   stage that receives for RECV_*, as in PyTorch's format), mb: the micro-batch.
/// - peer: the other rank of a transfer.
/// - Buffer slots (indices into the rank's boundary buffers, no_slot when unused):
///   F reads `in` (input activation) and writes `out` (output activation);
///   B and I read `in` (output gradient) and `aux` (the saved input activation) and write
///   `out` (input gradient); W reads `in` (output gradient) and `aux` (input activation);
///   SEND_* reads `in`; RECV_* writes `out`.
/// - flags: `overlap_next` on an F means it and the action right after it in the rank's
///   list (a B or I of another stage or micro-batch) form one overlapped pair: both halves
///   start together once both halves' inputs are ready and end together (PyTorch's
///   `(0F3;7B1)OVERLAP_F_B`). Zero otherwise.
///
/// Trivially default-constructible on purpose (cheap arrays in constant expressions):
/// make one with make_action(), which sets every field.
struct action {
  op kind;
  std::uint8_t chunk;
  std::uint16_t stage;
  std::uint16_t mb;
  std::uint16_t peer;
  std::uint16_t in;
  std::uint16_t out;
  std::uint16_t aux;
  std::uint8_t flags;

  friend constexpr bool operator==(action const&, action const&) = default;
};

/// Compute action for (kind, stage, micro-batch).
PIPESCHED_HD constexpr action make_action(op k, int stage, int mb, int chunk = 0) {
  return action{k,       static_cast<std::uint8_t>(chunk), static_cast<std::uint16_t>(stage),
                static_cast<std::uint16_t>(mb), no_rank, no_slot, no_slot, no_slot, 0};
}

/// Whether a opens an overlapped pair with the action after it.
PIPESCHED_HD constexpr bool overlaps_next(action const& a) { return (a.flags & overlap_next) != 0; }

} // namespace pipesched
