// Overlapped forward-backward pairs through the core: verification, simulation (the pair
// cost FB), lowering, both simulators, CSV. Expected numbers are hand-derived in comments.
#include <doctest/doctest.h>

#include <string>

#include "../support/conformance.hpp"
#include "pipesched/analysis/csv.hpp"
#include "pipesched/analysis/render.hpp"
#include "pipesched/pipeline/lower.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/dualpipe_v.hpp"

using namespace pipesched;

namespace {
constexpr cost_model unit{1, 1, 1, 0};

bool has(diagnostic const& d, std::string const& what) {
  return d.detail != nullptr && std::string(d.detail).find(what) != std::string::npos;
}

table parse(std::string const& text) {
  table t = from_csv(text);
  REQUIRE_MESSAGE(t.ok(), to_string(t.error));
  return t;
}

// 1F1B at p = 2, m = 2 with rank 1's steady-state F and B as one pair
constexpr const char* one_pair = "0F0,0F1,0B0,0B1\n1F0,(1F1;1B0)OVERLAP_F_B,1B1";
} // namespace

TEST_CASE("core.overlap.action_stays_pod") {
  static_assert(std::is_trivially_default_constructible_v<action>);
  static_assert(std::is_trivially_copyable_v<action>);
  static_assert(sizeof(action) <= 16);
  constexpr action a = make_action(op::forward, 1, 2);
  static_assert(!overlaps_next(a));
  constexpr action b = [] {
    action x = make_action(op::forward, 1, 2);
    x.flags = overlap_next;
    return x;
  }();
  static_assert(overlaps_next(b) && !(a == b));
}

TEST_CASE("core.overlap.verify.accepts_a_pair") {
  table t = parse(one_pair);
  CHECK(overlaps_next(t.lists[1][1]));
  CHECK(verify(t).ok());
  pipesched::testing::check_conformance(t, unit, "one pair");
}

TEST_CASE("core.overlap.verify.rejects_malformed_pairs") {
  struct bad_case {
    const char* text;
    errc code;
    int rank, position;
    const char* reason;
  };
  bad_case const cases[] = {
      // two forwards
      {"0F0,(0F1;0F2)OVERLAP_F_B,0B0,0B1,0B2\n1F0,1B0,1F1,1B1,1F2,1B2", errc::bad_overlap, 0, 1, "B or an I"},
      // a backward opening the pair
      {"0F0,0F1,(0B0;0F2)OVERLAP_F_B,0B1,0B2\n1F0,1B0,1F1,1B1,1F2,1B2", errc::bad_overlap, 0, 2, "forward half"},
      // a forward with a W
      {"0F0,0I0,(0F1;0W0)OVERLAP_F_B,0I1,0W1\n1F0,1I0,1W0,1F1,1I1,1W1", errc::bad_overlap, 0, 2, "B or an I"},
      // the backward half of the forward's own (stage, micro-batch)
      {"0F0,0F1,0B0,0B1\n(1F0;1B0)OVERLAP_F_B,1F1,1B1", errc::bad_overlap, 1, 0, "own forward"},
  };
  for (auto const& c : cases) {
    INFO(c.text);
    table t = from_csv(c.text);
    REQUIRE_MESSAGE(t.ok(), to_string(t.error));
    diagnostic d = verify(t);
    CHECK(d.code == c.code);
    CHECK(d.rank == c.rank);
    CHECK(d.position == c.position);
    CHECK_MESSAGE(has(d, c.reason), to_string(d));
  }
  // a flag on the last action of a list, set by hand (the CSV form cannot say it)
  table t = parse("0F0,0B0\n1F0,1B0");
  t.lists[1][1].flags = overlap_next;
  diagnostic d = verify(t);
  CHECK(d.code == errc::bad_overlap);
  CHECK(d.rank == 1);
  t.lists[1][1].flags = 0;
  t.lists[1][0].flags = overlap_next; // F(1,0) with its own B
  CHECK(verify(t).code == errc::bad_overlap);
  // three actions in one group
  table g = from_csv("0F0,(0F1;0B0;0B1)OVERLAP_F_B\n1F0,1B0,1F1,1B1");
  CHECK(g.error.code == errc::parse_error);
}

TEST_CASE("core.overlap.verify.rejects_a_pair_across_a_dependency") {
  // Rank 0 pairs F(0,1) with B(0,0). B(0,0) needs rank 1's B(1,0), which rank 1 runs after
  // F(1,1), which needs F(0,1): the pair's backward half waits (through rank 1) for its own
  // forward half. Run as two passes, F(0,1) then B(0,0), the same order is valid.
  std::string const paired = "0F0,(0F1;0B0)OVERLAP_F_B,0B1\n1F0,1F1,1B0,1B1";
  std::string const apart = "0F0,0F1,0B0,0B1\n1F0,1F1,1B0,1B1";
  CHECK(verify(parse(apart)).ok());
  diagnostic d = verify(parse(paired));
  CHECK(d.code == errc::cyclic_wait);
  CHECK(d.rank == 0);
  CHECK(d.position == 1);
  CHECK_MESSAGE(has(d, "overlapped pair"), to_string(d));
  // lowering refuses it the same way
  CHECK(lower(parse(paired), sim_costs{unit}).error.code == errc::cyclic_wait);
  // a pair flagged by hand in a lowered table, where a send and a receive sit between the
  // two passes: not a pair (its second half must follow at once)
  table low = lower(parse(apart), sim_costs{unit});
  REQUIRE(low.ok());
  auto& l0 = low.lists[0];
  for (std::size_t i = 0; i + 1 < l0.size(); ++i)
    if (l0[i].kind == op::forward && l0[i].mb == 1) {
      l0[i].flags = overlap_next;
      break;
    }
  CHECK(verify(low).code == errc::bad_overlap);
}

TEST_CASE("core.overlap.simulate.pair_cost") {
  // one_pair with F = B = W = 1 (a fused B costs 2). Hand-derived: rank 0 runs F(0,0) [0,1],
  // F(0,1) [1,2]; rank 1 F(1,0) [1,2]; the pair needs F(0,1) (ends 2) and, for B(1,0), F(1,0)
  // (ends 2): it starts at 2. Default FB = F + B = 3: pair [2,5], B(1,1) [5,7]; rank 0 B(0,0)
  // [5,7], B(0,1) [7,9]: makespan 9 = (m+p-1)(F+B+W), 1F1B's. With FB = 2: pair [2,4],
  // B(1,1) [4,6], B(0,0) [4,6], B(0,1) [6,8]: makespan 8; rank 1 busy 1 + 2 + 2 = 5.
  table t = parse(one_pair);
  simulation s = simulate(t, sim_costs{unit});
  REQUIRE(s.ok());
  CHECK(s.makespan == 9);
  CHECK(s.times[1][1].start == 2);
  CHECK(s.times[1][1].end == 5);
  CHECK(s.times[1][2].start == 2);
  CHECK(s.times[1][2].end == 5);
  cost_model c = unit;
  c.fb = 2;
  simulation o = simulate(t, sim_costs{c});
  REQUIRE(o.ok());
  CHECK(o.makespan == 8);
  CHECK(o.times[1][1].end == 4);
  CHECK(o.times[1][2].end == 4);
  CHECK(o.times[0][3].end == 8);
  CHECK(o.busy[1] == 5);
  // the pair's duration: F + B saves (F + B + W) - FB; F + I the same, never below the
  // longer half: with FB = 2.5, F + B = 2.5, F + I = 1 + 1 - 0.5 = 1.5; with FB = 0.5,
  // F + I = max(1 + 1 - 2.5, 1) = 1
  c.fb = 2.5;
  CHECK(sim_costs{c}.pair_duration(0, op::backward, 1) == 2.5);
  CHECK(sim_costs{c}.pair_duration(0, op::backward_input, 1) == 1.5);
  c.fb = 0.5;
  CHECK(sim_costs{c}.pair_duration(0, op::backward_input, 1) == 1);
  CHECK(sim_costs{unit}.pair_duration(0, op::backward, 1) == 3);
}

TEST_CASE("core.overlap.lower.transfers_around_pairs") {
  // Every pair of a lowered DualPipeV table: the two halves adjacent, the receives of both
  // halves' inputs before the pair, the sends of both outputs after it.
  for (int p : {2, 3, 4, 6})
    for (int m : {1, p, 2 * p, 3 * p + 1}) {
      INFO("p=", p, " m=", m);
      table low = lower(dualpipe_v_family::generate({p, m}), sim_costs{unit});
      REQUIRE(low.ok());
      CHECK(verify(low).ok());
      int pairs = 0;
      for (auto const& l : low.lists)
        for (std::size_t i = 0; i < l.size(); ++i) {
          if (!overlaps_next(l[i])) continue;
          ++pairs;
          REQUIRE(i + 1 < l.size());
          action const& f = l[i];
          action const& b = l[i + 1];
          CHECK(makes_input_grad(b.kind));
          for (std::size_t k = 0; k < l.size(); ++k) {
            action const& x = l[k];
            bool const recv_f = x.kind == op::recv_act && x.stage == f.stage && x.mb == f.mb;
            bool const recv_b = x.kind == op::recv_grad && x.stage == b.stage && x.mb == b.mb;
            bool const send_f = x.kind == op::send_act && x.stage == f.stage && x.mb == f.mb;
            bool const send_b = x.kind == op::send_grad && x.stage == b.stage && x.mb == b.mb;
            if (recv_f || recv_b) CHECK(k < i);
            if (send_f || send_b) CHECK(k > i + 1);
          }
        }
      if (m >= 2 * p) CHECK(pairs > 0);
    }
}

TEST_CASE("core.overlap.simulators_agree") {
  // simulate (compute table) and simulate_lowered (lowered table, c = 0) give every pass the
  // same times, pairs included, with and without a pair gain.
  for (double fb : {0.0, 2.5, 2.0})
    for (int p : {1, 2, 3, 4, 5})
      for (int m : {1, 3, 2 * p, 2 * p + 3}) {
        INFO("p=", p, " m=", m, " fb=", fb);
        cost_model c{1, 1.5, 0.5, 0, fb};
        table t = dualpipe_v_family::generate({p, m});
        simulation s = simulate(t, sim_costs{c});
        REQUIRE(s.ok());
        table low = lower(t, sim_costs{c});
        REQUIRE(low.ok());
        simulation l = simulate_lowered(low, sim_costs{c});
        REQUIRE_MESSAGE(l.ok(), to_string(l.error));
        CHECK(l.makespan == s.makespan);
        for (int r = 0; r < p; ++r) {
          std::size_t k = 0; // position in the compute list
          auto const& ll = low.lists[static_cast<std::size_t>(r)];
          for (std::size_t i = 0; i < ll.size(); ++i) {
            if (!is_compute(ll[i].kind)) continue;
            CHECK(ll[i].kind == t.lists[static_cast<std::size_t>(r)][k].kind);
            CHECK(l.times[static_cast<std::size_t>(r)][i].start == s.times[static_cast<std::size_t>(r)][k].start);
            CHECK(l.times[static_cast<std::size_t>(r)][i].end == s.times[static_cast<std::size_t>(r)][k].end);
            ++k;
          }
        }
      }
}

TEST_CASE("core.overlap.csv.round_trip") {
  for (int p : {1, 2, 4})
    for (int m : {1, 2 * p, 2 * p + 3}) {
      INFO("p=", p, " m=", m);
      table t = dualpipe_v_family::generate({p, m});
      std::string const text = to_csv(t);
      CHECK((text.find(")OVERLAP_F_B") != std::string::npos) == (m >= 2 * p)); // phases 4, 5 hold pairs
      table u = from_csv(text);
      REQUIRE_MESSAGE(u.ok(), to_string(u.error));
      REQUIRE(u.ranks == t.ranks);
      for (int r = 0; r < p; ++r) CHECK(u.lists[static_cast<std::size_t>(r)] == t.lists[static_cast<std::size_t>(r)]);
      CHECK(to_csv(u) == text);
      // with the transfers: the lowered table comes back lowered and verified, pairs kept
      table low = lower(t, sim_costs{unit});
      std::string const comms = to_csv(low, csv_format::compute_comms);
      table v = from_csv(comms);
      REQUIRE_MESSAGE(v.ok(), to_string(v.error));
      CHECK(v.lowered == (p > 1));
      CHECK(verify(v).ok());
      CHECK(to_csv(v, csv_format::compute_comms) == comms);
    }
  // PyTorch's own spelling of a pair
  table t = from_csv("0F0,0F1,(0F2;0B0)OVERLAP_F_B,0B1,0B2\n1F0,1B0,1F1,1B1,1F2,1B2");
  REQUIRE(t.ok());
  CHECK(overlaps_next(t.lists[0][2]));
  CHECK(t.lists[0][3] == make_action(op::backward, 0, 0));
  CHECK(verify(t).ok());
}

TEST_CASE("core.overlap.pictures") {
  // one_pair at unit costs: the pair F(1,1) + B(1,0) spans [2, 5]; drawn side by side, F over
  // [2, 3.5] and B over [3.5, 5], inside one outline in the SVG, tagged in the trace.
  table t = parse(one_pair);
  simulation s = simulate(t, sim_costs{unit});
  REQUIRE(s.ok());
  std::string const svg = render_svg(t, s);
  CHECK(svg.find("overlapped pair: F1 with B0, 2 to 5") != std::string::npos);
  std::string const trace = render_chrome_trace(t, s);
  std::size_t n = 0;
  for (std::size_t at = trace.find("\"overlapped\":true"); at != std::string::npos;
       at = trace.find("\"overlapped\":true", at + 1))
    ++n;
  CHECK(n == 2);
  // the text grid (cells of 0.5) shows both halves: F1 from t = 2, B0 from t = 3.5
  std::string const text = render_text(t, s);
  std::size_t const row = text.find("rank 1 ");
  REQUIRE(row != std::string::npos);
  std::string const line = text.substr(row, text.find('\n', row) - row);
  CHECK(line.find("F1") != std::string::npos);
  CHECK(line.find("B0") != std::string::npos);
  CHECK(line.find("B0") > line.find("F1"));
}
