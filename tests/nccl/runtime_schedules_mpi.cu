// np: 2
// NCCL across processes for schedules chosen at run time: under mpiexec, one process per GPU
// (nccl_from_mpi with a runtime_schedule: the id over MPI_Bcast, the local rank's GPU), every
// registered family that accepts p = 2 made by make_schedule, with boundaries of different
// sizes per stage; kernels stamp every output boundary over its whole size and check every
// input — the data each rank reads is the data its producer wrote this iteration, two eager
// iterations, then one iteration captured and replayed twice. Skipped (77, on every rank)
// when the node has fewer GPUs than processes.
#include <cstdio>
#include <string>

#include "nccl_mpi_test.cuh"

#include "pipesched/plan/runtime_plan.hpp"
#include "pipesched/schedules/registry.hpp"

using namespace pipesched;

namespace {

/// nccl_test::stamping for runtime_steps: the same kernels, the step's fields read at run time.
struct runtime_stamping {
  int* bad = nullptr;
  int salt = 0;
  void forward(runtime_step const& s, io const& x) {
    if (s.has_in)
      nccl_test::verify<<<1, 128, 0, x.stream>>>(x.in.as<unsigned char>(), x.in.bytes, 1, s.stage - 1, s.mb, salt, bad);
    if (s.has_out)
      nccl_test::stamp<<<1, 128, 0, x.stream>>>(x.out.as<unsigned char>(), x.out.bytes, 1, s.stage, s.mb, salt);
  }
  void backward(runtime_step const& s, io const& x) { backward_input(s, x); }
  void backward_input(runtime_step const& s, io const& x) {
    if (s.has_in)
      nccl_test::verify<<<1, 128, 0, x.stream>>>(x.in.as<unsigned char>(), x.in.bytes, 2, s.stage + 1, s.mb, salt, bad);
    if (s.has_aux)
      nccl_test::verify<<<1, 128, 0, x.stream>>>(x.aux.as<unsigned char>(), x.aux.bytes, 1, s.stage - 1, s.mb, salt,
                                                 bad);
    if (s.has_out)
      nccl_test::stamp<<<1, 128, 0, x.stream>>>(x.out.as<unsigned char>(), x.out.bytes, 2, s.stage, s.mb, salt);
  }
  void backward_weight(runtime_step const& s, io const& x) {
    if (s.has_in)
      nccl_test::verify<<<1, 128, 0, x.stream>>>(x.in.as<unsigned char>(), x.in.bytes, 2, s.stage + 1, s.mb, salt, bad);
    if (s.has_aux)
      nccl_test::verify<<<1, 128, 0, x.stream>>>(x.aux.as<unsigned char>(), x.aux.bytes, 1, s.stage - 1, s.mb, salt,
                                                 bad);
  }
};

int wrong_bytes(int* bad) {
  int h = 0;
  cudaDeviceSynchronize();
  cudaMemcpy(&h, bad, sizeof(int), cudaMemcpyDeviceToHost);
  cudaMemset(bad, 0, sizeof(int));
  return h;
}

int run_one(std::string const& name, runtime_schedule const& sched, int* bad) {
  cuda::nccl_options const o = nccl_test::varied_boundaries(sched.stages);
  cuda::nccl_runtime_process p = cuda::nccl_from_mpi(sched, o);
  cudaMemset(bad, 0, sizeof(int));
  runtime_stamping f{bad, 1};
  p.run(f);
  f.salt = 2;
  p.run(f);
  int const eager = wrong_bytes(bad);
  f.salt = 3; // the stamps the graph's kernels carry
  p.capture(f);
  p.replay();
  p.replay();
  int const replayed = wrong_bytes(bad);
  std::printf("rank %d: %s: %d / %d bytes wrong (eager / replayed), %zu groups (largest %d)\n", p.rank(), name.c_str(),
              eager, replayed, p.executor().groups_issued(), p.executor().largest_group());
  return eager == 0 && replayed == 0 && p.executor().replays() == 2 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  return nccl_test::run_counted(&argc, &argv, [](nccl_test::mpi_start const& run, int* bad) {
    int failures = 0, ran = 0;
    for (auto const& e : schedule_registry) {
      params const pr{run.size, 4};
      if (e.check(pr)) continue;
      failures += run_one(std::string(e.name), runtime_schedule(make_schedule(e.name, pr)), bad);
      ++ran;
    }
    if (ran < 6) { // 1f1b, gpipe, interleaved, zb-h1, zb-v, v-half at least accept p = 2, m = 4
      std::printf("rank %d FAILED: only %d families ran\n", run.rank, ran);
      failures += 1;
    }
    return failures;
  });
}
