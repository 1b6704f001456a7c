// gpu.persistent_mlp, part 0 of 5: the schedules at the indices i with i % 5 == 0
// (persistent_mlp_train.cuh).
#include "../persistent_mlp_train.cuh"

void persistent_mlp_test::part_0() { run_part<0>(); }
