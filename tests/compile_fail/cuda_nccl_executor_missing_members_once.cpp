// expect: stage_functor_member_error<pipesched::schedule<pipesched::zb_h1_family.*op::backward_input, pipesched::detail::member_problem::missing>
// expect: has no member `template <class Step> void backward_input\(Step, pipesched::io const&\)`
// errors: 1
// One mistake, one message on the NCCL executor (over the CPU tests' emulated NCCL; the NCCL
// policies instantiate the same code): a functor without backward_input and backward_weight
// got the sentence and then every call the executor issued anyway for each of the 4 ranks
// (nvcc stopped at its limit of 100 errors); now nothing is issued after the report.
#include "pipesched/cuda/basic_nccl_executor.hpp"
#include "pipesched/schedules/zero_bubble.hpp"
#include "support/emulated_nccl.hpp"

struct fused_only {
  template <class Step> void forward(Step, pipesched::io const&) {}
  template <class Step> void backward(Step, pipesched::io const&) {}
};

using S = pipesched::zb_h1<pipesched::ranks<4>, pipesched::microbatches<8>>;

void run(pipesched::cuda::basic_nccl_executor<S, emu_nccl::runtime, emu_nccl::nccl>& ex) {
  fused_only f;
  ex.run(f);
  ex.capture(f);
}
