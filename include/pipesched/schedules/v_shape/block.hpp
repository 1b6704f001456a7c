// pipesched: V-shape schedules — building blocks: the slots of micro-batch 0's passes,
// given as four chains through the ranks, and the blocks each family tries.
#pragma once

#include <initializer_list>

namespace pipesched::detail {

/// The four compute kinds of a V-shape rank, in chain order, and the two W kinds
/// (numbers used in pass codes, v_shape/pass_code.hpp). Rank r holds stage r (chunk 0)
/// and stage 2p-1-r (chunk 1).
enum v_kind : int {
  v_forward0 = 0,        ///< "F": forward of chunk 0
  v_forward1 = 1,        ///< "f": forward of chunk 1
  v_input_backward1 = 2, ///< "B": input backward of chunk 1
  v_input_backward0 = 3, ///< "b": input backward of chunk 0
  v_weight1 = 4,         ///< W of an input backward of chunk 1 (in final codes only)
  v_weight0 = 5,         ///< W of an input backward of chunk 0 (in final codes only)
};

/// A building block: the slots of micro-batch 0's four compute passes on every rank, given
/// as four chains through the ranks (unit slots, F = B = W = 1):
///   F(r) = step_f * r                     f(p-1) = F(p-1) + turn_bottom, f(r) = f(r+1) + step_ff
///   B(0) = f(0) + turn_loss, B(r) = B(r-1) + step_bb
///   b(p-1) = B(p-1) + turn_back, b(r) = b(r+1) + step_b
/// Micro-batch j uses the slots + 6j. The block is usable when each rank's four slots differ
/// modulo 6; the two slots left in every period of 6 take the W passes.
struct v_block {
  int step_f, step_ff, step_bb, step_b;
  int turn_bottom, turn_loss, turn_back;
};

/// V-Min's block (Qi et al. 2024): F = r, f = 2p-r-1, B = 2p+g+r, b = 4p+g-r-1,
/// g = 2 when p mod 3 = 0, else 0.
constexpr v_block v_min_block(int p) { return {1, 1, 1, 1, 1, p % 3 == 0 ? 3 : 1, 1}; }
/// V-Half's block: F = 2r, f = 3p-r-2, B = 3p+g+2r-1, b = 6p+g-r-2, g = 3 when p is even, else 0.
constexpr v_block v_half_block(int p) { return {2, 1, 2, 1, 1, p % 2 == 0 ? 4 : 1, 2}; }

/// Slots of micro-batch 0: base[4r + kind], kind a compute v_kind.
constexpr void block_slots(v_block const& b, int p, int* base) {
  for (int r = 0; r < p; ++r) base[4 * r + v_forward0] = b.step_f * r;
  base[4 * (p - 1) + v_forward1] = base[4 * (p - 1) + v_forward0] + b.turn_bottom;
  for (int r = p - 2; r >= 0; --r) base[4 * r + v_forward1] = base[4 * (r + 1) + v_forward1] + b.step_ff;
  base[v_input_backward1] = base[v_forward1] + b.turn_loss;
  for (int r = 1; r < p; ++r) base[4 * r + v_input_backward1] = base[4 * (r - 1) + v_input_backward1] + b.step_bb;
  base[4 * (p - 1) + v_input_backward0] = base[4 * (p - 1) + v_input_backward1] + b.turn_back;
  for (int r = p - 2; r >= 0; --r) base[4 * r + v_input_backward0] = base[4 * (r + 1) + v_input_backward0] + b.step_b;
}

/// Whether each rank's four slots differ modulo 6 (so the periods of 6 never collide).
constexpr bool block_usable(int const* base, int p) {
  for (int r = 0; r < p; ++r)
    for (int x = 0; x < 4; ++x)
      for (int y = x + 1; y < 4; ++y)
        if ((base[4 * r + x] - base[4 * r + y]) % 6 == 0) return false;
  return true;
}

/// Blocks tried besides a family's own, found by a search over chain steps and turns at
/// F = B = W = 1 (each is used only where its passes do not collide and it fits the budget):
/// - V-Half: steps (1, 2) with a gap of 1 or 4 at the loss (one idle slot less than V-Half's
///   own block for odd p >= 9 and even p >= 16), steps (2, 1) turning early (p = 2);
/// - V-Min: the gap 5 at the loss (four idle slots less for p mod 3 = 2, p >= 5), and for
///   p <= 3, where V-Min's memory equals V-Half's, the V-Half candidates;
/// - with few micro-batches the memory stays low and blocks of the other family fit: V-Half
///   tries V-Min's chains (gaps 1, 3, 5) for m <= p + 1, V-Min tries the other chains for m <= 6.
constexpr int v_candidates(bool half, int p, int m, v_block* out) {
  int n = 0;
  if (half || p <= 3) {
    out[n++] = v_block{1, 2, 1, 2, 2, p % 2 == 0 ? 4 : 1, 1};
    if (p % 2 == 0) out[n++] = v_block{2, 1, 2, 1, 2, 4, 1};
  }
  if (!half) out[n++] = v_block{1, 1, 1, 1, 1, 5, 1};
  if (half && m <= p + 1)
    for (int t : {1, 3, 5}) out[n++] = v_block{1, 1, 1, 1, 1, t, 1};
  if (!half && m <= 6)
    for (v_block const& b : {v_block{1, 1, 1, 1, 1, 1, 1}, v_block{1, 1, 1, 1, 1, 3, 1}, v_block{1, 2, 1, 2, 2, 1, 1},
                             v_block{1, 2, 1, 2, 2, 4, 1}, v_block{2, 1, 2, 1, 1, 4, 2}})
      out[n++] = b;
  return n;
}

} // namespace pipesched::detail
