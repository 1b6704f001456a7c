// SM partitions per stage with green contexts: four partitions of the GPU, a kernel on each
// partition's stream records the SM every block ran on; the partitions' SM sets must be
// disjoint and no larger than the partition the driver reports. A request that cannot fit
// is refused with the size that would. Skipped (77) without a GPU, and where the driver has
// no green contexts (driver older than 12.5, or a GPU without them).
#include <cstdio>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "gpu_test.cuh"

#include "pipesched/cuda/green_contexts.cuh"

namespace {

__global__ void record_sm(unsigned* out, long long spin) {
  unsigned id = 0;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
  long long const start = clock64();
  while (clock64() - start < spin) {
  }
  if (threadIdx.x == 0) out[blockIdx.x] = id;
}

/// Spins, then moves *cell from `from` to from + 1 (left alone when it is not `from`: the
/// test sees the order went wrong).
__global__ void add_after(int* cell, int from, long long spin) {
  long long const start = clock64();
  while (clock64() - start < spin) {
  }
  if (*cell == from) *cell = from + 1;
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  constexpr int parts = 4;
  try {
    pipesched::cuda::sm_partitions sp(0, parts, 0);
    std::printf("device 0: %u SMs (min partition %u, alignment %u): %d partitions of %u SMs, %u left\n",
                sp.facts().sm_count, sp.facts().min_partition, sp.facts().alignment, sp.count(), sp.plan().per_stage,
                sp.plan().left);
    int const blocks = 8 * static_cast<int>(sp.facts().sm_count);
    unsigned* out = nullptr;
    int bad = 0;
    PIPESCHED_GPU_TEST_CHECK(cudaMalloc(&out, sizeof(unsigned) * static_cast<std::size_t>(blocks * parts)));
    for (int i = 0; i < parts; ++i) record_sm<<<blocks, 64, 0, sp.stream(i)>>>(out + i * blocks, 20000);
    PIPESCHED_GPU_TEST_CHECK(cudaGetLastError());
    PIPESCHED_GPU_TEST_CHECK(cudaDeviceSynchronize());
    std::vector<unsigned> ids(static_cast<std::size_t>(blocks * parts));
    PIPESCHED_GPU_TEST_CHECK(cudaMemcpy(ids.data(), out, sizeof(unsigned) * ids.size(), cudaMemcpyDeviceToHost));
    PIPESCHED_GPU_TEST_CHECK(cudaFree(out));
    std::vector<std::set<unsigned>> seen(parts);
    for (int i = 0; i < parts; ++i) {
      for (int b = 0; b < blocks; ++b) seen[static_cast<std::size_t>(i)].insert(ids[static_cast<std::size_t>(i * blocks + b)]);
      std::size_t const n = seen[static_cast<std::size_t>(i)].size();
      std::printf("partition %d: driver says %u SMs, blocks ran on %zu\n", i, sp.sms(i), n);
      if (sp.sms(i) != sp.plan().per_stage || n > sp.sms(i)) ++bad;
      for (int j = 0; j < i; ++j)
        for (unsigned id : seen[static_cast<std::size_t>(i)])
          if (seen[static_cast<std::size_t>(j)].count(id)) {
            std::printf("FAILED: SM %u ran blocks of partitions %d and %d\n", id, j, i);
            ++bad;
          }
    }
    // events across contexts, as the streams executor uses them: an event made in partition
    // 0's context, recorded on its stream, waited on by an ordinary stream; an ordinary event
    // waited on by partition 1's stream. The waiting side adds 1 to what the other wrote.
    {
      int* cell = nullptr;
      PIPESCHED_GPU_TEST_CHECK(cudaMalloc(&cell, sizeof(int)));
      PIPESCHED_GPU_TEST_CHECK(cudaMemset(cell, 0, sizeof(int)));
      // the memset runs on the legacy stream, which the partitions' (non-blocking) streams do
      // not wait for
      PIPESCHED_GPU_TEST_CHECK(cudaDeviceSynchronize());
      cudaEvent_t in_part = nullptr, plain = nullptr;
      cudaStream_t s = nullptr;
      PIPESCHED_GPU_TEST_CHECK(sp.in_context(0, [&] { return cudaEventCreateWithFlags(&in_part, cudaEventDisableTiming); }));
      PIPESCHED_GPU_TEST_CHECK(cudaEventCreateWithFlags(&plain, cudaEventDisableTiming));
      PIPESCHED_GPU_TEST_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
      add_after<<<1, 1, 0, sp.stream(0)>>>(cell, 0, 1000000); // slow, then 0 -> 1
      PIPESCHED_GPU_TEST_CHECK(cudaEventRecord(in_part, sp.stream(0)));
      PIPESCHED_GPU_TEST_CHECK(cudaStreamWaitEvent(s, in_part, 0));
      add_after<<<1, 1, 0, s>>>(cell, 1, 1000000); // 1 -> 2
      PIPESCHED_GPU_TEST_CHECK(cudaEventRecord(plain, s));
      PIPESCHED_GPU_TEST_CHECK(cudaStreamWaitEvent(sp.stream(1), plain, 0));
      add_after<<<1, 1, 0, sp.stream(1)>>>(cell, 2, 0); // 2 -> 3
      PIPESCHED_GPU_TEST_CHECK(cudaGetLastError());
      PIPESCHED_GPU_TEST_CHECK(cudaDeviceSynchronize());
      int got = 0;
      PIPESCHED_GPU_TEST_CHECK(cudaMemcpy(&got, cell, sizeof(int), cudaMemcpyDeviceToHost));
      std::printf("events across contexts: cell %d (want 3)\n", got);
      if (got != 3) ++bad;
      PIPESCHED_GPU_TEST_CHECK(cudaEventDestroy(in_part));
      PIPESCHED_GPU_TEST_CHECK(cudaEventDestroy(plain));
      PIPESCHED_GPU_TEST_CHECK(cudaStreamDestroy(s));
      PIPESCHED_GPU_TEST_CHECK(cudaFree(cell));
    }
    // more than fits: refused, naming the largest that would
    try {
      pipesched::cuda::sm_partitions too_big(0, parts, sp.facts().sm_count);
      std::printf("FAILED: %d partitions of %u SMs were accepted\n", parts, sp.facts().sm_count);
      ++bad;
    } catch (std::invalid_argument const& e) {
      std::string const m = e.what();
      // the arithmetic bound (plan_sm_partitions refuses before any driver call; the driver
      // may then make a smaller size than this, stepping down, for sm_per_stage = 0)
      unsigned const fit = pipesched::cuda::sm_largest_fitting(sp.facts(), parts);
      if (m.find("at most " + std::to_string(fit)) == std::string::npos) {
        std::printf("FAILED: unexpected message: %s\n", e.what());
        ++bad;
      }
    }
    if (bad) return 1;
  } catch (std::runtime_error const& e) {
    std::string const m = e.what();
    if (m.find("has no cu") != std::string::npos) {
      std::printf("SKIPPED: %s\n", e.what());
      return pipesched_test_skipped;
    }
    std::printf("FAILED: %s\n", e.what());
    return 1;
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("PASSED\n");
  return 0;
}
