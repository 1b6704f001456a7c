// pipesched: schedules as types — parameters, compile-time generation, lowering and checks.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "pipesched/pipeline/verify.hpp"
#include "pipesched/core/counts.hpp"
#include "pipesched/core/static_table.hpp"
#include "pipesched/core/table.hpp"
#include "pipesched/pipeline/lower.hpp"

namespace pipesched {

/// What a schedule family provides: a name, a parameter check and a constexpr generator of
/// the compute table (the same function serves compile time and run time).
template <class F>
concept schedule_family = requires(params const& pr) {
  { F::name } -> std::convertible_to<const char*>;
  { F::check(pr) } -> std::same_as<diagnostic>;
  { F::generate(pr) } -> std::same_as<table>;
};

/// A family whose generator is too heavy for one constant evaluation may split it in two:
/// `generate_own(pr)`, its own order, and `alternative(pr)`, another order timed against it,
/// with `prefer_alternative(own, alt, pr)` the choice; its `generate(pr)` must return
/// exactly `prefer_alternative(own, alt, pr) ? alt : own`. schedule<> then builds the two
/// in separate constant evaluations, each with the compiler's whole budget; run-time callers
/// of generate() get the same table.
template <class F>
concept split_generator = schedule_family<F> && requires(params const& pr, table const& t) {
  { F::generate_own(pr) } -> std::same_as<table>;
  { F::alternative(pr) } -> std::same_as<table>;
  { F::prefer_alternative(t, t, pr) } -> std::same_as<bool>;
};

namespace detail {

/// The family's first (or only) constant evaluation of its generator.
template <schedule_family Family> constexpr table generate_first(params const& pr) {
  if constexpr (split_generator<Family>) return Family::generate_own(pr);
  else return Family::generate(pr);
}

template <class T> constexpr void apply_param(params& pr) {
  if constexpr (is_int_param<T, ranks>::value) pr.p = T::value;
  else if constexpr (is_int_param<T, microbatches>::value) pr.m = T::value;
  else if constexpr (is_int_param<T, chunks>::value) {
    // params::v = 0 means "the family's default" at run time; as a type it would be a
    // number that silently means something else
    static_assert(T::value != 0, "pipesched: chunks<0> is not a chunk count: leave chunks<V> out for the "
                                 "family's default (2 for interleaved, looped-bfs, interleaved-zb and the V "
                                 "schedules, 1 otherwise), or give V >= 1");
    pr.v = T::value;
  } else if constexpr (is_int_param<T, group_size>::value) {
    static_assert(T::value != 0, "pipesched: group_size<0> is not a group size: leave group_size<G> out for the "
                                 "default (chosen by simulation: docs/01_schedules.md), or give 1 <= G <= M");
    pr.g = T::value;
  }
  else if constexpr (is_int_param<T, extra_slots>::value) pr.extra_slots = T::value;
  else if constexpr (is_costs<T>::value) pr.cost = cost_model{T::f, T::b, T::w, T::c, T::fb};
  else
    static_assert(dependent_false<T>, "pipesched: unknown schedule parameter; a schedule takes ranks<P>, "
                                      "microbatches<M> and optionally chunks<V>, group_size<G>, costs<F,B,W,C>, "
                                      "extra_slots<N>");
}

/// Which parameter a type sets (0: none), to catch one given twice.
template <class T> constexpr int param_kind() {
  if constexpr (is_int_param<T, ranks>::value) return 1;
  else if constexpr (is_int_param<T, microbatches>::value) return 2;
  else if constexpr (is_int_param<T, chunks>::value) return 3;
  else if constexpr (is_int_param<T, group_size>::value) return 4;
  else if constexpr (is_int_param<T, extra_slots>::value) return 5;
  else if constexpr (is_costs<T>::value) return 6;
  else return 0;
}

template <class... Ps> constexpr bool each_param_once() {
  int seen[7] = {};
  ((++seen[param_kind<Ps>()]), ...);
  for (int k = 1; k < 7; ++k)
    if (seen[k] > 1) return false;
  return true;
}

template <class... Ps> constexpr params parse_params() {
  static_assert(each_param_once<Ps...>(),
                "pipesched: a schedule parameter is given twice (ranks<P> and stages<P> are one parameter, "
                "stages<P> being its former name): give each of ranks, microbatches, chunks, group_size, "
                "extra_slots and costs at most once");
  params pr{};
  (apply_param<Ps>(pr), ...);
  return pr;
}

/// The lowered table of a family for given parameters (or a failed table).
template <schedule_family Family> constexpr table build(params const& pr) {
  if (auto d = Family::check(pr)) return failed(d);
  return lower(Family::generate(pr), sim_costs{pr.cost}, pr.extra_slots);
}

/// Sizes of a family's tables, from one run of its generator: compute actions, and the
/// lowered count (each output crossing to another rank adds a SEND and a RECV).
struct build_summary {
  diagnostic verdict{}; ///< the parameter check's or the generator's refusal
  std::size_t compute = 0;
  std::size_t total = 0;
  int ranks = 0;
  int microbatches = 0;
  int stages = 0;
  std::size_t routes = 0; ///< route_entries() of the table (0: no paths)
};

template <schedule_family Family> constexpr build_summary summarize(params const& pr) {
  build_summary s{};
  if (auto d = Family::check(pr)) {
    s.verdict = d;
    return s;
  }
  table t = generate_first<Family>(pr); // (a split generator's alternative has the same sizes)
  if (!t.ok()) {
    s.verdict = t.error;
    return s;
  }
  s.ranks = t.ranks;
  s.microbatches = t.microbatches;
  s.stages = t.stages;
  s.compute = t.total_actions();
  s.routes = route_entries(t);
  s.total = s.compute;
  if (t.lowered) return s;
  route_neighbours const route = neighbours_on_routes(t);
  for (int r = 0; r < t.ranks; ++r)
    for (action const& a : t.lists[static_cast<std::size_t>(r)]) {
      if (a.stage >= t.stages || a.mb >= t.microbatches) continue; // verify() reports it
      int peer = a.kind == op::forward ? route.after(a.mb, a.stage)
                                       : (makes_input_grad(a.kind) ? route.before(a.mb, a.stage) : -1);
      if (peer >= 0 && t.rank_of(peer) != r) s.total += 2;
    }
  return s;
}

template <schedule_family Family, std::size_t R, std::size_t S, std::size_t N, std::size_t L = 0>
constexpr static_table<R, S, N, L> freeze_generated(params const& pr, bool ok) {
  if (!ok) return static_table<R, S, N, L>{};
  table t = generate_first<Family>(pr);
  return freeze<R, S, N, L>(t);
}

/// A split generator's second constant evaluation: its alternative, and the choice between
/// it and the frozen first order (see split_generator); other families: the first order.
template <schedule_family Family, std::size_t R, std::size_t S, std::size_t N, std::size_t L>
constexpr static_table<R, S, N, L> with_alternative(static_table<R, S, N, L> const& first, params const& pr, bool ok) {
  if constexpr (split_generator<Family>) {
    if (ok) {
      table alt = Family::alternative(pr);
      if (alt.ok() && alt.total_actions() == N && route_entries(alt) == L) {
        table const own = thaw(first);
        if (Family::prefer_alternative(own, alt, pr)) return freeze<R, S, N, L>(alt);
      }
    }
  }
  return first;
}

/// Start, end and dependency order of every pass of a compute table (flat, in the
/// table's action order), frozen between two constant evaluations.
template <std::size_t N> struct static_timeline {
  diagnostic error{};
  double start[N > 0 ? N : 1] = {};
  double end[N > 0 ? N : 1] = {};
  int topo[N > 0 ? N : 1] = {};
};

template <std::size_t R, std::size_t S, std::size_t NC, std::size_t L>
constexpr static_timeline<NC> freeze_timeline(static_table<R, S, NC, L> const& compute, cost_model const& cost, bool ok) {
  static_timeline<NC> tl{};
  if (!ok || !compute.ok()) return tl;
  table t = thaw(compute);
  simulation sim = simulate_times(t, sim_costs{cost});
  tl.error = sim.error;
  if (!sim.ok()) return tl;
  for (std::size_t r = 0; r < R; ++r) {
    std::size_t const base = compute.offset[r];
    for (std::size_t i = 0; i < compute.size(r); ++i) {
      tl.start[base + i] = sim.times[r][i].start;
      tl.end[base + i] = sim.times[r][i].end;
    }
  }
  for (std::size_t k = 0; k < sim.order.size(); ++k) {
    std::size_t const g =
        compute.offset[static_cast<std::size_t>(sim.order[k].rank)] + static_cast<std::size_t>(sim.order[k].pos);
    tl.topo[g] = static_cast<int>(k);
    if (pair_in_order(t, sim.order, k)) tl.topo[g - 1] = static_cast<int>(k); // an overlapped pair: one point
  }
  return tl;
}

template <std::size_t R, std::size_t S, std::size_t N, std::size_t NC, std::size_t L>
constexpr static_table<R, S, N, L> freeze_transfers(static_table<R, S, NC, L> const& compute,
                                                    static_timeline<NC> const& timeline, bool ok) {
  static_table<R, S, N, L> st{};
  if (!ok) return st;
  if (!compute.ok() || !timeline.error.ok()) {
    st.error = compute.ok() ? timeline.error : compute.error;
    return st;
  }
  table t = thaw(compute);
  if (t.lowered) return freeze<R, S, N, L>(t); // a user's table with its own transfers
  auto timing = [&compute, &timeline](std::size_t r, std::size_t i) {
    std::size_t const g = compute.offset[r] + i;
    return std::pair<sweep_key, double>{sweep_key{timeline.start[g], timeline.topo[g], 0}, timeline.end[g]};
  };
  table out = insert_transfers(t, timing);
  return freeze<R, S, N, L>(out);
}

template <std::size_t R, std::size_t S, std::size_t N, std::size_t L>
constexpr static_table<R, S, N, L> freeze_slots(static_table<R, S, N, L> const& transfers, bool ok, int extra) {
  if (!ok || !transfers.ok()) return transfers;
  table t = thaw(transfers);
  assign_slots(t, extra);
  return freeze<R, S, N, L>(t);
}

template <std::size_t R, std::size_t S, std::size_t N, std::size_t L>
constexpr diagnostic verify_frozen_structure(static_table<R, S, N, L> const& st, bool ok) {
  if (!ok) return {};
  if (!st.ok()) return st.error;
  return verify_structure(thaw(st));
}

template <std::size_t R, std::size_t S, std::size_t N, std::size_t L>
constexpr diagnostic verify_frozen_flow(static_table<R, S, N, L> const& st, diagnostic const& structure, bool ok) {
  if (!ok || !st.ok() || !structure.ok()) return structure;
  return verify_flow(thaw(st));
}

/// One static_assert per error code, so the compiler prints the sentence for the one that
/// fired. E is ok when everything passed. The other parameters say where the check failed
/// (-1: not applicable); the compiler prints them in its "In instantiation of" line, e.g.
/// `[with errc E = errc::cyclic_wait; int Rank = 1; int Position = 0; int Stage = 1; int Microbatch = 1]`.
template <errc E, int Rank = -1, int Position = -1, int Stage = -1, int Microbatch = -1> constexpr bool report() {
  static_assert(E != errc::zero_ranks, "pipesched: ranks<P> must be at least 1: a pipeline needs one rank or more");
  static_assert(E != errc::zero_microbatches, "pipesched: microbatches<M> must be at least 1");
  static_assert(E != errc::zero_chunks, "pipesched: chunks<V> must be at least 1");
  static_assert(E != errc::needs_one_chunk, "pipesched: this schedule holds one chunk per rank: drop chunks<V> or "
                                            "use interleaved_1f1b for V > 1");
  static_assert(E != errc::needs_two_chunks,
                "pipesched: V-shape schedules hold exactly two chunks per rank: use chunks<2> or drop it");
  static_assert(E != errc::needs_even_split, "pipesched: dualpipe needs an even number of ranks (stages<P>) and of "
                                            "micro-batches (microbatches<M>): half of them enter from each end");
  static_assert(E != errc::group_size_out_of_range,
                "pipesched: group_size<G> must be between 1 and the number of micro-batches (0 picks min(p, m))");
  static_assert(E != errc::too_large,
                "pipesched: too many ranks, stages or micro-batches (at most 4096 ranks, 65535 stages/micro-batches)");
  static_assert(E != errc::negative_cost, "pipesched: costs<F,B,W,C> must be non-negative with F + B + W > 0");
  static_assert(E != errc::extra_slots_out_of_range, "pipesched: extra_slots<N> must be between 0 and 64");
  static_assert(E != errc::stage_out_of_range, "pipesched: the table names a stage outside 0..S-1");
  static_assert(E != errc::microbatch_out_of_range, "pipesched: the table names a micro-batch outside 0..m-1");
  static_assert(E != errc::wrong_rank, "pipesched: the table puts a pass on a rank that does not hold its stage");
  static_assert(E != errc::missing_pass,
                "pipesched: the table misses a pass: every stage needs one F and one B (or one I and one W) "
                "per micro-batch on its route (custom<Source> text whose micro-batches skip stages, as DualPipe's "
                "and skip paths' do, names its routes: static constexpr auto routes = "
                "pipesched::csv_routes::ascending; or the route text)");
  static_assert(E != errc::duplicate_pass, "pipesched: the table runs a (pass, stage, micro-batch) more than once");
  static_assert(E != errc::mixed_backward,
                "pipesched: a (stage, micro-batch) has both a fused B and a split I/W: use one or the other");
  static_assert(E != errc::backward_before_forward,
                "pipesched: a backward pass comes before its own forward on the same rank: move it later");
  static_assert(E != errc::weight_before_input, "pipesched: a W pass comes before its I pass: move it later");
  static_assert(E != errc::cyclic_wait, "pipesched: the ranks' orders wait on each other in a cycle: the schedule "
                                        "would hang; reorder the passes so each waits only on earlier work");
  static_assert(E != errc::bad_overlap, "pipesched: an overlapped pair must be a forward followed by a B or I of "
                                       "another stage or micro-batch, neither half needing the other's output");
  static_assert(E != errc::missing_recv, "pipesched: a pass reads a boundary that was not received before it");
  static_assert(E != errc::transfer_mismatch, "pipesched: a send and its peer's receive do not match");
  static_assert(E != errc::transfer_deadlock, "pipesched: blocking sends and receives wait on each other: the "
                                              "lowered schedule would hang");
  static_assert(E != errc::memory_bound_exceeded, "pipesched: a rank's peak activation memory exceeds the "
                                                  "schedule's bound");
  static_assert(E != errc::parse_error, "pipesched: the action text does not parse (cells look like 0F0, 3B1, 2I0, "
                                        "1W7: stage, pass, micro-batch), or its route text does not (one line per "
                                        "micro-batch: its stages, each at most once)");
  static_assert(E != errc::bad_path, "pipesched: a micro-batch path breaks a path rule");
  static_assert(E != errc::unknown_schedule, "pipesched: no schedule has that name");
  static_assert(E != errc::program_unordered_read,
                "pipesched: the CUDA stream program may read a boundary slot before its write is done");
  static_assert(E != errc::program_unordered_rewrite,
                "pipesched: the CUDA stream program may rewrite a boundary slot while its previous boundary is "
                "still read or sent");
  static_assert(E != errc::program_hang, "pipesched: the CUDA stream program's streams wait on each other in a "
                                         "cycle: it would hang");
  static_assert(E != errc::program_malformed, "pipesched: the CUDA stream program does not run each action of the "
                                              "table exactly once");
  return E == errc::ok;
}

} // namespace detail

/// A schedule as a type: Family's generator run by the compiler for the parameters Ps...
/// (ranks<P> -- formerly stages<P> --, microbatches<M>, chunks<V>, group_size<G>, costs<...>, in any order),
/// lowered and verified; a failure stops compilation with a message that says what to
/// change. `lowered` is the device-usable table a plan unrolls; `make()` gives the same
/// table at run time for analysis.
template <schedule_family Family, class... Ps> struct schedule {
  using family = Family;
  static constexpr const char* name = Family::name;
  static constexpr params parameters = detail::parse_params<Ps...>();
  // Each step below is its own constant evaluation, so each gets the compiler's whole
  // budget (g++: -fconstexpr-ops-limit, 2^25 by default).
  static constexpr detail::build_summary summary = detail::summarize<Family>(parameters);
  static constexpr bool parameters_ok = detail::report<summary.verdict.code, summary.verdict.rank,
                                                       summary.verdict.position, summary.verdict.stage,
                                                       summary.verdict.mb>();
  static constexpr int ranks = summary.ranks;
  static constexpr int microbatches = summary.microbatches;
  static constexpr int stages = summary.stages;
  static constexpr std::size_t rank_count = static_cast<std::size_t>(ranks > 0 ? ranks : 1);
  /// The generator's compute table (a split generator's in two steps: split_generator).
  static constexpr auto generated =
      detail::freeze_generated<Family, rank_count, static_cast<std::size_t>(stages), summary.compute, summary.routes>(
          parameters, parameters_ok);
  static constexpr auto compute = detail::with_alternative<Family>(generated, parameters, parameters_ok);
  /// When each pass runs under the family's cost model: the order transfers are placed in.
  /// The compute table's coverage, placement and same-rank order, checked before anything
  /// runs it (so a misplaced pass is reported as such, not as the wait it would cause).
  static constexpr diagnostic compute_structure = detail::verify_frozen_structure(compute, parameters_ok);
  static constexpr bool compute_ok = parameters_ok && compute_structure.ok();
  static constexpr auto timeline = detail::freeze_timeline(compute, parameters.cost, compute_ok);
  /// The compute table with SEND/RECV pairs inserted.
  static constexpr auto transfers =
      detail::freeze_transfers<rank_count, static_cast<std::size_t>(stages), summary.total>(compute, timeline,
                                                                                             compute_ok);
  /// The lowered table (transfers and buffer slots included): what a plan unrolls.
  static constexpr auto lowered = detail::freeze_slots(transfers, compute_ok, parameters.extra_slots);
  /// verify() of the lowered table: coverage, order, rendezvous transfers, memory bound.
  static constexpr diagnostic structure =
      compute_ok ? detail::verify_frozen_structure(lowered, true) : compute_structure;
  static constexpr diagnostic verdict = detail::verify_frozen_flow(lowered, structure, compute_ok);
  /// Whether every check passed. Naming it runs them; a failed check stops the build with
  /// its sentence. Plans, buffer plans and executors name it, so an invalid schedule never
  /// runs (detail::checked).
  static constexpr bool valid =
      parameters_ok && detail::report<verdict.code, verdict.rank, verdict.position, verdict.stage, verdict.mb>();
  /// The lowered table at run time, for analysis.
  static constexpr table make() { return detail::build<Family>(parameters); }
};

/// A type is a schedule when it carries a lowered table and its verdict. (Whether the
/// verdict is a pass is checked where the schedule is run: detail::checked.)
template <class S>
concept schedule_type = requires {
  S::lowered;
  S::parameters;
  { S::valid } -> std::convertible_to<bool>;
  { S::make() } -> std::same_as<table>;
};

namespace detail {
/// Always true, once S's checks have run: naming S::valid instantiates them, and a failed
/// check stops the build there with its own sentence (one message, no second one from here).
/// Every way of running a schedule — plan<S, R>, buffer_plan<S>, each executor —
/// `static_assert(detail::checked<S>)`, so a schedule that fails verification cannot run
/// even where nobody names S::valid.
template <class S> inline constexpr bool checked = S::valid || true;
} // namespace detail

} // namespace pipesched
