// Every training schedule on one GPU with p = 4 stages (each rank its own streams) trains the
// MLP of tests/cpu/plan_mlp.hpp 3 steps through pipesched::cuda::executor, and the losses and
// weights equal the host backend's training of the same model within 1e-10 relative (the
// GPU's tanh/exp/log and fused multiply-adds round differently in the last bits; built with
// --fmad=false to keep the arithmetic otherwise the same). Skipped (77) without a GPU.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_mlp.cuh"
#include "gpu_test.cuh"

#include "../cpu/plan_support.hpp"
#include "pipesched/cuda/executor.cuh"
#include "pipesched/host/executor.hpp"

namespace {

using gpu_test::expect;
using gpu_test::loss_message;
using gpu_test::rel;

constexpr double tolerance = 1e-10;

template <class S> void train() {
  constexpr int steps = 3;
  gpu_mlp::host_training<S> host(12);
  gpu_mlp::model gpu(host.model); // the same initial weights and data
  pipesched::cuda::executor<S> gx({.slot_bytes = gpu.boundary_bytes()});
  std::vector<gpu_mlp::stage_functor> gf(S::ranks, gpu_mlp::stage_functor{&gpu});
  std::string const name = plan_test::label<S>();
  for (int step = 0; step < steps; ++step) {
    double const want = host.step();
    gx.run(gf);
    double const got = gpu.apply_all(nullptr);
    expect(rel(got, want) <= tolerance, loss_message(name, step, got, "host", want));
  }
  double const d = gpu_mlp::max_relative_difference(gpu, host.model);
  expect(d <= tolerance, name + ": weights differ by " + std::to_string(d));
  std::printf("  %-22s loss and weights within %.1e of the host backend (largest %.2e)\n", name.c_str(), tolerance, d);
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  return gpu_test::run("gpu.executor_mlp", [] {
    plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) { train<S>(); });
  });
}
