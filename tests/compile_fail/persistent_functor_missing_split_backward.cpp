// expect: the device functor needs members `backward_input` and `backward_weight`
// expect: device_functor_check<pipesched::schedule<pipesched::zb_h1_family
// errors: 1
// A device functor with a fused backward only, run by the persistent kernel's per-block code
// for ZB-H1 (which splits the backward into I and W): one message naming the missing
// members and the schedule.
#include <pipesched/cuda/persistent_protocol.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

struct env {}; // never used: the list is not instantiated for a functor that fails the check

struct fused_only {
  template <class Step, class Group> void forward(Step, pipesched::io const&, Group const&) {}
  template <class Step, class Group> void backward(Step, pipesched::io const&, Group const&) {}
};

bool run() {
  using S = pipesched::zb_h1<pipesched::ranks<4>, pipesched::microbatches<8>>;
  env e;
  pipesched::cuda::persistent_context const c{};
  fused_only f;
  return pipesched::cuda::run_rank_block<S, 0>(e, c, f, 0, 1);
}
