// GPU benchmarks of the CUDA executor on one GPU (p = 4 stages side by side, each its own
// streams), every schedule at m = 32, with stage functors whose passes spin a set time on one
// block of 32 threads (so the 4 ranks' passes can run at once on disjoint SMs):
//
//   1. measured iteration time against the simulator's prediction for the same pass times
//      (goal: within 3 %), eager and replayed from a CUDA graph;
//   2. host time per action: issuing an iteration eagerly against launching its graph
//      (goal: at most 1 µs per action on replay);
//   3. boundary copy bandwidth (a slot-to-slot copy as the executor issues it) against
//      cudaMemcpy device-to-device.
//
//   build/default/bench/bench_cuda_schedules [pass_us=50] [iterations=20]
// Prints one table per part and a summary line; exit 77 without a GPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <pipesched/cuda/executor.cuh>
#include <pipesched/pipeline/simulate_lowered.hpp>
#include <pipesched/schedules/gpipe.hpp>
#include <pipesched/schedules/interleaved.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>
#include <pipesched/schedules/v_shape.hpp>
#include <pipesched/schedules/zb_v.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

#include "support/gpu_bench.cuh"

namespace {

using namespace pipesched;

using gpu_bench::ok;

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

struct row {
  std::string name;
  std::size_t actions = 0;
  double predicted = 0, eager = 0, graph = 0, host_eager = 0, host_graph = 0;
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

/// Time of one small slot-to-slot copy on a stream (µs): what a transfer costs the schedule.
double copy_latency_us() {
  void *x = nullptr, *y = nullptr;
  ok(cudaMalloc(&x, 64 << 10), "cudaMalloc");
  ok(cudaMalloc(&y, 64 << 10), "cudaMalloc");
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int k = 0; k < 100; ++k) cudaMemcpyAsync(y, x, 64 << 10, cudaMemcpyDeviceToDevice);
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaFree(x);
  cudaFree(y);
  return ms * 1000.0 / 100.0;
}

/// Bandwidth (GB/s) of `bytes` copies: the executor's slot copy (cudaMemcpyAsync on a
/// non-blocking stream between two slots) against a plain cudaMemcpy.
void bandwidth() {
  std::printf("\n# boundary copy bandwidth, one GPU: a slot-to-slot copy as the executor issues it against cudaMemcpy\n");
  std::printf("%12s %14s %14s %8s\n", "bytes", "slot copy GB/s", "cudaMemcpy GB/s", "ratio");
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  for (std::size_t bytes : {std::size_t{64} << 10, std::size_t{1} << 20, std::size_t{16} << 20, std::size_t{256} << 20}) {
    void *x = nullptr, *y = nullptr;
    ok(cudaMalloc(&x, bytes), "cudaMalloc");
    ok(cudaMalloc(&y, bytes), "cudaMalloc");
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    int const reps = bytes >= (16u << 20) ? 20 : 200;
    cudaEventRecord(a, s);
    for (int k = 0; k < reps; ++k) cudaMemcpyAsync(y, x, bytes, cudaMemcpyDeviceToDevice, s);
    cudaEventRecord(b, s);
    cudaEventSynchronize(b);
    float slot_ms = 0;
    cudaEventElapsedTime(&slot_ms, a, b);
    cudaEventRecord(a);
    for (int k = 0; k < reps; ++k) cudaMemcpy(y, x, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float plain_ms = 0;
    cudaEventElapsedTime(&plain_ms, a, b);
    double const gs = static_cast<double>(bytes) * reps / (slot_ms * 1e-3) / 1e9;
    double const gp = static_cast<double>(bytes) * reps / (plain_ms * 1e-3) / 1e9;
    std::printf("%12zu %14.1f %14.1f %8.2f\n", bytes, gs, gp, gs / gp);
    cudaFree(x);
    cudaFree(y);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  cudaStreamDestroy(s);
}

} // namespace

int main(int argc, char** argv) {
  if (!gpu_bench::has_device("bench_cuda_schedules")) return 77;
  double const pass_us = argc > 1 ? std::atof(argv[1]) : 50.0;
  int const iterations = argc > 2 ? std::atoi(argv[2]) : 20;
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  double const copy_us = copy_latency_us();
  std::printf("# %s, %d SMs; p = 4 stages on one GPU, m = 32, every pass spins %.0f us on one block; a transfer "
              "(64 KiB copy) %.1f us\n",
              prop.name, prop.multiProcessorCount, pass_us, copy_us);
  std::printf("%-12s %7s %12s %12s %7s %12s %7s %14s %14s\n", "schedule", "actions", "predicted us", "eager us", "ratio",
              "graph us", "ratio", "host us/act eager", "host us/act graph");
  std::vector<row> rows;
  constexpr int P = 4, M = 32;
  rows.push_back(measure<gpipe<ranks<P>, microbatches<M>>>(pass_us, iterations, copy_us));
  rows.push_back(measure<one_f_one_b<ranks<P>, microbatches<M>>>(pass_us, iterations, copy_us));
  rows.push_back(measure<interleaved_1f1b<ranks<P>, microbatches<M>, chunks<2>>>(pass_us, iterations, copy_us));
  rows.push_back(measure<zb_h1<ranks<P>, microbatches<M>>>(pass_us, iterations, copy_us));
  rows.push_back(measure<zb_h2<ranks<P>, microbatches<M>>>(pass_us, iterations, copy_us));
  rows.push_back(measure<zb_v<ranks<P>, microbatches<M>>>(pass_us, iterations, copy_us));
  rows.push_back(measure<v_half<ranks<P>, microbatches<M>>>(pass_us, iterations, copy_us));
  rows.push_back(measure<v_min<ranks<P>, microbatches<M>>>(pass_us, iterations, copy_us));
  double worst = 0, worst_host = 0;
  for (row const& r : rows) {
    std::printf("%-12s %7zu %12.1f %12.1f %7.3f %12.1f %7.3f %14.3f %14.3f\n", r.name.c_str(), r.actions, r.predicted,
                r.eager, r.eager / r.predicted, r.graph, r.graph / r.predicted, r.host_eager, r.host_graph);
    worst = std::max(worst, std::abs(r.graph / r.predicted - 1));
    worst_host = std::max(worst_host, r.host_graph);
  }
  bandwidth();
  std::printf("\nsummary: graph replay within %.1f %% of the prediction (goal 3 %%), host %.3f us per action on "
              "replay (goal 1): %s\n",
              100 * worst, worst_host, worst <= 0.03 && worst_host <= 1.0 ? "OK" : "MISSED");
  return 0;
}
