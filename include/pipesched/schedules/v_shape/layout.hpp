// pipesched: V-shape schedules — the slot layout while it is being built: pass codes, laying
// out a block, placing the W's, memory counts and the earliest slot a pass may take.
#pragma once

#include "pipesched/core/vec.hpp"
#include "pipesched/schedules/v_shape/block.hpp"

namespace pipesched::detail {

// ---- pass codes: what one slot of a rank holds (m micro-batches) ----
//   free_slot (-1)      nothing
//   kind m + mb         a compute pass, kind a compute v_kind: the forwards are the codes
//                       [0, 2m), the input backwards [2m, 4m)
//   4m + n              while squeezing: the rank's n-th W (squeeze_weight_code)
//   (kind + 2) m + mb   once final_weights ran: the W of input backward (kind, mb), so
//                       kind + 2 is v_weight1 or v_weight0
// Hot loops compare codes with first_input_code(m) and first_weight_code(m) held in locals,
// and test a free slot as code < 0: the compiler's constant evaluator charges an operation
// for every read of a named constant (free_slot, an enumerator), none for a literal.

inline constexpr int free_slot = -1;
/// code_kind of a W while squeezing.
inline constexpr int squeeze_weight = 4;

constexpr int pass_code(int kind, int mb, int m) { return kind * m + mb; }
constexpr int squeeze_weight_code(int n, int m) { return 4 * m + n; }
/// The lowest input-backward code: codes below it (and >= 0) are forwards.
constexpr int first_input_code(int m) { return 2 * m; }
/// The lowest W code: codes from first_input_code up to it are input backwards.
constexpr int first_weight_code(int m) { return 4 * m; }
constexpr bool is_forward_code(int x, int m) { return x >= 0 && x < first_input_code(m); }
constexpr bool is_input_backward_code(int x, int m) { return x >= first_input_code(m) && x < first_weight_code(m); }

/// Kind (a compute v_kind, or squeeze_weight) and index (micro-batch, or n for the n-th W)
/// of a pass code while squeezing.
constexpr int code_kind(int x, int m) { return x >= first_weight_code(m) ? squeeze_weight : x / m; }
constexpr int code_index(int x, int m) { return x >= first_weight_code(m) ? x - first_weight_code(m) : x % m; }

/// The slot layout of a V-shape schedule while it is being built (codes above).
struct v_layout {
  int p = 0, m = 0, len = 0; ///< ranks, micro-batches, slots per rank
  int lag = 0;               ///< after final_weights: the most slots between an I and its W
  vec<int> pass_slot;        ///< [(4r + kind) m + mb]: slot of compute pass (kind, mb) on rank r
  vec<int> weight_slot;      ///< [2m r + n]: slot of the rank's n-th W (explicit W's only)
  vec<int> weight_source;    ///< [2m r + n]: code of the I pass whose weights the n-th W computes
  vec<int> occupant;         ///< [len r + s]: code of the pass in slot s of rank r
};

/// Lays micro-batch j's passes at the block's slots + 6j; false when two passes collide.
constexpr bool lay_out(v_layout& L, int const* base) {
  int const p = L.p, m = L.m;
  int bound = 0;
  for (int i = 0; i < 4 * p; ++i) bound = base[i] > bound ? base[i] : bound;
  L.len = bound + 6 * (m - 1) + 2 * m + 2;
  L.pass_slot.assign(static_cast<std::size_t>(4 * p * m), 0);
  L.weight_slot.assign(static_cast<std::size_t>(2 * p * m), 0);
  L.weight_source.assign(static_cast<std::size_t>(2 * p * m), 0);
  L.occupant.assign(static_cast<std::size_t>(p) * static_cast<std::size_t>(L.len), free_slot);
  int* const pass_slot = L.pass_slot.data();
  int* const occupant = L.occupant.data();
  for (int r = 0; r < p; ++r)
    for (int kind = 0; kind < 4; ++kind)
      for (int j = 0; j < m; ++j) {
        int const s = base[4 * r + kind] + 6 * j;
        if (occupant[L.len * r + s] >= 0) return false; // taken
        occupant[L.len * r + s] = kind * m + j;         // pass_code, inline (per pass inside the compiler)
        pass_slot[(4 * r + kind) * m + j] = s;
      }
  return true;
}

/// Puts each rank's W's into its free slots, one per free slot while any is pending, the
/// oldest I's W first (W n computes the weights of the rank's n-th I).
constexpr void place_weights(v_layout& L) {
  int const m = L.m, len = L.len, first_input = first_input_code(m), first_weight = first_weight_code(m);
  for (int r = 0; r < L.p; ++r) {
    int* const row = L.occupant.data() + len * r;
    int* const source = L.weight_source.data() + 2 * m * r;
    int inputs_seen = 0, weights_placed = 0;
    for (int s = 0; s < len && weights_placed < 2 * m; ++s) {
      if (row[s] >= 0) { // taken
        if (row[s] >= first_input && row[s] < first_weight) source[inputs_seen++] = row[s];
      } else if (weights_placed < inputs_seen) {
        row[s] = first_weight + weights_placed; // squeeze_weight_code, inline
        L.weight_slot[static_cast<std::size_t>(2 * m * r + weights_placed)] = s;
        ++weights_placed;
      }
    }
  }
}

/// Peak chunk-activations of rank r from slot `from` on, starting from `count0` activations
/// and `pending0` pending W's: a forward adds one, a W in the layout removes one and, when
/// `implicit`, every free slot runs one pending W (an input backward adds one pending).
/// Writes the count and the pending W's after each slot to `count` and `pending` when given.
constexpr int memory_profile(v_layout const& L, int r, int from, int count0, int pending0, bool implicit, int* count,
                             int* pending) {
  int const first_input = 2 * L.m, first_weight = 4 * L.m; // first_input_code, first_weight_code
  int const* const row = L.occupant.data() + L.len * r;
  int held = count0, waiting = pending0, peak = count0;
  for (int s = from; s < L.len; ++s) {
    int const x = row[s];
    if (x < 0) { // free
      if (implicit && waiting > 0) --held, --waiting;
    } else if (x < first_input) ++held;
    else if (x < first_weight) ++waiting;
    else --held;
    peak = held > peak ? held : peak;
    if (count) count[s] = held, pending[s] = waiting;
  }
  return peak;
}

/// The earliest slot the pass with code x may take on rank r: after its inputs and after the
/// same kind's previous micro-batch (for W n: after its I and after W n-1).
constexpr int earliest_slot(v_layout const& L, int r, int x) {
  int const p = L.p, m = L.m;
  if (x >= 4 * m) { // W n (code_kind squeeze_weight, code_index n; inline)
    int const n = x - 4 * m;
    int const source = L.weight_source[static_cast<std::size_t>(2 * m * r + n)];
    int const input = L.pass_slot[static_cast<std::size_t>((4 * r + source / m) * m + source % m)];
    int const previous = n > 0 ? L.weight_slot[static_cast<std::size_t>(2 * m * r + n - 1)] : -1;
    return (input > previous ? input : previous) + 1;
  }
  int const kind = x / m, j = x % m;
  int const* const slot_of = L.pass_slot.data() + j;        // slot_of[(4 rank + kind) m]: micro-batch j's pass
  int after = j > 0 ? slot_of[(4 * r + kind) * m - 1] : -1; // the same pass of micro-batch j-1
  // same rank: F, f, B, b in turn
  if (kind > 0 && slot_of[(4 * r + kind - 1) * m] > after) after = slot_of[(4 * r + kind - 1) * m];
  // the neighbour that feeds this chain: F and B run up the ranks, f and b down
  int const feeder = (kind == v_forward0 || kind == v_input_backward1) ? r - 1 : r + 1;
  if (feeder >= 0 && feeder < p && slot_of[(4 * feeder + kind) * m] > after) after = slot_of[(4 * feeder + kind) * m];
  return after + 1;
}

/// Removes the W's (codes from first_weight_code on) from the layout.
constexpr void drop_weights(v_layout& L) {
  int* const occupant = L.occupant.data();
  int const first_weight = first_weight_code(L.m);
  for (std::size_t i = 0; i < L.occupant.size(); ++i)
    if (occupant[i] >= first_weight) occupant[i] = free_slot;
}

/// Puts each rank's W's into its free slots, oldest I first, one per free slot while any is
/// pending; a W is coded (kind + 2) * m + mb after its I's code kind * m + mb (kinds 4, 5).
/// Sets L.lag, the most slots between an I and its W.
constexpr void final_weights(v_layout& L) {
  int const m = L.m, len = L.len, first_input = first_input_code(m);
  vec<int> queue_v(static_cast<std::size_t>(4 * m), 0); // pending I's: pairs (code, slot)
  int* const queue = queue_v.data();
  L.lag = 0;
  for (int r = 0; r < L.p; ++r) {
    int* const row = L.occupant.data() + len * r;
    int head = 0, tail = 0;
    for (int s = 0; s < len; ++s) {
      int const x = row[s];
      if (x < 0) { // free
        if (head < tail) {
          int const input = queue[2 * head], input_slot = queue[2 * head + 1];
          row[s] = first_input + input; // (kind + 2) m + mb
          L.lag = s - input_slot > L.lag ? s - input_slot : L.lag;
          ++head;
        } else if (tail == 2 * m) break;
      } else if (x >= first_input) {
        queue[2 * tail] = x;
        queue[2 * tail + 1] = s;
        ++tail;
      }
    }
  }
}

} // namespace pipesched::detail
