// Bench support for bench/*.cu: what the GPU benchmarks share — a CUDA call that must
// succeed, the device's wall clock, a busy-wait of set wall time, the device check.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

namespace gpu_bench {

/// Exits (status 1) naming the call when a CUDA call failed.
inline void ok(cudaError_t e, char const* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

/// The device's wall clock (%globaltimer), in ns.
__device__ inline unsigned long long now_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

/// Busy-waits `ns` nanoseconds of wall time (0: returns at once).
__device__ inline void spin_ns(unsigned long long ns) {
  if (ns == 0) return;
  unsigned long long const start = now_ns();
  while (now_ns() - start < ns) {
  }
}

/// False (after printing "<name>: no CUDA device: skipped") when no device is visible: the
/// benchmark then exits 77.
inline bool has_device(char const* name) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    (void)cudaGetLastError();
    std::printf("%s: no CUDA device: skipped\n", name);
    return false;
  }
  return true;
}

} // namespace gpu_bench
