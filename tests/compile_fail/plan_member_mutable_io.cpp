// expect: member_problem::mutable_io
// expect: takes `pipesched::io&`; the plan passes `pipesched::io const&`
// errors: 1
// A member declared with io& (not io const&) exists but cannot be called: the message says
// so instead of "has no member".
#include <vector>

#include <pipesched/host/executor.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>

struct mutable_io {
  template <class Step> void forward(Step, pipesched::io&) {}
  template <class Step> void backward(Step, pipesched::io const&) {}
};

void run() {
  using S = pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<8>>;
  std::vector<mutable_io> f(4);
  pipesched::host::run<S>(f, pipesched::host::options{});
}
