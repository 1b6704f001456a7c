// pipesched: the CUDA streams executor — a schedule's verified stream program issued by one
// host thread onto per-rank compute and communication streams, on one GPU (all ranks) or
// several GPUs of one process (one rank per GPU, peer copies); whole iterations as graphs.
//
// Written against a runtime policy (`Runtime`: streams, events, copies, graphs) and
// including no CUDA header: `cuda::executor<S>` (executor.cuh) binds it to the CUDA runtime;
// tests bind it to a host emulation of CUDA's stream semantics that runs every schedule on
// the CPU, with the streams' work interleaved at random.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/cuda/stream_resources.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/plan/action_record.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/functors.hpp"
#include "pipesched/plan/plan.hpp"
#include "pipesched/plan/stage_functor.hpp"

namespace pipesched::cuda {

namespace detail {

/// The ops of one unit of a schedule's issue order, at compile time (at most 8: 3 waits, an
/// exec or a copy, 3 records; a rendezvous pair has 2 ops; a half of an overlapped pair 7:
/// both halves' waits and its exec, or its exec and both halves' records).
struct unit_ops {
  stream_op op[10] = {};
  std::size_t n = 0;
};

template <class Program> constexpr unit_ops ops_of_unit(std::size_t k) {
  using S = typename Program::schedule;
  unit_ops u{};
  lowered_view const t = view_of(S::lowered);
  auto flags = [](std::size_t r, std::size_t i) { return Program::issue.flags[S::lowered.offset[r] + i]; };
  expand_unit(t, Program::mode, Program::issue.event_base, flags, Program::issue.units[k],
              [&](stream_op const& o) { u.op[u.n++] = o; });
  return u;
}

/// A transport for the compute passes a stream program runs through a plan: records the
/// action in progress (transfers are the executor's own copies, never the plan's).
struct pass_tracker {
  action_record* current;
  template <class Step> void on_action(Step s) { *current = action_record::of(s); }
  template <class Step> void send(Step, io const&) {}
  template <class Step> void recv(Step, io const&) {}
};

} // namespace detail

/// Runs schedule S with CUDA streams from one host thread (`cuda::executor<S>`, executor.cuh). Each rank has a compute stream,
/// on which its stage functor's passes launch their kernels (`io::stream`), and a
/// communication stream, on which the boundaries it receives are copied into its slots
/// (device-to-device on one GPU, `cudaMemcpyPeerAsync` between GPUs). What is issued, and in
/// which order, is `stream_program_of<S>` — derived and checked by the compiler (every read
/// of a boundary slot after its write, every rewrite after the last read and the copy of the
/// old boundary, no wait on an event not yet recorded, each rank's passes in list order).
/// No device-wide synchronisation inside an iteration; no allocation either: slots (device
/// memory, one block per rank, each slot sized for the largest boundary it holds), streams
/// and events are made by the constructor.
///
/// `run(functors, origin)` issues one iteration after the work on `origin` (the legacy
/// default stream when null) and orders `origin` after it; `capture(functors)` records one
/// iteration into a CUDA graph that `replay(stream)` launches (one launch per iteration; the
/// functors' kernels, with the pointers they had at capture). A CUDA error raises
/// cuda::error naming rank, action and CUDA's error string. A functor that throws stops the
/// issue: the executor lets the streams drain (waits never block on records not issued)
/// and rethrows; it can run again. Calls are serialised; use it from one thread at a time
/// per device context.
template <schedule_type S, class Runtime> class basic_executor : public detail::stream_resources<Runtime> {
  static_assert(pipesched::detail::checked<S>); // a schedule that fails verification stops the build here
  using base = detail::stream_resources<Runtime>;

public:
  using stream_t = typename Runtime::stream_t;
  using schedule = S;
  using program = stream_program_of<S, transfer_mode::copy>;
  static_assert(program::valid); // the stream program's check, with its sentence when it fails
  static constexpr int ranks = S::ranks;
  static constexpr std::size_t units = program::units;

  explicit basic_executor(options const& o) : base(o, ranks, S::stages) {
    std::vector<std::vector<std::size_t>> sizes(static_cast<std::size_t>(ranks));
    for (int r = 0; r < ranks; ++r) sizes[static_cast<std::size_t>(r)] = buffer_plan<S>::slot_bytes(r, this->bytes_);
    this->setup(program::make(), sizes);
  }

  /// One iteration, ordered after the work on `origin` (null: the legacy default stream).
  template <class Functors> void run(Functors& functors, stream_t origin = nullptr) {
    pipesched::detail::check_functor_count<ranks>(functors);
    if constexpr (members_ok<Functors>()) // else one static_assert names the missing member, and nothing follows
      this->run_iteration([&] { issue_blocks(functors, std::make_index_sequence<(units + block - 1) / block>{}); },
                          origin);
  }

  /// Records one iteration into a graph (on the executor's own capture stream); replay()
  /// runs it. Capturing again replaces the graph.
  template <class Functors> void capture(Functors& functors) {
    pipesched::detail::check_functor_count<ranks>(functors);
    if constexpr (members_ok<Functors>())
      this->capture_iteration(
          [&] { issue_blocks(functors, std::make_index_sequence<(units + block - 1) / block>{}); });
  }

private:
  template <std::size_t K> static constexpr detail::unit_ops unit_ops_at = detail::ops_of_unit<program>(K);

  /// Whether every rank's functor has the members its passes call; when not, one
  /// static_assert names the first missing one (check_members reports once per member).
  template <class Functors> static constexpr bool members_ok() {
    return []<int... R>(std::integer_sequence<int, R...>) {
      return (pipesched::detail::check_members<
                  S, R, std::remove_cvref_t<decltype(pipesched::detail::functor_of<R>(std::declval<Functors&>()))>>() &&
              ...);
    }(std::make_integer_sequence<int, ranks>{});
  }

  // Units are issued in blocks of 64, one function each (as plans are): the compiler's cost
  // stays linear in the program's length.
  static constexpr std::size_t block = 64;
  template <class Functors, std::size_t... B> void issue_blocks(Functors& fs, std::index_sequence<B...>) {
    (issue_block<B>(fs), ...);
  }
  template <std::size_t B, class Functors> __attribute__((noinline)) void issue_block(Functors& fs) {
    constexpr std::size_t first = B * block;
    constexpr std::size_t count = first + block <= units ? block : units - first;
    [&]<std::size_t... K>(std::index_sequence<K...>) { (issue_unit<first + K>(fs), ...); }(
        std::make_index_sequence<count>{});
  }
  template <std::size_t K, class Functors> void issue_unit(Functors& fs) {
    [&]<std::size_t... J>(std::index_sequence<J...>) { (issue_op<K, J>(fs), ...); }(
        std::make_index_sequence<unit_ops_at<K>.n>{});
  }

  template <std::size_t K, std::size_t J, class Functors> void issue_op(Functors& fs) {
    constexpr stream_op o = unit_ops_at<K>.op[J];
    if constexpr (o.kind == stream_op_kind::wait) {
      this->issue_wait(o);
    } else if constexpr (o.kind == stream_op_kind::record) {
      this->issue_record(o);
    } else if constexpr (o.kind == stream_op_kind::exec) {
      constexpr int r = o.rank;
      constexpr std::size_t i = o.action;
      this->issue_exec(r, action_record::of(step_of<S, r, i>{}), [&](action_record& current, boundary_views const& views,
                                                                      stream_t stream) {
        detail::pass_tracker tracker{&current};
        plan<S, r>::template run_step<i>(pipesched::detail::functor_of<r>(fs), tracker, views, stream);
      });
    } else if constexpr (o.kind == stream_op_kind::copy) {
      constexpr int r = o.rank; // the receiver
      constexpr std::size_t i = o.action;
      constexpr action ra = S::lowered.at(r, i);
      constexpr int q = ra.peer;
      constexpr action sa = S::lowered.at(q, o.peer_action);
      constexpr int key = boundary_key(S::lowered, sa, field::in);
      this->issue_copy(r, ra.out, q, sa.in, this->bytes_[static_cast<std::size_t>(key)],
                       action_record::of(step_of<S, r, i>{}));
    }
  }
};

} // namespace pipesched::cuda
