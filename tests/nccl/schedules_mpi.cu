// np: 2
// NCCL across processes: under mpiexec, one process per GPU (nccl_from_mpi: the id over
// MPI_Bcast, the local rank's GPU), every schedule family at p = 2 with boundaries of
// different sizes per stage; kernels stamp every output boundary over its whole size and
// check every input — the data each rank reads is the data its producer wrote this
// iteration, two iterations each. Skipped (77, on every rank) when the node has fewer GPUs
// than processes.
#include <cstdio>
#include <string>

#include "nccl_mpi_test.cuh"

#include "pipesched/schedules/gpipe.hpp"
#include "pipesched/schedules/interleaved.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/v_shape.hpp"
#include "pipesched/schedules/zb_v.hpp"
#include "pipesched/schedules/zero_bubble.hpp"

using namespace pipesched;

namespace {

template <class S> int run_one(int* bad) {
  cuda::nccl_options o;
  for (int s = 0; s < S::stages; ++s) {
    o.boundaries.activation.push_back(256 + 64 * static_cast<std::size_t>(s));
    o.boundaries.gradient.push_back(1024 + 32 * static_cast<std::size_t>(s));
  }
  o.deadline = std::chrono::seconds(60);
  auto p = cuda::nccl_from_mpi<S>(o);
  cudaMemset(bad, 0, sizeof(int));
  nccl_test::stamping f{bad, 1};
  p.run(f);
  f.salt = 2;
  p.run(f);
  int h = 0;
  cudaMemcpy(&h, bad, sizeof(int), cudaMemcpyDeviceToHost);
  std::printf("rank %d: %s: %d bytes wrong, %zu groups (largest %d), %zu warm-up groups\n", p.rank(), S::name, h,
              p.executor().groups_issued(), p.executor().largest_group(), p.executor().warm_up_groups());
  return h == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  nccl_test::mpi_start const run = nccl_test::start_mpi(&argc, &argv);
  if (!run.enough_gpus) {
    MPI_Finalize();
    return nccl_test_skipped;
  }
  int const rank = run.rank;
  cudaSetDevice(run.who.local_rank);
  int failures = 0;
  try {
    int* bad = nullptr;
    cudaMalloc(&bad, sizeof(int));
    failures += run_one<gpipe<stages<2>, microbatches<4>>>(bad);
    failures += run_one<one_f_one_b<stages<2>, microbatches<6>>>(bad);
    failures += run_one<interleaved_1f1b<stages<2>, microbatches<4>, chunks<2>>>(bad);
    failures += run_one<zb_h1<stages<2>, microbatches<4>>>(bad);
    failures += run_one<zb_v<stages<2>, microbatches<4>>>(bad);
    failures += run_one<v_half<stages<2>, microbatches<4>>>(bad);
    cudaFree(bad);
  } catch (std::exception const& e) {
    std::printf("rank %d FAILED: %s\n", rank, e.what());
    failures += 1;
  }
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) std::puts(total ? "FAILED" : "OK");
  MPI_Finalize();
  return total ? 1 : 0;
}
