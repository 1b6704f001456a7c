// bench_cuda_schedules, shared by its parts: the spinning stage functor, a result row, and
// measure<S> (one schedule's iteration time eager and replayed against the simulator, and
// host time per action). Each part (bench/cuda_schedules/*.cu) measures a few schedules, so
// that the schedules' executors compile in parallel; bench_cuda_schedules.cu prints.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <pipesched/cuda/executor.cuh>
#include <pipesched/pipeline/simulate_lowered.hpp>

#include "../support/gpu_bench.cuh"

namespace cuda_schedules {

using namespace pipesched;
using gpu_bench::ok;

struct row {
  std::string name;
  std::size_t actions = 0;
  double predicted = 0, eager = 0, graph = 0, host_eager = 0, host_graph = 0;
};

// the kernel, the functor and measure<S> are each part's own (internal linkage)
namespace {

/// Busy-waits `ns` nanoseconds of wall time (one block: the pass occupies one SM).
__global__ void spin(unsigned long long ns) { gpu_bench::spin_ns(ns); }

struct timed_stage {
  double f_us = 50, b_us = 50, w_us = 50;
  void pass(cudaStream_t s, double us) { spin<<<1, 32, 0, s>>>(static_cast<unsigned long long>(us * 1000)); }
  template <class St> void forward(St, io const& x) { pass(x.stream, f_us); }
  template <class St> void backward(St, io const& x) { pass(x.stream, b_us + w_us); }
  template <class St> void backward_input(St, io const& x) { pass(x.stream, b_us); }
  template <class St> void backward_weight(St, io const& x) { pass(x.stream, w_us); }
};

template <class S> row measure(double pass_us, int iterations, double copy_us) {
  row out;
  out.name = S::name;
  table const t = S::make();
  out.actions = t.total_actions();
  // the prediction: the same pass times, transfers taking the measured copy time
  simulation const sim = simulate_lowered(t, sim_costs{cost_model{pass_us, pass_us, pass_us, copy_us}});
  out.predicted = sim.makespan;
  cuda::options o;
  o.slot_bytes = 64 << 10;
  o.synchronize = false;
  cuda::executor<S> ex(o);
  std::vector<timed_stage> fs(S::ranks, timed_stage{pass_us, pass_us, pass_us});
  cudaStream_t stream = nullptr;
  ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  cudaEvent_t a = nullptr, b = nullptr;
  ok(cudaEventCreate(&a), "cudaEventCreate");
  ok(cudaEventCreate(&b), "cudaEventCreate");
  auto time_gpu = [&](auto&& one) {
    std::vector<double> us;
    for (int k = 0; k < iterations; ++k) {
      ok(cudaEventRecord(a, stream), "cudaEventRecord");
      one();
      ok(cudaEventRecord(b, stream), "cudaEventRecord");
      ok(cudaEventSynchronize(b), "cudaEventSynchronize");
      float ms = 0;
      ok(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
      us.push_back(ms * 1000.0);
    }
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
  };
  auto time_host = [&](auto&& one) {
    std::vector<double> us;
    for (int k = 0; k < iterations; ++k) {
      auto const start = std::chrono::steady_clock::now();
      one();
      us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
      ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    }
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
  };
  ex.run(fs, stream); // warm-up
  ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  out.eager = time_gpu([&] { ex.run(fs, stream); });
  out.host_eager = time_host([&] { ex.run(fs, stream); }) / static_cast<double>(out.actions);
  ex.capture(fs);
  ex.replay(stream);
  ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  out.graph = time_gpu([&] { ex.replay(stream); });
  out.host_graph = time_host([&] { ex.replay(stream); }) / static_cast<double>(out.actions);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaStreamDestroy(stream);
  return out;
}

} // namespace

/// The parts: each appends the rows of its schedules (p = 4, m = 32).
void measure_gpipe_1f1b(std::vector<row>& rows, double pass_us, int iterations, double copy_us);
void measure_interleaved(std::vector<row>& rows, double pass_us, int iterations, double copy_us);
void measure_zero_bubble(std::vector<row>& rows, double pass_us, int iterations, double copy_us);
void measure_zb_v(std::vector<row>& rows, double pass_us, int iterations, double copy_us);
void measure_v_shape(std::vector<row>& rows, double pass_us, int iterations, double copy_us);

} // namespace cuda_schedules
