// Boundaries of different sizes on the CUDA executor: every stage's activation and gradient
// another size; each view a pass gets has its boundary's own size, and a kernel per pass
// stamps its outputs (over their whole size) and checks its inputs (over theirs): every
// boundary arrives intact, for V-Half (split backward, V placement) on one GPU, eager and
// replayed from a graph. Every kernel counts its runs on the device: the eager run must run
// each kernel the functors issued once, and each replay each kernel they issued into the
// graph (so a replay that runs nothing fails). Skipped (77) without a GPU.
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

// counts[0]: bytes that differ; counts[1]: kernels run (each kernel's thread 0 adds 1)
__global__ void stamp(unsigned char* out, std::size_t n, int what, int stage, int mb, int salt, int* counts) {
  if (threadIdx.x == 0) atomicAdd(counts + 1, 1);
  for (std::size_t k = threadIdx.x; k < n; k += blockDim.x) out[k] = pattern(what, stage, mb, salt, k);
}
__global__ void verify(unsigned char const* in, std::size_t n, int what, int stage, int mb, int salt, int* counts) {
  if (threadIdx.x == 0) atomicAdd(counts + 1, 1);
  for (std::size_t k = threadIdx.x; k < n; k += blockDim.x)
    if (in[k] != pattern(what, stage, mb, salt, k)) atomicAdd(counts, 1);
}

struct stage_fn {
  int* counts;      // device: bytes wrong, kernels run
  int* wrong_sizes; // host counter
  int* issued;      // host counter: kernels launched (eagerly or into the graph)
  int salt;
  void size(bool has, view const& v, std::size_t want) {
    if (has && v.bytes != want) ++*wrong_sizes;
  }
  void check(view const& v, cudaStream_t st, int what, int stage, int mb) {
    ++*issued;
    verify<<<1, 128, 0, st>>>(v.as<unsigned char>(), v.bytes, what, stage, mb, salt, counts);
  }
  void put(view const& v, cudaStream_t st, int what, int stage, int mb) {
    ++*issued;
    stamp<<<1, 128, 0, st>>>(v.as<unsigned char>(), v.bytes, what, stage, mb, salt, counts);
  }
  template <class St> void forward(St, io const& x) {
    size(St::has_in, x.in, act(St::stage - 1));
    size(St::has_out, x.out, act(St::stage));
    if constexpr (St::has_in) check(x.in, x.stream, 1, St::stage - 1, St::mb);
    if constexpr (St::has_out) put(x.out, x.stream, 1, St::stage, St::mb);
  }
  template <class St> void backward_input(St, io const& x) {
    size(St::has_in, x.in, grad(St::stage));
    size(St::has_out, x.out, grad(St::stage - 1));
    if constexpr (St::has_in) check(x.in, x.stream, 2, St::stage, St::mb);
    if constexpr (St::has_aux) check(x.aux, x.stream, 1, St::stage - 1, St::mb);
    if constexpr (St::has_out) put(x.out, x.stream, 2, St::stage - 1, St::mb);
  }
  template <class St> void backward_weight(St, io const& x) {
    if constexpr (St::has_in) check(x.in, x.stream, 2, St::stage, St::mb);
    if constexpr (St::has_aux) check(x.aux, x.stream, 1, St::stage - 1, St::mb);
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
    int* counts = nullptr; // bytes wrong, kernels run
    PIPESCHED_GPU_TEST_CHECK(cudaMalloc(&counts, 2 * sizeof(int)));
    PIPESCHED_GPU_TEST_CHECK(cudaMemset(counts, 0, 2 * sizeof(int))); // legacy stream: run() forks after it
    int wrong_sizes = 0, issued = 0;
    std::vector<stage_fn> fs(4, stage_fn{counts, &wrong_sizes, &issued, 1});
    ex.run(fs);
    int const eager = issued;
    for (auto& f : fs) f.salt = 2;
    ex.capture(fs);
    int const captured = issued - eager;
    ex.replay();
    ex.replay();
    int h[2] = {};
    PIPESCHED_GPU_TEST_CHECK(cudaMemcpy(h, counts, sizeof h, cudaMemcpyDeviceToHost));
    cudaFree(counts);
    bool const ran = eager > 0 && captured == eager && h[1] == eager + 2 * captured;
    std::printf("gpu.executor_sizes: %d bytes wrong, %d views of the wrong size, %d kernels run of %d issued eagerly "
                "+ 2 x %d captured: %s\n",
                h[0], wrong_sizes, h[1], eager, captured, h[0] == 0 && wrong_sizes == 0 && ran ? "OK" : "FAILED");
    return h[0] == 0 && wrong_sizes == 0 && ran ? 0 : 1;
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
}
