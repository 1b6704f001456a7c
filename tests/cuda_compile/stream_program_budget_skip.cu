// nvcc's constexpr budget, as in stream_program_budget.cu: skip paths at the largest sizes
// docs/05_skip_paths.md names for g++ (S = 16 with m = 32, with and without a binding cap;
// S = 16 with m = 16 and a binding cap), their stream programs derived and checked inside
// nvcc with its default limits. Compiling this file is the test (ctest cuda_compile.stream_program_budget_skip
// builds it).
#include "both_programs.hpp"

#include <pipesched/schedules/skip_paths.hpp>

using skip_wide_deep =
    pipesched::schedule<pipesched::skip_paths_family<12>, pipesched::stages<16>, pipesched::microbatches<32>>;
using skip_wide_capped =
    pipesched::schedule<pipesched::skip_paths_family<12, 6>, pipesched::stages<16>, pipesched::microbatches<16>>;
using skip_wide_deep_capped =
    pipesched::schedule<pipesched::skip_paths_family<12, 6>, pipesched::stages<16>, pipesched::microbatches<32>>;
static_assert(pipesched_test::both_programs_valid<skip_wide_deep, skip_wide_capped, skip_wide_deep_capped>);

int stream_program_budget_skip_units() {
  return static_cast<int>(pipesched_test::both_programs_units<skip_wide_deep, skip_wide_capped, skip_wide_deep_capped>);
}
