// expect: stage_functor_member_error<pipesched::schedule<pipesched::zb_h1_family.*has no member.*void backward_input\(Step
// ZB-H1 splits the backward into I and W: a functor with only forward and a fused backward
// must stop the build with a message naming the schedule and the missing member.
#include <pipesched/plan/plan.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

struct fused_only {
  template <class Step> void forward(Step, pipesched::io const&) {}
  template <class Step> void backward(Step, pipesched::io const&) {}
};
struct transport {
  template <class Step> void send(Step, pipesched::io const&) {}
  template <class Step> void recv(Step, pipesched::io const&) {}
};

void run(fused_only& f, transport& t, pipesched::view const* slots) {
  using S = pipesched::zb_h1<pipesched::stages<4>, pipesched::microbatches<8>>;
  pipesched::plan<S, 1>::run(f, t, slots);
}
