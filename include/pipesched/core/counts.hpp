// pipesched: compile-time parameters as small types (ranks<P>, microbatches<M>, ...).
#pragma once

#include <type_traits>

namespace pipesched {

/// Number of pipeline ranks (devices), p. With v chunks per rank the model is cut into
/// S = p * v stages: a 4-stage model with 2 chunks per rank is ranks<2>, chunks<2>.
template <int P> struct ranks {
  using pipesched_param = ranks;
  static constexpr int value = P;
};
/// The former spelling of ranks<P>, kept so existing programs build: the same type
/// (gpipe<stages<4>, ...> and gpipe<ranks<4>, ...> are one schedule). It counts ranks, not
/// model stages; new code writes ranks<P>.
template <int P> using stages = ranks<P>;
/// Micro-batches per iteration, m.
template <int M> struct microbatches {
  using pipesched_param = microbatches;
  static constexpr int value = M;
};
/// Model chunks per rank ("virtual stages"), v. The global stage count is S = p * v.
template <int V> struct chunks {
  using pipesched_param = chunks;
  static constexpr int value = V;
};
/// Micro-batch group size of the interleaved schedule, g (0: the default, g = p).
template <int G> struct group_size {
  using pipesched_param = group_size;
  static constexpr int value = G;
};
/// Boundary slots per rank beyond the schedule's peak of live boundaries (double buffering:
/// a receive lands in a slot freed longer ago); see params::extra_slots.
template <int N> struct extra_slots {
  using pipesched_param = extra_slots;
  static constexpr int value = N;
};
/// Per-pass costs of one stage (one chunk when v > 1): forward F, input-gradient backward
/// B (the zero-bubble papers' B, PyTorch's I), weight-gradient backward W, link latency C.
/// A fused backward costs B + W. FB: an overlapped forward-backward pair (F with a fused B);
/// 0: F + B + W, no gain (cost_model::fb).
template <double F = 1.0, double B = 1.0, double W = 1.0, double C = 0.0, double FB = 0.0> struct costs {
  using pipesched_param = costs;
  static constexpr double f = F, b = B, w = W, c = C, fb = FB;
};
/// Peak activation memory allowed on every rank, in the reference unit (the activations
/// one micro-batch leaves on one rank's whole slice of the model).
template <double X> struct memory_budget {
  using pipesched_param = memory_budget;
  static constexpr double value = X;
};

namespace detail {
template <class T> inline constexpr bool dependent_false = false;
template <class T, template <int> class Tmpl> struct is_int_param : std::false_type {};
template <template <int> class Tmpl, int V> struct is_int_param<Tmpl<V>, Tmpl> : std::true_type {};
template <class T> struct is_costs : std::false_type {};
template <double F, double B, double W, double C, double FB>
struct is_costs<costs<F, B, W, C, FB>> : std::true_type {};
template <class T> struct is_memory_budget : std::false_type {};
template <double X> struct is_memory_budget<memory_budget<X>> : std::true_type {};
} // namespace detail

} // namespace pipesched
