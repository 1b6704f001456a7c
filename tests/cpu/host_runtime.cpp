// Schedules chosen at run time on the host backend: every registered schedule, built with
// make_schedule at run time (and one read back from its CSV), runs through
// host::runtime_executor with the very stage functor the compiled tests use (it reads the
// step's fields through its step argument), and the MLP trains to the last bit of the
// sequential reference. A table that fails verification never runs (schedule_error with the
// verification's sentence); a functor that lacks a member the table calls is refused before
// anything runs.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "pipesched/analysis/csv.hpp"
#include "pipesched/host/executor.hpp"
#include "pipesched/schedules/registry.hpp"
#include "plan_mlp.hpp"

using namespace pipesched;

namespace {

/// Trains the MLP with table t at run time, bit-exact to the sequential reference. A table
/// whose stages are two copies of the model's (DualPipe: `mirrored`) runs a model of half as
/// many stages through mlp::copies_of_model_stages.
template <class Functor> void train_exact_with(table const& t, std::string const& name, int model_stages) {
  constexpr int steps = 3;
  runtime_schedule const sched(t);
  mlp::config c;
  c.layers = 12;
  c.microbatches = sched.microbatches;
  c.stages = model_stages;
  mlp::model reference(c), piped(c);
  host::options o;
  o.slot_bytes = piped.boundary_bytes();
  host::runtime_executor ex(sched, o);
  std::vector<Functor> fs(static_cast<std::size_t>(sched.ranks));
  for (auto& f : fs) {
    f.net = &piped;
    if constexpr (requires { f.model_stages; }) f.model_stages = model_stages;
  }
  for (int step = 0; step < steps; ++step) {
    double const want = reference.reference_step(t.split_backward);
    ex.run(fs);
    double const got = piped.apply_all();
    INFO(name, " step ", step);
    CHECK(got == want); // to the last bit
  }
  CHECK(piped.stale_inputs() == 0);
  CHECK(mlp::max_relative_difference(piped, reference, 0, c.layers) == 0.0);
}

void train_exact(table const& t, std::string const& name, bool mirrored = false) {
  if (mirrored) train_exact_with<mlp::copies_of_model_stages<mlp::stage_functor>>(t, name, t.stages / 2);
  else train_exact_with<mlp::stage_functor>(t, name, t.stages);
}

} // namespace

TEST_CASE("host.runtime.every_registered_schedule") {
  for (auto const& e : schedule_registry)
    for (auto [p, m] : {std::pair{4, 8}, std::pair{3, 5}, std::pair{1, 2}}) {
      params pr{p, m};
      if (e.check(pr) || e.name == std::string_view("forward-only")) continue; // forward-only trains nothing
      table const t = make_schedule(e.name, pr);
      REQUIRE(t.ok());
      // dualpipe's table stages p..2p-1 are copies of the model's stages 0..p-1
      bool const mirrored = e.name == std::string_view("dualpipe");
      REQUIRE((mirrored || t.paths.empty())); // no other registered family routes
      std::string const name = std::string(e.name) + " p" + std::to_string(p) + " m" + std::to_string(m);
      SUBCASE(name.c_str()) { train_exact(t, name, mirrored); }
    }
}

TEST_CASE("host.runtime.imported_csv") {
  // a table written as CSV (compute actions) and read back: lowered and verified at run time
  table const t = make_schedule("zb-v", params{4, 8});
  table const back = from_csv(to_csv(t));
  REQUIRE(back.ok());
  train_exact(back, "zb-v from CSV");
  // DualPipe's CSV read back with its routes (ascending: each micro-batch through the stages
  // of its F cells), and with the SEND/RECV cells of its lowered table: both train exactly
  table const dual = make_schedule("dualpipe", params{4, 8});
  table const routed = from_csv(to_csv(dual), {.routes = csv_routes::ascending});
  REQUIRE_MESSAGE(routed.ok(), to_string(routed.error));
  train_exact(routed, "dualpipe from CSV", true);
  table const lowered = from_csv(to_csv(lower(dual), csv_format::compute_comms), {.routes = csv_routes::ascending});
  REQUIRE_MESSAGE(lowered.ok(), to_string(lowered.error));
  REQUIRE(lowered.lowered);
  train_exact(lowered, "dualpipe from CSV with transfers", true);
}

TEST_CASE("host.runtime.refuses_invalid_tables") {
  // rank 1 runs micro-batch 1 first, which rank 0 sends only after micro-batch 0's backward
  table const cyclic = from_csv("0F0,0B0,0F1,0B1\n1F1,1F0,1B0,1B1");
  REQUIRE(cyclic.ok());
  std::string what;
  try {
    runtime_schedule s(cyclic);
  } catch (schedule_error const& e) {
    what = e.what();
    CHECK(e.where.code == errc::cyclic_wait);
  }
  CHECK(what.find("the ranks' orders wait on each other in a cycle: the schedule would hang") != std::string::npos);
  CHECK(what.find("rank ") != std::string::npos);
  // a missing pass
  CHECK_THROWS_AS(runtime_schedule(from_csv("0F0,0F1,0B0,0B1\n1F0,1B0,1F1")), schedule_error);
  // an unknown name
  CHECK_THROWS_AS(runtime_schedule(make_schedule("no-such-schedule", params{4, 8})), schedule_error);
}

namespace {
struct fused_only {
  int calls = 0;
  template <class St> void forward(St const&, io const&) { ++calls; }
  template <class St> void backward(St const&, io const&) { ++calls; }
};
} // namespace

TEST_CASE("host.runtime.functor_members_checked_first") {
  // ZB-H1 splits the backward: a functor without backward_input is refused before any pass
  runtime_schedule const sched(make_schedule("zb-h1", params{4, 8}));
  host::runtime_executor ex(sched, host::options{16});
  std::vector<fused_only> fs(4);
  CHECK_THROWS_WITH_AS(ex.run(fs),
                       "pipesched: the stage functor has no member `template <class Step> void backward_input(Step, "
                       "pipesched::io const&)` accepting a pipesched::runtime_step, which this run-time schedule calls",
                       std::invalid_argument);
  for (auto const& f : fs) CHECK(f.calls == 0);
  std::vector<fused_only> three(3);
  CHECK_THROWS_AS(ex.run(three), std::invalid_argument);
}
