// Every schedule runs to the end on the host backend (p = 1..4; p = 5..8 in
// host_rendezvous_large.cpp) — one thread per rank, rendezvous
// channels, so a wrong transfer order would hang (the timeout turns a hang into a failure)
// — and every boundary a pass reads holds what its producer wrote.
#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "pipesched/host/executor.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

template <class S> void run_checked() {
  table const t = S::make();
  REQUIRE(t.ok());
  host::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.timeout = std::chrono::seconds(20);
  host::executor<S> ex(o);
  for (int iteration = 0; iteration < 2; ++iteration) {
    std::vector<plan_test::checking_functor> fs(static_cast<std::size_t>(S::ranks));
    ex.run(fs);
    for (int r = 0; r < S::ranks; ++r) {
      auto const& f = fs[static_cast<std::size_t>(r)];
      INFO(plan_test::label<S>(), " rank ", r, ": ", f.first_problem);
      CHECK(f.mismatches == 0);
      std::vector<action> compute;
      for (action a : t.lists[static_cast<std::size_t>(r)])
        if (is_compute(a.kind)) compute.push_back(make_action(a.kind, a.stage, a.mb, a.chunk));
      REQUIRE(f.calls == static_cast<int>(compute.size()));
      for (std::size_t i = 0; i < compute.size(); ++i) CHECK(f.order[i] == compute[i]);
    }
  }
}

template <int P, int M> void run_all() {
  plan_test::for_each_type(plan_test::training_schedules<P, M>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) { run_checked<S>(); }
  });
}

} // namespace

TEST_CASE("host.rendezvous.p1.m3") { run_all<1, 3>(); }
TEST_CASE("host.rendezvous.p2.m1") { run_all<2, 1>(); }
TEST_CASE("host.rendezvous.p2.m5") { run_all<2, 5>(); }
TEST_CASE("host.rendezvous.p3.m2") { run_all<3, 2>(); }
TEST_CASE("host.rendezvous.p3.m7") { run_all<3, 7>(); }
TEST_CASE("host.rendezvous.p4.m9") { run_all<4, 9>(); }
