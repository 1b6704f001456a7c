// ZB-H1 and ZB-H2: reference cases, formulas over sweeps, verify() compute-only and lowered.
// Numbers come from /work/shared/reference/schedules.md (B there is the input-gradient
// pass I, whose cost is cost_model::b).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "pipesched/analysis/simulate.hpp"
#include "pipesched/analysis/verify.hpp"
#include "pipesched/lower/lower.hpp"
#include "pipesched/schedules/zero_bubble.hpp"

namespace {

using pipesched::cost_model;
using pipesched::params;
using pipesched::sim_costs;
using pipesched::zb_h1_family;
using pipesched::zb_h2_family;

bool near(double a, double b) { return std::fabs(a - b) <= 1e-9 * (1.0 + std::fabs(b)); }
double max2(double a, double b) { return a > b ? a : b; }
double min2(double a, double b) { return a < b ? a : b; }

std::string where(params const& pr) {
  return "p=" + std::to_string(pr.p) + " m=" + std::to_string(pr.m) + " F=" + std::to_string(pr.cost.f) +
         " B=" + std::to_string(pr.cost.b) + " W=" + std::to_string(pr.cost.w);
}

/// ZB-H1's time with c = 0 (W <= min(F, B): the paper's m(F+B+W) + (p-1)(F+B-W)).
double zb_h1_time(int p, int m, cost_model const& c) {
  if (m >= p) return m * (c.f + c.b + c.w) + (p - 1) * max2(c.f + c.b - c.w, max2(c.f, c.b));
  return (m + p - 1) * (c.f + c.b) + c.w + (m - 1) * max2(0.0, c.w - min2(c.f, c.b));
}

/// ZB-H2's largest rank span from the paper: m(F+B+W) + (p-1) max(0, F+B-2W).
double zb_h2_span(int p, int m, cost_model const& c) {
  return m * (c.f + c.b + c.w) + (p - 1) * max2(0.0, c.f + c.b - 2 * c.w);
}

// W <= F and W <= B; W > B; W > F; F+B <= 2W; F = B; F < B; W = 0.
cost_model const cost_triples[] = {{1, 1, 1, 0},   {2, 1, 1, 0},      {1, 2, 1, 0},   {1, 1, 0.5, 0},
                                   {1, 3, 0.2, 0}, {1, 1, 0, 0},      {2, 0.5, 1, 0}, {1, 2, 1.5, 0},
                                   {1, 0.5, 2, 0}, {1, 0.5, 0.75, 0}, {1, 1, 2, 0},   {0.5, 1, 1, 0}};

pipesched::simulation run(pipesched::table const& t, cost_model const& c) {
  REQUIRE(t.ok());
  return pipesched::simulate(t, sim_costs{c});
}

void check_verified(pipesched::table const& t, cost_model const& c, bool lowered) {
  auto d = pipesched::verify(t);
  CHECK_MESSAGE(d.ok(), pipesched::to_string(d));
  CHECK(t.split_backward);
  if (lowered) {
    auto dl = pipesched::verify(pipesched::lower(t, sim_costs{c}));
    CHECK_MESSAGE(dl.ok(), pipesched::to_string(dl));
  }
}

} // namespace

// ---- the reference table -------------------------------------------------------------

TEST_CASE("schedule.zb_h1.p4.m8") {
  auto s = run(zb_h1_family::generate({4, 8, 0, 0, {1, 1, 1, 0}}), {1, 1, 1, 0});
  CHECK(near(s.makespan, 27));
  CHECK(near(s.max_rank_span, 27));
  for (int r = 0; r < 4; ++r) CHECK(s.peak_chunks[static_cast<std::size_t>(r)] == 4);
}

TEST_CASE("schedule.zb_h2.p4.m8") {
  // zero bubble for F = B = W: largest rank span 3m = 24; rank r starts at r F, so the
  // makespan is 24 + 3 = 27; memory 2p-1 = 7.
  auto t = zb_h2_family::generate({4, 8, 0, 0, {1, 1, 1, 0}});
  auto s = run(t, {1, 1, 1, 0});
  CHECK(near(s.max_rank_span, 24));
  CHECK(near(s.makespan, 27));
  for (int r = 0; r < 4; ++r) CHECK(s.peak_chunks[static_cast<std::size_t>(r)] == 7);
  check_verified(t, {1, 1, 1, 0}, true);
}

TEST_CASE("schedule.zb_h1.p4.m8.order") {
  auto t = zb_h1_family::generate({4, 8});
  auto str = [&](int r) {
    std::string s;
    for (auto const& a : t.lists[static_cast<std::size_t>(r)])
      s += pipesched::op_name(a.kind) + std::to_string(a.mb) + " ";
    return s;
  };
  // rank 0 runs W right after I; rank 3 defers its W's by 3.
  CHECK(str(0) == "F0 F1 F2 F3 I0 W0 F4 I1 W1 F5 I2 W2 F6 I3 W3 F7 I4 W4 I5 W5 I6 W6 I7 W7 ");
  CHECK(str(3) == "F0 I0 F1 I1 F2 I2 F3 I3 W0 F4 I4 W1 F5 I5 W2 F6 I6 W3 F7 I7 W4 W5 W6 W7 ");
}

TEST_CASE("schedule.zero_bubble.checks") {
  CHECK(zb_h1_family::check({4, 8, 2}).code == pipesched::errc::needs_one_chunk);
  CHECK(zb_h2_family::check({4, 8, 2}).code == pipesched::errc::needs_one_chunk);
  CHECK(zb_h2_family::generate({4, 8, 3}).error.code == pipesched::errc::needs_one_chunk);
  CHECK(zb_h1_family::check({4, 8, 1}).ok());
  CHECK(zb_h2_family::check({0, 8}).code == pipesched::errc::zero_ranks);
}

// ---- ZB-H1 formulas ------------------------------------------------------------------

TEST_CASE("schedule.zb_h1.formula.p1-16.m1-64") { // and verify() of every compute table
  // Exact for every cost triple: m >= p: m(F+B+W) + (p-1) max(F+B-W, F, B) (the paper's
  // (p-1)(F+B-W) when W <= min(F, B)); m < p: (m+p-1)(F+B) + W + (m-1) max(0, W - min(F,B)).
  // Memory min(p, m) on every rank.
  for (auto const& c : cost_triples)
    for (int p = 1; p <= 16; ++p)
      for (int m = 1; m <= 64; ++m) {
        params pr{p, m, 0, 0, c};
        CAPTURE(where(pr));
        auto t = zb_h1_family::generate(pr);
        check_verified(t, c, false);
        auto s = run(t, c);
        REQUIRE(s.ok());
        CHECK(near(s.makespan, zb_h1_time(p, m, c)));
        if (c.w <= min2(c.f, c.b)) CHECK(near(s.max_rank_span, s.makespan));
        for (int r = 0; r < p; ++r) CHECK(s.peak_chunks[static_cast<std::size_t>(r)] == min2(p, m));
        CHECK(t.memory_bound_chunks == min2(p, m));
      }
}

// ---- ZB-H2 formulas and bounds ---------------------------------------------------------

TEST_CASE("schedule.zb_h2.formula.p1-16.m1-64") { // and verify() of every compute table
  for (auto const& c : cost_triples)
    for (int p = 1; p <= 16; ++p)
      for (int m = 1; m <= 64; ++m) {
        params pr{p, m, 0, 0, c};
        CAPTURE(where(pr));
        auto t = zb_h2_family::generate(pr);
        check_verified(t, c, false);
        auto s = run(t, c);
        REQUIRE(s.ok());
        // never slower (in rank span) than ZB-H1, whose span is at most its time
        CHECK(s.max_rank_span <= zb_h1_time(p, m, c) + 1e-9);
        CHECK(s.max_rank_span >= m * (c.f + c.b + c.w) - 1e-9);
        // memory: 2p at most, min(p, m) at least where the ZB-H1 order was kept
        CHECK(t.memory_bound_chunks <= min2(2 * p, m));
        for (int r = 0; r < p; ++r) CHECK(s.peak_chunks[static_cast<std::size_t>(r)] <= min2(2 * p, m));
        // Exact where the paper's bound is reached: m >= 2p-1, F >= B and F+B <= 2W (zero
        // bubble), or F = B = W. Elsewhere m(F+B+W) + (p-1)(F+B-2W) is neither a bound
        // nor exact: with 2p live activations W's fill more of the tail (below it); with
        // F < B the warm-up needs more than 2p forwards, and for some F > B, W < F the
        // greedy's tail exceeds it by a fraction of (p-1)W (above it).
        bool const zero_bubble = c.f >= c.b && c.f + c.b <= 2 * c.w;
        bool const equal = c.f == c.b && c.b == c.w;
        if (m >= 2 * p - 1 && (zero_bubble || equal)) CHECK(near(s.max_rank_span, zb_h2_span(p, m, c)));
        if (m >= 2 * p - 1 && equal) {
          CHECK(near(s.makespan, zb_h2_span(p, m, c) + (p - 1) * c.f));
          for (int r = 0; r < p; ++r) CHECK(s.peak_chunks[static_cast<std::size_t>(r)] == 2 * p - 1);
        }
      }
}

TEST_CASE("schedule.zb_h2.formula.f_equals_b") {
  // F = B with W <= F/2 and m >= 2p: the span is at most the paper's (2p live activations
  // fill more of the tail); at m = 2p-1 it can exceed it by a fraction of W.
  for (double w : {0.1, 0.25, 0.5})
    for (int p = 1; p <= 16; ++p)
      for (int m = 2 * p; m <= 64; ++m) {
        cost_model const c{1, 1, w, 0};
        params pr{p, m, 0, 0, c};
        CAPTURE(where(pr));
        auto s = run(zb_h2_family::generate(pr), c);
        CHECK(s.max_rank_span <= zb_h2_span(p, m, c) + 1e-9);
      }
}

// ---- every output passes verify() ----------------------------------------------------

TEST_CASE("schedule.zero_bubble.lowered.p1-16.m1-64") {
  // The formula tests verify every compute table; here the lowered tables, for every
  // m <= 2p + 2 and every third m above, with three cost triples (lowering is the slow part).
  cost_model const some[] = {{1, 1, 1, 0}, {1, 0.5, 2, 0}, {1, 3, 0.2, 0}};
  for (auto const& c : some)
    for (int p = 1; p <= 16; ++p)
      for (int m = 1; m <= 64; ++m) {
        if (m > 2 * p + 2 && m % 3 != 0) continue;
        params pr{p, m, 0, 0, c};
        CAPTURE(where(pr));
        for (auto const& t : {zb_h1_family::generate(pr), zb_h2_family::generate(pr)}) {
          auto dl = pipesched::verify(pipesched::lower(t, sim_costs{c}));
          CHECK_MESSAGE(dl.ok(), pipesched::to_string(dl));
        }
      }
}

TEST_CASE("schedule.zero_bubble.latency") {
  for (int p = 1; p <= 8; ++p)
    for (int m = 1; m <= 24; ++m) {
      cost_model const c{1, 1, 1, 0.3};
      params pr{p, m, 0, 0, c};
      CAPTURE(where(pr));
      check_verified(zb_h1_family::generate(pr), c, true);
      auto t = zb_h2_family::generate(pr);
      check_verified(t, c, true);
      CHECK(run(t, c).max_rank_span <=
            pipesched::simulate(zb_h1_family::generate(pr), sim_costs{c}).max_rank_span + 1e-9);
    }
}

// ---- compile time ------------------------------------------------------------------------

namespace {
using namespace pipesched;
static_assert(zb_h1<stages<4>, microbatches<8>>::valid);
static_assert(zb_h2<stages<4>, microbatches<8>>::valid);
static_assert(zb_h2<stages<4>, microbatches<8>, costs<1.0, 2.0, 0.5>>::valid);
static_assert(zb_h2<stages<6>, microbatches<3>, costs<1.0, 1.0, 1.0, 0.5>>::valid);
static_assert(zb_h1<stages<4>, microbatches<8>>::lowered.split_backward);
static_assert(verify(zb_h2_family::generate({5, 12, 0, 0, {2, 1, 1, 0}})).ok());
static_assert(zb_h2_family::generate({4, 8}).memory_bound_chunks == 7);
// the generator alone at p = 16, m = 128 stays inside g++'s constexpr budget
static_assert(zb_h2_family::generate({16, 128}).total_actions() == 3 * 16 * 128);
} // namespace

TEST_CASE("schedule.zero_bubble.type") {
  using s = zb_h2<stages<4>, microbatches<8>>;
  auto t = s::make();
  CHECK(t.lowered);
  CHECK(pipesched::verify(t).ok());
  CHECK(std::string(s::name) == "zb-h2");
  CHECK(std::string(zb_h1<stages<2>, microbatches<2>>::name) == "zb-h1");
}
