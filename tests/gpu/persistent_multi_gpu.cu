// The persistent executor on several GPUs of one process (persistent_options::devices, one
// rank per GPU, pushes through peer pointers, counters at system scope): the MLP of
// tests/gpu/persistent_mlp.cuh (its weights on device 0, read by the other devices over peer
// access) trained 3 steps with p = 2 on devices 0 and 1 — GPipe, 1F1B, interleaved 1F1B
// (v = 2), ZB-H1, ZB-V — gives the same losses and weights, to the last bit, as the one-GPU
// persistent executor (the same device arithmetic in the same order); with 4 GPUs also
// p = 4. Each counter ends in the state array of the rank that waits on it (filled: the
// slot's owner, freed: each rank pushing into it), as tests/cpu/cuda_persistent_protocol.cpp
// proves on host threads. A functor failure on device 1 and a deadline there end both
// kernels and name rank, pass and micro-batch; the next iteration is clean. Captured (one
// graph per device) and replayed 3 times, 1F1B and ZB-V at p = 2 equal 3 eager runs of the
// one-GPU executor to the last bit, every counter 3 iterations' worth. The run-time kernel
// (persistent_runtime_executor on each type's table) on devices 0 and 1: the same
// comparisons, eager for the five families and replayed for 1F1B and ZB-V. Skipped (77)
// with fewer than 2 GPUs, or without peer access with native atomics between devices 0 and
// 1. NOT RUN YET on a GPU (written 2026-12-01 without one).
#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "gpu_test.cuh"
#include "persistent_failures.cuh"
#include "persistent_mlp.cuh"

#include "../cpu/plan_support.hpp"

namespace {

using gpu_test::expect;

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

/// One model on one GPU (every rank in one kernel) and a copy of it on S::ranks GPUs: through
/// persistent_executor<S> or, with RunTime, through persistent_runtime_executor on S's table
/// (the loop over device-side action records instead of the unrolled plan).
template <class S, bool RunTime = false> struct one_and_several {
  static pipesched::cuda::persistent_options on_one(pmlp::model const& m) {
    pipesched::cuda::persistent_options o;
    o.slot_bytes = m.boundary_bytes();
    o.threads_per_block = 128;
    return o;
  }
  static pipesched::cuda::persistent_options on_several(pmlp::model const& m) {
    pipesched::cuda::persistent_options o = on_one(m);
    o.devices = first_devices(S::ranks);
    o.total_blocks = 8;
    return o;
  }
  using several_executor = std::conditional_t<RunTime, pipesched::cuda::persistent_runtime_executor<pmlp::functor>,
                                              pipesched::cuda::persistent_executor<S, pmlp::functor>>;
  static several_executor make_several(pmlp::model const& m) {
    if constexpr (RunTime) return several_executor(pipesched::runtime_schedule(pipesched::thaw(S::lowered)), on_several(m));
    else return several_executor(on_several(m));
  }
  mlp::model host{gpu_mlp::config_for<S>(12)};
  pmlp::model one{host}, several{host};
  pipesched::cuda::persistent_executor<S, pmlp::functor> p1{on_one(one)};
  several_executor pn = make_several(several);
  std::vector<pmlp::functor> f1 = std::vector<pmlp::functor>(S::ranks, pmlp::functor{one.device()});
  std::vector<pmlp::functor> fn = std::vector<pmlp::functor>(S::ranks, pmlp::functor{several.device()});
};

/// 3 steps on S::ranks GPUs (run(), or with `graphs` one graph per device captured once and
/// replayed; the SGD step between them) equal 3 eager one-GPU runs to the last bit; every
/// counter where the protocol puts it, 3 iterations' worth (so the counters stay valid
/// across replays). With graphs, replay() with a stream is refused, as run() refuses one.
/// RunTime: the same through persistent_runtime_executor on S's table.
template <class S, bool RunTime = false> void compare(bool graphs) {
  constexpr int steps = 3;
  one_and_several<S, RunTime> x;
  std::string const name = plan_test::label<S>() + (RunTime ? " (run-time kernel)" : "") +
                           (graphs ? " replayed on " : " on ") + std::to_string(S::ranks) + " GPUs";
  if (graphs) {
    expect(!x.pn.captured(), name + ": captured() before capture()");
    x.pn.capture(x.fn);
    expect(x.pn.captured(), name + ": captured() after capture()");
  }
  for (int step = 0; step < steps; ++step) {
    x.p1.run(x.f1);
    double const want = x.one.apply_all(nullptr);
    if (graphs) x.pn.replay();
    else x.pn.run(x.fn);
    double const got = x.several.apply_all(nullptr);
    expect(got == want, gpu_test::loss_message(name, step, got, "one GPU", want));
  }
  double const d = pmlp::max_relative_difference(x.several.parameters(), x.one.parameters());
  expect(d == 0, name + ": weights differ from the one-GPU persistent executor's by " + std::to_string(d));
  check_placement<S>(x.pn, steps, name);
  if (graphs) {
    bool refused = false;
    cudaStream_t s{};
    if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) throw std::runtime_error("stream");
    try {
      x.pn.replay(s);
    } catch (std::invalid_argument const&) {
      refused = true;
    }
    cudaStreamDestroy(s);
    expect(refused, name + ": replay() with a stream was not refused");
  }
  std::printf("  %-40s = one-GPU persistent executor, eager (weights differ by %.1e)\n", name.c_str(), d);
}

/// A functor failure of rank 1 (on device 1): both kernels end, the error names it; 3 clean
/// steps afterwards equal 3 steps of a model that never failed (one GPU). Rank 0 (device 0)
/// spinning past rank 1's deadline: both kernels end; the next iteration is clean.
void failures_on_device_1() {
  using S = pipesched::one_f_one_b<pipesched::ranks<2>, pipesched::microbatches<8>>;
  pipesched::cuda::persistent_options o;
  o.devices = {0, 1};
  o.total_blocks = 4;
  pipesched::cuda::persistent_options one = o;
  one.devices.clear();
  pfail::functor_failure<S>(o, one, 1, 3, "rank 1 (B of stage 1, micro-batch 3)", "functor failure on device 1");
  o.total_blocks = 2;
  pfail::deadline(o, "deadline on device 1");
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
  return gpu_test::run("gpu.persistent_multi_gpu", [n] {
    plan_test::for_each_type(pmlp::schedules<2, 8>{}, []<class S>(S*) { compare<S>(false); });
    if (n >= 4 && peers_ok(4)) {
      compare<pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<8>>>(false);
      compare<pipesched::zb_v<pipesched::ranks<4>, pipesched::microbatches<8>>>(false);
    } else {
      std::printf("  (p = 4 not run: fewer than 4 GPUs with peer atomics)\n");
    }
    compare<pipesched::one_f_one_b<pipesched::ranks<2>, pipesched::microbatches<8>>>(true);
    compare<pipesched::zb_v<pipesched::ranks<2>, pipesched::microbatches<8>>>(true);
    // the run-time kernel on two GPUs: every family of the list, eager; two replayed
    plan_test::for_each_type(pmlp::schedules<2, 8>{}, []<class S>(S*) { compare<S, true>(false); });
    compare<pipesched::one_f_one_b<pipesched::ranks<2>, pipesched::microbatches<8>>, true>(true);
    compare<pipesched::zb_v<pipesched::ranks<2>, pipesched::microbatches<8>>, true>(true);
    failures_on_device_1();
  });
}
