// The CUDA stream program, proven on the CPU: for every registered schedule over a sweep of
// sizes, in both transfer modes, the derived program passes the happens-before model; hand-
// broken programs (a wait removed, a record moved after its wait, a rewrite unguarded, an
// action dropped or repeated, passes reordered, a rendezvous cycle) are each rejected with
// their reason.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/pipeline/lower.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/registry.hpp"
#include "pipesched/schedules/skip_paths.hpp"

using namespace pipesched;
using cuda::stream_op;
using cuda::stream_op_kind;
using cuda::stream_program;
using cuda::transfer_mode;

namespace {

table lowered(char const* name, int p, int m, int v = 0) {
  params pr{p, m, v};
  return make_schedule(name, pr);
}

std::string describe(diagnostic const& d) { return to_string(d); }

/// The index of the first op matching `pred`, or -1.
template <class Pred> int find_op(stream_program const& prog, Pred pred) {
  for (std::size_t g = 0; g < prog.ops.size(); ++g)
    if (pred(prog.ops[g])) return static_cast<int>(g);
  return -1;
}

/// Whether event e is a slot's `written` event (else its `released` event).
bool is_written(stream_program const& prog, int e) {
  for (int r = 0; r < prog.ranks; ++r)
    if (e >= prog.event_base[r] && e < prog.event_base[r + 1])
      return e - prog.event_base[r] < (prog.event_base[r + 1] - prog.event_base[r]) / 2;
  return false;
}

stream_program without(stream_program prog, int g) {
  prog.ops.erase(prog.ops.begin() + g);
  return prog;
}

} // namespace

TEST_CASE("cuda.stream_program.every_schedule.sweep") {
  // Independent check: the model (verify_stream_program) against the derivation, for
  // every family, p 1..6, m 1..9, both modes. Each derived program also runs every action
  // once (the model checks it) and has as many exec ops as compute passes.
  int programs = 0, pairs = 0;
  for (auto const& e : schedule_registry)
    for (int p = 1; p <= 6; ++p)
      for (int m = 1; m <= 9; m += (m < 4 ? 1 : 2)) {
        params pr{p, m};
        if (e.check(pr)) continue;
        table t = make_schedule(e.name, pr);
        if (!t.ok()) continue;
        REQUIRE(verify(t).ok());
        for (transfer_mode mode : {transfer_mode::copy, transfer_mode::rendezvous}) {
          INFO(e.name, " p", p, " m", m, mode == transfer_mode::copy ? " copy" : " rendezvous");
          stream_program const prog = cuda::derive_stream_program(t, mode, pr.cost);
          REQUIRE_MESSAGE(prog.ok(), describe(prog.error));
          diagnostic const d = cuda::verify_stream_program(t, prog);
          CHECK_MESSAGE(d.ok(), describe(d));
          // the compiler's stricter one-hop check accepts it too
          diagnostic const c = cuda::check_stream_order(t, prog);
          CHECK_MESSAGE(c.ok(), describe(c));
          std::size_t execs = 0, compute = 0;
          for (stream_op const& o : prog.ops) execs += o.kind == stream_op_kind::exec ? 1 : 0;
          for (auto const& list : t.lists)
            for (action const& a : list) compute += is_compute(a.kind) ? 1 : 0;
          CHECK(execs == compute);
          // an overlapped pair is one stretch of its compute stream: nothing between its two
          // execs there (so an executor may run both as one forward_backward call)
          for (int r = 0; r < t.ranks; ++r) {
            std::vector<stream_op> on;
            for (stream_op const& o : prog.ops)
              if (o.stream == cuda::compute_stream(r)) on.push_back(o);
            auto const& list = t.lists[static_cast<std::size_t>(r)];
            for (std::size_t k = 0; k < on.size(); ++k) {
              if (on[k].kind != stream_op_kind::exec || !overlaps_next(list[on[k].action])) continue;
              CHECK(k + 1 < on.size());
              if (k + 1 >= on.size()) continue;
              CHECK(on[k + 1].kind == stream_op_kind::exec);
              CHECK(on[k + 1].action == on[k].action + 1);
              ++pairs;
            }
          }
          ++programs;
        }
      }
  CHECK(programs > 300);
  CHECK(pairs > 0); // DualPipe and DualPipe-V have pairs
}

TEST_CASE("cuda.stream_program.skip_paths") {
  // skip routes (a micro-batch skips stages; SkipPipe): both modes pass the model.
  skip_config c;
  c.stages = 6;
  c.keep = 4;
  c.microbatches = 6;
  table const compute = make_skip(c);
  REQUIRE_MESSAGE(compute.ok(), describe(compute.error));
  table const t = lower(compute, c.costs);
  REQUIRE_MESSAGE(verify(t).ok(), describe(verify(t)));
  for (transfer_mode mode : {transfer_mode::copy, transfer_mode::rendezvous}) {
    stream_program const prog = cuda::derive_stream_program(t, mode);
    REQUIRE(prog.ok());
    diagnostic const d = cuda::verify_stream_program(t, prog);
    CHECK_MESSAGE(d.ok(), describe(d));
  }
}

TEST_CASE("cuda.stream_program.copy_mode_shape.1f1b.p2.m2") {
  // 1F1B on 2 ranks, 2 micro-batches, copy mode, worked by hand from the lowered lists:
  //   rank 0: F0 SEND_F0 F1 SEND_F1 RECV_B0 B0 RECV_B1 B1
  //   rank 1: RECV_F0 F0 B0 SEND_B0 RECV_F1 F1 B1 SEND_B1
  // Every boundary crosses once each way: 4 copies, each on the receiver's comm stream (1
  // or 3); every copy waits for its producer's `written` event; each consumer pass waits
  // for the copy's `written` event just before it runs.
  table t = lowered("1f1b", 2, 2);
  stream_program const prog = cuda::derive_stream_program(t, transfer_mode::copy);
  REQUIRE(prog.ok());
  int copies = 0;
  for (std::size_t g = 0; g < prog.ops.size(); ++g) {
    stream_op const& o = prog.ops[g];
    if (o.kind != stream_op_kind::copy) continue;
    ++copies;
    CHECK(o.stream == cuda::comm_stream(o.rank));
    // the op before the copy (or the one before that) waits on the sender's written event
    bool waits_for_data = false;
    for (std::size_t h = g >= 2 ? g - 2 : 0; h < g; ++h)
      waits_for_data = waits_for_data || (prog.ops[h].kind == stream_op_kind::wait && prog.ops[h].stream == o.stream);
    CHECK(waits_for_data);
  }
  CHECK(copies == 4);
  // consumer waits come right before their exec, on the compute stream
  for (std::size_t g = 0; g + 1 < prog.ops.size(); ++g) {
    stream_op const& o = prog.ops[g];
    if (o.kind == stream_op_kind::wait && o.stream % 2 == 0) {
      std::size_t h = g + 1;
      while (prog.ops[h].kind == stream_op_kind::wait) ++h;
      CHECK(prog.ops[h].kind == stream_op_kind::exec);
      CHECK(prog.ops[h].stream == o.stream);
    }
  }
  CHECK(cuda::verify_stream_program(t, prog).ok());
}

namespace {
/// The full model's verdict, after checking that the compiler's one-hop check rejects the
/// program too (it is stricter: whatever the model rejects, it rejects).
diagnostic both(table const& t, stream_program const& prog) {
  diagnostic const full = cuda::verify_stream_program(t, prog);
  diagnostic const hop = cuda::check_stream_order(t, prog);
  CHECK_MESSAGE(!hop.ok(), "the one-hop check accepted what the model rejects: " << describe(full));
  return full;
}
} // namespace

TEST_CASE("cuda.stream_program.broken_programs_rejected") {
  table t = lowered("1f1b", 4, 8);
  stream_program const good = cuda::derive_stream_program(t, transfer_mode::copy);
  REQUIRE(good.ok());
  REQUIRE(cuda::verify_stream_program(t, good).ok());
  REQUIRE(cuda::check_stream_order(t, good).ok());

  SUBCASE("a consumer's wait for its received boundary removed") {
    int g = find_op(good, [&](stream_op const& o) {
      return o.kind == stream_op_kind::wait && o.stream % 2 == 0 && is_written(good, o.event);
    });
    REQUIRE(g >= 0);
    diagnostic d = both(t, without(good, g));
    CHECK(d.code == errc::program_unordered_read);
    CHECK(d.rank >= 0);
    CHECK(d.position >= 0);
  }
  SUBCASE("a copy's wait for the producer removed") {
    // the first wait on a comm stream for a `written` event (of the sender's slot)
    int g = find_op(good, [&](stream_op const& o) {
      return o.kind == stream_op_kind::wait && o.stream % 2 == 1 && is_written(good, o.event);
    });
    REQUIRE(g >= 0);
    diagnostic d = both(t, without(good, g));
    CHECK(d.code == errc::program_unordered_read);
    CHECK(std::string(d.detail) == "the transfer reads its boundary before it is written");
  }
  SUBCASE("a record moved after the wait that needs it: the wait waits for nothing") {
    int w = find_op(good, [&](stream_op const& o) {
      return o.kind == stream_op_kind::wait && o.stream % 2 == 0 && is_written(good, o.event);
    });
    REQUIRE(w >= 0);
    int rec = -1;
    for (int g = w - 1; g >= 0 && rec < 0; --g)
      if (good.ops[g].kind == stream_op_kind::record && good.ops[g].event == good.ops[w].event) rec = g;
    REQUIRE(rec >= 0);
    stream_program broken = good;
    stream_op const moved = broken.ops[rec];
    broken.ops.erase(broken.ops.begin() + rec);
    broken.ops.insert(broken.ops.begin() + w, moved); // now right after the wait
    diagnostic d = both(t, broken);
    CHECK(d.code == errc::program_unordered_read);
  }
  SUBCASE("a slot's rewrite no longer waits for the send of its previous boundary") {
    // a `released` wait on a compute stream: the next write into a slot whose boundary was
    // sent (the copy ran on the peer's stream)
    int g = find_op(good, [&](stream_op const& o) {
      return o.kind == stream_op_kind::wait && o.stream % 2 == 0 && !is_written(good, o.event);
    });
    REQUIRE(g >= 0);
    diagnostic d = both(t, without(good, g));
    CHECK(d.code == errc::program_unordered_rewrite);
    CHECK(std::string(d.detail) == "rewrites a slot while its previous boundary may still be read or sent");
  }
  SUBCASE("an action dropped, or run twice") {
    int g = find_op(good, [](stream_op const& o) { return o.kind == stream_op_kind::exec; });
    CHECK(both(t, without(good, g)).code == errc::program_malformed);
    stream_program twice = good;
    twice.ops.push_back(good.ops[static_cast<std::size_t>(g)]);
    CHECK(both(t, twice).code == errc::program_malformed);
  }
  SUBCASE("two passes of a rank swapped") {
    stream_program broken = good;
    int a = -1, b = -1;
    for (std::size_t g = 0; g < broken.ops.size(); ++g) {
      if (broken.ops[g].kind != stream_op_kind::exec || broken.ops[g].rank != 3) continue;
      if (a < 0) a = static_cast<int>(g);
      else if (b < 0) b = static_cast<int>(g);
    }
    REQUIRE(b > a);
    std::swap(broken.ops[static_cast<std::size_t>(a)], broken.ops[static_cast<std::size_t>(b)]);
    diagnostic d = both(t, broken);
    CHECK(d.code == errc::program_malformed);
    CHECK(std::string(d.detail) == "a rank's passes out of its list order");
  }
}

TEST_CASE("cuda.stream_program.rendezvous_cycle_rejected") {
  // Rendezvous mode, 1F1B p2 m1: rank 0's comm stream runs SEND_F0 then RECV_B0, rank 1's
  // RECV_F0 then SEND_B0. Moving rank 0's RECV_B0 before its SEND_F0 makes each comm
  // stream wait for the other's second op: a cycle, which the model reports as a hang.
  table t = lowered("1f1b", 2, 1);
  stream_program const good = cuda::derive_stream_program(t, transfer_mode::rendezvous);
  REQUIRE(good.ok());
  REQUIRE(cuda::verify_stream_program(t, good).ok());
  int send = find_op(good, [](stream_op const& o) { return o.kind == stream_op_kind::send && o.rank == 0; });
  int recv = find_op(good, [](stream_op const& o) { return o.kind == stream_op_kind::recv && o.rank == 0; });
  REQUIRE(send >= 0);
  REQUIRE(recv > send);
  stream_program broken = good;
  stream_op const moved = broken.ops[static_cast<std::size_t>(recv)];
  broken.ops.erase(broken.ops.begin() + recv);
  broken.ops.insert(broken.ops.begin() + send, moved);
  diagnostic d = both(t, broken);
  CHECK(d.code == errc::program_hang);
  CHECK(d.rank >= 0);
}

TEST_CASE("cuda.stream_program.rendezvous_ops_stay_on_their_rank") {
  // A rendezvous program runs one process per rank: every op on its own rank's streams, every
  // wait on a record of its own rank's streams. An op handed to another rank, or a wait that
  // names another rank's stream (before any record of its event, where the latest-record
  // rule has nothing to compare), is refused with its reason; the NCCL executors index their
  // events by it. (The model's rule, for programs given at run time: the compiler derives its
  // own programs rank by rank, and its one-hop check does not look at the mode.)
  table t = lowered("1f1b", 4, 8);
  stream_program const good = cuda::derive_stream_program(t, transfer_mode::rendezvous);
  REQUIRE(good.ok());
  REQUIRE(cuda::verify_stream_program(t, good).ok());
  int handed = 0, named = 0;
  auto refused = [&](std::size_t g, stream_program const& broken) {
    diagnostic const d = cuda::verify_stream_program(t, broken);
    INFO(g, " ", describe(d));
    CHECK(d.code == errc::program_malformed);
    CHECK(describe(d).find("another rank's stream") != std::string::npos);
  };
  for (std::size_t g = 0; g < good.ops.size(); ++g) {
    stream_op const o = good.ops[g];
    if (o.kind == stream_op_kind::record || o.kind == stream_op_kind::wait) {
      stream_program broken = good;
      broken.ops[g].rank = static_cast<std::uint16_t>((o.rank + 1) % 4);
      refused(g, broken);
      ++handed;
    }
    if (o.kind == stream_op_kind::wait) {
      stream_program broken = good;
      broken.ops[g].peer_action = static_cast<std::uint32_t>((o.stream + 2) % 8);
      refused(g, broken);
      ++named;
    }
  }
  CHECK(handed > 0);
  CHECK(named > 0);
  // copy mode (one process, one GPU or peers) may wait across ranks: the rule is rendezvous's
  stream_program const copy = cuda::derive_stream_program(t, transfer_mode::copy);
  CHECK(find_op(copy, [](stream_op const& o) {
          return o.kind == stream_op_kind::wait && o.peer_action / 2u != o.stream / 2u;
        }) >= 0);
  CHECK(cuda::verify_stream_program(t, copy).ok());
}

TEST_CASE("cuda.stream_program.wait_on_unrecorded_event_waits_for_nothing") {
  // A wait issued before any record of its event is a no-op: a program whose consumer
  // waits on an event recorded only after the wait (in issue order) has a race, even though
  // the record follows the copy on the right stream.
  table t = lowered("gpipe", 2, 1);
  stream_program good = cuda::derive_stream_program(t, transfer_mode::copy);
  REQUIRE(cuda::verify_stream_program(t, good).ok());
  // move every record to the end of the program (after all waits)
  stream_program broken;
  broken.ranks = good.ranks;
  broken.mode = good.mode;
  broken.event_base = good.event_base;
  vec<stream_op> records;
  for (stream_op const& o : good.ops) (o.kind == stream_op_kind::record ? records : broken.ops).push_back(o);
  for (stream_op const& o : records) broken.ops.push_back(o);
  CHECK(both(t, broken).code == errc::program_unordered_read);
}
