// GPU benchmark of the CUDA stream executor (a forward-only pipeline over an endless input
// stream, one stream per stage on one GPU): S = 4 stages whose kernels spin stage_us on one
// block each, 16 KiB items pushed from a producer thread and popped by a consumer, against
// what a user would otherwise run for the same items with the same kernels, copies and pinned
// buffers:
//
//   serial:      each item's whole path (copy in, the four kernels, copy out) on one stream,
//                `window` items in flight — the plain serving loop: one item's stages at a time;
//   round-robin: the same path, item i on stream i mod S — items overlap with no pipeline
//                (the strongest simple baseline for stages without state).
//
// The pipeline runs eagerly, with options::graphs (one graph per stage and slot) and with
// options::blocking_pop (the consumer sleeps in cudaEventSynchronize instead of spinning).
// Prediction: the pipeline and round-robin finish an item every stage_us (the slowest stage),
// serial every S * stage_us. Reports items per second, the mean push-to-pop latency and the
// consumer thread's CPU time per item (CLOCK_THREAD_CPUTIME_ID over its pop loop: about
// stage_us when it spins, far less when it sleeps).
//
//   build/default/bench/bench_cuda_stream [stage_us=20] [items=2000]
// Prints a table and a summary line; exit 77 without a GPU.
// NOT RUN YET on a GPU (written 2026-12-01 on a machine without one).
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#include <pipesched/cuda/executor.cuh>

#include "support/gpu_bench.cuh"

namespace {

using gpu_bench::ok;

constexpr int stages = 4, window = 8;
constexpr std::size_t item_bytes = 16 * 1024;

/// Spins `ns`, then copies the item (so that each stage reads its input and writes its output).
__global__ void spin_copy(unsigned char const* in, unsigned char* out, std::size_t n, unsigned long long ns) {
  gpu_bench::spin_ns(ns);
  for (std::size_t i = threadIdx.x; i < n / 16; i += blockDim.x)
    reinterpret_cast<uint4*>(out)[i] = reinterpret_cast<uint4 const*>(in)[i];
}

struct spin_stage {
  unsigned long long ns = 0;
  template <class St> void forward(St const&, pipesched::io const& x) {
    spin_copy<<<1, 128, 0, x.stream>>>(x.in.as<unsigned char>(), x.out.as<unsigned char>(), x.in.bytes, ns);
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// CPU time of the calling thread, in µs.
double thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) * 1e-3;
}

/// The pipeline (with graphs: one per stage and slot): items per second, mean latency (µs)
/// and the consumer's CPU µs per item.
void pipeline(unsigned long long ns, int items, bool graphs, bool blocking, double& rate, double& latency,
              double& consumer_cpu) {
  std::vector<spin_stage> fs(stages, spin_stage{ns});
  pipesched::cuda::stream_options o;
  o.input_bytes = item_bytes;
  o.output_bytes.assign(stages, item_bytes);
  o.window = window;
  o.graphs = graphs;
  o.blocking_pop = blocking;
  pipesched::cuda::stream_executor<spin_stage> ex(fs, o);
  std::vector<unsigned char> in(item_bytes, 1);
  for (int k = 0; k < window; ++k) ex.push(in.data()); // warm-up
  for (int k = 0; k < window; ++k) (void)ex.pop();
  auto const t0 = std::chrono::steady_clock::now();
  std::thread producer([&] {
    for (int k = 0; k < items; ++k) ex.push(in.data());
    ex.close();
  });
  double sum = 0;
  int n = 0;
  double const cpu0 = thread_cpu_us();
  while (auto item = ex.pop()) ++n;
  consumer_cpu = (thread_cpu_us() - cpu0) / items;
  producer.join();
  rate = items / seconds_since(t0);
  for (std::size_t k = window; k < ex.latencies().size(); ++k) sum += ex.latencies()[k];
  latency = n > 0 ? sum / n : 0;
}

/// A baseline: each item's path on stream (i mod streams), `window` items in flight, pinned
/// buffers; the consumer's copy-out done on this thread after the item's event.
void baseline(int streams, unsigned long long ns, int items, double& rate, double& latency) {
  std::vector<cudaStream_t> st(static_cast<std::size_t>(streams));
  for (auto& s : st) ok(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  unsigned char *pin_in = nullptr, *pin_out = nullptr, *dev = nullptr;
  ok(cudaMallocHost(&pin_in, item_bytes * window), "cudaMallocHost");
  ok(cudaMallocHost(&pin_out, item_bytes * window), "cudaMallocHost");
  ok(cudaMalloc(&dev, item_bytes * window * (stages + 1)), "cudaMalloc");
  std::vector<cudaEvent_t> done(window);
  for (auto& e : done) ok(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
  std::vector<unsigned char> in(item_bytes, 1), out(item_bytes);
  std::vector<std::chrono::steady_clock::time_point> pushed(window);
  double sum = 0;
  auto run = [&](int count, bool measure) {
    auto take = [&](int i) { // the consumer's part of item i
      int const k = i % window;
      ok(cudaEventSynchronize(done[static_cast<std::size_t>(k)]), "cudaEventSynchronize");
      std::memcpy(out.data(), pin_out + k * item_bytes, item_bytes);
      if (measure)
        sum += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - pushed[static_cast<std::size_t>(k)]).count();
    };
    for (int i = 0; i < count; ++i) {
      if (i >= window) take(i - window);
      int const k = i % window;
      cudaStream_t const s = st[static_cast<std::size_t>(i % streams)];
      pushed[static_cast<std::size_t>(k)] = std::chrono::steady_clock::now();
      std::memcpy(pin_in + k * item_bytes, in.data(), item_bytes);
      unsigned char* ring = dev + static_cast<std::size_t>(k) * item_bytes * (stages + 1);
      ok(cudaMemcpyAsync(ring, pin_in + k * item_bytes, item_bytes, cudaMemcpyHostToDevice, s), "cudaMemcpyAsync");
      for (int g = 0; g < stages; ++g)
        spin_copy<<<1, 128, 0, s>>>(ring + g * item_bytes, ring + (g + 1) * item_bytes, item_bytes, ns);
      ok(cudaMemcpyAsync(pin_out + k * item_bytes, ring + stages * item_bytes, item_bytes, cudaMemcpyDeviceToHost, s),
         "cudaMemcpyAsync");
      ok(cudaEventRecord(done[static_cast<std::size_t>(k)], s), "cudaEventRecord");
    }
    for (int i = count > window ? count - window : 0; i < count; ++i) take(i);
  };
  run(window, false); // warm-up
  auto const t0 = std::chrono::steady_clock::now();
  run(items, true);
  rate = items / seconds_since(t0);
  latency = sum / items;
  for (auto e : done) (void)cudaEventDestroy(e);
  for (auto s : st) (void)cudaStreamDestroy(s);
  (void)cudaFree(dev);
  (void)cudaFreeHost(pin_in);
  (void)cudaFreeHost(pin_out);
}

} // namespace

int main(int argc, char** argv) {
  if (!gpu_bench::has_device("bench_cuda_stream")) return 77;
  double const stage_us = argc > 1 ? std::atof(argv[1]) : 20.0;
  int const items = argc > 2 ? std::atoi(argv[2]) : 2000;
  if (stage_us < 0 || items < 1) {
    std::fprintf(stderr, "usage: bench_cuda_stream [stage_us >= 0] [items >= 1]\n");
    return 2;
  }
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  auto const ns = static_cast<unsigned long long>(stage_us * 1000.0);
  double pr = 0, pl = 0, pc = 0, gr = 0, gl = 0, gc = 0, br = 0, bl = 0, bc = 0, sr = 0, sl = 0, rr = 0, rl = 0;
  pipeline(ns, items, false, false, pr, pl, pc);
  pipeline(ns, items, true, false, gr, gl, gc);
  pipeline(ns, items, false, true, br, bl, bc);
  baseline(1, ns, items, sr, sl);
  baseline(stages, ns, items, rr, rl);
  double const predicted = stage_us > 0 ? 1e6 / stage_us : 0;
  std::printf("%s: %d stages spinning %.1f us each, %zu-byte items, window %d, %d items\n", prop.name, stages, stage_us,
              item_bytes, window, items);
  std::printf("%-34s %14s %16s %18s\n", "", "items/s", "mean latency us", "consumer CPU us/item");
  std::printf("%-34s %14.0f %16.1f %18.1f\n", "pipesched cuda::stream_executor", pr, pl, pc);
  std::printf("%-34s %14.0f %16.1f %18.1f\n", "  with graphs (options::graphs)", gr, gl, gc);
  std::printf("%-34s %14.0f %16.1f %18.1f\n", "  blocking_pop", br, bl, bc);
  std::printf("%-34s %14.0f %16.1f\n", "serial (one stream)", sr, sl);
  std::printf("%-34s %14.0f %16.1f\n", "round-robin (4 streams)", rr, rl);
  std::printf("%-34s %14.0f\n", "prediction (one item per stage_us)", predicted);
  std::printf("\nsummary: stream executor %.0f items/s = %.2fx serial, %.2fx round-robin, %.0f %% of the prediction;"
              " blocking_pop consumer CPU %.1f us/item against %.1f spinning\n",
              pr, sr > 0 ? pr / sr : 0, rr > 0 ? pr / rr : 0, predicted > 0 ? 100.0 * pr / predicted : 0, bc, pc);
  return 0;
}
