// gpu.executor_mlp, part 1 of 4: the schedules at the indices i with i % 4 == 1
// (executor_mlp_train.cuh).
#include "../executor_mlp_train.cuh"

void executor_mlp_test::part_1() { run_part<1>(); }
