// Looped BFS against the reference (shared/reference/schedules.md: "Looped BFS", "Placements").
// Each expected number names its source: "reference" (schedules.md, section named), "closed
// form" (derived next to it) or "independent" (tests/support/textbook.hpp's transcription of
// the reference's rule, written without the generator).
#include <doctest/doctest.h>

#include <string>

#include "../support/conformance.hpp"
#include "../support/textbook.hpp"
#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/looped_bfs.hpp"

using namespace pipesched;
using pipesched::testing::check_conformance;

namespace {
constexpr cost_model unit{1, 1, 1, 0};
constexpr cost_model cost_set[] = {{1, 1, 1, 0}, {1, 2, 1, 0}, {2, 1, 0.5, 0}, {0.3, 0.7, 0.2, 0}, {3, 1, 0, 0}};

bool near(double a, double b) { return a > b - 1e-9 * (1 + b) && a < b + 1e-9 * (1 + b); }

std::string label(int p, int m, int v) {
  return "looped-bfs p=" + std::to_string(p) + " m=" + std::to_string(m) + " v=" + std::to_string(v);
}

std::string order(table const& t, int r) {
  std::string s;
  for (action const& a : t.lists[static_cast<std::size_t>(r)])
    s += std::to_string(a.stage) + op_name(a.kind) + std::to_string(a.mb) + " ";
  return s;
}
} // namespace

// Compile time: the schedule type (generate, lower, verify) and the reference case.
static_assert(looped_bfs<stages<4>, microbatches<8>, chunks<2>>::valid);
static_assert(looped_bfs<stages<4>, microbatches<8>>::valid); // default v = 2
static_assert(looped_bfs<stages<3>, microbatches<1>, chunks<3>, costs<1.0, 2.0, 1.0>>::valid);
// reference: schedules.md, Looped BFS: p = 4, m = 8, v = 2, F = B = W = 1 per chunk: makespan 57
static_assert(simulate(looped_bfs_family::generate({4, 8, 2}), sim_costs{unit}).makespan == 57);
// compile-time generation, lowering and verification at p = 16, m = 128, v = 2 within the
// default constexpr limits (as tests/cpu/schedules_compile_budget.cpp for other families)
static_assert(looped_bfs<stages<16>, microbatches<128>, chunks<2>>::valid);
// The stream programs every CUDA executor names (copy mode: one process; rendezvous: NCCL) at
// p = 16, m = 128, derived and checked inside the compiler within g++'s default constexpr
// limits, as for zb_v and interleaved_1f1b in schedules_compile_budget.cpp
static_assert(cuda::stream_program_of<looped_bfs<stages<16>, microbatches<128>, chunks<2>>>::valid);
static_assert(cuda::stream_program_of<looped_bfs<stages<16>, microbatches<128>, chunks<2>>, cuda::transfer_mode::rendezvous>::valid);

TEST_CASE("schedule.looped_bfs.reference.p4.m8.v2") {
  table t = looped_bfs_family::generate({4, 8, 2});
  check_conformance(t, unit, label(4, 8, 2));
  CHECK(t.place == placement::loop);
  CHECK(t.chunks == 2);
  CHECK(!t.split_backward);
  auto s = simulate(t, sim_costs{unit});
  CHECK(s.makespan == doctest::Approx(57)); // reference: schedules.md, Looped BFS
  // reference: schedules.md, Looped BFS: "memory m·v chunk-activations = m units", 8 units;
  // closed form: every rank runs all its forwards before any backward, so each rank holds 8
  for (int r = 0; r < 4; ++r) {
    CHECK(s.peak_memory[static_cast<std::size_t>(r)] == doctest::Approx(8));
    CHECK(s.peak_chunks[static_cast<std::size_t>(r)] == 16);
  }
  CHECK(t.memory_bound_chunks == 16); // closed form: m v = 8·2
}

TEST_CASE("schedule.looped_bfs.p2.m3.v2.order") {
  // closed form: the reference's rule (schedules.md, Looped BFS) applied by hand, p = 2, m = 3,
  // v = 2, loop placement: rank 0 holds stages 0 and 2, rank 1 stages 1 and 3.
  // rank 0: stage 0 forwards 0,1,2; stage 2 forwards 0,1,2; then stage 2 backwards 2,1,0,
  //         stage 0 backwards 2,1,0
  // rank 1: the same with stages 1 and 3
  table t = looped_bfs_family::generate({2, 3, 2});
  CHECK(order(t, 0) == "0F0 0F1 0F2 2F0 2F1 2F2 2B2 2B1 2B0 0B2 0B1 0B0 ");
  CHECK(order(t, 1) == "1F0 1F1 1F2 3F0 3F1 3F2 3B2 3B1 3B0 1B2 1B1 1B0 ");
}

TEST_CASE("schedule.looped_bfs.sweep.pytorch_order") {
  // independent: textbook::looped_bfs transcribes the reference's rule (PyTorch's looped BFS)
  // from each rank's stage set; PyTorch accepts every (p, m, v) here
  for (int p = 1; p <= 8; ++p)
    for (int m = 1; m <= 16; ++m)
      for (int v = 1; v <= 4; ++v) {
        CAPTURE(label(p, m, v));
        table const t = looped_bfs_family::generate({p, m, v});
        table const want = textbook::looped_bfs(p, m, v);
        REQUIRE(t.ok());
        for (int r = 0; r < p; ++r) CHECK(order(t, r) == order(want, r));
      }
}

TEST_CASE("schedule.looped_bfs.sweep.verify_time_memory") {
  // Every table verifies compute-only and lowered (rendezvous, slots); memory m units on every
  // rank; time (v max(m, p) + min(m, p) - 1)(F+B+W) (closed form: the two chains derived at
  // looped_bfs_family give it as a lower bound; that the order meets it is checked here; v = 1
  // is the reference's GPipe time (m+p-1)(F+B+W), GPipe "draining in reverse order").
  for (int p = 1; p <= 8; ++p)
    for (int m = 1; m <= 20; ++m)
      for (int v = 1; v <= 4; ++v) {
        CAPTURE(label(p, m, v));
        table const t = looped_bfs_family::generate({p, m, v});
        if (p + m + v <= 16) check_conformance(t, unit, label(p, m, v));
        else REQUIRE(verify(t).ok());
        CHECK(t.memory_bound_chunks == m * v);
        for (auto const& c : cost_set) {
          auto s = simulate(t, sim_costs{c});
          REQUIRE(s.ok());
          int const hi = m > p ? m : p, lo = m > p ? p : m;
          CHECK(near(s.makespan, (v * hi + lo - 1) * (c.f + c.b + c.w)));
          for (int r = 0; r < p; ++r) CHECK(s.peak_chunks[static_cast<std::size_t>(r)] == m * v);
        }
      }
}

TEST_CASE("schedule.looped_bfs.sweep.verify.p9-16.m1-64") {
  // the rest of the project's usual sweep (p = 1..16, m = 1..64): verify() compute-only (which
  // enforces memory_bound_chunks), every v = 1..4
  for (int p = 9; p <= 16; ++p)
    for (int m = 1; m <= 64; ++m)
      for (int v = 1; v <= 4; ++v) {
        CAPTURE(label(p, m, v));
        table const t = looped_bfs_family::generate({p, m, v});
        REQUIRE(t.ok());
        CHECK(verify(t).ok());
      }
}

TEST_CASE("schedule.looped_bfs.defaults") {
  table t = looped_bfs_family::generate({4, 8});
  CHECK(t.chunks == 2); // documented default: docs/01_schedules.md, Parameters, chunks<V>
  CHECK(t.stages == 8); // reference: schedules.md, Notation: S = p·v = 4·2
  CHECK(looped_bfs_family::check({0, 8}).code == errc::zero_ranks);
  CHECK(looped_bfs_family::check({4, 0}).code == errc::zero_microbatches);
  CHECK(looped_bfs_family::generate({4, 8, -1}).error.code == errc::zero_chunks);
}
