// pipesched: choosing a schedule inside the compiler.
#pragma once

#include <cstddef>
#include <tuple>
#include <utility>

#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/core/counts.hpp"
#include "pipesched/schedules/dualpipe_v.hpp"
#include "pipesched/schedules/gpipe.hpp"
#include "pipesched/schedules/interleaved.hpp"
#include "pipesched/schedules/interleaved_zb.hpp"
#include "pipesched/schedules/looped_bfs.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/v_shape.hpp"
#include "pipesched/schedules/zb_v.hpp"
#include "pipesched/schedules/zero_bubble.hpp"

namespace pipesched {

namespace detail {

struct candidate {
  const char* name;
  diagnostic (*check)(params const&);
  table (*generate)(params const&);
  int chunks; ///< 0: the family's own (1); costs are shared out over this many chunks
};

/// What select_schedule and `pipesched compare` consider, in this order (on a tie in makespan
/// and memory the earlier one wins: see choose_candidate).
inline constexpr candidate selection_candidates[] = {
    {one_f_one_b_family::name, &one_f_one_b_family::check, &one_f_one_b_family::generate, 1},
    {zb_h1_family::name, &zb_h1_family::check, &zb_h1_family::generate, 1},
    {zb_h2_family::name, &zb_h2_family::check, &zb_h2_family::generate, 1},
    {interleaved_1f1b_family::name, &interleaved_1f1b_family::check, &interleaved_1f1b_family::generate, 2},
    {interleaved_1f1b_family::name, &interleaved_1f1b_family::check, &interleaved_1f1b_family::generate, 4},
    {zb_v_family::name, &zb_v_family::check, &zb_v_family::generate, 2},
    {v_half_family::name, &v_half_family::check, &v_half_family::generate, 2},
    {v_min_family::name, &v_min_family::check, &v_min_family::generate, 2},
    {gpipe_family::name, &gpipe_family::check, &gpipe_family::generate, 1},
    {interleaved_zb_family::name, &interleaved_zb_family::check, &interleaved_zb_family::generate, 2},
    {looped_bfs_family::name, &looped_bfs_family::check, &looped_bfs_family::generate, 2},
    // DualPipeV: V placement, memory p + 1/2 in the same unit. (DualPipe is left out: its two
    // chunks per rank are two whole model stages, 2x parameters, not one slice cut in two.)
    {dualpipe_v_family::name, &dualpipe_v_family::check, &dualpipe_v_family::generate, 2},
};
inline constexpr std::size_t selection_candidate_count = std::size(selection_candidates);

struct candidate_score {
  bool valid = false;
  double makespan = 0;
  double peak_memory = 0; ///< largest over ranks, reference unit
};

/// Parameters of candidate c for a model whose rank slice costs `slice`.
constexpr params candidate_params(candidate const& c, int p, int m, cost_model slice) {
  double const v = c.chunks;
  return params{p, m, c.chunks > 1 ? c.chunks : 0, 0,
                cost_model{slice.f / v, slice.b / v, slice.w / v, slice.c, slice.fb / v}};
}

constexpr candidate_score score(candidate const& c, int p, int m, cost_model slice) {
  candidate_score s{};
  params pr = candidate_params(c, p, m, slice);
  if (c.check(pr)) return s;
  table t = c.generate(pr);
  if (!t.ok()) return s;
  simulation sim = simulate(t, sim_costs{pr.cost});
  if (!sim.ok()) return s;
  s.valid = true;
  s.makespan = sim.makespan;
  for (double x : sim.peak_memory) s.peak_memory = x > s.peak_memory ? x : s.peak_memory;
  return s;
}

/// The one rule of select_schedule and `pipesched compare --best`: among the valid scores
/// whose peak memory fits `budget` (budget < 0: no limit), the shortest makespan; on a tie
/// (relative 1e-9) the smaller peak memory; then the earlier candidate. Returns n when none
/// fits.
constexpr std::size_t choose_candidate(candidate_score const* s, std::size_t n, double budget) {
  std::size_t best = n;
  for (std::size_t i = 0; i < n; ++i) {
    if (!s[i].valid || (budget >= 0 && s[i].peak_memory > budget + 1e-9)) continue;
    if (best == n) {
      best = i;
      continue;
    }
    double const a = s[i].makespan, b = s[best].makespan;
    double const tol = 1e-9 * (1.0 + (a > b ? a : b));
    if (a < b - tol || (a <= b + tol && s[i].peak_memory < s[best].peak_memory - 1e-9)) best = i;
  }
  return best;
}

/// Shown by the compiler when nothing fits: the candidates' peak memory, in the order of
/// selection_candidates (1f1b, zb-h1, zb-h2, interleaved v=2, interleaved v=4, zb-v,
/// v-half, v-min, gpipe, interleaved-zb v=2, looped-bfs v=2, dualpipe-v; -1: not applicable).
template <double... PeakMemory> struct no_schedule_fits_the_memory_budget;

template <bool Fits, double... PeakMemory> struct memory_report {
  static constexpr bool value = true;
};
template <double... PeakMemory> struct memory_report<false, PeakMemory...> {
  static constexpr bool value = sizeof(no_schedule_fits_the_memory_budget<PeakMemory...>) > 0;
};

} // namespace detail

/// Picks, inside the compiler, the schedule with the smallest simulated makespan whose peak
/// memory fits the budget on every rank (ties: the smaller peak memory, then the earlier
/// candidate; the same rule and candidates as `pipesched compare --best`): `select_schedule<ranks<8>, microbatches<32>,
/// memory_budget<5.0>, costs<1.0, 2.0, 1.0>>::type` is a schedule type. Costs are those of
/// one rank's whole slice of the model; a schedule with v chunks per rank gets 1/v of them
/// per chunk, so all candidates describe the same model. When nothing fits, compilation
/// stops and names the candidates' peak memory.
template <class P, class M, class Budget, class Costs = costs<>> struct select_schedule {
  static_assert(detail::is_int_param<P, ranks>::value && detail::is_int_param<M, microbatches>::value &&
                    detail::is_memory_budget<Budget>::value && detail::is_costs<Costs>::value,
                "pipesched: select_schedule<ranks<P>, microbatches<M>, memory_budget<X>, costs<F,B,W,C>>");
  static constexpr int p = P::value;
  static constexpr int m = M::value;
  static constexpr double budget = Budget::value;
  static constexpr cost_model slice{Costs::f, Costs::b, Costs::w, Costs::c, Costs::fb};

  /// One constant evaluation per candidate, so each gets the compiler's whole budget.
  template <std::size_t I>
  static constexpr detail::candidate_score score = detail::score(detail::selection_candidates[I], p, m, slice);

  template <std::size_t... I> static constexpr std::size_t pick(std::index_sequence<I...>) {
    detail::candidate_score const s[] = {score<I>...};
    return detail::choose_candidate(s, sizeof...(I), budget);
  }
  static constexpr std::size_t chosen = pick(std::make_index_sequence<detail::selection_candidate_count>{});
  static constexpr bool fits = chosen < detail::selection_candidate_count;

  template <std::size_t... I>
  static constexpr bool report_memory(std::index_sequence<I...>) {
    return detail::memory_report<fits, (score<I>.valid ? score<I>.peak_memory : -1.0)...>::value;
  }
  static_assert(fits, "pipesched: select_schedule: no schedule fits memory_budget<X> on every rank; the error "
                      "naming no_schedule_fits_the_memory_budget lists the candidates' peak memory (1f1b, zb-h1, "
                      "zb-h2, interleaved v=2, interleaved v=4, zb-v, v-half, v-min, gpipe, interleaved-zb v=2, "
                      "looped-bfs v=2, dualpipe-v; -1: not applicable): "
                      "raise the budget or lower the micro-batch count");
  static_assert(report_memory(std::make_index_sequence<detail::selection_candidate_count>{}));

private:
  template <double F> using per = costs<Costs::f / F, Costs::b / F, Costs::w / F, Costs::c, Costs::fb / F>;
  using all = std::tuple<one_f_one_b<P, M, per<1.0>>, zb_h1<P, M, per<1.0>>, zb_h2<P, M, per<1.0>>,
                         interleaved_1f1b<P, M, chunks<2>, per<2.0>>, interleaved_1f1b<P, M, chunks<4>, per<4.0>>,
                         zb_v<P, M, per<2.0>>, v_half<P, M, per<2.0>>, v_min<P, M, per<2.0>>, gpipe<P, M, per<1.0>>,
                         interleaved_zb<P, M, chunks<2>, per<2.0>>, looped_bfs<P, M, chunks<2>, per<2.0>>,
                         dualpipe_v<P, M, per<2.0>>>;

public:
  /// The chosen schedule type (one_f_one_b when nothing fits, after the error above).
  using type = std::tuple_element_t<(fits ? chosen : 0), all>;
  static constexpr const char* name = detail::selection_candidates[fits ? chosen : 0].name;
  static constexpr int chunks_per_rank = detail::selection_candidates[fits ? chosen : 0].chunks;
  static constexpr double makespan = score<(fits ? chosen : 0)>.makespan;
  static constexpr double peak_memory = score<(fits ? chosen : 0)>.peak_memory;
};

template <class P, class M, class Budget, class Costs = costs<>>
using select_schedule_t = typename select_schedule<P, M, Budget, Costs>::type;

} // namespace pipesched
