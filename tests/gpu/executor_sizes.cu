// Boundaries of different sizes on the CUDA executor: every stage's activation and gradient
// another size; each view a pass gets has its boundary's own size, and a kernel per pass
// stamps its outputs (over their whole size) and checks its inputs (over theirs): every
// boundary arrives intact, for V-Half (split backward, V placement) on one GPU, eager and
// replayed from a graph. Skipped (77) without a GPU.
#include <cstdio>
#include <vector>

#include "gpu_test.cuh"

#include "pipesched/cuda/executor.cuh"
#include "pipesched/schedules/v_shape.hpp"

namespace {

using namespace pipesched;
using S = v_half<stages<4>, microbatches<6>>;

std::size_t act(int s) { return 64 + 24 * static_cast<std::size_t>(s); }
std::size_t grad(int s) { return 512 + 40 * static_cast<std::size_t>(s); }

/// value of byte k of boundary (what, stage, mb) in iteration salt
__device__ __host__ unsigned char pattern(int what, int stage, int mb, int salt, std::size_t k) {
  return static_cast<unsigned char>((what * 131 + stage * 31 + mb * 7 + salt * 3 + static_cast<int>(k)) & 0xff);
}

__global__ void stamp(unsigned char* out, std::size_t n, int what, int stage, int mb, int salt) {
  for (std::size_t k = threadIdx.x; k < n; k += blockDim.x) out[k] = pattern(what, stage, mb, salt, k);
}
__global__ void verify(unsigned char const* in, std::size_t n, int what, int stage, int mb, int salt, int* bad) {
  for (std::size_t k = threadIdx.x; k < n; k += blockDim.x)
    if (in[k] != pattern(what, stage, mb, salt, k)) atomicAdd(bad, 1);
}

struct stage_fn {
  int* bad;
  int* wrong_sizes; // host counter
  int salt;
  void size(bool has, view const& v, std::size_t want) {
    if (has && v.bytes != want) ++*wrong_sizes;
  }
  template <class St> void forward(St, io const& x) {
    size(St::has_in, x.in, act(St::stage - 1));
    size(St::has_out, x.out, act(St::stage));
    if constexpr (St::has_in) verify<<<1, 128, 0, x.stream>>>(x.in.as<unsigned char>(), x.in.bytes, 1, St::stage - 1, St::mb, salt, bad);
    if constexpr (St::has_out) stamp<<<1, 128, 0, x.stream>>>(x.out.as<unsigned char>(), x.out.bytes, 1, St::stage, St::mb, salt);
  }
  template <class St> void backward_input(St, io const& x) {
    size(St::has_in, x.in, grad(St::stage));
    size(St::has_out, x.out, grad(St::stage - 1));
    if constexpr (St::has_in) verify<<<1, 128, 0, x.stream>>>(x.in.as<unsigned char>(), x.in.bytes, 2, St::stage, St::mb, salt, bad);
    if constexpr (St::has_aux) verify<<<1, 128, 0, x.stream>>>(x.aux.as<unsigned char>(), x.aux.bytes, 1, St::stage - 1, St::mb, salt, bad);
    if constexpr (St::has_out) stamp<<<1, 128, 0, x.stream>>>(x.out.as<unsigned char>(), x.out.bytes, 2, St::stage - 1, St::mb, salt);
  }
  template <class St> void backward_weight(St, io const& x) {
    if constexpr (St::has_in) verify<<<1, 128, 0, x.stream>>>(x.in.as<unsigned char>(), x.in.bytes, 2, St::stage, St::mb, salt, bad);
    if constexpr (St::has_aux) verify<<<1, 128, 0, x.stream>>>(x.aux.as<unsigned char>(), x.aux.bytes, 1, St::stage - 1, St::mb, salt, bad);
  }
};

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  try {
    cuda::options o;
    for (int s = 0; s < S::stages; ++s) {
      o.boundaries.activation.push_back(act(s));
      o.boundaries.gradient.push_back(grad(s));
    }
    cuda::executor<S> ex(o);
    int* bad = nullptr;
    PIPESCHED_GPU_TEST_CHECK(cudaMalloc(&bad, sizeof(int)));
    PIPESCHED_GPU_TEST_CHECK(cudaMemset(bad, 0, sizeof(int)));
    int wrong_sizes = 0;
    std::vector<stage_fn> fs(4, stage_fn{bad, &wrong_sizes, 1});
    ex.run(fs);
    for (auto& f : fs) f.salt = 2;
    ex.capture(fs);
    ex.replay();
    ex.replay();
    int h = 0;
    PIPESCHED_GPU_TEST_CHECK(cudaMemcpy(&h, bad, sizeof(int), cudaMemcpyDeviceToHost));
    cudaFree(bad);
    std::printf("gpu.executor_sizes: %d bytes wrong, %d views of the wrong size: %s\n", h, wrong_sizes,
                h == 0 && wrong_sizes == 0 ? "OK" : "FAILED");
    return h == 0 && wrong_sizes == 0 ? 0 : 1;
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
}
