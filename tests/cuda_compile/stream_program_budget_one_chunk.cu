// nvcc's constexpr budget, as in stream_program_budget.cu: the stream programs of GPipe, 1F1B,
// ZB-H1 and ZB-H2 at p = 16, m = 128, copy and rendezvous mode, derived and checked inside
// nvcc with its default limits (with the other stream_program_budget*.cu, every registered
// schedule). Compiling this file is the test (ctest cuda_compile.stream_program_budget_one_chunk
// builds it).
#include <pipesched/cuda/stream_program.hpp>
#include <pipesched/schedules/gpipe.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

using big_gpipe = pipesched::gpipe<pipesched::stages<16>, pipesched::microbatches<128>>;
using big_1f1b = pipesched::one_f_one_b<pipesched::stages<16>, pipesched::microbatches<128>>;
using big_h1 = pipesched::zb_h1<pipesched::stages<16>, pipesched::microbatches<128>>;
using big_h2 = pipesched::zb_h2<pipesched::stages<16>, pipesched::microbatches<128>>;
static_assert(pipesched::cuda::stream_program_of<big_gpipe>::valid);
static_assert(pipesched::cuda::stream_program_of<big_gpipe, pipesched::cuda::transfer_mode::rendezvous>::valid);
static_assert(pipesched::cuda::stream_program_of<big_1f1b>::valid);
static_assert(pipesched::cuda::stream_program_of<big_1f1b, pipesched::cuda::transfer_mode::rendezvous>::valid);
static_assert(pipesched::cuda::stream_program_of<big_h1>::valid);
static_assert(pipesched::cuda::stream_program_of<big_h1, pipesched::cuda::transfer_mode::rendezvous>::valid);
static_assert(pipesched::cuda::stream_program_of<big_h2>::valid);
static_assert(pipesched::cuda::stream_program_of<big_h2, pipesched::cuda::transfer_mode::rendezvous>::valid);

int stream_program_budget_one_chunk_units() {
  return static_cast<int>(
      pipesched::cuda::stream_program_of<big_gpipe>::units + pipesched::cuda::stream_program_of<big_1f1b>::units +
      pipesched::cuda::stream_program_of<big_h1>::units + pipesched::cuda::stream_program_of<big_h2>::units);
}
