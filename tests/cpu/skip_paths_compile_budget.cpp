// The compile-time budget of skip paths: docs/05_skip_paths.md says the cost-aware skip
// family, generated, lowered and verified inside the compiler, fits the default constexpr
// limits (g++: -fconstexpr-ops-limit 2^25 per constant evaluation) up to S = 16 with m = 32,
// with or without a binding memory cap (a cap runs the final event simulation in four
// orders). This file compiling is that check; the case below checks that the frozen tables
// are the ones the same calls give at run time, and complete.
#include <doctest/doctest.h>

#include "pipesched/schedules/skip_paths.hpp"

#include <cstddef>

using namespace pipesched;

// the documented sizes: no cap, and a cap of K/2 (which binds: K/2 < m)
using wide = schedule<skip_paths_family<12>, stages<16>, microbatches<16>>;
using wide_capped = schedule<skip_paths_family<12, 6>, stages<16>, microbatches<16>>;
using deep = schedule<skip_paths_family<6>, stages<8>, microbatches<32>>;
using deep_capped = schedule<skip_paths_family<6, 3>, stages<8>, microbatches<32>>;
using wide_deep = schedule<skip_paths_family<12>, stages<16>, microbatches<32>>;
using wide_deep_capped = schedule<skip_paths_family<12, 6>, stages<16>, microbatches<32>>;
static_assert(wide::valid);
static_assert(wide_capped::valid);
static_assert(deep::valid);
static_assert(deep_capped::valid);
static_assert(wide_deep::valid);
static_assert(wide_deep_capped::valid);

namespace {

skip_config config_of(int S, int K, int m, int memory) {
  skip_config c{};
  c.stages = S;
  c.keep = K;
  c.microbatches = m;
  c.memory = memory;
  return c;
}

// The frozen compute table against the run-time make_skip of the same configuration: the
// same paths and per-rank lists, and K forwards and K backwards per micro-batch.
template <class Schedule> void check_frozen(skip_config const& c) {
  INFO("S = " << c.stages << ", K = " << c.keep << ", m = " << c.microbatches << ", cap " << c.memory);
  table const run_time = make_skip(c);
  REQUIRE(run_time.ok());
  table const frozen = thaw(Schedule::compute); // made inside the compiler
  REQUIRE(frozen.ok());
  CHECK(frozen.paths == run_time.paths);
  CHECK(frozen.lists == run_time.lists);
  std::size_t passes = 0;
  for (std::size_t r = 0; r < static_cast<std::size_t>(c.stages); ++r)
    for (std::size_t i = 0; i < Schedule::compute.size(r); ++i) passes += is_compute(Schedule::compute.at(r, i).kind);
  // closed form: each of the m micro-batches runs a forward and a backward on each of its K
  // kept stages (reference skip-paths.md, invariant 5)
  CHECK(passes == static_cast<std::size_t>(2 * c.keep * c.microbatches));
}

} // namespace

TEST_CASE("skip.compile_budget.documented_sizes") {
  check_frozen<wide>(config_of(16, 12, 16, 0));
  check_frozen<wide_capped>(config_of(16, 12, 16, 6));
  check_frozen<deep>(config_of(8, 6, 32, 0));
  check_frozen<deep_capped>(config_of(8, 6, 32, 3));
  check_frozen<wide_deep>(config_of(16, 12, 32, 0));
  check_frozen<wide_deep_capped>(config_of(16, 12, 32, 6));
}
