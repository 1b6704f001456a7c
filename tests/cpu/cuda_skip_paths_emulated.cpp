// Skip paths (SkipPipe: each micro-batch visits its own subset of the stages, in an order of
// its own) on both CUDA streams executors, on the CPU against the host emulation of CUDA's
// stream semantics (tests/support/emulated_cuda.hpp; random interleavings of the streams):
// the compile-time executor on skip schedule types (cost-aware and rotation routes, memory
// limits, given routes with swapped stages, the round-trip layout) and the run-time executor
// on skip tables made at run time (make_skip, with and without extra slots, one rank per
// device, round trip). Every boundary a pass reads is the one its route's neighbour wrote
// this iteration — the stage before on the micro-batch's route for an activation, the stage
// after for a gradient (salted stamps; the expected stage comes from the table's routes, not
// from the executor) — and every rank runs its passes in its list order.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "support/emulated_cuda.hpp"
#include "support/emulated_cuda_checks.hpp"

#include "pipesched/cuda/basic_executor.hpp"
#include "pipesched/cuda/basic_runtime_executor.hpp"
#include "pipesched/schedules/skip_paths.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

/// Two iterations of `ex` with route checkers over `t`'s routes: stamps intact, passes in
/// list order; returns the functors' calls in all.
template <class Executor, class Table>
int run_checked(Executor& ex, Table const& t, int ranks, std::uint64_t seed, std::string const& name) {
  return emu::check_two_iterations<plan_test::route_checker<Table>>(ex, t, ranks, seed, name,
                                                                   [&](auto& f) { f.routes = &t; });
}

/// The compile-time executor on skip schedule type S, several interleavings.
template <class S> void compile_time(std::string const& name) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    emu::reset(seed);
    cuda::options o;
    o.slot_bytes = plan_test::stamp_bytes;
    cuda::basic_executor<S, emu::runtime> ex(o);
    CHECK(run_checked(ex, S::lowered, S::ranks, seed, name) > 0);
    CHECK(emu::the().copies_run > 0);
  }
}

/// The run-time executor on a skip table made at run time.
void run_time(skip_config const& c, int extra_slots, bool per_device, std::string const& name) {
  table const compute = make_skip(c);
  REQUIRE_MESSAGE(compute.ok(), to_string(compute.error));
  runtime_schedule const sched(compute, sim_costs{c.costs}, extra_slots);
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    emu::reset(seed);
    cuda::options o;
    o.slot_bytes = plan_test::stamp_bytes;
    if (per_device)
      for (int r = 0; r < sched.ranks; ++r) o.devices.push_back(r);
    cuda::basic_runtime_executor<emu::runtime> ex(sched, o);
    CHECK(run_checked(ex, sched.lowered(), sched.ranks, seed, name) > 0);
    if (per_device) CHECK(emu::the().peer_copies == emu::the().copies_run);
  }
}

using set_swaps = path_set<5, path<0, 2, 1, 4>, path<0, 3, 2, 4>, path<0, 1, 3, 4>>;

} // namespace

TEST_CASE("cuda.skip.compile_time.cost_aware.s6.k4.m8") {
  compile_time<skip_paths<4, stages<6>, microbatches<8>>>("skip s6 k4 m8");
}
TEST_CASE("cuda.skip.compile_time.rotation.s6.k4.m4") {
  compile_time<schedule<skip_paths_family<4, 0, path_layout::last, path_method::rotation>, stages<6>, microbatches<4>>>(
      "skip rotation s6 k4 m4");
}
TEST_CASE("cuda.skip.compile_time.memory2.s5.k3.m6") {
  compile_time<schedule<skip_paths_family<3, 2>, stages<5>, microbatches<6>>>("skip memory 2 s5 k3 m6");
}
TEST_CASE("cuda.skip.compile_time.given_swaps.s5.m3") {
  // routes that visit stages out of order: micro-batch 0 goes 0 -> 2 -> 1 -> 4
  compile_time<skip_given<set_swaps, stages<5>, microbatches<3>>>("skip given swaps s5 m3");
}

TEST_CASE("cuda.skip.compile_time.round_trip.s6.k4.m8.memory2") {
  // the head (table stage 6) on rank 0: every route's last hop goes back to rank 0
  using S = schedule<skip_paths_family<4, 2, path_layout::round_trip>, stages<6>, microbatches<8>>;
  static_assert(S::ranks == 6);
  compile_time<S>("skip round trip s6 k4 m8 memory 2");
}

TEST_CASE("cuda.skip.run_time") {
  skip_config c;
  c.stages = 6;
  c.keep = 4;
  c.microbatches = 8;
  run_time(c, 0, false, "make_skip s6 k4 m8");
  run_time(c, 1, false, "make_skip s6 k4 m8, one extra slot");
  run_time(c, 0, true, "make_skip s6 k4 m8, one rank per device");
  c.layout = path_layout::round_trip;
  run_time(c, 0, false, "make_skip s6 k4 m8, round trip");
  run_time(c, 0, true, "make_skip s6 k4 m8, round trip, one rank per device");
  c.layout = path_layout::last;
  c.stages = 8;
  c.keep = 5;
  c.microbatches = 12;
  c.memory = 2;
  run_time(c, 0, false, "make_skip s8 k5 m12 memory 2");
}

TEST_CASE("cuda.skip.the_checker_sees_the_routes") {
  // the test of the test: a checker that expects the plain neighbours (s - 1, s + 1) instead
  // of the routes' finds stale boundaries on a skip schedule
  using S = skip_paths<4, stages<6>, microbatches<8>>;
  emu::reset(3);
  cuda::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  cuda::basic_executor<S, emu::runtime> ex(o);
  std::vector<plan_test::checking_functor> fs(static_cast<std::size_t>(S::ranks));
  std::vector<emu::deferred<plan_test::checking_functor>> kernels;
  for (auto& f : fs) kernels.push_back({&f});
  ex.run(kernels);
  int mismatches = 0;
  for (auto const& f : fs) mismatches += f.mismatches;
  CHECK(mismatches > 0);
}
