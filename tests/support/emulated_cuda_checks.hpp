// Test support: checks both CUDA streams executors (the compile-time one and the run-time
// one) must pass on the emulated runtime, written once.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <utility>
#include <string>
#include <vector>

#include "cpu/plan_mlp.hpp"
#include "cpu/plan_support.hpp"
#include "support/emulated_cuda.hpp"

#include "pipesched/core/action_text.hpp"
#include "pipesched/cuda/stream_resources.hpp"

namespace emu {

/// Sets nothing up: the default for check_two_iterations' `prepare`.
struct no_preparation {
  template <class Checker> void operator()(Checker&) const {}
};

/// Two iterations of `ex` (running table `t` of `ranks` ranks: a run-time table or a lowered
/// type's frozen one) with stamp-checking functors of type `Checker` salted from `seed`, each
/// fresh one handed to `prepare` (e.g. to give a route checker its routes): every boundary a
/// pass reads is the one written this iteration, and every rank's passes run in its list's
/// order. Returns the functors' calls in all.
template <class Checker = plan_test::checking_functor, class Executor, class Table, class Prepare = no_preparation>
int check_two_iterations(Executor& ex, Table const& t, int ranks, std::uint64_t seed, std::string const& name,
                         Prepare prepare = {}) {
  std::vector<Checker> fs(static_cast<std::size_t>(ranks));
  int calls = 0;
  for (int it = 0; it < 2; ++it) {
    for (auto& f : fs) {
      f = Checker{};
      f.salt = static_cast<std::int32_t>(seed * 10 + static_cast<std::uint64_t>(it));
      prepare(f);
    }
    std::vector<deferred<Checker>> kernels;
    for (auto& f : fs) kernels.push_back({&f});
    ex.run(kernels);
    for (int r = 0; r < ranks; ++r) {
      Checker const& f = fs[static_cast<std::size_t>(r)];
      INFO(name, " seed ", seed, " iteration ", it, " rank ", r, ": ", f.first_problem);
      CHECK(f.mismatches == 0);
      std::vector<pipesched::action> const want = plan_test::compute_list(t, r);
      REQUIRE(f.calls == static_cast<int>(want.size()));
      bool in_order = true;
      for (std::size_t k = 0; k < want.size() && k < Checker::capacity; ++k) in_order = in_order && f.order[k] == want[k];
      CHECK(in_order);
      calls += f.calls;
    }
  }
  return calls;
}

/// After a run with one rank per device (`run`, given options::devices = {0, 1, 2, 3}):
/// every boundary crossed by a peer copy; an executor on those devices (`make`) leaves no
/// slot memset pending on any device; one given two devices for four ranks is refused.
template <class Run, class Make> void check_one_rank_per_device(Run run, Make make) {
  pipesched::cuda::options o;
  o.devices = {0, 1, 2, 3};
  run(o);
  CHECK(the().peer_copies == the().copies_run);
  CHECK(the().peer_copies > 0);
  {
    // each device's slots are zeroed by an asynchronous memset on that device's default
    // stream, which the executor's streams do not wait for: the constructor waits for every
    // device's, not just the current one's
    pipesched::cuda::options with_slots = o;
    with_slots.slot_bytes = 64;
    auto ex = make(with_slots);
    for (CUstream_st const& s : the().default_streams) CHECK(s.queue.empty());
  }
  pipesched::cuda::options bad;
  bad.devices = {0, 1};
  CHECK_THROWS_AS(make(bad), std::invalid_argument);
}

/// The checking functor, launched as stream work; rank `fail_rank` throws at its issue of
/// pass number `fail_at` (from 0).
struct thrower : plan_test::checking_functor {
  int rank = 0, fail_rank = -1, fail_at = -1, issued = 0;
  void maybe() {
    if (rank == fail_rank && issued++ == fail_at) throw std::runtime_error("injected functor failure");
  }
  template <class St> void forward(St s, pipesched::io const& x) {
    maybe();
    checking_functor* self = this;
    launch(x.stream, [self, s, x] { self->checking_functor::forward(s, x); });
  }
  template <class St> void backward(St s, pipesched::io const& x) {
    maybe();
    checking_functor* self = this;
    launch(x.stream, [self, s, x] { self->checking_functor::backward(s, x); });
  }
};

/// `ex` runs 1F1B at p = 4, m = 8 (table `t`); rank 2 throws at its 6th pass: run()
/// rethrows the functor's own exception and records rank and action (kind, stage and
/// micro-batch of that pass); every stream drained (nothing left queued, no wait left
/// blocked); the next run is clean (no failure recorded, F and B of 8 micro-batches on every
/// rank, stamps intact).
template <class Executor> void check_throwing_functor(Executor& ex, pipesched::table const& t) {
  std::vector<thrower> fs(4);
  for (int r = 0; r < 4; ++r) fs[static_cast<std::size_t>(r)].rank = r;
  fs[2].fail_rank = 2;
  fs[2].fail_at = 5;
  CHECK_THROWS_WITH_AS(ex.run(fs), "injected functor failure", std::runtime_error);
  CHECK(ex.last_failure().rank == 2);
  std::vector<pipesched::action> const passes = plan_test::compute_list(t, 2);
  REQUIRE(passes.size() > 5);
  CHECK(ex.last_failure().action.kind() == passes[5].kind);
  CHECK(ex.last_failure().action.stage() == passes[5].stage);
  CHECK(ex.last_failure().action.mb() == passes[5].mb);
  for (auto const& s : the().streams) CHECK(s->queue.empty());
  for (auto const& s : the().default_streams) CHECK(s.queue.empty());
  std::vector<thrower> clean(4);
  for (int r = 0; r < 4; ++r) clean[static_cast<std::size_t>(r)].rank = r, clean[static_cast<std::size_t>(r)].salt = 7;
  ex.run(clean);
  CHECK(ex.last_failure().rank == -1);
  for (auto const& f : clean) {
    CHECK(f.mismatches == 0);
    CHECK(f.calls == 16); // F and B of 8 micro-batches
  }
}

/// ZB-H1 at p = 4, m = 8 (`make(options)` returns an executor of it): one iteration
/// captured, replayed 3 times (the optimizer step between replays), equals 3 eager
/// iterations to the last bit; replay() before capture() is refused; the capture itself runs
/// nothing.
template <class Make> void check_graph_replay_equals_eager(std::uint64_t seed, Make make) {
  reset(seed);
  mlp::config c;
  c.microbatches = 8;
  c.stages = 4;
  mlp::model eager(c), graph(c);
  pipesched::cuda::options o;
  o.slot_bytes = eager.boundary_bytes();
  auto ea = make(o);
  auto ga = make(o);
  mlp::stage_functor fe{&eager}, fg{&graph};
  std::vector<deferred<mlp::stage_functor>> ke(4, {&fe}), kg(4, {&fg});
  CHECK_THROWS_AS(ga.replay(), std::logic_error);
  std::uint64_t const before = the().operations_run; // the constructors' memsets ran
  ga.capture(kg);
  REQUIRE(ga.captured());
  CHECK(the().operations_run == before);
  for (int step = 0; step < 3; ++step) {
    ea.run(ke);
    double const le = eager.apply_all();
    ga.replay();
    double const lg = graph.apply_all();
    CHECK(le == lg);
  }
  CHECK(the().graph_launches == 3);
  CHECK(mlp::max_relative_difference(eager, graph, 0, c.layers) == 0.0);
}

/// The 3rd copy of an iteration fails: cuda::error names the receiving rank, its RECV and
/// the runtime's error string; the streams drain; the next run is clean. `ex` runs 1F1B-like
/// tables whose first copies are activations, with `ranks` stamp-checking functors.
template <class Executor> void check_failing_copy(Executor& ex, int ranks) {
  using checker = plan_test::checking_functor;
  std::vector<checker> fs(static_cast<std::size_t>(ranks));
  std::vector<deferred<checker>> k;
  for (auto& f : fs) k.push_back({&f});
  the().fail_copy_at = 3;
  std::string what;
  try {
    ex.run(k);
  } catch (pipesched::cuda::error const& e) {
    what = e.what();
    CHECK(e.site.rank >= 0);
    CHECK(e.code == runtime::copy_failed);
    CHECK(pipesched::is_recv(e.site.action.kind()));
  }
  CHECK(what.find("pipesched: cudaMemcpyAsync failed on rank ") == 0);
  CHECK(what.find("RECV_F of stage") != std::string::npos);
  CHECK(what.find("emulated copy failure (injected)") != std::string::npos);
  for (auto const& s : the().streams) CHECK(s->queue.empty());
  the().fail_copy_at = 0;
  for (auto& f : fs) f = checker{}, f.salt = 99;
  ex.run(k);
  for (auto const& f : fs) CHECK(f.mismatches == 0);
}

/// The profiler ranges (options::nvtx) recorded since the last clear_ranges(): a push and a
/// pop around every exec op of `program` (the executor's stream program over lowered table
/// `t`), in its issue order, each named by the action in PyTorch's syntax (format_action,
/// the CSV writer's) and its rank: "2F3 r1"; `iterations` times. All on the issuing thread.
inline void check_ranges(pipesched::cuda::stream_program const& program, pipesched::table const& t,
                         std::string const& name, int iterations = 1) {
  std::vector<std::string> want;
  for (int it = 0; it < iterations; ++it)
    for (pipesched::cuda::stream_op const& o : program.ops)
    if (o.kind == pipesched::cuda::stream_op_kind::exec) {
      pipesched::action const& a = t.lists[static_cast<std::size_t>(o.rank)][o.action];
      want.push_back("+" + pipesched::format_action(a) + " r" + std::to_string(o.rank));
      want.push_back("-");
    }
  std::vector<std::string> got;
  bool one_thread = true;
  for (emu_support::range_event const& e : emu_support::ranges()) {
    got.push_back(e.text);
    one_thread = one_thread && e.thread == std::this_thread::get_id();
  }
  INFO(name);
  CHECK(one_thread);
  REQUIRE(got.size() == want.size());
  std::size_t first_difference = got.size();
  for (std::size_t k = got.size(); k-- > 0;)
    if (got[k] != want[k]) first_difference = k;
  INFO("first difference at ", first_difference, ": ", (first_difference < got.size() ? got[first_difference] : ""),
       " for ", (first_difference < want.size() ? want[first_difference] : ""));
  CHECK(first_difference == got.size());
}

/// options::nvtx on executors made by `make(options)` (seeded `seed`), running table `t`
/// over lowered table `lowered`, whose stream program `program_of(executor)` gives: with the
/// option, two iterations' ranges are what check_ranges expects; without it there are none.
template <class Make, class ProgramOf, class Table>
void check_nvtx_ranges(Make make, ProgramOf program_of, Table const& t, pipesched::table const& lowered, int ranks,
                       std::string const& name, std::uint64_t seed) {
  for (bool on : {true, false}) {
    reset(seed);
    emu_support::clear_ranges();
    pipesched::cuda::options o;
    o.slot_bytes = plan_test::stamp_bytes;
    o.nvtx = on;
    auto ex = make(o);
    check_two_iterations(ex, t, ranks, seed, name);
    if (on) check_ranges(program_of(ex), lowered, name, 2);
    else CHECK(emu_support::ranges().empty());
  }
}

} // namespace emu
