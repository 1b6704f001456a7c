// The persistent executor trains the MLP of tests/cpu/plan_mlp.hpp with device functors
// (tests/gpu/persistent_mlp.cuh) 3 steps on one GPU, p = 4, for GPipe, 1F1B, interleaved 1F1B
// (v = 2), ZB-H1 (I and W apart) and ZB-V (V placement): the losses and weights equal the
// streams executor's training of the same model (gpu_mlp, the same device arithmetic in the
// same order) to the last bit, and the host backend's within 1e-10 relative (the GPU's
// tanh/exp/log round differently in the last bits; built with --fmad=false). Block groups:
// shared out by the schedule's pass costs, and given by hand (1, 3, 2, 2). Skipped (77)
// without a GPU. NOT RUN YET on a GPU (written 2026-12-01 without one).
// Compiled in parts, side by side: the training is in persistent_mlp_train.cuh, part k in
// persistent_mlp/part_<k>.cu (so the schedules' lines print part by part, not in list order).
#include "gpu_test.cuh"
#include "persistent_mlp_train.cuh"

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  return gpu_test::run("gpu.persistent_mlp", [] {
    // every part once: their slices partition the schedules, so each is trained once
    static_assert(persistent_mlp_test::parts == 5, "main calls part_0 .. part_4: one call per part");
    persistent_mlp_test::part_0();
    persistent_mlp_test::part_1();
    persistent_mlp_test::part_2();
    persistent_mlp_test::part_3();
    persistent_mlp_test::part_4();
  });
}
