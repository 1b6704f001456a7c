// Failures on the host backend: an exception thrown by a functor on a middle rank in the
// middle of an iteration stops every rank and is rethrown from run(); a rank blocked past
// the timeout fails the run with timeout_error; the executor runs again afterwards.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pipesched/host/executor.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

struct injected : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The checking functor, plus a fault: on rank `fail_rank`, the `fail_at`-th pass throws
/// (or sleeps for `sleep_for` when that is set).
struct faulty_functor : plan_test::checking_after_hook<faulty_functor> {
  int rank = 0, fail_rank = -1, fail_at = -1;
  std::chrono::milliseconds sleep_for{0};

  template <class St> void before_pass(St, io const&) {
    if (rank != fail_rank || calls != fail_at) return;
    if (sleep_for.count() > 0) std::this_thread::sleep_for(sleep_for);
    else throw injected("injected failure on rank " + std::to_string(rank) + " at pass " + std::to_string(fail_at));
  }
};

template <class S> int compute_passes(int rank) {
  table const t = S::make();
  int n = 0;
  for (action a : t.lists[static_cast<std::size_t>(rank)]) n += is_compute(a.kind) ? 1 : 0;
  return n;
}

template <class S> std::vector<faulty_functor> make_functors(int fail_rank, int fail_at) {
  std::vector<faulty_functor> fs(static_cast<std::size_t>(S::ranks));
  for (int r = 0; r < S::ranks; ++r) {
    fs[static_cast<std::size_t>(r)].rank = r;
    fs[static_cast<std::size_t>(r)].fail_rank = fail_rank;
    fs[static_cast<std::size_t>(r)].fail_at = fail_at;
  }
  return fs;
}

/// Rank p/2 throws halfway through its list: run() rethrows that exception well before
/// the timeout (the other ranks were cancelled, not timed out), the ranks did not all
/// finish, and the same executor then runs a clean iteration.
template <class S> void failure_mid_iteration() {
  constexpr int p = S::ranks;
  int const victim = p / 2;
  int const at = compute_passes<S>(victim) / 2;
  host::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.timeout = std::chrono::seconds(30);
  host::executor<S> ex(o);

  auto fs = make_functors<S>(victim, at);
  auto const start = std::chrono::steady_clock::now();
  std::string what;
  CHECK_THROWS_AS(
      [&] {
        try {
          ex.run(fs);
        } catch (injected const& e) {
          what = e.what();
          throw;
        }
      }(),
      injected);
  auto const elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed < std::chrono::seconds(10));
  CHECK(what == "injected failure on rank " + std::to_string(victim) + " at pass " + std::to_string(at));
  CHECK(fs[static_cast<std::size_t>(victim)].calls == at);
  // The executor names where it failed: the victim's rank and its at-th compute pass,
  // found independently in the table.
  action failed_pass{};
  int seen = 0;
  table const t = S::make();
  for (action a : t.lists[static_cast<std::size_t>(victim)])
    if (is_compute(a.kind) && seen++ == at) failed_pass = a;
  failure_site const site = ex.last_failure();
  CHECK(site.rank == victim);
  CHECK(site.action.kind() == failed_pass.kind);
  CHECK(site.action.stage() == failed_pass.stage);
  CHECK(site.action.mb() == failed_pass.mb);

  auto clean = make_functors<S>(-1, -1);
  for (auto& f : clean) f.salt = 0x5eed + 1; // the failed run's stamps do not pass
  ex.run(clean);
  for (int r = 0; r < p; ++r) {
    CHECK(clean[static_cast<std::size_t>(r)].calls == compute_passes<S>(r));
    CHECK(clean[static_cast<std::size_t>(r)].mismatches == 0);
  }
}

} // namespace

TEST_CASE("host.errors.failure_mid_iteration.p4.m8") {
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) { failure_mid_iteration<S>(); }
  });
}

TEST_CASE("host.errors.failure_mid_iteration.p8.m8") {
  plan_test::for_each_type(plan_test::training_schedules<8, 8>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) { failure_mid_iteration<S>(); }
  });
}

TEST_CASE("host.errors.first_and_last_pass.1f1b.p4.m6") {
  using S = one_f_one_b<stages<4>, microbatches<6>>;
  host::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.timeout = std::chrono::seconds(30);
  host::executor<S> ex(o);
  for (int rank : {0, 3}) {
    for (int at : {0, compute_passes<S>(rank) - 1}) {
      auto fs = make_functors<S>(rank, at);
      CHECK_THROWS_AS(ex.run(fs), injected);
    }
  }
  auto clean = make_functors<S>(-1, -1);
  for (auto& f : clean) f.salt = 0x5eed + 1; // the failed run's stamps do not pass
  ex.run(clean);
  CHECK(clean[1].calls == compute_passes<S>(1));
}

TEST_CASE("host.errors.timeout.1f1b.p4.m8") {
  // Rank 2 stalls in a pass for far longer than the timeout: a neighbour blocked on it
  // gives up with timeout_error, which stops every rank and comes out of run().
  using S = one_f_one_b<stages<4>, microbatches<8>>;
  host::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.timeout = std::chrono::milliseconds(100);
  host::executor<S> ex(o);
  auto fs = make_functors<S>(2, 3);
  fs[2].sleep_for = std::chrono::milliseconds(1500);
  auto const start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(ex.run(fs), host::timeout_error);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));

  auto clean = make_functors<S>(-1, -1);
  for (auto& f : clean) f.salt = 0x5eed + 1; // the failed run's stamps do not pass
  ex.run(clean);
  CHECK(clean[2].calls == compute_passes<S>(2));
}

namespace {
/// A wait policy for the channel tests: no polling, stop flag of `mesh`.
host::wait_policy waiting(host::channel_mesh const& mesh, std::chrono::nanoseconds timeout) {
  return host::wait_policy{&mesh.stop(), timeout, 0};
}
} // namespace

TEST_CASE("host.errors.timeout_message") {
  // A receive with no sender reports what it waited for.
  host::channel_mesh mesh(2);
  std::string what;
  try {
    double x = 0;
    mesh.between(0, 1).recv(&x, sizeof x, boundary_identity{0, 4, 1, 5}, waiting(mesh, std::chrono::milliseconds(20)));
  } catch (host::timeout_error const& e) {
    what = e.what();
  }
  CHECK(what.find("a receive waited for its send longer than the timeout (the activation of micro-batch 5 from "
                  "stage 4 (chunk 1))") != std::string::npos);
}

TEST_CASE("host.errors.stop_wakes_blocked_send") {
  // A rendezvous send (no eager capacity) blocks until its receive; here none comes, and
  // raising the stop flag ends it with `cancelled`. The send is seen still blocked before
  // the flag is raised, so the test proves both the block and the wake-up.
  host::channel_mesh mesh(2);
  std::atomic<bool> returned{false};
  bool cancelled = false;
  std::thread t([&] {
    double x = 1;
    try {
      mesh.between(0, 1).send(&x, sizeof x, boundary_identity{1, 1, 0, 0}, waiting(mesh, std::chrono::seconds(30)));
    } catch (host::cancelled const&) {
      cancelled = true;
    }
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(returned.load());
  mesh.request_stop();
  t.join();
  CHECK(cancelled);
}

TEST_CASE("host.errors.eager_send_completes_then_second_blocks") {
  // With eager capacity, a send completes without its receive; a second send on the same
  // channel waits until the receiver has taken the first, which arrives intact.
  host::channel_mesh mesh(2);
  auto& ch = mesh.between(0, 1);
  ch.reserve_eager(sizeof(double));
  double a = 1.5, b = 2.5;
  ch.send(&a, sizeof a, boundary_identity{0, 0, 0, 0}, waiting(mesh, std::chrono::seconds(30)));
  a = -1; // the staged copy is the channel's own
  std::atomic<bool> second_done{false};
  std::thread t([&] {
    ch.send(&b, sizeof b, boundary_identity{0, 0, 0, 1}, waiting(mesh, std::chrono::seconds(30)));
    second_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(second_done.load());
  double got = 0;
  ch.recv(&got, sizeof got, boundary_identity{0, 0, 0, 0}, waiting(mesh, std::chrono::seconds(30)));
  CHECK(got == 1.5);
  ch.recv(&got, sizeof got, boundary_identity{0, 0, 0, 1}, waiting(mesh, std::chrono::seconds(30)));
  t.join();
  CHECK(second_done.load());
  CHECK(got == 2.5);
}

namespace {
/// Sends `sent` on a fresh channel (rendezvous or eager) and receives expecting `expect`:
/// the receive's transfer_error message, or "" when it succeeded.
std::string receive_mismatch(boundary_identity sent, boundary_identity expect, std::size_t eager,
                             std::size_t recv_bytes = sizeof(double)) {
  host::channel_mesh mesh(2);
  mesh.between(0, 1).reserve_eager(eager);
  std::string what;
  std::thread t([&] {
    double x = 1;
    try {
      mesh.between(0, 1).send(&x, sizeof x, sent, waiting(mesh, std::chrono::seconds(30)));
    } catch (host::cancelled const&) {
    }
  });
  double y[2] = {0, 0};
  try {
    mesh.between(0, 1).recv(y, recv_bytes, expect, waiting(mesh, std::chrono::seconds(30)));
  } catch (host::transfer_error const& e) {
    what = e.what();
  }
  mesh.request_stop();
  t.join();
  return what;
}
} // namespace

TEST_CASE("host.errors.mismatched_receive") {
  for (std::size_t eager : {std::size_t{0}, sizeof(double)}) {
    CAPTURE(eager);
    // another micro-batch
    CHECK(receive_mismatch({0, 2, 0, 3}, {0, 2, 0, 4}, eager) ==
          "pipesched: a receive got another boundary: expected the activation of micro-batch 4 from stage 2 "
          "(chunk 0), got the activation of micro-batch 3 from stage 2 (chunk 0)");
    // the same micro-batch and direction from another chunk (interleaved: chunks 0 and 1 of
    // a rank share the edge to the next rank)
    CHECK(receive_mismatch({0, 5, 1, 3}, {0, 1, 0, 3}, eager).find("expected the activation of micro-batch 3 from "
                                                                    "stage 1 (chunk 0), got the activation of "
                                                                    "micro-batch 3 from stage 5 (chunk 1)") !=
          std::string::npos);
    // another direction
    CHECK(receive_mismatch({1, 2, 0, 3}, {0, 2, 0, 3}, eager).find("got the gradient") != std::string::npos);
    // another size
    CHECK(receive_mismatch({0, 2, 0, 3}, {0, 2, 0, 3}, eager, 2 * sizeof(double)) ==
          "pipesched: the activation of micro-batch 3 from stage 2 (chunk 0) has 8 bytes at the sender and 16 at "
          "the receiver: give both ends the same boundary size");
    // the same boundary: no error
    CHECK(receive_mismatch({0, 2, 0, 3}, {0, 2, 0, 3}, eager).empty());
  }
}
