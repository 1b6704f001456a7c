// expect: stage_functor_member_error<pipesched::schedule<pipesched::one_f_one_b_family.*has no member.*void backward\(Step
// 1F1B runs fused backward passes: a functor that only has the split I and W members must
// stop the build with a message naming the schedule and the missing member.
#include <pipesched/plan/plan.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>

struct split_only {
  template <class Step> void forward(Step, pipesched::io const&) {}
  template <class Step> void backward_input(Step, pipesched::io const&) {}
  template <class Step> void backward_weight(Step, pipesched::io const&) {}
};
struct transport {
  template <class Step> void send(Step, pipesched::io const&) {}
  template <class Step> void recv(Step, pipesched::io const&) {}
};

void run(split_only& f, transport& t, pipesched::view const* slots) {
  using S = pipesched::one_f_one_b<pipesched::stages<4>, pipesched::microbatches<8>>;
  pipesched::plan<S, 2>::run(f, t, slots);
}
