// gpu.executor_mlp, part 0 of 4: the schedules at the indices i with i % 4 == 0
// (executor_mlp_train.cuh).
#include "../executor_mlp_train.cuh"

void executor_mlp_test::part_0() { run_part<0>(); }
