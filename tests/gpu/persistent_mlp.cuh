// Test support: the MLP of tests/cpu/plan_mlp.hpp as device functors for
// pipesched::cuda::persistent_executor — the arithmetic of tests/gpu/gpu_mlp.cuh's kernels
// (the same per-element summation orders), written as __device__ loops that every thread of
// a rank's block group runs, strided over the group's threads, with a group barrier between
// dependent steps. The SGD step reuses gpu_mlp's kernel. So the persistent executor, the
// streams executor (gpu_mlp) and the host backend train the same model: persistent and streams
// equal to the last bit, both within 1e-10 of the host.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

#include "gpu_mlp.cuh"
#include "pipesched/cuda/persistent.cuh"

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
    for (int t = g.thread_rank(); t < n * out; t += g.num_threads()) {
      int const s = t / out, o = t % out;
      double acc = m.b[l][o];
      for (int i = 0; i < d; ++i) acc += m.w[l][o * d + i] * m.in[k][s * d + i];
      m.z[k][t] = acc;
      m.a[k][t] = linear ? acc : tanh(acc);
    }
    g.sync();
    x = m.a[k];
  }
  if (stage == m.stages - 1) {
    if (g.thread_rank() != 0) return;
    int const K = m.classes, last = m.layers - 1;
    double const* logits = m.a[m.at(mb, last)];
    int const* labels = m.y + mb * n;
    double const scale = 1.0 / (n * m.microbatches);
    double* dl = m.dlogits + mb * n * K;
    double total = 0;
    for (int s = 0; s < n; ++s) {
      double mx = logits[s * K];
      for (int c = 1; c < K; ++c) mx = fmax(mx, logits[s * K + c]);
      double sum = 0;
      for (int c = 0; c < K; ++c) sum += exp(logits[s * K + c] - mx);
      total += log(sum) + mx - logits[s * K + labels[s]];
      for (int c = 0; c < K; ++c) dl[s * K + c] = (exp(logits[s * K + c] - mx) / sum - (c == labels[s] ? 1.0 : 0.0)) * scale;
    }
    m.loss[mb] = total / n;
  } else if (y) {
    copy(g, y, x, n * d);
  }
}

static __device__ __noinline__ void weight_grad(dev const& m, group const& g, int k, double const* x, int out) {
  int const n = m.samples, d = m.width;
  for (int t = g.thread_rank(); t < out * (d + 1); t += g.num_threads()) {
    int const o = t / (d + 1), i = t % (d + 1);
    double acc = 0;
    if (i < d) {
      for (int s = 0; s < n; ++s) acc += m.dz[k][s * out + o] * x[s * d + i];
      m.gw[k][o * d + i] = acc;
    } else {
      for (int s = 0; s < n; ++s) acc += m.dz[k][s * out + o];
      m.gb[k][o] = acc;
    }
  }
}

static __device__ __noinline__ void input_grad(dev const& m, group const& g, int l, int k, int out, double* dx) {
  int const n = m.samples, d = m.width;
  for (int t = g.thread_rank(); t < n * d; t += g.num_threads()) {
    int const s = t / d, i = t % d;
    double acc = 0;
    for (int o = 0; o < out; ++o) acc += m.dz[k][s * out + o] * m.w[l][o * d + i];
    dx[t] = acc;
  }
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
      m.dz[k][t] = linear ? da[t] : da[t] * (1.0 - m.a[k][t] * m.a[k][t]);
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

/// The device functor: one per rank (all the same here), trivially copyable.
struct functor {
  dev m;

  template <class St> __device__ bool forward(St, pipesched::io const& x, group const& g) {
    slow(x);
    double const* in = St::has_in ? x.in.as<double>() : m.x + St::mb * m.samples * m.width;
    stage_forward(m, g, St::stage, St::mb, in, St::has_out ? x.out.as<double>() : nullptr);
    return true;
  }
  template <class St> __device__ bool backward(St, pipesched::io const& x, group const& g) {
    slow(x);
    if (St::stage == m.fail_stage && St::mb == m.fail_mb) return false;
    stage_backward(m, g, St::stage, St::mb, grad<St>(x), saved<St>(x), St::has_out ? x.out.as<double>() : nullptr, true);
    return true;
  }
  template <class St> __device__ bool backward_input(St, pipesched::io const& x, group const& g) {
    slow(x);
    if (St::stage == m.fail_stage && St::mb == m.fail_mb) return false;
    stage_backward(m, g, St::stage, St::mb, grad<St>(x), nullptr, St::has_out ? x.out.as<double>() : nullptr, false);
    return true;
  }
  template <class St> __device__ bool backward_weight(St, pipesched::io const& x, group const& g) {
    slow(x);
    for (int l = m.first_layer(St::stage); l < m.end_layer(St::stage); ++l) {
      int const k = m.at(St::mb, l);
      weight_grad(m, g, k, l == m.first_layer(St::stage) ? saved<St>(x) : m.in[k], m.fan_out(l));
    }
    return true;
  }

private:
  __device__ void slow(pipesched::io const& x) const {
    if (x.rank == m.slow_rank) spin(m.slow_cycles);
  }
  template <class St> __device__ double const* grad(pipesched::io const& x) const {
    return St::has_in ? x.in.as<double>() : m.dlogits + St::mb * m.samples * m.classes;
  }
  template <class St> __device__ double const* saved(pipesched::io const& x) const {
    return St::has_aux ? x.aux.as<double>() : m.x + St::mb * m.samples * m.width;
  }
};

/// Owns the model's device memory (initial weights and data copied from a host mlp::model).
class model {
public:
  explicit model(mlp::model const& host) : c_(host.cfg()) {
    int const L = c_.layers, mbs = c_.microbatches, n = c_.samples, d = c_.width;
    std::vector<double*> w, b, in, z, a, dz, gw, gb, scratch;
    for (int l = 0; l < L; ++l) {
      w.push_back(upload(host.weights(l)));
      b.push_back(upload(host.biases(l)));
    }
    for (int j = 0; j < mbs; ++j)
      for (int l = 0; l < L; ++l) {
        int const out = l == L - 1 ? c_.classes : d;
        in.push_back(alloc(n * d));
        z.push_back(alloc(n * out));
        a.push_back(alloc(n * out));
        dz.push_back(alloc(n * out));
        gw.push_back(alloc(out * d));
        gb.push_back(alloc(out));
        scratch.push_back(alloc(n * d));
      }
    m_ = dev{L, d, c_.classes, n, mbs, c_.stages, c_.lr, ptrs(w), ptrs(b), nullptr, nullptr, ptrs(in), ptrs(z),
             ptrs(a), ptrs(dz), ptrs(gw), ptrs(gb), ptrs(scratch), alloc(mbs * n * c_.classes), alloc(mbs),
             -1, 0, -1, -1};
    m_.x = upload(std::vector<double>(host.batch(0), host.batch(0) + mbs * n * d));
    std::vector<int> labels(host.labels(0), host.labels(0) + mbs * n);
    void* y = nullptr;
    cuda_ok(cudaMalloc(&y, labels.size() * sizeof(int)), "cudaMalloc");
    owned_.push_back(y);
    cuda_ok(cudaMemcpy(y, labels.data(), labels.size() * sizeof(int), cudaMemcpyHostToDevice), "cudaMemcpy");
    m_.y = static_cast<int const*>(y);
    w_ = w;
    b_ = b;
    for (int l = 0; l < L; ++l) {
      std::vector<double*> lw, lb;
      for (int j = 0; j < mbs; ++j) {
        lw.push_back(gw[static_cast<std::size_t>(j * L + l)]);
        lb.push_back(gb[static_cast<std::size_t>(j * L + l)]);
      }
      gw_list_.push_back(ptrs(lw));
      gb_list_.push_back(ptrs(lb));
    }
  }
  model(model const&) = delete;
  model& operator=(model const&) = delete;
  ~model() {
    for (void* p : owned_) cudaFree(p);
  }

  dev const& device() const { return m_; }
  std::size_t boundary_bytes() const { return static_cast<std::size_t>(c_.samples * c_.width) * sizeof(double); }

  /// The SGD step (gpu_mlp's kernel: gradients summed over micro-batches in order), then the
  /// mean loss.
  double apply_all(cudaStream_t st) {
    for (int l = 0; l < c_.layers; ++l) {
      int const out = l == c_.layers - 1 ? c_.classes : c_.width;
      int const nw = out * c_.width, nb = out;
      gpu_mlp::sgd<<<gpu_mlp::blocks(nw), gpu_mlp::threads, 0, st>>>(w_[static_cast<std::size_t>(l)],
                                                                      gw_list_[static_cast<std::size_t>(l)],
                                                                      c_.microbatches, nw, c_.lr);
      gpu_mlp::sgd<<<gpu_mlp::blocks(nb), gpu_mlp::threads, 0, st>>>(b_[static_cast<std::size_t>(l)],
                                                                      gb_list_[static_cast<std::size_t>(l)],
                                                                      c_.microbatches, nb, c_.lr);
    }
    cuda_ok(cudaGetLastError(), "sgd launch");
    std::vector<double> losses(static_cast<std::size_t>(c_.microbatches));
    cuda_ok(cudaMemcpyAsync(losses.data(), m_.loss, losses.size() * sizeof(double), cudaMemcpyDeviceToHost, st),
            "cudaMemcpyAsync");
    cuda_ok(cudaStreamSynchronize(st), "cudaStreamSynchronize");
    double loss = 0;
    for (double v : losses) loss += v;
    return loss / c_.microbatches;
  }

  std::vector<double> parameters() const {
    std::vector<double> all;
    for (int l = 0; l < c_.layers; ++l) {
      int const out = l == c_.layers - 1 ? c_.classes : c_.width;
      append(all, w_[static_cast<std::size_t>(l)], out * c_.width);
      append(all, b_[static_cast<std::size_t>(l)], out);
    }
    return all;
  }

private:
  static void append(std::vector<double>& all, double const* p, int count) {
    std::vector<double> v(static_cast<std::size_t>(count));
    cuda_ok(cudaMemcpy(v.data(), p, v.size() * sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy");
    all.insert(all.end(), v.begin(), v.end());
  }
  double* alloc(int count) {
    void* p = nullptr;
    std::size_t const bytes = static_cast<std::size_t>(count > 0 ? count : 1) * sizeof(double);
    cuda_ok(cudaMalloc(&p, bytes), "cudaMalloc");
    cuda_ok(cudaMemset(p, 0, bytes), "cudaMemset");
    owned_.push_back(p);
    return static_cast<double*>(p);
  }
  double* upload(std::vector<double> const& v) {
    double* p = alloc(static_cast<int>(v.size()));
    cuda_ok(cudaMemcpy(p, v.data(), v.size() * sizeof(double), cudaMemcpyHostToDevice), "cudaMemcpy");
    return p;
  }
  double** ptrs(std::vector<double*> const& v) {
    void* p = nullptr;
    cuda_ok(cudaMalloc(&p, v.size() * sizeof(double*)), "cudaMalloc");
    owned_.push_back(p);
    cuda_ok(cudaMemcpy(p, v.data(), v.size() * sizeof(double*), cudaMemcpyHostToDevice), "cudaMemcpy");
    return static_cast<double**>(p);
  }

  mlp::config c_;
  dev m_{};
  std::vector<double*> w_, b_;
  std::vector<double const* const*> gw_list_, gb_list_;
  std::vector<void*> owned_;
};

/// Every parameter of the streams executor's model (gpu_mlp), in pmlp::model's order.
inline std::vector<double> parameters(gpu_mlp::model const& g) {
  std::vector<double> all;
  for (int l = 0; l < g.cfg().layers; ++l) {
    auto const w = g.weights(l), b = g.biases(l);
    all.insert(all.end(), w.begin(), w.end());
    all.insert(all.end(), b.begin(), b.end());
  }
  return all;
}
/// The same of a host model.
inline std::vector<double> parameters(mlp::model const& h) {
  std::vector<double> all;
  for (int l = 0; l < h.cfg().layers; ++l) {
    auto const& w = h.weights(l);
    auto const& b = h.biases(l);
    all.insert(all.end(), w.begin(), w.end());
    all.insert(all.end(), b.begin(), b.end());
  }
  return all;
}

/// Largest relative difference of two parameter lists (sizes must agree).
inline double max_relative_difference(std::vector<double> const& u, std::vector<double> const& v) {
  if (u.size() != v.size()) return 1e300;
  double worst = 0;
  for (std::size_t i = 0; i < u.size(); ++i) {
    double const scale = std::fmax(std::fabs(u[i]), std::fabs(v[i]));
    double const diff = std::fabs(u[i] - v[i]);
    if (diff > 0) worst = std::fmax(worst, scale > 0 ? diff / scale : diff);
  }
  return worst;
}

} // namespace pmlp
