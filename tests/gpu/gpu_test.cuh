// Helpers for tests/gpu/*.cu: a GPU test's main() starts with PIPESCHED_GPU_TEST_REQUIRE_DEVICE(),
// which returns 77 (ctest: skipped) when no CUDA device can be used.
#pragma once

#include <cstdio>
#include <cuda_runtime.h>

inline constexpr int pipesched_test_skipped = 77;

/// True when at least one CUDA device is usable; prints why not otherwise.
inline bool pipesched_test_has_device() {
  int n = 0;
  cudaError_t const e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    (void)cudaGetLastError(); // clear the sticky error, if any
    return false;
  }
  return true;
}

#define PIPESCHED_GPU_TEST_REQUIRE_DEVICE()                                                                            \
  do {                                                                                                                 \
    if (!pipesched_test_has_device()) return pipesched_test_skipped;                                                   \
  } while (0)

/// Fails the test (returns 1 from main) when a CUDA call fails.
#define PIPESCHED_GPU_TEST_CHECK(call)                                                                                 \
  do {                                                                                                                 \
    cudaError_t const pipesched_e_ = (call);                                                                           \
    if (pipesched_e_ != cudaSuccess) {                                                                                 \
      std::printf("FAILED: %s: %s (%s:%d)\n", #call, cudaGetErrorString(pipesched_e_), __FILE__, __LINE__);            \
      return 1;                                                                                                        \
    }                                                                                                                  \
  } while (0)
