// np: 4
// The MPI executor keeps to its own communicator: while it runs, the user's own messages
// between the same ranks, with the very tags the executor gives its boundaries, are in
// flight on the communicator it was given — one sent before the run and still unreceived,
// one receive posted before the run (with MPI_ANY_TAG, which would take any message from
// that rank) and matched only after it. Nothing is mixed up: the user's receives get the
// user's payloads, and every boundary the executor delivers is the one its consumer expects
// (stamps salted per iteration). Interleaved with two chunks per rank, where two chunks of
// one micro-batch cross the same pair of ranks, and 1F1B.
#include <cstdio>
#include <exception>
#include <string>

#include "../cpu/plan_support.hpp"
#include "pipesched/host/mpi.hpp"
#include "mpi_main.hpp"

namespace {

using namespace pipesched;

struct user_message {
  int magic = 0;
  int iteration = -1;
  int from = -1;
  int when = -1; // 0: sent before the run, 1: after
};

template <class S> int run_isolated(int rank) {
  constexpr int p = S::ranks;
  mpi::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  mpi::executor<S> ex(MPI_COMM_WORLD, o);
  table const t = S::make();
  int compute = 0;
  for (action a : t.lists[static_cast<std::size_t>(rank)]) compute += is_compute(a.kind) ? 1 : 0;
  int const next = (rank + 1) % p, prev = (rank + p - 1) % p;
  // the tag of the first activation this rank sends forward: the tag the executor's
  // receive on `next` waits for first
  int const tag = ex.tag_of(boundary_identity{0, rank, 0, 0});
  int bad = 0;
  for (int it = 0; it < 3; ++it) {
    // (1) sent to `next` before the run with the tag of the first boundary `next`'s
    //     executor receives from this rank, and left unreceived until after the run;
    // (2) a receive from `next` with MPI_ANY_TAG, posted before the run and matched by a
    //     message `next` sends only after it (it would take `next`'s gradients if the
    //     executor shared the communicator).
    user_message pending{0x0ddba11, it, rank, 1}, after{0x0ddba11, it, rank, 2};
    user_message got_pending{}, got_after{};
    MPI_Request reqs[3];
    MPI_Isend(&pending, sizeof pending, MPI_BYTE, next, tag, MPI_COMM_WORLD, &reqs[0]);
    MPI_Irecv(&got_after, sizeof got_after, MPI_BYTE, next, MPI_ANY_TAG, MPI_COMM_WORLD, &reqs[1]);

    plan_test::checking_functor f;
    f.salt = 0x5eed + it;
    ex.run(f);

    MPI_Isend(&after, sizeof after, MPI_BYTE, prev, tag, MPI_COMM_WORLD, &reqs[2]);
    MPI_Recv(&got_pending, sizeof got_pending, MPI_BYTE, prev, ex.tag_of(boundary_identity{0, prev, 0, 0}),
             MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Waitall(3, reqs, MPI_STATUSES_IGNORE);
    auto is = [&](user_message const& m, int from, int when) {
      return m.magic == 0x0ddba11 && m.iteration == it && m.from == from && m.when == when;
    };
    bool const user_ok = is(got_pending, prev, 1) && is(got_after, next, 2);
    if (!user_ok || f.mismatches != 0 || f.calls != compute) {
      std::fprintf(stderr, "FAILED: %s rank %d iteration %d: user messages %s, %d calls of %d, %s\n",
                   plan_test::label<S>().c_str(), rank, it, user_ok ? "ok" : "MIXED UP", f.calls, compute,
                   f.first_problem.c_str());
      ++bad;
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return bad;
}

} // namespace

int main(int argc, char** argv) {
  return mpi_test::run(argc, argv, "mpi.executor_isolation", 4, [](int rank, int, std::string&) {
    int failures = run_isolated<interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>>(rank);
    failures += run_isolated<one_f_one_b<stages<4>, microbatches<6>>>(rank);
    return failures;
  });
}
