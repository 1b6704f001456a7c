// nvcc's constexpr budget, as in stream_program_budget.cu: skip paths at the largest sizes
// docs/05_skip_paths.md names for g++ (S = 16 with m = 32 and no cap; S = 16 with m = 16 and
// a binding cap), their stream programs derived and checked inside nvcc with its default
// limits. Compiling this file is the test (ctest cuda_compile.stream_program_budget_skip
// builds it).
#include <pipesched/cuda/stream_program.hpp>
#include <pipesched/schedules/skip_paths.hpp>

using skip_wide_deep = pipesched::schedule<pipesched::skip_paths_family<12>, pipesched::stages<16>, pipesched::microbatches<32>>;
using skip_wide_capped =
    pipesched::schedule<pipesched::skip_paths_family<12, 6>, pipesched::stages<16>, pipesched::microbatches<16>>;
static_assert(pipesched::cuda::stream_program_of<skip_wide_deep>::valid);
static_assert(pipesched::cuda::stream_program_of<skip_wide_deep, pipesched::cuda::transfer_mode::rendezvous>::valid);
static_assert(pipesched::cuda::stream_program_of<skip_wide_capped>::valid);
static_assert(pipesched::cuda::stream_program_of<skip_wide_capped, pipesched::cuda::transfer_mode::rendezvous>::valid);

int stream_program_budget_skip_units() {
  return static_cast<int>(pipesched::cuda::stream_program_of<skip_wide_deep>::units +
                          pipesched::cuda::stream_program_of<skip_wide_capped>::units);
}
