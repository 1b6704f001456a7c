// gpu.executor_mlp, part 2 of 4: the schedules at the indices i with i % 4 == 2
// (executor_mlp_train.cuh).
#include "../executor_mlp_train.cuh"

void executor_mlp_test::part_2() { run_part<2>(); }
