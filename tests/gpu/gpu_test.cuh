// Helpers for tests/gpu/*.cu: a GPU test's main() starts with PIPESCHED_GPU_TEST_REQUIRE_DEVICE(),
// which returns 77 (ctest: skipped) when no CUDA device can be used.
#pragma once

#include <cmath>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>
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

/// `count` device ints (counters a device functor adds to), zeroed at construction and by
/// zero(), freed at the end of the scope.
class device_ints {
public:
  explicit device_ints(int count) : n_(count) {
    if (cudaMalloc(&p_, bytes()) != cudaSuccess) throw std::runtime_error("cudaMalloc");
    zero();
  }
  device_ints(device_ints const&) = delete;
  device_ints& operator=(device_ints const&) = delete;
  ~device_ints() { cudaFree(p_); }

  int* get() const { return p_; }
  /// Waits for the memset: it runs on the current device's legacy stream, which the
  /// executors' non-blocking streams do not wait for.
  void zero() {
    if (cudaMemset(p_, 0, bytes()) != cudaSuccess) throw std::runtime_error("cudaMemset");
    if (cudaDeviceSynchronize() != cudaSuccess) throw std::runtime_error("cudaDeviceSynchronize after cudaMemset");
  }
  std::vector<int> read() const {
    std::vector<int> h(static_cast<std::size_t>(n_));
    if (cudaMemcpy(h.data(), p_, bytes(), cudaMemcpyDeviceToHost) != cudaSuccess) throw std::runtime_error("cudaMemcpy");
    return h;
  }

private:
  std::size_t bytes() const { return static_cast<std::size_t>(n_) * sizeof(int); }
  int n_;
  int* p_ = nullptr;
};

/// The message of a loss check: "<name> step <step>: loss <got> vs <versus> <want>".
inline std::string loss_message(std::string const& name, int step, double got, char const* versus, double want) {
  return name + " step " + std::to_string(step) + ": loss " + std::to_string(got) + " vs " + versus + " " +
         std::to_string(want);
}

/// Runs a test's checks and prints its summary line "<name>: OK" (or FAILED); returns main's
/// exit code: 1 when a check failed or `checks` threw (printed), else 0.
template <class Checks> int run(char const* name, Checks&& checks) {
  try {
    checks();
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("%s: %s\n", name, failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}

} // namespace gpu_test
