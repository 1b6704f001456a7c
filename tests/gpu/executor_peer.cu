// Several GPUs in one process: one rank per GPU (options::devices), peer access enabled both
// ways, boundaries moved with cudaMemcpyPeerAsync; the MLP trains like the host backend
// (1e-10 relative). Needs two or more GPUs: skipped (77) otherwise.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_mlp.cuh"
#include "gpu_test.cuh"

#include "pipesched/cuda/executor.cuh"
#include "pipesched/host/executor.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  int devices = 0;
  PIPESCHED_GPU_TEST_CHECK(cudaGetDeviceCount(&devices));
  if (devices < 2) {
    std::printf("SKIPPED: one GPU (the peer-copy mode needs two or more)\n");
    return pipesched_test_skipped;
  }
  using S = pipesched::one_f_one_b<pipesched::stages<2>, pipesched::microbatches<6>>;
  try {
    mlp::config c;
    c.microbatches = 6;
    c.stages = 2;
    mlp::model host(c);
    gpu_mlp::model gpu(host); // the model's own state on device 0; the slots on each rank's device
    pipesched::cuda::options o;
    o.slot_bytes = gpu.boundary_bytes();
    o.devices = {0, 1};
    pipesched::cuda::executor<S> gx(o);
    pipesched::host::executor<S> hx({.slot_bytes = host.boundary_bytes()});
    std::vector<gpu_mlp::stage_functor> gf(2, gpu_mlp::stage_functor{&gpu});
    std::vector<mlp::stage_functor> hf(2, mlp::stage_functor{&host});
    int bad = 0;
    for (int step = 0; step < 3; ++step) {
      gx.run(gf);
      PIPESCHED_GPU_TEST_CHECK(cudaSetDevice(0));
      double const got = gpu.apply_all(nullptr);
      hx.run(hf);
      double const want = host.apply_all();
      if (std::fabs(got - want) > 1e-10 * std::fabs(want)) ++bad;
    }
    double const d = gpu_mlp::max_relative_difference(gpu, host);
    bad += d > 1e-10 ? 1 : 0;
    std::printf("gpu.executor_peer: 2 GPUs, weights within %.2e of the host: %s\n", d, bad == 0 ? "OK" : "FAILED");
    return bad == 0 ? 0 : 1;
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
}
