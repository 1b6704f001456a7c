// expect: member_problem::runtime_step
// expect: takes a `pipesched::runtime_step`, but a compiled plan passes a compile-time step type
// errors: 1
// A non-template member taking the run-time step cannot serve a compiled plan: the message
// says how to write it (a template that hands runtime_of(step) on) or to use a runtime
// executor.
#include <vector>

#include <pipesched/host/executor.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>

struct runtime_only {
  void forward(pipesched::runtime_step const&, pipesched::io const&) {}
  void backward(pipesched::runtime_step const&, pipesched::io const&) {}
};

void run() {
  using S = pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<8>>;
  std::vector<runtime_only> f(4);
  pipesched::host::run<S>(f, pipesched::host::options{});
}
