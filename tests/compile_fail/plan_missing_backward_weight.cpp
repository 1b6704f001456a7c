// expect: stage_functor_member_error<pipesched::schedule<pipesched::zb_v_family.*has no member.*void backward_weight\(Step
// ZB-V runs W passes: a functor without backward_weight must stop the build with a message
// naming the schedule and the missing member.
#include <pipesched/plan/plan.hpp>
#include <pipesched/schedules/zb_v.hpp>

struct no_weight {
  template <class Step> void forward(Step, pipesched::io const&) {}
  template <class Step> void backward_input(Step, pipesched::io const&) {}
};
struct transport {
  template <class Step> void send(Step, pipesched::io const&) {}
  template <class Step> void recv(Step, pipesched::io const&) {}
};

void run(no_weight& f, transport& t, pipesched::view const* slots) {
  using S = pipesched::zb_v<pipesched::stages<4>, pipesched::microbatches<8>>;
  pipesched::plan<S, 0>::run(f, t, slots);
}
