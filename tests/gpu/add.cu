// The GPU wiring: a kernel adds two vectors; the result is checked on the host. Skipped
// (exit 77) where no CUDA device exists.
#include <cstdio>
#include <vector>

#include "gpu_test.cuh"

__global__ void add(int n, float const* a, float const* b, float* c) {
  int const i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) c[i] = a[i] + b[i];
}

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  int const n = 1000;
  std::vector<float> a(n), b(n), c(n, 0.0f);
  for (int i = 0; i < n; ++i) {
    a[i] = static_cast<float>(i);
    b[i] = static_cast<float>(2 * i);
  }
  float *da = nullptr, *db = nullptr, *dc = nullptr;
  std::size_t const bytes = n * sizeof(float);
  PIPESCHED_GPU_TEST_CHECK(cudaMalloc(&da, bytes));
  PIPESCHED_GPU_TEST_CHECK(cudaMalloc(&db, bytes));
  PIPESCHED_GPU_TEST_CHECK(cudaMalloc(&dc, bytes));
  PIPESCHED_GPU_TEST_CHECK(cudaMemcpy(da, a.data(), bytes, cudaMemcpyHostToDevice));
  PIPESCHED_GPU_TEST_CHECK(cudaMemcpy(db, b.data(), bytes, cudaMemcpyHostToDevice));
  add<<<(n + 255) / 256, 256>>>(n, da, db, dc);
  PIPESCHED_GPU_TEST_CHECK(cudaGetLastError());
  PIPESCHED_GPU_TEST_CHECK(cudaMemcpy(c.data(), dc, bytes, cudaMemcpyDeviceToHost));
  PIPESCHED_GPU_TEST_CHECK(cudaFree(da));
  PIPESCHED_GPU_TEST_CHECK(cudaFree(db));
  PIPESCHED_GPU_TEST_CHECK(cudaFree(dc));
  int wrong = 0;
  for (int i = 0; i < n; ++i) wrong += c[i] != static_cast<float>(3 * i) ? 1 : 0;
  std::printf("gpu add: %d elements, %d wrong: %s\n", n, wrong, wrong == 0 ? "OK" : "FAILED");
  return wrong == 0 ? 0 : 1;
}
