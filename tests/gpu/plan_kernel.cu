// A pipesched plan runs inside a kernel: for every rank of three schedules, one thread runs
// plan<S, r>::run with a __device__ stage functor and transport that write down every call
// (pass, stage, micro-batch, and the slots its views point at); on the host the record must
// equal the rank's lowered list. (tests/ptx proves the same plans compile to call-free PTX;
// this runs them.) Skipped (77) without a GPU.
#include <cstdio>
#include <vector>

#include "gpu_test.cuh"

#include "pipesched/plan/plan.hpp"
#include "pipesched/schedules/interleaved.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/zb_v.hpp"

namespace {

using gpu_test::failures;

using namespace pipesched;

struct entry {
  int kind, stage, mb, in, out, aux;
};

struct recorder {
  entry* log;
  int* count;
  view const* slots;
  __device__ int slot_of(view const& v) const {
    if (!v.data) return -1;
    for (int k = 0; k < 64; ++k)
      if (slots[k].data == v.data) return k;
    return -2;
  }
  // one out-of-line copy of the recording for every step type: inlined into each of the
  // plans' ~600 calls, its slot search made this file the GPU build's slowest and largest
  __device__ __noinline__ void record(int kind, int stage, int mb, io const& x) const {
    int const n = (*count)++;
    log[n] = entry{kind, stage, mb, slot_of(x.in), slot_of(x.out), slot_of(x.aux)};
  }
  template <class St> __device__ void note(St, io const& x) { record(static_cast<int>(St::kind), St::stage, St::mb, x); }
  template <class St> __device__ void forward(St s, io const& x) { note(s, x); }
  template <class St> __device__ void backward(St s, io const& x) { note(s, x); }
  template <class St> __device__ void backward_input(St s, io const& x) { note(s, x); }
  template <class St> __device__ void backward_weight(St s, io const& x) { note(s, x); }
  template <class St> __device__ void send(St s, io const& x) { note(s, x); }
  template <class St> __device__ void recv(St s, io const& x) { note(s, x); }
};

template <class S, int R> __global__ void run_rank(entry* log, int* count, view const* slots) {
  recorder rec{log, count, slots};
  plan<S, R>::run(rec, rec, slots);
}

template <class S> int check() {
  constexpr int max_slots = 64;
  std::vector<view> host_slots(max_slots);
  for (int k = 0; k < max_slots; ++k) host_slots[static_cast<std::size_t>(k)] = view{reinterpret_cast<void*>(0x1000 * (k + 1)), 8};
  view* slots = nullptr;
  entry* log = nullptr;
  int* count = nullptr;
  PIPESCHED_GPU_TEST_CHECK(cudaMalloc(&slots, max_slots * sizeof(view)));
  PIPESCHED_GPU_TEST_CHECK(cudaMemcpy(slots, host_slots.data(), max_slots * sizeof(view), cudaMemcpyHostToDevice));
  PIPESCHED_GPU_TEST_CHECK(cudaMalloc(&log, 8192 * sizeof(entry)));
  PIPESCHED_GPU_TEST_CHECK(cudaMalloc(&count, sizeof(int)));
  table const t = S::make();
  int bad = 0;
  [&]<int... R>(std::integer_sequence<int, R...>) {
    (
        [&] {
          cudaMemset(count, 0, sizeof(int));
          run_rank<S, R><<<1, 1>>>(log, count, slots);
          // an error of the kernel's run, named here (the record below then comes back empty)
          if (cudaError_t const e = cudaDeviceSynchronize(); e != cudaSuccess) {
            std::printf("FAILED: %s rank %d: the plan's kernel: %s\n", S::name, R, cudaGetErrorString(e));
            ++bad;
          }
          int n = 0;
          cudaMemcpy(&n, count, sizeof(int), cudaMemcpyDeviceToHost);
          std::vector<entry> got(static_cast<std::size_t>(n));
          cudaMemcpy(got.data(), log, got.size() * sizeof(entry), cudaMemcpyDeviceToHost);
          auto const& list = t.lists[R];
          if (got.size() != list.size()) ++bad;
          for (std::size_t i = 0; i < got.size() && i < list.size(); ++i) {
            action const& a = list[i];
            auto slot = [](std::uint16_t k) { return k == no_slot ? -1 : static_cast<int>(k); };
            entry const& e = got[i];
            if (e.kind != static_cast<int>(a.kind) || e.stage != a.stage || e.mb != a.mb || e.in != slot(a.in) ||
                e.out != slot(a.out) || e.aux != slot(a.aux))
              ++bad;
          }
        }(),
        ...);
  }(std::make_integer_sequence<int, S::ranks>{});
  PIPESCHED_GPU_TEST_CHECK(cudaGetLastError());
  cudaFree(slots);
  cudaFree(log);
  cudaFree(count);
  std::printf("  %-12s p%d m%d: %zu actions run in kernels, %d wrong\n", S::name, S::ranks, S::microbatches,
              t.total_actions(), bad);
  failures += bad;
  return 0;
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  if (check<one_f_one_b<stages<4>, microbatches<8>>>() || check<interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>>() ||
      check<zb_v<stages<4>, microbatches<8>>>())
    return 1;
  std::printf("gpu.plan_kernel: %s\n", failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}
