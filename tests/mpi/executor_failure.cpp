// np: 4
// A failure on one MPI rank never leaves the others blocked. (1) A functor on rank 2 throws
// in the middle of its list: rank 2's run() rethrows it, every other rank's run() ends
// with mpi::remote_failure naming rank 2 and the pass it failed in, all well inside the
// timeout (30 s: the notice, not the deadline, stops them). The executor then refuses to
// run again. (2) Rank 2 stalls in a pass far longer than the timeout (200 ms): a rank
// waiting on it gives up with mpi::timeout_error and tells the others, which end with
// remote_failure (rank 2 too, at its next transfer after the stall).
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

#include "../cpu/plan_support.hpp"
#include "pipesched/host/mpi.hpp"
#include "mpi_main.hpp"

namespace {

using namespace pipesched;
using S = one_f_one_b<stages<4>, microbatches<8>>;
using mpi_test::expect;
using mpi_test::failures;

struct injected : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// On rank `fail_rank`, the compute pass number `fail_at` throws (or sleeps `stall`).
struct faulty : plan_test::checking_after_hook<faulty> {
  int rank = 0, fail_rank = 2, fail_at = 5;
  std::chrono::milliseconds stall{0};
  template <class St> void before_pass(St, io const&) {
    if (rank != fail_rank || calls != fail_at) return;
    if (stall.count() > 0) std::this_thread::sleep_for(stall);
    else throw injected("injected failure");
  }
};

/// Rank 2's fail_at-th compute pass, from the table (what remote_failure must name).
action failing_pass(int fail_at) {
  table const t = S::make();
  int seen = 0;
  for (action a : t.lists[2])
    if (is_compute(a.kind) && seen++ == fail_at) return a;
  return action{};
}

void thrown_functor(int rank) {
  mpi::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.timeout = std::chrono::seconds(30);
  mpi::executor<S> ex(MPI_COMM_WORLD, o);
  faulty f;
  f.rank = rank;
  auto const start = std::chrono::steady_clock::now();
  std::string outcome = "returned normally";
  try {
    ex.run(f);
  } catch (injected const&) {
    outcome = "injected";
  } catch (mpi::remote_failure const& e) {
    outcome = "remote";
    action const a = failing_pass(5);
    expect(e.failed_rank == 2, "remote_failure names rank " + std::to_string(e.failed_rank));
    expect(e.failed_action.kind() == a.kind && e.failed_action.stage() == a.stage && e.failed_action.mb() == a.mb,
           std::string("remote_failure names another action: ") + e.what());
    std::string const want = "pipesched: rank 2 failed (" + std::string(op_name(a.kind)) + " of stage 2, micro-batch " +
                             std::to_string(a.mb) + "): injected failure; rank " + std::to_string(rank) + " stopped";
    expect(std::string(e.what()).rfind(want, 0) == 0, std::string("message: ") + e.what());
  }
  auto const elapsed = std::chrono::steady_clock::now() - start;
  expect(outcome == (rank == 2 ? "injected" : "remote"), "outcome " + outcome);
  expect(elapsed < std::chrono::seconds(10), "took longer than 10 s");
  bool refused = false;
  try {
    faulty g;
    g.rank = rank;
    g.fail_rank = -1;
    ex.run(g);
  } catch (mpi::error const& e) {
    refused = std::string(e.what()).find("stopped after a failure") != std::string::npos;
  }
  expect(refused, "a failed executor ran again");
}

void stalled_rank(int rank) {
  mpi::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.timeout = std::chrono::milliseconds(200);
  mpi::executor<S> ex(MPI_COMM_WORLD, o);
  faulty f;
  f.rank = rank;
  f.stall = std::chrono::milliseconds(2000);
  auto const start = std::chrono::steady_clock::now();
  std::string outcome = "returned normally";
  try {
    ex.run(f);
  } catch (mpi::timeout_error const&) {
    outcome = "timeout";
  } catch (mpi::remote_failure const& e) {
    outcome = "remote";
    expect(e.failed_rank != rank, "remote_failure names this rank");
  }
  auto const elapsed = std::chrono::steady_clock::now() - start;
  expect(outcome != "returned normally", "the run returned normally");
  expect(elapsed < std::chrono::seconds(10), "took longer than 10 s");
  int const timed_out = outcome == "timeout" ? 1 : 0;
  int any = 0;
  MPI_Allreduce(&timed_out, &any, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  expect(any >= 1, "no rank timed out");
}

} // namespace

int main(int argc, char** argv) {
  return mpi_test::run(argc, argv, "mpi.executor_failure", 4, [](int rank, int, std::string&) {
    thrown_functor(rank);
    MPI_Barrier(MPI_COMM_WORLD);
    stalled_rank(rank);
    return failures;
  });
}
