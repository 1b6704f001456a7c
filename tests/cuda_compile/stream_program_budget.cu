// nvcc's constexpr budget (its front end counts differently from g++): the stream programs
// of zb_v and interleaved_1f1b at p = 16, m = 128 (v = 2), copy and rendezvous mode, are
// derived and checked inside nvcc with its default limits. Compiling this file is the test
// (ctest cuda_compile.stream_program_budget builds it).
#include "both_programs.hpp"

#include <pipesched/schedules/interleaved.hpp>
#include <pipesched/schedules/zb_v.hpp>

using big_v = pipesched::zb_v<pipesched::stages<16>, pipesched::microbatches<128>>;
using big_loop = pipesched::interleaved_1f1b<pipesched::stages<16>, pipesched::microbatches<128>, pipesched::chunks<2>>;
static_assert(pipesched_test::both_programs_valid<big_v, big_loop>);

int stream_program_budget_units() { return static_cast<int>(pipesched_test::both_programs_units<big_v, big_loop>); }
