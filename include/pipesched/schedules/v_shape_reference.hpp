// pipesched: the zero-bubble repository's V-Half and V-Min construction, written from its
// rules (shared/reference/schedules.md, "V-shape family"): a fixed building block per rank,
// repeated every 6 slots per micro-batch; pending W's put into idle slots; warm-up and
// cool-down squeezed (twice: with the W's placed, then without), each squeeze followed by
// an eager run at unit costs that turns slots into start times. The V-shape generators time
// it as one of their candidates, so they are never longer than it at the same memory.
#pragma once

#include "pipesched/core/table.hpp"
#include "pipesched/core/vec.hpp"

namespace pipesched::detail {

/// Kinds of pass in a rank's block grid, in the reference's order: chunk 0's and chunk 1's
/// forward, chunk 1's and chunk 0's input backward (B flows up from rank 0, where the loss
/// is; b flows down), then the W's: one list, or one per chunk (W of B, W of b).
enum block_kind : int { blk_fwd0 = 0, blk_fwd1 = 1, blk_bwd1 = 2, blk_bwd0 = 3, blk_w = 4, blk_w0 = 5 };

/// Every pass of every rank as a slot on that rank's time line: slot[(r * 6 + kind) * m + j]
/// for micro-batch j; `kinds` lists in use (4: no W's yet; 5: one W list, the 2m W's of the
/// rank in the order of its backwards, held where lists 4 and 5 would be; 6: W's per chunk).
struct block_grid {
  int p = 0, m = 0, kinds = 4;
  vec<int> slot;
  constexpr int* at(int r, int kind) { return slot.data() + (static_cast<std::size_t>(r) * 6 + static_cast<std::size_t>(kind)) * static_cast<std::size_t>(m); }
  constexpr int const* at(int r, int kind) const {
    return slot.data() + (static_cast<std::size_t>(r) * 6 + static_cast<std::size_t>(kind)) * static_cast<std::size_t>(m);
  }
  /// Passes in list `kind` (the one W list holds 2m).
  constexpr int count(int kind) const { return kinds == 5 && kind == blk_w ? 2 * m : m; }
  /// Lists in use, counting the one W list once.
  constexpr int lists() const { return kinds == 6 ? 6 : (kinds == 5 ? 5 : 4); }
  /// The list and index of an owner code kind * m + j (the one W list's second half reads
  /// as list 5).
  constexpr int kind_of(int code) const {
    int const k = code / m;
    return kinds == 5 && k == blk_w0 ? blk_w : k;
  }
  constexpr int index_of(int code) const { return kinds == 5 && code / m >= blk_w ? code - blk_w * m : code % m; }
  /// One past the largest slot in use on any rank.
  constexpr int end() const {
    int e = 0;
    for (int r = 0; r < p; ++r)
      for (int k = 0; k < lists(); ++k) {
        int const last = at(r, k)[count(k) - 1];
        e = last + 1 > e ? last + 1 : e;
      }
    return e;
  }
};

/// The reference's blocks (schedules.md, "V-shape family"): slots of micro-batch 0's
/// F, f, B, b on rank i; micro-batch j adds 6j.
constexpr block_grid reference_block_grid(int p, int m, bool v_min) {
  block_grid g{p, m, 4, vec<int>(static_cast<std::size_t>(p) * 6 * static_cast<std::size_t>(m), 0)};
  for (int i = 0; i < p; ++i) {
    int first[4] = {};
    if (v_min) {
      int const gap = p % 3 == 0 ? 2 : 0;
      first[0] = i, first[1] = 2 * p - i - 1, first[2] = 2 * p + gap + i, first[3] = 4 * p + gap - i - 1;
    } else {
      int const gap = p % 2 == 0 ? 3 : 0;
      first[0] = 2 * i, first[1] = 3 * p - i - 2, first[2] = 3 * p + gap + 2 * i - 1, first[3] = 6 * p + gap - i - 2;
    }
    for (int k = 0; k < 4; ++k)
      for (int j = 0; j < m; ++j) g.at(i, k)[j] = first[k] + 6 * j;
  }
  return g;
}

/// Which pass holds each slot of rank r: owner[s] = kind * m + j (grid::kind_of and
/// index_of read it back), or -1 (idle); lists 0..lists-1, `span` slots. (Raw pointers in
/// these loops: cheaper than vec::operator[] in constant evaluation.)
constexpr void block_owners(block_grid const& g, int r, int lists, int span, vec<int>& owner) {
  owner.assign(static_cast<std::size_t>(span), -1);
  int* const own = owner.data();
  int const m = g.m;
  int const* const base = g.slot.data() + static_cast<std::size_t>(r) * 6 * static_cast<std::size_t>(m);
  for (int k = 0; k < lists; ++k) {
    int const* const sl = base + static_cast<std::size_t>(k) * static_cast<std::size_t>(m);
    int const n = k < 4 ? m : g.count(k);
    for (int j = 0; j < n; ++j) own[sl[j]] = k * m + j;
  }
}

/// Puts rank r's W's into its idle slots: walking the time line, each backward adds a
/// pending W (one list, or per chunk when `per_chunk`: B's into list 4, b's into list 5),
/// and each idle slot takes the oldest pending W (list 4 first); the rest go after the end.
constexpr void put_weights(block_grid& g, int r, bool per_chunk, int span, vec<int>& owner) {
  block_owners(g, r, 4, span, owner);
  int const* const own = owner.data();
  int const m = g.m;
  int pending[2] = {0, 0}, placed[2] = {0, 0}; // one list (2m W's in list 4's place) or two
  int* const w[2] = {g.at(r, blk_w), g.at(r, blk_w0)};
  int s = 0;
  for (; s < span; ++s) {
    int const o = own[s];
    if (o >= 0) {
      if (o >= blk_bwd1 * m) ++pending[per_chunk && o >= blk_bwd0 * m ? 1 : 0];
      continue;
    }
    if (pending[0] > 0) {
      w[0][placed[0]++] = s;
      --pending[0];
    } else if (pending[1] > 0) {
      w[1][placed[1]++] = s;
      --pending[1];
    }
  }
  for (int l = 0; l < 2; ++l)
    while (pending[l] > 0) {
      w[l][placed[l]++] = s++;
      --pending[l];
    }
}

/// Rank r's peak memory in chunk-activations (F and f +1; an explicit W -1; with no W's
/// placed, each idle slot retires one pending backward's W).
constexpr int block_peak(block_grid const& g, int r, int span, vec<int>& owner) {
  block_owners(g, r, g.lists(), span, owner);
  int const* const own = owner.data();
  int const m = g.m;
  bool const implicit = g.kinds == 4;
  int held = 0, peak = 0, pending = 0;
  for (int s = 0; s < span; ++s) {
    int const o = own[s];
    if (o >= 0) {
      if (o < blk_bwd1 * m) ++held;
      else if (o >= blk_w * m) --held;
      else ++pending;
    } else if (implicit && pending > 0) {
      --held;
      --pending;
    }
    peak = held > peak ? held : peak;
  }
  return peak;
}

/// The k-th smallest (0-based) of two increasing arrays of n distinct values each, by binary
/// search over how many come from the first.
constexpr int kth_of_two(int const* a, int const* b, int n, int k) {
  int lo = k + 1 - n > 0 ? k + 1 - n : 0, hi = k + 1 < n ? k + 1 : n;
  while (true) {
    int const i = (lo + hi) / 2, j = k + 1 - i; // i from a, j from b
    if (i < hi && j > 0 && b[j - 1] > a[i]) lo = i + 1;
    else if (i > lo && j < n && a[i - 1] > b[j]) hi = i - 1;
    else {
      int const x = i > 0 ? a[i - 1] : -1, y = j > 0 ? b[j - 1] : -1;
      return x > y ? x : y;
    }
  }
}

/// The reference's squeeze ("reorder"): every pass in slot order (ties: lower rank, then
/// kind); from rank 0's first b to the last micro-batch's chunk-0 forward (the steady
/// state) and, when no W's are placed, before that too, a pass keeps its slot; elsewhere it
/// moves to the earliest slot after its dependencies (the input from the neighbouring rank,
/// the pass before it of its micro-batch, its kind's previous micro-batch; a W: the
/// backward it belongs to) that no pass already placed holds and that keeps the rank's peak
/// memory at the largest peak any rank had before the squeeze (block_peak). With
/// `with_weights` the W's are placed first (one list) and move too; without, they are
/// placed after.
///
/// Each rank's activation count along its time line is kept up to date as passes move, so
/// that a move is checked in time proportional to what it changes: with the W's placed,
/// `held` after each slot (F, f +1; W -1); without, the state before each slot, `held`
/// and `pending` backwards (an idle slot retires one pending backward's W, as block_peak).
constexpr void squeeze_blocks(block_grid& g, bool with_weights) {
  int const p = g.p, m = g.m;
  vec<int> owner;
  int span = g.end() + 2 * m + 2;
  if (with_weights) {
    g.kinds = 5;
    for (int r = 0; r < p; ++r) put_weights(g, r, false, span, owner);
    span = g.end() + 1;
  }
  int const lists = g.lists();
  int limit = 0;
  for (int r = 0; r < p; ++r) {
    int const peak = block_peak(g, r, span, owner);
    limit = peak > limit ? peak : limit;
  }
  auto const uspan = static_cast<std::size_t>(span), um = static_cast<std::size_t>(m);
  std::size_t const stride = uspan + 1; // per rank in the arrays below
  // per rank and slot: the pass there now (code, -1 idle), the one there before the
  // squeeze (the visiting order), the count, pending backwards, taken by a visited pass
  vec<int> arrays(4 * static_cast<std::size_t>(p) * stride, -1);
  int* const now_owner = arrays.data();
  int* const first_owner = now_owner + static_cast<std::size_t>(p) * stride;
  int* const held_at = first_owner + static_cast<std::size_t>(p) * stride;
  int* const pending_at = held_at + static_cast<std::size_t>(p) * stride;
  vec<unsigned char> taken_v(static_cast<std::size_t>(p) * stride, 0);
  unsigned char* const taken = taken_v.data();
  int const w_code = blk_w * m;
  for (int r = 0; r < p; ++r) {
    std::size_t const row = static_cast<std::size_t>(r) * stride;
    block_owners(g, r, lists, span, owner);
    int const* const own = owner.data();
    int held = 0, pending = 0;
    for (std::size_t s = 0; s < uspan; ++s) {
      int const o = own[s];
      now_owner[row + s] = first_owner[row + s] = o;
      if (with_weights) {
        held += o < 0 ? 0 : (o < blk_bwd1 * m ? 1 : (o >= w_code ? -1 : 0));
        held_at[row + s] = held;
        continue;
      }
      held_at[row + s] = held;
      pending_at[row + s] = pending;
      if (o >= 0) {
        if (o < blk_bwd1 * m) ++held;
        else ++pending;
      } else if (pending > 0) {
        --held;
        --pending;
      }
    }
    held_at[row + uspan] = held;
    pending_at[row + uspan] = pending;
  }
  int* const slots = g.slot.data(); // slots[(r * 6 + kind) * m + j]
  int phase = 0;                    // 0: warm-up, 1: steady state (kept), 2: cool-down
  for (std::size_t s = 0; s < uspan; ++s)
    for (int r = 0; r < p; ++r) {
      std::size_t const row = static_cast<std::size_t>(r) * stride;
      int const o = first_owner[row + s];
      if (o < 0) continue;
      int const kind = g.kind_of(o), j = g.index_of(o);
      if (kind == blk_bwd0 && r == 0 && phase == 0) phase = 1;
      bool const keep = phase == 1 || (phase == 0 && !with_weights);
      if (phase == 1 && kind == blk_fwd0 && j == m - 1) phase = 2;
      if (keep) {
        taken[row + s] = 1;
        continue;
      }
      std::size_t const grid_row = static_cast<std::size_t>(r) * 6 * um;
      int* const mine = slots + grid_row + static_cast<std::size_t>(kind) * um;
      int dep = -1;
      if ((kind == blk_fwd0 || kind == blk_bwd1) && r > 0) dep = slots[grid_row - 6 * um + static_cast<std::size_t>(kind) * um + static_cast<std::size_t>(j)];
      if ((kind == blk_fwd1 || kind == blk_bwd0) && r + 1 < p) dep = slots[grid_row + 6 * um + static_cast<std::size_t>(kind) * um + static_cast<std::size_t>(j)];
      if (kind > blk_fwd0 && kind < blk_w) {
        int const x = slots[grid_row + static_cast<std::size_t>(kind - 1) * um + static_cast<std::size_t>(j)];
        dep = x > dep ? x : dep;
      }
      if (kind == blk_w) { // the j-th backward in time
        int const x = kth_of_two(slots + grid_row + blk_bwd1 * um, slots + grid_row + blk_bwd0 * um, m, j);
        dep = x > dep ? x : dep;
      }
      if (j > 0) dep = mine[j - 1] > dep ? mine[j - 1] : dep;
      ++dep;
      int const was = mine[j];
      std::size_t const w = static_cast<std::size_t>(was);
      int to = -1;
      if (with_weights) {
        // a forward raises the count over [t, was): the earliest slot it fits at is the
        // same for every later slot, so find it once, scanning down from was; B, b and W
        // never raise it
        int low = dep;
        if (kind <= blk_fwd1) {
          low = was;
          while (low > dep && held_at[row + static_cast<std::size_t>(low - 1)] + 1 <= limit) --low;
        }
        for (int t = low; t < was && to < 0; ++t)
          if (!taken[row + static_cast<std::size_t>(t)]) to = t;
        if (to >= 0) {
          int const delta = kind <= blk_fwd1 ? 1 : (kind >= blk_w ? -1 : 0);
          for (std::size_t x = static_cast<std::size_t>(to); x < w; ++x) held_at[row + x] += delta;
        }
      } else {
        // re-run the count from t with the pass moved there, until past `was` it is back
        // to what it was (the rest is unchanged); the first t that stays within `limit`
        for (int t = dep; t < was && to < 0; ++t) {
          std::size_t const tt = static_cast<std::size_t>(t);
          if (taken[row + tt]) continue;
          int held = held_at[row + tt], pending = pending_at[row + tt];
          bool ok = true;
          std::size_t x = tt;
          for (; x < uspan; ++x) {
            int const q = x == tt ? o : (x == w ? -1 : now_owner[row + x]);
            if (q >= 0) {
              if (q < blk_bwd1 * m) ++held;
              else ++pending;
            } else if (pending > 0) {
              --held;
              --pending;
            }
            if (held > limit) {
              ok = false;
              break;
            }
            if (x >= w && held == held_at[row + x + 1] && pending == pending_at[row + x + 1]) break;
          }
          if (!ok) continue;
          to = t;
          // commit: the counts before each slot from t to where they met the old ones
          held = held_at[row + tt], pending = pending_at[row + tt];
          for (std::size_t y = tt; y <= x && y < uspan; ++y) {
            held_at[row + y] = held;
            pending_at[row + y] = pending;
            int const q = y == tt ? o : (y == w ? -1 : now_owner[row + y]);
            if (q >= 0) {
              if (q < blk_bwd1 * m) ++held;
              else ++pending;
            } else if (pending > 0) {
              --held;
              --pending;
            }
          }
        }
      }
      if (to >= 0) {
        now_owner[row + w] = -1;
        now_owner[row + static_cast<std::size_t>(to)] = o;
        mine[j] = to;
      }
      taken[row + static_cast<std::size_t>(mine[j])] = 1;
    }
  if (!with_weights) {
    g.kinds = 5;
    int const end = g.end() + 2 * m + 2;
    for (int r = 0; r < p; ++r) put_weights(g, r, false, end, owner);
  }
}

/// The reference's eager run at unit costs and no latency: every pass, in slot order (ties:
/// lower rank), starts when its dependencies and its rank's previous pass have ended; its
/// slot becomes that start time.
constexpr void run_blocks_eagerly(block_grid& g) {
  int const p = g.p, m = g.m;
  int const span = g.end();
  auto const uspan = static_cast<std::size_t>(span), um = static_cast<std::size_t>(m);
  vec<int> owner, start_owner(static_cast<std::size_t>(p) * uspan, -1);
  for (int r = 0; r < p; ++r) {
    block_owners(g, r, g.lists(), span, owner);
    for (std::size_t s = 0; s < uspan; ++s) start_owner[static_cast<std::size_t>(r) * uspan + s] = owner[s];
  }
  block_grid out = g;
  int* const at = out.slot.data(); // at[(r * 6 + kind) * m + j]: raw, cheap in constant evaluation
  int const* const starts = start_owner.data();
  vec<int> rank_free(static_cast<std::size_t>(p), 0);
  int* const free_at = rank_free.data();
  bool const one_list = g.kinds == 5;
  for (std::size_t s = 0; s < uspan; ++s)
    for (int r = 0; r < p; ++r) {
      int const o = starts[static_cast<std::size_t>(r) * uspan + s];
      if (o < 0) continue;
      int kind = o / m, j = o % m;
      if (one_list && kind == blk_w0) kind = blk_w, j += m;
      std::size_t const row = static_cast<std::size_t>(r) * 6 * um;
      int begin = free_at[r];
      int x = -1; // the end of the pass it waits for, if any
      if ((kind == blk_fwd0 || kind == blk_bwd1) && r > 0) x = at[row - 6 * um + static_cast<std::size_t>(kind) * um + static_cast<std::size_t>(j)] + 1;
      if ((kind == blk_fwd1 || kind == blk_bwd0) && r + 1 < p) x = at[row + 6 * um + static_cast<std::size_t>(kind) * um + static_cast<std::size_t>(j)] + 1;
      begin = x > begin ? x : begin;
      if (kind > blk_fwd0 && kind < blk_w) {
        int const y = at[row + static_cast<std::size_t>(kind - 1) * um + static_cast<std::size_t>(j)] + 1;
        begin = y > begin ? y : begin;
      }
      std::size_t const me = row + static_cast<std::size_t>(kind) * um + static_cast<std::size_t>(j);
      if (j > 0) begin = at[me - 1] + 1 > begin ? at[me - 1] + 1 : begin;
      at[me] = begin;
      free_at[r] = begin + 1;
    }
  g = static_cast<block_grid&&>(out);
}

/// The reference's V-Half (v_min false) or V-Min order for p ranks and m micro-batches, as
/// the reference builds it: blocks, W's placed, squeezed, run eagerly; W's taken out,
/// squeezed again, run eagerly; W's placed per chunk; each rank's passes in slot order. It
/// depends on (p, m) only. V placement: chunk 0 is stage r, chunk 1 stage 2p-1-r.
constexpr table reference_v_order_built(int p, int m, bool v_min) {
  block_grid g = reference_block_grid(p, m, v_min);
  squeeze_blocks(g, true);
  run_blocks_eagerly(g);
  g.kinds = 4;
  squeeze_blocks(g, false);
  run_blocks_eagerly(g);
  g.kinds = 6;
  vec<int> owner;
  int const span = g.end() + 2 * m + 2;
  for (int r = 0; r < p; ++r) put_weights(g, r, true, span, owner);
  table t = make_table(p, m, 2, placement::v_shape);
  t.split_backward = true;
  int const S = 2 * p;
  for (int r = 0; r < p; ++r) {
    block_owners(g, r, 6, g.end(), owner);
    auto& list = t.lists[static_cast<std::size_t>(r)];
    list.reserve(6 * static_cast<std::size_t>(m));
    for (int o : owner) {
      if (o < 0) continue;
      int const kind = o / m, j = o % m;
      int const stage = kind == blk_fwd0 || kind == blk_bwd0 || kind == blk_w0 ? r : S - 1 - r;
      int const chunk = stage == r ? 0 : 1;
      op const k = kind <= blk_fwd1 ? op::forward : (kind <= blk_bwd0 ? op::backward_input : op::backward_weight);
      list.push_back(make_action(k, stage, j, chunk));
    }
  }
  return t;
}

/// The same order for any m, made cheap for large m: from m0 = 2p + 4 on, each micro-batch
/// more adds one steady-state period (six passes) to each rank's order and changes nothing
/// else, so the order for m > m0 is the order for m0 with its period repeated m - m0 more
/// times inside the stretch where the order repeats every six passes. (Checked against the
/// full construction for every p <= 16 and m0 <= m <= 6p + 12: tests/cpu/schedules_v_shape.cpp,
/// schedule.v_shape.reference_order_extends.) Each kind of pass keeps micro-batch order, so a
/// rank's order is its sequence of kinds.
constexpr table reference_v_order(int p, int m, bool v_min) {
  int const m0 = 2 * p + 4;
  if (m <= m0) return reference_v_order_built(p, m, v_min);
  table const base = reference_v_order_built(p, m0, v_min);
  table t = make_table(p, m, 2, placement::v_shape);
  t.split_backward = true;
  int const S = 2 * p;
  for (int r = 0; r < p; ++r) {
    action const* const k = base.lists[static_cast<std::size_t>(r)].data();
    int const n = static_cast<int>(base.lists[static_cast<std::size_t>(r)].size());
    auto same = [&](int i, int j) { return k[i].kind == k[j].kind && k[i].chunk == k[j].chunk; };
    // the longest stretch where the order repeats every six passes
    int best = -1, best_len = 0;
    for (int i = 0; i + 6 < n;) {
      int j = i;
      while (j + 6 < n && same(j, j + 6)) ++j;
      if (j - i > best_len) best_len = j - i, best = i;
      i = j + 1;
    }
    if (best_len < 6) return failed({errc::not_generated}); // not reached for p <= 16 (test)
    int const cut = best + 6; // repeat the six passes before it
    auto& list = t.lists[static_cast<std::size_t>(r)];
    list.reserve(6 * static_cast<std::size_t>(m));
    int next[2][4] = {}; // next micro-batch per (chunk, kind)
    auto add = [&](action const& a) {
      int const kind = a.kind == op::forward ? 0 : (a.kind == op::backward_input ? 1 : 2);
      list.push_back(make_action(a.kind, a.chunk == 0 ? r : S - 1 - r, next[a.chunk][kind]++, a.chunk));
    };
    for (int i = 0; i < cut; ++i) add(k[i]);
    for (int rep = m0; rep < m; ++rep)
      for (int i = cut - 6; i < cut; ++i) add(k[i]);
    for (int i = cut; i < n; ++i) add(k[i]);
  }
  return t;
}

} // namespace pipesched::detail
