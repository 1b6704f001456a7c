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

// One check per member. The class name says which member is missing and its template
// arguments name the schedule, so the compiler's "In instantiation of" line reads e.g.
// `stage_functor_needs_backward_input<pipesched::schedule<zb_h1_family, ...>, my_block>`.
template <class S, class F, class Step> struct stage_functor_needs_forward {
  static constexpr bool value = has_forward<F, Step>;
  static_assert(value, "pipesched: the stage functor has no member `template <class Step> void forward(Step, "
                       "pipesched::io const&)`, which every schedule (named in the instantiation above) calls");
};
template <class S, class F, class Step> struct stage_functor_needs_backward {
  static constexpr bool value = has_backward<F, Step>;
  static_assert(value, "pipesched: the stage functor has no member `template <class Step> void backward(Step, "
                       "pipesched::io const&)`, the fused backward pass that this schedule (named in the "
                       "instantiation above) calls");
};
template <class S, class F, class Step> struct stage_functor_needs_backward_input {
  static constexpr bool value = has_backward_input<F, Step>;
  static_assert(value, "pipesched: the stage functor has no member `template <class Step> void backward_input(Step, "
                       "pipesched::io const&)`: this schedule (named in the instantiation above) splits the backward "
                       "pass into I (input gradient) and W (weight gradient)");
};
template <class S, class F, class Step> struct stage_functor_needs_backward_weight {
  static constexpr bool value = has_backward_weight<F, Step>;
  static_assert(value, "pipesched: the stage functor has no member `template <class Step> void backward_weight(Step, "
                       "pipesched::io const&)`: this schedule (named in the instantiation above) splits the backward "
                       "pass into I (input gradient) and W (weight gradient)");
};
template <class S, class T, class Step> struct transport_needs_send_recv {
  static constexpr bool value = transport_for<T, Step>;
  static_assert(value, "pipesched: the transport needs members `template <class Step> void send(Step, pipesched::io "
                       "const&)` and `recv(Step, pipesched::io const&)`: this schedule (named in the instantiation "
                       "above) moves boundaries between ranks");
};

/// Whether F (and T, when not void) provide every member that rank Rank of S calls
/// (Rank < 0: any rank). Fires the static_assert that names the first missing member.
template <class S, int Rank, class F, class T = void> constexpr bool check_members() {
  bool ok = true;
  if constexpr (uses<S, op::forward, Rank>())
    ok = ok && stage_functor_needs_forward<S, F, sample_step<S, op::forward, Rank>>::value;
  if constexpr (uses<S, op::backward, Rank>())
    ok = ok && stage_functor_needs_backward<S, F, sample_step<S, op::backward, Rank>>::value;
  if constexpr (uses<S, op::backward_input, Rank>())
    ok = ok && stage_functor_needs_backward_input<S, F, sample_step<S, op::backward_input, Rank>>::value;
  if constexpr (uses<S, op::backward_weight, Rank>())
    ok = ok && stage_functor_needs_backward_weight<S, F, sample_step<S, op::backward_weight, Rank>>::value;
  if constexpr (!std::is_void_v<T>) {
    if constexpr (uses<S, op::send_act, Rank>())
      ok = ok && transport_needs_send_recv<S, T, sample_step<S, op::send_act, Rank>>::value;
    if constexpr (uses<S, op::recv_act, Rank>())
      ok = ok && transport_needs_send_recv<S, T, sample_step<S, op::recv_act, Rank>>::value;
    if constexpr (uses<S, op::send_grad, Rank>())
      ok = ok && transport_needs_send_recv<S, T, sample_step<S, op::send_grad, Rank>>::value;
    if constexpr (uses<S, op::recv_grad, Rank>())
      ok = ok && transport_needs_send_recv<S, T, sample_step<S, op::recv_grad, Rank>>::value;
  }
  return ok;
}

/// check_members as a constant (usable in device code, where host constexpr functions are not).
template <class S, int Rank, class F, class T> inline constexpr bool members_ok = check_members<S, Rank, F, T>();

template <class S, class F, op K, int Rank = -1> constexpr bool member_ok() {
  if constexpr (!uses<S, K, Rank>()) return true;
  else if constexpr (K == op::forward) return has_forward<F, sample_step<S, K, Rank>>;
  else if constexpr (K == op::backward) return has_backward<F, sample_step<S, K, Rank>>;
  else if constexpr (K == op::backward_input) return has_backward_input<F, sample_step<S, K, Rank>>;
  else return has_backward_weight<F, sample_step<S, K, Rank>>;
}

} // namespace detail

/// F is a stage functor for schedule S: it has every member S calls — `forward`; `backward`
/// when S fuses the backward; `backward_input` and `backward_weight` when S splits it.
template <class F, class S>
concept stage_functor_for = schedule_type<S> &&
    detail::member_ok<S, F, op::forward>() && detail::member_ok<S, F, op::backward>() &&
    detail::member_ok<S, F, op::backward_input>() && detail::member_ok<S, F, op::backward_weight>();

} // namespace pipesched
