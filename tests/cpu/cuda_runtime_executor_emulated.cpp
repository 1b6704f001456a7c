// The CUDA executor for run-time tables on the CPU: pipesched::cuda::basic_runtime_executor
// bound to the host emulation of CUDA's stream semantics (tests/support/emulated_cuda.hpp),
// whose scheduler interleaves the streams' work at random. Every registered schedule, made by
// make_schedule at a few sizes (and one read back from its CSV), runs with several
// interleavings: every boundary a pass reads is the one its producer wrote this iteration
// (salted stamps) and every rank's passes run in its list order; an MLP trained through it
// equals, to the last bit, the same MLP trained by host::runtime_executor on the same table
// and by the compile-time cuda executor on the same schedule type (whose stream program the
// run-time derivation reproduces op for op). Extra slots, one rank per device (peer copies),
// graph replay equal to eager execution; a throwing functor or a failing copy stops the
// iteration, names rank and action, and the executor runs again; a table whose slots are
// clobbered is refused at construction with the check's sentence.
#include <doctest/doctest.h>

#include <atomic>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/broken_tables.hpp"
#include "support/emulated_cuda.hpp"
#include "support/emulated_cuda_checks.hpp"
#include "support/registered_tables.hpp"

#include "pipesched/analysis/csv.hpp"
#include "pipesched/cuda/basic_executor.hpp"
#include "pipesched/cuda/basic_runtime_executor.hpp"
#include "pipesched/host/executor.hpp"
#include "pipesched/schedules/registry.hpp"
#include "plan_mlp.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

using emu_runtime_executor = cuda::basic_runtime_executor<emu::runtime>;
using checker = plan_test::checking_functor;

using registered_tables::named_table;

/// Two iterations with the checking functor: stamps intact, passes in list order.
void run_checked(runtime_schedule const& sched, std::string const& name, std::uint64_t seed, cuda::options o = {}) {
  emu::reset(seed);
  o.slot_bytes = plan_test::stamp_bytes;
  emu_runtime_executor ex(sched, o);
  emu::check_two_iterations(ex, sched.lowered(), sched.ranks, seed, name);
}

/// Trains the MLP 3 steps with the CUDA runtime executor and with host::runtime_executor on
/// the same table: equal losses and weights, to the last bit (the same arithmetic in the same
/// per-stage order; only where the passes run differs). F as in host_runtime.cpp. Returns the
/// calls of F's forward_backward on the streams (when F counts them; the host's must match).
template <class F> int train_against_host(runtime_schedule const& sched, std::string const& name, int model_stages,
                                           std::uint64_t seed) {
  emu::reset(seed);
  mlp::config c;
  c.layers = 12;
  c.microbatches = sched.microbatches;
  c.stages = model_stages;
  mlp::model on_host(c), on_streams(c);
  host::runtime_executor hx(sched, host::options{on_host.boundary_bytes()});
  cuda::options o;
  o.slot_bytes = on_streams.boundary_bytes();
  emu_runtime_executor cx(sched, o);
  std::vector<F> hf(static_cast<std::size_t>(sched.ranks)), cf(static_cast<std::size_t>(sched.ranks));
  for (auto& f : hf) f.net = &on_host;
  for (auto& f : cf) f.net = &on_streams;
  if constexpr (requires(F f) { f.model_stages; }) {
    for (auto& f : hf) f.model_stages = model_stages;
    for (auto& f : cf) f.model_stages = model_stages;
  }
  std::atomic<int> host_pairs{0}, stream_pairs{0};
  if constexpr (requires(F f) { f.pairs = &host_pairs; }) {
    for (auto& f : hf) f.pairs = &host_pairs;
    for (auto& f : cf) f.pairs = &stream_pairs;
  }
  std::vector<emu::deferred<F>> kernels;
  for (auto& f : cf) kernels.push_back({&f});
  for (int step = 0; step < 3; ++step) {
    hx.run(hf);
    double const want = on_host.apply_all();
    cx.run(kernels);
    double const got = on_streams.apply_all();
    INFO(name, " step ", step);
    CHECK(got == want); // to the last bit
  }
  CHECK(on_streams.stale_inputs() == 0);
  CHECK(mlp::max_relative_difference(on_streams, on_host, 0, c.layers) == 0.0);
  CHECK(stream_pairs.load() == host_pairs.load());
  return stream_pairs.load();
}

void train_against_host(named_table const& nt, std::uint64_t seed) {
  runtime_schedule const sched(nt.t);
  if (nt.mirrored)
    train_against_host<mlp::copies_of_model_stages<mlp::stage_functor>>(sched, nt.name, sched.stages / 2, seed);
  else
    train_against_host<mlp::stage_functor>(sched, nt.name, sched.stages, seed);
}

} // namespace

TEST_CASE("cuda.runtime.emulated.every_registered_schedule") {
  // stamps and list order under random interleavings, and the MLP equal to the host backend's
  std::vector<named_table> const all = registered_tables::every_family({{4, 8}, {3, 5}, {2, 4}});
  REQUIRE(all.size() >= 3 * 12); // every family accepts at least these sizes but a few
  for (named_table const& nt : all) {
    SUBCASE(nt.name.c_str()) {
      REQUIRE(nt.t.ok());
      runtime_schedule const sched(nt.t);
      for (std::uint64_t seed = 1; seed <= 3; ++seed) run_checked(sched, nt.name, seed);
      if (!nt.t.forward_only) train_against_host(nt, 7);
    }
  }
}

TEST_CASE("cuda.runtime.emulated.forward_backward_pairs") {
  // a functor with forward_backward gets every overlapped pair of DualPipe-V and DualPipe as
  // one call on the streams, as on the host backend (3 steps x the table's pairs), and the
  // MLP equals the host backend's to the last bit
  using F = mlp::pair_functor<std::atomic<int>>;
  for (char const* name : {"dualpipe-v", "dualpipe"}) {
    INFO(name);
    runtime_schedule const sched(make_schedule(name, params{4, 8}));
    int const pairs = plan_test::overlapped_pairs(sched.lowered());
    REQUIRE(pairs > 0);
    bool const mirrored = std::string(name) == "dualpipe";
    int const calls = mirrored ? train_against_host<mlp::copies_of_model_stages<F>>(sched, name, sched.stages / 2, 9)
                               : train_against_host<F>(sched, name, sched.stages, 9);
    CHECK(calls == 3 * pairs);
  }
}

TEST_CASE("cuda.runtime.emulated.imported_csv") {
  // a table written as CSV (compute actions only) and read back: lowered, verified, its
  // stream program derived and checked, all at run time
  table const back = from_csv(to_csv(make_schedule("zb-v", params{4, 8})));
  REQUIRE(back.ok());
  runtime_schedule const sched(back);
  run_checked(sched, "zb-v from CSV", 5);
  train_against_host(named_table{"zb-v from CSV", back}, 6);
}

TEST_CASE("cuda.runtime.emulated.one_rank_per_device") {
  // options::devices: rank r on device r; every boundary crosses by a peer copy
  runtime_schedule const sched(make_schedule("interleaved", params{4, 8, 2}));
  emu::check_one_rank_per_device(
      [&sched](cuda::options const& o) { run_checked(sched, "interleaved-1f1b on 4 devices", 21, o); },
      [&sched](cuda::options const& o) { return emu_runtime_executor(sched, o); });
}

TEST_CASE("cuda.runtime.emulated.extra_slots") {
  // double buffering chosen at run time: two extra slots per rank (a round robin); the
  // derived program and the executor need nothing else
  params with{4, 8};
  with.extra_slots = 2;
  runtime_schedule const base(make_schedule("zb-h2", params{4, 8})), sched(make_schedule("zb-h2", with));
  for (int r = 0; r < 4; ++r) CHECK(sched.slots(r) == base.slots(r) + 2);
  for (std::uint64_t seed = 91; seed <= 93; ++seed) run_checked(sched, "zb-h2 with 2 extra slots", seed);
}

namespace {

/// The compile-time executor and the run-time one on S's own table: the run-time derivation
/// (with S's costs) gives the program the compiler derived, op for op, and an MLP trained
/// through each equals the other's to the last bit.
template <class S> void same_as_compile_time(std::uint64_t seed) {
  using program = cuda::stream_program_of<S, cuda::transfer_mode::copy>;
  runtime_schedule const sched(thaw(S::lowered));
  cuda::stream_program const compiled = program::make();
  cuda::stream_program const derived = cuda::checked_stream_program(sched.lowered(), S::parameters.cost);
  CHECK(derived.ops.size() == compiled.ops.size());
  bool same = derived.ops.size() == compiled.ops.size() && derived.event_base.size() == compiled.event_base.size();
  for (std::size_t k = 0; same && k < derived.ops.size(); ++k) same = derived.ops[k] == compiled.ops[k];
  for (std::size_t k = 0; same && k < derived.event_base.size(); ++k) same = derived.event_base[k] == compiled.event_base[k];
  CHECK(same);

  emu::reset(seed);
  mlp::config c;
  c.layers = 12;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model a(c), b(c);
  cuda::options o;
  o.slot_bytes = a.boundary_bytes();
  cuda::basic_executor<S, emu::runtime> compiled_ex(o);
  emu_runtime_executor runtime_ex(sched, o, S::parameters.cost);
  mlp::stage_functor fa{&a}, fb{&b};
  std::vector<emu::deferred<mlp::stage_functor>> ka(S::ranks, {&fa}), kb(S::ranks, {&fb});
  for (int step = 0; step < 3; ++step) {
    compiled_ex.run(ka);
    double const want = a.apply_all();
    runtime_ex.run(kb);
    double const got = b.apply_all();
    INFO(plan_test::label<S>(), " step ", step);
    CHECK(got == want);
  }
  CHECK(mlp::max_relative_difference(a, b, 0, c.layers) == 0.0);
}

} // namespace

TEST_CASE("cuda.runtime.emulated.same_as_compile_time") {
  same_as_compile_time<one_f_one_b<stages<4>, microbatches<8>>>(101);
  same_as_compile_time<interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>>(102);
  same_as_compile_time<zb_v<stages<4>, microbatches<8>>>(103);
  same_as_compile_time<zb_h2<stages<3>, microbatches<5>>>(104);
}

TEST_CASE("cuda.runtime.emulated.graph_replay_equals_eager") {
  // one iteration captured and replayed 3 times (the optimizer step between replays) equals
  // 3 eager iterations to the last bit; the capture itself runs nothing
  runtime_schedule const sched(make_schedule("zb-h1", params{4, 8}));
  emu::check_graph_replay_equals_eager(41, [&sched](cuda::options const& o) { return emu_runtime_executor(sched, o); });
}

TEST_CASE("cuda.runtime.emulated.throwing_functor") {
  // rank 2 throws at its 6th pass: run() rethrows the functor's own exception and records
  // rank and action; every stream drained; the next run is clean
  table const t = make_schedule("1f1b", params{4, 8});
  runtime_schedule const sched(t);
  emu::reset(61);
  emu_runtime_executor ex(sched, cuda::options{plan_test::stamp_bytes});
  emu::check_throwing_functor(ex, t);
}

TEST_CASE("cuda.runtime.emulated.failing_copy") {
  // the 3rd copy fails: cuda::error names the receiving rank, its RECV and the runtime's
  // error string; the streams drain; the next run is clean
  runtime_schedule const sched(make_schedule("1f1b", params{4, 8}));
  emu::reset(71);
  emu_runtime_executor ex(sched, cuda::options{plan_test::stamp_bytes});
  emu::check_failing_copy(ex, 4);
}

namespace {
struct fused_only {
  template <class St> void forward(St const&, io const&) {}
  template <class St> void backward(St const&, io const&) {}
};
} // namespace

TEST_CASE("cuda.runtime.emulated.functors_checked_first") {
  // a functor without a member the table calls, or the wrong number of functors, is refused
  // before anything is issued
  emu::reset(81);
  emu_runtime_executor ex(runtime_schedule(make_schedule("zb-h1", params{4, 8})), cuda::options{16});
  std::uint64_t const before = emu::the().operations_run; // the constructor's slot memsets
  std::vector<fused_only> fs(4);
  CHECK_THROWS_AS(ex.run(fs), std::invalid_argument);
  std::vector<fused_only> three(3);
  CHECK_THROWS_AS(ex.run(three), std::invalid_argument);
  CHECK(emu::the().operations_run == before);
}

using broken_tables::clobber_unread_slot;

TEST_CASE("cuda.runtime.emulated.broken_tables_refused") {
  SUBCASE("a receive clobbers a boundary nothing has read") {
    // runtime_schedule's slot check refuses the table (so no executor is ever made with it);
    // the stream program's own check, which the executor runs, refuses it too
    bool found = false;
    for (char const* name : {"1f1b", "gpipe", "zb-h2", "interleaved"}) {
      table t = make_schedule(name, params{4, 8, 2});
      auto const [r, j] = clobber_unread_slot(t);
      if (r < 0) continue;
      found = true;
      INFO(name, " rank ", r, " action ", j);
      try {
        runtime_schedule const sched(t);
        FAIL("runtime_schedule accepted a clobbered slot");
      } catch (schedule_error const& e) {
        CHECK(e.where.code == errc::slot_mismatch);
        CHECK(e.where.rank == r);
      }
      std::string what;
      try {
        (void)cuda::checked_stream_program(t);
      } catch (schedule_error const& e) {
        what = e.what();
        CHECK(e.where.code == errc::program_malformed);
        CHECK(e.where.rank == r);
        CHECK(e.where.position == j);
      }
      CHECK(what.find("a boundary overwritten before anything read it") != std::string::npos);
      break;
    }
    CHECK(found);
  }
  SUBCASE("a pass reads a slot nothing wrote") {
    // rank 1's first forward reads another slot than the one its receive wrote
    table t = make_schedule("1f1b", params{4, 8});
    auto& list = t.lists[1];
    std::size_t f = 0;
    while (f < list.size() && list[f].kind != op::forward) ++f;
    REQUIRE(f < list.size());
    REQUIRE(t.slot_count[1] >= 2);
    std::uint16_t const wrong = list[f].in == 0 ? 1 : 0;
    bool written = false;
    for (std::size_t i = 0; i < f; ++i) written = written || list[i].out == wrong;
    REQUIRE_FALSE(written);
    list[f].in = wrong;
    try {
      runtime_schedule const sched(t);
      FAIL("runtime_schedule accepted a read of an unwritten slot");
    } catch (schedule_error const& e) {
      CHECK(e.where.code == errc::slot_mismatch);
      CHECK(e.where.rank == 1);
      CHECK(e.where.position == static_cast<int>(f));
    }
    CHECK_THROWS_WITH_AS(cuda::checked_stream_program(t), doctest::Contains("reads a slot nothing wrote"),
                         schedule_error);
    try {
      (void)cuda::checked_stream_program(t);
    } catch (schedule_error const& e) {
      CHECK(e.where.code == errc::program_unordered_read);
      CHECK(e.where.rank == 1);
      CHECK(e.where.position == static_cast<int>(f));
    }
  }
  SUBCASE("a receive moved before the send its partner waits for") {
    // 1F1B, p = 2: rank 0 sends micro-batch 2's activation only after micro-batch 0's
    // backward, which needs the gradient rank 1 sends after its B0; rank 1's receive of
    // micro-batch 2 moved before that send waits in a cycle. The lowered table's own
    // verification refuses it, before an executor could be made.
    table t = make_schedule("1f1b", params{2, 4});
    t = lower(t, sim_costs{});
    REQUIRE(t.ok());
    auto& list = t.lists[1];
    std::size_t send_b0 = list.size(), recv_f2 = list.size();
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (list[i].kind == op::send_grad && list[i].mb == 0 && send_b0 == list.size()) send_b0 = i;
      if (list[i].kind == op::recv_act && list[i].mb == 2) recv_f2 = i;
    }
    REQUIRE(send_b0 < recv_f2);
    REQUIRE(recv_f2 < list.size());
    action const moved = list[recv_f2];
    for (std::size_t i = recv_f2; i > send_b0; --i) list[i] = list[i - 1];
    list[send_b0] = moved;
    std::string what;
    try {
      runtime_schedule const sched(t);
    } catch (schedule_error const& e) {
      what = e.what();
      CHECK(e.where.code == errc::transfer_deadlock);
      CHECK(e.where.rank >= 0);
    }
    CHECK(what.find("the blocking sends and receives wait on each other: the lowered schedule would hang") !=
          std::string::npos);
  }
}

TEST_CASE("cuda.runtime.emulated.nvtx_ranges") {
  // options::nvtx: a profiler range around every pass's functor call, in the checked
  // program's issue order, named in PyTorch's syntax with the rank; none without the option;
  // still balanced when a functor throws
  for (named_table const& nt : registered_tables::every_family({{4, 8}})) {
    SUBCASE(nt.name.c_str()) {
      REQUIRE(nt.t.ok());
      runtime_schedule const sched(nt.t);
      emu::check_nvtx_ranges([&](cuda::options const& o) { return emu_runtime_executor(sched, o); },
                             [](emu_runtime_executor const& ex) { return ex.program(); }, sched.lowered(), sched.lowered(),
                             sched.ranks, nt.name, 93);
    }
  }
  table const t = make_schedule("1f1b", params{4, 8});
  runtime_schedule const sched(t);
  emu::reset(94);
  emu_support::clear_ranges();
  cuda::options o{plan_test::stamp_bytes};
  o.nvtx = true;
  emu_runtime_executor ex(sched, o);
  emu::check_throwing_functor(ex, t);
  CHECK(emu_support::ranges_balanced());
  CHECK_FALSE(emu_support::ranges().empty());
}
