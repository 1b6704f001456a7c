// opt: -O1 (a sweep over many run-time tables: 3 to 25 times slower at the tests' usual -O0)
// Slot reuse and double buffering. With sim_costs::slot_reuse, simulate_lowered makes a
// boundary slot wait for every read of its previous boundary (the send included) before it
// is rewritten — what a GPU executor with fixed slots must do. extra_slots (per rank, used as
// a round robin) lets a new boundary land in the slot freed longest ago instead.
#include <doctest/doctest.h>

#include <string>

#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/registry.hpp"
#include "support/check_slots.hpp"

using namespace pipesched;

TEST_CASE("slots.extra.every_schedule") {
  // For every family, p 2..8, m 4..32, link latency 0..1:
  //  - extra_slots = k gives every rank exactly peak + k slots (the independent data-flow
  //    check still passes: nothing read is overwritten);
  //  - slot reuse can only lengthen the iteration (it adds constraints) and extra slots can
  //    only shorten it back: free <= extra 1 <= extra 0 (independent: the same table
  //    simulated with and without the constraints);
  //  - the stream program of the double-buffered table passes the happens-before model.
  int cases = 0, shorter = 0, recovered = 0;
  for (auto const& e : schedule_registry)
    for (int p : {2, 4, 8})
      for (int m : {4, 8, 16, 32})
        for (double c : {0.0, 0.25, 0.5, 1.0}) {
          params pr{p, m};
          pr.cost.c = c;
          if (e.check(pr)) continue;
          INFO(e.name, " p", p, " m", m, " c", c);
          table const t0 = make_schedule(e.name, pr);
          pr.extra_slots = 1;
          table const t1 = make_schedule(e.name, pr);
          pr.extra_slots = 3;
          table const t3 = make_schedule(e.name, pr);
          REQUIRE(t0.ok());
          REQUIRE(verify(t1).ok());
          for (int r = 0; r < p; ++r) {
            CHECK(t1.slot_count[static_cast<std::size_t>(r)] == t0.slot_count[static_cast<std::size_t>(r)] + 1);
            CHECK(t3.slot_count[static_cast<std::size_t>(r)] == t0.slot_count[static_cast<std::size_t>(r)] + 3);
          }
          auto const rep = testing::check_slots(t1);
          CHECK_MESSAGE(rep.ok, rep.problem);
          sim_costs sc{pr.cost};
          double const free = simulate_lowered(t0, sc).makespan;
          sc.slot_reuse = true;
          double const x0 = simulate_lowered(t0, sc).makespan;
          double const x1 = simulate_lowered(t1, sc).makespan;
          CHECK(free <= x1 + 1e-9);
          CHECK(x1 <= x0 + 1e-9);
          ++cases;
          shorter += x1 < x0 - 1e-9 ? 1 : 0;
          recovered += x1 <= free + 1e-9 ? 1 : 0;
          if (p == 4 && m == 8) {
            cuda::stream_program const prog = cuda::derive_stream_program(t1);
            CHECK(cuda::verify_stream_program(t1, prog).ok());
          }
        }
  MESSAGE("slot reuse: ", cases, " cases; one extra slot per rank shortened ", shorter,
          " and brought back the free-slot makespan in ", recovered);
  CHECK(shorter > 0);
}

TEST_CASE("slots.extra.one_f_one_b.p4.m16.c0.5") {
  // Regression values (the simulator's own output, no reference figure): 1F1B, p = 4,
  // m = 16, costs 1,1,1, latency 0.5. Free slots: 71. With slot reuse, 85: the send of an
  // F's output still holds the slot the next F writes (last freed, first reused). One extra
  // slot per rank, used as a round robin: 71 again.
  using S = one_f_one_b<stages<4>, microbatches<16>, costs<1.0, 1.0, 1.0, 0.5>>;
  using D = one_f_one_b<stages<4>, microbatches<16>, costs<1.0, 1.0, 1.0, 0.5>, extra_slots<1>>;
  static_assert(D::valid);
  for (int r = 0; r < 4; ++r) CHECK(D::lowered.slot_count[r] == S::lowered.slot_count[r] + 1);
  sim_costs sc{cost_model{1, 1, 1, 0.5}};
  CHECK(simulate_lowered(S::make(), sc).makespan == doctest::Approx(71));
  sc.slot_reuse = true;
  CHECK(simulate_lowered(S::make(), sc).makespan == doctest::Approx(85));
  CHECK(simulate_lowered(D::make(), sc).makespan == doctest::Approx(71));
}
