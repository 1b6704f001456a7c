// GPU benchmarks of the persistent executor (one cooperative kernel per iteration, a block
// group per rank, hand-offs by counters in global memory) on one GPU:
//
//   1. hand-off latency: a forward-only pipeline of 2 ranks (one block each) whose passes do
//      nothing, 1 KiB boundaries: (time at m = 68 - time at m = 4) / 64 is one cycle of the
//      receiver's single slot (a push seen, then its free seen: two hand-offs), halved;
//   2. tiny stages: 1F1B, p = 4, m = 8, passes that do nothing — one iteration of the
//      persistent kernel (eager launch and graph replay) against the streams executor
//      (pipesched::cuda::executor, eager and graph) with empty passes;
//      and persistent_runtime_executor on the same table (its actions read from memory);
//   3. spin stages against the simulator: passes spinning pass_us (F, B, W each), one block
//      per rank, p = 4, m = 16, for 1F1B, ZB-H1 and interleaved 1F1B: measured iteration time
//      against simulate_lowered's makespan with the same pass times and the measured
//      hand-off latency as transfer cost (goal: within 5 %); the run-time executor's time too.
//
//   build/default/bench/bench_gpu_persistent [pass_us=20] [iterations=20]
// Prints one table per part and a summary line; exit 77 without a GPU.
// NOT RUN YET on a GPU (written 2026-12-01 on a machine without one).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <pipesched/cuda/executor.cuh>
#include <pipesched/cuda/persistent.cuh>
#include <pipesched/pipeline/simulate_lowered.hpp>
#include <pipesched/schedules/forward_only.hpp>
#include <pipesched/schedules/interleaved.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

#include "support/gpu_bench.cuh"

namespace {

using namespace pipesched;

using gpu_bench::ok;

/// A device functor whose passes spin a set time (0: do nothing).
struct spin_functor {
  unsigned long long f_ns = 0, b_ns = 0, w_ns = 0;
  __device__ static void spin(unsigned long long ns) { gpu_bench::spin_ns(ns); }
  template <class St> __device__ void forward(St, io const&, pipesched::cuda::device_group const&) { spin(f_ns); }
  template <class St> __device__ void backward(St, io const&, pipesched::cuda::device_group const&) { spin(b_ns + w_ns); }
  template <class St> __device__ void backward_input(St, io const&, pipesched::cuda::device_group const&) { spin(b_ns); }
  template <class St> __device__ void backward_weight(St, io const&, pipesched::cuda::device_group const&) { spin(w_ns); }
};

/// Host functor of the streams executor whose passes launch nothing.
struct empty_stage {
  template <class St> void forward(St, io const&) {}
  template <class St> void backward(St, io const&) {}
  template <class St> void backward_input(St, io const&) {}
  template <class St> void backward_weight(St, io const&) {}
};

cudaStream_t stream = nullptr;
cudaEvent_t ev_a = nullptr, ev_b = nullptr;
int iterations = 20;

/// Median GPU time (µs) of `one` on the benchmark stream.
template <class Fn> double time_gpu(Fn&& one) {
  std::vector<double> us;
  for (int k = 0; k < iterations; ++k) {
    ok(cudaEventRecord(ev_a, stream), "cudaEventRecord");
    one();
    ok(cudaEventRecord(ev_b, stream), "cudaEventRecord");
    ok(cudaEventSynchronize(ev_b), "cudaEventSynchronize");
    float ms = 0;
    ok(cudaEventElapsedTime(&ms, ev_a, ev_b), "cudaEventElapsedTime");
    us.push_back(ms * 1000.0);
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

pipesched::cuda::persistent_options options_of(std::vector<int> const& blocks, std::size_t bytes) {
  pipesched::cuda::persistent_options o;
  o.slot_bytes = bytes;
  o.blocks = blocks;
  o.threads_per_block = 128;
  o.synchronize = false;
  return o;
}

/// Median time of one iteration of persistent executor px (either kind), eager or replayed.
template <class Px> double time_persistent(Px& px, spin_functor f, int ranks, bool graph) {
  std::vector<spin_functor> fs(static_cast<std::size_t>(ranks), f);
  px.run(fs, stream);
  px.finish(stream); // warm-up
  double us = 0;
  if (graph) {
    px.capture(fs);
    px.replay(stream);
    px.finish(stream);
    us = time_gpu([&] { px.replay(stream); });
  } else {
    us = time_gpu([&] { px.run(fs, stream); });
  }
  px.finish(stream);
  return us;
}

template <class S> double persistent_iteration_us(spin_functor f, std::vector<int> const& blocks, std::size_t bytes,
                                                  bool graph) {
  pipesched::cuda::persistent_executor<S, spin_functor> px(options_of(blocks, bytes));
  return time_persistent(px, f, S::ranks, graph);
}

/// The same on persistent_runtime_executor: table t's actions read from device memory.
double runtime_iteration_us(table const& t, spin_functor f, std::vector<int> const& blocks, std::size_t bytes, bool graph) {
  runtime_schedule const sched(t);
  pipesched::cuda::persistent_runtime_executor<spin_functor> px(sched, options_of(blocks, bytes));
  return time_persistent(px, f, sched.ranks, graph);
}

template <class S> double streams_iteration_us(bool graph) {
  pipesched::cuda::options o;
  o.slot_bytes = 1024;
  o.synchronize = false;
  pipesched::cuda::executor<S> ex(o);
  std::vector<empty_stage> fs(S::ranks);
  ex.run(fs, stream);
  ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  if (!graph) return time_gpu([&] { ex.run(fs, stream); });
  ex.capture(fs);
  ex.replay(stream);
  ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return time_gpu([&] { ex.replay(stream); });
}

template <class S> double spin_ratio(double pass_us, double handoff_us, std::vector<int> const& blocks) {
  table const t = S::make();
  simulation const sim = simulate_lowered(t, sim_costs{cost_model{pass_us, pass_us, pass_us, handoff_us}});
  unsigned long long const ns = static_cast<unsigned long long>(pass_us * 1000);
  double const us = persistent_iteration_us<S>(spin_functor{ns, ns, ns}, blocks, 1024, false);
  std::printf("  %-18s predicted %9.1f us  measured %9.1f us  ratio %.3f\n", S::name, sim.makespan, us,
              us / sim.makespan);
  double const rt = runtime_iteration_us(t, spin_functor{ns, ns, ns}, blocks, 1024, false);
  std::printf("  %-18s run-time table: measured %9.1f us  ratio %.3f\n", S::name, rt, rt / sim.makespan);
  return us / sim.makespan;
}

} // namespace

int main(int argc, char** argv) {
  double const pass_us = argc > 1 ? std::atof(argv[1]) : 20.0;
  iterations = argc > 2 ? std::max(1, std::atoi(argv[2])) : 20;
  if (!gpu_bench::has_device("bench_gpu_persistent")) return 77;
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::printf("bench_gpu_persistent on %s (%d SMs), pass %.1f us, %d iterations (medians)\n", prop.name,
              prop.multiProcessorCount, pass_us, iterations);
  ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  ok(cudaEventCreate(&ev_a), "cudaEventCreate");
  ok(cudaEventCreate(&ev_b), "cudaEventCreate");

  std::printf("\n1. hand-off latency (forward-only, 2 ranks, 1 block each, 1 KiB)\n");
  double const t4 = persistent_iteration_us<forward_only<ranks<2>, microbatches<4>>>({}, {1, 1}, 1024, false);
  double const t68 = persistent_iteration_us<forward_only<ranks<2>, microbatches<68>>>({}, {1, 1}, 1024, false);
  // Each further micro-batch costs one cycle of rank 1's single boundary slot: rank 0's push
  // (copy, then `filled` released) seen by rank 1, and rank 1's `freed` seen by rank 0 before
  // the next push (a send waits for the slot's last reader) — two hand-offs, so one is
  // estimated as half the cycle (the copy and the empty pass counted in it)
  double const cycle = (t68 - t4) / 64.0;
  double const handoff = cycle / 2.0;
  std::printf("  m = 4: %.2f us   m = 68: %.2f us   per micro-batch (slot cycle): %.3f us   per hand-off (half): %.3f us\n",
              t4, t68, cycle, handoff);

  std::printf("\n2. tiny stages: 1F1B p = 4, m = 8, empty passes, one iteration\n");
  using tiny = one_f_one_b<ranks<4>, microbatches<8>>;
  double const pe = persistent_iteration_us<tiny>({}, {1, 1, 1, 1}, 1024, false);
  double const pg = persistent_iteration_us<tiny>({}, {1, 1, 1, 1}, 1024, true);
  double const se = streams_iteration_us<tiny>(false);
  double const sg = streams_iteration_us<tiny>(true);
  double const re = runtime_iteration_us(tiny::make(), {}, {1, 1, 1, 1}, 1024, false);
  double const rg = runtime_iteration_us(tiny::make(), {}, {1, 1, 1, 1}, 1024, true);
  std::printf("  persistent eager %8.2f us   graph %8.2f us\n", pe, pg);
  std::printf("  run-time   eager %8.2f us   graph %8.2f us   (persistent_runtime_executor, same table)\n", re, rg);
  std::printf("  streams    eager %8.2f us   graph %8.2f us\n", se, sg);

  std::printf("\n3. spin stages against the simulator (p = 4, m = 16, one block per rank)\n");
  double worst = 0;
  auto track = [&](double r) { worst = std::max(worst, std::abs(r - 1.0)); };
  track(spin_ratio<one_f_one_b<ranks<4>, microbatches<16>>>(pass_us, handoff, {1, 1, 1, 1}));
  track(spin_ratio<zb_h1<ranks<4>, microbatches<16>>>(pass_us, handoff, {1, 1, 1, 1}));
  track(spin_ratio<interleaved_1f1b<ranks<4>, microbatches<16>, chunks<2>>>(pass_us, handoff, {1, 1, 1, 1}));

  std::printf("\nsummary: hand-off %.3f us; tiny 1F1B persistent %.2f us (graph %.2f), run-time table %.2f us (graph "
              "%.2f) vs streams %.2f us (graph %.2f); spin stages within %.1f %% of the simulator\n",
              handoff, pe, pg, re, rg, se, sg, worst * 100);
  cudaEventDestroy(ev_a);
  cudaEventDestroy(ev_b);
  cudaStreamDestroy(stream);
  return 0;
}
