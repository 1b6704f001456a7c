// pipesched: lowering, second step — a buffer slot for every boundary of a lowered table.
#pragma once

#include <cstdint>

#include "pipesched/core/diagnostic.hpp"
#include "pipesched/core/table.hpp"
#include "pipesched/core/vec.hpp"

namespace pipesched::detail {

/// Gives every boundary of a lowered table a buffer slot, rank by rank in list order: a
/// boundary takes a free slot when it is written first (a receive, or the pass that
/// produces it) and frees it after its last reader (the send; for an input activation and
/// an output gradient, the B or the W that closes its backward). Slots are taken at a
/// boundary's first write, so a rank's slot count equals the largest number of boundaries
/// alive at one position of its list. With `extra` > 0 (double buffering) the rank gets that
/// many slots more and uses them as a round robin — a new boundary takes the slot freed
/// longest ago, never the one just freed — so that a receive or a pass need not wait for the
/// last reader of the newest free slot. A slot freed by an action is not reused by an output
/// of the same action. Reads of boundaries with no writer (only in broken imported tables, which
/// verify() rejects) stay no_slot. `route`: neighbours_on_routes(t) (lowering does not
/// change the routes, so those of the compute table serve).
constexpr void assign_slots(table& t, int extra, route_neighbours const& route) {
  std::size_t const sm = static_cast<std::size_t>(t.stages) * static_cast<std::size_t>(t.microbatches);
  // what holds each boundary: 0 activation entering s, 1 activation leaving s for another
  // rank (sender side), 2 gradient of s's output, 3 input gradient leaving s (sender side)
  vec<std::int32_t> where(sm * 4, -1);
  auto key = [&](int what, int s, int j) {
    return static_cast<std::size_t>(what) * sm +
           static_cast<std::size_t>(s) * static_cast<std::size_t>(t.microbatches) + static_cast<std::size_t>(j);
  };
  t.slot_count.assign(static_cast<std::size_t>(t.ranks), 0);
  vec<std::int32_t> free_slots;
  // One walk of rank r's list. pool < 0: free slots reused last-freed-first, new slots made
  // when none is free (the count is the peak of live boundaries). pool >= 0: a fixed pool of
  // that many slots, reused first-freed-first (a round robin: the slot freed longest ago).
  // Returns the number of slots used.
  auto walk = [&](int r, std::int32_t pool) -> std::int32_t {
    free_slots.clear();
    std::size_t head = 0;
    std::int32_t created = 0;
    if (pool >= 0)
      for (std::int32_t k = 0; k < pool; ++k) free_slots.push_back(k);
    std::int32_t dying[2] = {-1, -1};
    int ndying = 0;
    auto take = [&](int what, int s, int j) -> std::uint16_t {
      std::int32_t slot;
      if (pool >= 0) {
        slot = head < free_slots.size() ? free_slots[head++] : created; // a valid table never runs out
        created = pool;
      } else if (free_slots.empty()) {
        slot = created++;
      } else {
        slot = free_slots.back();
        free_slots.pop_back();
      }
      where[key(what, s, j)] = slot;
      return static_cast<std::uint16_t>(slot);
    };
    auto read = [&](int what, int s, int j, bool last) -> std::uint16_t {
      std::int32_t& w = where[key(what, s, j)];
      if (w < 0) return no_slot;
      std::uint16_t slot = static_cast<std::uint16_t>(w);
      if (last) {
        dying[ndying++] = w;
        w = -1;
      }
      return slot;
    };
    auto& list = t.lists[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < list.size(); ++i) {
      action& a = list[i];
      int const s = a.stage, j = a.mb;
      ndying = 0;
      switch (a.kind) {
      case op::forward: {
        if (route.before(j, s) >= 0) a.in = read(0, s, j, t.forward_only);
        int nx = route.after(j, s);
        if (nx >= 0) a.out = t.rank_of(nx) == r ? take(0, nx, j) : take(1, s, j);
        break;
      }
      case op::backward:
      case op::backward_input: {
        bool const last = a.kind == op::backward;
        if (route.after(j, s) >= 0) a.in = read(2, s, j, last);
        if (route.before(j, s) >= 0) a.aux = read(0, s, j, last);
        int pv = route.before(j, s);
        if (pv >= 0) a.out = t.rank_of(pv) == r ? take(2, pv, j) : take(3, s, j);
        break;
      }
      case op::backward_weight:
        if (route.after(j, s) >= 0) a.in = read(2, s, j, true);
        if (route.before(j, s) >= 0) a.aux = read(0, s, j, true);
        break;
      case op::recv_act: a.out = take(0, s, j); break;
      case op::send_act: a.in = read(1, s, j, true); break;
      case op::recv_grad: a.out = take(2, s, j); break;
      case op::send_grad: a.in = read(3, s, j, true); break;
      }
      for (int k = 0; k < ndying; ++k) free_slots.push_back(dying[k]);
    }
    return created;
  };
  for (int r = 0; r < t.ranks; ++r) {
    std::int32_t const peak = walk(r, -1);
    // double buffering: a round robin over the peak plus `extra` slots, so that at every new
    // boundary at least extra + 1 slots are free and the one freed last is not the one taken
    t.slot_count[static_cast<std::size_t>(r)] = extra > 0 ? walk(r, peak + extra) : peak;
  }
}
constexpr void assign_slots(table& t, int extra = 0) { assign_slots(t, extra, neighbours_on_routes(t)); }

} // namespace pipesched::detail

namespace pipesched {

/// Checks a lowered table's buffer slots by walking each rank's list in order and keeping
/// what every slot holds (the activation entering a stage, or the gradient of a stage's
/// output, of a micro-batch): every boundary an action needs has a slot (below the rank's
/// slot_count) that holds that very boundary when the action reads it. A write over a
/// boundary still to be read shows as that later read's mismatch. Tables lowered by
/// lower() pass by construction; a table whose slots were numbered elsewhere (by hand, by
/// another tool) is checked here before anything runs it (runtime_schedule).
constexpr diagnostic verify_slots(table const& t) {
  struct tag {
    int kind, stage, mb; // kind 0: activation entering `stage`; 1: gradient of `stage`'s output; -1: nothing
  };
  vec<tag> held;
  route_neighbours const route = neighbours_on_routes(t);
  for (int r = 0; r < t.ranks; ++r) {
    auto const& list = t.lists[static_cast<std::size_t>(r)];
    int const slots = static_cast<std::size_t>(r) < t.slot_count.size() ? t.slot_count[static_cast<std::size_t>(r)] : 0;
    held.assign(static_cast<std::size_t>(slots), tag{-1, -1, -1});
    for (std::size_t i = 0; i < list.size(); ++i) {
      action const& a = list[i];
      int const s = a.stage, j = a.mb, nx = route.after(j, s), pv = route.before(j, s);
      auto fail = [&](char const* why) {
        return diagnostic{errc::slot_mismatch, r, static_cast<int>(i), s, j, why};
      };
      // a read: `needed` says the boundary exists (then it must have a slot holding it)
      auto read = [&](std::uint16_t slot, bool needed, tag want) -> char const* {
        if (slot == no_slot) return needed ? "a boundary it needs has no slot" : nullptr;
        if (slot >= slots) return "a slot number beyond the rank's slot count";
        tag const& h = held[slot];
        if (h.kind != want.kind || h.stage != want.stage || h.mb != want.mb) return "the slot holds another boundary";
        return nullptr;
      };
      auto write = [&](std::uint16_t slot, bool needed, tag what) -> char const* {
        if (slot == no_slot) return needed ? "a boundary it produces has no slot" : nullptr;
        if (slot >= slots) return "a slot number beyond the rank's slot count";
        held[slot] = what;
        return nullptr;
      };
      char const* why = nullptr;
      switch (a.kind) {
      case op::forward:
        why = read(a.in, pv >= 0, {0, s, j});
        if (!why) why = write(a.out, nx >= 0, {0, nx, j});
        break;
      case op::backward:
      case op::backward_input:
        why = read(a.in, nx >= 0, {1, s, j});
        if (!why) why = read(a.aux, pv >= 0, {0, s, j});
        if (!why) why = write(a.out, pv >= 0, {1, pv, j});
        break;
      case op::backward_weight:
        why = read(a.in, nx >= 0, {1, s, j});
        if (!why) why = read(a.aux, pv >= 0, {0, s, j});
        break;
      case op::send_act: why = read(a.in, true, {0, nx, j}); break;
      case op::recv_act: why = write(a.out, true, {0, s, j}); break;
      case op::send_grad: why = read(a.in, true, {1, pv, j}); break;
      case op::recv_grad: why = write(a.out, true, {1, s, j}); break;
      }
      if (why) return fail(why);
    }
  }
  return {};
}

} // namespace pipesched
