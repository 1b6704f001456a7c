// Failures on the CUDA executor lose nothing and hang nothing: (a) a stage functor that throws
// on rank 2 at its 5th pass: run() rethrows it, names rank 2 and the pass in last_failure(),
// every stream of the executor is idle afterwards (waits on events the iteration never
// recorded wait for nothing), and the next iteration trains exactly like the host backend;
// (b) a pass whose kernel launch fails (an invalid configuration): cuda::error names the rank,
// the pass and CUDA's error string, and the executor runs again. Skipped (77) without a GPU.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "gpu_mlp.cuh"
#include "gpu_test.cuh"

#include "pipesched/cuda/executor.cuh"
#include "pipesched/host/executor.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"

namespace {

using gpu_test::failures;
using gpu_test::expect;

using S = pipesched::one_f_one_b<pipesched::stages<4>, pipesched::microbatches<8>>;

__global__ void nothing() {}

struct faulty : gpu_mlp::stage_functor {
  int rank = 0, fail_rank = -1, fail_at = -1, passes = 0;
  bool bad_launch = false;
  void maybe(cudaStream_t st) {
    if (rank != fail_rank || passes++ != fail_at) return;
    if (bad_launch) nothing<<<1, 0, 0, st>>>(); // 0 threads per block: cudaErrorInvalidConfiguration
    else throw std::runtime_error("injected failure");
  }
  template <class St> void forward(St s, pipesched::io const& x) {
    maybe(x.stream);
    gpu_mlp::stage_functor::forward(s, x);
  }
  template <class St> void backward(St s, pipesched::io const& x) {
    maybe(x.stream);
    gpu_mlp::stage_functor::backward(s, x);
  }
};

std::vector<faulty> functors(gpu_mlp::model* net, int fail_rank, int fail_at, bool bad_launch) {
  std::vector<faulty> fs(S::ranks);
  for (int r = 0; r < S::ranks; ++r) {
    fs[static_cast<std::size_t>(r)].net = net;
    fs[static_cast<std::size_t>(r)].rank = r;
    fs[static_cast<std::size_t>(r)].fail_rank = fail_rank;
    fs[static_cast<std::size_t>(r)].fail_at = fail_at;
    fs[static_cast<std::size_t>(r)].bad_launch = bad_launch;
  }
  return fs;
}

template <class Ex> bool idle(Ex const& ex) {
  for (int r = 0; r < S::ranks; ++r)
    if (cudaStreamQuery(ex.compute_stream(r)) != cudaSuccess || cudaStreamQuery(ex.comm_stream(r)) != cudaSuccess)
      return false;
  return true;
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  try {
    mlp::config c;
    c.microbatches = 8;
    c.stages = 4;
    mlp::model host(c);
    gpu_mlp::model gpu(host);
    pipesched::cuda::executor<S> ex({.slot_bytes = gpu.boundary_bytes()});

    // (a) a throwing functor
    auto fs = functors(&gpu, 2, 5, false);
    std::string what;
    try {
      ex.run(fs);
    } catch (std::runtime_error const& e) {
      what = e.what();
    }
    expect(what == "injected failure", "the functor's exception came out of run(): '" + what + "'");
    expect(ex.last_failure().rank == 2, "last_failure names rank 2");
    expect(idle(ex), "every stream idle after the failure");
    // the next iteration is clean and equals the host backend's first step
    auto clean = functors(&gpu, -1, -1, false);
    ex.run(clean);
    double const got = gpu.apply_all(nullptr);
    pipesched::host::executor<S> hx({.slot_bytes = host.boundary_bytes()});
    std::vector<mlp::stage_functor> hf(S::ranks, mlp::stage_functor{&host});
    hx.run(hf);
    double const want = host.apply_all();
    expect(std::fabs(got - want) <= 1e-10 * std::fabs(want), "the iteration after the failure trains like the host");

    // (b) a failed kernel launch
    auto bad = functors(&gpu, 1, 3, true);
    std::string message;
    try {
      ex.run(bad);
    } catch (pipesched::cuda::error const& e) {
      message = e.what();
      expect(e.site.rank == 1, "cuda::error names rank 1");
    }
    expect(message.find("on rank 1 (") != std::string::npos, "the message names the rank: " + message);
    expect(message.find("invalid configuration") != std::string::npos ||
               message.find("invalid argument") != std::string::npos,
           "the message carries CUDA's error string: " + message);
    expect(idle(ex), "every stream idle after the failed launch");
    ex.run(clean);
    (void)gpu.apply_all(nullptr);
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("gpu.executor_errors: %s\n", failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}
