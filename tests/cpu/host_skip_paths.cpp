// Skip and reorder paths on the host backend: an MLP (float64, softmax cross-entropy head)
// trained a few steps with skip schedules. A sequential reference runs each micro-batch
// through the stages of its path in path order (the head stage last), backpropagates in
// exact reverse and sums each layer's gradient over the micro-batches that visited its
// stage, in micro-batch order. Losses and weights agree to the last bit (compared with ==); a stage's
// functor runs once per visiting micro-batch and never for one that skipped it; a stage no
// micro-batch visits keeps its weights.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "pipesched/core/action.hpp"
#include "pipesched/host/executor.hpp"
#include "pipesched/schedules/skip_paths.hpp"
#include "plan_mlp.hpp"

using namespace pipesched;

namespace {

constexpr int steps = 3;

struct net_config {
  int stages = 0;       ///< T: table stages (S model stages, plus the head stage S in layout return)
  int model_stages = 0; ///< S
  int per_stage = 2;    ///< layers per model stage
  int width = 5;
  int classes = 3;
  int samples = 3;
  int microbatches = 0;
  double lr = 0.05;
  std::uint64_t seed = 7;
};

/// The MLP split by stages: model stage s holds `per_stage` tanh layers; the head stage
/// (T-1: the last model stage in layout last, the extra stage S in layout return) ends
/// with a linear layer to the classes and the loss. Every per-(micro-batch, layer) buffer
/// is allocated up front; weight gradients are zeroed at the start of each iteration.
class net {
public:
  net(net_config const& c, std::vector<std::vector<int>> const& routes) : c_(c), routes_(routes) {
    layers_ = c.model_stages * c.per_stage + (c.stages > c.model_stages ? 1 : 0);
    std::uint64_t s = c.seed;
    for (int l = 0; l < layers_; ++l) {
      std::vector<double> w(static_cast<std::size_t>(c.width * fan_out(l))), b(static_cast<std::size_t>(fan_out(l)));
      double const scale = 1.0 / std::sqrt(static_cast<double>(c.width));
      for (auto& v : w) v = mlp::uniform(s) * scale * 1.5;
      for (auto& v : b) v = mlp::uniform(s) * 0.1;
      w_.push_back(std::move(w));
      b_.push_back(std::move(b));
    }
    x_.resize(static_cast<std::size_t>(c.microbatches * c.samples * c.width));
    for (auto& v : x_) v = mlp::uniform(s);
    y_.resize(static_cast<std::size_t>(c.microbatches * c.samples));
    for (auto& v : y_) v = static_cast<int>(mlp::splitmix(s) % static_cast<std::uint64_t>(c.classes));
    std::size_t const ml = static_cast<std::size_t>(c.microbatches * layers_);
    for (auto* v : {&in_, &z_, &a_, &dz_, &gw_, &gb_, &scratch_}) v->resize(ml);
    for (int j = 0; j < c.microbatches; ++j)
      for (int l = 0; l < layers_; ++l) {
        std::size_t const k = at(j, l), nd = static_cast<std::size_t>(c.samples * c.width),
                          no = static_cast<std::size_t>(c.samples * fan_out(l));
        in_[k].resize(nd);
        scratch_[k].resize(nd);
        z_[k].resize(no);
        a_[k].resize(no);
        dz_[k].resize(no);
        gw_[k].resize(w_[static_cast<std::size_t>(l)].size());
        gb_[k].resize(b_[static_cast<std::size_t>(l)].size());
      }
    loss_.resize(static_cast<std::size_t>(c.microbatches));
    dlogits_.resize(static_cast<std::size_t>(c.microbatches * c.samples * c.classes));
    std::size_t const sm = static_cast<std::size_t>(c.stages * c.microbatches);
    forwards_.assign(sm, 0);
    backwards_.assign(sm, 0);
    fseq_.assign(sm, -1);
    bseq_.assign(sm, -1);
  }

  int layers() const { return layers_; }
  int fan_out(int l) const { return l == layers_ - 1 ? c_.classes : c_.width; }
  int first_layer(int t) const { return t * c_.per_stage; }
  int end_layer(int t) const { return t == c_.stages - 1 ? layers_ : (t + 1) * c_.per_stage; }
  bool head(int t) const { return t == c_.stages - 1; }
  std::size_t boundary_bytes() const { return static_cast<std::size_t>(c_.samples * c_.width) * sizeof(double); }
  double const* batch(int mb) const { return x_.data() + static_cast<std::size_t>(mb * c_.samples * c_.width); }
  double const* dlogits(int mb) const {
    return dlogits_.data() + static_cast<std::size_t>(mb * c_.samples * c_.classes);
  }
  std::vector<double> const& weights(int l) const { return w_[static_cast<std::size_t>(l)]; }
  std::vector<double> const& biases(int l) const { return b_[static_cast<std::size_t>(l)]; }
  bool visits(int j, int t) const {
    for (int s : routes_[static_cast<std::size_t>(j)])
      if (s == t) return true;
    return false;
  }

  /// Clears the weight gradients and the call records before an iteration.
  void begin() {
    for (auto* g : {&gw_, &gb_})
      for (auto& v : *g) std::fill(v.begin(), v.end(), 0.0);
    std::fill(forwards_.begin(), forwards_.end(), 0);
    std::fill(backwards_.begin(), backwards_.end(), 0);
    seq_ = 0;
  }

  void stage_forward(int t, int mb, double const* x, double* y) {
    int const n = c_.samples, d = c_.width;
    for (int l = first_layer(t); l < end_layer(t); ++l) {
      std::size_t const k = at(mb, l);
      std::memcpy(in_[k].data(), x, boundary_bytes());
      mlp::layer_forward(w_[static_cast<std::size_t>(l)].data(), b_[static_cast<std::size_t>(l)].data(), in_[k].data(),
                         n, d, fan_out(l), l == layers_ - 1, z_[k].data(), a_[k].data());
      x = a_[k].data();
    }
    if (head(t))
      loss_[static_cast<std::size_t>(mb)] =
          mlp::softmax_xent(x, y_.data() + static_cast<std::size_t>(mb * n), n, c_.classes, 1.0 / (n * c_.microbatches),
                            dlogits_.data() + static_cast<std::size_t>(mb * n * c_.classes));
    else if (y) std::memcpy(y, x, boundary_bytes());
  }

  /// Fused backward of stage t: per layer, in reverse, the weight and the input gradient.
  void stage_backward(int t, int mb, double const* dy, double const* x, double* dx) {
    int const n = c_.samples, d = c_.width;
    auto const& seen = in_[at(mb, first_layer(t))];
    if (std::memcmp(seen.data(), x, boundary_bytes()) != 0) ++stale_;
    double const* da = dy;
    for (int l = end_layer(t) - 1; l >= first_layer(t); --l) {
      std::size_t const k = at(mb, l);
      int const out = fan_out(l);
      mlp::activation_backward(da, a_[k].data(), n * out, l == layers_ - 1, dz_[k].data());
      mlp::weight_grad(dz_[k].data(), l == first_layer(t) ? x : in_[k].data(), n, d, out, gw_[k].data(), gb_[k].data());
      double* prev = l > first_layer(t) ? scratch_[k].data() : dx;
      if (prev) mlp::input_grad(w_[static_cast<std::size_t>(l)].data(), dz_[k].data(), n, d, out, prev);
      da = prev;
    }
  }

  /// SGD step. `visitors_only`: sum each layer's gradient over the micro-batches that
  /// visited its stage (the reference); otherwise over all (the pipeline, whose skipped
  /// gradients must be exactly zero). Returns the mean loss, summed in micro-batch order.
  double apply(bool visitors_only) {
    for (int l = 0; l < layers_; ++l) {
      int stage = 0;
      while (l >= end_layer(stage)) ++stage;
      auto step = [&](std::vector<double>& p, std::vector<std::vector<double>> const& g) {
        for (std::size_t i = 0; i < p.size(); ++i) {
          double acc = 0;
          for (int j = 0; j < c_.microbatches; ++j)
            if (!visitors_only || visits(j, stage)) acc += g[at(j, l)][i];
          p[i] -= c_.lr * acc;
        }
      };
      step(w_[static_cast<std::size_t>(l)], gw_);
      step(b_[static_cast<std::size_t>(l)], gb_);
    }
    double loss = 0;
    for (double v : loss_) loss += v;
    return loss / c_.microbatches;
  }

  /// The sequential reference: each micro-batch through its route, then back in reverse.
  double reference_step() {
    begin();
    std::size_t const nd = static_cast<std::size_t>(c_.samples * c_.width);
    std::vector<double> act(nd), next(nd), grad(nd), gnext(nd);
    for (int j = 0; j < c_.microbatches; ++j) {
      auto const& route = routes_[static_cast<std::size_t>(j)];
      std::vector<std::vector<double>> inputs(route.size(), std::vector<double>(nd));
      double const* x = batch(j);
      for (std::size_t i = 0; i < route.size(); ++i) {
        std::memcpy(inputs[i].data(), x, boundary_bytes());
        stage_forward(route[i], j, inputs[i].data(), next.data());
        act.swap(next);
        x = act.data();
      }
      double const* dy = dlogits(j);
      for (std::size_t i = route.size(); i-- > 0;) {
        stage_backward(route[i], j, dy, inputs[i].data(), i > 0 ? gnext.data() : nullptr);
        grad.swap(gnext);
        dy = grad.data();
      }
    }
    return apply(true);
  }

  // ---- what the pipeline's functor calls --------------------------------------------

  void on_forward(runtime_step const& s, bool first, bool last, io const& x) {
    record(s, first, last, forwards_, fseq_);
    if (first != (s.in < 0) || last != (s.out < 0)) ++flag_errors_;
    stage_forward(s.stage, s.mb, s.in >= 0 ? x.in.as<double>() : batch(s.mb),
                  s.out >= 0 ? x.out.as<double>() : nullptr);
  }
  void on_backward(runtime_step const& s, bool first, bool last, io const& x) {
    record(s, first, last, backwards_, bseq_);
    if (first != (s.out < 0) || last != (s.in < 0) || first != (s.aux < 0)) ++flag_errors_;
    stage_backward(s.stage, s.mb, s.in >= 0 ? x.in.as<double>() : dlogits(s.mb),
                   s.aux >= 0 ? x.aux.as<double>() : batch(s.mb), s.out >= 0 ? x.out.as<double>() : nullptr);
  }

  int forwards(int t, int j) const { return forwards_[idx(t, j)]; }
  int backwards(int t, int j) const { return backwards_[idx(t, j)]; }
  int forward_seq(int t, int j) const { return fseq_[idx(t, j)]; }
  int backward_seq(int t, int j) const { return bseq_[idx(t, j)]; }
  int stale() const { return stale_.load(); }
  int flag_errors() const { return flag_errors_.load(); }
  double grad_norm1(int j, int l) const {
    double s = 0;
    for (double v : gw_[at(j, l)]) s += std::abs(v);
    for (double v : gb_[at(j, l)]) s += std::abs(v);
    return s;
  }

private:
  std::size_t at(int j, int l) const { return static_cast<std::size_t>(j * layers_ + l); }
  std::size_t idx(int t, int j) const { return static_cast<std::size_t>(t * c_.microbatches + j); }
  void record(runtime_step const& s, bool first, bool last, std::vector<int>& count, std::vector<int>& seq) {
    // each (stage, micro-batch) is touched by its stage's rank only
    ++count[idx(s.stage, s.mb)];
    seq[idx(s.stage, s.mb)] = seq_.fetch_add(1);
    auto const& route = routes_[static_cast<std::size_t>(s.mb)];
    if (first != (route.front() == s.stage) || last != (route.back() == s.stage) || last != head(s.stage))
      ++flag_errors_;
  }

  net_config c_;
  std::vector<std::vector<int>> routes_;
  int layers_ = 0;
  std::vector<std::vector<double>> w_, b_;
  std::vector<double> x_;
  std::vector<int> y_;
  std::vector<std::vector<double>> in_, z_, a_, dz_, gw_, gb_, scratch_;
  std::vector<double> loss_, dlogits_;
  std::vector<int> forwards_, backwards_, fseq_, bseq_;
  std::atomic<int> seq_{0}, stale_{0}, flag_errors_{0};
};

/// The stage functor: every member forwards its step's fields to one non-template function.
struct skip_functor {
  net* n = nullptr;
  template <class St> void forward(St s, io const& x) {
    n->on_forward(runtime_of(s), St::first_stage, St::last_stage, x);
  }
  template <class St> void backward(St s, io const& x) {
    n->on_backward(runtime_of(s), St::first_stage, St::last_stage, x);
  }
};

std::vector<std::vector<int>> routes_of(table const& t) {
  std::vector<std::vector<int>> out;
  for (auto const& pth : t.paths) out.emplace_back(pth.begin(), pth.end());
  return out;
}

template <class S> std::string label() {
  return std::string(S::name) + ".s" + std::to_string(S::ranks) + ".m" + std::to_string(S::microbatches);
}

/// Largest relative difference between two nets' parameters.
template <class N> double max_relative_difference_of(N const& a, N const& b, int layers) {
  double worst = 0;
  auto cmp = [&](std::vector<double> const& u, std::vector<double> const& v) {
    for (std::size_t i = 0; i < u.size(); ++i) {
      double const scale = std::max(std::abs(u[i]), std::abs(v[i]));
      double const d = std::abs(u[i] - v[i]);
      if (d > 0) worst = std::max(worst, scale > 0 ? d / scale : d);
    }
  };
  for (int l = 0; l < layers; ++l) {
    cmp(a.weights(l), b.weights(l));
    cmp(a.biases(l), b.biases(l));
  }
  return worst;
}

struct outcome {
  std::vector<int> unvisited; ///< table stages no micro-batch visits
};

/// Trains the same net with S on the host backend and with the sequential reference.
/// `routes` are the paths as written in the test (table stages, the head stage included).
template <class S> outcome train_and_compare(std::vector<std::vector<int>> const& routes, int per_stage) {
  INFO(label<S>());
  table const t = S::make();
  REQUIRE(t.ok());
  REQUIRE(t.paths.size() == routes.size());
  CHECK(routes_of(t) == routes);
  net_config c;
  c.stages = S::lowered.stages;
  c.model_stages = S::ranks;
  c.per_stage = per_stage;
  c.microbatches = S::microbatches;
  net reference(c, routes), piped(c, routes);
  int const T = c.stages, m = c.microbatches;
  net const initial(c, routes);

  // no rank's list names a micro-batch on a stage it skips: no pass, no transfer
  for (int r = 0; r < t.ranks; ++r)
    for (action const& a : t.lists[static_cast<std::size_t>(r)]) {
      INFO("rank ", r, ": ", op_name(a.kind), " stage ", a.stage, " mb ", a.mb);
      CHECK(reference.visits(a.mb, a.stage));
      CHECK(t.rank_of(a.stage) == r);
    }

  host::options o;
  o.slot_bytes = piped.boundary_bytes();
  o.timeout = std::chrono::seconds(30);
  host::executor<S> ex(o);
  std::vector<skip_functor> fs(static_cast<std::size_t>(S::ranks), skip_functor{&piped});
  for (int step = 0; step < steps; ++step) {
    double const want = reference.reference_step();
    piped.begin();
    ex.run(fs);
    for (int j = 0; j < m; ++j) {
      auto const& route = routes[static_cast<std::size_t>(j)];
      for (int s = 0; s < T; ++s) {
        int const v = piped.visits(j, s) ? 1 : 0;
        INFO("step ", step, " stage ", s, " micro-batch ", j);
        CHECK(piped.forwards(s, j) == v);
        CHECK(piped.backwards(s, j) == v);
        if (!v)
          for (int l = piped.first_layer(s); l < piped.end_layer(s); ++l) CHECK(piped.grad_norm1(j, l) == 0.0);
      }
      // forwards in path order, backwards in reverse, the backward after the last forward
      for (std::size_t i = 1; i < route.size(); ++i) {
        CHECK(piped.forward_seq(route[i - 1], j) < piped.forward_seq(route[i], j));
        CHECK(piped.backward_seq(route[i], j) < piped.backward_seq(route[i - 1], j));
      }
      CHECK(piped.forward_seq(route.back(), j) < piped.backward_seq(route.back(), j));
    }
    double const got = piped.apply(false);
    INFO("step ", step, ": loss ", got, " reference ", want);
    CHECK(got == want); // to the last bit
  }
  CHECK(piped.stale() == 0);
  CHECK(piped.flag_errors() == 0);
  double const diff = max_relative_difference_of(piped, reference, piped.layers());
  INFO("largest relative weight difference ", diff);
  CHECK(diff == 0.0); // to the last bit

  outcome out;
  for (int s = 0; s < T; ++s) {
    bool any = false;
    for (int j = 0; j < m; ++j) any = any || piped.visits(j, s);
    if (any) continue;
    out.unvisited.push_back(s);
    for (int l = piped.first_layer(s); l < piped.end_layer(s); ++l) {
      CHECK(piped.weights(l) == initial.weights(l));
      CHECK(piped.biases(l) == initial.biases(l));
    }
  }
  return out;
}

/// The routes of a table whose paths the test does not write out (assigned paths).
template <class S> std::vector<std::vector<int>> assigned_routes() { return routes_of(S::make()); }

using set_swaps = path_set<5, path<0, 2, 1, 4>, path<0, 3, 2, 4>, path<0, 1, 3, 4>>;
using set_swaps6 = path_set<6, path<0, 2, 1, 5>, path<0, 4, 3, 5>, path<0, 1, 3, 5>, path<0, 3, 2, 5>, path<0, 2, 4, 5>,
                            path<0, 1, 4, 5>>;
using set_unvisited = path_set<6, path<0, 1, 5>, path<0, 3, 5>, path<0, 2, 5>>;    // stage 4 unvisited
using set_unvisited_swaps = path_set<7, path<0, 2, 1, 6>, path<0, 4, 3, 6>>;       // stage 5 unvisited
using set_return_swaps = path_set<4, path<0, 2, 1>, path<0, 3, 2>, path<0, 1, 3>>; // head: stage 4
using set_return_unvisited = path_set<5, path<0, 1>, path<0, 2>, path<0, 4>>;      // stage 3 unvisited

} // namespace

TEST_CASE("host.skip.last.s6.k4.m8") {
  using S = skip_paths<4, stages<6>, microbatches<8>>;
  train_and_compare<S>(assigned_routes<S>(), 2);
}
TEST_CASE("host.skip.last.rotation.s6.k4.m4") {
  using S = schedule<skip_paths_family<4, 0, path_layout::last, path_method::rotation>, stages<6>, microbatches<4>>;
  train_and_compare<S>(assigned_routes<S>(), 1);
}
TEST_CASE("host.skip.last.memory2.s5.k3.m6") {
  using S = schedule<skip_paths_family<3, 2>, stages<5>, microbatches<6>>;
  train_and_compare<S>(assigned_routes<S>(), 2);
}
TEST_CASE("host.skip.last.memory2.s8.k5.m8") {
  using S = schedule<skip_paths_family<5, 2>, stages<8>, microbatches<8>>;
  train_and_compare<S>(assigned_routes<S>(), 1);
}
TEST_CASE("host.skip.given.swaps.s5.m3") {
  using S = skip_given<set_swaps, stages<5>, microbatches<3>>;
  CHECK(train_and_compare<S>({{0, 2, 1, 4}, {0, 3, 2, 4}, {0, 1, 3, 4}}, 2).unvisited.empty());
}
TEST_CASE("host.skip.given.swaps.memory1.s5.m3") {
  using S = schedule<given_paths_family<set_swaps, path_layout::last, 1>, stages<5>, microbatches<3>>;
  train_and_compare<S>({{0, 2, 1, 4}, {0, 3, 2, 4}, {0, 1, 3, 4}}, 2);
}
TEST_CASE("host.skip.given.swaps.memory2.s6.m6") {
  using S = schedule<given_paths_family<set_swaps6, path_layout::last, 2>, stages<6>, microbatches<6>>;
  train_and_compare<S>({{0, 2, 1, 5}, {0, 4, 3, 5}, {0, 1, 3, 5}, {0, 3, 2, 5}, {0, 2, 4, 5}, {0, 1, 4, 5}}, 2);
}
TEST_CASE("host.skip.given.unvisited.s6.m3") {
  using S = skip_given<set_unvisited, stages<6>, microbatches<3>>;
  CHECK(train_and_compare<S>({{0, 1, 5}, {0, 3, 5}, {0, 2, 5}}, 2).unvisited == std::vector<int>{4});
}
TEST_CASE("host.skip.given.unvisited_swaps.s7.m2") {
  using S = skip_given<set_unvisited_swaps, stages<7>, microbatches<2>>;
  CHECK(train_and_compare<S>({{0, 2, 1, 6}, {0, 4, 3, 6}}, 2).unvisited == std::vector<int>{5});
}
TEST_CASE("host.skip.return.s5.k3.m6") {
  using S = schedule<skip_paths_family<3, 0, path_layout::round_trip>, stages<5>, microbatches<6>>;
  auto const routes = assigned_routes<S>();
  for (auto const& r : routes) CHECK(r.back() == 5);
  train_and_compare<S>(routes, 2);
}
TEST_CASE("host.skip.return.memory2.s6.k4.m8") {
  using S = schedule<skip_paths_family<4, 2, path_layout::round_trip>, stages<6>, microbatches<8>>;
  train_and_compare<S>(assigned_routes<S>(), 1);
}
TEST_CASE("host.skip.return.given.swaps.s4.m3") {
  using S = schedule<given_paths_family<set_return_swaps, path_layout::round_trip>, stages<4>, microbatches<3>>;
  train_and_compare<S>({{0, 2, 1, 4}, {0, 3, 2, 4}, {0, 1, 3, 4}}, 2);
}
TEST_CASE("host.skip.return.given.unvisited.s5.m3") {
  using S = schedule<given_paths_family<set_return_unvisited, path_layout::round_trip>, stages<5>, microbatches<3>>;
  CHECK(train_and_compare<S>({{0, 1, 5}, {0, 2, 5}, {0, 4, 5}}, 2).unvisited == std::vector<int>{3});
}
TEST_CASE("host.skip.full_paths_equal_plain_pipeline") {
  // every stage kept in order: the reference is the plain sequential step
  using S = skip_paths<5, stages<5>, microbatches<4>>;
  auto const routes = assigned_routes<S>();
  for (auto const& r : routes) CHECK(r == std::vector<int>{0, 1, 2, 3, 4});
  train_and_compare<S>(routes, 2);
}
