// The CUDA executor for run-time tables on one GPU (p = 4 ranks, each its own streams): for
// every training schedule, pipesched::cuda::runtime_executor running the schedule's own table
// (thawed, as a runtime_schedule, with the schedule's costs so that it issues the same stream
// program) trains the MLP of tests/cpu/plan_mlp.hpp 3 steps with the same losses, to the last
// bit, as pipesched::cuda::executor<S> (the same kernels launched in the same per-stage order on
// the same data: gpu_mlp's kernels use no atomics), and both stay within 1e-10 relative of the
// host backend (as in executor_mlp.cu). Skipped (77) without a GPU.
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
  gpu_mlp::model compiled(host.model), runtime(host.model); // the same initial weights and data
  pipesched::cuda::executor<S> cx({.slot_bytes = compiled.boundary_bytes()});
  pipesched::cuda::runtime_executor rx(pipesched::runtime_schedule(pipesched::thaw(S::lowered)),
                                       {.slot_bytes = runtime.boundary_bytes()}, S::parameters.cost);
  std::vector<gpu_mlp::stage_functor> cf(S::ranks, gpu_mlp::stage_functor{&compiled});
  std::vector<gpu_mlp::stage_functor> rf(S::ranks, gpu_mlp::stage_functor{&runtime});
  std::string const name = plan_test::label<S>();
  for (int step = 0; step < steps; ++step) {
    double const want = host.step();
    cx.run(cf);
    double const got_compiled = compiled.apply_all(nullptr);
    rx.run(rf);
    double const got_runtime = runtime.apply_all(nullptr);
    expect(got_runtime == got_compiled,
           loss_message(name, step, got_runtime, "compile-time executor", got_compiled) + " (run-time executor)");
    expect(rel(got_runtime, want) <= tolerance, loss_message(name, step, got_runtime, "host", want));
  }
  expect(gpu_mlp::parameters(runtime) == gpu_mlp::parameters(compiled), name + ": the two executors' weights differ");
  double const dr = gpu_mlp::max_relative_difference(runtime, host.model);
  expect(dr <= tolerance, name + ": weights differ by " + std::to_string(dr));
  std::printf("  %-22s run-time executor equals the compile-time one; within %.1e of the host (largest %.2e)\n",
              name.c_str(), tolerance, dr);
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  return gpu_test::run("gpu.runtime_executor_mlp", [] {
    plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) { train<S>(); });
  });
}
