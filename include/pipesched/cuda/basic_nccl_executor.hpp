// pipesched: the per-process executor of a multi-process run (one process per GPU): this
// rank's part of the schedule's verified stream program, with boundaries moved by
// point-to-point send/receive (NCCL's semantics: a send and its receive complete together).
//
// Written against two policies and including no CUDA or NCCL header: `Runtime` (streams,
// events, memory, queries — cuda_runtime's shape plus stream_query/event_query) and `Comm`
// (group start/end, send, recv, the communicator's asynchronous state, abort, split,
// release). Everything but the issue of one iteration is in detail::nccl_rank
// (nccl_rank.hpp), shared with basic_nccl_runtime_executor (a schedule chosen at run time).
// `cuda::nccl_executor<S>` (nccl.cuh) binds them to CUDA and NCCL; the CPU tests bind them
// to a host emulation in which threads stand in for processes.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pipesched/cuda/basic_executor.hpp"
#include "pipesched/cuda/nccl_rank.hpp"
#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/plan/action_record.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/plan.hpp"
#include "pipesched/plan/stage_functor.hpp"

namespace pipesched::cuda {

namespace detail {

/// The units of a stream program (rendezvous mode) that involve rank R, in the global issue
/// order: R's compute passes and every transfer R sends or receives.
template <class Program, int R> struct rank_units {
  using S = typename Program::schedule;
  static constexpr bool involves(std::uint64_t u) {
    std::size_t const r = unit_rank(u), i = unit_index(u);
    if (r == static_cast<std::size_t>(R)) return true;
    action const& a = S::lowered.at(r, i);
    return !is_compute(a.kind) && a.peer == R;
  }
  static constexpr std::size_t count = [] {
    std::size_t n = 0;
    for (std::size_t k = 0; k < Program::units; ++k) n += involves(Program::issue.units[k]) ? 1 : 0;
    return n;
  }();
  static constexpr std::array<std::size_t, count> list = [] {
    std::array<std::size_t, count> out{};
    std::size_t n = 0;
    for (std::size_t k = 0; k < Program::units; ++k)
      if (involves(Program::issue.units[k])) out[n++] = k;
    return out;
  }();
};

} // namespace detail

/// The executor of one rank of a schedule whose ranks are separate processes (one GPU each).
///
/// What it issues is rank `rank`'s part of `stream_program_of<S, transfer_mode::rendezvous>`
/// — checked by the compiler like every stream program — in the program's global issue
/// order: the compute passes on the rank's compute stream, sends and receives on its
/// communication stream with the events the program places around them. A run of
/// consecutive transfers with no compute pass of this rank between them goes into one group
/// (at most `max_group_ops` operations; a longer run is issued as several groups in a row).
/// Any split of a rank's transfers into contiguous groups is safe: in the global order the
/// first transfer not yet done has every earlier item of both its ranks done, so both post
/// it (see docs/04_cuda.md).
///
/// Waiting never hangs: the communicator's asynchronous state is polled while the host
/// waits (for a group to be enqueued, for the iteration to finish), against a deadline per
/// iteration. On a communicator error, a peer's failure (seen as an error or as a note on
/// the failure board) or the deadline, the rank aborts its communicator and throws
/// transport_error naming the failing rank and the edge it was on; a functor that throws
/// leaves its note on the board, aborts the communicator and its exception propagates.
/// After a failure the executor refuses to run (make a new communicator and executor).
///
/// capture()/replay(): the rank's whole iteration as a CUDA graph, its transfers each on the
/// communicator of its directed edge (see edge_rounds.hpp and docs/04_cuda.md).
template <schedule_type S, class Runtime, class Comm>
class basic_nccl_executor : public detail::nccl_rank<Runtime, Comm> {
  static_assert(pipesched::detail::checked<S>);
  using base = detail::nccl_rank<Runtime, Comm>;

public:
  using stream_t = typename Runtime::stream_t;
  using comm_t = typename Comm::comm_t;
  using schedule = S;
  using program = stream_program_of<S, transfer_mode::rendezvous>;
  static_assert(program::valid); // the rendezvous stream program's check, with its sentence when it fails
  static constexpr int ranks = S::ranks;

  /// `comm`: a communicator of S::ranks ranks in which this process is `rank` (made
  /// non-blocking, see nccl.cuh); the executor does not own it. Allocates this rank's
  /// boundary slots, streams and events on the current device, then warms up its edges.
  /// When the constructor throws, it has aborted the communicator (whatever the reason: the
  /// other ranks may be waiting for this one's warm-up).
  basic_nccl_executor(comm_t comm, int rank, nccl_options const& o) : base(comm, rank, S::ranks, o) {
    this->construct(S::stages, [&] {
      this->setup(S::lowered, program::make(), buffer_plan<S>::slot_bytes(this->rank_, this->bytes_));
    });
  }

  /// One iteration of this rank, with `functor` (this rank's stage functor), ordered after
  /// the work on `origin` (null: the legacy default stream); returns when it is done.
  template <class Functor> void run(Functor& functor, stream_t origin = nullptr) {
    this->run_with([&] { issue_rank(functor); }, origin);
  }

  /// Records this rank's whole iteration with `functor` into a CUDA graph: its compute passes,
  /// and each send and receive on the communicator of its directed edge, with the program's
  /// events and groups — on the executor's capture stream, in thread-local mode, with no
  /// host synchronisation inside (nothing runs: the functor's kernels are recorded with the
  /// pointers they have now, so inputs must live in fixed buffers). The first capture makes
  /// the edge communicators (unless nccl_options::edge_communicators did) and warms each up.
  /// Collective: every rank captures, in the same order relative to its run() and replay()
  /// calls. Capturing again replaces the graph. On a failure it aborts every communicator of
  /// the rank, like run().
  template <class Functor> void capture(Functor& functor) {
    this->capture_with([&] { issue_rank(functor); });
  }

private:
  template <std::size_t K> static constexpr detail::unit_ops unit_ops_at = detail::ops_of_unit<program>(K);
  using pass_tracker = detail::pass_tracker;

  template <class Functor> void issue_rank(Functor& f) {
    pipesched::detail::with_rank<ranks>(this->rank_, [&](auto rc) {
      constexpr int R = decltype(rc)::value;
      // a missing member: one static_assert names it, and nothing is issued (no error follows)
      if constexpr (pipesched::detail::check_members<S, R, Functor>())
        issue_blocks<R>(f, std::make_index_sequence<(detail::rank_units<program, R>::count + block - 1) / block>{});
    });
  }

  static constexpr std::size_t block = 64;
  template <int R, class Functor, std::size_t... B> void issue_blocks(Functor& f, std::index_sequence<B...>) {
    (issue_block<R, B>(f), ...);
  }
  template <int R, std::size_t B, class Functor> __attribute__((noinline)) void issue_block(Functor& f) {
    using units = detail::rank_units<program, R>;
    constexpr std::size_t first = B * block;
    constexpr std::size_t count = first + block <= units::count ? block : units::count - first;
    [&]<std::size_t... K>(std::index_sequence<K...>) { (issue_unit<R, units::list[first + K]>(f), ...); }(
        std::make_index_sequence<count>{});
  }

  template <int R, std::size_t K, class Functor> void issue_unit(Functor& f) {
    constexpr std::uint64_t u = program::issue.units[K];
    constexpr bool compute = is_compute(S::lowered.at(detail::unit_rank(u), detail::unit_index(u)).kind);
    if constexpr (compute) this->end_open_group();
    [&]<std::size_t... J>(std::index_sequence<J...>) { (issue_op<R, K, J>(f), ...); }(
        std::make_index_sequence<unit_ops_at<K>.n>{});
  }

  template <int R, std::size_t K, std::size_t J, class Functor> void issue_op(Functor& f) {
    constexpr stream_op o = unit_ops_at<K>.op[J];
    if constexpr (o.rank != R) {
      return; // the peer's side of a transfer
    } else {
      static_assert(o.stream / 2u == static_cast<unsigned>(R), "rendezvous programs keep a rank on its own streams");
      if constexpr (o.kind == stream_op_kind::wait) {
        static_assert(o.peer_action / 2u == static_cast<unsigned>(R));
        this->op_wait(o);
      } else if constexpr (o.kind == stream_op_kind::record) {
        this->op_record(o);
      } else if constexpr (o.kind == stream_op_kind::exec) {
        constexpr std::size_t i = o.action;
        this->op_exec(action_record::of(step_of<S, R, i>{}),
                      [&](action_record& current, boundary_views const& views, stream_t stream) {
                        pass_tracker tracker{&current};
                        plan<S, R>::template run_step<i>(f, tracker, views, stream);
                      });
      } else if constexpr (o.kind == stream_op_kind::send) {
        constexpr std::size_t i = o.action;
        constexpr action sa = S::lowered.at(R, i);
        this->op_send(sa, boundary_key(S::lowered, sa, field::in), action_record::of(step_of<S, R, i>{}));
      } else if constexpr (o.kind == stream_op_kind::recv) {
        constexpr std::size_t i = o.action;
        constexpr action ra = S::lowered.at(R, i);
        constexpr int q = ra.peer;
        constexpr action sa = S::lowered.at(q, detail::unit_send_index(program::issue.units[K]));
        this->op_recv(ra, q, boundary_key(S::lowered, sa, field::in), action_record::of(step_of<S, R, i>{}));
      }
    }
  }
};

} // namespace pipesched::cuda
