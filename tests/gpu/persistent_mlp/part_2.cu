// gpu.persistent_mlp, part 2 of 5: the schedules at the indices i with i % 5 == 2
// (persistent_mlp_train.cuh).
#include "../persistent_mlp_train.cuh"

void persistent_mlp_test::part_2() { run_part<2>(); }
