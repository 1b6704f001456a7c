// Shared by host_rendezvous.cpp and host_rendezvous_large.cpp: every schedule runs to the
// end on the host backend — one thread per rank, rendezvous channels, so a wrong transfer
// order would hang (the timeout turns a hang into a failure) — every rank calls its passes
// in list order, and every boundary a pass reads holds what its producer wrote.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "pipesched/host/executor.hpp"
#include "plan_support.hpp"

namespace plan_test {

template <class S> void run_checked() {
  pipesched::table const t = S::make();
  REQUIRE(t.ok());
  pipesched::host::options o;
  o.slot_bytes = stamp_bytes;
  o.timeout = std::chrono::seconds(20);
  pipesched::host::executor<S> ex(o);
  for (int iteration = 0; iteration < 2; ++iteration) {
    std::vector<checking_functor> fs(static_cast<std::size_t>(S::ranks));
    ex.run(fs);
    for (int r = 0; r < S::ranks; ++r) {
      auto const& f = fs[static_cast<std::size_t>(r)];
      INFO(label<S>(), " rank ", r, ": ", f.first_problem);
      CHECK(f.mismatches == 0);
      std::vector<pipesched::action> compute;
      for (pipesched::action a : t.lists[static_cast<std::size_t>(r)])
        if (pipesched::is_compute(a.kind)) compute.push_back(pipesched::make_action(a.kind, a.stage, a.mb, a.chunk));
      REQUIRE(f.calls == static_cast<int>(compute.size()));
      for (std::size_t i = 0; i < compute.size(); ++i) CHECK(f.order[i] == compute[i]);
    }
  }
}

template <int P, int M> void run_all() {
  for_each_type(training_schedules<P, M>{}, []<class S>(S*) {
    SUBCASE(label<S>().c_str()) { run_checked<S>(); }
  });
}

} // namespace plan_test
