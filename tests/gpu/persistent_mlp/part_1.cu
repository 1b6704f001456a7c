// gpu.persistent_mlp, part 1 of 5: the schedules at the indices i with i % 5 == 1
// (persistent_mlp_train.cuh).
#include "../persistent_mlp_train.cuh"

void persistent_mlp_test::part_1() { run_part<1>(); }
