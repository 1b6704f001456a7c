// expect: stage_functor_member_error<pipesched::schedule<pipesched::zb_h1_family.*op::backward_input, pipesched::detail::member_problem::missing>
// expect: has no member `template <class Step> void backward_input\(Step, pipesched::io const&\)`
// errors: 1
// One mistake, one message on the CUDA streams executor (over the CPU tests' emulated
// runtime; the CUDA runtime policy instantiates the same code): a functor without
// backward_input and backward_weight got the sentence and then every call the executor
// issued anyway, about a hundred errors (nvcc stopped at its limit of 100, on
// docs/04_cuda.md's first example); now nothing is issued after the report.
#include <vector>

#include "pipesched/cuda/basic_executor.hpp"
#include "pipesched/schedules/zero_bubble.hpp"
#include "support/emulated_cuda.hpp"

struct fused_only {
  template <class Step> void forward(Step, pipesched::io const&) {}
  template <class Step> void backward(Step, pipesched::io const&) {}
};

using S = pipesched::zb_h1<pipesched::ranks<4>, pipesched::microbatches<8>>;

void run(pipesched::cuda::basic_executor<S, emu::runtime>& ex) {
  std::vector<fused_only> f(4);
  ex.run(f);
  ex.capture(f);
}
