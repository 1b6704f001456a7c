// The CUDA executor on the CPU: pipesched::cuda::basic_executor bound to a host emulation of
// CUDA's stream semantics (tests/support/emulated_cuda.hpp), whose scheduler interleaves the
// streams' work at random. Every schedule runs with several interleavings: every boundary a
// pass reads is the one its producer wrote this iteration (salted stamps), every rank's passes
// run in its list order, an MLP trains to the last bit of the sequential reference; graph
// replay equals eager execution; per-stage boundary sizes; one rank per device (peer copies);
// a throwing functor and a failing copy stop the iteration, name rank and action, leave no
// stream blocked, and the executor runs again. The emulator itself is shown to catch a
// missing wait.
#include <doctest/doctest.h>

#include <atomic>

#include <stdexcept>
#include <string>
#include <vector>

#include "support/emulated_cuda.hpp"
#include "support/emulated_cuda_checks.hpp"

#include "pipesched/cuda/basic_executor.hpp"
#include "pipesched/schedules/forward_only.hpp"
#include "pipesched/schedules/dualpipe.hpp"
#include "pipesched/schedules/dualpipe_v.hpp"
#include "plan_mlp.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

template <class S> using emu_executor = cuda::basic_executor<S, emu::runtime>;

/// The checking functor, plus the order in which its passes ran.
using checker = plan_test::checking_functor;

template <class S> void run_checked(std::uint64_t seed, cuda::options o = {}) {
  emu::reset(seed);
  o.slot_bytes = plan_test::stamp_bytes;
  emu_executor<S> ex(o);
  emu::check_two_iterations(ex, S::make(), S::ranks, seed, plan_test::label<S>());
}

} // namespace

TEST_CASE("cuda.emulated.every_schedule.p4.m8") {
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) {
      for (std::uint64_t seed = 1; seed <= 6; ++seed) run_checked<S>(seed);
      CHECK(emu::the().copies_run > 0);
    }
  });
}

TEST_CASE("cuda.emulated.every_schedule.p3.m5") {
  plan_test::for_each_type(plan_test::training_schedules<3, 5>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) {
      for (std::uint64_t seed = 11; seed <= 14; ++seed) run_checked<S>(seed);
    }
  });
}

TEST_CASE("cuda.emulated.one_rank_per_device") {
  // options::devices: rank r on device r; boundaries cross by peer copies
  using S = interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>;
  emu::check_one_rank_per_device([](cuda::options const& o) { run_checked<S>(21, o); },
                                 [](cuda::options const& o) { return emu_executor<S>(o); });
}

namespace {
/// F: the MLP's stage functor, or copies_of_model_stages of it when S's table stages are two
/// copies of a model of model_stages stages (DualPipe).
/// Trains S 3 steps through the CUDA executor: the losses and weights equal the sequential
/// reference to the last bit. Returns the calls of F's forward_backward (when F counts them).
template <class S, class F = mlp::stage_functor> int train_exact(std::uint64_t seed, int model_stages = S::lowered.stages) {
  emu::reset(seed);
  constexpr int steps = 3;
  mlp::config c;
  c.layers = 12;
  c.microbatches = S::microbatches;
  c.stages = model_stages;
  mlp::model reference(c), piped(c);
  cuda::options o;
  o.slot_bytes = piped.boundary_bytes();
  emu_executor<S> ex(o);
  F f;
  f.net = &piped;
  if constexpr (requires { f.model_stages; }) f.model_stages = model_stages;
  std::atomic<int> pairs{0};
  if constexpr (requires { f.pairs = &pairs; }) f.pairs = &pairs;
  std::vector<emu::deferred<F>> kernels(static_cast<std::size_t>(S::ranks), {&f});
  for (int step = 0; step < steps; ++step) {
    double const want = reference.reference_step(S::lowered.split_backward);
    ex.run(kernels);
    double const got = piped.apply_all();
    INFO(plan_test::label<S>(), " seed ", seed, " step ", step);
    CHECK(got == want); // to the last bit
  }
  CHECK(piped.stale_inputs() == 0);
  CHECK(mlp::max_relative_difference(piped, reference, 0, c.layers) == 0.0);
  return pairs.load();
}

using plan_test::overlapped_pairs;
} // namespace

TEST_CASE("cuda.emulated.mlp_exact.p4.m8") {
  // An MLP trained 3 steps through the CUDA executor (the passes run as stream work, in a
  // random interleaving) equals sequential training to the last bit, for every schedule.
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) {
      train_exact<S>(31);
      train_exact<S>(32);
    }
  });
}

TEST_CASE("cuda.emulated.graph_replay_equals_eager") {
  // One iteration captured, replayed 3 times (the optimizer step between replays), equals 3
  // eager iterations to the last bit; the capture itself runs nothing; no replay before it.
  using S = zb_h1<stages<4>, microbatches<8>>;
  emu::check_graph_replay_equals_eager(41, [](cuda::options const& o) { return emu_executor<S>(o); });
}

namespace {
struct sized : checker {
  int wrong = 0;
  static std::size_t act(int s) { return plan_test::stamp_bytes + 16 * static_cast<std::size_t>(s); }
  static std::size_t grad(int s) { return plan_test::stamp_bytes + 200 + 8 * static_cast<std::size_t>(s); }
  void see(int slot, view const& v, std::size_t want) {
    if (slot >= 0 && v.bytes != want) ++wrong;
  }
  template <class St> void forward(St s, io const& x) {
    see(St::in, x.in, act(St::stage - 1));
    see(St::out, x.out, act(St::stage));
    checker* self = this;
    emu::launch(x.stream, [self, s, x] { self->checker::forward(s, x); });
  }
  template <class St> void backward_input(St s, io const& x) {
    see(St::in, x.in, grad(St::stage));
    see(St::aux, x.aux, act(St::stage - 1));
    see(St::out, x.out, grad(St::stage - 1));
    checker* self = this;
    emu::launch(x.stream, [self, s, x] { self->checker::backward_input(s, x); });
  }
  template <class St> void backward_weight(St s, io const& x) {
    see(St::in, x.in, grad(St::stage));
    see(St::aux, x.aux, act(St::stage - 1));
    checker* self = this;
    emu::launch(x.stream, [self, s, x] { self->checker::backward_weight(s, x); });
  }
};
} // namespace

TEST_CASE("cuda.emulated.boundary_sizes") {
  // every boundary a different size per stage: each view has its boundary's own size
  // (checked at issue time against sizes derived from the straight route), and the copies
  // move that many bytes (the checking functor's stamps arrive intact)
  using S = v_half<stages<4>, microbatches<6>>;
  emu::reset(51);
  cuda::options o;
  for (int s = 0; s < S::stages; ++s) {
    o.boundaries.activation.push_back(sized::act(s));
    o.boundaries.gradient.push_back(sized::grad(s));
  }
  emu_executor<S> ex(o);
  std::vector<sized> fs(4);
  ex.run(fs);
  for (auto const& f : fs) {
    CHECK(f.wrong == 0);
    CHECK(f.mismatches == 0);
    CHECK(f.calls == 3 * 6 * 2); // F, I, W of 6 micro-batches on 2 stages per rank
  }
}

TEST_CASE("cuda.emulated.throwing_functor") {
  // rank 2 throws at its 6th pass: run() rethrows it, naming nothing new (the functor's own
  // exception) but recording rank and action; every stream drained (nothing left queued,
  // no wait left blocked); the next run is clean
  using S = one_f_one_b<stages<4>, microbatches<8>>;
  emu::reset(61);
  emu_executor<S> ex(cuda::options{plan_test::stamp_bytes});
  emu::check_throwing_functor(ex, S::make());
}

TEST_CASE("cuda.emulated.failing_copy") {
  // the 3rd copy fails: cuda::error names the receiving rank, its RECV and the runtime's
  // error string; the streams drain; the next run is clean
  using S = one_f_one_b<stages<4>, microbatches<8>>;
  emu::reset(71);
  emu_executor<S> ex(cuda::options{plan_test::stamp_bytes});
  emu::check_failing_copy(ex, 4);
}

TEST_CASE("cuda.emulated.forward_only") {
  run_checked<forward_only<stages<4>, microbatches<6>>>(81);
}

TEST_CASE("emulator.catches_a_missing_wait") {
  // The emulator is a real test of ordering: a read on one stream of what another stream
  // writes, with no event between them, runs before the write in some interleavings; with
  // a record and a wait it never does.
  int early_without = 0, early_with = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed)
    for (bool ordered : {false, true}) {
      emu::reset(seed);
      emu::runtime::stream_t a = nullptr, b = nullptr;
      emu::runtime::event_t e = nullptr;
      emu::runtime::stream_create(&a);
      emu::runtime::stream_create(&b);
      emu::runtime::event_create(&e);
      int x = 0, seen = -1;
      emu::launch(a, [&x] { x = 1; });
      if (ordered) {
        emu::runtime::event_record(e, a);
        emu::runtime::stream_wait_event(b, e);
      }
      emu::launch(b, [&] { seen = x; });
      emu::runtime::device_synchronize();
      (ordered ? early_with : early_without) += seen == 0 ? 1 : 0;
      emu::runtime::stream_destroy(a);
      emu::runtime::stream_destroy(b);
    }
  CHECK(early_without > 0);
  CHECK(early_with == 0);
}

TEST_CASE("cuda.emulated.extra_slots") {
  // double buffering: two extra slots per rank, used as a round robin — the stream program
  // and the executor need nothing else (random interleavings, stamps, list order)
  using S = zb_h2<stages<4>, microbatches<8>, extra_slots<2>>;
  using base = zb_h2<stages<4>, microbatches<8>>;
  for (int r = 0; r < 4; ++r) CHECK(S::lowered.slot_count[r] == base::lowered.slot_count[r] + 2);
  for (std::uint64_t seed = 91; seed <= 94; ++seed) run_checked<S>(seed);
}

TEST_CASE("cuda.emulated.overlapped_pairs") {
  // DualPipeV and DualPipe (overlapped forward-backward pairs; DualPipe's routes, its model
  // stages run twice) through the CUDA executor: every boundary arrives as its pass expects,
  // passes in list order, and the MLP trains to the last bit of the sequential reference.
  using V = dualpipe_v<stages<4>, microbatches<8>>;
  using D = dualpipe<stages<4>, microbatches<8>>;
  for (std::uint64_t seed = 41; seed <= 44; ++seed) {
    run_checked<V>(seed);
    run_checked<D>(seed);
  }
  train_exact<V>(45);
  train_exact<D, mlp::copies_of_model_stages<mlp::stage_functor>>(46, D::lowered.stages / 2);
}

TEST_CASE("cuda.emulated.forward_backward_pairs") {
  // A functor with forward_backward gets every overlapped pair as one call (the stream
  // program makes a pair one stretch of its compute stream: both halves' waits, the execs,
  // both halves' records): 3 steps x the table's pairs, and the MLP still trains to the last
  // bit of the sequential reference (here the pair runs its backward half first)
  using V = dualpipe_v<stages<4>, microbatches<8>>;
  using D = dualpipe<stages<4>, microbatches<8>>;
  static_assert(overlapped_pairs(V::lowered) > 0 && overlapped_pairs(D::lowered) > 0);
  CHECK(train_exact<V, mlp::pair_functor<std::atomic<int>>>(47) == 3 * overlapped_pairs(V::lowered));
  CHECK(train_exact<V, mlp::pair_functor<std::atomic<int>>>(48) == 3 * overlapped_pairs(V::lowered));
  CHECK(train_exact<D, mlp::copies_of_model_stages<mlp::pair_functor<std::atomic<int>>>>(49, D::lowered.stages / 2) ==
        3 * overlapped_pairs(D::lowered));
}

TEST_CASE("cuda.emulated.nvtx_ranges") {
  // options::nvtx: a profiler range around every pass's functor call, in the stream
  // program's issue order, named in PyTorch's syntax with the rank; none without the option;
  // still balanced when a functor throws
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) {
      emu::check_nvtx_ranges([](cuda::options const& o) { return emu_executor<S>(o); },
                             [](auto const&) { return cuda::stream_program_of<S, cuda::transfer_mode::copy>::make(); },
                             S::make(), thaw(S::lowered), S::ranks, plan_test::label<S>(), 91);
    }
  });
  using S = one_f_one_b<stages<4>, microbatches<8>>;
  emu::reset(92);
  emu_support::clear_ranges();
  cuda::options o{plan_test::stamp_bytes};
  o.nvtx = true;
  emu_executor<S> ex(o);
  emu::check_throwing_functor(ex, S::make());
  CHECK(emu_support::ranges_balanced());
  CHECK_FALSE(emu_support::ranges().empty());
}
