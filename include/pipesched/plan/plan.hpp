// pipesched: plan<Schedule, Rank> — a rank's lowered list as straight-line calls.
#pragma once

#include <cstddef>
#include <utility>

#include "pipesched/core/action.hpp"
#include "pipesched/core/config.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/stage_functor.hpp"
#include "pipesched/plan/step.hpp"

#if defined(__CUDACC__)
#define PIPESCHED_PLAN_INLINE __forceinline__
// A plan is __host__ __device__ and calls whatever the user's functors are (__host__ or
// __device__ only): let nvcc check each instantiation where it is used, not both sides.
#define PIPESCHED_EXEC_CHECK_DISABLE _Pragma("nv_exec_check_disable")
#else
#define PIPESCHED_PLAN_INLINE PIPESCHED_FORCEINLINE
#define PIPESCHED_EXEC_CHECK_DISABLE
#endif

// Host compilers build a plan as straight-line blocks of this many actions, each one
// function, called in sequence: one direct call per block keeps the optimiser's cost
// linear in the list length (half the compile time at p = 8, m = 64, v = 2; see
// docs/PERFORMANCE.md). 0 makes the whole list one function. nvcc always inlines it all,
// so a kernel's plan has no call of its own.
#ifndef PIPESCHED_PLAN_BLOCK
#define PIPESCHED_PLAN_BLOCK 64
#endif

namespace pipesched {

namespace detail {
/// The view of field Slot (a slot index, -1: none) holding boundary Key, from a plain slot
/// array: each boundary is given its slot's whole size.
template <int Slot, int Key> PIPESCHED_PLAN_INLINE PIPESCHED_HD view view_of(view const* slots) {
  if constexpr (Slot < 0) return view{};
  else return slots[Slot];
}
/// The same from boundary_views: the slot's address and the boundary's own size.
template <int Slot, int Key> PIPESCHED_PLAN_INLINE PIPESCHED_HD view view_of(boundary_views const& b) {
  if constexpr (Slot < 0 || Key < 0) return view{};
  else return view{b.slots[Slot].data, b.bytes[Key]};
}
} // namespace detail

/// The execution plan of rank Rank of schedule S: its lowered list unrolled at compile time
/// into one call per action — no loop, no switch, no indirect call. Each compute action calls
/// the stage functor's member for its pass with a compile-time `step` type and the run-time
/// views of the boundary slots it names; each transfer calls the transport. Sizes,
/// pointers and the stream are run-time values.
///
/// A backend is an executor (which runs `plan<S, r>::run` for each rank r on a thread, a
/// process or a stream) plus a transport (in-process channels, MPI, CUDA copies or NCCL).
/// A transport that has `template <class Step> void on_action(Step)` is told of every action
/// before it runs (executors use it to name the action a failure happened in).
template <schedule_type S, int Rank> struct plan {
  static_assert(detail::checked<S>); // a schedule that fails verification stops the build here
  static_assert(!S::valid || (Rank >= 0 && Rank < S::ranks), "pipesched: plan<Schedule, Rank>: Rank must be in 0..P-1");

  using schedule = S;
  static constexpr int rank = Rank;
  /// Number of actions (compute passes and transfers) in the rank's list (none when the
  /// schedule failed its checks: the build has stopped with their message).
  static constexpr std::size_t size = S::valid ? S::lowered.size(Rank) : 0;
  /// Boundary buffer slots the rank needs: the peak number of boundaries alive at once.
  static constexpr int slots = S::valid ? S::lowered.slot_count[Rank] : 0;
  /// Step type of the rank's I-th action.
  template <std::size_t I> using step_at = step_of<S, Rank, I>;
  /// Which boundary (boundary_key) field `in`, `out` or `aux` of the rank's I-th action holds.
  template <std::size_t I, field F> static constexpr int key_at = boundary_key(S::lowered, action_of<S, Rank, I>, F);

  /// Runs the rank's list once. `functor` has the members the schedule calls (see
  /// stage_functor_for); `transport` has send/recv (transport_for); `views` is either
  /// `view const*` pointing at `slots` views of the rank's boundary buffers (each boundary
  /// then gets its slot's whole size; may be null when slots == 0) or a `boundary_views`
  /// (each boundary gets its own size: what executors pass).
  PIPESCHED_EXEC_CHECK_DISABLE
  template <class Functor, class Transport, class Views>
  PIPESCHED_PLAN_INLINE PIPESCHED_HD static void run(Functor& functor, Transport& transport, Views const& views,
                                                     stream_handle stream = nullptr) {
    if constexpr (S::valid) {
      // A missing member fires one static_assert that names it; the calls are then skipped
      // so that no other error follows.
      if constexpr (detail::members_ok<S, Rank, Functor, Transport>) {
#if !defined(__CUDACC__) && PIPESCHED_PLAN_BLOCK > 0
        run_blocks(functor, transport, views, stream, std::make_index_sequence<(size + block - 1) / block>{});
#else
        run_range<0>(functor, transport, views, stream, std::make_index_sequence<size>{});
#endif
      }
    }
  }

  /// Runs a single action, for executors that interleave their own work between actions.
  PIPESCHED_EXEC_CHECK_DISABLE
  template <std::size_t I, class Functor, class Transport, class Views>
  PIPESCHED_PLAN_INLINE PIPESCHED_HD static void run_one(Functor& functor, Transport& transport, Views const& views,
                                                         stream_handle stream = nullptr) {
    using st = step_at<I>;
    io const x{detail::view_of<st::in, key_at<I, field::in>>(views),
               detail::view_of<st::out, key_at<I, field::out>>(views),
               detail::view_of<st::aux, key_at<I, field::aux>>(views), stream, Rank};
    if constexpr (requires { transport.on_action(st{}); }) transport.on_action(st{});
    if constexpr (st::kind == op::forward) functor.forward(st{}, x);
    else if constexpr (st::kind == op::backward) functor.backward(st{}, x);
    else if constexpr (st::kind == op::backward_input) functor.backward_input(st{}, x);
    else if constexpr (st::kind == op::backward_weight) functor.backward_weight(st{}, x);
    else if constexpr (is_send(st::kind)) transport.send(st{}, x);
    else transport.recv(st{}, x);
  }

  /// Whether the rank's I-th action opens an overlapped pair with action I + 1.
  template <std::size_t I> static constexpr bool pair_at = I + 1 < size && overlaps_next(action_of<S, Rank, I>);
  /// Whether `Functor` runs the pair that action I opens with its forward_backward member.
  template <std::size_t I, class Functor> static constexpr bool fused_pair_at() {
    if constexpr (pair_at<I>) return has_forward_backward<Functor, step_at<I>, step_at<I + 1>>;
    else return false;
  }

  /// Runs action I as plan::run does: like run_one, except that an overlapped pair runs as
  /// one call of the functor's forward_backward when it has one (at the pair's forward; its
  /// backward's position then does nothing but tell the transport). Executors that give each
  /// action its own place in a stream program call run_one, which runs the halves apart.
  PIPESCHED_EXEC_CHECK_DISABLE
  template <std::size_t I, class Functor, class Transport, class Views>
  PIPESCHED_PLAN_INLINE PIPESCHED_HD static void run_step(Functor& functor, Transport& transport, Views const& views,
                                                          stream_handle stream = nullptr) {
    if constexpr (fused_pair_at<I, Functor>()) {
      using sf = step_at<I>;
      using sb = step_at<I + 1>;
      io const xf{detail::view_of<sf::in, key_at<I, field::in>>(views),
                  detail::view_of<sf::out, key_at<I, field::out>>(views),
                  detail::view_of<sf::aux, key_at<I, field::aux>>(views), stream, Rank};
      io const xb{detail::view_of<sb::in, key_at<I + 1, field::in>>(views),
                  detail::view_of<sb::out, key_at<I + 1, field::out>>(views),
                  detail::view_of<sb::aux, key_at<I + 1, field::aux>>(views), stream, Rank};
      if constexpr (requires { transport.on_action(sf{}); }) transport.on_action(sf{});
      functor.forward_backward(sf{}, sb{}, xf, xb);
    } else if constexpr (I > 0 && fused_pair_at<(I > 0 ? I - 1 : 0), Functor>()) {
      // the backward half of a pair that forward_backward ran
    } else {
      run_one<I>(functor, transport, views, stream);
    }
  }

private:
  /// Actions Base + I..., in order (none on a rank whose stages no micro-batch visits).
  PIPESCHED_EXEC_CHECK_DISABLE
  template <std::size_t Base, class Functor, class Transport, class Views, std::size_t... I>
  PIPESCHED_PLAN_INLINE PIPESCHED_HD static void
  run_range(Functor& functor, Transport& transport, [[maybe_unused]] Views const& v,
            [[maybe_unused]] stream_handle stream, std::index_sequence<I...>) {
    (run_step<Base + I>(functor, transport, v, stream), ...);
  }

#if !defined(__CUDACC__) && PIPESCHED_PLAN_BLOCK > 0
  static constexpr std::size_t block = PIPESCHED_PLAN_BLOCK;
  template <std::size_t K> static constexpr std::size_t block_size = (K + 1) * block <= size ? block : size - K* block;

  template <std::size_t K, class Functor, class Transport, class Views>
  __attribute__((noinline)) static void run_block(Functor& functor, Transport& transport, Views const& v,
                                                  stream_handle stream) {
    run_range<K * block>(functor, transport, v, stream, std::make_index_sequence<block_size<K>>{});
  }

  template <class Functor, class Transport, class Views, std::size_t... K>
  PIPESCHED_PLAN_INLINE static void run_blocks(Functor& functor, Transport& transport, [[maybe_unused]] Views const& v,
                                               [[maybe_unused]] stream_handle stream, std::index_sequence<K...>) {
    (run_block<K>(functor, transport, v, stream), ...);
  }
#endif
};

/// A transport for ranks with nothing to move (p = 1); any transfer is a compile error.
struct no_transport {
  template <class Step> PIPESCHED_HD void send(Step, io const&) {
    static_assert(Step::peer < 0, "pipesched: no_transport cannot send: this rank has transfers");
  }
  template <class Step> PIPESCHED_HD void recv(Step, io const&) {
    static_assert(Step::peer < 0, "pipesched: no_transport cannot receive: this rank has transfers");
  }
};

} // namespace pipesched
