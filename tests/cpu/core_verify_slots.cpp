// verify_slots: a lowered table's buffer slots, checked in each rank's list order. Every
// registered schedule (lowered by lower(), with and without extra slots, skip paths
// included) passes; random single changes of one slot number are judged exactly as the
// independent checker of tests/support/check_slots.hpp judges them; runtime_schedule
// refuses a table with wrong slots (schedule_error, slot_mismatch), so no executor runs it.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "support/check_slots.hpp"

#include "pipesched/plan/runtime_plan.hpp"
#include "pipesched/schedules/registry.hpp"
#include "pipesched/schedules/skip_paths.hpp"

using namespace pipesched;

namespace {

table lowered(char const* name, int p, int m, int extra = 0) {
  params pr{p, m};
  pr.extra_slots = extra;
  return make_schedule(name, pr);
}

/// Slot field f (0 in, 1 aux, 2 out) of an action.
std::uint16_t& field_of(action& a, int f) { return f == 0 ? a.in : (f == 1 ? a.aux : a.out); }

} // namespace

TEST_CASE("verify_slots.every_schedule_passes") {
  int checked = 0;
  for (auto const& e : schedule_registry)
    for (int p : {2, 3, 4})
      for (int m : {2, 4, 8})
        for (int extra : {0, 1}) {
          table const t = lowered(std::string(e.name).c_str(), p, m, extra);
          if (!t.ok()) continue; // sizes the family refuses
          INFO(e.name, " p", p, " m", m, " extra ", extra);
          diagnostic const d = verify_slots(t);
          CHECK_MESSAGE(d.ok(), to_string(d));
          CHECK(testing::check_slots(t).ok);
          ++checked;
        }
  CHECK(checked > 100);
  // skip routes (a micro-batch skips stages), with and without an extra slot
  skip_config c;
  c.stages = 6;
  c.keep = 4;
  c.microbatches = 6;
  table const compute = make_skip(c);
  REQUIRE(compute.ok());
  for (int extra : {0, 1}) {
    table const t = lower(compute, c.costs, extra);
    diagnostic const d = verify_slots(t);
    CHECK_MESSAGE(d.ok(), to_string(d));
    CHECK(testing::check_slots(t).ok);
  }
}

TEST_CASE("verify_slots.agrees_with_the_independent_checker") {
  // One slot number changed to another valid one, thousands of times: verify_slots refuses
  // exactly the tables the independent checker finds broken (some changes are harmless: a
  // boundary moved to a slot free for its whole life).
  std::mt19937 rng(2024);
  int refused = 0, accepted = 0;
  for (char const* name : {"1f1b", "interleaved", "zb-h1", "zb-v", "dualpipe-v", "gpipe"}) {
    table const good = lowered(name, 4, 8);
    REQUIRE(good.ok());
    for (int trial = 0; trial < 400; ++trial) {
      table t = good;
      int const r = std::uniform_int_distribution<int>(0, t.ranks - 1)(rng);
      auto& list = t.lists[static_cast<std::size_t>(r)];
      std::size_t const i = std::uniform_int_distribution<std::size_t>(0, list.size() - 1)(rng);
      int const f = std::uniform_int_distribution<int>(0, 2)(rng);
      std::uint16_t& slot = field_of(list[i], f);
      int const count = t.slot_count[static_cast<std::size_t>(r)];
      if (slot == no_slot || count < 2) continue;
      slot = static_cast<std::uint16_t>((slot + 1 + std::uniform_int_distribution<int>(0, count - 2)(rng)) % count);
      bool const broken = !testing::check_slots(t).ok;
      diagnostic const d = verify_slots(t);
      INFO(name, " rank ", r, " position ", i, " field ", f, ": ", to_string(d));
      CHECK(broken == !d.ok());
      if (!d.ok()) CHECK(d.code == errc::slot_mismatch);
      (broken ? refused : accepted) += 1;
    }
  }
  CHECK(refused > 500); // the test changed enough tables into broken ones
}

TEST_CASE("verify_slots.runtime_schedule_refuses_wrong_slots") {
  table t = lowered("1f1b", 4, 8);
  REQUIRE(t.ok());
  CHECK_NOTHROW(runtime_schedule{t});
  // rank 1's first receive lands in the slot its first forward then reads as its input... of
  // another slot: point the forward's input at a slot nothing wrote yet
  auto& list = t.lists[1];
  std::size_t k = 0;
  while (list[k].kind != op::forward) ++k;
  REQUIRE(t.slot_count[1] >= 2);
  list[k].in = static_cast<std::uint16_t>((list[k].in + 1) % t.slot_count[1]);
  std::string what;
  try {
    runtime_schedule const s{t};
  } catch (schedule_error const& e) {
    what = e.what();
    CHECK(e.where.code == errc::slot_mismatch);
    CHECK(e.where.rank == 1);
    CHECK(e.where.position == static_cast<int>(k));
  }
  CHECK(what.find("buffer slot") != std::string::npos);
  // an out-of-range slot number
  list[k].in = static_cast<std::uint16_t>(t.slot_count[1] + 3);
  CHECK_THROWS_AS(runtime_schedule{t}, schedule_error);
}
