// np: 8
// Every schedule at p = 8 runs to the end on the MPI backend with MPI_Ssend (a send
// completes only together with its receive, so a wrong order would hang; ctest's timeout
// is the backstop), and every boundary a pass reads holds what its producer wrote.
#include <cstdio>
#include <exception>
#include <string>

#include "../cpu/plan_support.hpp"
#include "pipesched/host/mpi.hpp"
#include "mpi_main.hpp"

namespace {

using namespace pipesched;

template <class S> int run_checked(int rank) {
  pipesched::mpi::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.synchronous = true;
  pipesched::mpi::executor<S> ex(MPI_COMM_WORLD, o);
  table const t = S::make();
  int compute = 0;
  for (action a : t.lists[static_cast<std::size_t>(rank)]) compute += is_compute(a.kind) ? 1 : 0;
  int bad = 0;
  for (int iteration = 0; iteration < 2; ++iteration) {
    plan_test::checking_functor f;
    f.salt = 0x5eed + iteration; // the last iteration's stamps do not pass
    ex.run(f);
    if (f.mismatches != 0 || f.calls != compute) {
      std::fprintf(stderr, "FAILED: %s rank %d: %d calls of %d, %s\n", plan_test::label<S>().c_str(), rank, f.calls,
                   compute, f.first_problem.c_str());
      ++bad;
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return bad;
}

} // namespace

int main(int argc, char** argv) {
  return mpi_test::run(argc, argv, "mpi.plan_rendezvous", 8, [](int rank, int size, std::string& summary) {
    int failures = 0, schedules = 0;
    plan_test::for_each_type(plan_test::training_schedules<8, 10>{}, [&]<class S>(S*) {
      failures += run_checked<S>(rank);
      ++schedules;
    });
    summary = std::to_string(schedules) + " schedules on " + std::to_string(size) + " processes";
    return failures;
  });
}
