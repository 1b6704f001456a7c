// Consumer of an installed pipesched: builds a schedule type and simulates it. With the
// components linked, also calls into CUDA, NCCL and MPI (no device or launcher needed).
#include <pipesched/pipesched.hpp>

#include <cstdio>
#include <string>

#if CONSUMER_HAS_CUDA
#include <cuda_runtime.h>
#endif
#if CONSUMER_HAS_NCCL
#include <nccl.h>
#include <pipesched/cuda/launch.hpp>
#endif
#if CONSUMER_HAS_MPI
#include <mpi.h>
#endif

int main() {
  using S = pipesched::one_f_one_b<pipesched::stages<4>, pipesched::microbatches<8>>;
  static_assert(S::valid);
  auto const sim = pipesched::simulate(S::make());
  std::printf("%s p=%d m=%d makespan=%g\n", S::name, S::ranks, S::microbatches, sim.makespan);
  int failures = 0;
  if (!sim.ok() || sim.makespan != 33) ++failures;
#if CONSUMER_HAS_CUDA
  int rt = 0;
  if (cudaRuntimeGetVersion(&rt) != cudaSuccess || rt <= 0) ++failures;
  std::printf("cuda runtime %d\n", rt);
#endif
#if CONSUMER_HAS_NCCL
  int nv = 0;
  if (ncclGetVersion(&nv) != ncclSuccess || nv <= 0) ++failures;
  std::printf("nccl %d\n", nv);
  // the installed launch header: rank, size and local rank from torchrun-style variables
  auto const who = pipesched::cuda::launch_from_env([](char const* name) -> char const* {
    std::string const n = name;
    return n == "RANK" ? "2" : n == "WORLD_SIZE" ? "4" : n == "LOCAL_RANK" ? "0" : nullptr;
  });
  if (who.rank != 2 || who.world_size != 4 || who.local_rank != 0) ++failures;
#endif
#if CONSUMER_HAS_MPI
  int major = 0, minor = 0;
  MPI_Get_version(&major, &minor);
  if (major < 3) ++failures;
  std::printf("mpi %d.%d\n", major, minor);
#endif
  std::puts(failures ? "FAILED" : "OK");
  return failures ? 1 : 0;
}
