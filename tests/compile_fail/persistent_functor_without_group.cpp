// expect: the device functor has no member `template <class Step> __device__ void forward\(Step, pipesched::io const&, pipesched::cuda::device_group const&\)`
// errors: 1
// A host-style stage functor (Step, io const&) given to the persistent kernel's per-block
// code: its members lack the group argument; one message.
#include <pipesched/cuda/persistent_protocol.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>

struct env {};

struct host_style {
  template <class Step> void forward(Step, pipesched::io const&) {}
  template <class Step> void backward(Step, pipesched::io const&) {}
};

bool run() {
  using S = pipesched::one_f_one_b<pipesched::ranks<2>, pipesched::microbatches<4>>;
  env e;
  pipesched::cuda::persistent_context const c{};
  host_style f;
  return pipesched::cuda::run_rank_block<S, 1>(e, c, f, 0, 1);
}
