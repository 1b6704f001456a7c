// The host executor's interface: functors given as a vector or as a tuple of different
// types per rank, the one-shot host::run, the buffer plan it allocates, and a run-time
// rank mapped to the compile-time plan.
#include <doctest/doctest.h>

#include <stdexcept>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include "pipesched/host/executor.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

struct first_rank : plan_test::checking_functor {};
struct second_rank : plan_test::checking_functor {};

} // namespace

TEST_CASE("host.executor.tuple_functors.1f1b.p2.m4") {
  using S = one_f_one_b<stages<2>, microbatches<4>>;
  std::tuple<first_rank, second_rank> fs;
  host::executor<S> ex(host::options{plan_test::stamp_bytes, std::chrono::seconds(20)});
  ex.run(fs);
  CHECK(std::get<0>(fs).calls == 8);
  CHECK(std::get<1>(fs).calls == 8);
  CHECK(std::get<0>(fs).mismatches == 0);
  CHECK(std::get<1>(fs).mismatches == 0);
}

TEST_CASE("host.executor.run_once.zb_h1.p3.m5") {
  using S = zb_h1<stages<3>, microbatches<5>>;
  std::vector<plan_test::checking_functor> fs(3);
  host::run<S>(fs, host::options{plan_test::stamp_bytes, std::chrono::seconds(20)});
  for (auto const& f : fs) {
    CHECK(f.calls == 15); // F, I and W of 5 micro-batches
    CHECK(f.mismatches == 0);
  }
}

TEST_CASE("host.executor.buffers.interleaved.p4.m8") {
  using S = interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>;
  host::executor<S> ex(host::options{100, std::chrono::seconds(20)});
  table const t = S::make();
  for (int r = 0; r < 4; ++r) {
    auto const& b = ex.buffers(r);
    REQUIRE(b.slots() == t.slot_count[static_cast<std::size_t>(r)]);
    for (int k = 0; k < b.slots(); ++k) {
      CHECK(b[k].bytes == 100);
      CHECK(reinterpret_cast<std::uintptr_t>(b[k].data) % slot_alignment == 0);
      if (k > 0) CHECK(static_cast<unsigned char*>(b[k].data) - static_cast<unsigned char*>(b[k - 1].data) == 256);
    }
  }
}

TEST_CASE("host.executor.many_iterations.v_min.p4.m6") {
  using S = v_min<stages<4>, microbatches<6>>;
  host::executor<S> ex(host::options{plan_test::stamp_bytes, std::chrono::seconds(20)});
  for (int i = 0; i < 50; ++i) {
    std::vector<plan_test::checking_functor> fs(4);
    for (auto& f : fs) f.salt = 0x5eed + i; // last iteration's stamps no longer pass
    ex.run(fs);
    for (auto const& f : fs) CHECK(f.mismatches == 0);
  }
}

TEST_CASE("host.executor.with_rank") {
  int seen = -1;
  pipesched::detail::with_rank<5>(3, [&](auto r) { seen = decltype(r)::value; });
  CHECK(seen == 3);
}

namespace {

/// Bytes of stage s's output activation and of its gradient in the sized tests: every
/// boundary a different size, all at least a stamp.
std::size_t act_bytes(int s) { return plan_test::stamp_bytes + 8 * static_cast<std::size_t>(s); }
std::size_t grad_bytes(int s) { return plan_test::stamp_bytes + 100 + 24 * static_cast<std::size_t>(s); }

/// The checking functor, plus: every view has the size of the boundary it holds (straight
/// routes: F of s reads act(s-1) and writes act(s); B, I, W of s read grad(s) and act(s-1)
/// and write grad(s-1)), and the largest size seen in each slot is recorded.
struct sized_functor : plan_test::checking_after_hook<sized_functor> {
  std::vector<std::size_t> largest = std::vector<std::size_t>(64, 0);
  int wrong_sizes = 0;

  void see(int slot, view const& v, std::size_t want) {
    if (slot < 0) return;
    if (v.bytes != want) ++wrong_sizes;
    std::size_t& l = largest[static_cast<std::size_t>(slot)];
    l = v.bytes > l ? v.bytes : l;
  }
  template <class St> void before_pass(St, io const& x) { // the sizes
    if constexpr (St::kind == op::forward) {
      see(St::in, x.in, act_bytes(St::stage - 1));
      see(St::out, x.out, act_bytes(St::stage));
    } else {
      see(St::in, x.in, grad_bytes(St::stage));
      see(St::aux, x.aux, act_bytes(St::stage - 1));
      if constexpr (St::kind != op::backward_weight) see(St::out, x.out, grad_bytes(St::stage - 1));
    }
  }
};

template <class S> void run_sized(std::size_t eager) {
  host::options o;
  o.eager_bytes = eager;
  for (int s = 0; s < S::stages; ++s) {
    o.boundaries.activation.push_back(act_bytes(s));
    o.boundaries.gradient.push_back(grad_bytes(s));
  }
  host::executor<S> ex(o);
  for (int it = 0; it < 2; ++it) {
    std::vector<sized_functor> fs(static_cast<std::size_t>(S::ranks));
    for (auto& f : fs) f.salt = 100 + it;
    ex.run(fs);
    for (int r = 0; r < S::ranks; ++r) {
      auto const& f = fs[static_cast<std::size_t>(r)];
      INFO("rank ", r, ": ", f.first_problem);
      CHECK(f.mismatches == 0);
      CHECK(f.wrong_sizes == 0);
      // each slot is exactly as large as the largest boundary seen in it
      for (int k = 0; k < ex.buffers(r).slots(); ++k) CHECK(ex.buffers(r)[k].bytes == f.largest[static_cast<std::size_t>(k)]);
    }
  }
}

} // namespace

TEST_CASE("host.executor.boundary_sizes") {
  // Every schedule at p = 4, m = 6, rendezvous and eager: each functor view and each
  // transfer has its boundary's own size (the channels check both ends agree), and slots
  // are sized by the largest boundary they hold.
  plan_test::for_each_type(plan_test::training_schedules<4, 6>{}, []<class S>(S*) {
    SUBCASE((plan_test::label<S>() + ".rendezvous").c_str()) { run_sized<S>(0); }
    SUBCASE((plan_test::label<S>() + ".eager").c_str()) { run_sized<S>(1 << 16); }
  });
}

TEST_CASE("host.executor.boundary_sizes_rejected") {
  using S = interleaved_1f1b<stages<2>, microbatches<4>, chunks<2>>; // 4 stages
  host::options o;
  o.boundaries.activation = {8, 8, 8};
  CHECK_THROWS_WITH_AS(host::executor<S>{o},
                       "pipesched: boundary sizes give 3 activation sizes, the schedule has 4 stages: give one per "
                       "stage (stage s's output)",
                       std::invalid_argument);
  o.boundaries.activation = {8, 8, 8, 8};
  o.boundaries.gradient = {8};
  CHECK_THROWS_AS(host::executor<S>{o}, std::invalid_argument);
}

TEST_CASE("host.executor.functor_count") {
  using S = one_f_one_b<stages<4>, microbatches<4>>;
  host::executor<S> ex(host::options{plan_test::stamp_bytes, std::chrono::seconds(20)});
  std::vector<plan_test::checking_functor> three(3);
  CHECK_THROWS_WITH_AS(ex.run(three),
                       "pipesched: run(functors) got 3 stage functors for a schedule of 4 ranks: give one per rank",
                       std::invalid_argument);
  for (auto const& f : three) CHECK(f.calls == 0); // nothing ran
  std::vector<plan_test::checking_functor> four(4);
  ex.run(four);
  CHECK(four[3].calls == 8);
}

TEST_CASE("host.executor.thread_start_failure") {
  // The third thread fails to start: the constructor joins the two that started and
  // throws (no std::terminate from a joinable std::thread destroyed).
  using S = one_f_one_b<stages<4>, microbatches<4>>;
  host::detail::before_thread_start = [](int rank) {
    if (rank == 2) throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
  };
  CHECK_THROWS_AS(host::executor<S>(host::options{plan_test::stamp_bytes}), std::system_error);
  host::detail::before_thread_start = nullptr;
  host::executor<S> ex(host::options{plan_test::stamp_bytes});
  std::vector<plan_test::checking_functor> fs(4);
  ex.run(fs);
  CHECK(fs[0].calls == 8);
}

TEST_CASE("host.executor.run_from_two_threads") {
  // Two threads call run on one executor at once, each with its own functors and salt:
  // the calls are serialised, and each iteration is complete and consistent.
  using S = zb_h1<stages<4>, microbatches<8>>;
  host::executor<S> ex(host::options{plan_test::stamp_bytes, std::chrono::seconds(20)});
  std::vector<plan_test::checking_functor> a(4), b(4);
  int bad_a = 0, bad_b = 0;
  std::thread t([&] {
    for (int i = 0; i < 20; ++i) {
      for (auto& f : a) f = plan_test::checking_functor{}, f.salt = 1000 + i;
      ex.run(a);
      for (auto const& f : a) bad_a += f.mismatches + (f.calls == 24 ? 0 : 1);
    }
  });
  for (int i = 0; i < 20; ++i) {
    for (auto& f : b) f = plan_test::checking_functor{}, f.salt = 2000 + i;
    ex.run(b);
    for (auto const& f : b) bad_b += f.mismatches + (f.calls == 24 ? 0 : 1);
  }
  t.join();
  CHECK(bad_a == 0);
  CHECK(bad_b == 0);
  for (auto const& f : a) CHECK(f.calls == 24);
  for (auto const& f : b) CHECK(f.calls == 24);
}
