// opt: -O1 (a sweep over many run-time tables: 3 to 25 times slower at the tests' usual -O0)
// GPipe, 1F1B and forward-only against the reference formulas and cases.
// Sources of the expected numbers (project test standard): "reference" = shared/reference/
// schedules.md, section named; "closed form" = derived in the comment; "independent" =
// computed another way in the test; "regression value" = the generator's own output.
#include <doctest/doctest.h>

#include <type_traits>

#include "../support/conformance.hpp"
#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/schedules/forward_only.hpp"
#include "pipesched/schedules/gpipe.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"

using namespace pipesched;
using pipesched::testing::check_conformance;

namespace {
constexpr cost_model cost_triples[] = {{1, 1, 1, 0}, {1, 2, 1, 0}, {0.5, 1.25, 0.75, 0}, {2, 1, 3, 0}};
constexpr double eps = 1e-9;
} // namespace

TEST_CASE("schedule.reference_cases.gpipe_1f1b") {
  // shared/reference/schedules.md, "Cases (c = 0)" and the latency row
  auto g = simulate(gpipe_family::generate({4, 8}), sim_costs{cost_model{1, 1, 1, 0}});
  CHECK(g.makespan == doctest::Approx(33));      // reference: schedules.md, Cases (c = 0), row GPipe: makespan 33
  CHECK(g.max_rank_span == doctest::Approx(33)); // reference: same row, span 33
  REQUIRE(g.peak_memory.size() == 4);            // closed form: one peak per rank, p = 4
  for (double m : g.peak_memory) CHECK(m == doctest::Approx(8)); // reference: same row, memory 8 (= m)
  auto o = simulate(one_f_one_b_family::generate({4, 8}), sim_costs{cost_model{1, 1, 1, 0}});
  CHECK(o.makespan == doctest::Approx(33)); // reference: schedules.md, Cases (c = 0), row 1F1B 1,1,1: makespan 33
  // reference: same row, memory "4 (ranks 4 3 2 1)"
  CHECK(o.peak_memory == vec<double>{4, 3, 2, 1});
  // costs F,B,W = 1,2,1: B here is the input-gradient pass, a fused backward costs B+W = 3
  auto o2 = simulate(one_f_one_b_family::generate({4, 8}), sim_costs{cost_model{1, 2, 1, 0}});
  CHECK(o2.makespan == doctest::Approx(44)); // reference: schedules.md, Cases (c = 0), row 1F1B 1,2,1: makespan 44
  auto oc = simulate(one_f_one_b_family::generate({4, 8}), sim_costs{cost_model{1, 1, 1, 0.5}});
  CHECK(oc.makespan == doctest::Approx(41)); // reference: schedules.md, Cases (c = 0), row "1F1B, c = 0.5": 41
}

TEST_CASE("schedule.gpipe.sweep.p1-16.m1-64") {
  for (int p = 1; p <= 16; ++p)
    for (int m = 1; m <= 64; m += (m < 12 ? 1 : 7))
      for (cost_model c : cost_triples) {
        table t = gpipe_family::generate({p, m, 0, 0, c});
        check_conformance(t, c, "gpipe p=" + std::to_string(p) + " m=" + std::to_string(m));
        auto sim = simulate(t, sim_costs{c});
        // reference: schedules.md, GPipe (fill–drain): "Time (c = 0): (m+p−1)(F+B+W)"
        CHECK(sim.makespan == doctest::Approx((m + p - 1) * (c.f + c.b + c.w)).epsilon(eps));
        CHECK(sim.peak_memory.size() == static_cast<std::size_t>(p)); // closed form: one peak per rank
        // reference: schedules.md, GPipe (fill–drain): "Memory: m on every rank"
        for (double mem : sim.peak_memory) CHECK(mem == doctest::Approx(m));
        // with latency: +2(p-1)c -- reference: schedules.md, GPipe (fill–drain): "With latency c: +2(p−1)c"
        cost_model cl = c;
        cl.c = 0.25;
        CHECK(simulate(t, sim_costs{cl}).makespan ==
              doctest::Approx((m + p - 1) * (c.f + c.b + c.w) + 2 * (p - 1) * 0.25).epsilon(eps));
      }
}

TEST_CASE("schedule.one_f_one_b.sweep.p1-16.m1-64") {
  for (int p = 1; p <= 16; ++p)
    for (int m = 1; m <= 64; m += (m < 20 ? 1 : 5))
      for (cost_model c : cost_triples) {
        table t = one_f_one_b_family::generate({p, m, 0, 0, c});
        check_conformance(t, c, "1f1b p=" + std::to_string(p) + " m=" + std::to_string(m));
        auto sim = simulate(t, sim_costs{c});
        // reference: schedules.md, 1F1B: "Time (c = 0): (m+p−1)(F+B+W), any F, B, W"
        CHECK(sim.makespan == doctest::Approx((m + p - 1) * (c.f + c.b + c.w)).epsilon(eps));
        // reference: schedules.md, 1F1B: "Memory on rank r: min(p−r, m)"
        for (int r = 0; r < p; ++r) CHECK(sim.peak_memory[static_cast<std::size_t>(r)] == std::min(p - r, m));
      }
}

TEST_CASE("schedule.forward_only.sweep") {
  for (int p = 1; p <= 12; ++p)
    for (int m = 1; m <= 40; m += 3) {
      table t = forward_only_family::generate({p, m});
      check_conformance(t, {}, "forward-only p=" + std::to_string(p) + " m=" + std::to_string(m));
      // closed form: (m+p−1)F with F = 2, derived: forward j on rank r can start at (j+r)F (one
      // F per rank per step, the input from rank r−1 a step earlier) and nothing else competes,
      // so the last one, j = m−1 on rank p−1, ends at (m−1+p−1+1)F (no shared/reference figure)
      CHECK(simulate(t, sim_costs{cost_model{2, 1, 1, 0}}).makespan == doctest::Approx((m + p - 1) * 2.0));
      for (int v = 2; v <= 4; ++v) {
        table tv = forward_only_family::generate({p, m, v});
        check_conformance(tv, {}, "forward-only v=" + std::to_string(v));
        // closed form: busy = v*m*F, derived: each rank holds v chunks and runs one forward of
        // F = 1 per chunk and micro-batch (and no backward)
        auto sim = simulate(tv, sim_costs{cost_model{1, 1, 1, 0}});
        CHECK(sim.busy.size() == static_cast<std::size_t>(p)); // closed form: one entry per rank
        for (double b : sim.busy) CHECK(b == doctest::Approx(v * m));
      }
    }
}

TEST_CASE("schedule.parameters.refused") {
  CHECK(gpipe_family::generate({0, 4}).error.code == errc::zero_ranks);
  CHECK(gpipe_family::generate({4, 0}).error.code == errc::zero_microbatches);
  CHECK(one_f_one_b_family::generate({4, 8, 2}).error.code == errc::needs_one_chunk);
  CHECK(one_f_one_b_family::generate({4, 8, 0, 0, cost_model{-1, 1, 1, 0}}).error.code == errc::negative_cost);
  CHECK(forward_only_family::generate({4, 8, 1, 9}).error.code == errc::group_size_out_of_range);
}

// compile time: the same generators, run by the compiler
using s_1f1b = one_f_one_b<ranks<4>, microbatches<8>>;
// stages<P> is the former name of ranks<P>: the same type, so the same schedule type
static_assert(std::is_same_v<stages<4>, ranks<4>>);
static_assert(std::is_same_v<one_f_one_b<stages<4>, microbatches<8>>, s_1f1b>);
static_assert(one_f_one_b<microbatches<8>, stages<4>>::parameters.p == 4); // any order, old spelling
static_assert(s_1f1b::valid);
static_assert(s_1f1b::lowered.ranks == 4 && s_1f1b::lowered.size(0) > 0); // closed form: one list per rank, p = 4
// reference: schedules.md, Cases (c = 0), row 1F1B 1,1,1: makespan 33 (simulate's default costs are 1,1,1,0)
static_assert(simulate(s_1f1b::make()).makespan == 33);
static_assert(verify(gpipe<stages<3>, costs<1.0, 2.0, 1.0>, microbatches<5>>::make()).ok());
static_assert(one_f_one_b<stages<16>, microbatches<128>>::valid);
// The stream programs every CUDA executor names (copy mode: one process; rendezvous: NCCL) at
// p = 16, m = 128, derived and checked inside the compiler within g++'s default constexpr
// limits, as for zb_v and interleaved_1f1b in schedules_compile_budget.cpp
static_assert(cuda::stream_program_of<one_f_one_b<stages<16>, microbatches<128>>>::valid);
static_assert(cuda::stream_program_of<one_f_one_b<stages<16>, microbatches<128>>, cuda::transfer_mode::rendezvous>::valid);
static_assert(cuda::stream_program_of<gpipe<stages<16>, microbatches<128>>>::valid);
static_assert(cuda::stream_program_of<gpipe<stages<16>, microbatches<128>>, cuda::transfer_mode::rendezvous>::valid);
static_assert(cuda::stream_program_of<forward_only<stages<16>, microbatches<128>>>::valid);
static_assert(cuda::stream_program_of<forward_only<stages<16>, microbatches<128>>, cuda::transfer_mode::rendezvous>::valid);

TEST_CASE("schedule.static_table.matches_runtime") {
  table t = s_1f1b::make();
  for (int r = 0; r < 4; ++r) {
    REQUIRE(s_1f1b::lowered.size(static_cast<std::size_t>(r)) == t.lists[static_cast<std::size_t>(r)].size());
    for (std::size_t i = 0; i < t.lists[static_cast<std::size_t>(r)].size(); ++i)
      CHECK(s_1f1b::lowered.at(static_cast<std::size_t>(r), i) == t.lists[static_cast<std::size_t>(r)][i]);
    CHECK(s_1f1b::lowered.slot_count[r] == t.slot_count[static_cast<std::size_t>(r)]);
  }
}
