// nvcc's constexpr budget, as in stream_program_budget.cu: the stream programs of GPipe, 1F1B,
// ZB-H1 and ZB-H2 at p = 16, m = 128, copy and rendezvous mode, derived and checked inside
// nvcc with its default limits (with the other stream_program_budget*.cu, every registered
// schedule). Compiling this file is the test (ctest cuda_compile.stream_program_budget_one_chunk
// builds it).
#include "both_programs.hpp"

#include <pipesched/schedules/gpipe.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

using big_gpipe = pipesched::gpipe<pipesched::stages<16>, pipesched::microbatches<128>>;
using big_1f1b = pipesched::one_f_one_b<pipesched::stages<16>, pipesched::microbatches<128>>;
using big_h1 = pipesched::zb_h1<pipesched::stages<16>, pipesched::microbatches<128>>;
using big_h2 = pipesched::zb_h2<pipesched::stages<16>, pipesched::microbatches<128>>;
static_assert(pipesched_test::both_programs_valid<big_gpipe, big_1f1b, big_h1, big_h2>);

int stream_program_budget_one_chunk_units() {
  return static_cast<int>(pipesched_test::both_programs_units<big_gpipe, big_1f1b, big_h1, big_h2>);
}
