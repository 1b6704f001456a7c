// The compile-time budget: generating, lowering and verifying p = 16, m = 128, v = 2 tables,
// and deriving and checking their CUDA stream programs, inside the compiler works with the
// default constexpr limits (g++: -fconstexpr-ops-limit 2^25 per constant evaluation). This file compiling is the test; the case below checks
// the frozen tables are complete.
#include <doctest/doctest.h>

#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/schedules/interleaved.hpp"
#include "pipesched/schedules/zb_v.hpp"

using namespace pipesched;

using big_v = zb_v<stages<16>, microbatches<128>>;
using big_loop = interleaved_1f1b<stages<16>, microbatches<128>, chunks<2>>;
static_assert(big_v::valid);
static_assert(big_loop::valid);
// The CUDA stream programs of both, derived and checked by the compiler (copy mode, and the
// rendezvous mode NCCL uses), within the same default limits (each check in chunks of
// units, every chunk its own constant evaluation).
static_assert(cuda::stream_program_of<big_v>::valid);
static_assert(cuda::stream_program_of<big_loop>::valid);
static_assert(cuda::stream_program_of<big_v, cuda::transfer_mode::rendezvous>::valid);

TEST_CASE("schedule.compile_budget.p16.m128.v2") {
  // every stage-micro-batch pair has its F, I and W (ZB-V) or F and B (interleaved), and
  // every boundary crossing ranks a SEND and a RECV
  std::size_t compute_v = 0, compute_loop = 0;
  for (std::size_t r = 0; r < 16; ++r) {
    for (std::size_t i = 0; i < big_v::lowered.size(r); ++i) compute_v += is_compute(big_v::lowered.at(r, i).kind);
    for (std::size_t i = 0; i < big_loop::lowered.size(r); ++i)
      compute_loop += is_compute(big_loop::lowered.at(r, i).kind);
  }
  // closed form: S = p·v = 32 stages × m = 128 × (F, I, W) = 3 passes (ZB-V) or (F, B) = 2
  // (interleaved): reference schedules.md, Dependencies, rule 1, one of each per (stage, mb)
  CHECK(compute_v == 32u * 128u * 3u);
  CHECK(compute_loop == 32u * 128u * 2u);
  // V placement: 30 rank crossings per micro-batch and direction (the turn stays on rank 15)
  // closed form: 31 boundaries between the 32 stages, less the turn 15 -> 16 on rank 15
  // (reference: Placements, V: "The turn at rank p−1 needs no transfer"); × 2 directions
  // (activation, gradient) × 2 actions (SEND, RECV) × m
  CHECK(big_v::lowered.offset[16] == compute_v + 2u * 2u * 30u * 128u);
  // loop placement: all 31 stage boundaries cross ranks
  // closed form: stage s is on rank s mod 16 (reference: Placements, loop), so s and s+1 are
  // never on one rank; 31 boundaries × 2 directions × 2 actions × m
  CHECK(big_loop::lowered.offset[16] == compute_loop + 2u * 2u * 31u * 128u);
  // closed form: one issue unit per compute pass and one per transfer pair (a SEND with its
  // RECV): compute + 2 directions × 30 (V) or 31 (loop) crossings × m
  CHECK(cuda::stream_program_of<big_v>::units == compute_v + 2u * 30u * 128u);
  CHECK(cuda::stream_program_of<big_loop>::units == compute_loop + 2u * 31u * 128u);
}
