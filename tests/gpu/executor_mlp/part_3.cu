// gpu.executor_mlp, part 3 of 4: the schedules at the indices i with i % 4 == 3
// (executor_mlp_train.cuh).
#include "../executor_mlp_train.cuh"

void executor_mlp_test::part_3() { run_part<3>(); }
