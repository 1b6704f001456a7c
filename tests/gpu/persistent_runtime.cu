// persistent_runtime_executor: schedules chosen at run time in one cooperative kernel per
// iteration. (a) Every registered schedule with straight routes at p = 4, m = 8
// (make_schedule): the stamping functor finds every boundary as its producer wrote it this
// iteration, every rank runs its list's passes, the counters end at 3 times their
// per-iteration counts (from the run-time protocol); mixed block groups. (b) The MLP trained
// through the run-time kernel equals the compile-time persistent executor's training to the
// last bit (1F1B, ZB-V, interleaved 1F1B), eager and captured-and-replayed. (c) A functor
// failure names the rank and the pass, and the executor runs again. (d) A functor without a
// member the table calls is refused before anything runs. (e) DualPipe-V's overlapped pairs
// run through the functor's forward_backward, one call each. Skipped (77) without a GPU.
// NOT RUN YET on a GPU (written 2026-12-02); the same code runs on host threads in
// tests/cpu/cuda_persistent_runtime.cpp.
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_test.cuh"
#include "persistent_mlp.cuh"
#include "persistent_stamp.cuh"

#include "pipesched/schedules/registry.hpp"
#include "../cpu/plan_support.hpp"

namespace {

using gpu_test::contains;
using gpu_test::expect;

int passes(pipesched::runtime_schedule const& s, int r) {
  int n = 0;
  for (std::size_t i = 0; i < s.size(static_cast<std::size_t>(r)); ++i)
    n += pipesched::is_compute(s.at(static_cast<std::size_t>(r), i).kind) ? 1 : 0;
  return n;
}

/// (a) one schedule: 3 iterations with stamps, then the counters.
void stamps(std::string const& name, std::vector<int> const& blocks) {
  pipesched::runtime_schedule const sched(pipesched::make_schedule(name, pipesched::params{4, 8}));
  pipesched::cuda::persistent_options o;
  o.slot_bytes = 4096;
  o.blocks = blocks;
  o.threads_per_block = 128;
  pipesched::cuda::persistent_runtime_executor<pstamp::functor> px(sched, o);
  int const p = sched.ranks;
  gpu_test::device_ints c(1 + p);
  std::string const label = name + (blocks.empty() ? " (blocks by cost)" : " (blocks by hand)");
  for (int it = 0; it < 3; ++it) {
    c.zero();
    std::vector<pstamp::functor> fs(static_cast<std::size_t>(p), pstamp::functor{c.get(), c.get() + 1, 2000 + it, -1, 0, -1});
    px.run(fs);
    std::vector<int> const h = c.read();
    expect(h[0] == 0, label + " iteration " + std::to_string(it) + ": " + std::to_string(h[0]) + " words differ");
    for (int r = 0; r < p; ++r)
      expect(h[static_cast<std::size_t>(1 + r)] == passes(sched, r),
             label + ": rank " + std::to_string(r) + " ran " + std::to_string(h[static_cast<std::size_t>(1 + r)]) +
                 " passes, its list has " + std::to_string(passes(sched, r)));
  }
  pipesched::cuda::runtime_persistent_program const& P = px.protocol();
  std::vector<std::uint64_t> const st = px.state();
  for (int r = 0; r < p; ++r) expect(st[px.layout().epoch(r)] == 3, label + ": epoch of rank " + std::to_string(r));
  for (std::size_t g = 0; g < P.slots(); ++g) {
    expect(st[px.layout().filled(static_cast<int>(g))] == 3 * P.tables.fills[g], label + ": filled counter");
    expect(st[px.layout().freed(static_cast<int>(g))] == (P.tables.pushers[g] != 0 ? 3 * P.tables.occupancies[g] : 0),
           label + ": freed counter");
  }
  std::printf("  %-40s 3 iterations, every boundary as written\n", label.c_str());
}

/// (b) The compile-time executor's training of S, then the run-time one's of the same table,
/// eager and replayed: losses and weights to the last bit.
template <class S> void mlp_equal(char const* name) {
  constexpr int steps = 3;
  mlp::config c;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model host(c);
  std::vector<double> want_losses;
  std::vector<double> want;
  {
    pmlp::model m(host);
    pipesched::cuda::persistent_options o;
    o.slot_bytes = m.boundary_bytes();
    pipesched::cuda::persistent_executor<S, pmlp::functor> px(o);
    std::vector<pmlp::functor> fs(S::ranks, pmlp::functor{m.device()});
    for (int step = 0; step < steps; ++step) {
      px.run(fs);
      want_losses.push_back(m.apply_all(nullptr));
    }
    want = m.parameters();
  }
  pipesched::runtime_schedule const sched(pipesched::make_schedule(name, S::parameters));
  for (bool const graphs : {false, true}) {
    pmlp::model m(host);
    pipesched::cuda::persistent_options o;
    o.slot_bytes = m.boundary_bytes();
    pipesched::cuda::persistent_runtime_executor<pmlp::functor> px(sched, o);
    std::vector<pmlp::functor> fs(S::ranks, pmlp::functor{m.device()});
    if (graphs) px.capture(fs);
    std::string const label = std::string(name) + (graphs ? " replayed" : " eager");
    for (int step = 0; step < steps; ++step) {
      if (graphs) px.replay();
      else px.run(fs);
      double const loss = m.apply_all(nullptr);
      expect(loss == want_losses[static_cast<std::size_t>(step)],
             gpu_test::loss_message(label, step, loss, "compile-time kernel", want_losses[static_cast<std::size_t>(step)]));
    }
    expect(m.parameters() == want, label + ": weights differ from the compile-time kernel's");
    std::printf("  %-40s = persistent_executor, 3 steps, to the last bit\n", label.c_str());
  }
}

/// (c) ZB-H1: every pass of rank 1 fails; the message names rank 1's first pass; the next
/// iteration is clean and complete.
void failure() {
  pipesched::runtime_schedule const sched(pipesched::make_schedule("zb-h1", pipesched::params{4, 8}));
  pipesched::cuda::persistent_options o;
  o.slot_bytes = 4096;
  o.blocks = {2, 3, 2, 2};
  pipesched::cuda::persistent_runtime_executor<pstamp::functor> px(sched, o);
  gpu_test::device_ints c(5);
  std::vector<pstamp::functor> fs(4, pstamp::functor{c.get(), c.get() + 1, 3, -1, 0, 1});
  std::string message;
  try {
    px.run(fs);
  } catch (pipesched::cuda::persistent_error const& e) {
    message = e.what();
  }
  std::printf("  failing group: %s\n", message.c_str());
  expect(contains(message, "rank 1 (F of stage 1, micro-batch 0)"), "failure: the message names rank 1's first pass");
  fs.assign(4, pstamp::functor{c.get(), c.get() + 1, 4, -1, 0, -1});
  c.zero();
  px.run(fs);
  std::vector<int> const h = c.read();
  expect(h[0] == 0, "failure: the next iteration is clean");
  for (int r = 0; r < 4; ++r) expect(h[static_cast<std::size_t>(1 + r)] == 3 * 8, "failure: rank " + std::to_string(r) + " ran its whole list after");
}

/// (e) DualPipe-V's overlapped pairs through the functor's forward_backward: the stamping
/// functor with that member, which counts its calls and runs both halves' stamps. Each pair is
/// one call (at least one pair per rank, as the table has them), every pass runs once, every
/// boundary as written; eager twice, then captured and replayed.
struct pair_stamp : pstamp::functor {
  int* pairs = nullptr; ///< one per rank

  __device__ bool forward_backward(pipesched::runtime_step sf, pipesched::runtime_step sb, pipesched::io const& xf,
                                   pipesched::io const& xb, pipesched::cuda::device_group const& g) {
    if (g.thread_rank() == 0) atomicAdd(pairs + xf.rank, 1);
    bool const f = forward(sf, xf, g);
    bool const b = sb.kind == pipesched::op::backward_input ? backward_input(sb, xb, g) : backward(sb, xb, g);
    return f && b;
  }
};

void pairs(std::vector<int> const& blocks) {
  pipesched::runtime_schedule const sched(pipesched::make_schedule("dualpipe-v", pipesched::params{4, 8}));
  pipesched::cuda::persistent_options o;
  o.slot_bytes = 4096;
  o.blocks = blocks;
  o.threads_per_block = 128;
  pipesched::cuda::persistent_runtime_executor<pair_stamp> px(sched, o);
  int const p = sched.ranks;
  std::vector<int> want_pairs(static_cast<std::size_t>(p), 0);
  for (int r = 0; r < p; ++r)
    for (std::size_t i = 0; i + 1 < sched.size(static_cast<std::size_t>(r)); ++i)
      want_pairs[static_cast<std::size_t>(r)] += pipesched::overlaps_next(sched.at(static_cast<std::size_t>(r), i)) ? 1 : 0;
  gpu_test::device_ints c(1 + 2 * p); // mismatches, passes per rank, pairs per rank
  std::string const label = std::string("dualpipe-v pairs") + (blocks.empty() ? " (blocks by cost)" : " (blocks by hand)");
  for (int it = 0; it < 3; ++it) {
    bool const replayed = it == 2;
    std::vector<pair_stamp> fs(static_cast<std::size_t>(p));
    for (pair_stamp& f : fs) {
      static_cast<pstamp::functor&>(f) = pstamp::functor{c.get(), c.get() + 1, 3000 + it, -1, 0, -1};
      f.pairs = c.get() + 1 + p;
    }
    if (replayed) px.capture(fs); // records only: the counters stay as they are
    c.zero();
    if (replayed) px.replay();
    else px.run(fs);
    std::vector<int> const h = c.read();
    std::string const at = label + (replayed ? " replayed" : " eager") + " iteration " + std::to_string(it);
    expect(h[0] == 0, at + ": " + std::to_string(h[0]) + " words differ");
    for (int r = 0; r < p; ++r) {
      std::size_t const k = static_cast<std::size_t>(r);
      expect(want_pairs[k] > 0, label + ": rank " + std::to_string(r) + "'s list has no overlapped pair");
      expect(h[1 + k] == passes(sched, r), at + ": rank " + std::to_string(r) + " ran " + std::to_string(h[1 + k]) +
                                               " passes, its list has " + std::to_string(passes(sched, r)));
      expect(h[1 + static_cast<std::size_t>(p) + k] == want_pairs[k],
             at + ": rank " + std::to_string(r) + " made " + std::to_string(h[1 + static_cast<std::size_t>(p) + k]) +
                 " forward_backward calls, its list has " + std::to_string(want_pairs[k]) + " pairs");
    }
  }
  std::printf("  %-40s 3 iterations (one replayed), each pair one forward_backward call\n", label.c_str());
}

/// (d) a device functor with a forward only.
struct forward_only_functor {
  __device__ void forward(pipesched::runtime_step, pipesched::io const&, pipesched::cuda::device_group const&) {}
};

void missing_member() {
  pipesched::runtime_schedule const sched(pipesched::make_schedule("1f1b", pipesched::params{4, 8}));
  std::string message;
  try {
    pipesched::cuda::persistent_runtime_executor<forward_only_functor> px(sched, pipesched::cuda::persistent_options{4096});
  } catch (std::invalid_argument const& e) {
    message = e.what();
  }
  expect(contains(message, "no member `template <class Step> __device__ void backward("), "missing member: refused, naming backward");
}

} // namespace

int main() {
  PIPESCHED_GPU_TEST_REQUIRE_DEVICE();
  return gpu_test::run("gpu.persistent_runtime", [] {
    for (auto const& e : pipesched::schedule_registry) {
      std::string const name(e.name);
      if (name == "dualpipe") continue; // two routes: the stamps assume straight ones (host threads cover it)
      stamps(name, {});
      stamps(name, {1, 3, 2, 2});
    }
    mlp_equal<pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<8>>>("1f1b");
    mlp_equal<pipesched::zb_v<pipesched::ranks<4>, pipesched::microbatches<8>>>("zb-v");
    mlp_equal<pipesched::interleaved_1f1b<pipesched::ranks<4>, pipesched::microbatches<8>, pipesched::chunks<2>>>(
        "interleaved");
    failure();
    missing_member();
    pairs({});
    pairs({2, 1, 2, 1});
  });
}
