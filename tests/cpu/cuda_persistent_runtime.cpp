// The persistent kernel for schedules chosen at run time, on the CPU:
// pipesched::cuda::run_rank_block_runtime — the loop each block of persistent_runtime_executor's
// kernel runs over its rank's actions in device memory — on host threads over std::atomic_ref
// counters, with random yields and sleeps (tests/support/persistent_host.hpp), the same harness
// and checks as the compile-time kernel (persistent_checks.hpp). Every registered schedule
// (make_schedule, p = 4 and 3), skip-path tables made at run time: every boundary a pass reads
// is the one its producer wrote this iteration (salted stamps), passes in list order, every
// counter at exactly n times its per-iteration count recounted from the table, one state array
// and one per rank; overlapped pairs as one forward_backward call; an MLP trained to the last
// bit of the sequential reference; a failing functor ends every thread with rank, pass and
// micro-batch, and the next iteration runs; a missing member is refused before anything runs;
// a consumer that skips its waits is caught.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/persistent_host.hpp"

#include "pipesched/schedules/registry.hpp"
#include "pipesched/schedules/skip_paths.hpp"
#include "persistent_checks.hpp"
#include "plan_mlp.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

using checker = plan_test::checking_functor;
using straight = persistent_checks::checking_device_functor<checker>;
using pairing = persistent_checks::pairing_device_functor<checker>;

bool has_pairs(table const& t) {
  for (auto const& l : t.lists)
    for (action const& a : l)
      if (overlaps_next(a)) return true;
  return false;
}

emu_persistent::host_settings settings_of(std::uint64_t seed, std::vector<int> groups, bool separate) {
  emu_persistent::host_settings st;
  st.slot_bytes = plan_test::stamp_bytes;
  st.groups = std::move(groups);
  st.seed = seed;
  st.separate_memories = separate;
  return st;
}

/// Runs sched on host threads (blocks per rank: groups) and checks it (run_checked_on); a
/// table with overlapped pairs runs once with forward_backward and once without.
void run_runtime(runtime_schedule const& sched, std::string const& label, std::uint64_t seed, std::vector<int> groups,
                 bool separate, int slow_rank = -1) {
  {
    emu_persistent::host_persistent_runtime ex(sched, settings_of(seed, groups, separate));
    persistent_checks::run_checked_on<straight>(ex, sched.lowered(), label, seed, groups, slow_rank, 3);
  }
  if (has_pairs(sched.lowered())) {
    emu_persistent::host_persistent_runtime ex(sched, settings_of(seed + 1, groups, separate));
    persistent_checks::run_checked_on<pairing>(ex, sched.lowered(), label + " (forward_backward)", seed + 1, groups,
                                               slow_rank, 3);
  }
}

/// Blocks per rank for p ranks: 1, 2, 3, 1, 2, ...
std::vector<int> mixed_groups(int p) {
  std::vector<int> g;
  for (int r = 0; r < p; ++r) g.push_back(1 + r % 3);
  return g;
}

} // namespace

TEST_CASE("cuda.persistent.runtime.program_equals_compile_time") {
  // The run-time program of a schedule type's table holds what the compile-time kernel folds
  // into constants: the same hand-offs and per-slot counts (one derivation, two storages),
  // each action's global slots, boundary keys, per-iteration count and receiver
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) {
    using P = cuda::persistent_protocol<S>;
    runtime_schedule const sched(S::make());
    cuda::runtime_persistent_program const rp(sched);
    INFO(plan_test::label<S>());
    REQUIRE(rp.slots() == P::slots);
    REQUIRE(rp.actions.size() == P::actions);
    for (std::size_t g = 0; g < P::slots; ++g) {
      CHECK(rp.tables.occupancies[g] == P::tables.occupancies[g]);
      CHECK(rp.tables.fills[g] == P::tables.fills[g]);
      CHECK(rp.tables.pushers[g] == P::tables.pushers[g]);
    }
    persistent_checks::slot_counts const want = persistent_checks::recount(sched.lowered()); // independent recount
    for (std::size_t g = 0; g < want.holds.size(); ++g) {
      CHECK(rp.tables.occupancies[g] == want.holds[g]);
      CHECK(rp.tables.fills[g] == want.recvs[g]);
      CHECK(rp.tables.pushers[g] == want.senders[g]);
    }
    for (int r = 0; r < S::ranks; ++r)
      for (std::size_t i = 0; i < rp.size(r); ++i) {
        INFO("rank ", r, " action ", i);
        cuda::persistent_action const& a = rp.at(r, i);
        cuda::hand_off const h = P::tables.at[S::lowered.offset[r] + i];
        action const& t = sched.at(static_cast<std::size_t>(r), i);
        CHECK(a.h.push_slot == h.push_slot);
        CHECK(a.h.push_after_frees == h.push_after_frees);
        CHECK(a.h.pull_slot == h.pull_slot);
        CHECK(a.h.pull_after_fills == h.pull_after_fills);
        for (int k = 0; k < 3; ++k) {
          CHECK(a.h.frees[k] == h.frees[k]);
          CHECK(a.pushers[k] == (h.frees[k] >= 0 ? P::tables.pushers[h.frees[k]] : 0));
        }
        std::uint16_t const local[3] = {t.in, t.out, t.aux};
        field const fields[3] = {field::in, field::out, field::aux};
        for (int k = 0; k < 3; ++k) {
          CHECK(a.slot[k] == (local[k] == no_slot ? -1 : static_cast<int>(P::slot_base(r)) + local[k]));
          CHECK(a.key[k] == boundary_key(S::lowered, S::lowered.at(static_cast<std::size_t>(r), i), fields[k]));
        }
        if (is_recv(t.kind)) CHECK(a.per == P::tables.fills[h.pull_slot]);
        if (is_send(t.kind)) CHECK(a.per == P::tables.occupancies[h.push_slot]);
        CHECK(a.receiver == (is_send(t.kind) ? t.peer : -1));
        CHECK(a.what == action_record::of(a.step).bits);
        CHECK(a.step.kind == t.kind);
        CHECK(a.step.mb == t.mb);
      }
  });
}

TEST_CASE("cuda.persistent.runtime.every_registered_schedule") {
  // every schedule of the registry at p = 4, m = 8 (one block per rank, one state array; mixed
  // groups, one array per rank) and at p = 3, m = 6 where it exists
  int ran = 0;
  std::uint64_t seed = 100;
  for (auto const& e : schedule_registry) {
    std::string const name(e.name);
    SUBCASE(name.c_str()) {
      table const t = make_schedule(name, params{4, 8});
      REQUIRE_MESSAGE(t.ok(), name, ": ", to_string(t.error));
      runtime_schedule const sched(t);
      run_runtime(sched, name + " p4 m8", seed, {}, false);
      run_runtime(sched, name + " p4 m8 separate", seed + 10, mixed_groups(4), true);
      table const t3 = make_schedule(name, params{3, 6});
      if (t3.ok()) run_runtime(runtime_schedule(t3), name + " p3 m6", seed + 20, mixed_groups(3), false);
      ++ran;
    }
    seed += 100;
  }
  CHECK(ran >= 1);
}

TEST_CASE("cuda.persistent.runtime.extra_slots_and_slow_rank") {
  // a round robin of extra slots (more boundaries per slot than the peak's assignment); a
  // slow rank: slot reuse waits for the frees, not timing
  params pr{4, 8};
  pr.extra_slots = 1;
  run_runtime(runtime_schedule(make_schedule("1f1b", pr)), "1f1b extra slot", 301, mixed_groups(4), true);
  run_runtime(runtime_schedule(make_schedule("zb-v", params{4, 8})), "zb-v slow rank 0", 302, {}, true, 0);
  run_runtime(runtime_schedule(make_schedule("dualpipe-v", params{4, 8})), "dualpipe-v slow rank 2", 303, {2, 1, 2, 1},
              false, 2);
}

TEST_CASE("cuda.persistent.runtime.skip_paths") {
  // skip-path tables made at run time (routes that skip stages; a round trip to rank 0; a
  // memory cap): the stamps are checked against each micro-batch's route
  using route_checker = plan_test::route_checker<table>;
  using functor = persistent_checks::checking_device_functor<route_checker>;
  auto run = [](skip_config const& c, int extra, std::string const& label, std::uint64_t seed) {
    table const compute = make_skip(c);
    REQUIRE_MESSAGE(compute.ok(), to_string(compute.error));
    runtime_schedule const sched(compute, sim_costs{c.costs}, extra);
    for (bool const separate : {false, true}) {
      std::vector<int> const groups = separate ? mixed_groups(sched.ranks) : std::vector<int>{};
      emu_persistent::host_persistent_runtime ex(sched, settings_of(seed, groups, separate));
      persistent_checks::run_checked_on<functor>(ex, sched.lowered(), label, seed, groups, -1, 3, &sched.lowered());
    }
  };
  skip_config c;
  c.stages = 6;
  c.keep = 4;
  c.microbatches = 8;
  run(c, 0, "make_skip s6 k4 m8", 401);
  run(c, 1, "make_skip s6 k4 m8, one extra slot", 402);
  c.layout = path_layout::round_trip;
  run(c, 0, "make_skip s6 k4 m8, round trip", 403);
  c.layout = path_layout::last;
  c.stages = 8;
  c.keep = 5;
  c.microbatches = 12;
  c.memory = 2;
  run(c, 0, "make_skip s8 k5 m12 memory 2", 404);
}

TEST_CASE("cuda.persistent.runtime.mlp_equals_sequential_reference") {
  // the MLP trained through the run-time kernel equals the sequential reference to the last
  // bit (the same arithmetic in the same order), every registered schedule on one model
  // (DualPipe's two copies of the model excepted: its stamps are checked above)
  for (auto const& e : schedule_registry) {
    std::string const name(e.name);
    if (name == "dualpipe" || name == "forward-only") continue;
    SUBCASE(name.c_str()) {
      table const t = make_schedule(name, params{4, 8});
      REQUIRE(t.ok());
      runtime_schedule const sched(t);
      mlp::config c;
      c.layers = 12;
      c.microbatches = sched.microbatches;
      c.stages = sched.stages;
      mlp::model reference(c), piped(c);
      emu_persistent::host_settings st;
      st.slot_bytes = piped.boundary_bytes();
      st.groups = mixed_groups(sched.ranks);
      st.seed = 501;
      emu_persistent::host_persistent_runtime ex(sched, st);
      std::vector<persistent_checks::mlp_device_functor> fs(
          static_cast<std::size_t>(sched.ranks), persistent_checks::mlp_device_functor{mlp::stage_functor{&piped}});
      for (int step = 0; step < 3; ++step) {
        double const want = reference.reference_step(t.split_backward);
        ex.run(fs);
        double const got = piped.apply_all();
        INFO(name, " step ", step);
        CHECK(got == want);
      }
      CHECK(piped.stale_inputs() == 0);
      CHECK(mlp::max_relative_difference(piped, reference, 0, c.layers) == 0.0);
    }
  }
}

namespace {

/// Fails (returns false) at one pass of its rank; else checks and stamps as straight does.
struct failing_functor {
  checker* c = nullptr;
  op kind = op::backward;
  int stage = -1, mb = -1;
  bool fail = true;
  bool forward(runtime_step s, io const& x, emu_persistent::group const& g) { return pass(s, x, g); }
  bool backward(runtime_step s, io const& x, emu_persistent::group const& g) { return pass(s, x, g); }
  bool backward_input(runtime_step s, io const& x, emu_persistent::group const& g) { return pass(s, x, g); }
  bool backward_weight(runtime_step s, io const& x, emu_persistent::group const& g) { return pass(s, x, g); }

private:
  bool pass(runtime_step s, io const& x, emu_persistent::group const& g) {
    if (fail && s.kind == kind && s.stage == stage && s.mb == mb) return false;
    if (g.block_rank() == 0) c->on_pass(s, x);
    return true;
  }
};

/// A functor with a forward only.
struct forward_only_functor {
  void forward(runtime_step, io const&, emu_persistent::group const&) {}
};

} // namespace

TEST_CASE("cuda.persistent.runtime.functor_failure") {
  // 1F1B, p = 4, m = 8: B of stage 2, micro-batch 3 fails on rank 2. Every block thread
  // returns (no hang); the message names the rank and the pass; the state is reset and the
  // next iteration runs clean, its counters exactly one iteration's
  for (bool const separate : {false, true}) {
    INFO("separate memories: ", separate);
    runtime_schedule const sched(make_schedule("1f1b", params{4, 8}));
    std::vector<int> const groups{1, 2, 2, 1};
    emu_persistent::host_persistent_runtime ex(sched, settings_of(601, groups, separate));
    std::vector<checker> cs(4);
    std::vector<failing_functor> fs(4);
    for (std::size_t r = 0; r < 4; ++r) fs[r] = {&cs[r], op::backward, 2, 3};
    std::string message;
    auto done = std::async(std::launch::async, [&] {
      try {
        ex.run(fs);
      } catch (std::runtime_error const& e) {
        message = e.what();
      }
    });
    REQUIRE(done.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
    INFO(message);
    CHECK(message.find("rank 2 (B of stage 2, micro-batch 3): the stage functor reported a failure") != std::string::npos);
    for (int r = 0; r < 4; ++r) CHECK(ex.word(ex.layout().epoch(r), r) == 0); // reset
    persistent_checks::run_checked_on<straight>(ex, sched.lowered(), "1f1b after a failure", 602, groups, -1, 2);
  }
}

TEST_CASE("cuda.persistent.runtime.missing_member_refused") {
  // a functor without the members a table calls is refused before anything runs, naming the
  // member; the same functor runs a forward-only table
  runtime_schedule const zb(make_schedule("zb-h1", params{4, 8}));
  emu_persistent::host_persistent_runtime ex(zb, settings_of(701, {}, false));
  std::vector<forward_only_functor> fs(4);
  CHECK_THROWS_WITH_AS(ex.run(fs), doctest::Contains("no member `template <class Step> __device__ void backward_input("),
                       std::invalid_argument);
  CHECK(ex.word(ex.layout().epoch(0)) == 0); // nothing ran
  runtime_schedule const fo(make_schedule("forward-only", params{4, 8}));
  emu_persistent::host_persistent_runtime fx(fo, settings_of(702, {}, false));
  fx.run(fs);
  for (int r = 0; r < 4; ++r) CHECK(fx.word(fx.layout().epoch(r)) == 1);
}

TEST_CASE("cuda.persistent.runtime.test_of_the_test") {
  // the checks catch a consumer that does not wait: with every RECV's fill target lowered to
  // 0 and the senders' rank slow, passes read boundaries not yet pushed (stale stamps)
  runtime_schedule const sched(make_schedule("1f1b", params{4, 8}));
  emu_persistent::host_persistent_runtime ex(sched, settings_of(801, {}, false));
  ex.mutate([](cuda::persistent_action& a) {
    if (is_recv(a.step.kind)) {
      a.h.pull_after_fills = 0;
      a.per = 0;
    }
  });
  std::vector<checker> cs(4);
  std::vector<straight> fs(4);
  for (std::size_t r = 0; r < 4; ++r) {
    fs[r].c = &cs[r];
    fs[r].slow_us = r == 0 ? 2000 : 0;
  }
  ex.run(fs);
  int mismatches = 0;
  for (checker const& c : cs) mismatches += c.mismatches;
  CHECK(mismatches > 0);
}
