// End-to-end cost of the MPI executor, one process per rank: the figure of
// bench/bench_executor.cpp (host threads) for MPI. Passes spin for a set time, boundaries of
// 4 KiB. Prints one line per (schedule, pass time): wall time of an iteration (median of
// runs of `iterations` back-to-back iterations between barriers), µs per action (all
// ranks' actions), the simulator's ideal for the same pass times, and the overhead per
// action.
//
//   mpiexec -n 4 build/default/bench/bench_mpi_executor [iterations] [runs]
//   mpiexec -n 2 build/default/bench/bench_mpi_executor            (p = 2 schedules)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <pipesched/host/mpi.hpp>
#include <pipesched/pipeline/simulate.hpp>
#include <pipesched/schedules/interleaved.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>

#include "support/timed_stage.hpp"

namespace {

using namespace pipesched;

template <class S> void measure(int rank, double pass_us, int iterations, int runs, bool synchronous) {
  mpi::options o;
  o.slot_bytes = 4096;
  o.synchronous = synchronous;
  mpi::executor<S> ex(MPI_COMM_WORLD, o);
  bench_support::timed_stage f;
  f.pass_us = pass_us;
  ex.run(f); // warm-up
  std::vector<double> per_iteration;
  for (int k = 0; k < runs; ++k) {
    MPI_Barrier(MPI_COMM_WORLD);
    auto const start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) ex.run(f);
    MPI_Barrier(MPI_COMM_WORLD);
    per_iteration.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
                            iterations);
  }
  std::sort(per_iteration.begin(), per_iteration.end());
  double const us = per_iteration[per_iteration.size() / 2];
  if (rank != 0) return;
  table const t = S::make();
  double const actions = static_cast<double>(t.total_actions());
  // the simulator's makespan, or all ranks' busy time over the cores when ranks outnumber them
  simulation const sim = simulate(t, sim_costs{cost_model{pass_us, pass_us, pass_us, 0}});
  double busy = 0;
  for (double b : sim.busy) busy += b;
  unsigned const cores = std::max(1u, std::min(std::thread::hardware_concurrency(), unsigned(S::ranks)));
  double const ideal = std::max(sim.makespan, busy / cores);
  std::printf("%-12s p%-2d %-6s pass %4.0f us  iteration %10.1f us  %7.3f us/action  ideal %9.1f us  overhead "
              "%7.3f us/action\n",
              S::name, S::ranks, synchronous ? "Ssend" : "Send", pass_us, us, us / actions, ideal,
              (us - ideal) / actions);
}

template <int P> void all(int rank, int iterations, int runs) {
  for (double pass_us : {0.0, 20.0})
    for (bool sync : {false, true}) {
      measure<one_f_one_b<ranks<P>, microbatches<32>>>(rank, pass_us, iterations, runs, sync);
      if constexpr (P == 4)
        measure<interleaved_1f1b<ranks<P>, microbatches<32>, chunks<2>>>(rank, pass_us, iterations, runs, sync);
    }
}

} // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int const iterations = argc > 1 ? std::atoi(argv[1]) : 20;
  int const runs = argc > 2 ? std::atoi(argv[2]) : 5;
  if (size == 2) all<2>(rank, iterations, runs);
  else if (size == 4) all<4>(rank, iterations, runs);
  else if (rank == 0) std::fprintf(stderr, "run with 2 or 4 processes\n");
  MPI_Finalize();
  return size == 2 || size == 4 ? 0 : 1;
}
