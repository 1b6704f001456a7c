// The persistent executor on several GPUs of one process (persistent_options::devices, one
// rank per GPU, pushes through peer pointers, counters at system scope): the MLP of
// tests/gpu/persistent_mlp.cuh (its weights on device 0, read by the other devices over peer
// access) trained 3 steps with p = 2 on devices 0 and 1 — GPipe, 1F1B, interleaved 1F1B
// (v = 2), ZB-H1, ZB-V — gives the same losses and weights, to the last bit, as the one-GPU
// persistent executor (the same device arithmetic in the same order); with 4 GPUs also
// p = 4. Each counter ends in the state array of the rank that waits on it (filled: the
// slot's owner, freed: each rank pushing into it), as tests/cpu/cuda_persistent_protocol.cpp
// proves on host threads. A functor failure on device 1 and a deadline there end both
// kernels and name rank, pass and micro-batch; the next iteration is clean. Skipped (77)
// with fewer than 2 GPUs, or without peer access with native atomics between devices 0 and
// 1. NOT RUN YET on a GPU (written 2026-12-01 without one).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_test.cuh"
#include "persistent_mlp.cuh"
#include "persistent_stamp.cuh"

#include "../cpu/plan_support.hpp"

namespace {

using gpu_test::failures;
using gpu_test::expect;
using gpu_test::contains;

std::vector<int> first_devices(int n) {
  std::vector<int> d;
  for (int i = 0; i < n; ++i) d.push_back(i);
  return d;
}

/// Every counter of every rank's state array where the protocol puts it, after `n` clean
/// iterations (recounted from the lowered table, as the CPU test does).
template <class S, class X> void check_placement(X const& px, std::uint64_t n, std::string const& name) {
  using P = pipesched::cuda::persistent_protocol<S>;
  pipesched::table const t = S::make();
  auto const& l = px.layout();
  for (int a = 0; a < S::ranks; ++a) {
    std::vector<std::uint64_t> const st = px.state(a);
    expect(st[l.epoch(a)] == n, name + ": epoch in rank " + std::to_string(a) + "'s array");
    for (int r = 0; r < S::ranks; ++r) {
      std::uint32_t const lo = P::slot_base(r);
      for (int k = 0; k < t.slot_count[static_cast<std::size_t>(r)]; ++k) {
        std::uint64_t recvs = 0, holds = 0;
        bool pushed_by_a = false;
        for (pipesched::action const x : t.lists[static_cast<std::size_t>(r)]) {
          if (x.out != k) continue;
          ++holds;
          if (!pipesched::is_recv(x.kind)) continue;
          ++recvs;
          pushed_by_a = pushed_by_a || x.peer == a;
        }
        int const g = static_cast<int>(lo) + k;
        expect(st[l.filled(g)] == (r == a ? n * recvs : 0),
               name + ": filled of global slot " + std::to_string(g) + " in rank " + std::to_string(a) + "'s array");
        expect(st[l.freed(g)] == (pushed_by_a ? n * holds : 0),
               name + ": freed of global slot " + std::to_string(g) + " in rank " + std::to_string(a) + "'s array");
      }
    }
  }
}

template <class S> void train() {
  constexpr int steps = 3;
  mlp::config c;
  c.layers = 12;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model host(c);
  pmlp::model one(host), several(host);
  pipesched::cuda::persistent_options o1;
  o1.slot_bytes = one.boundary_bytes();
  o1.threads_per_block = 128;
  pipesched::cuda::persistent_executor<S, pmlp::functor> p1(o1);
  pipesched::cuda::persistent_options on = o1;
  on.devices = first_devices(S::ranks);
  on.total_blocks = 8;
  pipesched::cuda::persistent_executor<S, pmlp::functor> pn(on);
  std::vector<pmlp::functor> f1(S::ranks, pmlp::functor{one.device()});
  std::vector<pmlp::functor> fn(S::ranks, pmlp::functor{several.device()});
  std::string const name = plan_test::label<S>() + " on " + std::to_string(S::ranks) + " GPUs";
  for (int step = 0; step < steps; ++step) {
    p1.run(f1);
    double const want = one.apply_all(nullptr);
    pn.run(fn);
    double const got = several.apply_all(nullptr);
    expect(got == want, name + " step " + std::to_string(step) + ": loss " + std::to_string(got) +
                            " vs one GPU " + std::to_string(want));
  }
  double const d = pmlp::max_relative_difference(several.parameters(), one.parameters());
  expect(d == 0, name + ": weights differ from the one-GPU persistent executor's by " + std::to_string(d));
  check_placement<S>(pn, steps, name);
  std::printf("  %-40s = one-GPU persistent executor (weights differ by %.1e)\n", name.c_str(), d);
}

template <int P, int M>
using schedules = plan_test::type_list<pipesched::gpipe<pipesched::ranks<P>, pipesched::microbatches<M>>,
                                       pipesched::one_f_one_b<pipesched::ranks<P>, pipesched::microbatches<M>>,
                                       pipesched::interleaved_1f1b<pipesched::ranks<P>, pipesched::microbatches<M>,
                                                                   pipesched::chunks<2>>,
                                       pipesched::zb_h1<pipesched::ranks<P>, pipesched::microbatches<M>>,
                                       pipesched::zb_v<pipesched::ranks<P>, pipesched::microbatches<M>>>;

/// A functor failure of rank 1 (on device 1): both kernels end, the error names it; 3 clean
/// steps afterwards equal 3 steps of a model that never failed (one GPU).
void functor_failure() {
  using S = pipesched::one_f_one_b<pipesched::ranks<2>, pipesched::microbatches<8>>;
  mlp::config c;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model host(c);
  pmlp::model failed(host), clean(host);
  pipesched::cuda::persistent_options o;
  o.slot_bytes = failed.boundary_bytes();
  o.devices = {0, 1};
  o.total_blocks = 4;
  pipesched::cuda::persistent_executor<S, pmlp::functor> px(o);
  pmlp::functor bad{failed.device()};
  bad.m.fail_stage = 1;
  bad.m.fail_mb = 3;
  std::vector<pmlp::functor> fs(S::ranks, bad);
  std::string message;
  try {
    px.run(fs);
  } catch (pipesched::cuda::persistent_error const& e) {
    message = e.what();
    expect(e.kind == pipesched::cuda::persistent_failure_kind::functor, "functor failure: kind");
  }
  std::printf("  functor failure on device 1: %s\n", message.c_str());
  expect(contains(message, "rank 1 (B of stage 1, micro-batch 3)"), "functor failure: message names rank, pass, micro-batch");
  std::vector<pmlp::functor> good(S::ranks, pmlp::functor{failed.device()});
  std::vector<pmlp::functor> reference(S::ranks, pmlp::functor{clean.device()});
  pipesched::cuda::persistent_options o1 = o;
  o1.devices.clear();
  pipesched::cuda::persistent_executor<S, pmlp::functor> rx(o1);
  for (int step = 0; step < 3; ++step) {
    px.run(good);
    double const a = failed.apply_all(nullptr);
    rx.run(reference);
    double const b = clean.apply_all(nullptr);
    expect(a == b, "after a failure: step " + std::to_string(step) + " loss differs");
  }
  expect(pmlp::max_relative_difference(failed.parameters(), clean.parameters()) == 0,
         "after a failure: weights differ from a model that never failed");
}

/// Rank 0 (device 0) spins 300 ms before each pass, waits have 20 ms: rank 1's first
/// receive on device 1 gives up; both kernels end; the next iteration is clean.
void deadline() {
  using S = pipesched::gpipe<pipesched::ranks<2>, pipesched::microbatches<4>>;
  pipesched::cuda::persistent_options o;
  o.slot_bytes = 1024;
  o.wait_timeout_ns = 20'000'000;
  o.devices = {0, 1};
  o.total_blocks = 2;
  pipesched::cuda::persistent_executor<S, pstamp::functor> px(o);
  int* counters = nullptr;
  if (cudaMalloc(&counters, 3 * sizeof(int)) != cudaSuccess) throw std::runtime_error("cudaMalloc");
  cudaMemset(counters, 0, 3 * sizeof(int));
  std::vector<pstamp::functor> fs(S::ranks, pstamp::functor{counters, counters + 1, 7, 0, 300'000'000, -1});
  std::string message;
  try {
    px.run(fs);
  } catch (pipesched::cuda::persistent_error const& e) {
    message = e.what();
    expect(e.kind == pipesched::cuda::persistent_failure_kind::deadline, "deadline: kind");
  }
  std::printf("  deadline on device 1: %s\n", message.c_str());
  expect(contains(message, "rank 1 (RECV_F of stage 1, micro-batch 0)"), "deadline: message names the wait");
  fs.assign(S::ranks, pstamp::functor{counters, counters + 1, 8, -1, 0, -1});
  cudaMemset(counters, 0, 3 * sizeof(int));
  px.run(fs);
  int h[3] = {};
  cudaMemcpy(h, counters, sizeof h, cudaMemcpyDeviceToHost);
  expect(h[0] == 0 && h[1] == 8 && h[2] == 8, "deadline: the next iteration is clean");
  cudaFree(counters);
}

/// Whether devices [0, n) can reach each other with native atomics.
bool peers_ok(int n) {
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b) {
      if (a == b) continue;
      int can = 0, atomics = 0;
      if (cudaDeviceCanAccessPeer(&can, a, b) != cudaSuccess ||
          cudaDeviceGetP2PAttribute(&atomics, cudaDevP2PAttrNativeAtomicSupported, a, b) != cudaSuccess)
        return false;
      if (!can || !atomics) return false;
    }
  return true;
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n < 2) {
    std::printf("SKIPPED: %d CUDA device(s); the multi-GPU persistent executor needs 2\n", n);
    return pipesched_test_skipped;
  }
  if (!peers_ok(2)) {
    std::printf("SKIPPED: devices 0 and 1 lack peer access with native atomics (NVLink)\n");
    return pipesched_test_skipped;
  }
  try {
    plan_test::for_each_type(schedules<2, 8>{}, []<class S>(S*) { train<S>(); });
    if (n >= 4 && peers_ok(4)) {
      train<pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<8>>>();
      train<pipesched::zb_v<pipesched::ranks<4>, pipesched::microbatches<8>>>();
    } else {
      std::printf("  (p = 4 not run: fewer than 4 GPUs with peer atomics)\n");
    }
    functor_failure();
    deadline();
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("gpu.persistent_multi_gpu: %s\n", failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}
