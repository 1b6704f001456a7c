// opt: -O1 (a sweep over many run-time tables: 3 to 25 times slower at the tests' usual -O0)
// DualPipeV against the reference (shared/reference/schedules.md: "DualPipeV", "Placements").
// Each expected number names its source: "reference" (schedules.md), "closed form" (derived
// next to it) or "regression value" (the generator's own output).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../support/conformance.hpp"
#include "../support/dualpipe_rule.hpp"
#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/analysis/csv.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/dualpipe_v.hpp"
#include "pipesched/schedules/registry.hpp"

using namespace pipesched;
using pipesched::testing::check_conformance;

namespace {
constexpr cost_model unit{1, 1, 1, 0};

double largest(vec<double> const& v) { return *std::max_element(v.begin(), v.end()); }

/// The same order with every pair run as two separate passes, F then B (PyTorch's runtime).
constexpr table without_pairs(table t) {
  for (auto& l : t.lists)
    for (auto& a : l) a.flags = 0;
  return t;
}

/// An independent transcription of DeepSeek's / PyTorch's DualPipeV step rule (dualpipev.py
/// `step`): the shared step rule (support/dualpipe_rule.hpp) with all p ranks in one direction
/// (n = p, k = r) and m micro-batches per chunk; chunk 0 is stage r, chunk 1 stage 2p-1-r,
/// each counting its micro-batches from 0. Valid for m >= 2p (what PyTorch accepts).
std::string transcribe(int p, int m, int r) {
  return dualpipe_rule::order(
      p, r, m, [&](int chunk) { return chunk == 0 ? r : 2 * p - 1 - r; }, [](int, int j) { return j; });
}

using dualpipe_rule::rows_of;
} // namespace

// Compile time: the schedule type (generate, lower, verify) and the refusal of other chunk
// counts; generation at p = 16, m = 128 within the default constexpr limits.
static_assert(dualpipe_v<stages<4>, microbatches<8>>::valid);
static_assert(dualpipe_v<stages<3>, microbatches<1>>::valid);
static_assert(dualpipe_v<stages<16>, microbatches<128>>::valid);
// The stream programs every CUDA executor names (copy mode: one process; rendezvous: NCCL) at
// p = 16, m = 128, derived and checked inside the compiler within g++'s default constexpr
// limits, as for zb_v and interleaved_1f1b in schedules_compile_budget.cpp
static_assert(cuda::stream_program_of<dualpipe_v<stages<16>, microbatches<128>>>::valid);
static_assert(cuda::stream_program_of<dualpipe_v<stages<16>, microbatches<128>>, cuda::transfer_mode::rendezvous>::valid);
static_assert(dualpipe_v_family::check({4, 8, 3}).code == errc::needs_two_chunks);
// the pair cost as a type parameter reaches the schedule's cost model (FB = 2.5)
static_assert(dualpipe_v<stages<4>, microbatches<8>, costs<1.0, 1.0, 1.0, 0.0, 2.5>>::valid);
static_assert(dualpipe_v<stages<4>, microbatches<8>, costs<1.0, 1.0, 1.0, 0.0, 2.5>>::parameters.cost.fb == 2.5);
// reference: schedules.md, DualPipeV: p = 4, m = 8, pairs run as F then B: makespan 51
static_assert(simulate(without_pairs(dualpipe_v_family::generate({4, 8})), sim_costs{unit}).makespan == 51);

TEST_CASE("schedule.dualpipe_v.order.hand_derived.p2.m4") {
  // Hand-derived from the eight phases (p = 2, m = 4; rank 0: s0 = 0, s1 = 3; rank 1: s0 = 1,
  // s1 = 2). Rank 0: phase 1 2x F(0): 0F0 0F1; phase 2 1x: 0F2 3F0; phase 3 1x: 3I0 3W0 3F1;
  // phase 4 (m-2p+r+1 = 1)x: (0F3;3B1) (3F2;0B0); phase 5 1x: 3B2 (3F3;0B1); phase 6 1x,
  // switching to I at step (r+1)/2 = 0 before s0's pass (r even): 3B3 0I2; phase 7 1x: 0W2
  // 0I3; phase 8: 0W3. Rank 1 (the last): phase 2 2x: 1F0 2F0 1F1 2F1; phase 4 2x, its first
  // (F(s0), B(s1)) not overlapped: 1F2 2B0 (2F2;1B0) (1F3;2B1) (2F3;1B1); phase 6 2x,
  // switching at step 1 before s1's pass (r odd): 2B2 1B2 2I3 1I3; phase 8: 2W3 1W3.
  table t = dualpipe_v_family::generate({2, 4});
  REQUIRE(t.ok());
  CHECK(to_csv(t) ==
        "0F0,0F1,0F2,3F0,3I0,3W0,3F1,(0F3;3B1)OVERLAP_F_B,(3F2;0B0)OVERLAP_F_B,3B2,(3F3;0B1)OVERLAP_F_B,3B3,0I2,0W2,"
        "0I3,0W3\n"
        "1F0,2F0,1F1,2F1,1F2,2B0,(2F2;1B0)OVERLAP_F_B,(1F3;2B1)OVERLAP_F_B,(2F3;1B1)OVERLAP_F_B,2B2,1B2,2I3,1I3,2W3,"
        "1W3\n");
}

TEST_CASE("schedule.dualpipe_v.order.equals_pytorch_rule.p1-6.m2p-3p+2") {
  for (int p = 1; p <= 6; ++p)
    for (int m = 2 * p; m <= 3 * p + 2; ++m) {
      INFO("p=", p, " m=", m);
      table t = dualpipe_v_family::generate({p, m});
      REQUIRE(t.ok());
      auto rows = rows_of(to_csv(t));
      REQUIRE(static_cast<int>(rows.size()) == p);
      for (int r = 0; r < p; ++r) CHECK(rows[static_cast<std::size_t>(r)] == transcribe(p, m, r));
    }
}

TEST_CASE("schedule.dualpipe_v.reference.p4.m8.m10") {
  // reference: schedules.md, DualPipeV: pairs run as F then B, F = B = W = 1 per chunk:
  // p = 4, m = 8: makespan 51, memory 4.5; m = 10: 63
  table t8 = dualpipe_v_family::generate({4, 8});
  table t10 = dualpipe_v_family::generate({4, 10});
  simulation s8 = simulate(without_pairs(t8), sim_costs{unit});
  simulation s10 = simulate(without_pairs(t10), sim_costs{unit});
  REQUIRE(s8.ok());
  REQUIRE(s10.ok());
  CHECK(s8.makespan == 51);
  CHECK(largest(s8.peak_memory) == 4.5);
  CHECK(s10.makespan == 63);
  // memory p + 1/2 = 4.5 on every rank (reference), the bound the table promises: 2p + 1
  CHECK(t8.memory_bound_chunks == 9);
  for (double m : s8.peak_memory) CHECK(m == 4.5);
  // As overlapped pairs with no gain (FB = F + B), each pair waits for both halves' inputs
  // before either starts, which PyTorch's runtime (halves one after the other) does not: the
  // schedule is longer. Regression values: 54 and 66.
  simulation o8 = simulate(t8, sim_costs{unit});
  simulation o10 = simulate(t10, sim_costs{unit});
  CHECK(o8.makespan == 54);
  CHECK(o10.makespan == 66);
  CHECK(o8.makespan >= s8.makespan);
}

TEST_CASE("schedule.dualpipe_v.pair_cost.makespan_drops") {
  // With FB < F + B (= 3 here: F = 1, fused B = 2) every pair is shorter, so the makespan
  // must drop, strictly, as FB falls: no pass waits longer for a shorter predecessor.
  for (int m : {8, 10, 16}) {
    INFO("m=", m);
    table t = dualpipe_v_family::generate({4, m});
    double prev = simulate(t, sim_costs{unit}).makespan;
    for (double fb : {2.75, 2.5, 2.25, 2.0}) {
      cost_model c = unit;
      c.fb = fb;
      simulation s = simulate(t, sim_costs{c});
      REQUIRE(s.ok());
      CHECK(s.makespan < prev);
      prev = s.makespan;
      // the lowered table, simulated with its transfers, agrees
      table low = lower(t, sim_costs{c});
      REQUIRE(low.ok());
      CHECK(simulate_lowered(low, sim_costs{c}).makespan == s.makespan);
    }
  }
  // regression value: at FB = 2.5 (a sixth of the pair hidden) p = 4, m = 8 beats the
  // reference's 51 for the pairs run as F then B
  cost_model c = unit;
  c.fb = 2.5;
  CHECK(simulate(dualpipe_v_family::generate({4, 8}), sim_costs{c}).makespan == 49);
}

TEST_CASE("schedule.dualpipe_v.sweep.p1-10.m1-3p") {
  // Any m >= 1: verified compute and lowered tables (coverage, dependencies, no cyclic wait,
  // rendezvous, memory within 2p + 1 chunk-activations), slots checked independently.
  for (int p = 1; p <= 10; ++p)
    for (int m = 1; m <= 3 * p + 2; ++m) {
      table t = dualpipe_v_family::generate({p, m});
      table low = check_conformance(t, unit, "dualpipe-v p=" + std::to_string(p) + " m=" + std::to_string(m));
      simulation s = simulate(t, sim_costs{unit});
      REQUIRE(s.ok());
      for (int k : s.peak_chunks) CHECK(k <= 2 * p + 1);
      // every pair is a forward then a B of another stage or micro-batch
      for (auto const& l : t.lists)
        for (std::size_t i = 0; i < l.size(); ++i)
          if (overlaps_next(l[i])) {
            REQUIRE(i + 1 < l.size());
            CHECK(l[i].kind == op::forward);
            CHECK(l[i + 1].kind == op::backward);
          }
    }
}

TEST_CASE("schedule.dualpipe_v.registry") {
  table t = make_schedule("dualpipe-v", params{4, 8});
  REQUIRE_MESSAGE(t.ok(), to_string(t.error));
  CHECK(t.lowered);
  CHECK(verify(t).ok());
  CHECK(make_schedule("dualpipe-v", params{4, 8, 3}).error.code == errc::needs_two_chunks);
}
