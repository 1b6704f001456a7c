// expect: stage_functor_member_error<pipesched::schedule<pipesched::gpipe_family.*has no member.*void forward\(Step
// Every schedule runs forward passes: a functor without forward must stop the build with a
// message naming the schedule and the missing member.
#include <pipesched/plan/plan.hpp>
#include <pipesched/schedules/gpipe.hpp>

struct no_forward {
  template <class Step> void backward(Step, pipesched::io const&) {}
};
struct transport {
  template <class Step> void send(Step, pipesched::io const&) {}
  template <class Step> void recv(Step, pipesched::io const&) {}
};

void run(no_forward& f, transport& t, pipesched::view const* slots) {
  using S = pipesched::gpipe<pipesched::stages<4>, pipesched::microbatches<8>>;
  pipesched::plan<S, 0>::run(f, t, slots);
}
