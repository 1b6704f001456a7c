// The simulator's cost model: per-stage costs, a latency matrix and bandwidth, checked
// against the closed form of a forward-only pipeline with unlimited links: one micro-batch
// passes every stage and link, the others follow at the pace of the slowest stage,
//   makespan = sum_s f_s + sum_links (latency + bytes / bandwidth) + (m - 1) * max_s f_s.
// (Closed form, derived: micro-batch 0 reaches the end after every stage and link once; the
// slowest stage then runs the other m - 1 back to back and the stages after it, being faster,
// keep up -- the flow shop of identical jobs. No shared/reference figure.)
#include <doctest/doctest.h>

#include "pipesched/pipeline/lower.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/schedules/forward_only.hpp"
#include "pipesched/schedules/gpipe.hpp"

using namespace pipesched;

TEST_CASE("simulate.cost_model.per_stage.forward_only.p4.m6") {
  table t = forward_only_family::generate({4, 6});
  sim_costs c{};
  c.per_stage = vec<cost_model>{{1, 1, 1, 0}, {2, 1, 1, 0}, {1, 1, 1, 0}, {3, 1, 1, 0}}; // a heavy head
  simulation s = simulate(t, c);
  // closed form (above): stages 1 + 2 + 1 + 3, no link cost, then m − 1 = 5 more at the slowest
  // stage's 3
  CHECK(s.makespan == doctest::Approx((1 + 2 + 1 + 3) + 5 * 3));
  CHECK(s.busy[3] == doctest::Approx(6 * 3)); // closed form: m = 6 forwards of cost 3 on the last rank
}

TEST_CASE("simulate.cost_model.latency_bandwidth_matrix.forward_only.p3.m5") {
  table t = forward_only_family::generate({3, 5});
  sim_costs c{cost_model{2, 1, 1, 0}};
  // row = sender: 0->1 slow (latency 1.5, 100 bytes at 50/unit), 1->2 fast (latency 0.25)
  c.latency = vec<double>{0, 1.5, 9, 9, 0, 0.25, 9, 9, 0};
  c.bandwidth = vec<double>{0, 50, 0, 0, 0, 0, 0, 0, 0};
  c.boundary_bytes = 100;
  simulation s = simulate(t, c);
  // closed form (above): three stages of 2, the slow link 1.5 + 100/50, the fast one 0.25 (no
  // bandwidth set there: infinite), then m − 1 = 4 more at 2 (all stages equal, links unlimited)
  CHECK(s.makespan == doctest::Approx(3 * 2 + (1.5 + 100.0 / 50) + 0.25 + 4 * 2));
}

TEST_CASE("simulate.cost_model.activation_bytes") {
  sim_costs c{};
  c.activation_bytes = 1 << 20;
  simulation s = simulate(gpipe_family::generate({4, 8}), c);
  // reference: schedules.md, GPipe: "Memory: m on every rank" (m = 8 units) × activation_bytes,
  // the bytes of one unit
  REQUIRE(s.peak_bytes.size() == 4); // closed form: one entry per rank, p = 4
  for (std::size_t r = 0; r < 4; ++r) CHECK(s.peak_bytes[r] == doctest::Approx(8.0 * (1 << 20)));
}

// Costs that do not fit the table (a per-stage entry short, a link matrix of another size)
// are refused with cost_shape by the simulation, lowering and simulate_lowered, instead of
// read out of bounds.
TEST_CASE("simulate.cost_model.costs_of_another_shape_are_refused") {
  table const t = gpipe_family::generate({4, 6});
  sim_costs ok{};
  ok.per_stage = vec<cost_model>(4, cost_model{1, 2, 1, 0});
  REQUIRE(simulate(t, ok).ok());
  table const lowered = lower(t, ok);
  REQUIRE(lowered.ok());
  REQUIRE(simulate_lowered(lowered, ok).ok());
  sim_costs short_stages = ok;
  short_stages.per_stage.pop_back();
  sim_costs odd_links{};
  odd_links.latency = vec<double>(9, 0.5); // 3 x 3 for 4 ranks
  sim_costs odd_bandwidth{};
  odd_bandwidth.bandwidth = vec<double>(25, 1.0);
  for (sim_costs const& c : {short_stages, odd_links, odd_bandwidth}) {
    CHECK(simulate(t, c).error.code == errc::cost_shape);
    CHECK(lower(t, c).error.code == errc::cost_shape);
    CHECK(simulate_lowered(lowered, c).error.code == errc::cost_shape);
  }
}
