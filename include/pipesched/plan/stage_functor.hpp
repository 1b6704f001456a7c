// pipesched: what a stage functor and a transport must provide for a schedule.
#pragma once

#include <cstddef>
#include <type_traits>

#include "pipesched/core/action.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/plan/step.hpp"

namespace pipesched {

/// F has `forward(Step, io const&)` for the step type Step (one member template covers all).
template <class F, class Step>
concept has_forward = requires(F& f, io const& x) {
  f.forward(Step{}, x);
};
/// F has the fused backward `backward(Step, io const&)`.
template <class F, class Step>
concept has_backward = requires(F& f, io const& x) {
  f.backward(Step{}, x);
};
/// F has the input-gradient backward `backward_input(Step, io const&)` (I).
template <class F, class Step>
concept has_backward_input = requires(F& f, io const& x) {
  f.backward_input(Step{}, x);
};
/// F has the weight-gradient backward `backward_weight(Step, io const&)` (W).
template <class F, class Step>
concept has_backward_weight = requires(F& f, io const& x) {
  f.backward_weight(Step{}, x);
};

/// A transport moves one boundary: `send(Step, io const&)` sends io.in to Step::peer for a
/// SEND step, `recv(Step, io const&)` fills io.out from Step::peer for a RECV step.
template <class T, class Step>
concept transport_for = (is_send(Step::kind) && requires(T& t, io const& x) { t.send(Step{}, x); }) ||
                        (is_recv(Step::kind) && requires(T& t, io const& x) { t.recv(Step{}, x); });

namespace detail {

/// Position of the first action of kind k on rank `rank` (every rank when rank < 0), or -1.
template <class S> constexpr int first_of(op k, int rank) {
  for (int r = 0; r < S::lowered.ranks; ++r) {
    if (rank >= 0 && r != rank) continue;
    for (std::size_t i = 0; i < S::lowered.size(static_cast<std::size_t>(r)); ++i)
      if (S::lowered.at(static_cast<std::size_t>(r), i).kind == k) return static_cast<int>(r * 65536 + i);
  }
  return -1;
}

/// A step of kind k from S (the first one on `rank`, or on any rank when rank < 0), used to
/// check a functor's members; a forward step when the table has none of that kind.
template <class S, op K, int Rank, int Where = first_of<S>(K, Rank)>
using sample_step =
    step_of<S, (Where < 0 ? 0 : Where / 65536), static_cast<std::size_t>(Where < 0 ? 0 : Where % 65536)>;

template <class S, op K, int Rank> constexpr bool uses() { return first_of<S>(K, Rank) >= 0; }

/// What is wrong with a member a schedule calls.
enum class member_problem {
  missing,      ///< no callable member of that name for the step
  mutable_io,   ///< declared with `io&`: the plan passes `io const&`
  runtime_step, ///< takes a runtime_step: a compiled plan passes a compile-time step type
};

/// How F's member for pass kind K fails for step Step (K a compute kind).
template <class F, op K, class Step> constexpr member_problem diagnose_member() {
  if constexpr (K == op::forward) {
    if constexpr (requires(F& f, io& x) { f.forward(Step{}, x); }) return member_problem::mutable_io;
    else if constexpr (requires(F& f, io const& x) { f.forward(runtime_step{}, x); })
      return member_problem::runtime_step;
  } else if constexpr (K == op::backward) {
    if constexpr (requires(F& f, io& x) { f.backward(Step{}, x); }) return member_problem::mutable_io;
    else if constexpr (requires(F& f, io const& x) { f.backward(runtime_step{}, x); })
      return member_problem::runtime_step;
  } else if constexpr (K == op::backward_input) {
    if constexpr (requires(F& f, io& x) { f.backward_input(Step{}, x); }) return member_problem::mutable_io;
    else if constexpr (requires(F& f, io const& x) { f.backward_input(runtime_step{}, x); })
      return member_problem::runtime_step;
  } else {
    if constexpr (requires(F& f, io& x) { f.backward_weight(Step{}, x); }) return member_problem::mutable_io;
    else if constexpr (requires(F& f, io const& x) { f.backward_weight(runtime_step{}, x); })
      return member_problem::runtime_step;
  }
  return member_problem::missing;
}

// The one report of a functor's first unusable member. Its template arguments name the
// schedule, the functor, the pass and the problem, so the compiler's "In instantiation of"
// line reads e.g. `stage_functor_member_error<pipesched::schedule<zb_h1_family, ...>, my_block,
// op::backward_input, member_problem::missing>`; exactly one static_assert below fires.
template <class S, class F, op K, member_problem P> struct stage_functor_member_error {
  static constexpr bool value = false;
  static_assert(!(K == op::forward && P == member_problem::missing),
                "pipesched: the stage functor has no member `template <class Step> void forward(Step, "
                "pipesched::io const&)`, which every schedule (named in the instantiation above) calls");
  static_assert(!(K == op::backward && P == member_problem::missing),
                "pipesched: the stage functor has no member `template <class Step> void backward(Step, "
                "pipesched::io const&)`, the fused backward pass that this schedule (named in the "
                "instantiation above) calls");
  static_assert(!(K == op::backward_input && P == member_problem::missing),
                "pipesched: the stage functor has no member `template <class Step> void backward_input(Step, "
                "pipesched::io const&)`: this schedule (named in the instantiation above) splits the backward "
                "pass into I (input gradient) and W (weight gradient)");
  static_assert(!(K == op::backward_weight && P == member_problem::missing),
                "pipesched: the stage functor has no member `template <class Step> void backward_weight(Step, "
                "pipesched::io const&)`: this schedule (named in the instantiation above) splits the backward "
                "pass into I (input gradient) and W (weight gradient)");
  static_assert(P != member_problem::mutable_io,
                "pipesched: the stage functor's member (the pass named in the instantiation above) takes "
                "`pipesched::io&`; the plan passes `pipesched::io const&`: declare it `(Step, pipesched::io "
                "const&)` (the views are const, the memory they point to is yours to write)");
  static_assert(P != member_problem::runtime_step,
                "pipesched: the stage functor's member (the pass named in the instantiation above) takes a "
                "`pipesched::runtime_step`, but a compiled plan passes a compile-time step type: make it "
                "`template <class Step> void NAME(Step step, pipesched::io const&)` and hand "
                "`pipesched::runtime_of(step)` to your run-time code, or run the schedule with a runtime "
                "executor (docs/06)");
};
template <class S, class T, class Step> struct transport_needs_send_recv {
  static constexpr bool value = transport_for<T, Step>;
  static_assert(value, "pipesched: the transport needs members `template <class Step> void send(Step, pipesched::io "
                       "const&)` and `recv(Step, pipesched::io const&)`: this schedule (named in the instantiation "
                       "above) moves boundaries between ranks");
};

template <class F, op K, class Step> constexpr bool has_member() {
  if constexpr (K == op::forward) return has_forward<F, Step>;
  else if constexpr (K == op::backward) return has_backward<F, Step>;
  else if constexpr (K == op::backward_input) return has_backward_input<F, Step>;
  else return has_backward_weight<F, Step>;
}

/// Whether rank Rank of S (Rank < 0: any rank) finds F's member for pass kind K usable.
template <class S, class F, op K, int Rank> constexpr bool member_usable() {
  if constexpr (!uses<S, K, Rank>()) return true;
  else return has_member<F, K, sample_step<S, K, Rank>>();
}

/// Fires the one report for F's member for K: checked with the schedule's first step of that
/// kind, which is the same class whichever rank asks, so the compiler reports it once.
template <class S, class F, op K, int Rank> constexpr bool report_member() {
  using global = sample_step<S, K, -1>;
  if constexpr (!has_member<F, K, global>())
    return stage_functor_member_error<S, F, K, diagnose_member<F, K, global>()>::value;
  else // usable for the first step, not for this rank's: report with this rank's step
    return stage_functor_member_error<S, F, K, diagnose_member<F, K, sample_step<S, K, Rank>>()>::value;
}

template <class S, class T, op K, int Rank> constexpr bool transport_usable() {
  if constexpr (!uses<S, K, Rank>()) return true;
  else return transport_for<T, sample_step<S, K, -1>>;
}

/// The transport's first unusable member, reported once (see report_member).
template <class S, class T, int Rank> constexpr bool report_transport() {
  if constexpr (!transport_usable<S, T, op::send_act, Rank>())
    return transport_needs_send_recv<S, T, sample_step<S, op::send_act, -1>>::value;
  else if constexpr (!transport_usable<S, T, op::recv_act, Rank>())
    return transport_needs_send_recv<S, T, sample_step<S, op::recv_act, -1>>::value;
  else if constexpr (!transport_usable<S, T, op::send_grad, Rank>())
    return transport_needs_send_recv<S, T, sample_step<S, op::send_grad, -1>>::value;
  else if constexpr (!transport_usable<S, T, op::recv_grad, Rank>())
    return transport_needs_send_recv<S, T, sample_step<S, op::recv_grad, -1>>::value;
  else return true;
}

/// Whether F (and T, when not void) provide every member that rank Rank of S calls
/// (Rank < 0: any rank). When not, fires one static_assert, for the first unusable member
/// (forward, backward, backward_input, backward_weight, then the transport), whichever rank
/// asks: a functor that lacks two members on four ranks gets one message, not eight.
template <class S, int Rank, class F, class T = void> constexpr bool check_members() {
  if constexpr (!member_usable<S, F, op::forward, Rank>()) return report_member<S, F, op::forward, Rank>();
  else if constexpr (!member_usable<S, F, op::backward, Rank>()) return report_member<S, F, op::backward, Rank>();
  else if constexpr (!member_usable<S, F, op::backward_input, Rank>())
    return report_member<S, F, op::backward_input, Rank>();
  else if constexpr (!member_usable<S, F, op::backward_weight, Rank>())
    return report_member<S, F, op::backward_weight, Rank>();
  else if constexpr (std::is_void_v<T>) return true;
  else return report_transport<S, T, Rank>();
}

/// check_members as a constant (usable in device code, where host constexpr functions are not).
template <class S, int Rank, class F, class T> inline constexpr bool members_ok = check_members<S, Rank, F, T>();

template <class S, class F, op K, int Rank = -1> constexpr bool member_ok() {
  return member_usable<S, F, K, Rank>();
}

} // namespace detail

/// F is a stage functor for schedule S: it has every member S calls — `forward`; `backward`
/// when S fuses the backward; `backward_input` and `backward_weight` when S splits it.
template <class F, class S>
concept stage_functor_for = schedule_type<S> &&
    detail::member_ok<S, F, op::forward>() && detail::member_ok<S, F, op::backward>() &&
    detail::member_ok<S, F, op::backward_input>() && detail::member_ok<S, F, op::backward_weight>();

} // namespace pipesched
