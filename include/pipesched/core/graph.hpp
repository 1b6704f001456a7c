// pipesched: where each compute pass of a table sits, and what it waits for.
#pragma once

#include "pipesched/core/table.hpp"

namespace pipesched::detail {

/// Index of (pass, stage, micro-batch) in a table: kind slot 0 = F, 1 = B or I, 2 = W.
constexpr int pass_slot(op k) { return k == op::forward ? 0 : (k == op::backward_weight ? 2 : 1); }

struct op_ref {
  int rank = -1;
  int pos = -1;
  constexpr bool found() const { return rank >= 0; }
};

struct op_index {
  int stages = 0, microbatches = 0;
  vec<op_ref> refs;
  route_neighbours route; ///< the passes' neighbours on their routes, looked up per pass
  vec<op> kinds; ///< for slot 1: B or I
  constexpr std::size_t key(int slot, int s, int j) const {
    return (static_cast<std::size_t>(s) * static_cast<std::size_t>(microbatches) + static_cast<std::size_t>(j)) * 3u +
           static_cast<std::size_t>(slot);
  }
  constexpr op_ref at(int slot, int s, int j) const { return refs[key(slot, s, j)]; }
};

/// The pair rule at position i of rank r's list: an action flagged overlap_next is an F,
/// and the action after it is a B or I of another (stage, micro-batch) that carries no flag.
constexpr diagnostic check_pair(vec<action> const& l, int r, int i) {
  action const& a = l[static_cast<std::size_t>(i)];
  if (!overlaps_next(a)) return {};
  if (a.kind != op::forward)
    return {errc::bad_overlap, r, i, a.stage, a.mb, "a pair opens with its forward half: (F;B) or (F;I)"};
  if (static_cast<std::size_t>(i) + 1 >= l.size())
    return {errc::bad_overlap, r, i, a.stage, a.mb, "a pair at the end of the rank's list has no second half"};
  action const& b = l[static_cast<std::size_t>(i) + 1];
  if (b.kind != op::backward && b.kind != op::backward_input)
    return {errc::bad_overlap, r, i, a.stage, a.mb, "the second half of a pair must be a B or an I"};
  if (overlaps_next(b))
    return {errc::bad_overlap, r, i + 1, b.stage, b.mb, "the second half of a pair cannot open another pair"};
  if (b.stage == a.stage && b.mb == a.mb)
    return {errc::bad_overlap, r, i, a.stage, a.mb, "the backward half needs its own forward: the halves are of one stage and micro-batch"};
  return {};
}

/// Builds the index of a table's compute passes, checking ranges, placement, duplicates
/// and mixed fused/split backwards. Transfers are skipped.
constexpr diagnostic build_index(table const& t, op_index& ix) {
  if (t.ranks < 1 || static_cast<int>(t.lists.size()) != t.ranks) return {errc::zero_ranks};
  if (t.microbatches < 1) return {errc::zero_microbatches};
  if (t.stages < 1 || static_cast<int>(t.stage_rank.size()) != t.stages) return {errc::stage_out_of_range};
  ix.stages = t.stages;
  ix.microbatches = t.microbatches;
  ix.route = neighbours_on_routes(t);
  ix.refs.assign(static_cast<std::size_t>(t.stages) * static_cast<std::size_t>(t.microbatches) * 3u, op_ref{});
  ix.kinds.assign(ix.refs.size(), op::forward);
  for (int r = 0; r < t.ranks; ++r) {
    auto const& l = t.lists[static_cast<std::size_t>(r)];
    for (int i = 0; i < static_cast<int>(l.size()); ++i) {
      action const& a = l[static_cast<std::size_t>(i)];
      if (auto d = check_pair(l, r, i)) return d;
      if (!is_compute(a.kind)) continue;
      if (a.stage >= t.stages) return {errc::stage_out_of_range, r, i, a.stage, a.mb};
      if (a.mb >= t.microbatches) return {errc::microbatch_out_of_range, r, i, a.stage, a.mb};
      if (t.rank_of(a.stage) != r) return {errc::wrong_rank, r, i, a.stage, a.mb};
      if (ix.route.index(a.mb, a.stage) < 0)
        return {errc::duplicate_pass, r, i, a.stage, a.mb, "the micro-batch's path skips this stage"};
      if (t.forward_only && a.kind != op::forward)
        return {errc::duplicate_pass, r, i, a.stage, a.mb, "a forward-only table holds no backward pass"};
      int slot = pass_slot(a.kind);
      auto k = ix.key(slot, a.stage, a.mb);
      if (ix.refs[k].found()) {
        if (slot == 1 && ix.kinds[k] != a.kind) return {errc::mixed_backward, r, i, a.stage, a.mb};
        return {errc::duplicate_pass, r, i, a.stage, a.mb};
      }
      ix.refs[k] = op_ref{r, i};
      ix.kinds[k] = a.kind;
    }
  }
  // fused B together with W for the same (stage, micro-batch)
  for (int s = 0; s < t.stages; ++s)
    for (int j = 0; j < t.microbatches; ++j) {
      auto w = ix.at(2, s, j);
      auto b = ix.at(1, s, j);
      if (w.found() && b.found() && ix.kinds[ix.key(1, s, j)] == op::backward)
        return {errc::mixed_backward, w.rank, w.pos, s, j};
    }
  return {};
}

/// Checks that every pass a schedule must run is present (coverage).
constexpr diagnostic check_coverage(table const& t, op_index const& ix) {
  for (int j = 0; j < t.microbatches; ++j)
    for (int i = 0; i < t.route_length(j); ++i) {
      int s = t.route_at(j, i);
      if (!ix.at(0, s, j).found()) return {errc::missing_pass, t.rank_of(s), -1, s, j, "forward F"};
      if (t.forward_only) continue;
      auto b = ix.at(1, s, j);
      if (!b.found()) return {errc::missing_pass, t.rank_of(s), -1, s, j, "backward B or I"};
      bool split = ix.kinds[ix.key(1, s, j)] == op::backward_input;
      if (split && !ix.at(2, s, j).found()) return {errc::missing_pass, t.rank_of(s), -1, s, j, "weight pass W"};
    }
  return {};
}

/// Up to two passes that compute action a waits for (cross-rank or same-rank); -1 rank if none.
struct deps {
  op_ref d[2];
  int n = 0;
};

constexpr deps dependencies(op_index const& ix, action const& a) {
  deps out{};
  auto add = [&](op_ref r) {
    if (r.found()) out.d[out.n++] = r;
  };
  switch (a.kind) {
  case op::forward: {
    int prev = ix.route.before(a.mb, a.stage);
    if (prev >= 0) add(ix.at(0, prev, a.mb));
    break;
  }
  case op::backward:
  case op::backward_input: {
    int next = ix.route.after(a.mb, a.stage);
    if (next >= 0) add(ix.at(1, next, a.mb));
    add(ix.at(0, a.stage, a.mb)); // own forward (and the loss on the route's last stage)
    break;
  }
  case op::backward_weight: add(ix.at(1, a.stage, a.mb)); break;
  default: break;
  }
  return out;
}

} // namespace pipesched::detail
