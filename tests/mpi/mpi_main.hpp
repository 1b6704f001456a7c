// The main() every MPI test shares: MPI up, the number of processes checked, the test's body
// run (an exception it lets out aborts every process, so none waits for it), the failures of
// all ranks summed, one verdict line from rank 0, MPI down.
#pragma once

#include <mpi.h>

#include <cstdio>
#include <exception>
#include <string>

namespace mpi_test {

/// This process's failed checks (what a test's body returns to run()).
inline int failures = 0;
/// This process's rank (set by run() before the body; -1 before).
inline int this_rank = -1;

/// Counts a failed check and names it, with the rank, on stderr.
inline void expect(bool ok, std::string const& what) {
  if (ok) return;
  ++failures;
  std::fprintf(stderr, "FAILED: rank %d: %s\n", this_rank, what.c_str());
}

/// Runs `body(rank, size, summary)`, which returns this rank's failures and may set a summary
/// (e.g. "7 schedules on 4 processes") for the verdict line "<name>: <summary>: OK|FAILED".
/// `processes` > 0: the test needs exactly that many. Returns main's exit code.
template <class Body> int run(int argc, char** argv, char const* name, int processes, Body&& body) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (processes > 0 && size != processes) {
    if (rank == 0) std::fprintf(stderr, "%s: run with %d processes (mpiexec -n %d)\n", name, processes, processes);
    MPI_Finalize();
    return 1;
  }
  this_rank = rank;
  int mine = 0;
  std::string summary;
  try {
    mine = body(rank, size, summary);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "%s: rank %d: unexpected exception: %s\n", name, rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int total = 0;
  MPI_Allreduce(&mine, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    std::printf("%s: %s%s%s\n", name, summary.c_str(), summary.empty() ? "" : ": ", total == 0 ? "OK" : "FAILED");
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}

} // namespace mpi_test
