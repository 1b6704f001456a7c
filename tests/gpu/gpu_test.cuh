// Helpers for tests/gpu/*.cu: a GPU test's main() starts with PIPESCHED_GPU_TEST_REQUIRE_DEVICE(),
// which returns 77 (ctest: skipped) when no CUDA device can be used.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
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

namespace gpu_test {

/// Checks that failed so far (expect() prints each as it happens); main returns 1 unless 0.
inline int failures = 0;

inline void expect(bool ok, std::string const& what) {
  if (ok) return;
  ++failures;
  std::printf("FAILED: %s\n", what.c_str());
}

/// |a - b| relative to the larger magnitude (0 when both are 0).
inline double rel(double a, double b) {
  double const s = std::fmax(std::fabs(a), std::fabs(b));
  return s > 0 ? std::fabs(a - b) / s : 0.0;
}

inline bool contains(std::string const& s, char const* part) { return s.find(part) != std::string::npos; }

} // namespace gpu_test
