// The per-process (NCCL) executor on the CPU: pipesched::cuda::basic_nccl_executor bound to
// a host emulation of NCCL's point-to-point semantics and an eager CUDA runtime
// (tests/support/emulated_nccl.hpp), one thread per "process". Every schedule family runs
// with every boundary checked (salted stamps) and every rank's passes in list order; the
// bytes each edge carried equal what the table says (uniform and per-stage sizes); groups
// stay within the limit given; a functor that throws, a communicator error and a stalled
// rank end every rank with an exception within the deadline — naming the failing rank and
// the edge when there is a failure board, the edge and "unknown" when there is none.
// Also: the launch variables (torchrun, Open MPI, Slurm) and the shared-file bootstrap.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "support/emulated_nccl.hpp"
#include "support/emulated_nccl_checks.hpp"

#include "pipesched/core/action_text.hpp"
#include "pipesched/cuda/basic_nccl_executor.hpp"
#include "pipesched/cuda/launch.hpp"
#include "plan_support.hpp"

using namespace pipesched;
using namespace std::chrono_literals;

namespace {

template <class S> using nccl_ex = cuda::basic_nccl_executor<S, emu_nccl::runtime, emu_nccl::nccl>;
using checker = plan_test::checking_functor;

template <class S> void run_checked(int iterations, cuda::nccl_options o = {}) {
  emu_nccl::world w(S::ranks);
  o.slot_bytes = plan_test::stamp_bytes;
  if (o.deadline > 20s) o.deadline = 20s;
  std::vector<checker> fs(static_cast<std::size_t>(S::ranks));
  std::vector<int> largest(static_cast<std::size_t>(S::ranks), 0);
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    nccl_ex<S> ex(&c, r, o);
    checker& f = fs[static_cast<std::size_t>(r)];
    for (int it = 0; it < iterations; ++it) {
      f = checker{};
      f.salt = 100 + it;
      ex.run(f);
      INFO(plan_test::label<S>(), " iteration ", it, " rank ", r, ": ", f.first_problem);
      CHECK(f.mismatches == 0); // (no REQUIRE on a rank's thread: the others would wait for the deadline)
    }
    largest[static_cast<std::size_t>(r)] = ex.largest_group();
    CHECK(ex.iterations() == static_cast<std::size_t>(iterations));
  });
  for (int r = 0; r < S::ranks; ++r) {
    INFO(plan_test::label<S>(), " rank ", r);
    REQUIRE_MESSAGE(!errors[static_cast<std::size_t>(r)], emu_nccl::message_of(errors[static_cast<std::size_t>(r)]));
    checker const& f = fs[static_cast<std::size_t>(r)];
    std::vector<action> const want = plan_test::compute_list(S::make(), r);
    REQUIRE(f.calls == static_cast<int>(want.size()));
    bool in_order = true;
    for (std::size_t k = 0; k < want.size(); ++k) in_order = in_order && f.order[k] == want[k];
    CHECK(in_order);
    CHECK(largest[static_cast<std::size_t>(r)] <= o.max_group_ops);
  }
  // every edge carried its boundaries, each iteration, plus one warm-up boundary
  emu_nccl::expect_bytes_per_edge(w, S::make(), static_cast<std::size_t>(iterations), plan_test::stamp_bytes, o.warm_up,
                                  plan_test::label<S>());
  CHECK(w.size_mismatches == 0);
}

} // namespace

TEST_CASE("cuda.nccl_emulated.every_schedule.p4.m8") {
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) { run_checked<S>(2); }
  });
}

TEST_CASE("cuda.nccl_emulated.every_schedule.p3.m5") {
  plan_test::for_each_type(plan_test::training_schedules<3, 5>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) { run_checked<S>(2); }
  });
}

TEST_CASE("cuda.nccl_emulated.one_rank") {
  // one rank: no transfer at all, nothing to warm up
  using S = one_f_one_b<stages<1>, microbatches<4>>;
  run_checked<S>(2);
}

TEST_CASE("cuda.nccl_emulated.group_rounds") {
  // runs of transfers are grouped; a limit of one or two operations per group splits them
  // into rounds, against an emulator that refuses any larger group — the data stays right
  using S = zb_v<stages<4>, microbatches<8>>;
  int largest_default = 0;
  {
    emu_nccl::world w(4);
    std::vector<int> largest(4, 0);
    auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
      cuda::nccl_options o;
      o.slot_bytes = plan_test::stamp_bytes;
      nccl_ex<S> ex(&c, r, o);
      checker f;
      ex.run(f);
      CHECK(f.mismatches == 0);
      largest[static_cast<std::size_t>(r)] = ex.largest_group();
    });
    for (auto& e : errors) REQUIRE_MESSAGE(!e, emu_nccl::message_of(e));
    for (int l : largest) largest_default = l > largest_default ? l : largest_default;
  }
  CHECK(largest_default >= 2); // there are groups to split
  for (int limit : {1, 2}) {
    CAPTURE(limit);
    cuda::nccl_options o;
    o.max_group_ops = limit;
    run_checked<S>(1, o);
    // the emulator itself refuses groups over its limit
    emu_nccl::world w(4);
    w.max_group_ops = limit;
    auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
      nccl_ex<S> ex(&c, r, [&] {
        cuda::nccl_options x;
        x.slot_bytes = plan_test::stamp_bytes;
        x.max_group_ops = limit;
        return x;
      }());
      checker f;
      ex.run(f);
    });
    for (auto& e : errors) CHECK_MESSAGE(!e, emu_nccl::message_of(e));
  }
  {
    // a limit the executor does not respect is caught: emulator limit 1, executor 256
    emu_nccl::world w(4);
    w.max_group_ops = 1;
    auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
      cuda::nccl_options x;
      x.slot_bytes = plan_test::stamp_bytes;
      x.deadline = 3s;
      nccl_ex<S> ex(&c, r, x);
      checker f;
      ex.run(f);
    });
    int failed = 0;
    for (auto& e : errors) failed += e ? 1 : 0;
    CHECK(failed > 0);
  }
  cuda::nccl_options bad;
  bad.max_group_ops = 0;
  emu_nccl::world w(4);
  emu_nccl::comm c;
  c.w = &w;
  CHECK_THROWS_AS(nccl_ex<S>(&c, 0, bad), std::invalid_argument);
  CHECK_THROWS_AS(nccl_ex<S>(&c, 4, cuda::nccl_options{}), std::invalid_argument);
}

TEST_CASE("cuda.nccl_emulated.per_stage_sizes") {
  // 1F1B, 4 ranks, one stage each: edge r->r+1 carries m activations of stage r, edge
  // r+1->r m gradients of it; warm-up moves the largest boundary of each edge once
  using S = one_f_one_b<stages<4>, microbatches<6>>;
  std::vector<std::size_t> const act = {24, 40, 56, 16}, grad = {32, 48, 20, 16};
  emu_nccl::world w(4);
  std::vector<checker> fs(4);
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    cuda::nccl_options o;
    o.boundaries.activation = act;
    o.boundaries.gradient = grad;
    nccl_ex<S> ex(&c, r, o);
    fs[static_cast<std::size_t>(r)].salt = 7;
    ex.run(fs[static_cast<std::size_t>(r)]);
  });
  for (int r = 0; r < 4; ++r) {
    INFO("rank ", r, ": ", fs[static_cast<std::size_t>(r)].first_problem);
    REQUIRE_MESSAGE(!errors[static_cast<std::size_t>(r)], emu_nccl::message_of(errors[static_cast<std::size_t>(r)]));
    CHECK(fs[static_cast<std::size_t>(r)].mismatches == 0);
  }
  for (int r = 0; r + 1 < 4; ++r) {
    CAPTURE(r);
    CHECK(w.bytes_moved[static_cast<std::size_t>(r * 4 + r + 1)] == 6 * act[static_cast<std::size_t>(r)] + act[static_cast<std::size_t>(r)]);
    CHECK(w.bytes_moved[static_cast<std::size_t>((r + 1) * 4 + r)] == 6 * grad[static_cast<std::size_t>(r)] + grad[static_cast<std::size_t>(r)]);
  }
  CHECK(w.bytes_moved[0 * 4 + 2] == 0);
}

namespace {

/// A checking functor that throws, or stalls, at one forward pass.
struct faulty : checker {
  int fail_mb = -1;
  std::chrono::milliseconds stall{0};
  template <class St> void forward(St s, io const& x) {
    if (St::mb == fail_mb) {
      if (stall.count() == 0) throw std::runtime_error("injected failure in the stage functor");
      std::this_thread::sleep_for(stall);
    }
    checker::forward(s, x);
  }
};

struct outcome {
  std::vector<std::exception_ptr> errors;
  double seconds = 0;
};

template <class S, class Setup> outcome run_faulty(int iterations, cuda::nccl_options o, Setup setup) {
  emu_nccl::world w(S::ranks);
  o.slot_bytes = plan_test::stamp_bytes;
  auto const t0 = std::chrono::steady_clock::now();
  outcome out;
  out.errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    faulty f;
    setup(r, c, f);
    nccl_ex<S> ex(&c, r, o);
    for (int it = 0; it < iterations; ++it) {
      f.salt = it;
      ex.run(f);
    }
  });
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

using emu_nccl::expect_transport_error;
using emu_nccl::expect_transport_errors;
using emu_nccl::fresh_folder;

} // namespace

TEST_CASE("cuda.nccl_emulated.nvtx_ranges") {
  // nccl_options::nvtx: on each rank's thread, a profiler range around every pass's functor
  // call in its list order, named in PyTorch's syntax with the rank ("2F3 r1"), each
  // iteration; none without the option
  using S = zb_h1<stages<4>, microbatches<8>>;
  for (bool on : {true, false}) {
    CAPTURE(on);
    emu_support::clear_ranges();
    cuda::nccl_options o;
    o.nvtx = on;
    run_checked<S>(2, o);
    if (!on) {
      CHECK(emu_support::ranges().empty());
      continue;
    }
    std::map<std::thread::id, std::vector<std::string>> by_thread;
    for (auto const& e : emu_support::ranges()) by_thread[e.thread].push_back(e.text);
    CHECK(by_thread.size() == static_cast<std::size_t>(S::ranks));
    std::set<int> ranks_seen;
    for (auto const& [thread, got] : by_thread) {
      REQUIRE_FALSE(got.empty());
      int const r = std::stoi(got[0].substr(got[0].rfind(" r") + 2));
      ranks_seen.insert(r);
      std::vector<std::string> want;
      for (int it = 0; it < 2; ++it)
        for (action const& a : plan_test::compute_list(S::make(), r)) {
          want.push_back("+" + format_action(a) + " r" + std::to_string(r));
          want.push_back("-");
        }
      INFO("rank ", r);
      CHECK(got == want);
    }
    CHECK(ranks_seen.size() == static_cast<std::size_t>(S::ranks));
  }
}

TEST_CASE("cuda.nccl_emulated.failure.throwing_functor_middle_rank") {
  using S = one_f_one_b<stages<4>, microbatches<8>>;
  emu_nccl::scoped_board b("board_throw");
  cuda::nccl_options const o = b.options(10s);
  // rank 2 throws at the F of micro-batch 3 in the second iteration
  outcome const r = run_faulty<S>(2, o, [](int rank, emu_nccl::comm&, faulty& f) {
    if (rank == 2) f.fail_mb = 3;
  });
  // (fail_mb applies from the first iteration: both iterations have micro-batch 3)
  for (int k = 0; k < 4; ++k) {
    CAPTURE(k);
    std::exception_ptr const& err = r.errors[static_cast<std::size_t>(k)];
    if (k == 2) {
      REQUIRE(err);
      CHECK(emu_nccl::message_of(err) == "injected failure in the stage functor"); // the functor's own exception
      continue;
    }
    expect_transport_error(err, k, [&](cuda::transport_error const& e) {
      CHECK(e.rank == k);
      CHECK(e.failed_rank == 2);
      CHECK(!e.timed_out);
      CHECK((e.edge_from == k || e.edge_to == k));
      CHECK(std::string(e.what()).find("rank 2 failed: rank 2: F of stage 2, micro-batch 3 threw") != std::string::npos);
      CHECK(std::string(e.what()).find("on the edge") != std::string::npos);
    });
  }
  CHECK(r.seconds < 5.0); // within the deadline (10 s), in fact at once
  auto const note = b.board.poll();
  REQUIRE(note);
  CHECK(note->rank == 2);
}

TEST_CASE("cuda.nccl_emulated.failure.communicator_error") {
  // rank 1's third ncclGroupEnd fails: it names itself, the others name it
  using S = zb_h1<stages<4>, microbatches<6>>;
  emu_nccl::scoped_board b("board_comm");
  cuda::nccl_options const o = b.options(10s);
  outcome const r = run_faulty<S>(1, o, [](int rank, emu_nccl::comm& c, faulty&) {
    if (rank == 1) c.fail_group_end_at = 4 + 3; // its third group after its four warm-up groups (edges 0-1, 1-2)
  });
  expect_transport_errors(r.errors, 4, [](cuda::transport_error const& e, int k) {
    CHECK(e.failed_rank == 1);
    CHECK(std::string(e.what()).find("rank 1 failed: rank 1: ncclGroupEnd: internal error") != std::string::npos);
    if (k == 1) CHECK(e.code == emu_nccl::nccl::internal_error);
  });
  CHECK(r.seconds < 5.0);
}

TEST_CASE("cuda.nccl_emulated.failure.during_warm_up") {
  // rank 2's second warm-up group fails: its constructor aborts the communicator and throws;
  // every other rank ends with an exception too (at once, or at the deadline), none hangs
  using S = one_f_one_b<stages<4>, microbatches<4>>;
  emu_nccl::scoped_board b("board_warm");
  cuda::nccl_options const o = b.options(3s);
  outcome const r = run_faulty<S>(1, o, [](int rank, emu_nccl::comm& c, faulty&) {
    if (rank == 2) c.fail_group_end_at = 2;
  });
  expect_transport_errors(r.errors, 4, [](cuda::transport_error const& e, int) { CHECK(e.failed_rank == 2); });
  CHECK(r.seconds < 3.0 + 1.0);
}

TEST_CASE("cuda.nccl_emulated.failure.stall_deadline_no_board") {
  // rank 2 stalls 1.5 s in a pass; the deadline is 0.3 s; there is no failure board: every
  // rank ends with a transport_error, some by the deadline, and none names a failing rank
  using S = one_f_one_b<stages<4>, microbatches<6>>;
  cuda::nccl_options o;
  o.deadline = 300ms;
  outcome const r = run_faulty<S>(1, o, [](int rank, emu_nccl::comm&, faulty& f) {
    if (rank == 2) f.fail_mb = 2, f.stall = 1500ms;
  });
  int timed_out = 0;
  expect_transport_errors(r.errors, 4, [&](cuda::transport_error const& e, int) {
    timed_out += e.timed_out ? 1 : 0;
    CHECK(e.failed_rank == -1);
    CHECK(std::string(e.what()).find("the failing rank is unknown (no failure board given)") != std::string::npos);
    if (e.timed_out) CHECK(std::string(e.what()).find("the deadline of 300 ms passed") != std::string::npos);
  });
  CHECK(timed_out >= 1);
  CHECK(r.seconds < 1.5 + 1.0); // nobody waits longer than the stall plus a deadline
}

TEST_CASE("cuda.nccl_emulated.failure.no_run_after_abort") {
  using S = one_f_one_b<stages<2>, microbatches<2>>;
  emu_nccl::world w(2);
  auto errors = emu_nccl::run_ranks(w, [&](int r, emu_nccl::comm& c) {
    cuda::nccl_options o;
    o.slot_bytes = plan_test::stamp_bytes;
    o.deadline = 2s;
    nccl_ex<S> ex(&c, r, o);
    faulty f;
    if (r == 0) f.fail_mb = 1;
    CHECK_THROWS(ex.run(f));
    CHECK(ex.failed());
    CHECK_THROWS_AS(ex.run(f), std::logic_error);
  });
  for (auto& e : errors) CHECK_MESSAGE(!e, emu_nccl::message_of(e));
}

// ---- launch: environment variables and the shared-file bootstrap ---------------------

namespace {
struct fake_env {
  std::map<std::string, std::string> vars;
  char const* operator()(char const* name) const {
    auto const it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  }
};
std::string launch_message(fake_env const& env) {
  try {
    (void)cuda::launch_from_env(env);
  } catch (cuda::launch_error const& e) {
    return e.what();
  }
  return "(no error)";
}
} // namespace

TEST_CASE("cuda.launch.env") {
  {
    cuda::launch_info const i = cuda::launch_from_env(fake_env{{{"RANK", "5"}, {"WORLD_SIZE", "16"}, {"LOCAL_RANK", "1"}}});
    CHECK(i.rank == 5);
    CHECK(i.world_size == 16);
    CHECK(i.local_rank == 1);
    CHECK(std::string(i.source) == "torchrun");
  }
  {
    cuda::launch_info const i = cuda::launch_from_env(fake_env{
        {{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "3"}}});
    CHECK(i.rank == 3);
    CHECK(i.world_size == 8);
    CHECK(i.local_rank == 3);
    CHECK(std::string(i.source) == "Open MPI");
  }
  {
    cuda::launch_info const i =
        cuda::launch_from_env(fake_env{{{"SLURM_PROCID", "9"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"}}});
    CHECK(i.rank == 9);
    CHECK(i.world_size == 16);
    CHECK(i.local_rank == 1);
    CHECK(std::string(i.source) == "Slurm");
  }
  // torchrun under srun: torchrun's own variables win
  {
    cuda::launch_info const i = cuda::launch_from_env(fake_env{{{"SLURM_PROCID", "1"},
                                                                {"SLURM_NTASKS", "2"},
                                                                {"SLURM_LOCALID", "0"},
                                                                {"RANK", "6"},
                                                                {"WORLD_SIZE", "8"},
                                                                {"LOCAL_RANK", "2"}}});
    CHECK(i.rank == 6);
    CHECK(std::string(i.source) == "torchrun");
  }
  CHECK(launch_message(fake_env{{{"RANK", "1"}, {"WORLD_SIZE", "4"}}}).find("LOCAL_RANK is not set") !=
        std::string::npos);
  CHECK(launch_message(fake_env{{{"WORLD_SIZE", "4"}, {"LOCAL_RANK", "0"}}}).find("RANK is not set") !=
        std::string::npos);
  CHECK(launch_message(fake_env{{{"SLURM_PROCID", "x1"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"}}})
            .find("SLURM_PROCID=\"x1\" is not a non-negative integer") != std::string::npos);
  CHECK(launch_message(fake_env{{{"OMPI_COMM_WORLD_RANK", "4"},
                                 {"OMPI_COMM_WORLD_SIZE", "4"},
                                 {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}}})
            .find("OMPI_COMM_WORLD_RANK=4 is not below OMPI_COMM_WORLD_SIZE=4") != std::string::npos);
  CHECK(launch_message(fake_env{{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "2"}}})
            .find("LOCAL_RANK=2 is not below WORLD_SIZE=2") != std::string::npos);
  CHECK(launch_message(fake_env{{{"RANK", "0"}, {"WORLD_SIZE", "0"}, {"LOCAL_RANK", "0"}}}).find("WORLD_SIZE=0") !=
        std::string::npos);
  CHECK(launch_message(fake_env{{{"RANK", "-1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}}})
            .find("RANK=\"-1\" is not a non-negative integer") != std::string::npos);
  CHECK(launch_message(fake_env{{{"RANK", ""}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}}})
            .find("RANK is set but empty") != std::string::npos);
  CHECK(launch_message(fake_env{{{"RANK", "99999999999"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}}})
            .find("too large") != std::string::npos);
  CHECK(launch_message(fake_env{}).find("no launch variables found") != std::string::npos);
}

TEST_CASE("cuda.launch.id_file") {
  std::string const folder = fresh_folder("idfile");
  std::filesystem::create_directories(folder);
  std::string const path = folder + "/nccl_id";
  // a 128-byte id (like ncclUniqueId): rank 0 writes it late; three readers wait for it
  unsigned char id[128];
  for (int k = 0; k < 128; ++k) id[k] = static_cast<unsigned char>(k * 7 + 3);
  std::vector<std::vector<unsigned char>> got(4, std::vector<unsigned char>(128, 0));
  std::vector<std::string> errors(4);
  std::vector<std::thread> ts;
  for (int r = 0; r < 4; ++r)
    ts.emplace_back([&, r] {
      try {
        if (r == 0) {
          std::this_thread::sleep_for(100ms);
          std::memcpy(got[0].data(), id, 128);
        }
        cuda::exchange_id_file(path, r, got[static_cast<std::size_t>(r)].data(), 128, 5s);
      } catch (std::exception const& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  for (auto& t : ts) t.join();
  for (int r = 0; r < 4; ++r) {
    CAPTURE(r);
    CHECK(errors[static_cast<std::size_t>(r)] == "");
    CHECK(std::memcmp(got[static_cast<std::size_t>(r)].data(), id, 128) == 0);
  }
  // no temporary file is left behind
  int files = 0;
  for (auto const& e : std::filesystem::directory_iterator(folder)) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 1);
  // a missing file: the error names it, after the deadline
  unsigned char buf[128];
  auto const t0 = std::chrono::steady_clock::now();
  try {
    cuda::exchange_id_file(folder + "/absent", 1, buf, 128, 200ms);
    FAIL("no timeout");
  } catch (cuda::launch_error const& e) {
    CHECK(std::string(e.what()).find(folder + "/absent was not ready after 200 ms (no such file)") != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - t0 >= 200ms);
  // a file of the wrong size is not taken
  cuda::write_file_atomically(folder + "/short", id, 100);
  try {
    cuda::exchange_id_file(folder + "/short", 2, buf, 128, 100ms);
    FAIL("no timeout");
  } catch (cuda::launch_error const& e) {
    CHECK(std::string(e.what()).find("100 bytes instead of 128") != std::string::npos);
  }
  // the file board: notes from two ranks, the lowest rank's is reported; clear() empties it
  cuda::file_failure_board board(folder + "/board");
  CHECK(!board.poll());
  board.post({3, "rank 3: something"});
  board.post({1, "rank 1: multi\nline"});
  auto const n = board.poll();
  REQUIRE(n);
  CHECK(n->rank == 1);
  CHECK(n->what == "rank 1: multi\nline");
  board.clear();
  CHECK(!board.poll());
  std::filesystem::remove_all(folder);
}
