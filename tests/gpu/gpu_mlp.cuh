// Test support: the MLP of tests/cpu/plan_mlp.hpp on the GPU — the same layers, the same
// initial weights and data (copied from a host mlp::model), the same per-(micro-batch,
// layer) state and the same summation orders, with one CUDA thread per output element (the
// per-element arithmetic is also what persistent_mlp.cuh's device functors run). Its stage
// functor launches each pass's kernels on the pass's stream (io::stream), so it trains
// through pipesched::cuda::executor; the host backend trains the host model, and the two
// must agree (tanh and exp differ from the host's in the last bits: compared with a stated
// relative tolerance).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cpu/plan_mlp.hpp"
#include "pipesched/host/executor.hpp"
#include "pipesched/plan/step.hpp"

namespace gpu_mlp {

inline void cuda_ok(cudaError_t e, char const* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

/// The MLP trained through schedule S: one of its micro-batches per micro-batch of S, its
/// layers split over S's stages.
template <class S> mlp::config config_for(int layers = mlp::config{}.layers) {
  mlp::config c;
  c.layers = layers;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  return c;
}

/// The host backend training the MLP of config_for<S>(layers): the reference the GPU trainings
/// are compared with (`model` also gives them their initial weights and data).
template <class S> struct host_training {
  mlp::model model;
  pipesched::host::executor<S> executor;
  std::vector<mlp::stage_functor> functors;

  explicit host_training(int layers)
      : model(config_for<S>(layers)), executor({.slot_bytes = model.boundary_bytes()}),
        functors(S::ranks, mlp::stage_functor{&model}) {}
  host_training(host_training const&) = delete;
  host_training& operator=(host_training const&) = delete;

  /// One step: an iteration, then the SGD step; returns the mean loss.
  double step() {
    executor.run(functors);
    return model.apply_all();
  }
};

constexpr int threads = 128;
inline int blocks(int n) { return (n + threads - 1) / threads; }

// The model's arithmetic, one output element `t` per call (the only definition of it): the
// kernels below run one thread per element; the persistent executor's functors
// (persistent_mlp.cuh) stride a block group's threads over the elements. Each element is
// summed in the same order either way, so both train the same model to the last bit.

/// z = W x + b and a = tanh(z) (a = z for the linear last layer), element t of n x out.
__device__ inline void layer_forward_at(double const* w, double const* b, double const* x, int in, int out, bool linear,
                                        double* z, double* a, int t) {
  int const s = t / out, o = t % out;
  double acc = b[o];
  for (int i = 0; i < in; ++i) acc += w[o * in + i] * x[s * in + i];
  z[t] = acc;
  a[t] = linear ? acc : tanh(acc);
}

/// The mean softmax cross-entropy of n samples of k logits and its gradient (times `scale`),
/// by one thread.
__device__ inline void softmax_xent_serial(double const* logits, int const* labels, int n, int k, double scale,
                                           double* dlogits, double* loss) {
  double total = 0;
  for (int s = 0; s < n; ++s) {
    double mx = logits[s * k];
    for (int c = 1; c < k; ++c) mx = fmax(mx, logits[s * k + c]);
    double sum = 0;
    for (int c = 0; c < k; ++c) sum += exp(logits[s * k + c] - mx);
    total += log(sum) + mx - logits[s * k + labels[s]];
    for (int c = 0; c < k; ++c) dlogits[s * k + c] = (exp(logits[s * k + c] - mx) / sum - (c == labels[s] ? 1.0 : 0.0)) * scale;
  }
  *loss = total / n;
}

/// dz = da * tanh'(z), from a = tanh(z) (dz = da for the linear last layer), element t.
__device__ inline void activation_backward_at(double const* da, double const* a, bool linear, double* dz, int t) {
  dz[t] = linear ? da[t] : da[t] * (1.0 - a[t] * a[t]);
}

/// dx = W^T dz, element t of n x in.
__device__ inline void input_grad_at(double const* w, double const* dz, int in, int out, double* dx, int t) {
  int const s = t / in, i = t % in;
  double acc = 0;
  for (int o = 0; o < out; ++o) acc += dz[s * out + o] * w[o * in + i];
  dx[t] = acc;
}

/// gw = dz x^T summed over the n samples, and gb = dz so summed: element t of out x (in + 1)
/// (column `in` is the bias).
__device__ inline void weight_grad_at(double const* dz, double const* x, int n, int in, int out, double* gw, double* gb,
                                      int t) {
  int const o = t / (in + 1), i = t % (in + 1);
  double acc = 0;
  if (i < in) {
    for (int s = 0; s < n; ++s) acc += dz[s * out + o] * x[s * in + i];
    gw[o * in + i] = acc;
  } else {
    for (int s = 0; s < n; ++s) acc += dz[s * out + o];
    gb[o] = acc;
  }
}

// The kernels: static, since one test includes this header in several translation units
// (tests/gpu/<stem>/*.cu, its parts); each unit launches its own copy.
static __global__ void layer_forward(double const* w, double const* b, double const* x, int n, int in, int out, bool linear,
                                     double* z, double* a) {
  int const t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (t < n * out) layer_forward_at(w, b, x, in, out, linear, z, a, t);
}

static __global__ void softmax_xent(double const* logits, int const* labels, int n, int k, double scale, double* dlogits,
                                    double* loss) {
  if (blockIdx.x == 0 && threadIdx.x == 0) softmax_xent_serial(logits, labels, n, k, scale, dlogits, loss);
}

static __global__ void activation_backward(double const* da, double const* a, int count, bool linear, double* dz) {
  int const t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (t < count) activation_backward_at(da, a, linear, dz, t);
}

static __global__ void input_grad(double const* w, double const* dz, int n, int in, int out, double* dx) {
  int const t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (t < n * in) input_grad_at(w, dz, in, out, dx, t);
}

static __global__ void weight_grad(double const* dz, double const* x, int n, int in, int out, double* gw, double* gb) {
  int const t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (t < out * (in + 1)) weight_grad_at(dz, x, n, in, out, gw, gb, t);
}

/// w -= lr * sum over micro-batches (in order) of g[j][k], for `count` parameters.
static __global__ void sgd(double* w, double const* const* grads, int microbatches, int count, double lr) {
  int const t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (t >= count) return;
  double g = 0;
  for (int j = 0; j < microbatches; ++j) g += grads[j][t];
  w[t] -= lr * g;
}

/// The model on the device.
class model {
public:
  explicit model(mlp::model const& host) : c_(host.cfg()) {
    int const L = c_.layers, m = c_.microbatches, n = c_.samples, d = c_.width;
    for (int l = 0; l < L; ++l) {
      w_.push_back(upload(host.weights(l)));
      b_.push_back(upload(host.biases(l)));
    }
    x_ = upload(std::vector<double>(host.batch(0), host.batch(0) + m * n * d));
    std::vector<int> labels(host.labels(0), host.labels(0) + m * n);
    cuda_ok(cudaMalloc(&y_, labels.size() * sizeof(int)), "cudaMalloc");
    owned_.push_back(y_);
    cuda_ok(cudaMemcpy(y_, labels.data(), labels.size() * sizeof(int), cudaMemcpyHostToDevice), "cudaMemcpy");
    for (int j = 0; j < m; ++j)
      for (int l = 0; l < L; ++l) {
        int const out = fan_out(l);
        in_.push_back(alloc(n * d));
        z_.push_back(alloc(n * out));
        a_.push_back(alloc(n * out));
        dz_.push_back(alloc(n * out));
        gw_.push_back(alloc(out * d));
        gb_.push_back(alloc(out));
        scratch_.push_back(alloc(n * d));
      }
    dlogits_ = alloc(m * n * c_.classes);
    loss_ = alloc(m);
    // per layer, the device array of its m gradient pointers (weights, then biases)
    for (int l = 0; l < L; ++l) {
      std::vector<double*> gw(static_cast<std::size_t>(m)), gb(static_cast<std::size_t>(m));
      for (int j = 0; j < m; ++j) {
        gw[static_cast<std::size_t>(j)] = gw_[at(j, l)];
        gb[static_cast<std::size_t>(j)] = gb_[at(j, l)];
      }
      gw_list_.push_back(upload_ptrs(gw));
      gb_list_.push_back(upload_ptrs(gb));
    }
  }
  model(model const&) = delete;
  model& operator=(model const&) = delete;
  ~model() {
    for (void* p : owned_) cudaFree(p);
  }

  mlp::config const& cfg() const { return c_; }
  int fan_out(int l) const { return l == c_.layers - 1 ? c_.classes : c_.width; }
  int first_layer(int stage) const { return stage * c_.layers / c_.stages; }
  int end_layer(int stage) const { return (stage + 1) * c_.layers / c_.stages; }
  std::size_t boundary_bytes() const { return static_cast<std::size_t>(c_.samples * c_.width) * sizeof(double); }
  double const* batch(int mb) const { return x_ + mb * c_.samples * c_.width; }
  double const* dlogits(int mb) const { return dlogits_ + mb * c_.samples * c_.classes; }

  void stage_forward(int stage, int mb, double const* x, double* y, cudaStream_t st) {
    int const n = c_.samples, d = c_.width;
    for (int l = first_layer(stage); l < end_layer(stage); ++l) {
      std::size_t const k = at(mb, l);
      cuda_ok(cudaMemcpyAsync(in_[k], x, static_cast<std::size_t>(n * d) * sizeof(double), cudaMemcpyDeviceToDevice, st),
              "cudaMemcpyAsync");
      int const out = fan_out(l);
      layer_forward<<<blocks(n * out), threads, 0, st>>>(w_[static_cast<std::size_t>(l)], b_[static_cast<std::size_t>(l)],
                                                          in_[k], n, d, out, l == c_.layers - 1, z_[k], a_[k]);
      x = a_[k];
    }
    if (stage == c_.stages - 1) {
      int const last = c_.layers - 1;
      softmax_xent<<<1, 1, 0, st>>>(a_[at(mb, last)], y_ + mb * n, n, c_.classes, 1.0 / (n * c_.microbatches),
                                    dlogits_ + mb * n * c_.classes, loss_ + mb);
    } else if (y) {
      cuda_ok(cudaMemcpyAsync(y, x, static_cast<std::size_t>(n * d) * sizeof(double), cudaMemcpyDeviceToDevice, st),
              "cudaMemcpyAsync");
    }
  }

  void stage_backward_input(int stage, int mb, double const* dy, double* dx, cudaStream_t st) {
    backward(stage, mb, dy, nullptr, dx, false, st);
  }
  void stage_backward_weight(int stage, int mb, double const* x, cudaStream_t st) {
    int const n = c_.samples, d = c_.width;
    for (int l = first_layer(stage); l < end_layer(stage); ++l) {
      std::size_t const k = at(mb, l);
      int const out = fan_out(l);
      weight_grad<<<blocks(out * (d + 1)), threads, 0, st>>>(dz_[k], l == first_layer(stage) ? x : in_[k], n, d, out,
                                                              gw_[k], gb_[k]);
    }
  }
  void stage_backward(int stage, int mb, double const* dy, double const* x, double* dx, cudaStream_t st) {
    backward(stage, mb, dy, x, dx, true, st);
  }

  /// The SGD step on `st` (gradients summed over micro-batches in order), then the mean loss.
  double apply_all(cudaStream_t st) {
    for (int l = 0; l < c_.layers; ++l) {
      int const nw = fan_out(l) * c_.width, nb = fan_out(l);
      sgd<<<blocks(nw), threads, 0, st>>>(w_[static_cast<std::size_t>(l)], gw_list_[static_cast<std::size_t>(l)],
                                           c_.microbatches, nw, c_.lr);
      sgd<<<blocks(nb), threads, 0, st>>>(b_[static_cast<std::size_t>(l)], gb_list_[static_cast<std::size_t>(l)],
                                           c_.microbatches, nb, c_.lr);
    }
    cuda_ok(cudaGetLastError(), "sgd launch");
    std::vector<double> losses(static_cast<std::size_t>(c_.microbatches));
    cuda_ok(cudaMemcpyAsync(losses.data(), loss_, losses.size() * sizeof(double), cudaMemcpyDeviceToHost, st),
            "cudaMemcpyAsync");
    cuda_ok(cudaStreamSynchronize(st), "cudaStreamSynchronize");
    double loss = 0;
    for (double v : losses) loss += v;
    return loss / c_.microbatches;
  }

  /// The device buffers, for functors that run this model's arithmetic from their own device
  /// code (persistent_mlp.cuh): per layer (w, b), per (micro-batch, layer) at mb * layers + l.
  struct buffers {
    std::vector<double*> w, b, in, z, a, dz, gw, gb, scratch;
    double const* x;
    int const* y;
    double* dlogits;
    double* loss;
  };
  buffers device_buffers() const { return {w_, b_, in_, z_, a_, dz_, gw_, gb_, scratch_, x_, y_, dlogits_, loss_}; }

  std::vector<double> weights(int l) const { return download(w_[static_cast<std::size_t>(l)], fan_out(l) * c_.width); }
  std::vector<double> biases(int l) const { return download(b_[static_cast<std::size_t>(l)], fan_out(l)); }

private:
  void backward(int stage, int mb, double const* dy, double const* x, double* dx, bool fused, cudaStream_t st) {
    int const n = c_.samples, d = c_.width;
    double const* da = dy;
    for (int l = end_layer(stage) - 1; l >= first_layer(stage); --l) {
      std::size_t const k = at(mb, l);
      int const out = fan_out(l);
      activation_backward<<<blocks(n * out), threads, 0, st>>>(da, a_[k], n * out, l == c_.layers - 1, dz_[k]);
      if (fused)
        weight_grad<<<blocks(out * (d + 1)), threads, 0, st>>>(dz_[k], l == first_layer(stage) ? x : in_[k], n, d, out,
                                                                gw_[k], gb_[k]);
      if (l > first_layer(stage)) {
        input_grad<<<blocks(n * d), threads, 0, st>>>(w_[static_cast<std::size_t>(l)], dz_[k], n, d, out, scratch_[k]);
        da = scratch_[k];
      } else if (dx) {
        input_grad<<<blocks(n * d), threads, 0, st>>>(w_[static_cast<std::size_t>(l)], dz_[k], n, d, out, dx);
      }
    }
  }
  std::size_t at(int mb, int l) const {
    return static_cast<std::size_t>(mb) * static_cast<std::size_t>(c_.layers) + static_cast<std::size_t>(l);
  }
  double* alloc(int count) {
    void* p = nullptr;
    cuda_ok(cudaMalloc(&p, static_cast<std::size_t>(count > 0 ? count : 1) * sizeof(double)), "cudaMalloc");
    cuda_ok(cudaMemset(p, 0, static_cast<std::size_t>(count > 0 ? count : 1) * sizeof(double)), "cudaMemset");
    owned_.push_back(p);
    return static_cast<double*>(p);
  }
  double* upload(std::vector<double> const& v) {
    double* p = alloc(static_cast<int>(v.size()));
    cuda_ok(cudaMemcpy(p, v.data(), v.size() * sizeof(double), cudaMemcpyHostToDevice), "cudaMemcpy");
    return p;
  }
  double const* const* upload_ptrs(std::vector<double*> const& v) {
    void* p = nullptr;
    cuda_ok(cudaMalloc(&p, v.size() * sizeof(double*)), "cudaMalloc");
    owned_.push_back(p);
    cuda_ok(cudaMemcpy(p, v.data(), v.size() * sizeof(double*), cudaMemcpyHostToDevice), "cudaMemcpy");
    return static_cast<double const* const*>(p);
  }
  static std::vector<double> download(double const* p, int count) {
    std::vector<double> v(static_cast<std::size_t>(count));
    cuda_ok(cudaMemcpy(v.data(), p, v.size() * sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy");
    return v;
  }

  mlp::config c_;
  std::vector<double*> w_, b_;
  double* x_ = nullptr;
  int* y_ = nullptr;
  std::vector<double*> in_, z_, a_, dz_, gw_, gb_, scratch_;
  std::vector<double const* const*> gw_list_, gb_list_;
  double* dlogits_ = nullptr;
  double* loss_ = nullptr;
  std::vector<void*> owned_;
};

/// The stage functor: each pass launches its kernels on io::stream. It reads the step's fields
/// through the step argument, so it runs compiled plans and run-time tables (runtime_step).
struct stage_functor {
  model* net = nullptr;
  template <class St> void forward(St const& s, pipesched::io const& x) {
    double const* in = s.has_in ? x.in.as<double>() : net->batch(s.mb);
    net->stage_forward(s.stage, s.mb, in, s.has_out ? x.out.as<double>() : nullptr, x.stream);
  }
  template <class St> void backward(St const& s, pipesched::io const& x) {
    net->stage_backward(s.stage, s.mb, grad(s, x), saved(s, x), out(s, x), x.stream);
  }
  template <class St> void backward_input(St const& s, pipesched::io const& x) {
    net->stage_backward_input(s.stage, s.mb, grad(s, x), out(s, x), x.stream);
  }
  template <class St> void backward_weight(St const& s, pipesched::io const& x) {
    net->stage_backward_weight(s.stage, s.mb, saved(s, x), x.stream);
  }

private:
  template <class St> double const* grad(St const& s, pipesched::io const& x) const {
    return s.has_in ? x.in.as<double>() : net->dlogits(s.mb);
  }
  template <class St> double const* saved(St const& s, pipesched::io const& x) const {
    return s.has_aux ? x.aux.as<double>() : net->batch(s.mb);
  }
  template <class St> double* out(St const& s, pipesched::io const& x) const {
    return s.has_out ? x.out.as<double>() : nullptr;
  }
};

/// Every parameter of a model, layer by layer (weights, then biases): of the GPU model ...
inline std::vector<double> parameters(model const& g) {
  std::vector<double> all;
  for (int l = 0; l < g.cfg().layers; ++l) {
    auto const w = g.weights(l), b = g.biases(l);
    all.insert(all.end(), w.begin(), w.end());
    all.insert(all.end(), b.begin(), b.end());
  }
  return all;
}
/// ... and of a host model.
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

/// Largest relative difference of two parameter lists (1e300 when their sizes differ).
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

/// Largest relative difference between the GPU model's parameters and a host model's.
inline double max_relative_difference(model const& g, mlp::model const& h) {
  return max_relative_difference(parameters(g), parameters(h));
}

} // namespace gpu_mlp
