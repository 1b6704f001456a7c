// The model of examples/02_cuda_mlp.cu and examples/03_nccl_mlp.cu: an MLP whose stage
// functors call cuBLAS for their GEMMs and their own kernels for bias, tanh and a softmax
// cross-entropy head; the schedule (one line), the stage functor, a training loop on one GPU
// (`train<S>`) and the weights read back. Change the schedule with the `using` line below.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cub/device/device_reduce.cuh>
#include <cuda/std/functional>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <pipesched/cuda/executor.cuh>
#include <pipesched/schedules/gpipe.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

// ---- the schedule: one line ------------------------------------------------------------
constexpr int stages = 4, microbatches = 8;
using schedule = pipesched::zb_h1<pipesched::ranks<stages>, pipesched::microbatches<microbatches>>;
// e.g. pipesched::one_f_one_b<...>, pipesched::interleaved_1f1b<..., pipesched::chunks<2>>, pipesched::zb_v<...>
// The single-stage run that checks it:
using single = pipesched::gpipe<pipesched::ranks<1>, pipesched::microbatches<microbatches>>;

namespace {

void ok(cudaError_t e, char const* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
void ok(cublasStatus_t e, char const* what) {
  if (e != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + ": cuBLAS status " + std::to_string(e));
}

constexpr int layers = 8, width = 256, classes = 16, samples = 64; // samples per micro-batch
constexpr float lr = 0.05f;

// ---- kernels ------------------------------------------------------------------------------
__global__ void bias_tanh(float* z, float* a, float const* b, int rows, int cols, bool linear) {
  // z, a: column-major cols x rows (cuBLAS layout: one column per sample)
  int const t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (t >= rows * cols) return;
  float const v = z[t] + b[t % cols];
  z[t] = v;
  a[t] = linear ? v : tanhf(v);
}
__global__ void softmax_xent(float const* logits, int const* labels, int n, int k, float scale, float* dlogits,
                             float* loss) {
  // one thread per sample; loss[s] for the sample, summed by CUB afterwards
  int const s = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (s >= n) return;
  float const* z = logits + s * k;
  float mx = z[0];
  for (int c = 1; c < k; ++c) mx = fmaxf(mx, z[c]);
  float sum = 0;
  for (int c = 0; c < k; ++c) sum += expf(z[c] - mx);
  loss[s] = (logf(sum) + mx - z[labels[s]]) / static_cast<float>(n);
  for (int c = 0; c < k; ++c) dlogits[s * k + c] = (expf(z[c] - mx) / sum - (c == labels[s] ? 1.f : 0.f)) * scale;
}
__global__ void tanh_backward(float const* da, float const* a, float* dz, int count, bool linear) {
  int const t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (t < count) dz[t] = linear ? da[t] : da[t] * (1.f - a[t] * a[t]);
}
__global__ void bias_grad(float const* dz, float* gb, int rows, int cols) {
  int const o = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (o >= cols) return;
  float acc = 0;
  for (int s = 0; s < rows; ++s) acc += dz[s * cols + o];
  gb[o] = acc;
}
/// w -= lr * (g_0 + g_1 + ... + g_{m-1}) (micro-batch gradients summed in order)
__global__ void sgd(float* w, float const* grads, int count, int m) {
  int const t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (t >= count) return;
  float g = 0;
  for (int j = 0; j < m; ++j) g += grads[static_cast<std::size_t>(j) * count + t];
  w[t] -= lr * g;
}
struct square {
  __device__ float operator()(float x) const { return x * x; }
};

int grid(int n) { return (n + 255) / 256; }
int fan_out(int l) { return l == layers - 1 ? classes : width; }

/// Parameters, data and per-(micro-batch, layer) state on the device.
struct model {
  int pipeline_stages;
  std::vector<float*> w, b, gw, gb; // per layer; gw/gb hold m micro-batch gradients each
  std::vector<float*> in, z, a, dz; // per (mb, layer)
  float *x = nullptr, *dlogits = nullptr, *loss = nullptr, *scratch = nullptr;
  int* y = nullptr;
  std::vector<void*> owned;

  float* alloc(std::size_t n) {
    void* p = nullptr;
    ok(cudaMalloc(&p, n * sizeof(float)), "cudaMalloc");
    ok(cudaMemset(p, 0, n * sizeof(float)), "cudaMemset");
    owned.push_back(p);
    return static_cast<float*>(p);
  }
  explicit model(int p) : pipeline_stages(p) {
    unsigned seed = 7;
    auto uniform = [&seed] {
      seed = seed * 1664525u + 1013904223u;
      return static_cast<float>(seed >> 8) / 16777216.f * 2.f - 1.f;
    };
    for (int l = 0; l < layers; ++l) {
      std::vector<float> hw(static_cast<std::size_t>(fan_out(l) * width)), hb(static_cast<std::size_t>(fan_out(l)));
      for (auto& v : hw) v = uniform() * 1.5f / std::sqrt(static_cast<float>(width));
      for (auto& v : hb) v = uniform() * 0.1f;
      w.push_back(alloc(hw.size()));
      b.push_back(alloc(hb.size()));
      ok(cudaMemcpy(w.back(), hw.data(), hw.size() * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
      ok(cudaMemcpy(b.back(), hb.data(), hb.size() * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
      gw.push_back(alloc(hw.size() * microbatches));
      gb.push_back(alloc(hb.size() * microbatches));
    }
    std::vector<float> hx(static_cast<std::size_t>(microbatches * samples * width));
    for (auto& v : hx) v = uniform();
    std::vector<int> hy(static_cast<std::size_t>(microbatches * samples));
    for (auto& v : hy) v = static_cast<int>((seed = seed * 1664525u + 1013904223u) >> 16) % classes;
    x = alloc(hx.size());
    ok(cudaMemcpy(x, hx.data(), hx.size() * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
    ok(cudaMalloc(&y, hy.size() * sizeof(int)), "cudaMalloc");
    owned.push_back(y);
    ok(cudaMemcpy(y, hy.data(), hy.size() * sizeof(int), cudaMemcpyHostToDevice), "cudaMemcpy");
    for (int j = 0; j < microbatches; ++j)
      for (int l = 0; l < layers; ++l) {
        in.push_back(alloc(static_cast<std::size_t>(samples * width)));
        z.push_back(alloc(static_cast<std::size_t>(samples * fan_out(l))));
        a.push_back(alloc(static_cast<std::size_t>(samples * fan_out(l))));
        dz.push_back(alloc(static_cast<std::size_t>(samples * fan_out(l))));
      }
    dlogits = alloc(static_cast<std::size_t>(microbatches * samples * classes));
    loss = alloc(static_cast<std::size_t>(microbatches * samples));
    scratch = alloc(static_cast<std::size_t>(microbatches * layers * samples * width));
  }
  ~model() {
    for (void* p : owned) cudaFree(p);
  }
  std::size_t at(int mb, int l) const { return static_cast<std::size_t>(mb * layers + l); }
  int first(int s) const { return s * layers / pipeline_stages; }
  int last(int s) const { return (s + 1) * layers / pipeline_stages; }
  std::size_t boundary_bytes() const { return static_cast<std::size_t>(samples * width) * sizeof(float); }
};

/// The stage functor: a stage's layers with cuBLAS GEMMs and the kernels above, on io.stream.
/// One cuBLAS handle per rank (a handle is bound to one stream at a time).
struct stage {
  model* net;
  cublasHandle_t blas = nullptr;

  template <class St> void forward(St, pipesched::io const& io) {
    ok(cublasSetStream(blas, io.stream), "cublasSetStream");
    float const* x = St::has_in ? io.in.as<float>() : net->x + St::mb * samples * width;
    float const one = 1.f, zero = 0.f;
    for (int l = net->first(St::stage); l < net->last(St::stage); ++l) {
      std::size_t const k = net->at(St::mb, l);
      ok(cudaMemcpyAsync(net->in[k], x, net->boundary_bytes(), cudaMemcpyDeviceToDevice, io.stream), "copy");
      int const out = fan_out(l);
      // z (out x samples) = W (out x width, stored row-major = width x out column-major)^T · x
      ok(cublasSgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, out, samples, width, &one, net->w[static_cast<std::size_t>(l)], width,
                     net->in[k], width, &zero, net->z[k], out),
         "cublasSgemm");
      bias_tanh<<<grid(samples * out), 256, 0, io.stream>>>(net->z[k], net->a[k], net->b[static_cast<std::size_t>(l)],
                                                            samples, out, l == layers - 1);
      x = net->a[k];
    }
    if constexpr (St::stage == St::stages - 1)
      softmax_xent<<<grid(samples), 256, 0, io.stream>>>(x, net->y + St::mb * samples, samples, classes,
                                                          1.f / (samples * microbatches),
                                                          net->dlogits + St::mb * samples * classes,
                                                          net->loss + St::mb * samples);
    else if constexpr (St::has_out)
      ok(cudaMemcpyAsync(io.out.data, x, net->boundary_bytes(), cudaMemcpyDeviceToDevice, io.stream), "copy");
  }
  template <class St> void backward(St s, pipesched::io const& io) { back<St>(io, true, true); (void)s; }
  template <class St> void backward_input(St s, pipesched::io const& io) { back<St>(io, true, false); (void)s; }
  template <class St> void backward_weight(St s, pipesched::io const& io) { back<St>(io, false, true); (void)s; }

private:
  /// I (input gradients, keeping each layer's dz) and/or W (weight gradients from the kept dz)
  template <class St> void back(pipesched::io const& io, bool input, bool weight) {
    ok(cublasSetStream(blas, io.stream), "cublasSetStream");
    float const one = 1.f, zero = 0.f;
    float const* da = St::has_in ? io.in.as<float>() : net->dlogits + St::mb * samples * classes;
    int const f = net->first(St::stage);
    for (int l = net->last(St::stage) - 1; l >= f; --l) {
      std::size_t const k = net->at(St::mb, l);
      int const out = fan_out(l);
      if (input) tanh_backward<<<grid(samples * out), 256, 0, io.stream>>>(da, net->a[k], net->dz[k], samples * out, l == layers - 1);
      if (weight) {
        // gW (width x out column-major = out x width row-major) = x · dz^T, for this micro-batch
        float const* x = l == f ? (St::has_aux ? io.aux.as<float>() : net->x + St::mb * samples * width) : net->in[k];
        float* g = net->gw[static_cast<std::size_t>(l)] + static_cast<std::size_t>(St::mb) * out * width;
        ok(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, width, out, samples, &one, x, width, net->dz[k], out, &zero, g, width),
           "cublasSgemm");
        bias_grad<<<grid(out), 256, 0, io.stream>>>(net->dz[k], net->gb[static_cast<std::size_t>(l)] + St::mb * out, samples, out);
      }
      if (!input) continue;
      float* dx = l > f ? net->scratch + k * samples * width : (St::has_out ? io.out.as<float>() : nullptr);
      if (dx)
        ok(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, width, samples, out, &one, net->w[static_cast<std::size_t>(l)], width,
                       net->dz[k], out, &zero, dx, width),
           "cublasSgemm");
      da = dx;
    }
  }
};

/// Trains `net` for `steps` iterations with schedule S; returns the losses. CUB sums each
/// iteration's per-sample losses and the squared gradient norm (deterministically).
template <class S> std::vector<float> train(model& net, int steps, float* grad_norm) {
  pipesched::cuda::executor<S> ex({.slot_bytes = net.boundary_bytes()});
  std::vector<stage> fs(S::ranks, stage{&net});
  for (auto& f : fs) ok(cublasCreate(&f.blas), "cublasCreate");
  float *sum = nullptr, *norm = nullptr;
  ok(cudaMalloc(&sum, sizeof(float)), "cudaMalloc");
  ok(cudaMalloc(&norm, sizeof(float)), "cudaMalloc");
  int const n_loss = microbatches * samples;
  std::size_t temp_bytes = 0, t2 = 0;
  std::size_t const grads = static_cast<std::size_t>(fan_out(0) * width * microbatches);
  ok(cub::DeviceReduce::Sum(nullptr, temp_bytes, net.loss, sum, n_loss), "cub");
  ok(cub::DeviceReduce::TransformReduce(nullptr, t2, net.gw[0], norm, grads, cuda::std::plus<float>{}, square{}, 0.f), "cub");
  void* temp = nullptr;
  ok(cudaMalloc(&temp, std::max(temp_bytes, t2)), "cudaMalloc"); // allocated once: the calls stay capturable
  std::vector<float> losses;
  for (int step = 0; step < steps; ++step) {
    ex.run(fs);
    std::size_t tb = std::max(temp_bytes, t2);
    ok(cub::DeviceReduce::Sum(temp, tb, net.loss, sum, n_loss), "cub::DeviceReduce::Sum");
    tb = std::max(temp_bytes, t2);
    ok(cub::DeviceReduce::TransformReduce(temp, tb, net.gw[0], norm, grads, cuda::std::plus<float>{}, square{}, 0.f),
       "cub::DeviceReduce::TransformReduce");
    for (int l = 0; l < layers; ++l) {
      sgd<<<grid(fan_out(l) * width), 256>>>(net.w[static_cast<std::size_t>(l)], net.gw[static_cast<std::size_t>(l)],
                                               fan_out(l) * width, microbatches);
      sgd<<<grid(fan_out(l)), 256>>>(net.b[static_cast<std::size_t>(l)], net.gb[static_cast<std::size_t>(l)], fan_out(l),
                                      microbatches);
    }
    float h = 0;
    ok(cudaMemcpy(&h, sum, sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
    losses.push_back(h / microbatches);
    ok(cudaMemcpy(grad_norm, norm, sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
    *grad_norm = std::sqrt(*grad_norm);
  }
  for (auto& f : fs) cublasDestroy(f.blas);
  cudaFree(temp);
  cudaFree(sum);
  cudaFree(norm);
  return losses;
}

inline std::vector<float> weights(model const& net) { // (inline: 03 does not use it)
  std::vector<float> all;
  for (int l = 0; l < layers; ++l) {
    std::vector<float> w(static_cast<std::size_t>(fan_out(l) * width));
    ok(cudaMemcpy(w.data(), net.w[static_cast<std::size_t>(l)], w.size() * sizeof(float), cudaMemcpyDeviceToHost), "copy");
    all.insert(all.end(), w.begin(), w.end());
  }
  return all;
}

} // namespace
