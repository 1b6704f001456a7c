// A whole iteration captured as one CUDA graph and replayed gives the same weights, to the
// last bit, as eager execution (the same kernels in the same order per stream; the kernels
// are deterministic), for a schedule with split backward (ZB-H1) and one with chunks
// (interleaved); the host does nothing per iteration but launch the graph. Skipped (77)
// without a GPU.
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_mlp.cuh"
#include "gpu_test.cuh"

#include "../cpu/plan_support.hpp"
#include "pipesched/cuda/executor.cuh"

namespace {

using gpu_test::failures;

template <class S> void compare() {
  mlp::config c;
  c.layers = 12;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model host(c);
  gpu_mlp::model eager(host), graph(host);
  pipesched::cuda::executor<S> ex({.slot_bytes = eager.boundary_bytes()});
  pipesched::cuda::executor<S> gx({.slot_bytes = graph.boundary_bytes()});
  std::vector<gpu_mlp::stage_functor> fe(S::ranks, gpu_mlp::stage_functor{&eager});
  std::vector<gpu_mlp::stage_functor> fg(S::ranks, gpu_mlp::stage_functor{&graph});
  gx.capture(fg);
  for (int step = 0; step < 3; ++step) {
    ex.run(fe);
    double const le = eager.apply_all(nullptr);
    gx.replay();
    double const lg = graph.apply_all(nullptr);
    if (le != lg) {
      ++failures;
      std::printf("FAILED: %s step %d: loss %.17g eager, %.17g replayed\n", plan_test::label<S>().c_str(), step, le, lg);
    }
  }
  bool same = true;
  for (int l = 0; l < c.layers; ++l) same = same && eager.weights(l) == graph.weights(l) && eager.biases(l) == graph.biases(l);
  if (!same) {
    ++failures;
    std::printf("FAILED: %s: replayed weights differ from eager\n", plan_test::label<S>().c_str());
  }
  std::printf("  %-22s graph replay %s eager to the last bit\n", plan_test::label<S>().c_str(), same ? "equals" : "DIFFERS FROM");
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  try {
    compare<pipesched::zb_h1<pipesched::stages<4>, pipesched::microbatches<8>>>();
    compare<pipesched::interleaved_1f1b<pipesched::stages<4>, pipesched::microbatches<8>, pipesched::chunks<2>>>();
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("gpu.executor_graph: %s\n", failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}
