// nvcc's constexpr budget, as in stream_program_budget.cu: the stream programs of looped BFS
// and interleaved zero bubble at p = 16, m = 128, v = 2, copy and rendezvous mode, derived
// and checked inside nvcc with its default limits (with the other stream_program_budget*.cu,
// every registered schedule). Compiling this file is the test (ctest
// cuda_compile.stream_program_budget_interleaved builds it).
#include "both_programs.hpp"

#include <pipesched/schedules/interleaved_zb.hpp>
#include <pipesched/schedules/looped_bfs.hpp>

using big_bfs = pipesched::looped_bfs<pipesched::stages<16>, pipesched::microbatches<128>, pipesched::chunks<2>>;
using big_zb = pipesched::interleaved_zb<pipesched::stages<16>, pipesched::microbatches<128>, pipesched::chunks<2>>;
static_assert(pipesched_test::both_programs_valid<big_bfs, big_zb>);

int stream_program_budget_interleaved_units() {
  return static_cast<int>(pipesched_test::both_programs_units<big_bfs, big_zb>);
}
