// The CUDA stream executor on a GPU: four affine stages (one kernel each, side by side on one
// GPU, one stream per stage) over 400 items pushed from a producer thread and popped in order
// give, to the last bit, the stages applied one after another on the host (no fused
// multiply-adds: --fmad=false), also with each stage's slot captured as a graph and with
// blocking_pop and NVTX ranges (the consumer sleeps on blocking-sync events; finish() before
// pop); a stage that throws stops the stream (push rethrows, pop and
// push then throw stream_closed, finish rethrows) without a hang, and a new executor runs
// after it; with two or more GPUs the stages spread over two of them (peer copies) give the
// same bits; with SM partitions (each stage's stream in a green context of its own, eagerly
// and with graphs) the same bits again — that case is skipped where the driver has no green
// contexts.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gpu_test.cuh"

#include "pipesched/cuda/executor.cuh"

namespace {

constexpr int width = 4096; // doubles per item (32 KiB)

__global__ void affine_kernel(double const* in, double* out, int n, int stage) {
  double const a = 1.0 + stage / 8.0, b = stage + 0.25;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = in[i] * a + b;
}

/// Stage s maps each double x to x * (1 + s/8) + s + 0.25 on its stream; throws at its
/// `fail_at`-th call when it is stage `fail_stage`.
struct affine_stage {
  int calls = 0, fail_stage = -1, fail_at = -1;
  template <class St> void forward(St const& s, pipesched::io const& x) {
    if (s.stage == fail_stage && calls == fail_at) throw std::runtime_error("stage failure");
    ++calls;
    affine_kernel<<<8, 256, 0, x.stream>>>(x.in.as<double>(), x.out.as<double>(), width, s.stage);
  }
};

std::vector<double> input_of(std::uint64_t id) {
  std::vector<double> v(width);
  for (int k = 0; k < width; ++k) v[static_cast<std::size_t>(k)] = static_cast<double>(id) * 0.5 + k * 0.001;
  return v;
}

std::vector<double> sequential(std::uint64_t id, int stages) {
  std::vector<double> v = input_of(id);
  for (int s = 0; s < stages; ++s)
    for (double& x : v) x = x * (1.0 + s / 8.0) + s + 0.25;
  return v;
}

pipesched::cuda::stream_options options(int stages, int window) {
  pipesched::cuda::stream_options o;
  o.input_bytes = width * sizeof(double);
  o.output_bytes.assign(static_cast<std::size_t>(stages), width * sizeof(double));
  o.window = window;
  return o;
}

/// n items through `ex` (producer thread, consumer here): the items that came out wrong.
int stream_items(pipesched::cuda::stream_executor<affine_stage>& ex, std::uint64_t n, int stages) {
  std::thread producer([&] {
    for (std::uint64_t id = 0; id < n; ++id) {
      auto const v = input_of(id);
      ex.push(v.data());
    }
    ex.close();
  });
  int wrong = 0;
  std::uint64_t expect = 0;
  while (auto item = ex.pop()) {
    std::vector<double> got(width);
    std::memcpy(got.data(), item->bytes.data(), item->bytes.size());
    if (item->id != expect || got != sequential(expect, stages)) ++wrong;
    ++expect;
  }
  producer.join();
  return wrong + (expect == n ? 0 : 1);
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  using gpu_test::expect;
  try {
    {
      std::vector<affine_stage> fs(4);
      pipesched::cuda::stream_executor<affine_stage> ex(fs, options(4, 4));
      int const wrong = stream_items(ex, 400, 4);
      expect(wrong == 0, std::to_string(wrong) + " of 400 items wrong on one GPU");
      expect(ex.latencies().size() == 400, "a latency per item");
      std::printf("gpu.stream_executor: 400 items, 4 stages on one GPU, window 4: %d wrong\n", wrong);
    }
    {
      // options::graphs: each stage's slot captured once, replayed for every item
      std::vector<affine_stage> fs(4);
      auto o = options(4, 4);
      o.graphs = true;
      pipesched::cuda::stream_executor<affine_stage> ex(fs, o);
      int const wrong = stream_items(ex, 400, 4);
      expect(wrong == 0, std::to_string(wrong) + " of 400 items wrong with graphs");
      expect(ex.graphs_captured() == 16, "16 graphs (4 stages x window 4)");
      for (affine_stage const& f : fs) expect(f.calls == 4, "each functor called once per window slot");
      std::printf("gpu.stream_executor: 400 items with graphs: %d wrong, %d graphs\n", wrong, ex.graphs_captured());
    }
    {
      // options::blocking_pop: pop() and finish() sleep on cudaEventBlockingSync events; the
      // items are the same bits. finish() after the last push, before any pop: every item is
      // then done, and each pops equal to the host's
      std::vector<affine_stage> fs(4);
      auto o = options(4, 4);
      o.blocking_pop = true;
      o.nvtx = true; // real NVTX ranges around each call (no profiler attached: no effect on the bits)
      pipesched::cuda::stream_executor<affine_stage> ex(fs, o);
      int const wrong = stream_items(ex, 400, 4);
      expect(wrong == 0, std::to_string(wrong) + " of 400 items wrong with blocking_pop");
      pipesched::cuda::stream_executor<affine_stage> ex2(fs, o);
      for (std::uint64_t id = 0; id < 4; ++id) {
        auto const v = input_of(id);
        ex2.push(v.data());
      }
      ex2.finish();
      int wrong_after_finish = 0;
      for (std::uint64_t id = 0; id < 4; ++id) {
        auto item = ex2.pop();
        std::vector<double> got(width);
        if (item) std::memcpy(got.data(), item->bytes.data(), item->bytes.size());
        wrong_after_finish += !item || got != sequential(id, 4);
      }
      expect(wrong_after_finish == 0, std::to_string(wrong_after_finish) + " of 4 items wrong after finish()");
      std::printf("gpu.stream_executor: 400 items with blocking_pop: %d wrong; 4 after finish(): %d wrong\n", wrong,
                  wrong_after_finish);
    }
    {
      std::vector<affine_stage> fs(3);
      fs[1].fail_stage = 1;
      fs[1].fail_at = 7;
      pipesched::cuda::stream_executor<affine_stage> ex(fs, options(3, 16));
      std::string met;
      for (std::uint64_t id = 0; id < 10 && met.empty(); ++id) {
        auto const v = input_of(id);
        try {
          ex.push(v.data());
        } catch (std::runtime_error const& e) {
          met = e.what();
        }
      }
      expect(met == "stage failure", "push rethrows the stage's exception (got \"" + met + "\")");
      expect(ex.failed_stage() == 1 && ex.failed_item() == 7, "the failure names stage 1 and item 7");
      bool closed = false;
      try {
        (void)ex.pop();
      } catch (pipesched::cuda::stream_closed const&) {
        closed = true;
      }
      expect(closed, "pop throws stream_closed after the failure");
      bool rethrown = false;
      try {
        ex.finish();
      } catch (std::runtime_error const& e) {
        rethrown = std::string(e.what()) == "stage failure";
      }
      expect(rethrown, "finish() rethrows the stage's exception");
    }
    for (bool graphs : {false, true}) {
      // options::sm_partitions: the largest equal partitions, one per stage; with graphs each
      // stage captured on a second stream of its partition
      try {
        std::vector<affine_stage> fs(4);
        auto o = options(4, 4);
        o.sm_partitions = true;
        o.graphs = graphs;
        pipesched::cuda::stream_executor<affine_stage> ex(fs, o);
        for (int s = 0; s < 4; ++s) expect(ex.partitioned(s), "stage " + std::to_string(s) + " not partitioned");
        int const wrong = stream_items(ex, 400, 4);
        expect(wrong == 0, std::to_string(wrong) + " of 400 items wrong with SM partitions" + (graphs ? " and graphs" : ""));
        if (graphs) expect(ex.graphs_captured() == 16, "16 graphs with SM partitions");
        std::printf("gpu.stream_executor: 400 items, 4 SM partitions%s: %d wrong\n", graphs ? ", graphs" : "", wrong);
      } catch (std::runtime_error const& e) {
        if (std::string(e.what()).find("has no cu") == std::string::npos) throw;
        std::printf("gpu.stream_executor: SM partitions skipped: %s\n", e.what()); // no green contexts
      }
    }
    {
      // the device is fine after the failure: a new stream runs
      std::vector<affine_stage> fs(2);
      pipesched::cuda::stream_executor<affine_stage> ex(fs, options(2, 2));
      int const wrong = stream_items(ex, 50, 2);
      expect(wrong == 0, std::to_string(wrong) + " of 50 items wrong after a failure");
    }
    int devices = 0;
    PIPESCHED_GPU_TEST_CHECK(cudaGetDeviceCount(&devices));
    if (devices >= 2) {
      int can01 = 0, can10 = 0;
      PIPESCHED_GPU_TEST_CHECK(cudaDeviceCanAccessPeer(&can01, 0, 1));
      PIPESCHED_GPU_TEST_CHECK(cudaDeviceCanAccessPeer(&can10, 1, 0));
      if (can01 && can10) {
        std::vector<affine_stage> fs(4);
        auto o = options(4, 4);
        o.devices = {0, 0, 1, 1};
        pipesched::cuda::stream_executor<affine_stage> ex(fs, o);
        int const wrong = stream_items(ex, 200, 4);
        expect(wrong == 0, std::to_string(wrong) + " of 200 items wrong on devices 0, 0, 1, 1");
        std::printf("gpu.stream_executor: 200 items over 2 GPUs (peer copies): %d wrong\n", wrong);
      } else {
        std::printf("gpu.stream_executor: devices 0 and 1 have no peer access: the 2-GPU part did not run\n");
      }
    } else {
      std::printf("gpu.stream_executor: one GPU: the 2-GPU part did not run\n");
    }
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("gpu.stream_executor: %s\n", gpu_test::failures == 0 ? "OK" : "FAILED");
  return gpu_test::failures == 0 ? 0 : 1;
}
