// The streams executor with SM partitions (options::sm_partitions: each rank's compute
// stream in a green context of its own on one GPU): 1F1B and ZB-V at p = 4 train the MLP 3
// steps eagerly and, for 1F1B, replayed from a captured graph; losses and weights equal the
// host backend's within 1e-10 relative (as tests/gpu/executor_mlp.cu). Skipped (77) without
// a GPU or where the driver has no green contexts.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_mlp.cuh"
#include "gpu_test.cuh"

#include "pipesched/cuda/executor.cuh"
#include "pipesched/host/executor.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/zb_v.hpp"

namespace {

using gpu_test::failures;
using gpu_test::expect;
using gpu_test::rel;

constexpr double tolerance = 1e-10;

template <class S> void train(char const* name, bool graph) {
  constexpr int steps = 3;
  mlp::config c;
  c.layers = 12;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model host(c);
  gpu_mlp::model gpu(host);
  pipesched::host::executor<S> hx({.slot_bytes = host.boundary_bytes()});
  pipesched::cuda::options o;
  o.slot_bytes = gpu.boundary_bytes();
  o.sm_partitions = true; // the largest equal partitions
  pipesched::cuda::executor<S> gx(o);
  for (int r = 0; r < S::ranks; ++r) expect(gx.partitioned(r), std::string(name) + ": rank " + std::to_string(r) + " not partitioned");
  std::vector<mlp::stage_functor> hf(S::ranks, mlp::stage_functor{&host});
  std::vector<gpu_mlp::stage_functor> gf(S::ranks, gpu_mlp::stage_functor{&gpu});
  if (graph) gx.capture(gf);
  for (int step = 0; step < steps; ++step) {
    hx.run(hf);
    double const want = host.apply_all();
    if (graph) gx.replay();
    else gx.run(gf);
    double const got = gpu.apply_all(nullptr);
    expect(rel(got, want) <= tolerance, std::string(name) + " step " + std::to_string(step) + ": loss " +
                                            std::to_string(got) + " vs host " + std::to_string(want));
  }
  double const d = gpu_mlp::max_relative_difference(gpu, host);
  expect(d <= tolerance, std::string(name) + ": weights differ by " + std::to_string(d));
  std::printf("  %-18s %s: within %.1e of the host backend (largest %.2e)\n", name, graph ? "graph" : "eager",
              tolerance, d);
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  try {
    using S1 = pipesched::one_f_one_b<pipesched::stages<4>, pipesched::microbatches<8>>;
    using S2 = pipesched::zb_v<pipesched::stages<4>, pipesched::microbatches<8>>;
    train<S1>("1f1b", false);
    train<S1>("1f1b", true);
    train<S2>("zb-v", false);
  } catch (std::runtime_error const& e) {
    if (std::string(e.what()).find("has no cu") != std::string::npos) {
      std::printf("SKIPPED: %s\n", e.what());
      return pipesched_test_skipped;
    }
    std::printf("FAILED: %s\n", e.what());
    return 1;
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("gpu.executor_sm_partitions: %s\n", failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}
