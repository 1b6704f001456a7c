// SM partitions per stage (green contexts). The arithmetic: sizes rounded up to the device's
// granularity, the largest equal partitions that fit, and a sentence naming what to change
// when they do not — checked by hand on a few devices and against a brute-force search over
// every small device, request and stage count. The streams executor with
// options::sm_partitions, on the emulated runtime (tests/support/emulated_cuda.hpp) whose
// partitions are contexts of their own (an event recorded on a partition's stream must be
// made in it, as CUDA requires): one partition set per device with a partition per rank,
// every compute stream a partition's, every boundary right under random interleavings, eager
// and replayed; refusals (too large, a runtime without partitions) leave nothing behind.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "support/emulated_cuda.hpp"

#include "pipesched/cuda/basic_executor.hpp"
#include "pipesched/cuda/sm_partition.hpp"
#include "pipesched/schedules/interleaved.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "plan_support.hpp"

using pipesched::cuda::plan_sm_partitions;
using pipesched::cuda::sm_facts;
using pipesched::cuda::sm_plan;

namespace {

std::string message_of(sm_facts const& f, int parts, unsigned request) {
  try {
    (void)plan_sm_partitions(f, parts, request);
  } catch (std::invalid_argument const& e) {
    return e.what();
  }
  return {};
}

} // namespace

TEST_CASE("cuda.sm_partition.by_hand") {
  sm_facts const f{132, 8, 8}; // 132 SMs, partitions of 8, 16, 24, ...
  // 0: the largest equal size: 132 / 4 = 33, down to a multiple of 8 = 32; 132 - 4*32 = 4 left
  sm_plan p = plan_sm_partitions(f, 4, 0);
  CHECK(p.per_stage == 32);
  CHECK(p.left == 4);
  CHECK(p.partitions == 4);
  // 20 rounds up to 24; 4*24 = 96; 36 left
  p = plan_sm_partitions(f, 4, 20);
  CHECK(p.per_stage == 24);
  CHECK(p.left == 36);
  // 1 is below the smallest partition: 8
  CHECK(plan_sm_partitions(f, 2, 1).per_stage == 8);
  // 40 per stage for 4 stages needs 160 > 132: refused, naming the largest that fits (32)
  std::string const m = message_of(f, 4, 40);
  CHECK(m.find("at most 32 SMs per stage") != std::string::npos);
  CHECK(m.find("132 SMs") != std::string::npos);
  // 30 rounds to 32: fits exactly as the largest
  CHECK(plan_sm_partitions(f, 4, 30).per_stage == 32);
  // 17 stages: 132 / 17 = 7 < 8: no partition for each
  CHECK(message_of(f, 17, 0).find("cannot each have an SM partition") != std::string::npos);
  // no granularity: 16 SMs in 3 = 5 each, 1 left
  p = plan_sm_partitions(sm_facts{16, 1, 1}, 3, 0);
  CHECK(p.per_stage == 5);
  CHECK(p.left == 1);
  CHECK_THROWS_AS(plan_sm_partitions(f, 0, 0), std::invalid_argument);
}

TEST_CASE("cuda.sm_partition.brute_force") {
  // The smallest size n >= max(request, min), a multiple of the alignment, with
  // parts * n <= SMs (request 0: the largest such n, at least min) — found by trying every n.
  int checked = 0;
  for (unsigned count = 1; count <= 140; count += 3)
    for (unsigned align : {1u, 2u, 4u, 8u})
      for (unsigned minp : {1u, 2u, 8u, 16u}) {
        if (minp % align != 0 && align % minp != 0) continue;
        sm_facts const f{count, minp, align};
        for (int parts = 1; parts <= 18; ++parts)
          for (unsigned req = 0; req <= count; req += (req < 20 ? 1 : 7)) {
            unsigned want = 0; // 0: none
            if (req == 0) {
              for (unsigned n = minp; n * static_cast<unsigned>(parts) <= count; ++n)
                if (n % align == 0) want = n;
            } else {
              unsigned const lo = req < minp ? minp : req;
              unsigned n = lo;
              while (n % align != 0) ++n;
              if (n * static_cast<unsigned>(parts) <= count) want = n;
            }
            ++checked;
            if (want == 0) {
              CHECK_THROWS_AS(plan_sm_partitions(f, parts, req), std::invalid_argument);
              continue;
            }
            sm_plan const p = plan_sm_partitions(f, parts, req);
            CHECK(p.per_stage == want);
            CHECK(p.left == count - want * static_cast<unsigned>(parts));
          }
      }
  CHECK(checked > 10000);
}

namespace {

using checker = plan_test::checking_functor;

/// Two iterations (or a capture and two replays) of S with salted stamps; every pass of every
/// rank must find the boundary its producer wrote, and run once.
template <class S, class Runtime> void run_stamped(pipesched::cuda::basic_executor<S, Runtime>& ex, bool graph) {
  std::vector<checker> fs(static_cast<std::size_t>(S::ranks));
  std::vector<emu::deferred<checker>> kernels;
  for (auto& f : fs) kernels.push_back({&f});
  for (int it = 0; it < 2; ++it) {
    for (auto& f : fs) f = checker{}, f.salt = 77 + (graph ? 0 : it); // a graph replays its capture's salt
    if (!graph) ex.run(kernels);
    else if (it == 0) {
      ex.capture(kernels);
      ex.replay();
    } else ex.replay();
    pipesched::table const t = S::make();
    for (int r = 0; r < S::ranks; ++r) {
      checker const& f = fs[static_cast<std::size_t>(r)];
      int compute = 0;
      for (pipesched::action const& a : t.lists[static_cast<std::size_t>(r)]) compute += pipesched::is_compute(a.kind) ? 1 : 0;
      INFO("iteration ", it, " rank ", r, ": ", f.first_problem);
      CHECK(f.mismatches == 0);
      CHECK(f.calls == compute);
    }
  }
}

} // namespace

TEST_CASE("cuda.sm_partition.executor.one_gpu") {
  using S = pipesched::one_f_one_b<pipesched::stages<4>, pipesched::microbatches<8>>;
  for (bool graph : {false, true}) {
    emu::reset(graph ? 5 : 4);
    {
      pipesched::cuda::options o;
      o.slot_bytes = plan_test::stamp_bytes;
      o.sm_partitions = true; // 0 SMs per stage: the largest equal partitions
      pipesched::cuda::basic_executor<S, emu::partitioned_runtime> ex(o);
      auto const& sets = emu::the().partition_sets;
      REQUIRE(sets.size() == 1);
      CHECK(sets[0]->device == 0);
      CHECK(sets[0]->count == 4);
      CHECK(sets[0]->sms == 0);
      for (int r = 0; r < 4; ++r) {
        CHECK(ex.partitioned(r));
        CHECK(ex.compute_stream(r) == sets[0]->streams[static_cast<std::size_t>(r)]);
        CHECK(ex.comm_stream(r)->partition == -1);
      }
      run_stamped(ex, graph);
      CHECK(emu::the().copies_run > 0);
    }
    CHECK_FALSE(emu::the().partition_sets[0]->alive); // released with the executor
  }
}

TEST_CASE("cuda.sm_partition.executor.two_devices") {
  // ranks 0 and 2 on device 0, 1 and 3 on device 1: a set of two partitions on each
  using S = pipesched::interleaved_1f1b<pipesched::stages<4>, pipesched::microbatches<8>, pipesched::chunks<2>>;
  emu::reset(9);
  pipesched::cuda::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.devices = {0, 1, 0, 1};
  o.sm_partitions = true;
  o.sm_per_stage = 20; // rounded up to 24 by the planner
  pipesched::cuda::basic_executor<S, emu::partitioned_runtime> ex(o);
  auto const& sets = emu::the().partition_sets;
  REQUIRE(sets.size() == 2);
  CHECK(sets[0]->device == 0);
  CHECK(sets[1]->device == 1);
  CHECK(sets[0]->count == 2);
  CHECK(sets[1]->count == 2);
  CHECK(sets[0]->sms == 20);
  CHECK(ex.compute_stream(0) == sets[0]->streams[0]);
  CHECK(ex.compute_stream(2) == sets[0]->streams[1]);
  CHECK(ex.compute_stream(1) == sets[1]->streams[0]);
  CHECK(ex.compute_stream(3) == sets[1]->streams[1]);
  run_stamped(ex, false);
  CHECK(emu::the().peer_copies > 0);
}

TEST_CASE("cuda.sm_partition.executor.refusals") {
  using S = pipesched::one_f_one_b<pipesched::stages<4>, pipesched::microbatches<8>>;
  emu::reset(3);
  pipesched::cuda::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.sm_partitions = true;
  o.sm_per_stage = 40; // 4 x 40 > 132: refused, naming 32
  std::string what;
  try {
    pipesched::cuda::basic_executor<S, emu::partitioned_runtime> ex(o);
  } catch (std::invalid_argument const& e) {
    what = e.what();
  }
  CHECK(what.find("at most 32 SMs per stage") != std::string::npos);
  CHECK(emu::the().streams.empty()); // nothing left behind
  // a runtime without partitions refuses the option
  o.sm_per_stage = 0;
  what.clear();
  try {
    pipesched::cuda::basic_executor<S, emu::runtime> ex(o);
  } catch (std::invalid_argument const& e) {
    what = e.what();
  }
  CHECK(what.find("no SM partitions") != std::string::npos);
  CHECK(emu::the().streams.empty());
}

TEST_CASE("emulator.partition_context_is_checked") {
  // The check the executor must pass is real: an event of the device's context recorded on
  // a partition's stream is refused, and one made in the partition is taken.
  emu::reset(1);
  emu::partitioned_runtime::partitions_t p = nullptr;
  REQUIRE(emu::partitioned_runtime::make_partitions(&p, 0, 2, 0) == 0);
  emu::partitioned_runtime::event_t plain = nullptr, inside = nullptr;
  emu::partitioned_runtime::event_create(&plain);
  emu::partitioned_runtime::partition_event_create(p, 1, &inside);
  CHECK(emu::partitioned_runtime::event_record(plain, p->streams[1]) == emu::runtime::context_mismatch);
  CHECK(emu::partitioned_runtime::event_record(inside, p->streams[0]) == emu::runtime::context_mismatch);
  CHECK(emu::partitioned_runtime::event_record(inside, p->streams[1]) == 0);
  emu::partitioned_runtime::destroy_partitions(p);
}
