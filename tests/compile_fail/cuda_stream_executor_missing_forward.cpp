// expect: pipesched: cuda::stream_executor: the stage functor has no member `template <class Step> void forward\(Step const&, pipesched::io const&\)` accepting a pipesched::runtime_step
// errors: 1
// One mistake, one message on the CUDA stream executor (endless input streams; over the CPU
// tests' emulated runtime, as the CUDA runtime policy instantiates the same code): a stage
// functor whose forward takes something else than a step. Before, the two calls failed where
// the executor issues them (eager and captured): two errors inside the executor, neither
// naming the rule.
#include <vector>

#include "pipesched/cuda/basic_stream_executor.hpp"
#include "support/emulated_cuda.hpp"

struct wrong_stage {
  void forward(int, pipesched::io const&) {} // not a step
};

void run(std::vector<wrong_stage>& fs, pipesched::cuda::stream_options const& o) {
  pipesched::cuda::basic_stream_executor<wrong_stage, emu::runtime> ex(fs, o);
  (void)ex.push(nullptr); // issues the stages
  (void)ex.pop();
}
