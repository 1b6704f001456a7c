// The CUDA executor for run-time tables on one GPU (p = 4 ranks, each its own streams): for
// every training schedule, pipesched::cuda::runtime_executor running the schedule's own table
// (thawed, as a runtime_schedule, with the schedule's costs so that it issues the same stream
// program) trains the MLP of tests/cpu/plan_mlp.hpp 3 steps with the same losses, to the last
// bit, as pipesched::cuda::executor<S> (the same kernels launched in the same per-stage order on
// the same data: gpu_mlp's kernels use no atomics), and both stay within 1e-10 relative of the
// host backend (as in executor_mlp.cu). Skipped (77) without a GPU.
// Compiled in parts, side by side: the training is in runtime_executor_mlp_train.cuh, part k in
// runtime_executor_mlp/part_<k>.cu (so the schedules' lines print part by part, not in list order).
#include "gpu_test.cuh"
#include "runtime_executor_mlp_train.cuh"

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  return gpu_test::run("gpu.runtime_executor_mlp", [] {
    // every part once: their slices partition the schedules, so each is trained once
    static_assert(runtime_executor_mlp_test::parts == 4, "main calls part_0 .. part_3: one call per part");
    runtime_executor_mlp_test::part_0();
    runtime_executor_mlp_test::part_1();
    runtime_executor_mlp_test::part_2();
    runtime_executor_mlp_test::part_3();
  });
}
