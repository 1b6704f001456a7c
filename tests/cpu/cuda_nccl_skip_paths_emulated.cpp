// Skip paths (SkipPipe: each micro-batch visits its own subset of the stages, in an order of
// its own) on the per-process (NCCL) executors, on the CPU against the host emulation of
// NCCL's point-to-point semantics (tests/support/emulated_nccl.hpp), one thread per
// "process": basic_nccl_executor on skip schedule types (cost-aware and rotation routes, a
// memory cap, given routes with swapped stages, the round-trip layout with the head back on
// rank 0), basic_nccl_runtime_executor on skip tables made at run time (with an extra slot,
// a memory cap, round trip), and one iteration captured and replayed. Every boundary a pass
// reads is the one its route's neighbour wrote this iteration — the stage before on the
// micro-batch's route for an activation, the stage after for a gradient (salted stamps; the
// expected stage comes from the table's routes, not from the executor); every rank runs its
// passes in its list order; every directed edge carried the table's sends (plus one warm-up
// boundary), including the edges that skip ranks. A functor that throws on a middle rank
// ends every rank with an exception naming it, also the ranks that never exchange with it.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/emulated_nccl.hpp"
#include "support/emulated_nccl_checks.hpp"

#include "pipesched/cuda/basic_nccl_executor.hpp"
#include "pipesched/cuda/basic_nccl_runtime_executor.hpp"
#include "pipesched/schedules/skip_paths.hpp"
#include "plan_support.hpp"

using namespace pipesched;
using namespace std::chrono_literals;

namespace {

template <class S> using nccl_ex = cuda::basic_nccl_executor<S, emu_nccl::runtime, emu_nccl::nccl>;
using rt_ex = cuda::basic_nccl_runtime_executor<emu_nccl::runtime, emu_nccl::nccl>;

using emu_nccl::sends_per_edge;

/// True when some edge of `t` joins two ranks that are not neighbours (|a − b| > 1): the
/// routes skip, so a checker of plain neighbours would not do.
bool has_skipping_edge(table const& t) {
  for (auto const& [e, n] : sends_per_edge(t))
    if (n > 0 && (e.first - e.second > 1 || e.second - e.first > 1)) return true;
  return false;
}

/// `iterations` iterations on every rank with route checkers over `routes` (the table's
/// routes): stamps intact, passes in list order, bytes per edge as the lowered table says.
/// make(rank, comm, options) builds rank's executor.
template <class Routes, class Make>
void run_checked(table const& lowered, Routes const& routes, int iterations, std::string const& name, Make make) {
  int const P = static_cast<int>(lowered.lists.size());
  emu_nccl::world w(P);
  cuda::nccl_options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.deadline = 20s;
  using checker = plan_test::route_checker<Routes>;
  std::vector<checker> fs(static_cast<std::size_t>(P));
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    auto ex = make(r, c, o);
    checker& f = fs[static_cast<std::size_t>(r)];
    for (int it = 0; it < iterations; ++it) {
      f = checker{};
      f.routes = &routes;
      f.salt = 100 + it;
      ex->run(f);
      INFO(name, " iteration ", it, " rank ", r, ": ", f.first_problem);
      CHECK(f.mismatches == 0); // (no REQUIRE on a rank's thread: the others would wait for the deadline)
    }
  });
  for (int r = 0; r < P; ++r) {
    INFO(name, " rank ", r);
    REQUIRE_MESSAGE(!errors[static_cast<std::size_t>(r)], emu_nccl::message_of(errors[static_cast<std::size_t>(r)]));
    checker const& f = fs[static_cast<std::size_t>(r)];
    std::vector<action> const want = plan_test::compute_list(lowered, r);
    REQUIRE(f.calls == static_cast<int>(want.size()));
    bool in_order = true;
    for (std::size_t k = 0; k < want.size() && k < checker::capacity; ++k) in_order = in_order && f.order[k] == want[k];
    CHECK(in_order);
  }
  emu_nccl::expect_bytes_per_edge(w, lowered, static_cast<std::size_t>(iterations), plan_test::stamp_bytes, true, name);
  CHECK(w.size_mismatches == 0);
}

/// basic_nccl_executor on skip schedule type S.
template <class S> void compile_time(std::string const& name) {
  table const lowered = S::make();
  CHECK(has_skipping_edge(lowered));
  run_checked(lowered, S::lowered, 2, name, [](int r, emu_nccl::comm& c, cuda::nccl_options const& o) {
    return std::make_unique<nccl_ex<S>>(&c, r, o);
  });
}

/// basic_nccl_runtime_executor on a skip table made at run time.
void run_time(skip_config const& c, int extra_slots, std::string const& name) {
  table const compute = make_skip(c);
  REQUIRE_MESSAGE(compute.ok(), to_string(compute.error));
  runtime_schedule const sched(compute, sim_costs{c.costs}, extra_slots);
  CHECK(has_skipping_edge(sched.lowered()));
  run_checked(sched.lowered(), sched.lowered(), 2, name, [&](int r, emu_nccl::comm& comm, cuda::nccl_options const& o) {
    return std::make_unique<rt_ex>(&comm, r, sched, o);
  });
}

using set_swaps = path_set<5, path<0, 2, 1, 4>, path<0, 3, 2, 4>, path<0, 1, 3, 4>>;

} // namespace

TEST_CASE("cuda.nccl_skip.compile_time.cost_aware.s6.k4.m8") {
  compile_time<skip_paths<4, stages<6>, microbatches<8>>>("skip s6 k4 m8");
}
TEST_CASE("cuda.nccl_skip.compile_time.rotation.s6.k4.m4") {
  compile_time<schedule<skip_paths_family<4, 0, path_layout::last, path_method::rotation>, stages<6>, microbatches<4>>>(
      "skip rotation s6 k4 m4");
}
TEST_CASE("cuda.nccl_skip.compile_time.memory2.s5.k3.m6") {
  compile_time<schedule<skip_paths_family<3, 2>, stages<5>, microbatches<6>>>("skip memory 2 s5 k3 m6");
}
TEST_CASE("cuda.nccl_skip.compile_time.given_swaps.s5.m3") {
  // routes that visit stages out of order: micro-batch 0 goes 0 -> 2 -> 1 -> 4
  compile_time<skip_given<set_swaps, stages<5>, microbatches<3>>>("skip given swaps s5 m3");
}
TEST_CASE("cuda.nccl_skip.compile_time.round_trip.s6.k4.m8.memory2") {
  // the head (table stage 6) on rank 0: every route's last hop goes back to rank 0
  using S = schedule<skip_paths_family<4, 2, path_layout::round_trip>, stages<6>, microbatches<8>>;
  static_assert(S::ranks == 6);
  compile_time<S>("skip round trip s6 k4 m8 memory 2");
}

TEST_CASE("cuda.nccl_skip.run_time") {
  skip_config c;
  c.stages = 6;
  c.keep = 4;
  c.microbatches = 8;
  run_time(c, 0, "make_skip s6 k4 m8");
  run_time(c, 1, "make_skip s6 k4 m8, one extra slot");
  c.layout = path_layout::round_trip;
  run_time(c, 0, "make_skip s6 k4 m8, round trip");
  c.layout = path_layout::last;
  c.stages = 8;
  c.keep = 5;
  c.microbatches = 12;
  c.memory = 2;
  run_time(c, 0, "make_skip s8 k5 m12 memory 2");
}

TEST_CASE("cuda.nccl_skip.graph_replay") {
  // capture runs no pass; each replay moves this iteration's boundaries along the routes (a
  // new salt per replay, read when the "kernel" runs: a replay that moved nothing or the
  // wrong slot would leave a stale stamp), over the per-edge communicators only
  using S = skip_paths<4, stages<6>, microbatches<8>>;
  using checker = plan_test::route_checker<decltype(S::lowered)>;
  constexpr int P = S::ranks;
  constexpr int replays = 3;
  emu_nccl::world w(P);
  std::vector<int> calls_in_capture(P, -1), mismatches(P, -1), calls(P, -1);
  std::vector<std::string> problems(P);
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    std::size_t const R = static_cast<std::size_t>(r);
    cuda::nccl_options o;
    o.slot_bytes = plan_test::stamp_bytes;
    o.deadline = 20s;
    nccl_ex<S> ex(&c, r, o);
    emu_nccl::launched<checker> f;
    f.routes = &S::lowered;
    ex.capture(f);
    calls_in_capture[R] = f.calls; // the kernels are recorded, not run
    int bad = 0;
    for (int k = 0; k < replays; ++k) {
      f.salt = 7 + k;
      f.mismatches = 0;
      ex.replay();
      bad += f.mismatches;
      if (f.mismatches && problems[R].empty()) problems[R] = f.first_problem;
    }
    mismatches[R] = bad;
    calls[R] = f.calls;
  });
  std::size_t const per_iteration = [] {
    std::size_t n = 0;
    for (auto const& [e, k] : sends_per_edge(S::make())) n += k;
    return n;
  }();
  std::size_t const edges = sends_per_edge(S::make()).size();
  for (int r = 0; r < P; ++r) {
    std::size_t const R = static_cast<std::size_t>(r);
    CAPTURE(r);
    REQUIRE_MESSAGE(!errors[R], emu_nccl::message_of(errors[R]));
    CHECK(calls_in_capture[R] == 0);
    INFO(problems[R]);
    CHECK(mismatches[R] == 0);
    CHECK(calls[R] == replays * static_cast<int>(plan_test::compute_list(S::make(), r).size()));
  }
  // the world communicator carried only its warm-up; the edge communicators the replays and theirs
  std::size_t world_bytes = 0;
  for (std::size_t b : w.bytes_moved) world_bytes += b;
  CHECK(world_bytes == edges * plan_test::stamp_bytes);
  CHECK(w.bytes_moved_by_children() == (replays * per_iteration + edges) * plan_test::stamp_bytes);
  CHECK(w.size_mismatches == 0);
}

TEST_CASE("cuda.nccl_skip.the_checker_sees_the_routes") {
  // the test of the test: the plain checker (neighbours s − 1 and s + 1) finds stale
  // boundaries on a skip schedule over NCCL
  using S = skip_paths<4, stages<6>, microbatches<8>>;
  emu_nccl::world w(S::ranks);
  std::vector<int> mismatches(S::ranks, 0);
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    cuda::nccl_options o;
    o.slot_bytes = plan_test::stamp_bytes;
    o.deadline = 20s;
    nccl_ex<S> ex(&c, r, o);
    plan_test::checking_functor f;
    ex.run(f);
    mismatches[static_cast<std::size_t>(r)] = f.mismatches;
  });
  int total = 0;
  for (int r = 0; r < S::ranks; ++r) {
    REQUIRE_MESSAGE(!errors[static_cast<std::size_t>(r)], emu_nccl::message_of(errors[static_cast<std::size_t>(r)]));
    total += mismatches[static_cast<std::size_t>(r)];
  }
  CHECK(total > 0);
}

namespace {

/// A route checker that throws at its first forward while `armed`.
template <class Routes> struct throwing_checker : plan_test::route_checker<Routes> {
  bool armed = false;
  template <class St> void forward(St s, io const& x) {
    if (armed) throw std::runtime_error("injected failure in the stage functor");
    plan_test::route_checker<Routes>::forward(s, x);
  }
};

} // namespace

TEST_CASE("cuda.nccl_skip.throwing_functor_middle_rank") {
  // rank 2 throws at its first forward in the second iteration: it ends with its own
  // exception, every other rank with a transport_error naming rank 2 and that pass (from the
  // failure board), on one of its own edges, at once — also ranks with no edge to rank 2
  using S = skip_paths<4, stages<6>, microbatches<8>>;
  constexpr int P = S::ranks, failing = 2;
  table const t = S::make();
  action first_forward{};
  bool found = false;
  for (action a : plan_test::compute_list(t, failing))
    if (!found && a.kind == op::forward) first_forward = a, found = true;
  REQUIRE(found);
  auto const sends = sends_per_edge(t);
  int strangers = 0; // ranks with no edge to the failing rank
  for (int k = 0; k < P; ++k)
    strangers += k != failing && !sends.count({k, failing}) && !sends.count({failing, k});
  emu_nccl::scoped_board b("board_skip_throw");
  cuda::nccl_options o = b.options(10s);
  o.slot_bytes = plan_test::stamp_bytes;
  emu_nccl::world w(P);
  auto const t0 = std::chrono::steady_clock::now();
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    nccl_ex<S> ex(&c, r, o);
    throwing_checker<decltype(S::lowered)> f;
    f.routes = &S::lowered;
    ex.run(f);
    f.armed = r == failing;
    ex.run(f);
  });
  double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string const pass = "rank 2 failed: rank 2: F of stage " + std::to_string(first_forward.stage) + ", micro-batch " +
                           std::to_string(first_forward.mb) + " threw";
  for (int k = 0; k < P; ++k) {
    CAPTURE(k);
    std::exception_ptr const& err = errors[static_cast<std::size_t>(k)];
    if (k == failing) {
      REQUIRE(err);
      CHECK(emu_nccl::message_of(err) == "injected failure in the stage functor");
      continue;
    }
    emu_nccl::expect_transport_error(err, k, [&](cuda::transport_error const& e) {
      CHECK(e.rank == k);
      CHECK(e.failed_rank == failing);
      CHECK(!e.timed_out);
      CHECK((e.edge_from == k || e.edge_to == k));
      CHECK(std::string(e.what()).find(pass) != std::string::npos);
    });
  }
  CHECK(strangers > 0);
  CHECK(seconds < 5.0); // within the deadline (10 s), in fact at once
}
