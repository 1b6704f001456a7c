// The persistent executor on one GPU with a functor type per rank
// (persistent_executor<S, std::tuple<F0, F1, F2, F3>>): four types that each run the MLP of
// tests/gpu/persistent_mlp.cuh and carry a payload of their own type and length (1 char,
// 2 doubles, 3 shorts, 4 long longs: the types differ in size, so their places in the packed
// buffer are not r × one size). For 1F1B, ZB-H1 (I and W apart) and ZB-V (each rank's type
// serves its two stages) at p = 4, m = 8, 3 steps give the same losses and weights, to the
// last bit, as the persistent executor with one functor type for every rank, and within 1e-10
// of the host backend; every pass ran its own rank's type with its payload intact, and each
// rank ran its passes' closed-form count every step. Skipped (77) without a GPU. NOT RUN YET
// on a GPU (written 2026-12-01 without one).
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gpu_test.cuh"
#include "persistent_mlp.cuh"

namespace {

using gpu_test::expect;
using gpu_test::loss_message;
using gpu_test::rel;

constexpr double tolerance = 1e-10;

/// Rank Tag - 1's functor: pmlp::functor's passes, each first noted by the group's thread 0:
/// a count per rank, and a count of passes run for another rank or with a damaged payload.
template <int Tag, class Payload> struct tagged : pmlp::functor {
  static constexpr int tag = Tag;
  using payload_type = Payload;
  Payload payload[Tag]; ///< payload[i] = Tag * 11 + i
  int* wrong;           ///< one device counter
  int* calls;           ///< one device counter per rank

  template <class St> __device__ bool forward(St s, pipesched::io const& x, pmlp::group const& g) {
    note(x, g);
    return pmlp::functor::forward(s, x, g);
  }
  template <class St> __device__ bool backward(St s, pipesched::io const& x, pmlp::group const& g) {
    note(x, g);
    return pmlp::functor::backward(s, x, g);
  }
  template <class St> __device__ bool backward_input(St s, pipesched::io const& x, pmlp::group const& g) {
    note(x, g);
    return pmlp::functor::backward_input(s, x, g);
  }
  template <class St> __device__ bool backward_weight(St s, pipesched::io const& x, pmlp::group const& g) {
    note(x, g);
    return pmlp::functor::backward_weight(s, x, g);
  }

private:
  __device__ void note(pipesched::io const& x, pmlp::group const& g) const {
    if (g.thread_rank() != 0) return;
    atomicAdd(calls + x.rank, 1);
    bool intact = true;
    for (int i = 0; i < Tag; ++i) intact = intact && payload[i] == static_cast<Payload>(Tag * 11 + i);
    if (x.rank != Tag - 1 || !intact) atomicAdd(wrong, 1);
  }
};

using functor_types = std::tuple<tagged<1, char>, tagged<2, double>, tagged<3, short>, tagged<4, long long>>;

template <class T> T make(pmlp::dev const& m, int* wrong, int* calls) {
  T f{};
  f.m = m;
  for (int i = 0; i < T::tag; ++i) f.payload[i] = static_cast<typename T::payload_type>(T::tag * 11 + i);
  f.wrong = wrong;
  f.calls = calls;
  return f;
}

/// `passes`: the passes of each rank per step (closed form, in main).
template <class S> void train(int passes) {
  static_assert(static_cast<std::size_t>(S::ranks) == std::tuple_size_v<functor_types>, "one functor type per rank");
  constexpr int steps = 3;
  gpu_mlp::host_training<S> host(12);
  pmlp::model one_type(host.model), per_rank(host.model);
  pipesched::cuda::persistent_options po;
  po.slot_bytes = per_rank.boundary_bytes();
  po.threads_per_block = 128;
  pipesched::cuda::persistent_executor<S, pmlp::functor> ox(po);
  pipesched::cuda::persistent_executor<S, functor_types> tx(po);
  gpu_test::device_ints counters(1 + S::ranks); // wrong, then calls per rank
  std::vector<pmlp::functor> of(S::ranks, pmlp::functor{one_type.device()});
  functor_types const tf = [&]<std::size_t... R>(std::index_sequence<R...>) {
    return functor_types{make<std::tuple_element_t<R, functor_types>>(per_rank.device(), counters.get(),
                                                                       counters.get() + 1)...};
  }(std::make_index_sequence<std::tuple_size_v<functor_types>>{});
  std::string const name = plan_test::label<S>();
  for (int step = 0; step < steps; ++step) {
    double const want = host.step();
    ox.run(of);
    double const one = one_type.apply_all(nullptr);
    tx.run(tf);
    double const got = per_rank.apply_all(nullptr);
    expect(got == one, loss_message(name, step, got, "one functor type", one));
    expect(rel(got, want) <= tolerance, loss_message(name, step, got, "host", want));
  }
  std::vector<double> const p = per_rank.parameters();
  double const d_one = pmlp::max_relative_difference(p, one_type.parameters());
  double const d_host = pmlp::max_relative_difference(p, pmlp::parameters(host.model));
  expect(d_one == 0, name + ": weights differ from one functor type's by " + std::to_string(d_one));
  expect(d_host <= tolerance, name + ": weights differ from the host backend's by " + std::to_string(d_host));
  std::vector<int> const c = counters.read();
  expect(c[0] == 0, name + ": " + std::to_string(c[0]) + " passes ran another rank's type or a damaged payload");
  for (int r = 0; r < S::ranks; ++r)
    expect(c[static_cast<std::size_t>(1 + r)] == steps * passes,
           name + ": rank " + std::to_string(r) + " ran " + std::to_string(c[static_cast<std::size_t>(1 + r)]) +
               " passes, not " + std::to_string(steps * passes));
  std::printf("  %-22s a type per rank = one type; host within %.2e\n", name.c_str(), d_host);
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  return gpu_test::run("gpu.persistent_functor_types", [] {
    constexpr int m = 8;
    // passes per rank and step: 1F1B F and B of each micro-batch (2m); ZB-H1 F, I and W
    // (3m); ZB-V the same for each of the rank's two stages (6m)
    train<pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<m>>>(2 * m);
    train<pipesched::zb_h1<pipesched::ranks<4>, pipesched::microbatches<m>>>(3 * m);
    train<pipesched::zb_v<pipesched::ranks<4>, pipesched::microbatches<m>>>(6 * m);
  });
}
