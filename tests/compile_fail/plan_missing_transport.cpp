// expect: transport_needs_send_recv<pipesched::schedule<pipesched::one_f_one_b_family.*transport needs members
// A rank with transfers needs a transport with send and recv: a transport without them must
// stop the build with a message naming the schedule and the members.
#include <pipesched/plan/plan.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>

struct functor {
  template <class Step> void forward(Step, pipesched::io const&) {}
  template <class Step> void backward(Step, pipesched::io const&) {}
};
struct not_a_transport {};

void run(functor& f, not_a_transport& t, pipesched::view const* slots) {
  using S = pipesched::one_f_one_b<pipesched::stages<4>, pipesched::microbatches<8>>;
  pipesched::plan<S, 1>::run(f, t, slots);
}
