// The persistent kernel's protocol on the CPU: pipesched::cuda::run_rank_block — the code
// each block of the persistent kernel runs — on host threads (one per block of every rank's
// block group) over std::atomic_ref counters, with random yields and sleeps
// (tests/support/persistent_host.hpp). For every training schedule: every boundary a pass
// reads is the one its producer wrote this iteration (salted stamps), every rank's passes run
// in its list order, the counters end each iteration at exactly their per-iteration counts
// (recounted here from the lowered table), with one block per rank and with several; a
// deliberately slow rank changes nothing; an MLP trains to the last bit of the host backend;
// a functor failure and a deadline end every thread and name rank, pass and micro-batch, and
// the next iteration runs; a consumer that skips its waits is caught. Block partitions.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <future>
#include <tuple>
#include <utility>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "support/persistent_host.hpp"

#include "pipesched/host/executor.hpp"
#include "pipesched/schedules/dualpipe.hpp"
#include "pipesched/schedules/dualpipe_v.hpp"
#include "pipesched/schedules/forward_only.hpp"
#include "plan_mlp.hpp"
#include "plan_support.hpp"
#include "persistent_checks.hpp"

using namespace pipesched;

namespace {

using checker = plan_test::checking_functor;
using checking_device_functor = persistent_checks::checking_device_functor<checker>;
using pairing_device_functor = persistent_checks::pairing_device_functor<checker>;
using persistent_checks::slot_counts;
template <class S> slot_counts expected_counts() { return persistent_checks::recount(S::make()); }

/// Runs S `iterations` times with checking functors and checks every pass and counter.
/// `separate`: one state array per rank (the several-GPU layout): then each counter must sit
/// in the array of the rank that waits on it and nowhere else, and no block may load from
/// another rank's array.
template <class S, class Functor = checking_device_functor>
void run_checked(std::uint64_t seed, std::vector<int> groups, int slow_rank = -1, int iterations = 3,
                 bool separate = false) {
  using runner = emu_persistent::host_persistent<S>;
  typename runner::settings st;
  st.slot_bytes = plan_test::stamp_bytes;
  st.groups = groups;
  st.seed = seed;
  st.separate_memories = separate;
  runner ex(st);
  persistent_checks::run_checked_on<Functor>(ex, S::make(), plan_test::label<S>(), seed, groups, slow_rank, iterations);
}

} // namespace

TEST_CASE("cuda.persistent.protocol.counts_match_the_table") {
  // derive_persistent's per-slot counts equal a plain recount of the table; every SEND pushes
  // into the receiver's slot at the very write of it that is the matching RECV (same
  // boundary: direction, micro-batch, the sender as peer); only SENDs push, only RECVs pull.
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) {
    using P = cuda::persistent_protocol<S>;
    static_assert(P::valid);
    slot_counts const want = expected_counts<S>();
    REQUIRE(want.holds.size() == P::slots);
    for (std::size_t g = 0; g < want.holds.size(); ++g) {
      INFO(plan_test::label<S>(), " global slot ", g);
      CHECK(P::tables.occupancies[g] == want.holds[g]);
      CHECK(P::tables.fills[g] == want.recvs[g]);
      CHECK(P::tables.pushers[g] == want.senders[g]);
    }
    table const t = S::make();
    std::vector<std::size_t> offset(static_cast<std::size_t>(S::ranks) + 1, 0);
    for (int r = 0; r < S::ranks; ++r) offset[static_cast<std::size_t>(r) + 1] = offset[static_cast<std::size_t>(r)] + t.lists[static_cast<std::size_t>(r)].size();
    int pushes = 0;
    for (int q = 0; q < S::ranks; ++q)
      for (std::size_t i = 0; i < t.lists[static_cast<std::size_t>(q)].size(); ++i) {
        action const a = t.lists[static_cast<std::size_t>(q)][i];
        cuda::hand_off const h = P::tables.at[offset[static_cast<std::size_t>(q)] + i];
        INFO(plan_test::label<S>(), " rank ", q, " action ", i);
        CHECK((h.push_slot >= 0) == is_send(a.kind));
        CHECK((h.pull_slot >= 0) == is_recv(a.kind));
        if (!is_send(a.kind)) continue;
        int const r = a.peer;
        int const local = h.push_slot - static_cast<int>(P::slot_base(r));
        REQUIRE(local >= 0);
        REQUIRE(local < t.slot_count[static_cast<std::size_t>(r)]);
        // the push_after_frees-th write of that slot in the receiver's list
        std::uint32_t writes = 0;
        bool matched = false;
        for (action const b : t.lists[static_cast<std::size_t>(r)]) {
          if (b.out != local) continue;
          if (writes++ != h.push_after_frees) continue;
          matched = is_recv(b.kind) && b.peer == q && b.mb == a.mb && (a.kind == op::send_act) == (b.kind == op::recv_act);
          break;
        }
        CHECK(matched);
        ++pushes;
      }
    CHECK(pushes > 0);
  });
}

TEST_CASE("cuda.persistent.host_threads.every_schedule") {
  // every training schedule, p = 3 and 4, one block per rank and two or three per rank
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) {
      run_checked<S>(11, {});
      run_checked<S>(12, {2, 1, 3, 2});
    }
  });
  plan_test::for_each_type(plan_test::training_schedules<3, 5>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) { run_checked<S>(13, {2, 2, 2}); }
  });
}

TEST_CASE("cuda.persistent.host_threads.separate_memories.every_schedule") {
  // The several-GPU layout: one state array per rank; every schedule gives the same passes
  // on the same boundaries, every counter sits only where its waiter reads it, no block
  // loads from another rank's array (run_checked)
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) {
      run_checked<S>(51, {}, -1, 3, true);
      run_checked<S>(52, {2, 1, 3, 2}, -1, 3, true);
    }
  });
  plan_test::for_each_type(plan_test::training_schedules<3, 5>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) { run_checked<S>(53, {2, 2, 2}, -1, 3, true); }
  });
  run_checked<dualpipe<ranks<4>, microbatches<8>>>(54, {2, 1, 1, 2}, -1, 3, true);
  run_checked<dualpipe_v<ranks<4>, microbatches<8>>>(55, {1, 2, 2, 1}, -1, 3, true);
  run_checked<one_f_one_b<ranks<4>, microbatches<8>, extra_slots<1>>>(56, {2, 2, 1, 1}, -1, 3, true);
  run_checked<forward_only<ranks<4>, microbatches<6>>>(57, {1, 2, 1, 2}, -1, 3, true);
}

TEST_CASE("cuda.persistent.host_threads.separate_memories.slow_rank") {
  // a slow rank with separate memories: slot reuse waits for the (remote) frees, not timing
  run_checked<one_f_one_b<ranks<4>, microbatches<8>>>(61, {}, 2, 2, true);
  run_checked<zb_v<ranks<4>, microbatches<8>>>(62, {2, 1, 2, 1}, 0, 2, true);
}

TEST_CASE("cuda.persistent.host_threads.forward_only") {
  run_checked<forward_only<ranks<4>, microbatches<6>>>(21, {1, 2, 1, 2});
}

TEST_CASE("cuda.persistent.host_threads.dualpipe_and_extra_slots") {
  // DualPipe's two routes and overlapped pairs (run as their two halves), DualPipe-V, and a
  // round robin of extra slots (more occupancies per slot than the peak's assignment)
  run_checked<dualpipe<ranks<4>, microbatches<8>>>(22, {});
  run_checked<dualpipe<ranks<4>, microbatches<8>>>(23, {2, 1, 1, 2});
  run_checked<dualpipe_v<ranks<4>, microbatches<8>>>(24, {1, 2, 2, 1});
  run_checked<one_f_one_b<ranks<4>, microbatches<8>, extra_slots<1>>>(25, {2, 2, 1, 1});
  run_checked<zb_v<ranks<3>, microbatches<6>, extra_slots<2>>>(26, {});
}

TEST_CASE("cuda.persistent.host_threads.forward_backward_pairs") {
  // A functor with forward_backward gets each overlapped pair of DualPipe-V and DualPipe as
  // one call (counted against the pairs in the table), the boundaries and pass order as
  // before; one state array and one per rank, one block per rank and several
  using V = dualpipe_v<ranks<4>, microbatches<8>>;
  using D = dualpipe<ranks<4>, microbatches<8>>;
  run_checked<V, pairing_device_functor>(71, {}, -1, 3, false);
  run_checked<V, pairing_device_functor>(72, {2, 1, 2, 3}, -1, 3, true);
  run_checked<V, pairing_device_functor>(73, {1, 2, 1, 2}, 1, 2, true);
  run_checked<D, pairing_device_functor>(74, {2, 2, 1, 1}, -1, 3, true);
  run_checked<dualpipe_v<ranks<3>, microbatches<6>>, pairing_device_functor>(75, {2, 2, 2}, -1, 3, false);
}

namespace {

/// A checking functor of its own type per rank: records its tag at every pass and checks a
/// padding value of type Pad set on the host (so a functor read at a wrong offset, or the
/// wrong rank's type, shows).
template <int Tag, class Pad> struct tagged_functor : checking_device_functor {
  Pad pad = static_cast<Pad>(Tag * 11);
  int* seen = nullptr;
  int* bad = nullptr;
  template <class St> void forward(St s, io const& x, emu_persistent::group const& g) {
    note(g);
    checking_device_functor::forward(s, x, g);
  }
  template <class St> void backward(St s, io const& x, emu_persistent::group const& g) {
    note(g);
    checking_device_functor::backward(s, x, g);
  }

private:
  // block 0 notes (the group's blocks are threads here: one writer, as for the stamps)
  void note(emu_persistent::group const& g) const {
    if (g.block_rank() != 0) return;
    *seen = Tag;
    if (pad != static_cast<Pad>(Tag * 11)) ++*bad;
  }
};

} // namespace

TEST_CASE("cuda.persistent.functor_pack") {
  // offsets: each aligned for its type, in rank order, not overlapping; one type: r * size
  using T = std::tuple<char, double, short, long double>;
  using P = cuda::functor_pack<T, 4>;
  std::size_t const want[] = {0, 8, 16, 32}; // char at 0; double aligned to 8; short at 16; long double to 16
  for (int r = 0; r < 4; ++r) CHECK(P::offset(r) == want[r]);
  CHECK(P::bytes == 32 + sizeof(long double));
  CHECK(cuda::functor_pack<double, 3>::offset(2) == 16);
  CHECK(cuda::functor_pack<double, 3>::bytes == 24);
}

TEST_CASE("cuda.persistent.host_threads.per_rank_functor_types") {
  // 1F1B, p = 4, one functor type per rank (a tuple): each rank calls its own type, read from
  // its own place in the packed buffer; boundaries and pass order as with one type
  using S = one_f_one_b<ranks<4>, microbatches<8>>;
  for (bool const separate : {false, true}) {
    INFO("separate memories: ", separate);
    emu_persistent::host_persistent<S>::settings st;
    st.slot_bytes = plan_test::stamp_bytes;
    st.groups = {1, 2, 1, 2};
    st.separate_memories = separate;
    emu_persistent::host_persistent<S> ex(st);
    std::vector<checker> cs(S::ranks);
    int seen[4] = {}, bad = 0;
    std::tuple<tagged_functor<1, char>, tagged_functor<2, double>, tagged_functor<3, short>,
               tagged_functor<4, long long>>
        fs;
    [&]<int... R>(std::integer_sequence<int, R...>) {
      ((std::get<R>(fs).c = &cs[R], std::get<R>(fs).seen = &seen[R], std::get<R>(fs).bad = &bad), ...);
    }(std::make_integer_sequence<int, 4>{});
    ex.run(fs);
    for (int r = 0; r < S::ranks; ++r) {
      INFO("rank ", r);
      CHECK(seen[r] == r + 1);
      CHECK(cs[static_cast<std::size_t>(r)].mismatches == 0);
      CHECK(cs[static_cast<std::size_t>(r)].calls == static_cast<int>(plan_test::compute_list(S::make(), r).size()));
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("cuda.persistent.host_threads.slow_rank") {
  // one rank sleeps 300 us in every pass: counters, not timing, order the hand-offs
  run_checked<one_f_one_b<ranks<4>, microbatches<8>>>(31, {}, 1, 2);
  run_checked<zb_v<ranks<4>, microbatches<8>>>(32, {2, 2, 2, 2}, 3, 2);
  run_checked<interleaved_1f1b<ranks<3>, microbatches<6>, chunks<2>>>(33, {}, 0, 2);
}

namespace {

int mismatches_of(std::vector<checker> const& cs) {
  int n = 0;
  for (auto const& c : cs) n += c.mismatches;
  return n;
}

/// A consumer that skips its waits on the words [from, to) of its state reads boundaries
/// before they arrive (or overwrites them): with slow passes, the stamps show it.
template <class S> int mismatches_when_waits_lie(bool separate, std::size_t from, std::size_t to) {
  using runner = emu_persistent::host_persistent<S>;
  typename runner::settings st;
  st.slot_bytes = plan_test::stamp_bytes;
  st.separate_memories = separate;
  runner ex(st);
  ex.lie_from = from;
  ex.lie_to = to;
  std::vector<checker> cs(S::ranks);
  std::vector<checking_device_functor> fs(S::ranks);
  for (int r = 0; r < S::ranks; ++r) fs[static_cast<std::size_t>(r)] = {&cs[static_cast<std::size_t>(r)], 200};
  ex.run(fs);
  return mismatches_of(cs);
}

} // namespace

/// Whether a lying wait shows in any of `tries` runs: it shows only when the threads race, and
/// a loaded machine can run them one after the other (a single run missed it once in CI-like
/// load), so the check asks for at least one of several runs.
template <class S> bool lie_caught(bool separate, std::size_t from, std::size_t to, int tries = 8) {
  for (int t = 0; t < tries; ++t)
    if (mismatches_when_waits_lie<S>(separate, from, to) > 0) return true;
  return false;
}

TEST_CASE("cuda.persistent.host_threads.test_of_the_test") {
  // every `filled` counter claims to be reached: a consumer reads before the push arrives
  using S = one_f_one_b<ranks<4>, microbatches<8>>;
  cuda::persistent_layout l{S::ranks, static_cast<int>(cuda::persistent_protocol<S>::slots)};
  CHECK(lie_caught<S>(false, l.filled(0), l.filled(l.slots)));
  CHECK(lie_caught<S>(true, l.filled(0), l.filled(l.slots)));
  // every `freed` counter claims to be reached: a sender overwrites a boundary not yet read
  // (the zero-bubble schedules keep a boundary across several passes)
  using Z = zb_h1<ranks<4>, microbatches<8>>;
  cuda::persistent_layout z{Z::ranks, static_cast<int>(cuda::persistent_protocol<Z>::slots)};
  CHECK(lie_caught<Z>(true, z.freed(0), z.freed(z.slots)));
}

namespace {

using persistent_checks::mlp_device_functor;

template <class S> void train_equal_to_host(std::uint64_t seed) {
  constexpr int steps = 3;
  mlp::config c;
  c.layers = 12;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model host_model(c), piped(c);
  host::executor<S> hx({.slot_bytes = host_model.boundary_bytes()});
  std::vector<mlp::stage_functor> hf(S::ranks, mlp::stage_functor{&host_model});
  using runner = emu_persistent::host_persistent<S>;
  typename runner::settings st;
  st.slot_bytes = piped.boundary_bytes();
  st.groups.assign(S::ranks, 2);
  st.seed = seed;
  runner px(st);
  std::vector<mlp_device_functor> pf(S::ranks, mlp_device_functor{mlp::stage_functor{&piped}});
  for (int step = 0; step < steps; ++step) {
    hx.run(hf);
    double const want = host_model.apply_all();
    px.run(pf);
    double const got = piped.apply_all();
    INFO(plan_test::label<S>(), " step ", step);
    CHECK(got == want); // to the last bit: the same arithmetic in the same order
  }
  CHECK(piped.stale_inputs() == 0);
  CHECK(mlp::max_relative_difference(piped, host_model, 0, c.layers) == 0.0);
}

} // namespace

TEST_CASE("cuda.persistent.host_threads.mlp_equals_host_backend") {
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) { train_equal_to_host<S>(41); }
  });
}

namespace {

/// Fails (returns false) at one pass; sleeps `hold_ms` there first when asked.
struct failing_functor {
  checker* c = nullptr;
  op kind = op::backward;
  int stage = -1, mb = -1, hold_ms = 0;
  bool fail = true;
  template <class St> bool forward(St s, io const& x, emu_persistent::group const& g) { return pass(s, x, g); }
  template <class St> bool backward(St s, io const& x, emu_persistent::group const& g) { return pass(s, x, g); }
  template <class St> bool backward_input(St s, io const& x, emu_persistent::group const& g) { return pass(s, x, g); }
  template <class St> bool backward_weight(St s, io const& x, emu_persistent::group const& g) { return pass(s, x, g); }

private:
  template <class St> bool pass(St s, io const& x, emu_persistent::group const& g) {
    if (St::kind == kind && St::stage == stage && St::mb == mb) {
      if (hold_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
      if (fail) return false;
    }
    if (g.block_rank() == 0) {
      if (St::kind == op::forward) c->forward(s, x);
      else if (St::kind == op::backward) c->backward(s, x);
      else if (St::kind == op::backward_input) c->backward_input(s, x);
      else c->backward_weight(s, x);
    }
    return true;
  }
};

/// Runs one iteration that must fail: true when every block thread returned within 60 s
/// (no hang); `message` gets the error ("" when none was thrown).
template <class Runner, class F> bool fails_without_hang(Runner& ex, std::vector<F>& fs, std::string& message) {
  message.clear();
  auto f = std::async(std::launch::async, [&] {
    try {
      ex.run(fs);
    } catch (std::runtime_error const& e) {
      message = e.what();
    }
  });
  return f.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
}

} // namespace

TEST_CASE("cuda.persistent.host_threads.functor_failure") {
  // Rank 2's B of micro-batch 3 fails mid-iteration: every block thread returns (no hang),
  // the error names rank, pass, stage and micro-batch; the next iteration runs cleanly. With
  // one state array and with one per rank (the abort reaches every rank's own flag).
  for (bool const separate : {false, true}) {
    INFO("separate memories: ", separate);
    using S = one_f_one_b<ranks<4>, microbatches<8>>;
    using runner = emu_persistent::host_persistent<S>;
    runner::settings st;
    st.slot_bytes = plan_test::stamp_bytes;
    st.groups = {1, 2, 2, 1};
    st.separate_memories = separate;
    runner ex(st);
    std::vector<checker> cs(S::ranks);
    std::vector<failing_functor> fs(S::ranks);
    for (int r = 0; r < S::ranks; ++r) fs[static_cast<std::size_t>(r)] = {&cs[static_cast<std::size_t>(r)], op::backward, 2, 3};
    std::string message;
    REQUIRE(fails_without_hang(ex, fs, message));
    CHECK(message.find("rank 2") != std::string::npos);
    CHECK(message.find("B of stage 2, micro-batch 3") != std::string::npos);
    CHECK(message.find("reported a failure") != std::string::npos);
    // where the others stopped: each of ranks 0, 1 and 3 needs something that passes through
    // rank 2 later in the iteration (closed form: rank 3 needs F of micro-batch 7 from rank 2,
    // which 1F1B runs after B of micro-batch 3 there; ranks 0 and 1 need B of micro-batch 3),
    // so each stopped in a wait and none finished
    for (int r : {0, 1, 3}) CHECK(message.find("rank " + std::to_string(r) + " stopped at ") != std::string::npos);
    CHECK(message.find("rank 2 stopped") == std::string::npos);
    CHECK(message.find("finished") == std::string::npos);
    // usable again
    for (auto& f : fs) f.fail = false;
    for (auto& c : cs) c = checker{};
    ex.run(fs);
    CHECK(mismatches_of(cs) == 0);
    for (int r = 0; r < S::ranks; ++r) CHECK(ex.word(ex.layout().epoch(r), r) == 1); // the state was reset
    CHECK(ex.remote_loads() == 0);
  }
}

TEST_CASE("cuda.persistent.host_threads.deadline") {
  // Rank 0 holds its F of micro-batch 0 for 400 ms; waits have a 50 ms deadline: rank 1,
  // waiting for that boundary, gives up, the iteration ends on every thread, the error says
  // which wait; the next iteration runs. With one state array and with one per rank.
  for (bool const separate : {false, true}) {
    INFO("separate memories: ", separate);
    using S = gpipe<ranks<2>, microbatches<4>>;
    using runner = emu_persistent::host_persistent<S>;
    runner::settings st;
    st.slot_bytes = plan_test::stamp_bytes;
    st.wait_ns = 50'000'000;
    st.separate_memories = separate;
    runner ex(st);
    std::vector<checker> cs(S::ranks);
    std::vector<failing_functor> fs(S::ranks);
    for (int r = 0; r < S::ranks; ++r) {
      fs[static_cast<std::size_t>(r)] = {&cs[static_cast<std::size_t>(r)], op::forward, 0, 0, 400};
      fs[static_cast<std::size_t>(r)].fail = false;
    }
    std::string message;
    REQUIRE(fails_without_hang(ex, fs, message));
    CHECK(message.find("deadline") != std::string::npos);
    CHECK(message.find("rank 1 (RECV_F of stage 1, micro-batch 0)") != std::string::npos);
    CHECK(message.find("filled: needed 1, saw 0") != std::string::npos);
    CHECK(message.find("rank 0 stopped at ") != std::string::npos); // after its hold, at its next unmet wait
    fs[0].hold_ms = 0;
    for (auto& c : cs) c = checker{};
    ex.run(fs);
    CHECK(mismatches_of(cs) == 0);
  }
}

namespace {

/// One iteration of S in which F of (stage `stage`, micro-batch 0) fails on that stage's rank:
/// returns the message; then a clean iteration runs with every stop record reset.
template <class S> std::string message_of_failed_forward(bool separate, int stage) {
  using runner = emu_persistent::host_persistent<S>;
  typename runner::settings st;
  st.slot_bytes = plan_test::stamp_bytes;
  st.separate_memories = separate;
  runner ex(st);
  std::vector<checker> cs(S::ranks);
  std::vector<failing_functor> fs(S::ranks);
  for (int r = 0; r < S::ranks; ++r) fs[static_cast<std::size_t>(r)] = {&cs[static_cast<std::size_t>(r)], op::forward, stage, 0};
  std::string message;
  REQUIRE(fails_without_hang(ex, fs, message));
  if (!separate) MESSAGE(message);
  for (auto& f : fs) f.fail = false;
  for (auto& c : cs) c = checker{};
  ex.run(fs);
  CHECK(mismatches_of(cs) == 0);
  for (int r = 0; r < S::ranks; ++r) CHECK(ex.word(ex.layout().stopped(r)) == 0); // reset with the state
  return message;
}

} // namespace

TEST_CASE("cuda.persistent.host_threads.where_each_rank_stopped") {
  // The failure message says where every other rank stopped. Closed forms from the lists:
  // (a) 1F1B, p = 2, m = 1: rank 0 runs F0, SEND_F0, RECV_B0, B0; rank 1's F0 fails, so rank
  //     0's SEND needs no wait (the receiving slot held nothing yet) and its RECV_B0 waits for
  //     the first fill of its slot this iteration: needed 1, saw 0.
  // (b) forward-only, p = 3, m = 1: ranks 0 and 1 forward and send (no wait is unmet), rank
  //     2's F0 fails: ranks 0 and 1 finished their lists.
  for (bool const separate : {false, true}) {
    INFO("separate memories: ", separate);
    std::string const a = message_of_failed_forward<one_f_one_b<ranks<2>, microbatches<1>>>(separate, 1);
    INFO(a);
    CHECK(a.find("rank 1 (F of stage 1, micro-batch 0): the stage functor reported a failure") != std::string::npos);
    CHECK(a.find("; rank 0 stopped at RECV_B of stage 0, micro-batch 0, waiting for global slot ") != std::string::npos);
    CHECK(a.find(" filled (needed 1, saw 0)") != std::string::npos);
    CHECK(a.find("finished") == std::string::npos);
    std::string const b = message_of_failed_forward<forward_only<ranks<3>, microbatches<1>>>(separate, 2);
    INFO(b);
    CHECK(b.find("rank 2 (F of stage 2, micro-batch 0)") != std::string::npos);
    CHECK(b.find("; finished their lists: ranks 0, 1") != std::string::npos);
    CHECK(b.find("stopped at") == std::string::npos);
  }
}

TEST_CASE("cuda.persistent.block_partition") {
  // every rank at least one block, the sum exact, each share within one block of its
  // proportional part of the blocks beyond the first per rank
  for (int ranks = 1; ranks <= 9; ++ranks)
    for (int total = ranks; total <= 140; total += 7) {
      std::vector<double> w(static_cast<std::size_t>(ranks));
      for (int r = 0; r < ranks; ++r) w[static_cast<std::size_t>(r)] = 1.0 + (r * 37 % 11);
      double sum = 0;
      for (double x : w) sum += x;
      std::vector<int> const g = cuda::share_blocks(total, ranks, w);
      int got = 0;
      for (int r = 0; r < ranks; ++r) {
        INFO("ranks ", ranks, " total ", total, " rank ", r);
        CHECK(g[static_cast<std::size_t>(r)] >= 1);
        double const ideal = 1 + w[static_cast<std::size_t>(r)] / sum * (total - ranks);
        CHECK(std::abs(g[static_cast<std::size_t>(r)] - ideal) < 1.0);
        got += g[static_cast<std::size_t>(r)];
      }
      CHECK(got == total);
    }
  CHECK(cuda::share_blocks(8, 4, {}) == std::vector<int>{2, 2, 2, 2});
  CHECK(cuda::share_blocks(7, 2, {1, 0}) == std::vector<int>{6, 1});
  CHECK_THROWS_WITH_AS(cuda::share_blocks(3, 4, {}), doctest::Contains("4 ranks need at least 4 resident blocks"),
                       std::invalid_argument);
  CHECK_THROWS_AS(cuda::share_blocks(8, 4, {1, 2}), std::invalid_argument);
  CHECK_THROWS_WITH_AS(cuda::check_block_groups({2, 0, 1}, 3, 10), doctest::Contains("rank 1 is given no block"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(cuda::check_block_groups({4, 4, 4}, 3, 10), doctest::Contains("only 10 can be resident"),
                       std::invalid_argument);
  // the schedule's own pass costs as weights: 1F1B's ranks all do the same work
  using S = one_f_one_b<ranks<4>, microbatches<8>>;
  for (int r = 0; r < 4; ++r) CHECK(cuda::persistent_protocol<S>::rank_cost(r) == 8 * (1.0 + 2.0));
}

namespace {

/// Calls the group barrier inside every pass; block 1 holds its F of micro-batch 0 first.
struct barrier_functor {
  int hold_ms = 0;
  int syncs_failed = 0;
  template <class St> bool forward(St, io const&, emu_persistent::group const& g) {
    if (St::mb == 0 && g.block_rank() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
    return g.sync();
  }
  template <class St> bool backward(St, io const&, emu_persistent::group const& g) { return g.sync(); }
};

} // namespace

TEST_CASE("cuda.persistent.host_threads.deadline_in_a_group_barrier") {
  // One rank, two blocks: block 1 holds 400 ms inside its F of micro-batch 0 before the
  // group barrier the pass calls; block 0 waits there past the 50 ms deadline: the error names
  // the pass and the barrier, every thread returns, the next iteration runs.
  using S = gpipe<ranks<1>, microbatches<2>>;
  using runner = emu_persistent::host_persistent<S>;
  runner::settings st;
  st.slot_bytes = 64;
  st.groups = {2};
  st.wait_ns = 50'000'000;
  runner ex(st);
  std::vector<barrier_functor> fs(1, barrier_functor{400});
  std::string message;
  REQUIRE(fails_without_hang(ex, fs, message));
  CHECK(message.find("rank 0 (F of stage 0, micro-batch 0)") != std::string::npos);
  CHECK(message.find("rank 0's group barrier") != std::string::npos);
  fs[0].hold_ms = 0;
  ex.run(fs);
  CHECK(ex.word(ex.layout().epoch(0)) == 1);
  CHECK(ex.word(ex.layout().barrier(0)) % 2 == 0);
}
