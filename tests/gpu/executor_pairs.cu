// DualPipe-V's overlapped forward-backward pairs on one GPU (p = 4, m = 8), through
// pipesched::cuda::executor and cuda::runtime_executor (the type's table): (a) the stage
// functor of the other GPU tests, whose pairs run as their two halves; (b) a functor with
// forward_backward, which each pair reaches as one call (counted on the host: 3 steps times
// the table's pairs) issuing the backward half's kernels, then the forward half's, on the
// pair's stream. Both train the MLP 3 steps with losses and weights within 1e-10 of the host
// backend (as gpu.executor_mlp); (b) captured once and replayed 3 times equals (b) eager to
// the last bit, the capture calling each pair once and the replays none. Skipped (77)
// without a GPU. NOT RUN YET on a GPU (written 2026-12-03); the same executors' pairs run on
// the emulated runtime in tests/cpu/cuda_executor_emulated.cpp and
// cuda_runtime_executor_emulated.cpp.
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "gpu_mlp.cuh"
#include "gpu_test.cuh"

#include "../cpu/plan_support.hpp"
#include "pipesched/cuda/executor.cuh"
#include "pipesched/cuda/runtime.cuh"
#include "pipesched/schedules/dualpipe_v.hpp"

namespace {

using gpu_test::expect;
using gpu_test::loss_message;
using gpu_test::rel;

using S = pipesched::dualpipe_v<pipesched::stages<4>, pipesched::microbatches<8>>;
constexpr double tolerance = 1e-10;
constexpr int steps = 3;

/// The GPU stage functor with forward_backward (the host tests' pair functor over it): one
/// call per overlapped pair (counted), the backward half's kernels first, then the forward
/// half's, all on the stream of the pair.
using pair_functor = mlp::pair_functor<int, gpu_mlp::stage_functor>;

/// The compile-time executor or the run-time one on S's table, for a model's slot size.
template <bool RunTime> auto make_executor(gpu_mlp::model const& m) {
  if constexpr (RunTime)
    return pipesched::cuda::runtime_executor(pipesched::runtime_schedule(pipesched::thaw(S::lowered)),
                                             {.slot_bytes = m.boundary_bytes()}, S::parameters.cost);
  else return pipesched::cuda::executor<S>({.slot_bytes = m.boundary_bytes()});
}

/// 3 steps eager with functor F against the host backend; with graphs also 3 replays of one
/// capture against those eager steps, to the last bit. Returns the pair calls counted.
template <bool RunTime, class F> void train(bool graphs) {
  std::string const name = std::string(RunTime ? "run-time executor, " : "executor, ") +
                           (std::is_same_v<F, pair_functor> ? "forward_backward" : "two halves");
  gpu_mlp::host_training<S> host(12);
  gpu_mlp::model eager(host.model), replayed(host.model);
  auto ex = make_executor<RunTime>(eager);
  int eager_pairs = 0, replay_pairs = 0;
  F on_eager{}, on_replayed{};
  on_eager.net = &eager;
  on_replayed.net = &replayed;
  std::vector<F> fe(S::ranks, on_eager), fr(S::ranks, on_replayed);
  if constexpr (std::is_same_v<F, pair_functor>) {
    for (F& f : fe) f.pairs = &eager_pairs;
    for (F& f : fr) f.pairs = &replay_pairs;
  }
  auto gx = make_executor<RunTime>(replayed);
  if (graphs) gx.capture(fr); // calls every functor once, runs nothing
  int const pairs = plan_test::overlapped_pairs(S::lowered);
  expect(pairs > 0, "DualPipe-V at p = 4, m = 8 has overlapped pairs");
  if (graphs) expect(replay_pairs == pairs, name + ": the capture called forward_backward " + std::to_string(replay_pairs) +
                                                " times for " + std::to_string(pairs) + " pairs");
  for (int step = 0; step < steps; ++step) {
    double const want = host.step();
    ex.run(fe);
    double const got = eager.apply_all(nullptr);
    expect(rel(got, want) <= tolerance, loss_message(name, step, got, "host", want));
    if (!graphs) continue;
    gx.replay();
    double const again = replayed.apply_all(nullptr);
    expect(again == got, loss_message(name + " replayed", step, again, "eager", got));
  }
  double const d = gpu_mlp::max_relative_difference(eager, host.model);
  expect(d <= tolerance, name + ": weights differ from the host's by " + std::to_string(d));
  if (graphs)
    expect(gpu_mlp::parameters(replayed) == gpu_mlp::parameters(eager), name + ": replayed weights differ from eager");
  if constexpr (std::is_same_v<F, pair_functor>) {
    expect(eager_pairs == steps * pairs, name + ": " + std::to_string(eager_pairs) + " forward_backward calls in " +
                                             std::to_string(steps) + " steps of " + std::to_string(pairs) + " pairs");
    if (graphs) expect(replay_pairs == pairs, name + ": a replay called the functor");
  }
  std::printf("  %-42s within %.1e of the host (largest %.2e)%s\n", name.c_str(), tolerance, d,
              graphs ? "; replay equals eager to the last bit" : "");
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  return gpu_test::run("gpu.executor_pairs", [] {
    train<false, gpu_mlp::stage_functor>(false);
    train<false, pair_functor>(true);
    train<true, gpu_mlp::stage_functor>(false);
    train<true, pair_functor>(true);
  });
}
