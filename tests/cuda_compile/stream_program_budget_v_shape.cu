// nvcc's constexpr budget, as in stream_program_budget.cu: the stream programs of V-Half and
// V-Min at p = 16, m = 128, copy and rendezvous mode, derived and checked inside nvcc with its
// default limits (with the other stream_program_budget*.cu, every registered schedule).
// Compiling this file is the test (ctest cuda_compile.stream_program_budget_v_shape builds it).
#include "both_programs.hpp"

#include <pipesched/schedules/v_shape.hpp>

using big_half = pipesched::v_half<pipesched::stages<16>, pipesched::microbatches<128>>;
using big_min = pipesched::v_min<pipesched::stages<16>, pipesched::microbatches<128>>;
static_assert(pipesched_test::both_programs_valid<big_half, big_min>);

int stream_program_budget_v_shape_units() {
  return static_cast<int>(pipesched_test::both_programs_units<big_half, big_min>);
}
