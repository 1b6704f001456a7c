// gpu.runtime_executor_mlp, part 2 of 4: the schedules at the indices i with i % 4 == 2
// (runtime_executor_mlp_train.cuh).
#include "../runtime_executor_mlp_train.cuh"

void runtime_executor_mlp_test::part_2() { run_part<2>(); }
