// pipesched: what a stage functor is given — a compile-time step and run-time boundary views.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pipesched/core/action.hpp"
#include "pipesched/core/config.hpp"

// The CUDA runtime's stream handle is `struct CUstream_st*`; naming the struct here keeps
// core headers free of CUDA headers while `io::stream` converts to cudaStream_t as it is.
struct CUstream_st;

namespace pipesched {

/// A stream handle: cudaStream_t on the CUDA backend, null on the host.
using stream_handle = CUstream_st*;

/// One action of a lowered list as a type. Every field is a compile-time constant, so a
/// functor can branch with `if constexpr` on the pass, stage, chunk or micro-batch. Slots are
/// indices into the rank's boundary buffers, -1 where there is no boundary (the first
/// stage's input is the user's batch, the last stage's output goes to the loss); Peer is the
/// other rank of a transfer, -1 for compute passes; PeerStage and PeerChunk are the stage at
/// the other end of a transfer and its chunk (the sending stage for a receive, the
/// receiving stage for a send), -1 for compute passes. Only integers: a `__global__`
/// template can take a plan whose steps are types of this kind.
template <op Kind, int Stage, int Chunk, int Mb, int In, int Out, int Aux, int Peer = -1, int Stages = 0,
          int PeerStage = -1, int PeerChunk = -1>
struct step {
  static constexpr op kind = Kind;
  static constexpr int stage = Stage;   ///< global stage index
  static constexpr int chunk = Chunk;   ///< chunk index of the stage on its rank
  static constexpr int mb = Mb;         ///< micro-batch
  static constexpr int in = In;         ///< slot read (F: input activation; B, I, W: output gradient)
  static constexpr int out = Out;       ///< slot written (F: output activation; B, I: input gradient)
  static constexpr int aux = Aux;       ///< slot read by B, I, W: the saved input activation
  static constexpr int peer = Peer;     ///< other rank of a transfer, -1 for compute passes
  static constexpr int stages = Stages; ///< global stage count S
  static constexpr int peer_stage = PeerStage; ///< stage at the other end of a transfer, -1 for compute passes
  static constexpr int peer_chunk = PeerChunk; ///< that stage's chunk on its rank, -1 for compute passes
  static constexpr bool has_in = In >= 0;
  static constexpr bool has_out = Out >= 0;
  static constexpr bool has_aux = Aux >= 0;
  /// The stage's input is the user's batch (stage 0 on a straight route).
  static constexpr bool first_stage = Stage == 0;
  /// The stage's output goes to the loss.
  static constexpr bool last_stage = Stage == Stages - 1;
};

/// A step whose fields are known only at run time (run-time schedules, interpreters). Has
/// the same member names as `step`, so a functor that reads the fields through its step
/// argument (`s.mb`, `s.has_in`) accepts both; `Step::mb` in a constant expression
/// (`if constexpr`) is for compiled plans only.
struct runtime_step {
  op kind = op::forward;
  int stage = 0, chunk = 0, mb = 0, in = -1, out = -1, aux = -1, peer = -1, stages = 0;
  int peer_stage = -1, peer_chunk = -1;
  bool has_in = false, has_out = false, has_aux = false;
  bool first_stage = false, last_stage = false;
};

/// The run-time copy of a step's fields. A functor can forward each call to one
/// non-template function taking it, so that its code compiles once rather than per step.
template <class Step> PIPESCHED_HD constexpr runtime_step runtime_of(Step) {
  return runtime_step{Step::kind,      Step::stage,    Step::chunk,   Step::mb,      Step::in,
                      Step::out,       Step::aux,      Step::peer,    Step::stages,  Step::peer_stage,
                      Step::peer_chunk, Step::has_in,  Step::has_out, Step::has_aux, Step::first_stage,
                      Step::last_stage};
}
/// A runtime_step is its own run-time copy.
PIPESCHED_HD constexpr runtime_step runtime_of(runtime_step const& s) { return s; }

/// Which boundary a transfer carries, as both ends name it: the direction, the stage that
/// sends it and that stage's chunk, and the micro-batch. Transports check it on arrival.
struct boundary_identity {
  int direction = 0; ///< 0: activation (forward), 1: gradient (backward)
  int from_stage = -1;
  int from_chunk = -1;
  int mb = -1;
  friend constexpr bool operator==(boundary_identity const&, boundary_identity const&) = default;
};

/// The identity of the boundary a transfer step moves (for a receive: the one it expects).
/// (The step's fields are read through the object, so a runtime_step works too.)
template <class Step> PIPESCHED_HD constexpr boundary_identity identity_of(Step const& s) {
  bool const act = s.kind == op::send_act || s.kind == op::recv_act;
  bool const sending = s.kind == op::send_act || s.kind == op::send_grad;
  return boundary_identity{act ? 0 : 1, sending ? s.stage : s.peer_stage, sending ? s.chunk : s.peer_chunk, s.mb};
}

/// A run-time view of one boundary buffer: its address and size in bytes. Null and empty
/// where the step has no such boundary.
struct view {
  void* data = nullptr;
  std::size_t bytes = 0;

  template <class T> PIPESCHED_HD T* as() const { return static_cast<T*>(data); }
  template <class T> PIPESCHED_HD std::size_t count() const { return bytes / sizeof(T); }
  PIPESCHED_HD explicit operator bool() const { return data != nullptr; }
};

/// What a stage functor's member receives besides its step: the views of the boundaries
/// the step reads and writes, the stream to launch on (null on the host) and the rank.
struct io {
  view in;  ///< F: input activation; B, I, W: output gradient
  view out; ///< F: output activation; B, I: input gradient
  view aux; ///< B, I, W: the input activation saved at F
  stream_handle stream = nullptr;
  int rank = 0;
};

/// F has `forward_backward(StepF, StepB, io const& f, io const& b)`: it runs an overlapped
/// pair (a forward and a B or I of another stage or micro-batch) together, e.g. one half's
/// communication under the other's compute. Optional: without it a pair runs as its forward
/// then its backward.
template <class F, class StepF, class StepB>
concept has_forward_backward = requires(F& f, io const& x) {
  f.forward_backward(StepF{}, StepB{}, x, x);
};

namespace detail {
PIPESCHED_HD constexpr int slot_or_none(std::uint16_t s) { return s == no_slot ? -1 : static_cast<int>(s); }
PIPESCHED_HD constexpr int rank_or_none(std::uint16_t r) { return r == no_rank ? -1 : static_cast<int>(r); }
} // namespace detail

/// Action I of rank Rank in schedule S's lowered table, as a constant.
template <class S, int Rank, std::size_t I> inline constexpr action action_of = S::lowered.at(Rank, I);

namespace detail {
/// The stage at the other end of transfer `a` in lowered table `t` (-1 for a compute pass):
/// the receiving stage of a send, the sending stage of a receive.
template <class Table> constexpr int peer_stage_of(Table const& t, action const& a) {
  switch (a.kind) {
  case op::send_act: return t.next_stage(a.mb, a.stage);
  case op::recv_act: return t.prev_stage(a.mb, a.stage);
  case op::send_grad: return t.prev_stage(a.mb, a.stage);
  case op::recv_grad: return t.next_stage(a.mb, a.stage);
  default: return -1;
  }
}
template <class S, int Rank, std::size_t I>
inline constexpr int peer_stage_at = peer_stage_of(S::lowered, action_of<S, Rank, I>);
template <class S, int Rank, std::size_t I>
inline constexpr int peer_chunk_at =
    peer_stage_at<S, Rank, I> < 0 ? -1 : static_cast<int>(S::lowered.stage_chunk[peer_stage_at<S, Rank, I>]);
} // namespace detail

/// The step type of action I of rank Rank in schedule S's lowered table.
template <class S, int Rank, std::size_t I>
using step_of = step<action_of<S, Rank, I>.kind, action_of<S, Rank, I>.stage, action_of<S, Rank, I>.chunk,
                     action_of<S, Rank, I>.mb, detail::slot_or_none(action_of<S, Rank, I>.in),
                     detail::slot_or_none(action_of<S, Rank, I>.out), detail::slot_or_none(action_of<S, Rank, I>.aux),
                     detail::rank_or_none(action_of<S, Rank, I>.peer), S::lowered.stages,
                     detail::peer_stage_at<S, Rank, I>, detail::peer_chunk_at<S, Rank, I>>;

} // namespace pipesched
