// The per-process (NCCL) executor's capture() and replay() on the CPU: basic_nccl_executor
// bound to the host emulation of NCCL and of a CUDA runtime with stream capture
// (tests/support/emulated_nccl.hpp), one thread per "process".
//
// A small model (one elementwise layer per stage, float) whose passes are "kernels" the
// emulated runtime runs, records or replays. For 1F1B, interleaved 1F1B, ZB-V and
// DualPipe-V: an eager iteration, a capture (which runs nothing and calls each pass once),
// then replays alternating with eager iterations on changing inputs (copied into the fixed
// input buffer, as a user would): every replay's losses and weight gradients equal the eager
// iteration's on the same input to the last bit, and both equal a sequential host
// computation of the same float operations; the replays' transfers move over the per-edge
// communicators only (the world communicator's bytes are the eager iterations' alone), and
// each rank holds the communicators of exactly its edges, made in the planned rounds.
// Failures: a kernel that faults during a replay on one rank ends that rank with
// cuda::error and every other rank with transport_error naming it (failure board) or the
// edge it saw fail (no board); a functor that throws while being captured ends the others'
// first replay with transport_error naming its rank — within seconds, none hangs.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "support/emulated_nccl.hpp"
#include "support/emulated_nccl_checks.hpp"

#include "pipesched/cuda/basic_nccl_executor.hpp"
#include "pipesched/cuda/launch.hpp"
#include "pipesched/schedules/dualpipe_v.hpp"
#include "plan_support.hpp"

using namespace pipesched;
using namespace std::chrono_literals;

namespace {

template <class S> using nccl_ex = cuda::basic_nccl_executor<S, emu_nccl::runtime, emu_nccl::nccl>;

constexpr int width = 8; // floats per boundary
constexpr std::size_t boundary_bytes = width * sizeof(float);
constexpr float nan_value = std::numeric_limits<float>::quiet_NaN();

// The model: stage s maps x to y = tanh(w_s x + c_s) elementwise; the loss of a
// micro-batch is sum(y^2) / 2 at the last stage, so its gradient there is y. Backward at
// stage s: p = g (1 - y^2); weight gradient p x; input gradient p w_s.
float weight(int s, int k) { return 0.75f + 0.125f * static_cast<float>(s) - 0.0625f * static_cast<float>(k); }
float bias(int s, int k) { return 0.03125f * static_cast<float>(k - s); }
float input_value(int batch, int mb, int k) {
  return 0.25f * static_cast<float>((batch * 7 + mb * 3 + k) % 9) - 1.0f;
}
void layer(int s, float const* x, float* y) {
  for (int k = 0; k < width; ++k) y[k] = std::tanh(weight(s, k) * x[k] + bias(s, k));
}
void backward_at(int s, float const* x, float const* g_in, bool last, float* wgrad, float* xgrad) {
  float y[width];
  layer(s, x, y);
  for (int k = 0; k < width; ++k) {
    float const g = last ? y[k] : g_in[k];
    float const p = g * (1.0f - y[k] * y[k]);
    if (wgrad) wgrad[k] = p * x[k];
    if (xgrad) xgrad[k] = p * weight(s, k);
  }
}

/// What one iteration produced: each micro-batch's loss and each (stage, micro-batch)'s
/// weight gradient; NaN where this rank wrote nothing.
struct results {
  std::vector<float> losses, grads; // [mb], [(stage * mbs + mb) * width + k]
};

bool same_bits(std::vector<float> const& a, std::vector<float> const& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// The model's stage functor: every pass launches one "kernel" on its stream that reads its
/// inputs when it runs (the fixed input buffer at stage 0) and writes its outputs. A kernel
/// of the forward of `fail_mb` faults while `armed` is set (read when the kernel runs).
struct model_functor {
  int stages = 0, mbs = 0;
  std::vector<float> input; // [mb * width + k]: the fixed input buffer
  results out;
  int calls = 0;
  int fail_mb = -1;
  bool armed = false;
  int missing_input = 0; ///< a backward past stage 0 without its saved input (would be a bug)

  model_functor(int s, int m) : stages(s), mbs(m), input(static_cast<std::size_t>(m * width), 0.0f) { clear(); }
  void load(int batch) {
    for (int mb = 0; mb < mbs; ++mb)
      for (int k = 0; k < width; ++k) input[static_cast<std::size_t>(mb * width + k)] = input_value(batch, mb, k);
  }
  void clear() {
    out.losses.assign(static_cast<std::size_t>(mbs), nan_value);
    out.grads.assign(static_cast<std::size_t>(stages * mbs * width), nan_value);
  }
  float* grad(int s, int mb) { return out.grads.data() + (s * mbs + mb) * width; }
  float const* x_of(runtime_step const& st, view const& v) {
    if (st.stage == 0) return input.data() + st.mb * width;
    if (!v) ++missing_input;
    return v ? v.as<float>() : nullptr;
  }

  template <class St> void forward(St s, io const& x) {
    ++calls;
    runtime_step const st = runtime_of(s);
    emu_nccl::launch(x.stream, [this, st, x]() -> int {
      if (armed && st.mb == fail_mb) return emu_nccl::kernel_fault;
      float const* in = x_of(st, x.in);
      if (!in) return 0;
      float y[width];
      layer(st.stage, in, y);
      if (st.has_out) std::memcpy(x.out.data, y, sizeof y);
      if (st.last_stage) {
        float l = 0;
        for (float v : y) l += v * v;
        out.losses[static_cast<std::size_t>(st.mb)] = l / 2;
      }
      return 0;
    });
  }
  template <class St> void backward(St s, io const& x) { back(runtime_of(s), x, true, true); }
  template <class St> void backward_input(St s, io const& x) { back(runtime_of(s), x, false, true); }
  template <class St> void backward_weight(St s, io const& x) { back(runtime_of(s), x, true, false); }
  void back(runtime_step const& st, io const& x, bool weights, bool inputs) {
    ++calls;
    emu_nccl::launch(x.stream, [this, st, x, weights, inputs]() -> int {
      float const* a = x_of(st, x.aux);
      if (!a) return 0;
      backward_at(st.stage, a, x.in ? x.in.as<float>() : nullptr, !st.has_in, weights ? grad(st.stage, st.mb) : nullptr,
                  inputs && st.has_out ? x.out.as<float>() : nullptr);
      return 0;
    });
  }
};

/// The same model computed on the host, micro-batch after micro-batch.
results reference(int stages, int mbs, int batch) {
  results r{std::vector<float>(static_cast<std::size_t>(mbs)), std::vector<float>(static_cast<std::size_t>(stages * mbs * width))};
  for (int mb = 0; mb < mbs; ++mb) {
    std::vector<std::vector<float>> x(static_cast<std::size_t>(stages + 1), std::vector<float>(width));
    for (int k = 0; k < width; ++k) x[0][static_cast<std::size_t>(k)] = input_value(batch, mb, k);
    for (int s = 0; s < stages; ++s) layer(s, x[static_cast<std::size_t>(s)].data(), x[static_cast<std::size_t>(s + 1)].data());
    float l = 0;
    for (float v : x[static_cast<std::size_t>(stages)]) l += v * v;
    r.losses[static_cast<std::size_t>(mb)] = l / 2;
    std::vector<float> g(width), next(width);
    for (int s = stages - 1; s >= 0; --s) {
      backward_at(s, x[static_cast<std::size_t>(s)].data(), g.data(), s == stages - 1,
                  r.grads.data() + (s * mbs + mb) * width, next.data());
      g = next;
    }
  }
  return r;
}

template <class S> std::size_t compute_passes(int r) {
  std::size_t n = 0;
  table const t = S::make();
  for (action a : t.lists[static_cast<std::size_t>(r)]) n += is_compute(a.kind) ? 1 : 0;
  return n;
}
template <class S> std::size_t sends_in_table() {
  std::size_t n = 0;
  table const t = S::make();
  for (auto const& list : t.lists)
    for (action a : list) n += is_send(a.kind) ? 1 : 0;
  return n;
}

/// Merges the ranks' results of one iteration: each value must come from exactly one rank.
results merge(std::vector<results> const& per_rank, int stages, int mbs, int& collisions) {
  results m{std::vector<float>(static_cast<std::size_t>(mbs), nan_value),
            std::vector<float>(static_cast<std::size_t>(stages * mbs * width), nan_value)};
  for (results const& r : per_rank) {
    for (std::size_t i = 0; i < m.losses.size(); ++i)
      if (!std::isnan(r.losses[i])) collisions += std::isnan(m.losses[i]) ? 0 : 1, m.losses[i] = r.losses[i];
    for (std::size_t i = 0; i < m.grads.size(); ++i)
      if (!std::isnan(r.grads[i])) collisions += std::isnan(m.grads[i]) ? 0 : 1, m.grads[i] = r.grads[i];
  }
  return m;
}

/// Eager, capture, then replays alternating with eager iterations on the batches below.
template <class S> void replay_equals_eager(bool split_in_constructor) {
  INFO(plan_test::label<S>());
  constexpr int P = S::ranks;
  std::vector<int> const batches = {1, 2, 1, 3};
  std::size_t const iters = batches.size();
  emu_nccl::world w(P);
  // [rank][iteration]: what the replay and the eager run on the same batch produced
  std::vector<std::vector<results>> replayed(P), eager(P);
  std::vector<int> calls(P), first_calls(P), nothing_ran(P, 0), missing(P, 0);
  std::vector<std::size_t> rounds(P), replays(P);
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    std::size_t const R = static_cast<std::size_t>(r);
    cuda::nccl_options o;
    o.slot_bytes = boundary_bytes;
    o.deadline = 20s;
    o.edge_communicators = split_in_constructor;
    nccl_ex<S> ex(&c, r, o);
    CHECK((ex.split_rounds() > 0) == split_in_constructor);
    CHECK_THROWS_AS(ex.replay(), std::logic_error); // (no graph yet: refused on every rank alike)
    model_functor f(S::stages, S::microbatches);
    f.load(0);
    ex.run(f);
    first_calls[R] = f.calls;
    f.clear();
    ex.capture(f); // runs nothing
    nothing_ran[R] = std::isnan(f.out.losses[0]) && std::isnan(f.out.grads[0]) ? 1 : 0;
    for (std::size_t i = 0; i < iters; ++i) {
      f.load(batches[i]);
      f.clear();
      ex.replay();
      replayed[R].push_back(f.out);
      f.clear();
      ex.run(f);
      eager[R].push_back(f.out);
    }
    // this rank holds the communicators of exactly its edges, made in the planned rounds
    for (std::size_t k = 0; k < ex.edges().size(); ++k) {
      bool const mine = ex.edges()[k].from == r || ex.edges()[k].to == r;
      CHECK((ex.edge_comms()[k] != nullptr) == mine);
    }
    CHECK(ex.split_rounds() == cuda::color_edge_rounds(ex.edges(), P).rounds.size());
    calls[R] = f.calls;
    missing[R] = f.missing_input;
    rounds[R] = ex.split_rounds();
    replays[R] = ex.replays();
    CHECK(ex.iterations() == 1 + 2 * iters);
    CHECK(ex.captures() == 1);
  });
  for (int r = 0; r < P; ++r) {
    std::size_t const R = static_cast<std::size_t>(r);
    CAPTURE(r);
    REQUIRE_MESSAGE(!errors[R], emu_nccl::message_of(errors[R]));
    CHECK(nothing_ran[R] == 1);
    // the functor is called by the eager iterations and the capture, never by a replay
    CHECK(first_calls[R] >= static_cast<int>(compute_passes<S>(r))); // (an overlapped pair: two calls)
    CHECK(static_cast<std::size_t>(calls[R]) == static_cast<std::size_t>(first_calls[R]) * (1 + 1 + iters));
    CHECK(missing[R] == 0);
    CHECK(replays[R] == iters);
    CHECK(rounds[R] == rounds[0]); // every rank made the same splits
    for (std::size_t i = 0; i < iters; ++i) {
      CAPTURE(i);
      CHECK(same_bits(replayed[R][i].losses, eager[R][i].losses));
      CHECK(same_bits(replayed[R][i].grads, eager[R][i].grads));
    }
  }
  // against the sequential host computation: the same float operations, so the same bits
  for (std::size_t i = 0; i < iters; ++i) {
    CAPTURE(i);
    std::vector<results> per_rank;
    for (int r = 0; r < P; ++r) per_rank.push_back(replayed[static_cast<std::size_t>(r)][i]);
    int collisions = 0;
    results const m = merge(per_rank, S::stages, S::microbatches, collisions);
    results const want = reference(S::stages, S::microbatches, batches[i]);
    CHECK(collisions == 0);
    CHECK(same_bits(m.losses, want.losses));
    CHECK(same_bits(m.grads, want.grads));
  }
  // bytes: the world communicator carried the eager iterations and its warm-up (the largest
  // boundary once per edge), the edge communicators the replays and their own warm-up
  std::size_t const edges = emu_nccl::sends_per_edge(S::make()).size();
  std::size_t world_bytes = 0;
  for (std::size_t b : w.bytes_moved) world_bytes += b;
  std::size_t const per_iteration = sends_in_table<S>() * boundary_bytes;
  CHECK(world_bytes == (1 + iters) * per_iteration + edges * boundary_bytes);
  CHECK(w.bytes_moved_by_children() == iters * per_iteration + edges * boundary_bytes);
  CHECK(w.size_mismatches == 0);
  // the executors destroyed their graphs before ending the edge communicators
  CHECK(w.released_under_graph() == 0);
}

/// A stage functor whose forward of micro-batch 2 throws while it is being captured (on the
/// host: the capture stops there).
struct throwing_in_capture : model_functor {
  using model_functor::model_functor;
  bool throw_now = false;
  template <class St> void forward(St s, io const& x) {
    if (throw_now && runtime_of(s).mb == 2) throw std::runtime_error("injected failure while capturing");
    model_functor::forward(s, x);
  }
};

/// Eager, capture, one good replay; then rank 2's forward kernel of micro-batch 3 faults
/// in the second replay. Returns each rank's exception and the seconds it all took.
template <class S> std::pair<std::vector<std::exception_ptr>, double> fault_in_replay(cuda::failure_board* board) {
  emu_nccl::world w(S::ranks);
  auto const t0 = std::chrono::steady_clock::now();
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    cuda::nccl_options o;
    o.slot_bytes = boundary_bytes;
    o.deadline = 10s;
    o.board = board;
    nccl_ex<S> ex(&c, r, o);
    model_functor f(S::stages, S::microbatches);
    f.fail_mb = 3;
    f.load(0);
    ex.run(f);
    ex.capture(f);
    ex.replay();
    f.armed = r == 2;
    ex.replay();
  });
  return {errors, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
}

} // namespace

TEST_CASE("cuda.nccl_graph_emulated.replay_equals_eager") {
  replay_equals_eager<one_f_one_b<stages<4>, microbatches<8>>>(false);
  replay_equals_eager<interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>>(false);
  replay_equals_eager<zb_v<stages<4>, microbatches<8>>>(true);
  replay_equals_eager<dualpipe_v<stages<4>, microbatches<8>>>(false);
  replay_equals_eager<one_f_one_b<stages<3>, microbatches<5>>>(true);
}

TEST_CASE("cuda.nccl_graph_emulated.fault_in_replay.with_board") {
  using S = one_f_one_b<stages<4>, microbatches<8>>;
  emu_nccl::scoped_board b("graph_board");
  auto const [errors, seconds] = fault_in_replay<S>(&b.board);
  emu_nccl::expect_errors(
      errors, 4,
      [](cuda::transport_error const& e, int k) {
        CHECK(k != 2);
        CHECK(e.rank == k);
        CHECK(e.failed_rank == 2);
        CHECK(!e.timed_out);
        CHECK(std::string(e.what()).find("rank 2 failed: rank 2: cudaStreamQuery failed: unspecified launch failure") !=
              std::string::npos);
      },
      [](cuda::error const& e, int k) {
        CHECK(k == 2); // the faulting rank: its runtime's error
        CHECK(e.code == emu_nccl::kernel_fault);
      });
  CHECK(seconds < 5.0); // the deadline is 10 s: nobody waited for it
}

TEST_CASE("cuda.nccl_graph_emulated.fault_in_replay.no_board") {
  // without a board the others learn of it from their edge communicators: a neighbour of
  // rank 2 names the edge it shared with it; the error spreads edge by edge (each rank that
  // stops aborts all its communicators), so every rank ends, none at the deadline
  using S = one_f_one_b<stages<4>, microbatches<8>>;
  auto const [errors, seconds] = fault_in_replay<S>(nullptr);
  emu_nccl::expect_errors(
      errors, 4,
      [](cuda::transport_error const& e, int k) {
        CHECK(k != 2);
        CHECK(!e.timed_out);
        CHECK(e.code == emu_nccl::nccl::remote_error);
        CHECK((e.edge_from == k || e.edge_to == k)); // the edge whose communicator failed
        if (k == 1 || k == 3) CHECK((e.edge_from == 2 || e.edge_to == 2));
      },
      [](cuda::error const&, int k) { CHECK(k == 2); });
  CHECK(seconds < 5.0);
}

TEST_CASE("cuda.nccl_graph_emulated.throw_in_capture") {
  // rank 1's functor throws during its capture: it aborts its communicators and leaves a
  // note; the others capture (nothing runs in a capture) and their first replay ends with
  // transport_error naming rank 1
  using S = interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>;
  emu_nccl::scoped_board b("graph_board_capture");
  emu_nccl::world w(S::ranks);
  auto const t0 = std::chrono::steady_clock::now();
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    cuda::nccl_options o;
    o.slot_bytes = boundary_bytes;
    o.deadline = 10s;
    o.board = &b.board;
    nccl_ex<S> ex(&c, r, o);
    throwing_in_capture f(S::stages, S::microbatches);
    f.load(0);
    ex.run(f);
    f.throw_now = r == 1;
    ex.capture(f);
    ex.replay();
  });
  double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(errors.size() == 4);
  for (int k = 0; k < 4; ++k) {
    CAPTURE(k);
    if (k == 1) {
      REQUIRE(errors[1]);
      CHECK(emu_nccl::message_of(errors[1]) == "injected failure while capturing");
      continue;
    }
    emu_nccl::expect_transport_error(errors[static_cast<std::size_t>(k)], k, [](cuda::transport_error const& e) {
      CHECK(e.failed_rank == 1);
      CHECK(!e.timed_out);
      CHECK(std::string(e.what()).find("rank 1 failed: rank 1: F of stage ") != std::string::npos);
    });
  }
  CHECK(seconds < 5.0);
}
