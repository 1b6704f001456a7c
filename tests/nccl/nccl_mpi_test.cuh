// The start every tests/nccl/*.cu run under mpiexec shares: MPI_Init, who this process is,
// and one decision for all processes whether the node has a GPU for each of its processes
// (a collective, so every rank skips alike; rank 0 says why); and the main() of the tests
// whose processes each count their own failures. Separate from nccl_test.cuh, which the
// one-process tests include without MPI.
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>

#include "nccl_test.cuh"

#include "pipesched/cuda/nccl_mpi.cuh"

namespace nccl_test {

struct mpi_start {
  int rank = 0, size = 1;
  pipesched::cuda::launch_info who;
  bool enough_gpus = false; ///< every process has a GPU of its own (same on every rank)
};

/// MPI_Init, then the GPU check. When `enough_gpus` is false, the caller calls MPI_Finalize
/// and returns nccl_test_skipped (77).
inline mpi_start start_mpi(int* argc, char*** argv) {
  MPI_Init(argc, argv);
  mpi_start s;
  MPI_Comm_rank(MPI_COMM_WORLD, &s.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &s.size);
  s.who = pipesched::cuda::launch_from_mpi();
  int const devices = nccl_test_devices();
  int enough = devices > s.who.local_rank ? 1 : 0, all = 0;
  MPI_Allreduce(&enough, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  s.enough_gpus = all != 0;
  if (!s.enough_gpus && s.rank == 0)
    std::printf("SKIPPED: %d process(es) per node need as many GPUs, found %d\n", s.size, devices);
  return s;
}

/// Options whose boundaries differ in size per stage (activation 256 + 64 s bytes, gradient
/// 1024 + 32 s), so that a boundary read with another's size shows; a 60 s deadline.
inline pipesched::cuda::nccl_options varied_boundaries(int stages) {
  pipesched::cuda::nccl_options o;
  for (int s = 0; s < stages; ++s) {
    o.boundaries.activation.push_back(256 + 64 * static_cast<std::size_t>(s));
    o.boundaries.gradient.push_back(1024 + 32 * static_cast<std::size_t>(s));
  }
  o.deadline = std::chrono::seconds(60);
  return o;
}

/// main() for a test whose processes each count their own failures: start_mpi (77 on every
/// rank without enough GPUs), this process's GPU, then `body(run, bad)` returns this rank's
/// failures (`bad`: one device int for the stamping kernels to count wrong bytes in); an
/// exception it lets out is one failure, named with the rank. The failures of all ranks are
/// summed; rank 0 prints OK or FAILED. Returns main's exit code.
template <class Body> int run_counted(int* argc, char*** argv, Body&& body) {
  mpi_start const run = start_mpi(argc, argv);
  if (!run.enough_gpus) {
    MPI_Finalize();
    return nccl_test_skipped;
  }
  cudaSetDevice(run.who.local_rank);
  int failures = 0;
  int* bad = nullptr;
  try {
    cudaMalloc(&bad, sizeof(int));
    failures = body(run, bad);
  } catch (std::exception const& e) {
    std::printf("rank %d FAILED: %s\n", run.rank, e.what());
    failures += 1;
  }
  cudaFree(bad);
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (run.rank == 0) std::puts(total ? "FAILED" : "OK");
  MPI_Finalize();
  return total ? 1 : 0;
}

} // namespace nccl_test
