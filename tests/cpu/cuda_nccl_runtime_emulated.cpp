// The per-process (NCCL) executor for schedules chosen at run time on the CPU:
// pipesched::cuda::basic_nccl_runtime_executor bound to the host emulation of NCCL's
// point-to-point semantics (tests/support/emulated_nccl.hpp), one thread per "process".
// Every registered family, made by make_schedule at p = 3 and p = 4 (where accepted), runs
// with every boundary checked (salted stamps) and every rank's passes in list order, and an
// MLP trained through it equals, to the last bit, the same MLP trained by
// host::runtime_executor on the same table. For schedule types, the run-time executor issues
// the same NCCL calls in the same order as the compile-time basic_nccl_executor (a logging
// communicator policy records them). Graph replay equals eager execution; a functor that
// throws on a middle rank ends every rank with an exception at once; a stream program the
// checks refuse is refused with schedule_error before anything is allocated, and the peers
// stop instead of hanging. Overlapped pairs reach a functor's forward_backward once each on
// both NCCL executors (run-time and compile-time), eager and replayed.
#include <doctest/doctest.h>

#include <atomic>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include "support/broken_tables.hpp"
#include "support/emulated_nccl.hpp"
#include "support/emulated_nccl_checks.hpp"
#include "support/registered_tables.hpp"

#include "pipesched/cuda/basic_nccl_executor.hpp"
#include "pipesched/cuda/basic_nccl_runtime_executor.hpp"
#include "pipesched/host/executor.hpp"
#include "pipesched/schedules/registry.hpp"
#include "plan_mlp.hpp"
#include "plan_support.hpp"

using namespace pipesched;
using namespace std::chrono_literals;

namespace {

// ---- policies that log what the executor calls (per thread: threads are the processes) ----

/// One NCCL call: kind ('[' group start, ']' group end, 's' send, 'r' recv), peer, bytes,
/// and the buffer's slot of the rank (-1: not a slot start, e.g. none).
struct nccl_call {
  char kind = 0;
  int peer = -1;
  std::size_t bytes = 0;
  void const* buffer = nullptr;
  friend bool operator==(nccl_call const&, nccl_call const&) = default;
};
thread_local std::vector<nccl_call>* call_log = nullptr;
thread_local int mallocs = 0;

struct logging_nccl : emu_nccl::nccl {
  static void note(nccl_call c) {
    if (call_log) call_log->push_back(c);
  }
  static status group_start() {
    note({'[', -1, 0, nullptr});
    return emu_nccl::nccl::group_start();
  }
  static status group_end() {
    note({']', -1, 0, nullptr});
    return emu_nccl::nccl::group_end();
  }
  static status send(void const* buf, std::size_t n, int peer, emu_nccl::comm* c, ::CUstream_st* s) {
    note({'s', peer, n, buf});
    return emu_nccl::nccl::send(buf, n, peer, c, s);
  }
  static status recv(void* buf, std::size_t n, int peer, emu_nccl::comm* c, ::CUstream_st* s) {
    note({'r', peer, n, buf});
    return emu_nccl::nccl::recv(buf, n, peer, c, s);
  }
};

struct counting_runtime : emu_nccl::runtime {
  static status malloc(void** p, std::size_t n) {
    ++mallocs;
    return emu_nccl::runtime::malloc(p, n);
  }
};

using rt_ex = cuda::basic_nccl_runtime_executor<counting_runtime, logging_nccl>;
template <class S> using ct_ex = cuda::basic_nccl_executor<S, counting_runtime, logging_nccl>;
using checker = plan_test::checking_functor;

using registered_tables::named_table;

/// Two iterations with the checking functor on every rank: stamps intact, passes in list
/// order, each edge carried its boundaries (plus one warm-up boundary).
void run_checked(runtime_schedule const& sched, std::string const& name) {
  int const P = sched.ranks;
  emu_nccl::world w(P);
  cuda::nccl_options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.deadline = 20s;
  std::vector<checker> fs(static_cast<std::size_t>(P));
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    rt_ex ex(&c, r, sched, o);
    checker& f = fs[static_cast<std::size_t>(r)];
    for (int it = 0; it < 2; ++it) {
      f = checker{};
      f.salt = 100 + it;
      ex.run(f);
      INFO(name, " iteration ", it, " rank ", r, ": ", f.first_problem);
      CHECK(f.mismatches == 0); // (no REQUIRE on a rank's thread: the others would wait for the deadline)
    }
    CHECK(ex.iterations() == 2);
  });
  for (int r = 0; r < P; ++r) {
    INFO(name, " rank ", r);
    REQUIRE_MESSAGE(!errors[static_cast<std::size_t>(r)], emu_nccl::message_of(errors[static_cast<std::size_t>(r)]));
    checker const& f = fs[static_cast<std::size_t>(r)];
    std::vector<action> const want = plan_test::compute_list(sched.lowered(), r);
    REQUIRE(f.calls == static_cast<int>(want.size()));
    bool in_order = true;
    for (std::size_t k = 0; k < want.size() && k < checker::capacity; ++k) in_order = in_order && f.order[k] == want[k];
    CHECK(in_order);
  }
  emu_nccl::expect_bytes_per_edge(w, sched.lowered(), 2, plan_test::stamp_bytes, true, name);
  CHECK(w.size_mismatches == 0);
}

/// A barrier of the rank threads that gives up (throws) after a while rather than hang when a
/// rank failed; `done` runs once per round, on the last thread to arrive.
class timed_barrier {
public:
  explicit timed_barrier(int n) : n_(n) {}
  template <class Done> void arrive(Done&& done) {
    std::unique_lock<std::mutex> lock(m_);
    std::uint64_t const round = round_;
    if (++arrived_ == n_) {
      done();
      arrived_ = 0;
      ++round_;
      cv_.notify_all();
      return;
    }
    if (!cv_.wait_for(lock, 20s, [&] { return round_ != round; }))
      throw std::runtime_error("timed_barrier: a rank never came");
  }

private:
  int n_, arrived_ = 0;
  std::uint64_t round_ = 0;
  std::mutex m_;
  std::condition_variable cv_;
};

/// Trains the MLP `steps` steps through the NCCL runtime executor on `sched` (one thread per
/// rank; the optimizer step between iterations once every rank is done), or, when S is a
/// schedule type (whose table `sched` is), through the compile-time basic_nccl_executor<S>:
/// eagerly, or (`graph`) one iteration captured and replayed. Returns the losses.
template <class F, class S = void>
std::vector<double> train_nccl(runtime_schedule const& sched, mlp::model& net, int model_stages, int steps,
                               bool graph, std::atomic<int>* pairs = nullptr) {
  int const P = sched.ranks;
  emu_nccl::world w(P);
  timed_barrier step_done(P);
  std::vector<double> losses;
  std::vector<std::size_t> replays(static_cast<std::size_t>(P), 0);
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    cuda::nccl_options o;
    o.slot_bytes = net.boundary_bytes();
    o.deadline = 20s;
    emu_nccl::launched<F> f;
    f.net = &net;
    if constexpr (requires { f.model_stages; }) f.model_stages = model_stages;
    if constexpr (requires { f.pairs = pairs; }) f.pairs = pairs;
    auto go = [&](auto& ex) {
      if (graph) ex.capture(f); // runs nothing: the optimizer's first loss would show it
      for (int step = 0; step < steps; ++step) {
        if (graph) ex.replay();
        else ex.run(f);
        step_done.arrive([&] { losses.push_back(net.apply_all()); });
      }
      replays[static_cast<std::size_t>(r)] = ex.replays();
    };
    if constexpr (std::is_void_v<S>) {
      rt_ex ex(&c, r, sched, o);
      go(ex);
    } else {
      ct_ex<S> ex(&c, r, o);
      go(ex);
    }
  });
  for (int r = 0; r < P; ++r) {
    REQUIRE_MESSAGE(!errors[static_cast<std::size_t>(r)], emu_nccl::message_of(errors[static_cast<std::size_t>(r)]));
    CHECK(replays[static_cast<std::size_t>(r)] == (graph ? static_cast<std::size_t>(steps) : 0));
  }
  CHECK(w.size_mismatches == 0);
  return losses;
}

/// The MLP trained 3 steps through the NCCL runtime executor and through
/// host::runtime_executor on the same table: equal losses and weights, to the last bit (the
/// same arithmetic in the same per-stage order; only where the passes run differs).
template <class F> void train_against_host(runtime_schedule const& sched, std::string const& name, int model_stages) {
  mlp::config c;
  c.layers = 12;
  c.microbatches = sched.microbatches;
  c.stages = model_stages;
  mlp::model on_host(c), on_nccl(c);
  host::runtime_executor hx(sched, host::options{on_host.boundary_bytes()});
  std::vector<F> hf(static_cast<std::size_t>(sched.ranks));
  for (auto& f : hf) f.net = &on_host;
  if constexpr (requires(F f) { f.model_stages; })
    for (auto& f : hf) f.model_stages = model_stages;
  std::vector<double> want;
  for (int step = 0; step < 3; ++step) {
    hx.run(hf);
    want.push_back(on_host.apply_all());
  }
  std::vector<double> const got = train_nccl<F>(sched, on_nccl, model_stages, 3, false);
  INFO(name);
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < got.size(); ++k) CHECK(got[k] == want[k]); // to the last bit
  CHECK(on_nccl.stale_inputs() == 0);
  CHECK(mlp::max_relative_difference(on_nccl, on_host, 0, c.layers) == 0.0);
}

/// DualPipe-V or DualPipe with a functor whose forward_backward runs each overlapped pair
/// (counted): the NCCL runtime executor (S void) or the compile-time one (S the type whose
/// table `sched` is) calls it once per pair, eagerly and replayed, as host::runtime_executor
/// does, with the same losses to the last bit.
template <class F, class S = void> void pairs_against_host(runtime_schedule const& sched, int model_stages, int pairs) {
  mlp::config c;
  c.layers = 12;
  c.microbatches = sched.microbatches;
  c.stages = model_stages;
  mlp::model on_host(c);
  host::runtime_executor hx(sched, host::options{on_host.boundary_bytes()});
  std::atomic<int> host_pairs{0};
  std::vector<F> hf(static_cast<std::size_t>(sched.ranks));
  for (auto& f : hf) {
    f.net = &on_host;
    f.pairs = &host_pairs;
    if constexpr (requires { f.model_stages; }) f.model_stages = model_stages;
  }
  std::vector<double> want;
  for (int step = 0; step < 3; ++step) {
    hx.run(hf);
    want.push_back(on_host.apply_all());
  }
  CHECK(host_pairs.load() == 3 * pairs);
  for (bool const graph : {false, true}) {
    INFO((graph ? "replayed" : "eager"));
    mlp::model on_nccl(c);
    std::atomic<int> nccl_pairs{0};
    std::vector<double> const got = train_nccl<F, S>(sched, on_nccl, model_stages, 3, graph, &nccl_pairs);
    CHECK(got == want); // to the last bit
    CHECK(nccl_pairs.load() == 3 * pairs);
  }
}

void train_against_host(named_table const& nt) {
  runtime_schedule const sched(nt.t);
  if (nt.mirrored)
    train_against_host<mlp::copies_of_model_stages<mlp::stage_functor>>(sched, nt.name, sched.stages / 2);
  else train_against_host<mlp::stage_functor>(sched, nt.name, sched.stages);
}

} // namespace

TEST_CASE("cuda.nccl_runtime_emulated.every_registered_schedule") {
  std::vector<named_table> const all = registered_tables::every_family({{4, 8}, {3, 5}});
  REQUIRE(all.size() >= 2 * 12); // every family accepts p = 3 or 4 but a few
  for (named_table const& nt : all) {
    SUBCASE(nt.name.c_str()) {
      REQUIRE(nt.t.ok());
      runtime_schedule const sched(nt.t);
      run_checked(sched, nt.name);
      train_against_host(nt);
    }
  }
}

namespace {

/// What rank r's executor called, as (kind, peer, bytes, slot index): the buffer given as
/// the index of the slot it starts (the warm-up's largest slot included), so that two
/// executors' logs compare although their blocks differ.
template <class Ex>
std::vector<std::tuple<char, int, std::size_t, int>> by_slot(std::vector<nccl_call> const& log, Ex const& ex) {
  std::vector<std::tuple<char, int, std::size_t, int>> out;
  for (nccl_call const& c : log) {
    int slot = -1;
    for (int k = 0; k < ex.slot_count() && slot < 0; ++k)
      if (c.buffer && ex.slots()[k].data == c.buffer) slot = k;
    out.emplace_back(c.kind, c.peer, c.bytes, slot);
  }
  return out;
}

/// Schedule type S through the compile-time executor and its table (thawed, with its costs)
/// through the run-time one: per rank the same NCCL calls in the same order (warm-up, one
/// eager iteration, a capture's edge warm-ups and its groups), the same group counts, the same
/// bytes per edge, and the same stamps checked.
template <class S> void same_calls_as_compile_time() {
  INFO(plan_test::label<S>());
  constexpr int P = S::ranks;
  runtime_schedule const sched(thaw(S::lowered));
  using calls = std::vector<std::tuple<char, int, std::size_t, int>>;
  std::vector<calls> compiled(P), derived(P);
  std::vector<std::size_t> groups_c(P), groups_d(P);
  std::vector<int> mismatches(P, 0);
  std::vector<std::size_t> bytes_c, bytes_d;
  for (bool run_time : {false, true}) {
    emu_nccl::world w(P);
    auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
      std::vector<nccl_call> log;
      call_log = &log;
      cuda::nccl_options o;
      o.slot_bytes = plan_test::stamp_bytes;
      o.deadline = 20s;
      o.max_group_ops = 3; // some runs split at the limit too
      checker f;
      f.salt = 5;
      auto go = [&](auto& ex) {
        ex.run(f);
        mismatches[static_cast<std::size_t>(r)] += f.mismatches; // (a capture runs nothing: its reads are not checked)
        ex.capture(f);
        call_log = nullptr;
        (run_time ? derived : compiled)[static_cast<std::size_t>(r)] = by_slot(log, ex);
        (run_time ? groups_d : groups_c)[static_cast<std::size_t>(r)] = ex.groups_issued();
      };
      if (run_time) {
        rt_ex ex(&c, r, sched, o, S::parameters.cost);
        go(ex);
      } else {
        ct_ex<S> ex(&c, r, o);
        go(ex);
      }
    });
    for (auto& e : errors) REQUIRE_MESSAGE(!e, emu_nccl::message_of(e));
    (run_time ? bytes_d : bytes_c) = w.bytes_moved;
  }
  for (int r = 0; r < P; ++r) {
    CAPTURE(r);
    std::size_t const R = static_cast<std::size_t>(r);
    CHECK(compiled[R].size() > 4);
    CHECK(derived[R] == compiled[R]);
    CHECK(groups_d[R] == groups_c[R]);
    CHECK(mismatches[R] == 0);
  }
  CHECK(bytes_d == bytes_c);
}

} // namespace

TEST_CASE("cuda.nccl_runtime_emulated.same_calls_as_compile_time") {
  // the run-time derivation reproduces the compile-time program op for op (and this is the
  // executor-level consequence: identical NCCL traffic)
  same_calls_as_compile_time<one_f_one_b<stages<4>, microbatches<8>>>();
  same_calls_as_compile_time<interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>>();
  same_calls_as_compile_time<zb_v<stages<4>, microbatches<8>>>();
  same_calls_as_compile_time<dualpipe_v<stages<4>, microbatches<8>>>();
  same_calls_as_compile_time<zb_h2<stages<3>, microbatches<5>>>();
}

TEST_CASE("cuda.nccl_runtime_emulated.graph_replay_equals_eager") {
  // one iteration captured and replayed 3 times (the optimizer step between replays) equals
  // 3 eager iterations to the last bit, and both equal host::runtime_executor
  for (char const* name : {"zb-h1", "interleaved", "dualpipe-v"}) {
    CAPTURE(name);
    runtime_schedule const sched(make_schedule(name, params{4, 8}));
    mlp::config c;
    c.layers = 12;
    c.microbatches = sched.microbatches;
    c.stages = sched.stages;
    mlp::model host_net(c), eager_net(c), graph_net(c);
    host::runtime_executor hx(sched, host::options{host_net.boundary_bytes()});
    std::vector<mlp::stage_functor> hf(static_cast<std::size_t>(sched.ranks), mlp::stage_functor{&host_net});
    std::vector<double> want;
    for (int step = 0; step < 3; ++step) {
      hx.run(hf);
      want.push_back(host_net.apply_all());
    }
    std::vector<double> const eager = train_nccl<mlp::stage_functor>(sched, eager_net, c.stages, 3, false);
    std::vector<double> const graph = train_nccl<mlp::stage_functor>(sched, graph_net, c.stages, 3, true);
    CHECK(eager == want);
    CHECK(graph == eager);
    CHECK(mlp::max_relative_difference(graph_net, eager_net, 0, c.layers) == 0.0);
    CHECK(graph_net.stale_inputs() == 0);
  }
}

namespace {

/// A checking functor that throws at the forward of one micro-batch.
struct faulty : checker {
  int fail_mb = -1;
  template <class St> void forward(St s, io const& x) {
    if (runtime_of(s).mb == fail_mb) throw std::runtime_error("injected failure in the stage functor");
    checker::forward(s, x);
  }
};

using emu_nccl::fresh_folder;

/// Rank k's outcome must be a transport_error naming rank `failed`.
void expect_transport_error(std::exception_ptr const& e, int k, int failed, std::string const& note) {
  emu_nccl::expect_transport_error(e, k, [&](cuda::transport_error const& t) {
    CHECK(t.rank == k);
    CHECK(t.failed_rank == failed);
    CHECK(!t.timed_out);
    CHECK(std::string(t.what()).find(note) != std::string::npos);
  });
}

} // namespace

TEST_CASE("cuda.nccl_runtime_emulated.throwing_functor_middle_rank") {
  // rank 2 of 4 throws at the F of micro-batch 3: it ends with its functor's exception, every
  // other rank with a transport_error naming rank 2 — at once, not at the deadline (10 s)
  runtime_schedule const sched(make_schedule("1f1b", params{4, 8}));
  cuda::file_failure_board board(fresh_folder("board_throw"));
  emu_nccl::world w(4);
  auto const t0 = std::chrono::steady_clock::now();
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    cuda::nccl_options o;
    o.slot_bytes = plan_test::stamp_bytes;
    o.deadline = 10s;
    o.board = &board;
    rt_ex ex(&c, r, sched, o);
    faulty f;
    if (r == 2) f.fail_mb = 3;
    ex.run(f);
  });
  double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int k = 0; k < 4; ++k) {
    CAPTURE(k);
    std::exception_ptr const& err = errors[static_cast<std::size_t>(k)];
    if (k == 2) {
      REQUIRE(err);
      CHECK(emu_nccl::message_of(err) == "injected failure in the stage functor");
      continue;
    }
    expect_transport_error(err, k, 2, "rank 2 failed: rank 2: F of stage 2, micro-batch 3 threw");
  }
  CHECK(seconds < 5.0);
  std::filesystem::remove_all(board.folder());
}

namespace {
/// A stage functor without backward_weight.
struct no_w {
  template <class St> void forward(St, io const&) {}
  template <class St> void backward_input(St, io const&) {}
};
} // namespace

TEST_CASE("cuda.nccl_runtime_emulated.functor_refused_on_every_rank") {
  // a functor without backward_weight on rank 1 (ZB-H1 calls it): rank 1 refuses it before
  // issuing anything, as a failure of its own; the others stop on its note
  runtime_schedule const sched(make_schedule("zb-h1", params{4, 8}));
  cuda::file_failure_board board(fresh_folder("board_functor"));
  emu_nccl::world w(4);
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    cuda::nccl_options o;
    o.slot_bytes = plan_test::stamp_bytes;
    o.deadline = 10s;
    o.board = &board;
    rt_ex ex(&c, r, sched, o);
    if (r == 1) {
      no_w f;
      ex.run(f);
    } else {
      checker f;
      ex.run(f);
    }
  });
  REQUIRE(errors[1]);
  CHECK(emu_nccl::message_of(errors[1]).find("backward_weight") != std::string::npos);
  for (int k : {0, 2, 3}) {
    CAPTURE(k);
    expect_transport_error(errors[static_cast<std::size_t>(k)], k, 1, "rank 1 failed");
  }
  std::filesystem::remove_all(board.folder());
}

using broken_tables::clobber_unread_slot;

TEST_CASE("cuda.nccl_runtime_emulated.refused_programs") {
  SUBCASE("a table whose rendezvous program clobbers a boundary") {
    // (runtime_schedule refuses such a table itself; the rendezvous program's check, which
    // the executor runs, refuses it too, with its own sentence)
    table t = make_schedule("1f1b", params{4, 8});
    auto const [r, j] = clobber_unread_slot(t);
    REQUIRE(r >= 0);
    CHECK_THROWS_AS((void)runtime_schedule{t}, schedule_error);
    try {
      (void)cuda::checked_rendezvous_program(t);
      FAIL("the rendezvous program of a clobbered table was accepted");
    } catch (schedule_error const& e) {
      CHECK(e.where.code == errc::program_malformed);
      CHECK(e.where.rank == r);
      CHECK(e.where.position == j);
      CHECK(std::string(e.what()).find("a boundary overwritten before anything read it") != std::string::npos);
    }
  }
  SUBCASE("a program missing a wait, given to one rank") {
    // rank 1 is given the table's rendezvous program without its first wait op: it refuses
    // it with the check's sentence before allocating anything, aborting its communicator;
    // the other ranks, waiting in their warm-up for rank 1, stop with an exception
    runtime_schedule const sched(make_schedule("1f1b", params{4, 8}));
    cuda::stream_program const good = cuda::checked_rendezvous_program(sched.lowered());
    cuda::stream_program bad = good;
    std::size_t k = 0;
    while (k < bad.ops.size() && bad.ops[k].kind != cuda::stream_op_kind::wait) ++k;
    REQUIRE(k < bad.ops.size());
    bad.ops.erase(bad.ops.begin() + static_cast<std::ptrdiff_t>(k));
    diagnostic d = cuda::verify_stream_program(sched.lowered(), bad);
    if (!d) d = cuda::check_stream_order(sched.lowered(), bad);
    REQUIRE(d); // the checks themselves refuse it
    cuda::file_failure_board board(fresh_folder("board_program"));
    emu_nccl::world w(4);
    std::vector<int> allocated(4, -1);
    auto const t0 = std::chrono::steady_clock::now();
    auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
      cuda::nccl_options o;
      o.slot_bytes = plan_test::stamp_bytes;
      o.deadline = 10s;
      o.board = &board;
      mallocs = 0;
      try {
        rt_ex ex(&c, r, sched, r == 1 ? bad : good, o);
        checker f;
        ex.run(f);
      } catch (...) {
        allocated[static_cast<std::size_t>(r)] = mallocs;
        throw;
      }
    });
    double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(errors[1]);
    try {
      std::rethrow_exception(errors[1]);
    } catch (schedule_error const& e) {
      CHECK(e.where.code == d.code);
      CHECK(std::string(e.what()) == "pipesched: " + to_string(d));
    } catch (...) {
      FAIL("rank 1: ", emu_nccl::message_of(errors[1]));
    }
    CHECK(allocated[1] == 0); // refused before anything was allocated
    for (int r : {0, 2, 3}) {
      CAPTURE(r);
      CHECK(errors[static_cast<std::size_t>(r)]); // stopped, not hung
    }
    CHECK(seconds < 5.0);
    std::filesystem::remove_all(board.folder());
  }
  SUBCASE("a copy-mode program") {
    runtime_schedule const sched(make_schedule("1f1b", params{2, 4}));
    emu_nccl::world w(2);
    auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
      cuda::nccl_options o;
      o.slot_bytes = plan_test::stamp_bytes;
      o.deadline = 10s;
      rt_ex ex(&c, r, sched, cuda::checked_stream_program(sched.lowered()), o);
    });
    for (auto& e : errors) {
      REQUIRE(e);
      CHECK(emu_nccl::message_of(e).find("rendezvous program") != std::string::npos);
    }
  }
}

TEST_CASE("cuda.nccl_runtime.emulated.forward_backward_pairs") {
  using F = mlp::pair_functor<std::atomic<int>>;
  for (char const* name : {"dualpipe-v", "dualpipe"}) {
    INFO(name);
    runtime_schedule const sched(make_schedule(name, params{4, 8}));
    int const pairs = plan_test::overlapped_pairs(sched.lowered());
    REQUIRE(pairs > 0);
    if (std::string(name) == "dualpipe") pairs_against_host<mlp::copies_of_model_stages<F>>(sched, sched.stages / 2, pairs);
    else pairs_against_host<F>(sched, sched.stages, pairs);
  }
}

TEST_CASE("cuda.nccl_emulated.forward_backward_pairs") {
  // the compile-time NCCL executor (basic_nccl_executor<S>) on DualPipe-V and DualPipe:
  // one forward_backward call per overlapped pair, eager and replayed over the per-edge
  // communicators, and the MLP equal to host::runtime_executor on the type's table to the
  // last bit
  using F = mlp::pair_functor<std::atomic<int>>;
  using V = dualpipe_v<stages<4>, microbatches<8>>;
  using D = dualpipe<stages<4>, microbatches<8>>;
  static_assert(plan_test::overlapped_pairs(V::lowered) > 0 && plan_test::overlapped_pairs(D::lowered) > 0);
  runtime_schedule const v(thaw(V::lowered)), d(thaw(D::lowered));
  REQUIRE(plan_test::overlapped_pairs(v.lowered()) == plan_test::overlapped_pairs(V::lowered));
  pairs_against_host<F, V>(v, V::lowered.stages, plan_test::overlapped_pairs(V::lowered));
  pairs_against_host<mlp::copies_of_model_stages<F>, D>(d, D::lowered.stages / 2, plan_test::overlapped_pairs(D::lowered));
}
