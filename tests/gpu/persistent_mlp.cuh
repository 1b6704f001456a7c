// Test support: the MLP of tests/cpu/plan_mlp.hpp as device functors for
// pipesched::cuda::persistent_executor — gpu_mlp's per-element arithmetic (the same functions
// its kernels call), run by every thread of a rank's block group, strided over the group's
// threads, with a group barrier between dependent steps; the model's memory and SGD step are
// gpu_mlp::model's. So the persistent executor, the streams executor (gpu_mlp) and the host
// backend train the same model: persistent and streams equal to the last bit, both within
// 1e-10 of the host.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

#include "gpu_mlp.cuh"
#include "pipesched/cuda/persistent.cuh"

#include "../cpu/plan_support.hpp"

namespace pmlp {

using gpu_mlp::cuda_ok;
using group = pipesched::cuda::device_group;

/// The model's device pointers, trivially copyable (the functor carries it).
struct dev {
  int layers, width, classes, samples, microbatches, stages;
  double lr;
  double** w;     ///< per layer
  double** b;     ///< per layer
  double const* x;
  int const* y;
  double** in;    ///< per (micro-batch, layer): k = mb * layers + l
  double** z;
  double** a;
  double** dz;
  double** gw;
  double** gb;
  double** scratch;
  double* dlogits;
  double* loss;
  int slow_rank;      ///< this rank's passes spin first (-1: none)
  long long slow_cycles;
  int fail_stage, fail_mb; ///< the B/I of this (stage, micro-batch) reports a failure (-1: none)

  __device__ int fan_out(int l) const { return l == layers - 1 ? classes : width; }
  __device__ int first_layer(int s) const { return s * layers / stages; }
  __device__ int end_layer(int s) const { return (s + 1) * layers / stages; }
  __device__ int at(int mb, int l) const { return mb * layers + l; }
};

__device__ inline void spin(long long cycles) {
  long long const start = clock64();
  while (clock64() - start < cycles) {
  }
}

__device__ inline void copy(group const& g, double* dst, double const* src, int count) {
  for (int t = g.thread_rank(); t < count; t += g.num_threads()) dst[t] = src[t];
}

static __device__ __noinline__ void stage_forward(dev const& m, group const& g, int stage, int mb, double const* x, double* y) {
  int const n = m.samples, d = m.width;
  for (int l = m.first_layer(stage); l < m.end_layer(stage); ++l) {
    int const k = m.at(mb, l);
    copy(g, m.in[k], x, n * d);
    g.sync();
    int const out = m.fan_out(l);
    bool const linear = l == m.layers - 1;
    for (int t = g.thread_rank(); t < n * out; t += g.num_threads())
      gpu_mlp::layer_forward_at(m.w[l], m.b[l], m.in[k], d, out, linear, m.z[k], m.a[k], t);
    g.sync();
    x = m.a[k];
  }
  if (stage == m.stages - 1) {
    if (g.thread_rank() != 0) return;
    int const K = m.classes;
    gpu_mlp::softmax_xent_serial(m.a[m.at(mb, m.layers - 1)], m.y + mb * n, n, K, 1.0 / (n * m.microbatches),
                                 m.dlogits + mb * n * K, m.loss + mb);
  } else if (y) {
    copy(g, y, x, n * d);
  }
}

static __device__ __noinline__ void weight_grad(dev const& m, group const& g, int k, double const* x, int out) {
  for (int t = g.thread_rank(); t < out * (m.width + 1); t += g.num_threads())
    gpu_mlp::weight_grad_at(m.dz[k], x, m.samples, m.width, out, m.gw[k], m.gb[k], t);
}

static __device__ __noinline__ void input_grad(dev const& m, group const& g, int l, int k, int out, double* dx) {
  for (int t = g.thread_rank(); t < m.samples * m.width; t += g.num_threads())
    gpu_mlp::input_grad_at(m.w[l], m.dz[k], m.width, out, dx, t);
}

static __device__ __noinline__ void stage_backward(dev const& m, group const& g, int stage, int mb, double const* dy, double const* x,
                                      double* dx, bool fused) {
  int const n = m.samples;
  double const* da = dy;
  for (int l = m.end_layer(stage) - 1; l >= m.first_layer(stage); --l) {
    int const k = m.at(mb, l);
    int const out = m.fan_out(l);
    bool const linear = l == m.layers - 1;
    for (int t = g.thread_rank(); t < n * out; t += g.num_threads())
      gpu_mlp::activation_backward_at(da, m.a[k], linear, m.dz[k], t);
    g.sync();
    if (fused) weight_grad(m, g, k, l == m.first_layer(stage) ? x : m.in[k], out);
    if (l > m.first_layer(stage)) {
      input_grad(m, g, l, k, out, m.scratch[k]);
      g.sync();
      da = m.scratch[k];
    } else if (dx) {
      input_grad(m, g, l, k, out, dx);
    }
  }
}

// (The passes' bodies are out of line: the kernel inlines the whole plan, and a body inlined
// at each of a rank's passes makes ptxas take minutes.)

/// The device functor: one per rank (all the same here), trivially copyable. It reads the
/// step through the object, so it takes compile-time steps and runtime_steps alike.
struct functor {
  dev m;

  template <class St> __device__ bool forward(St s, pipesched::io const& x, group const& g) {
    slow(x);
    double const* in = s.has_in ? x.in.as<double>() : m.x + s.mb * m.samples * m.width;
    stage_forward(m, g, s.stage, s.mb, in, s.has_out ? x.out.as<double>() : nullptr);
    return true;
  }
  template <class St> __device__ bool backward(St s, pipesched::io const& x, group const& g) {
    slow(x);
    if (s.stage == m.fail_stage && s.mb == m.fail_mb) return false;
    stage_backward(m, g, s.stage, s.mb, grad(s, x), saved(s, x), s.has_out ? x.out.as<double>() : nullptr, true);
    return true;
  }
  template <class St> __device__ bool backward_input(St s, pipesched::io const& x, group const& g) {
    slow(x);
    if (s.stage == m.fail_stage && s.mb == m.fail_mb) return false;
    stage_backward(m, g, s.stage, s.mb, grad(s, x), nullptr, s.has_out ? x.out.as<double>() : nullptr, false);
    return true;
  }
  template <class St> __device__ bool backward_weight(St s, pipesched::io const& x, group const& g) {
    slow(x);
    for (int l = m.first_layer(s.stage); l < m.end_layer(s.stage); ++l) {
      int const k = m.at(s.mb, l);
      weight_grad(m, g, k, l == m.first_layer(s.stage) ? saved(s, x) : m.in[k], m.fan_out(l));
    }
    return true;
  }

private:
  __device__ void slow(pipesched::io const& x) const {
    if (x.rank == m.slow_rank) spin(m.slow_cycles);
  }
  template <class St> __device__ double const* grad(St const& s, pipesched::io const& x) const {
    return s.has_in ? x.in.as<double>() : m.dlogits + s.mb * m.samples * m.classes;
  }
  template <class St> __device__ double const* saved(St const& s, pipesched::io const& x) const {
    return s.has_aux ? x.aux.as<double>() : m.x + s.mb * m.samples * m.width;
  }
};

using gpu_mlp::max_relative_difference;
using gpu_mlp::parameters;

/// The model on the device: gpu_mlp's (initial weights and data copied from a host mlp::model,
/// its SGD step) and the device arrays of its buffers' pointers that the functors read.
class model {
public:
  explicit model(mlp::model const& host) : net_(host) {
    mlp::config const& c = net_.cfg();
    gpu_mlp::model::buffers const b = net_.device_buffers();
    m_ = dev{c.layers, c.width, c.classes, c.samples, c.microbatches, c.stages, c.lr, ptrs(b.w), ptrs(b.b), b.x, b.y,
             ptrs(b.in), ptrs(b.z), ptrs(b.a), ptrs(b.dz), ptrs(b.gw), ptrs(b.gb), ptrs(b.scratch), b.dlogits, b.loss,
             -1, 0, -1, -1};
  }
  model(model const&) = delete;
  model& operator=(model const&) = delete;
  ~model() {
    for (void* p : owned_) cudaFree(p);
  }

  dev const& device() const { return m_; }
  std::size_t boundary_bytes() const { return net_.boundary_bytes(); }

  /// The SGD step (gpu_mlp's kernel: gradients summed over micro-batches in order), then the
  /// mean loss.
  double apply_all(cudaStream_t st) { return net_.apply_all(st); }

  /// Every parameter, in gpu_mlp::parameters' order.
  std::vector<double> parameters() const { return gpu_mlp::parameters(net_); }

private:
  double** ptrs(std::vector<double*> const& v) {
    void* p = nullptr;
    cuda_ok(cudaMalloc(&p, v.size() * sizeof(double*)), "cudaMalloc");
    owned_.push_back(p);
    cuda_ok(cudaMemcpy(p, v.data(), v.size() * sizeof(double*), cudaMemcpyHostToDevice), "cudaMemcpy");
    return static_cast<double**>(p);
  }

  gpu_mlp::model net_;
  dev m_{};
  std::vector<void*> owned_;
};

/// The families the persistent MLP tests train at p = P, m = M: GPipe, 1F1B, interleaved 1F1B
/// (v = 2), ZB-H1 (I and W apart) and ZB-V (V placement).
template <int P, int M>
using schedules = plan_test::type_list<pipesched::gpipe<pipesched::ranks<P>, pipesched::microbatches<M>>,
                                       pipesched::one_f_one_b<pipesched::ranks<P>, pipesched::microbatches<M>>,
                                       pipesched::interleaved_1f1b<pipesched::ranks<P>, pipesched::microbatches<M>,
                                                                   pipesched::chunks<2>>,
                                       pipesched::zb_h1<pipesched::ranks<P>, pipesched::microbatches<M>>,
                                       pipesched::zb_v<pipesched::ranks<P>, pipesched::microbatches<M>>>;

} // namespace pmlp
