// Two-stream simulation of lowered tables: with free links it agrees with simulate(); with
// a latency it meets the reference figures; transfers get times, streams stay serial.
// Expected numbers name their source: "reference" (shared/reference/schedules.md, section
// named), "closed form" (derived next to it) or "independent" (simulate() on the compute table).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "pipesched/analysis/csv.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/pipeline/lower.hpp"
#include "pipesched/schedules/registry.hpp"
#include "support/resumed_simulation.hpp"
#include "support/tables.hpp"

using namespace pipesched;
using pipesched::testing::looped_table;
using pipesched::testing::v_table;

namespace {

/// Times of the compute passes by (kind, stage, micro-batch), to compare two tables.
std::vector<op_time> compute_times(table const& t, simulation const& sim) {
  std::vector<op_time> out(static_cast<std::size_t>(t.stages * t.microbatches) * 4u, op_time{-1, -1});
  for (std::size_t r = 0; r < t.lists.size(); ++r)
    for (std::size_t i = 0; i < t.lists[r].size(); ++i) {
      action const& a = t.lists[r][i];
      if (!is_compute(a.kind)) continue;
      out[(static_cast<std::size_t>(a.stage) * static_cast<std::size_t>(t.microbatches) + a.mb) * 4u +
          static_cast<std::size_t>(a.kind)] = sim.times[r][i];
    }
  return out;
}

/// simulate_lowered on lower(t, c) against simulate on t, pass by pass.
void check_matches_simulate(table const& t, sim_costs const& c, std::string const& what) {
  INFO(what);
  REQUIRE(verify(t).ok());
  table l = lower(t, c);
  REQUIRE(l.ok());
  simulation a = simulate(t, c), b = simulate_lowered(l, c);
  REQUIRE(a.ok());
  REQUIRE_MESSAGE(b.ok(), to_string(b.error));
  CHECK(b.makespan == doctest::Approx(a.makespan));
  CHECK(b.max_rank_span == doctest::Approx(a.max_rank_span));
  CHECK(b.bubble_ratio == doctest::Approx(a.bubble_ratio));
  CHECK(b.peak_memory == a.peak_memory);
  CHECK(b.order.size() == a.order.size());
  auto ta = compute_times(t, a), tb = compute_times(l, b);
  for (std::size_t k = 0; k < ta.size(); ++k) {
    CHECK(tb[k].start == doctest::Approx(ta[k].start));
    CHECK(tb[k].end == doctest::Approx(ta[k].end));
  }
}

/// Transfer invariants: a SEND and its RECV share one interval of the link's length, after
/// the producer; the consumer starts after its RECV; each rank's transfers do not overlap.
void check_transfers(table const& l, simulation const& s, sim_costs const& c) {
  std::size_t const p = l.lists.size();
  for (std::size_t r = 0; r < p; ++r) {
    double comm_end = 0;
    for (std::size_t i = 0; i < l.lists[r].size(); ++i) {
      action const& a = l.lists[r][i];
      op_time const& tm = s.times[r][i];
      if (is_compute(a.kind)) continue;
      CHECK(tm.start >= comm_end - 1e-9); // the comm stream runs in list order, one at a time
      comm_end = tm.end;
      if (!is_send(a.kind)) continue;
      CHECK(tm.end - tm.start == doctest::Approx(c.link(static_cast<int>(r), a.peer, l.ranks)));
      // the producer, earlier on the same rank
      bool has_producer = false;
      for (std::size_t k = 0; k < i; ++k) {
        action const& b = l.lists[r][k];
        bool producer = b.stage == a.stage && b.mb == a.mb &&
                        (a.kind == op::send_act ? b.kind == op::forward : makes_input_grad(b.kind));
        has_producer = has_producer || producer;
        if (producer) CHECK(s.times[r][k].end <= tm.start + 1e-9);
      }
      CHECK(has_producer); // else the check above would pass without checking anything
      // the RECV on the peer: same interval; its consumer starts after it
      auto const& peer = l.lists[a.peer];
      op recv = a.kind == op::send_act ? op::recv_act : op::recv_grad;
      int stage = a.kind == op::send_act ? l.next_stage(a.mb, a.stage) : l.prev_stage(a.mb, a.stage);
      bool found = false;
      for (std::size_t k = 0; k < peer.size(); ++k) {
        if (peer[k].kind != recv || peer[k].stage != stage || peer[k].mb != a.mb) continue;
        found = true;
        CHECK(s.times[a.peer][k].start == doctest::Approx(tm.start));
        CHECK(s.times[a.peer][k].end == doctest::Approx(tm.end));
        bool has_consumer = false;
        for (std::size_t q = k + 1; q < peer.size(); ++q) {
          action const& b = peer[q];
          bool consumer = b.stage == stage && b.mb == a.mb &&
                          (recv == op::recv_act ? b.kind == op::forward : makes_input_grad(b.kind));
          has_consumer = has_consumer || consumer;
          if (consumer) CHECK(s.times[a.peer][q].start >= tm.end - 1e-9);
        }
        CHECK(has_consumer); // else the check above would pass without checking anything
      }
      CHECK(found);
    }
  }
}

} // namespace

TEST_CASE("simulate_lowered.zero_link.matches_simulate") {
  cost_model const costs[] = {{1, 1, 1, 0}, {1, 2, 1, 0}, {0.5, 0.75, 0.25, 0}, {2, 1, 0, 0}};
  for (auto const& e : schedule_registry)
    for (int p : {1, 2, 3, 4})
      for (int m : {1, 3, 8})
        for (cost_model const& c : costs) {
          params pr{p, m};
          pr.cost = c;
          if (e.check(pr)) continue;
          check_matches_simulate(e.generate(pr), sim_costs{c},
                                 std::string(e.name) + " p" + std::to_string(p) + " m" + std::to_string(m));
        }
  for (int p : {2, 3, 4})
    for (int m : {1, 4})
      for (cost_model const& c : costs) {
        check_matches_simulate(looped_table(p, m, 2), sim_costs{c}, "looped v2");
        check_matches_simulate(looped_table(p, m, 3), sim_costs{c}, "looped v3");
        check_matches_simulate(v_table(p, m), sim_costs{c}, "v");
      }
}

TEST_CASE("simulate_lowered.latency.one_f_one_b.p4.m8") {
  table t = make_schedule("1f1b", {4, 8}, false);
  sim_costs const c{cost_model{1, 1, 1, 0.5}};
  table l = lower(t, c);
  simulation s = simulate_lowered(l, c);
  REQUIRE(s.ok());
  CHECK(s.makespan == doctest::Approx(41)); // reference: schedules.md, Cases (c = 0), row "1F1B, c = 0.5"
  check_matches_simulate(t, c, "1f1b c=0.5");
  check_matches_simulate(t, sim_costs{cost_model{1, 1, 1, 0.25}}, "1f1b c=0.25");
  check_transfers(l, s, c);
}

TEST_CASE("simulate_lowered.latency.gpipe.p4.m8") {
  // reference: (m + p - 1)(F + B + W) + 2(p - 1)c
  // (schedules.md, GPipe (fill–drain): "Time (c = 0): (m+p−1)(F+B+W)" = 33 at p = 4, m = 8,
  // F = B = W = 1, and "With latency c: +2(p−1)c", 2·3·c)
  table t = make_schedule("gpipe", {4, 8}, false);
  for (double c : {0.25, 0.5}) {
    sim_costs const sc{cost_model{1, 1, 1, c}};
    table l = lower(t, sc);
    simulation s = simulate_lowered(l, sc);
    REQUIRE(s.ok());
    CHECK(s.makespan == doctest::Approx(33 + 2 * 3 * c));
    check_transfers(l, s, sc);
  }
}

TEST_CASE("simulate_lowered.serial_comm_stream") {
  // a link as slow as a pass: each rank's one comm stream carries four transfers per
  // (F, B) pair, so it becomes the bottleneck that simulate() (free parallel links) ignores
  table t = make_schedule("1f1b", {4, 8}, false);
  sim_costs const c{cost_model{1, 1, 1, 1}};
  table l = lower(t, c);
  simulation s = simulate_lowered(l, c), free_links = simulate(t, c);
  REQUIRE(s.ok());
  CHECK(s.makespan > free_links.makespan);
  check_transfers(l, s, c);
}

TEST_CASE("simulate_lowered.bandwidth_and_latency_matrices") {
  table t = make_schedule("1f1b", {3, 4}, false);
  sim_costs c{cost_model{1, 1, 1, 0}};
  c.latency = {0, 0.1, 0.2, 0.1, 0, 0.3, 0.2, 0.3, 0};
  c.bandwidth = {0, 100, 100, 100, 0, 50, 100, 50, 0};
  c.boundary_bytes = 10; // + 0.1 on links 0-1, 0.2 on 1-2
  table l = lower(t, c);
  simulation s = simulate_lowered(l, c);
  REQUIRE(s.ok());
  // closed form: latency + boundary_bytes / bandwidth: 0.1 + 10/100 and 0.3 + 10/50
  CHECK(c.link(0, 1, 3) == doctest::Approx(0.2));
  CHECK(c.link(1, 2, 3) == doctest::Approx(0.5));
  check_transfers(l, s, c);
  int sends = 0;
  for (std::size_t i = 0; i < l.lists[1].size(); ++i)
    if (l.lists[1][i].kind == op::send_act) { // closed form: rank 1 sends activations over the 1-2 link, 0.5 above
      ++sends;
      CHECK(s.times[1][i].end - s.times[1][i].start == doctest::Approx(0.5));
    }
  CHECK(sends == 4); // closed form: one activation per micro-batch from stage 1 to stage 2, m = 4
}

TEST_CASE("simulate_lowered.errors") {
  sim_costs const c{cost_model{1, 1, 1, 0.5}};
  // rank 1 has no receive for its input
  table a = from_csv("0F0,0SEND_F0,0RECV_B0,0B0\n1F0,1B0,1SEND_B0");
  REQUIRE(a.ok());
  CHECK(simulate_lowered(a, c).error.code == errc::missing_recv);
  // each comm stream waits for a transfer queued behind the other's
  table b = from_csv("0F0,0RECV_B0,0SEND_F0,0B0\n1RECV_F0,1F0,1B0,1SEND_B0");
  REQUIRE(b.ok());
  diagnostic d = simulate_lowered(b, c).error;
  CHECK(d.code == errc::transfer_deadlock);
  CHECK(d.rank >= 0);
  CHECK(!verify(b).ok());
  // a send meets the receive of another micro-batch
  table m = from_csv("0F0,0F1,0SEND_F1,0SEND_F0,0RECV_B0,0B0,0RECV_B1,0B1\n"
                     "1RECV_F0,1RECV_F1,1F0,1B0,1SEND_B0,1F1,1B1,1SEND_B1");
  REQUIRE(m.ok());
  CHECK(simulate_lowered(m, c).error.code == errc::transfer_mismatch);
  // a table that is not lowered is simulated by simulate()
  table t = make_schedule("1f1b", {4, 8}, false);
  simulation s = simulate_lowered(t, c);
  REQUIRE(s.ok());
  CHECK(s.makespan == doctest::Approx(41)); // reference: schedules.md, Cases (c = 0), row "1F1B, c = 0.5"
  CHECK(simulate_lowered(failed({errc::zero_ranks}), c).error.code == errc::zero_ranks);
}

TEST_CASE("simulate.resume.equals_the_full_simulation") {
  // A simulation resumed where one rank's list changed (the order search of skip paths uses
  // it) gives the full simulation's times to the bit, or its error: every registered
  // schedule, compute and lowered (transfers, and DualPipe's overlapped pairs), a latency and
  // uneven per-stage costs; each entry moved up to 4 places either way and to both ends
  long trials = 0, ok = 0, resumed = 0;
  for (auto const& e : schedule_registry)
    for (int p : {2, 4})
      for (int m : {4, 6}) {
        params pr{p, m};
        pr.cost = cost_model{1, 2, 1, 0.25};
        if (e.check(pr)) continue;
        table const t = e.generate(pr);
        sim_costs costs{pr.cost};
        for (int s = 0; s < t.stages; ++s) costs.per_stage.push_back(cost_model{1.0 + 0.25 * (s % 3), 2.0, 0.5, 0.25});
        std::string const what = std::string(e.name) + " p" + std::to_string(p) + " m" + std::to_string(m);
        for (table const& x : {t, lower(t, costs)}) {
          auto const n = testing::check_resumed_simulations(x, costs, what);
          trials += n.trials;
          ok += n.ok;
          resumed += n.resumed;
        }
      }
  MESSAGE(trials, " moves, ", ok, " without a cycle, ", resumed, " of those resumed after some kept passes");
  // not vacuous: many moves keep a valid order, and most of those keep some passes' times
  CHECK(ok > 1000);
  CHECK(resumed * 2 > ok);
}

TEST_CASE("simulate.resume.refuses_the_times_of_another_table") {
  table const t = make_schedule("1f1b", {4, 6}, false);
  table const other = make_schedule("1f1b", {4, 7}, false);
  sim_costs const costs{};
  detail::flat_times base;
  REQUIRE(detail::simulate_times(other, costs, neighbours_on_routes(other), {}, &base).ok());
  simulation const s = detail::simulate_times(t, costs, neighbours_on_routes(t), detail::sim_resume{&base, 1, 2});
  REQUIRE_FALSE(s.ok());
  CHECK(std::string(s.error.detail) == "resumed from the times of another table");
  // a position past the rank's list
  REQUIRE(detail::simulate_times(t, costs, neighbours_on_routes(t), {}, &base).ok());
  simulation const past =
      detail::simulate_times(t, costs, neighbours_on_routes(t), detail::sim_resume{&base, 1, t.lists[1].size()});
  REQUIRE_FALSE(past.ok());
  CHECK(std::string(past.error.detail) == "resumed from the times of another table");
}
