// Every training schedule on one GPU with p = 4 stages (each rank its own streams) trains the
// MLP of tests/cpu/plan_mlp.hpp 3 steps through pipesched::cuda::executor, and the losses and
// weights equal the host backend's training of the same model within 1e-10 relative (the
// GPU's tanh/exp/log and fused multiply-adds round differently in the last bits; built with
// --fmad=false to keep the arithmetic otherwise the same). Skipped (77) without a GPU.
// Compiled in parts, side by side: the training is in executor_mlp_train.cuh, part k in
// executor_mlp/part_<k>.cu (so the schedules' lines print part by part, not in list order).
#include "executor_mlp_train.cuh"
#include "gpu_test.cuh"

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  return gpu_test::run("gpu.executor_mlp", [] {
    // every part once: their slices partition the schedules, so each is trained once
    static_assert(executor_mlp_test::parts == 4, "main calls part_0 .. part_3: one call per part");
    executor_mlp_test::part_0();
    executor_mlp_test::part_1();
    executor_mlp_test::part_2();
    executor_mlp_test::part_3();
  });
}
