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
// The schedules are measured in parts (bench/cuda_schedules/*.cu) that compile in parallel.
// Prints one table per part and a summary line; exit 77 without a GPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cuda_schedules/measure.cuh"

namespace {

using namespace cuda_schedules;

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
  measure_gpipe_1f1b(rows, pass_us, iterations, copy_us);
  measure_interleaved(rows, pass_us, iterations, copy_us);
  measure_zero_bubble(rows, pass_us, iterations, copy_us);
  measure_zb_v(rows, pass_us, iterations, copy_us);
  measure_v_shape(rows, pass_us, iterations, copy_us);
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
