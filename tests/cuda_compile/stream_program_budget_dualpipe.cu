// nvcc's constexpr budget (its front end counts differently from g++), as in
// stream_program_budget.cu: the stream programs of DualPipe, DualPipe-V and forward-only at
// p = 16, m = 128, copy and rendezvous mode, derived and checked inside nvcc with its default
// limits (with the other stream_program_budget*.cu, every registered schedule). DualPipe has
// routes: before the simulation and the rendezvous check looked up each pass's neighbours on
// its route (neighbours_on_routes), searching the route per pass exceeded nvcc's budget here
// ("excessive constexpr function call complexity"). Compiling this file is the test (ctest
// cuda_compile.stream_program_budget_dualpipe builds it).
#include "both_programs.hpp"

#include <pipesched/schedules/dualpipe.hpp>
#include <pipesched/schedules/dualpipe_v.hpp>
#include <pipesched/schedules/forward_only.hpp>

using big_dualpipe = pipesched::dualpipe<pipesched::stages<16>, pipesched::microbatches<128>>;
using big_dualpipe_v = pipesched::dualpipe_v<pipesched::stages<16>, pipesched::microbatches<128>>;
using big_forward = pipesched::forward_only<pipesched::stages<16>, pipesched::microbatches<128>>;
static_assert(pipesched_test::both_programs_valid<big_dualpipe, big_dualpipe_v, big_forward>);

int stream_program_budget_dualpipe_units() {
  return static_cast<int>(pipesched_test::both_programs_units<big_dualpipe, big_dualpipe_v, big_forward>);
}
