// expect: stage_functor_member_error<pipesched::schedule<pipesched::zb_h1_family.*op::backward_input, pipesched::detail::member_problem::missing>
// expect: has no member `template <class Step> void backward_input\(Step, pipesched::io const&\)`
// errors: 1
// One mistake, one message: a functor that lacks both backward_input and backward_weight,
// run by the host executor on 4 ranks, used to get the sentence once per rank and per
// member (8 errors); now the first missing member is reported once, naming the schedule.
#include <vector>

#include <pipesched/host/executor.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

struct fused_only {
  template <class Step> void forward(Step, pipesched::io const&) {}
  template <class Step> void backward(Step, pipesched::io const&) {}
};

void run() {
  using S = pipesched::zb_h1<pipesched::ranks<4>, pipesched::microbatches<8>>;
  std::vector<fused_only> f(4);
  pipesched::host::run<S>(f, pipesched::host::options{});
}
