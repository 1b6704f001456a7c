// pipesched: V-Half and V-Min, the memory-controlled V-shape schedules.
//
// Built from building blocks (slots of micro-batch 0's passes, repeated every 6 slots),
// squeezed, and timed. The pieces (v_shape/), each including those before it:
//   block.hpp    v_kind, v_block, each family's block and the candidate blocks
//   layout.hpp   pass codes, v_layout, laying out a block, placing W's, memory counts
//   squeeze.hpp  moving passes to earlier free slots within the memory
//   order.hpp    per-rank orders, repeating the steady state, the table, unit-cost runs
// and this header: a block's finished layout, choosing the block, the cost-aware candidates
// and the families.
#pragma once

#include "pipesched/core/vec.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/schedules/split_timing.hpp"
#include "pipesched/schedules/v_shape/block.hpp"
#include "pipesched/schedules/v_shape/layout.hpp"
#include "pipesched/schedules/v_shape/order.hpp"
#include "pipesched/schedules/v_shape/squeeze.hpp"
#include "pipesched/schedules/v_shape_reference.hpp"

namespace pipesched {

namespace detail {

/// Parameter check of the V-shape families: two chunks per rank (v = 0 or 2).
constexpr diagnostic check_v_shape(params const& pr) {
  if (auto d = check_common(pr)) return d;
  if (pr.v != 0 && pr.v != 2) return {errc::needs_two_chunks};
  return {};
}

/// The finished slot layout of a V-shape schedule built from a building block; false when
/// the block's passes collide or its memory before squeezing exceeds `budget`
/// chunk-activations on some rank:
/// 1. micro-batch j's passes at the block's slots + 6j;
/// 2. each rank's W's into its free slots, oldest first;
/// 3. warm-up and cool-down squeezed with those W's in place; the W's removed;
/// 4. cool-down squeezed again with the W's implicit; the W's put back, oldest first.
/// No step raises a rank's peak memory, so the result stays within the block's peak.
constexpr bool v_block_layout(v_block const& block, int p, int m, int budget, v_layout& L) {
  vec<int> base_v(static_cast<std::size_t>(4 * p), 0);
  block_slots(block, p, base_v.data());
  if (!block_usable(base_v.data(), p)) return false;
  L = v_layout{};
  L.p = p;
  L.m = m;
  if (!lay_out(L, base_v.data())) return false;
  for (int r = 0; r < p; ++r)
    if (memory_profile(L, r, 0, 0, 0, true, nullptr, nullptr) > budget) return false;
  place_weights(L);
  squeeze(L, true);
  drop_weights(L);
  squeeze(L, false);
  final_weights(L);
  return true;
}

/// Micro-batches at which candidate blocks are built and compared: from about 2p on the idle
/// time no longer changes, and longer runs are such a run with more steady-state periods.
constexpr int v_trial_microbatches(int p, int m) { return m < 2 * p + 6 ? m : 2 * p + 6; }

/// The family's own block, then its candidates, each built for (p, min(m, 2p + 6)) and run at
/// unit costs; the shortest largest rank span (then makespan) within `budget` wins, ties to
/// the earlier block. For more micro-batches the winner's steady state is repeated (see
/// extend_order; should that fail, or without `repeat`, the winner is built again for twice
/// as many micro-batches and so on up to m: the same order, at a higher cost in constant
/// evaluation). The order depends on (p, m) only.
constexpr table v_shape_schedule(bool half, int p, int m, int budget, bool repeat = true) {
  int const m0 = v_trial_microbatches(p, m);
  v_block blocks[16] = {half ? v_half_block(p) : v_min_block(p)};
  int const n = 1 + v_candidates(half, p, m, blocks + 1);
  v_layout best, L;
  vec<int> order;
  v_block best_block{};
  unit_times best_u{};
  for (int i = 0; i < n; ++i) {
    if (!v_block_layout(blocks[i], p, m0, budget, L)) continue;
    v_order(L, order);
    unit_times u = unit_run(p, m0, order);
    if (u.span < 0) continue;
    if (best_u.span < 0 || u.span < best_u.span || (u.span == best_u.span && u.makespan < best_u.makespan)) {
      best = static_cast<v_layout&&>(L);
      best_block = blocks[i];
      best_u = u;
    }
  }
  if (best_u.span < 0) return failed({errc::memory_bound_exceeded, -1, -1, -1, -1, "no V-shape building block fits"});
  int mb = m0;
  while (mb < m && !(repeat && extend_order(best, m, order))) {
    mb = repeat && 2 * mb < m ? 2 * mb : m;
    v_block_layout(best_block, p, mb, budget, best);
  }
  if (mb == m) v_order(best, order);
  table t = v_table(p, m, order);
  t.memory_bound_chunks = budget;
  return t;
}

/// The textbook order of a building block (schedules.md, "V-shape family", without its
/// last step): micro-batch j's passes at the block's slots + 6j, each free slot taking the
/// oldest pending W (one whose I ran in an earlier slot), the W's left at the end. A failed
/// table when the block's passes collide.
constexpr table v_block_plain(v_block const& blk, int p, int m) {
  vec<int> base_v(static_cast<std::size_t>(4 * p), 0);
  block_slots(blk, p, base_v.data());
  v_layout L{};
  L.p = p;
  L.m = m;
  if (!block_usable(base_v.data(), p) || !lay_out(L, base_v.data()))
    return failed({errc::memory_bound_exceeded, -1, -1, -1, -1, "the building block's passes collide"});
  final_weights(L);
  vec<int> order;
  v_order(L, order);
  return v_table(p, m, order);
}

/// V-Half (half) or V-Min for params `pr` within `budget` chunk-activations: the building-
/// block order of v_shape_schedule, which is made for F = B = W and no latency, and, where
/// the costs are other or m < 2p (the blocks' warm-up and cool-down then dominate), more
/// candidates timed under pr.cost: the family's own block squeezed (the reference greedy's
/// order, when another block won at unit costs) and laid out plainly (the textbook order,
/// v_block_plain), and the winner and the plain order with their W's moved into the waits
/// for late inputs (float_weights_into_waits, at most `budget`). The shortest largest rank span (then
/// makespan) wins, so the result is never longer than the textbook order under any costs
/// and latency, at no more than `budget` (tests/cpu/schedules_textbook.cpp).
constexpr table v_shape_for_costs(bool half, params const& pr, int budget) {
  int const p = pr.p, m = pr.m;
  table ours = v_shape_schedule(half, p, m, budget);
  cost_model const& c = pr.cost;
  bool const balanced = c.f == c.b && c.b == c.w && c.c == 0;
  if (!ours.ok() || (balanced && m >= 2 * p)) return ours;
  split_timing best_time = time_split_order(ours, c);
  table plain = v_block_plain(half ? v_half_block(p) : v_min_block(p), p, m);
  floated_order floated_ours = float_weights_into_waits(ours, c, budget);
  table winner = static_cast<table&&>(ours);
  auto consider = [&](table&& t, split_timing const& time) {
    if (t.ok() && time.ok && peak_chunks(t) <= budget && shorter(time, best_time)) {
      winner = static_cast<table&&>(t);
      best_time = time;
    }
  };
  consider(static_cast<table&&>(floated_ours.t), floated_ours.time);
  {
    // the family's own block with the reference's last step (squeezed): the reference greedy's
    // order, when another block won at unit costs
    v_layout L{};
    if (v_block_layout(half ? v_half_block(p) : v_min_block(p), p, m, budget, L)) {
      vec<int> order;
      v_order(L, order);
      table own = v_table(p, m, order);
      split_timing const own_time = time_split_order(own, c);
      consider(static_cast<table&&>(own), own_time);
    }
  }
  if (plain.ok() && peak_chunks(plain) <= budget) {
    split_timing const plain_time = time_split_order(plain, c);
    floated_order floated_plain = float_weights_into_waits(plain, c, peak_chunks(plain));
    consider(static_cast<table&&>(plain), plain_time);
    consider(static_cast<table&&>(floated_plain.t), floated_plain.time);
  }
  winner.memory_bound_chunks = budget;
  return winner;
}

/// The reference's construction (v_shape_reference.hpp) with the family's memory bound,
/// `budget` chunk-activations.
constexpr table reference_v_candidate(bool half, params const& pr, int budget) {
  table t = reference_v_order(pr.p, pr.m, !half);
  t.memory_bound_chunks = budget;
  return t;
}

/// Whether the reference's construction `alt` beats `own` under `cost`: it fits `budget`
/// chunk-activations and its list-order run has a shorter largest rank span (or an equal one
/// and a shorter makespan).
constexpr bool reference_v_order_shorter(table const& own, table const& alt, cost_model const& cost, int budget) {
  if (!own.ok() || !alt.ok() || peak_chunks(alt) > budget) return false;
  split_timing const a = time_split_order(alt, cost);
  return a.ok && shorter(a, time_split_order(own, cost));
}

/// v_shape_for_costs and the reference repository's construction (v_shape_reference.hpp),
/// the shorter (reference_v_order_shorter). The V-shape families' generate().
constexpr table v_shape_with_reference(bool half, params const& pr, int budget) {
  table own = v_shape_for_costs(half, pr, budget);
  table alt = reference_v_candidate(half, pr, budget);
  if (reference_v_order_shorter(own, alt, pr.cost, budget)) return alt;
  return own;
}

} // namespace detail

/// V-Half (Qi et al. 2024, V placement, backward split into I and W): peak activation
/// memory floor((p+2)/2) in the reference unit on every rank, about half of 1F1B's, for
/// any m >= 1. Built from building blocks (detail::v_block_layout): V-Half's own block and a
/// few others that fit the same memory (detail::v_candidates) are laid out, squeezed and run
/// at unit costs, and the one with the fewest idle slots on the worst rank is kept (idle
/// slots: with F = B = W = 1 per chunk and no latency, a rank's span from its first pass to
/// its last, minus its 6m busy slots). With other costs or latency, or m < 2p, the textbook
/// block order and W's moved into waits are timed as well (detail::v_shape_for_costs): never
/// longer than the textbook order.
struct v_half_family {
  static constexpr const char* name = "v-half";
  static constexpr int budget(params const& pr) { return 2 * ((pr.p + 2) / 2); }
  static constexpr diagnostic check(params const& pr) { return detail::check_v_shape(pr); }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    return detail::v_shape_with_reference(true, pr, budget(pr));
  }
  // the same in two constant evaluations for the compiler (split_generator)
  static constexpr table generate_own(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    return detail::v_shape_for_costs(true, pr, budget(pr));
  }
  static constexpr table alternative(params const& pr) { return detail::reference_v_candidate(true, pr, budget(pr)); }
  static constexpr bool prefer_alternative(table const& own, table const& alt, params const& pr) {
    return detail::reference_v_order_shorter(own, alt, pr.cost, budget(pr));
  }
};

/// V-Min: peak activation memory floor((p+4)/3) in the reference unit on every rank (about
/// a third of 1F1B's), for any m >= 1; built as V-Half, from V-Min's block and the others
/// that fit, and timed against the textbook order and the reference's construction as
/// V-Half (detail::v_shape_for_costs, detail::v_shape_with_reference).
struct v_min_family {
  static constexpr const char* name = "v-min";
  static constexpr int budget(params const& pr) { return 2 * ((pr.p + 4) / 3); }
  static constexpr diagnostic check(params const& pr) { return detail::check_v_shape(pr); }
  static constexpr table generate(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    return detail::v_shape_with_reference(false, pr, budget(pr));
  }
  static constexpr table generate_own(params const& pr) {
    if (auto d = check(pr)) return failed(d);
    return detail::v_shape_for_costs(false, pr, budget(pr));
  }
  static constexpr table alternative(params const& pr) { return detail::reference_v_candidate(false, pr, budget(pr)); }
  static constexpr bool prefer_alternative(table const& own, table const& alt, params const& pr) {
    return detail::reference_v_order_shorter(own, alt, pr.cost, budget(pr));
  }
};

template <class... Ps> using v_half = schedule<v_half_family, Ps...>;
template <class... Ps> using v_min = schedule<v_min_family, Ps...>;

} // namespace pipesched
