// The persistent kernel captured in a CUDA graph and replayed: 3 replays (the SGD step
// between them) give the same losses and weights, to the last bit, as 3 eager runs of a
// second model; the counters stay valid across replays (each rank's epoch is 3 afterwards,
// every slot counter 3 times its per-iteration count); and two fresh runs of the same
// training give identical weights (run-to-run determinism). ZB-H1 and interleaved 1F1B, p = 4,
// m = 8. Launches on two streams are ordered by the executor: an asynchronous run() on one
// stream and a replay() on another, with no host wait between, give what two ordered
// iterations give (every epoch 2, the loss and weights of one eager step). Skipped (77)
// without a GPU. NOT RUN YET on a GPU (written 2026-12-01).
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_test.cuh"
#include "persistent_mlp.cuh"

#include "../cpu/plan_support.hpp"

namespace {

using gpu_test::failures;
using gpu_test::expect;

template <class S> std::vector<double> train_eager(mlp::model const& host, std::vector<double>& losses, int steps = 3) {
  pmlp::model m(host);
  pipesched::cuda::persistent_options o;
  o.slot_bytes = m.boundary_bytes();
  pipesched::cuda::persistent_executor<S, pmlp::functor> px(o);
  std::vector<pmlp::functor> fs(S::ranks, pmlp::functor{m.device()});
  for (int step = 0; step < steps; ++step) {
    px.run(fs);
    losses.push_back(m.apply_all(nullptr));
  }
  return m.parameters();
}

template <class S> void check() {
  using P = pipesched::cuda::persistent_protocol<S>;
  std::string const name = plan_test::label<S>();
  mlp::config c;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model host(c);
  std::vector<double> eager_losses, again_losses;
  std::vector<double> const eager = train_eager<S>(host, eager_losses);
  std::vector<double> const again = train_eager<S>(host, again_losses);
  expect(eager == again && eager_losses == again_losses, name + ": two eager trainings differ (run-to-run)");

  pmlp::model m(host);
  pipesched::cuda::persistent_options o;
  o.slot_bytes = m.boundary_bytes();
  pipesched::cuda::persistent_executor<S, pmlp::functor> px(o);
  std::vector<pmlp::functor> fs(S::ranks, pmlp::functor{m.device()});
  px.capture(fs);
  cudaStream_t stream{};
  if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) throw std::runtime_error("stream");
  for (int step = 0; step < 3; ++step) {
    px.replay(stream);
    double const loss = m.apply_all(stream);
    expect(loss == eager_losses[static_cast<std::size_t>(step)], name + ": replay step " + std::to_string(step) + " loss differs from eager");
  }
  cudaStreamDestroy(stream);
  expect(m.parameters() == eager, name + ": replayed weights differ from eager");
  std::vector<std::uint64_t> const st = px.state();
  for (int r = 0; r < S::ranks; ++r) expect(st[px.layout().epoch(r)] == 3, name + ": epoch after 3 replays");
  for (std::size_t g = 0; g < P::slots; ++g) {
    expect(st[px.layout().filled(static_cast<int>(g))] == 3 * P::tables.fills[g], name + ": filled counter");
    // freed is raised only for slots some rank pushes into (nothing else waits on it; ZB-H1
    // has such a slot), as tests/cpu/cuda_persistent_protocol.cpp checks on the host
    expect(st[px.layout().freed(static_cast<int>(g))] == (P::tables.pushers[g] != 0 ? 3 * P::tables.occupancies[g] : 0),
           name + ": freed counter");
  }
  std::printf("  %-22s 3 replays = 3 eager runs; two eager trainings identical\n", name.c_str());
}

/// run() with synchronize = false on stream a, then replay() on stream b at once: the second
/// launch must wait for the first (overlapping, they would share one set of counters and
/// the functors being read). Without a step between them both iterations compute the same
/// gradients, so one SGD step afterwards must give eager's first loss and weights, and every
/// rank's epoch must be 2. A second launch that overlapped the first would break the
/// counters' epochs (a deadline failure from finish(), or wrong gradients).
template <class S> void check_two_streams() {
  std::string const name = plan_test::label<S>();
  mlp::config c;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model host(c);
  std::vector<double> one_loss;
  std::vector<double> const one_step = train_eager<S>(host, one_loss, 1);

  pmlp::model m(host);
  pipesched::cuda::persistent_options o;
  o.slot_bytes = m.boundary_bytes();
  o.synchronize = false;
  pipesched::cuda::persistent_executor<S, pmlp::functor> px(o);
  std::vector<pmlp::functor> fs(S::ranks, pmlp::functor{m.device()});
  px.capture(fs);
  cudaStream_t a{}, b{};
  if (cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking) != cudaSuccess ||
      cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking) != cudaSuccess)
    throw std::runtime_error("stream");
  px.run(fs, a);
  px.replay(b);
  px.finish(b);
  px.finish(a);
  cudaStreamDestroy(a);
  cudaStreamDestroy(b);
  std::vector<std::uint64_t> const st = px.state();
  for (int r = 0; r < S::ranks; ++r) expect(st[px.layout().epoch(r)] == 2, name + ": epoch after a run and a replay on two streams");
  double const loss = m.apply_all(nullptr);
  expect(loss == one_loss[0], name + ": two streams: loss differs from one eager step");
  expect(m.parameters() == one_step, name + ": two streams: weights differ from one eager step");
  std::printf("  %-22s run on one stream, replay on another: ordered\n", name.c_str());
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  try {
    check<pipesched::zb_h1<pipesched::ranks<4>, pipesched::microbatches<8>>>();
    check<pipesched::interleaved_1f1b<pipesched::ranks<4>, pipesched::microbatches<8>, pipesched::chunks<2>>>();
    check_two_streams<pipesched::zb_h1<pipesched::ranks<4>, pipesched::microbatches<8>>>();
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::printf("gpu.persistent_replay: %s\n", failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}
