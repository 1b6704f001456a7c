// np: 2
// NCCL across processes: under mpiexec, one process per GPU (nccl_from_mpi: the id over
// MPI_Bcast, the local rank's GPU), every schedule family at p = 2 with boundaries of
// different sizes per stage; kernels stamp every output boundary over its whole size and
// check every input — the data each rank reads is the data its producer wrote this
// iteration, two iterations each. DualPipe-V also with a functor that has forward_backward:
// each overlapped pair of the rank's list one call (counted against the list), the same
// stamps checked. Skipped (77, on every rank) when the node has fewer GPUs than processes.
#include <cstdio>
#include <string>

#include "nccl_mpi_test.cuh"

#include "pipesched/schedules/dualpipe_v.hpp"
#include "pipesched/schedules/gpipe.hpp"
#include "pipesched/schedules/interleaved.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/v_shape.hpp"
#include "pipesched/schedules/zb_v.hpp"
#include "pipesched/schedules/zero_bubble.hpp"

using namespace pipesched;

namespace {

/// nccl_test::stamping with forward_backward: each overlapped pair one call (counted), the
/// backward half's kernels first, then the forward half's.
struct pair_stamping : nccl_test::stamping {
  int pairs = 0;
  template <class SF, class SB> void forward_backward(SF sf, SB sb, io const& xf, io const& xb) {
    ++pairs;
    if constexpr (SB::kind == op::backward) backward(sb, xb);
    else backward_input(sb, xb);
    forward(sf, xf);
  }
};

template <class S, class F = nccl_test::stamping> int run_one(int* bad) {
  cuda::nccl_options const o = nccl_test::varied_boundaries(S::stages);
  auto p = cuda::nccl_from_mpi<S>(o);
  cudaMemset(bad, 0, sizeof(int));
  F f{};
  f.bad = bad;
  f.salt = 1;
  p.run(f);
  f.salt = 2;
  p.run(f);
  int h = 0;
  cudaMemcpy(&h, bad, sizeof(int), cudaMemcpyDeviceToHost);
  std::printf("rank %d: %s: %d bytes wrong, %zu groups (largest %d), %zu warm-up groups\n", p.rank(), S::name, h,
              p.executor().groups_issued(), p.executor().largest_group(), p.executor().warm_up_groups());
  int failed = h == 0 ? 0 : 1;
  if constexpr (requires { f.pairs; }) {
    int want = 0; // the overlapped pairs of this rank's list, twice (two iterations)
    table const t = S::make();
    for (action const& a : t.lists[static_cast<std::size_t>(p.rank())]) want += overlaps_next(a) ? 2 : 0;
    std::printf("rank %d: %s: %d forward_backward calls, %d pairs in two iterations\n", p.rank(), S::name, f.pairs, want);
    if (want == 0 || f.pairs != want) failed = 1;
  }
  return failed;
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
    failures += run_one<dualpipe_v<stages<2>, microbatches<4>>>(bad);
    failures += run_one<dualpipe_v<stages<2>, microbatches<4>>, pair_stamping>(bad);
    return failures;
  });
}
