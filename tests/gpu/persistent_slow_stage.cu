// Counters, not timing, order the persistent kernel's hand-offs: every boundary a pass reads
// is, word for word, the one its producer wrote in this iteration (tests/gpu/persistent_stamp.cuh:
// 4 KiB boundaries written and checked by every thread of the group, salted per iteration),
// and every rank runs each of its passes once — with no slow rank, with rank 1 spinning
// 200 us before each pass, and with the last rank slow; one block per rank and several
// (copies shared by a group's blocks). 1F1B, ZB-H1 and interleaved 1F1B, p = 4, m = 8, 3
// iterations each. Skipped (77) without a GPU. NOT RUN YET on a GPU (written 2026-12-01).
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_test.cuh"
#include "persistent_stamp.cuh"

#include "../cpu/plan_support.hpp"

namespace {

using gpu_test::failures;
using gpu_test::expect;

template <class S> int passes(int r) {
  int n = 0;
  for (std::size_t i = 0; i < S::lowered.size(static_cast<std::size_t>(r)); ++i)
    n += pipesched::is_compute(S::lowered.at(static_cast<std::size_t>(r), i).kind) ? 1 : 0;
  return n;
}

template <class S> void run(std::vector<int> const& blocks, int slow_rank) {
  pipesched::cuda::persistent_options o;
  o.slot_bytes = 4096;
  o.blocks = blocks;
  o.threads_per_block = 128;
  pipesched::cuda::persistent_executor<S, pstamp::functor> px(o);
  int* counters = nullptr;
  if (cudaMalloc(&counters, (1 + S::ranks) * sizeof(int)) != cudaSuccess) throw std::runtime_error("cudaMalloc");
  std::string const name = plan_test::label<S>() + " slow rank " + std::to_string(slow_rank) +
                           (blocks.empty() ? " (blocks by cost)" : " (blocks by hand)");
  for (int it = 0; it < 3; ++it) {
    cudaMemset(counters, 0, (1 + S::ranks) * sizeof(int));
    pstamp::functor f{counters, counters + 1, 1000 + it, slow_rank, 200'000, -1};
    std::vector<pstamp::functor> fs(S::ranks, f);
    px.run(fs);
    std::vector<int> h(1 + S::ranks);
    cudaMemcpy(h.data(), counters, h.size() * sizeof(int), cudaMemcpyDeviceToHost);
    expect(h[0] == 0, name + " iteration " + std::to_string(it) + ": " + std::to_string(h[0]) + " words differ");
    for (int r = 0; r < S::ranks; ++r)
      expect(h[1 + static_cast<std::size_t>(r)] == passes<S>(r),
             name + ": rank " + std::to_string(r) + " ran " + std::to_string(h[1 + static_cast<std::size_t>(r)]) +
                 " passes, its list has " + std::to_string(passes<S>(r)));
  }
  // the counters went up by exactly their per-iteration counts, three times
  std::vector<std::uint64_t> const st = px.state();
  for (int r = 0; r < S::ranks; ++r) expect(st[px.layout().epoch(r)] == 3, name + ": epoch of rank " + std::to_string(r));
  for (std::size_t g = 0; g < pipesched::cuda::persistent_protocol<S>::slots; ++g) {
    expect(st[px.layout().filled(static_cast<int>(g))] == 3 * pipesched::cuda::persistent_protocol<S>::tables.fills[g],
           name + ": filled counter of slot " + std::to_string(g));
    // (freed is raised only for slots some rank pushes into: nothing else waits on it)
    using P = pipesched::cuda::persistent_protocol<S>;
    expect(st[px.layout().freed(static_cast<int>(g))] == (P::tables.pushers[g] != 0 ? 3 * P::tables.occupancies[g] : 0),
           name + ": freed counter of slot " + std::to_string(g));
  }
  cudaFree(counters);
  std::printf("  %-44s 3 iterations, every boundary as written\n", name.c_str());
}

template <class S> void all() {
  for (int slow : {-1, 1, S::ranks - 1}) {
    run<S>({}, slow);
    run<S>({1, 3, 2, 2}, slow);
  }
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  try {
    all<pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<8>>>();
    all<pipesched::zb_h1<pipesched::ranks<4>, pipesched::microbatches<8>>>();
    all<pipesched::interleaved_1f1b<pipesched::ranks<4>, pipesched::microbatches<8>, pipesched::chunks<2>>>();
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("gpu.persistent_slow_stage: %s\n", failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}
