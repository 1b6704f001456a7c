// nvcc's constexpr budget, as in stream_program_budget.cu: the stream programs of looped BFS
// and interleaved zero bubble at p = 16, m = 128, v = 2, copy and rendezvous mode, derived
// and checked inside nvcc with its default limits (with the other stream_program_budget*.cu,
// every registered schedule). Compiling this file is the test (ctest
// cuda_compile.stream_program_budget_interleaved builds it).
#include <pipesched/cuda/stream_program.hpp>
#include <pipesched/schedules/interleaved_zb.hpp>
#include <pipesched/schedules/looped_bfs.hpp>

using big_bfs = pipesched::looped_bfs<pipesched::stages<16>, pipesched::microbatches<128>, pipesched::chunks<2>>;
using big_zb = pipesched::interleaved_zb<pipesched::stages<16>, pipesched::microbatches<128>, pipesched::chunks<2>>;
static_assert(pipesched::cuda::stream_program_of<big_bfs>::valid);
static_assert(pipesched::cuda::stream_program_of<big_bfs, pipesched::cuda::transfer_mode::rendezvous>::valid);
static_assert(pipesched::cuda::stream_program_of<big_zb>::valid);
static_assert(pipesched::cuda::stream_program_of<big_zb, pipesched::cuda::transfer_mode::rendezvous>::valid);

int stream_program_budget_interleaved_units() {
  return static_cast<int>(pipesched::cuda::stream_program_of<big_bfs>::units +
                          pipesched::cuda::stream_program_of<big_zb>::units);
}
