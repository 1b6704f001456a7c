// gpu.persistent_mlp, part 3 of 5: the schedules at the indices i with i % 5 == 3
// (persistent_mlp_train.cuh).
#include "../persistent_mlp_train.cuh"

void persistent_mlp_test::part_3() { run_part<3>(); }
