// Verification: each check fires on a table built to break it, and passes on valid ones.
// The expected values are error codes of hand-built tables; the numbers in them are inputs,
// except where a comment names the source of the number a case relies on.
#include <doctest/doctest.h>

#include "pipesched/pipeline/verify.hpp"
#include "pipesched/analysis/csv.hpp"
#include "pipesched/pipeline/lower.hpp"
#include "pipesched/schedules/gpipe.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"

using namespace pipesched;

namespace {
errc code_of(std::string_view text) {
  table t = from_csv(text);
  REQUIRE(t.ok());
  return verify(t).code;
}
} // namespace

TEST_CASE("verify.valid.one_f_one_b.p2.m2") { CHECK(code_of("0F0,0F1,0B0,0B1\n1F0,1B0,1F1,1B1") == errc::ok); }

TEST_CASE("verify.missing_pass") {
  CHECK(code_of("0F0,0F1,0B0\n1F0,1B0,1F1,1B1") == errc::missing_pass);
  CHECK(code_of("0F0,0F1,0I0,0I1,0W1\n1F0,1B0,1F1,1B1") == errc::missing_pass); // I without W
}

TEST_CASE("verify.duplicate_pass") { CHECK(code_of("0F0,0F0,0B0\n1F0,1B0") == errc::duplicate_pass); }

TEST_CASE("verify.mixed_backward") { CHECK(code_of("0F0,0B0,0W0\n1F0,1B0") == errc::mixed_backward); }

TEST_CASE("verify.backward_before_forward") { CHECK(code_of("0B0,0F0\n1F0,1B0") == errc::backward_before_forward); }

TEST_CASE("verify.weight_before_input") { CHECK(code_of("0F0,0W0,0I0\n1F0,1B0") == errc::weight_before_input); }

TEST_CASE("verify.cyclic_wait") {
  // rank 1 waits for micro-batch 1, which rank 0 runs only after micro-batch 0's backward,
  // which needs rank 1's backward of micro-batch 0, which rank 1 runs after micro-batch 1
  table t = from_csv("0F0,0B0,0F1,0B1\n1F1,1F0,1B0,1B1");
  diagnostic d = verify(t);
  CHECK(d.code == errc::cyclic_wait);
  CHECK(d.rank >= 0);
  CHECK(!lower(t).ok());
}

TEST_CASE("verify.wrong_rank") {
  table t = from_csv("0F0,0B0\n1F0,1B0");
  REQUIRE(t.ok());
  t.lists[1].push_back(make_action(op::forward, 0, 0));
  CHECK(verify(t).code == errc::wrong_rank);
}

TEST_CASE("verify.out_of_range") {
  table t = from_csv("0F0,0B0\n1F0,1B0");
  t.lists[0].push_back(make_action(op::forward, 0, 5));
  CHECK(verify(t).code == errc::microbatch_out_of_range);
}

TEST_CASE("verify.transfer_mismatch") {
  // rank 1 posts the receives of micro-batches 0 and 1 in the opposite order
  table t = from_csv("0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0B0,0RECV_B1,0B1\n"
                          "1RECV_F1,1RECV_F0,1F0,1B0,1SEND_B0,1F1,1B1,1SEND_B1");
  REQUIRE(t.ok());
  CHECK(t.lowered);
  CHECK(verify(t).code == errc::transfer_mismatch);
}

TEST_CASE("verify.transfer_deadlock") {
  // both ranks block in a receive: rank 0 waits for a gradient before sending its activation
  table t = from_csv("0F0,0RECV_B0,0SEND_F0,0B0\n1RECV_F0,1F0,1B0,1SEND_B0");
  REQUIRE(t.ok());
  CHECK(verify(t).code == errc::transfer_deadlock);
}

TEST_CASE("verify.missing_recv") {
  table t = from_csv("0F0,0SEND_F0,0RECV_B0,0B0\n1F0,1RECV_F0,1B0,1SEND_B0");
  REQUIRE(t.ok());
  CHECK(verify(t).code == errc::missing_recv);
}

TEST_CASE("verify.memory_bound") {
  table t = gpipe_family::generate({4, 8});
  CHECK(verify(t).ok());
  // gpipe holds all 8 micro-batches (reference: schedules.md, GPipe: "Memory: m on every rank"),
  // so a bound of 7 chunk-activations must be exceeded
  t.memory_bound_chunks = 7; // gpipe holds all 8 micro-batches
  diagnostic d = verify(t);
  CHECK(d.code == errc::memory_bound_exceeded);
}

TEST_CASE("verify.naive_lowering_deadlocks") {
  // The reference: receiving just before use and sending just after producing deadlocks
  // 1F1B with blocking transfers. Our global-sweep lowering must not.
  // (reference: schedules.md, "Checking a schedule", item 3: "A naive lowering ... deadlocks
  // even 1F1B when transfers are unbatched"; here p = 4, ranks 0..3, peers r ± 1)
  table t = one_f_one_b_family::generate({4, 8});
  table naive = t;
  for (auto& l : naive.lists) l.clear();
  for (int r = 0; r < 4; ++r)
    for (action const& a : t.lists[static_cast<std::size_t>(r)]) {
      auto& l = naive.lists[static_cast<std::size_t>(r)];
      if (a.kind == op::forward && r > 0) {
        action rv = make_action(op::recv_act, a.stage, a.mb);
        rv.peer = static_cast<std::uint16_t>(r - 1);
        l.push_back(rv);
      }
      if (a.kind == op::backward && r < 3) {
        action rv = make_action(op::recv_grad, a.stage, a.mb);
        rv.peer = static_cast<std::uint16_t>(r + 1);
        l.push_back(rv);
      }
      l.push_back(a);
      if (a.kind == op::forward && r < 3) {
        action sd = make_action(op::send_act, a.stage, a.mb);
        sd.peer = static_cast<std::uint16_t>(r + 1);
        l.push_back(sd);
      }
      if (a.kind == op::backward && r > 0) {
        action sd = make_action(op::send_grad, a.stage, a.mb);
        sd.peer = static_cast<std::uint16_t>(r - 1);
        l.push_back(sd);
      }
    }
  naive.lowered = true;
  CHECK(verify(naive).code == errc::transfer_deadlock);
  CHECK(verify(lower(t)).ok());
}
