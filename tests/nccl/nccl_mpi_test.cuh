// The start every tests/nccl/*.cu run under mpiexec shares: MPI_Init, who this process is,
// and one decision for all processes whether the node has a GPU for each of its processes
// (a collective, so every rank skips alike; rank 0 says why). Separate from nccl_test.cuh,
// which the one-process tests include without MPI.
#pragma once

#include <mpi.h>

#include <cstdio>

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

} // namespace nccl_test
