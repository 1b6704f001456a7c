// gpu.persistent_mlp, part 4 of 5: the schedules at the indices i with i % 5 == 4
// (persistent_mlp_train.cuh).
#include "../persistent_mlp_train.cuh"

void persistent_mlp_test::part_4() { run_part<4>(); }
