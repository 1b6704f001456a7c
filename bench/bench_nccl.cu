// NCCL benchmarks, one process per GPU under mpiexec (2 processes):
//
//   1. boundary latency and bandwidth per size: a boundary sent from rank 0 to rank 1 and
//      back as the executor issues it (one group per direction, through the library's NCCL
//      policy, polled like the executor polls); one-way time = half the round trip;
//   2. iterations of spin stages (every pass busy-waits a set time on one block) against the
//      simulator's prediction for the same pass times and the measured transfer time, for a
//      few schedules at p = 2, m = 16.
//
//   mpirun -np 2 build/default/bench/bench_nccl [pass_us=50] [iterations=20]
// Rank 0 prints the tables; exit 77 when the node has fewer GPUs than processes.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <pipesched/cuda/nccl_mpi.cuh>
#include <pipesched/pipeline/simulate_lowered.hpp>
#include <pipesched/schedules/interleaved.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

#include "support/gpu_bench.cuh"

namespace {

using namespace pipesched;

void ok(cudaError_t e, char const* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}
void ok(ncclResult_t e, char const* what) {
  if (e != ncclSuccess && e != ncclInProgress) {
    std::fprintf(stderr, "%s: %s\n", what, ncclGetErrorString(e));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

void enqueued(ncclComm_t c) {
  for (ncclResult_t state = ncclInProgress; state == ncclInProgress;) ok(ncclCommGetAsyncError(c, &state), "async");
}

/// One-way time (µs, median of `reps` round trips) of `bytes` between ranks 0 and 1.
double one_way_us(ncclComm_t c, int rank, void* buf, std::size_t bytes, cudaStream_t s, int reps) {
  using C = cuda::nccl_comm;
  int const peer = 1 - rank;
  std::vector<double> us;
  for (int k = 0; k < reps + 2; ++k) {
    MPI_Barrier(MPI_COMM_WORLD);
    auto const t0 = std::chrono::steady_clock::now();
    for (int dir = 0; dir < 2; ++dir) {
      ok(C::group_start(), "ncclGroupStart");
      if ((dir == 0) == (rank == 0)) ok(C::send(buf, bytes, peer, c, s), "ncclSend");
      else ok(C::recv(buf, bytes, peer, c, s), "ncclRecv");
      ok(C::group_end(), "ncclGroupEnd");
      enqueued(c);
    }
    ok(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    double const t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (k >= 2) us.push_back(t / 2);
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

/// Busy-waits `ns` nanoseconds of wall time (one block: the pass occupies one SM).
__global__ void spin(unsigned long long ns) { gpu_bench::spin_ns(ns); }
struct timed_stage {
  double us = 50;
  void pass(cudaStream_t s, double t) { spin<<<1, 32, 0, s>>>(static_cast<unsigned long long>(t * 1000)); }
  template <class St> void forward(St, io const& x) { pass(x.stream, us); }
  template <class St> void backward(St, io const& x) { pass(x.stream, 2 * us); }
  template <class St> void backward_input(St, io const& x) { pass(x.stream, us); }
  template <class St> void backward_weight(St, io const& x) { pass(x.stream, us); }
};

/// Prints (rank 0) and returns the measured median's relative difference to the simulation.
template <class S> double iteration_row(int rank, double pass_us, int iterations, std::size_t slot, double copy_us) {
  cuda::nccl_options o;
  o.slot_bytes = slot;
  auto p = cuda::nccl_from_mpi<S>(o);
  timed_stage f{pass_us};
  p.run(f);
  std::vector<double> us;
  for (int k = 0; k < iterations; ++k) {
    MPI_Barrier(MPI_COMM_WORLD);
    auto const t0 = std::chrono::steady_clock::now();
    p.run(f);
    MPI_Barrier(MPI_COMM_WORLD);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  simulation const sim = simulate_lowered(S::make(), sim_costs{cost_model{pass_us, pass_us, pass_us, copy_us}});
  if (rank == 0)
    std::printf("%-14s %8zu %12.1f %12.1f %+8.1f%%\n", S::name, S::make().total_actions(), sim.makespan,
                us[us.size() / 2], 100.0 * (us[us.size() / 2] - sim.makespan) / sim.makespan);
  return (us[us.size() / 2] - sim.makespan) / sim.makespan;
}

} // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  double const pass_us = argc > 1 ? std::atof(argv[1]) : 50;
  int const iterations = argc > 2 ? std::atoi(argv[2]) : 20;
  cuda::launch_info const who = cuda::launch_from_mpi();
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  int enough = size == 2 && devices > who.local_rank ? 1 : 0, all = 0;
  MPI_Allreduce(&enough, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all) {
    if (rank == 0) std::printf("needs 2 processes with a GPU each (%d GPU(s) here): not run\n", devices);
    MPI_Finalize();
    return 77;
  }
  ok(cudaSetDevice(who.local_rank), "cudaSetDevice");
  // 1. latency and bandwidth per size
  ncclUniqueId id{};
  if (rank == 0) ok(ncclGetUniqueId(&id), "ncclGetUniqueId");
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
  ncclComm_t comm = cuda::make_nonblocking_comm(id, 2, rank, std::chrono::seconds(60));
  std::size_t const largest = std::size_t{64} << 20;
  void* buf = nullptr;
  ok(cudaMalloc(&buf, largest), "cudaMalloc");
  cudaStream_t s = nullptr;
  ok(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  if (rank == 0) std::printf("# NCCL boundary, rank 0 <-> rank 1, one group per direction\n%12s %12s %12s\n", "bytes", "one-way us", "GB/s");
  double slot_us = 0;
  std::size_t const slot = 256 << 10;
  for (std::size_t bytes = 1024; bytes <= largest; bytes *= 4) {
    double const t = one_way_us(comm, rank, buf, bytes, s, iterations);
    if (bytes == slot) slot_us = t;
    if (rank == 0) std::printf("%12zu %12.2f %12.2f\n", bytes, t, static_cast<double>(bytes) / t / 1e3);
  }
  cudaFree(buf);
  cudaStreamDestroy(s);
  ncclCommDestroy(comm);
  // 2. spin-stage iterations against the simulator
  if (rank == 0)
    std::printf("# iterations, p = 2, m = 16, passes spin %.0f us, boundaries %zu bytes (%.1f us one-way)\n"
                "%-14s %8s %12s %12s %9s\n",
                pass_us, slot, slot_us, "schedule", "actions", "simulated us", "measured us", "diff");
  double worst = 0;
  for (double d : {iteration_row<one_f_one_b<stages<2>, microbatches<16>>>(rank, pass_us, iterations, slot, slot_us),
                   iteration_row<zb_h1<stages<2>, microbatches<16>>>(rank, pass_us, iterations, slot, slot_us),
                   iteration_row<interleaved_1f1b<stages<2>, microbatches<16>, chunks<2>>>(rank, pass_us, iterations,
                                                                                            slot, slot_us)})
    worst = std::max(worst, std::abs(d));
  // the one line a script greps for, like the other GPU benchmarks' (bench_cuda_schedules, ...)
  if (rank == 0)
    std::printf("\nsummary: %zu-byte boundary %.1f us one-way; spin iterations within %.1f %% of the simulator\n", slot,
                slot_us, 100 * worst);
  MPI_Finalize();
  return 0;
}
