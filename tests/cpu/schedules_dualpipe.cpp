// DualPipe (bidirectional) against the reference (shared/reference/schedules.md: "DualPipe",
// "DualPipeV"). Each expected number names its source: "reference", "closed form" (derived
// next to it) or "regression value" (the generator's own output).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "../support/conformance.hpp"
#include "../support/dualpipe_rule.hpp"
#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/analysis/csv.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/dualpipe.hpp"
#include "pipesched/schedules/registry.hpp"

using namespace pipesched;
using pipesched::testing::check_conformance;

namespace {
constexpr cost_model unit{1, 1, 1, 0};

/// An independent transcription of DeepSeek's DualPipe `step` (dualpipe.py) for rank r: the
/// shared step rule (support/dualpipe_rule.hpp) with n = p/2 ranks per direction, the rank
/// half_rank = min(r, p-1-r) places from its end (so both middle ranks are next to the turn)
/// and m/2 micro-batches per direction; ranks in the second half swap the roles of their two
/// modules (phase ^= is_in_second_half). Module 0 is direction A (micro-batches 0..m/2-1
/// entering at rank 0; model stage r = table stage r), module 1 direction B (m/2..m-1 entering
/// at rank p-1; model stage p-1-r = table stage 2p-1-r). Valid for m >= 2p.
std::string transcribe(int p, int m, int r) {
  int const half_rank = r < p - 1 - r ? r : p - 1 - r;
  bool const second_half = r >= p / 2;
  auto module_of = [&](int phase) { return phase ^ (second_half ? 1 : 0); };
  return dualpipe_rule::order(
      p / 2, half_rank, m / 2, [&](int phase) { return module_of(phase) == 0 ? r : 2 * p - 1 - r; },
      [&](int phase, int n) { return (module_of(phase) == 0 ? 0 : m / 2) + n; });
}

using dualpipe_rule::rows_of;
} // namespace

static_assert(dualpipe<stages<4>, microbatches<8>>::valid);
static_assert(dualpipe<stages<2>, microbatches<2>>::valid);
static_assert(dualpipe<stages<16>, microbatches<128>>::valid);
// The stream programs every CUDA executor names (copy mode: one process; rendezvous: NCCL) at
// p = 16, m = 128, derived and checked inside the compiler within g++'s default constexpr
// limits, as for zb_v and interleaved_1f1b in schedules_compile_budget.cpp
static_assert(cuda::stream_program_of<dualpipe<stages<16>, microbatches<128>>>::valid);
static_assert(cuda::stream_program_of<dualpipe<stages<16>, microbatches<128>>, cuda::transfer_mode::rendezvous>::valid);
static_assert(dualpipe_family::check({3, 8}).code == errc::needs_even_split);
static_assert(dualpipe_family::check({4, 7}).code == errc::needs_even_split);
static_assert(dualpipe_family::check({4, 8, 3}).code == errc::needs_two_chunks);

TEST_CASE("schedule.dualpipe.order.hand_derived.p2.m4") {
  // Hand-derived: p = 2 (one half rank each side, h = 0 on both ranks, both middle ranks),
  // m/2 = 2 micro-batches per direction. Rank 0: chunk 0 = stage 0 (direction A, mbs 0, 1),
  // chunk 1 = stage 3 (direction B, mbs 2, 3). Phase 2 (1x): 0F0 3F2; phase 4 (m/2 - p + h
  // + 1 = 1x), the middle rank's first apart: 0F1 3B2, then (3F3;0B0); phase 6 (1x,
  // switching to I before chunk 0's pass, h even): 3B3 0I1; phase 8: 0W1. Rank 1 mirrors it:
  // chunk 0 = stage 2 (direction B, mbs 2, 3), chunk 1 = stage 1 (direction A, mbs 0, 1).
  table t = dualpipe_family::generate({2, 4});
  REQUIRE(t.ok());
  CHECK(to_csv(t) == "0F0,3F2,0F1,3B2,(3F3;0B0)OVERLAP_F_B,3B3,0I1,0W1\n"
                     "2F2,1F0,2F3,1B0,(1F1;2B2)OVERLAP_F_B,1B1,2I3,2W3\n");
  // routes: direction A through stages 0, 1; direction B through the mirror copies 2, 3
  CHECK(t.route_length(0) == 2);
  CHECK(t.route_at(0, 1) == 1);
  CHECK(t.route_at(3, 0) == 2);
  CHECK(t.rank_of(2) == 1);
  CHECK(t.rank_of(3) == 0);
}

TEST_CASE("schedule.dualpipe.order.equals_deepseek_rule.p2-8.m2p-3p") {
  for (int p = 2; p <= 8; p += 2)
    for (int m = 2 * p; m <= 3 * p + 2; m += 2) {
      INFO("p=", p, " m=", m);
      table t = dualpipe_family::generate({p, m});
      REQUIRE(t.ok());
      auto rows = rows_of(to_csv(t));
      REQUIRE(static_cast<int>(rows.size()) == p);
      for (int r = 0; r < p; ++r) CHECK(rows[static_cast<std::size_t>(r)] == transcribe(p, m, r));
    }
}

TEST_CASE("schedule.dualpipe.sweep.p2-10.m2-3p") {
  // Any even p, m: verified compute and lowered (routes, rendezvous, the bound of p + 1
  // stage-activations: DeepSeek's README), slots checked independently; both simulators agree.
  for (int p = 2; p <= 10; p += 2)
    for (int m = 2; m <= 3 * p + 2; m += 2) {
      std::string const label = "dualpipe p=" + std::to_string(p) + " m=" + std::to_string(m);
      INFO(label);
      table t = dualpipe_family::generate({p, m});
      CHECK(t.memory_bound_chunks == p + 1);
      table low = check_conformance(t, unit, label);
      simulation s = simulate(t, sim_costs{unit});
      REQUIRE(s.ok());
      for (int k : s.peak_chunks) CHECK(k <= p + 1);
      simulation l = simulate_lowered(low, sim_costs{unit});
      REQUIRE(l.ok());
      CHECK(l.makespan == s.makespan);
    }
  // at m >= 2p the bound is reached on every rank (reference: p + 1)
  simulation s = simulate(dualpipe_family::generate({4, 8}), sim_costs{unit});
  for (int k : s.peak_chunks) CHECK(k == 5);
}

TEST_CASE("schedule.dualpipe.pair_cost.makespan_drops") {
  // FB below F + B (3 here) shortens every pair; the makespan falls with it.
  table t = dualpipe_family::generate({4, 16});
  double prev = simulate(t, sim_costs{unit}).makespan;
  for (double fb : {2.75, 2.5, 2.0}) {
    cost_model c = unit;
    c.fb = fb;
    double const now = simulate(t, sim_costs{c}).makespan;
    CHECK(now < prev);
    prev = now;
  }
}

TEST_CASE("schedule.dualpipe.registry") {
  table t = make_schedule("dualpipe", params{4, 8});
  REQUIRE_MESSAGE(t.ok(), to_string(t.error));
  CHECK(verify(t).ok());
  CHECK(make_schedule("dualpipe", params{5, 8}).error.code == errc::needs_even_split);
}

TEST_CASE("schedule.dualpipe.bubble.readme_formula") {
  // reference (schedules.md, DualPipe; DeepSeek's README): DualPipe's bubble is
  // (PP/2 - 1)(F&B + B - 3W), PP = ranks, F&B an overlapped pair, B a full backward. With
  // F = I = W = 1 (B = 2) and the pair cost FB: (p/2 - 1)(FB - 1). A device's bubble, as the
  // paper's table counts it for every schedule (1F1B's (PP - 1)(F + B) included), is the time
  // of the iteration it spends idle: makespan - its busy time, the wait before its first pass
  // included. The simulation gives exactly the formula for every pair cost the cost model
  // allows, B <= FB <= F + B (a pair never ends before its longer half, the full backward B = 2:
  // sim_costs::pair_duration; F + B is no gain).
  auto bubble = [](int p, int m, double fb) {
    cost_model c = unit;
    c.fb = fb;
    simulation s = simulate(dualpipe_family::generate({p, m}), sim_costs{c});
    REQUIRE(s.ok());
    double worst = 0;
    for (double busy : s.busy) worst = s.makespan - busy > worst ? s.makespan - busy : worst;
    return worst;
  };
  for (int p : {4, 8, 16})
    for (int m : {2 * p, 4 * p})
      for (double fb : {3.0, 2.75, 2.5, 2.25, 2.0}) {
        INFO("p=", p, " m=", m, " FB=", fb);
        CHECK(bubble(p, m, fb) == (p / 2 - 1) * (fb - 1));
      }
  // Asked for less than B, a pair still lasts B (its backward half alone), so the bubble stays
  // at its FB = B value, p/2 - 1, where the formula would keep falling (docs/01, DualPipe).
  for (int p : {4, 8, 16}) {
    INFO("p=", p);
    CHECK(bubble(p, 4 * p, 1.5) == bubble(p, 4 * p, 2.0));
    CHECK(bubble(p, 4 * p, 1.0) == bubble(p, 4 * p, 2.0));
  }
  // With F != I the formula does not describe the schedule: F = 2, I = W = 1 (B = 2), FB = 3
  // reads 2 at p = 4 and 6 at p = 8; the simulation gives 3 and 9 (regression values, docs/01).
  auto bubble_f2 = [](int p) {
    cost_model c = unit;
    c.f = 2;
    c.fb = 3;
    simulation s = simulate(dualpipe_family::generate({p, 4 * p}), sim_costs{c});
    double worst = 0;
    for (double busy : s.busy) worst = s.makespan - busy > worst ? s.makespan - busy : worst;
    return worst;
  };
  CHECK((4 / 2 - 1) * (3.0 + 2 - 3 * 1) == 2);
  CHECK(bubble_f2(4) == 3);
  CHECK(bubble_f2(8) == 9);
}
