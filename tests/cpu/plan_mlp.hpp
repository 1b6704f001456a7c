// Test support: a float64 MLP with a softmax cross-entropy head, its plain sequential
// training step, and a stage functor that trains the same model through a pipeline plan.
// Both paths call the same layer functions in the same order for every (stage,
// micro-batch), and sum per-micro-batch gradients in micro-batch order at the end of the
// iteration, so their losses and weights agree to the last bit whatever the schedule's
// order of passes.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../support/splitmix.hpp"
#include "pipesched/plan/step.hpp"

namespace mlp {

struct config {
  int layers = 12;      ///< L: L-1 hidden tanh layers of `width`, then a linear layer to `classes`
  int width = 6;        ///< d: input and hidden width
  int classes = 3;      ///< K
  int samples = 4;      ///< n: samples per micro-batch
  int microbatches = 8; ///< m
  int stages = 4;       ///< S: pipeline stages (global), layers split as evenly as possible
  double lr = 0.05;
  std::uint64_t seed = 1;
};

inline std::uint64_t splitmix(std::uint64_t& s) { return test_support::splitmix64(s); }
inline double uniform(std::uint64_t& s) { return static_cast<double>(splitmix(s) >> 11) * 0x1.0p-53 * 2.0 - 1.0; }

// ---- the layer math, shared by the reference and the pipeline -------------------------

/// z = W x + b for n samples (x: n x in, W: out x in, z: n x out); a = tanh(z) unless linear.
inline void layer_forward(double const* w, double const* b, double const* x, int n, int in, int out, bool linear,
                          double* z, double* a) {
  for (int s = 0; s < n; ++s)
    for (int o = 0; o < out; ++o) {
      double acc = b[o];
      for (int i = 0; i < in; ++i) acc += w[o * in + i] * x[s * in + i];
      z[s * out + o] = acc;
      a[s * out + o] = linear ? acc : std::tanh(acc);
    }
}

/// Mean softmax cross-entropy of n rows of K logits; dlogits = (softmax - onehot) * scale.
inline double softmax_xent(double const* logits, int const* labels, int n, int k, double scale, double* dlogits) {
  double loss = 0;
  for (int s = 0; s < n; ++s) {
    double mx = logits[s * k];
    for (int c = 1; c < k; ++c) mx = std::max(mx, logits[s * k + c]);
    double sum = 0;
    for (int c = 0; c < k; ++c) sum += std::exp(logits[s * k + c] - mx);
    loss += std::log(sum) + mx - logits[s * k + labels[s]];
    for (int c = 0; c < k; ++c)
      dlogits[s * k + c] = (std::exp(logits[s * k + c] - mx) / sum - (c == labels[s] ? 1.0 : 0.0)) * scale;
  }
  return loss / n;
}

/// dz = da * (1 - a^2) (tanh), or dz = da for the linear head.
inline void activation_backward(double const* da, double const* a, int count, bool linear, double* dz) {
  for (int i = 0; i < count; ++i) dz[i] = linear ? da[i] : da[i] * (1.0 - a[i] * a[i]);
}

/// dx = dz W (n x in), the input gradient.
inline void input_grad(double const* w, double const* dz, int n, int in, int out, double* dx) {
  for (int s = 0; s < n; ++s)
    for (int i = 0; i < in; ++i) {
      double acc = 0;
      for (int o = 0; o < out; ++o) acc += dz[s * out + o] * w[o * in + i];
      dx[s * in + i] = acc;
    }
}

/// gW = dz^T x, gb = sum of dz over samples: the weight gradient of one micro-batch.
inline void weight_grad(double const* dz, double const* x, int n, int in, int out, double* gw, double* gb) {
  for (int o = 0; o < out; ++o) {
    for (int i = 0; i < in; ++i) {
      double acc = 0;
      for (int s = 0; s < n; ++s) acc += dz[s * out + o] * x[s * in + i];
      gw[o * in + i] = acc;
    }
    double acc = 0;
    for (int s = 0; s < n; ++s) acc += dz[s * out + o];
    gb[o] = acc;
  }
}

// ---- the model and its per-micro-batch state -----------------------------------------

/// Parameters, data and every per-(micro-batch, layer) buffer, all allocated up front.
class model {
public:
  explicit model(config const& c) : c_(c) {
    std::uint64_t s = c.seed;
    for (int l = 0; l < c.layers; ++l) {
      int const in = c.width, out = fan_out(l);
      std::vector<double> w(static_cast<std::size_t>(in * out)), b(static_cast<std::size_t>(out));
      double const scale = 1.0 / std::sqrt(static_cast<double>(in));
      for (auto& v : w) v = uniform(s) * scale * 1.5;
      for (auto& v : b) v = uniform(s) * 0.1;
      w_.push_back(std::move(w));
      b_.push_back(std::move(b));
    }
    x_.resize(static_cast<std::size_t>(c.microbatches * c.samples * c.width));
    for (auto& v : x_) v = uniform(s);
    y_.resize(static_cast<std::size_t>(c.microbatches * c.samples));
    for (auto& v : y_) v = static_cast<int>(splitmix(s) % static_cast<std::uint64_t>(c.classes));
    std::size_t const ml = static_cast<std::size_t>(c.microbatches) * static_cast<std::size_t>(c.layers);
    in_.resize(ml);
    z_.resize(ml);
    a_.resize(ml);
    dz_.resize(ml);
    gw_.resize(ml);
    gb_.resize(ml);
    for (int j = 0; j < c.microbatches; ++j)
      for (int l = 0; l < c.layers; ++l) {
        std::size_t const k = at(j, l);
        std::size_t const nin = static_cast<std::size_t>(c.samples * c.width);
        std::size_t const nout = static_cast<std::size_t>(c.samples * fan_out(l));
        in_[k].resize(nin);
        z_[k].resize(nout);
        a_[k].resize(nout);
        dz_[k].resize(nout);
        gw_[k].resize(w_[static_cast<std::size_t>(l)].size());
        gb_[k].resize(static_cast<std::size_t>(fan_out(l)));
      }
    loss_.resize(static_cast<std::size_t>(c.microbatches));
    dlogits_.resize(static_cast<std::size_t>(c.microbatches * c.samples * c.classes));
    scratch_.resize(static_cast<std::size_t>(c.layers) * static_cast<std::size_t>(c.microbatches),
                    std::vector<double>(static_cast<std::size_t>(c.samples * c.width)));
  }

  config const& cfg() const { return c_; }
  int fan_out(int l) const { return l == c_.layers - 1 ? c_.classes : c_.width; }
  int first_layer(int stage) const { return stage * c_.layers / c_.stages; }
  int end_layer(int stage) const { return (stage + 1) * c_.layers / c_.stages; }
  /// Bytes of a boundary between stages: n x d doubles.
  std::size_t boundary_bytes() const { return static_cast<std::size_t>(c_.samples * c_.width) * sizeof(double); }
  double const* batch(int mb) const { return x_.data() + static_cast<std::size_t>(mb * c_.samples * c_.width); }
  /// The labels of micro-batch mb (n of them).
  int const* labels(int mb) const { return y_.data() + static_cast<std::size_t>(mb * c_.samples); }
  double const* dlogits(int mb) const {
    return dlogits_.data() + static_cast<std::size_t>(mb * c_.samples * c_.classes);
  }
  double loss(int mb) const { return loss_[static_cast<std::size_t>(mb)]; }
  std::vector<double> const& weights(int l) const { return w_[static_cast<std::size_t>(l)]; }
  std::vector<double> const& biases(int l) const { return b_[static_cast<std::size_t>(l)]; }

  /// Forward of `stage` for micro-batch mb: x is its input (n x d), y receives its output
  /// (n x d) unless the stage is the last, whose logits go to the loss.
  void stage_forward(int stage, int mb, double const* x, double* y) {
    int const n = c_.samples, d = c_.width;
    for (int l = first_layer(stage); l < end_layer(stage); ++l) {
      std::size_t const k = at(mb, l);
      std::memcpy(in_[k].data(), x, static_cast<std::size_t>(n * d) * sizeof(double));
      bool const head = l == c_.layers - 1;
      layer_forward(w_[static_cast<std::size_t>(l)].data(), b_[static_cast<std::size_t>(l)].data(), in_[k].data(), n, d,
                    fan_out(l), head, z_[k].data(), a_[k].data());
      x = a_[k].data();
    }
    if (stage == c_.stages - 1) {
      int const last = c_.layers - 1;
      loss_[static_cast<std::size_t>(mb)] =
          softmax_xent(a_[at(mb, last)].data(), y_.data() + static_cast<std::size_t>(mb * n), n, c_.classes,
                       1.0 / (n * c_.microbatches), dlogits_.data() + static_cast<std::size_t>(mb * n * c_.classes));
    } else if (y) {
      std::memcpy(y, x, static_cast<std::size_t>(n * d) * sizeof(double));
    }
  }

  /// I of `stage`: from the output gradient dy (n x d; the loss gradient on the last stage)
  /// compute and keep every layer's dz, and write the input gradient to dx unless null.
  /// `x` is the stage input saved at F (the boundary slot or the batch).
  void stage_backward_input(int stage, int mb, double const* dy, double const* x, double* dx) {
    int const n = c_.samples, d = c_.width;
    check_input(stage, mb, x);
    double const* da = dy;
    for (int l = end_layer(stage) - 1; l >= first_layer(stage); --l) {
      std::size_t const k = at(mb, l);
      int const out = fan_out(l);
      activation_backward(da, a_[k].data(), n * out, l == c_.layers - 1, dz_[k].data());
      if (l > first_layer(stage)) {
        double* prev = scratch_[k].data();
        input_grad(w_[static_cast<std::size_t>(l)].data(), dz_[k].data(), n, d, out, prev);
        da = prev;
      } else if (dx) {
        input_grad(w_[static_cast<std::size_t>(l)].data(), dz_[k].data(), n, d, out, dx);
      }
    }
  }

  /// W of `stage`: the weight gradients of micro-batch mb from the kept dz and inputs.
  void stage_backward_weight(int stage, int mb, double const* x) {
    int const n = c_.samples, d = c_.width;
    check_input(stage, mb, x);
    for (int l = first_layer(stage); l < end_layer(stage); ++l) {
      std::size_t const k = at(mb, l);
      weight_grad(dz_[k].data(), l == first_layer(stage) ? x : in_[k].data(), n, d, fan_out(l), gw_[k].data(),
                  gb_[k].data());
    }
  }

  /// Fused B of `stage`: per layer, the weight gradient and the input gradient together.
  void stage_backward(int stage, int mb, double const* dy, double const* x, double* dx) {
    int const n = c_.samples, d = c_.width;
    check_input(stage, mb, x);
    double const* da = dy;
    for (int l = end_layer(stage) - 1; l >= first_layer(stage); --l) {
      std::size_t const k = at(mb, l);
      int const out = fan_out(l);
      activation_backward(da, a_[k].data(), n * out, l == c_.layers - 1, dz_[k].data());
      weight_grad(dz_[k].data(), l == first_layer(stage) ? x : in_[k].data(), n, d, out, gw_[k].data(), gb_[k].data());
      if (l > first_layer(stage)) {
        double* prev = scratch_[k].data();
        input_grad(w_[static_cast<std::size_t>(l)].data(), dz_[k].data(), n, d, out, prev);
        da = prev;
      } else if (dx) {
        input_grad(w_[static_cast<std::size_t>(l)].data(), dz_[k].data(), n, d, out, dx);
      }
    }
  }

  /// Sums the micro-batch gradients of layers [first, last) in micro-batch order and takes
  /// an SGD step. Returns the iteration's loss (mean over micro-batches, summed in order).
  double apply(int first, int last) {
    for (int l = first; l < last; ++l) {
      auto& w = w_[static_cast<std::size_t>(l)];
      auto& b = b_[static_cast<std::size_t>(l)];
      for (std::size_t i = 0; i < w.size(); ++i) {
        double g = 0;
        for (int j = 0; j < c_.microbatches; ++j) g += gw_[at(j, l)][i];
        w[i] -= c_.lr * g;
      }
      for (std::size_t i = 0; i < b.size(); ++i) {
        double g = 0;
        for (int j = 0; j < c_.microbatches; ++j) g += gb_[at(j, l)][i];
        b[i] -= c_.lr * g;
      }
    }
    double loss = 0;
    for (int j = 0; j < c_.microbatches; ++j) loss += loss_[static_cast<std::size_t>(j)];
    return loss / c_.microbatches;
  }
  double apply_all() { return apply(0, c_.layers); }

  /// The plain sequential training step: every micro-batch through every stage in order.
  double reference_step(bool split) {
    std::vector<double> act(static_cast<std::size_t>(c_.samples * c_.width));
    std::vector<double> next(act.size()), grad(act.size()), gnext(act.size());
    std::vector<std::vector<double>> inputs(static_cast<std::size_t>(c_.stages), act);
    for (int j = 0; j < c_.microbatches; ++j) {
      double const* x = batch(j);
      for (int s = 0; s < c_.stages; ++s) {
        std::memcpy(inputs[static_cast<std::size_t>(s)].data(), x, boundary_bytes());
        stage_forward(s, j, inputs[static_cast<std::size_t>(s)].data(), next.data());
        act.swap(next);
        x = act.data();
      }
      double const* dy = dlogits(j);
      for (int s = c_.stages - 1; s >= 0; --s) {
        double const* in = inputs[static_cast<std::size_t>(s)].data();
        double* dx = s > 0 ? gnext.data() : nullptr;
        if (split) {
          stage_backward_input(s, j, dy, in, dx);
          stage_backward_weight(s, j, in);
        } else {
          stage_backward(s, j, dy, in, dx);
        }
        grad.swap(gnext);
        dy = grad.data();
      }
    }
    return apply_all();
  }

  /// Micro-batch mb's weight and bias gradients of layer l and its loss, as computed by the
  /// pipeline: a process that ran part of the micro-batches of a layer receives the others'
  /// (DualPipe's two copies of a stage on MPI) before apply().
  std::vector<double>& weight_grad_of(int mb, int l) { return gw_[at(mb, l)]; }
  std::vector<double>& bias_grad_of(int mb, int l) { return gb_[at(mb, l)]; }
  double& loss_of(int mb) { return loss_[static_cast<std::size_t>(mb)]; }

  /// Boundaries read at B, I or W that differ from the input seen at F (0 when the buffer
  /// plan kept every saved input alive).
  int stale_inputs() const { return stale_.load(); }

private:
  std::size_t at(int mb, int l) const {
    return static_cast<std::size_t>(mb) * static_cast<std::size_t>(c_.layers) + static_cast<std::size_t>(l);
  }
  void check_input(int stage, int mb, double const* x) {
    auto const& seen = in_[at(mb, first_layer(stage))];
    if (std::memcmp(seen.data(), x, seen.size() * sizeof(double)) != 0) ++stale_;
  }

  config c_;
  std::vector<std::vector<double>> w_, b_;
  std::vector<double> x_;
  std::vector<int> y_;
  // per (micro-batch, layer): input, pre-activation, activation, dz, weight and bias gradients
  std::vector<std::vector<double>> in_, z_, a_, dz_, gw_, gb_, scratch_;
  std::vector<double> loss_, dlogits_;
  std::atomic<int> stale_{0};
};

/// The stage functor: each member forwards its step's stage and micro-batch and its boundary
/// views to the model. The first stage reads the batch, the last stage's output goes to the
/// loss; every other boundary is a slot of the rank's buffer plan. It reads the step's fields
/// through the step argument (s.stage, s.has_in), so the same functor runs compiled plans
/// (compile-time steps) and run-time schedules (runtime_step).
struct stage_functor {
  model* net = nullptr;

  template <class St> void forward(St const& s, pipesched::io const& x) {
    double const* in = s.has_in ? x.in.as<double>() : net->batch(s.mb);
    net->stage_forward(s.stage, s.mb, in, s.has_out ? x.out.as<double>() : nullptr);
  }
  template <class St> void backward(St const& s, pipesched::io const& x) {
    net->stage_backward(s.stage, s.mb, output_grad(s, x), saved_input(s, x), input_grad_out(s, x));
  }
  template <class St> void backward_input(St const& s, pipesched::io const& x) {
    net->stage_backward_input(s.stage, s.mb, output_grad(s, x), saved_input(s, x), input_grad_out(s, x));
  }
  template <class St> void backward_weight(St const& s, pipesched::io const& x) {
    net->stage_backward_weight(s.stage, s.mb, saved_input(s, x));
  }

private:
  template <class St> double const* output_grad(St const& s, pipesched::io const& x) const {
    return s.has_in ? x.in.as<double>() : net->dlogits(s.mb);
  }
  template <class St> double const* saved_input(St const& s, pipesched::io const& x) const {
    return s.has_aux ? x.aux.as<double>() : net->batch(s.mb);
  }
  template <class St> double* input_grad_out(St const& s, pipesched::io const& x) const {
    return s.has_out ? x.out.as<double>() : nullptr;
  }
};

/// The MLP's stage functor (Base: this one, or the GPU's, tests/gpu/gpu_mlp.cuh) with
/// forward_backward: an overlapped pair runs as one call, here the backward half first, then
/// the forward (the halves are independent), counted in *pairs (a Counter: int per rank, or
/// std::atomic<int> shared).
template <class Counter, class Base = stage_functor> struct pair_functor : Base {
  Counter* pairs = nullptr;
  template <class SF, class SB>
  void forward_backward(SF const& f, SB const& b, pipesched::io const& xf, pipesched::io const& xb) {
    ++*pairs;
    if (b.kind == pipesched::op::backward) this->backward(b, xb);
    else this->backward_input(b, xb);
    this->forward(f, xf);
  }
};

/// A functor F for a schedule whose table stages run copies of the model's stages: table
/// stage s is model stage s mod `model_stages`. DualPipe is one: its 2p table stages are the
/// model's p stages twice — direction A's micro-batches take table stages 0..p-1, direction
/// B's the mirror copies p..2p-1 (on ranks p-1..0) — so each rank holds two model stages. Here
/// both copies of a stage share one set of weights, read-only during the iteration, and each
/// micro-batch's gradients land in its own buffers whichever copy computed them: the
/// iteration sums them in micro-batch order like the sequential reference, bit for bit. (On
/// separate processes each copy keeps its own gradients and the pair of ranks exchanges them;
/// see tests/mpi/runtime_mlp.cpp.) F's forward_backward, when it has one, is kept.
template <class F> struct copies_of_model_stages : F {
  int model_stages = 1;

  template <class St> void forward(St const& s, pipesched::io const& x) { F::forward(model_step(s), x); }
  template <class St> void backward(St const& s, pipesched::io const& x) { F::backward(model_step(s), x); }
  template <class St> void backward_input(St const& s, pipesched::io const& x) {
    F::backward_input(model_step(s), x);
  }
  template <class St> void backward_weight(St const& s, pipesched::io const& x) {
    F::backward_weight(model_step(s), x);
  }
  template <class SF, class SB>
    requires requires(F& f, pipesched::runtime_step const& a, pipesched::io const& x) {
      f.forward_backward(a, a, x, x);
    }
  void forward_backward(SF const& f, SB const& b, pipesched::io const& xf, pipesched::io const& xb) {
    F::forward_backward(model_step(f), model_step(b), xf, xb);
  }

private:
  template <class St> pipesched::runtime_step model_step(St const& s) const {
    pipesched::runtime_step r = pipesched::runtime_of(s);
    r.stage %= model_stages;
    return r;
  }
};

/// Largest relative difference between two models' parameters in layers [first, last).
inline double max_relative_difference(model const& a, model const& b, int first, int last) {
  double worst = 0;
  auto cmp = [&](std::vector<double> const& u, std::vector<double> const& v) {
    for (std::size_t i = 0; i < u.size(); ++i) {
      double const scale = std::max(std::abs(u[i]), std::abs(v[i]));
      double const d = std::abs(u[i] - v[i]);
      if (d > 0) worst = std::max(worst, scale > 0 ? d / scale : d);
    }
  };
  for (int l = first; l < last; ++l) {
    cmp(a.weights(l), b.weights(l));
    cmp(a.biases(l), b.biases(l));
  }
  return worst;
}

} // namespace mlp
