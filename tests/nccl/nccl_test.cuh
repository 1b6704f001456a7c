// Helpers for tests/nccl/*.cu: skipping (77) without enough GPUs, and a stage functor whose
// kernels stamp every output boundary over its whole size and check every input boundary
// against the stamp its producer must have written (counted in device memory).
#pragma once

#include <cstddef>
#include <cstdio>
#include <cuda_runtime.h>

#include "pipesched/plan/step.hpp"

inline constexpr int nccl_test_skipped = 77;

/// Devices usable on this node (0 when CUDA cannot be used; prints why).
inline int nccl_test_devices() {
  int n = 0;
  cudaError_t const e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    std::printf("SKIPPED: no CUDA device (%s)\n", cudaGetErrorString(e));
    (void)cudaGetLastError();
    return 0;
  }
  if (n == 0) std::printf("SKIPPED: no CUDA device\n");
  return n;
}

namespace nccl_test {

/// Byte k of boundary (what, stage, mb) in iteration `salt`.
__device__ __host__ inline unsigned char pattern(int what, int stage, int mb, int salt, std::size_t k) {
  return static_cast<unsigned char>((what * 131 + stage * 31 + mb * 7 + salt * 3 + static_cast<int>(k)) & 0xff);
}

__global__ inline void stamp(unsigned char* out, std::size_t n, int what, int stage, int mb, int salt) {
  for (std::size_t k = threadIdx.x; k < n; k += blockDim.x) out[k] = pattern(what, stage, mb, salt, k);
}
__global__ inline void verify(unsigned char const* in, std::size_t n, int what, int stage, int mb, int salt, int* bad) {
  for (std::size_t k = threadIdx.x; k < n; k += blockDim.x)
    if (in[k] != pattern(what, stage, mb, salt, k)) atomicAdd(bad, 1);
}

/// Straight routes: stage s reads stage s-1's activation (what 1) and stage s+1's gradient
/// (what 2). `bad` is device memory.
struct stamping {
  int* bad = nullptr;
  int salt = 0;
  template <class St> void forward(St, pipesched::io const& x) {
    if constexpr (St::has_in) verify<<<1, 128, 0, x.stream>>>(x.in.as<unsigned char>(), x.in.bytes, 1, St::stage - 1, St::mb, salt, bad);
    if constexpr (St::has_out) stamp<<<1, 128, 0, x.stream>>>(x.out.as<unsigned char>(), x.out.bytes, 1, St::stage, St::mb, salt);
  }
  template <class St> void backward(St s, pipesched::io const& x) { backward_input(s, x); }
  template <class St> void backward_input(St, pipesched::io const& x) {
    if constexpr (St::has_in) verify<<<1, 128, 0, x.stream>>>(x.in.as<unsigned char>(), x.in.bytes, 2, St::stage + 1, St::mb, salt, bad);
    if constexpr (St::has_aux) verify<<<1, 128, 0, x.stream>>>(x.aux.as<unsigned char>(), x.aux.bytes, 1, St::stage - 1, St::mb, salt, bad);
    if constexpr (St::has_out) stamp<<<1, 128, 0, x.stream>>>(x.out.as<unsigned char>(), x.out.bytes, 2, St::stage, St::mb, salt);
  }
  template <class St> void backward_weight(St, pipesched::io const& x) {
    if constexpr (St::has_in) verify<<<1, 128, 0, x.stream>>>(x.in.as<unsigned char>(), x.in.bytes, 2, St::stage + 1, St::mb, salt, bad);
    if constexpr (St::has_aux) verify<<<1, 128, 0, x.stream>>>(x.aux.as<unsigned char>(), x.aux.bytes, 1, St::stage - 1, St::mb, salt, bad);
  }
};

} // namespace nccl_test
