// SM partitions per stage (green contexts), the arithmetic: sizes rounded up to the device's
// granularity, the largest equal partitions that fit, and a sentence naming what to change
// when they do not — checked by hand on a few devices and against a brute-force search over
// every small device, request and stage count.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "pipesched/cuda/sm_partition.hpp"

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
