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
  cuda::nccl_options const o = nccl_test::varied_boundaries(S::stages);
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
  return nccl_test::run_counted(&argc, &argv, [](nccl_test::mpi_start const&, int* bad) {
    int failures = 0; // one statement each: every rank must make the processes in the same order
    failures += run_one<gpipe<stages<2>, microbatches<4>>>(bad);
    failures += run_one<one_f_one_b<stages<2>, microbatches<6>>>(bad);
    failures += run_one<interleaved_1f1b<stages<2>, microbatches<4>, chunks<2>>>(bad);
    failures += run_one<zb_h1<stages<2>, microbatches<4>>>(bad);
    failures += run_one<zb_v<stages<2>, microbatches<4>>>(bad);
    failures += run_one<v_half<stages<2>, microbatches<4>>>(bad);
    return failures;
  });
}
