// pipesched: lowering — transfers in one global order, and boundary buffer slots.
#pragma once

#include <algorithm>
#include <vector>

#include "pipesched/analysis/simulate.hpp"
#include "pipesched/core/table.hpp"

namespace pipesched {

namespace detail {

struct sweep_event {
  double time = 0;
  int topo = 0;   ///< index in the simulation's dependency order
  int phase = 0;  ///< 0: the pass starts, 1: its output crosses to another rank
  constexpr bool operator<(sweep_event const& o) const {
    if (time != o.time) return time < o.time;
    if (topo != o.topo) return topo < o.topo;
    return phase < o.phase;
  }
};

/// A boundary buffer on one rank: when it is written first and read last, and which
/// action fields name it.
struct boundary_object {
  int rank = 0;
  int birth = 0;
  int death = 0;
  int nrefs = 0;
  int ref_pos[4] = {0, 0, 0, 0};
  int ref_field[4] = {0, 0, 0, 0}; ///< 0: in, 1: out, 2: aux
  constexpr void use(int pos, int field) {
    if (pos < 0) return; // absent in an incomplete (imported) table
    ref_pos[nrefs] = pos;
    ref_field[nrefs] = field;
    ++nrefs;
    death = pos > death ? pos : death;
  }
};

constexpr void set_field(action& a, int field, std::uint16_t slot) {
  if (field == 0) a.in = slot;
  else if (field == 1) a.out = slot;
  else a.aux = slot;
}

/// Gives every boundary object of a lowered table a slot; a rank's slot count equals the
/// largest number of its objects alive at one position (interval colouring).
constexpr void assign_slots(table& t) {
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  std::size_t const sm = static_cast<std::size_t>(t.stages) * static_cast<std::size_t>(t.microbatches);
  // positions of every action, by kind and (stage, micro-batch)
  std::vector<int> pos(sm * op_count, -1);
  auto key = [&](op k, int s, int j) {
    return (static_cast<std::size_t>(s) * static_cast<std::size_t>(t.microbatches) + static_cast<std::size_t>(j)) *
               op_count +
           static_cast<std::size_t>(k);
  };
  for (std::size_t r = 0; r < p; ++r)
    for (std::size_t i = 0; i < t.lists[r].size(); ++i) {
      action const& a = t.lists[r][i];
      pos[key(a.kind, a.stage, a.mb)] = static_cast<int>(i);
    }
  auto at = [&](op k, int s, int j) { return pos[key(k, s, j)]; };
  auto backward_pos = [&](int s, int j) {
    int b = at(op::backward, s, j);
    return b >= 0 ? b : at(op::backward_input, s, j);
  };
  std::vector<boundary_object> objs;
  auto make = [&](int rank, int birth, int field) {
    boundary_object o{};
    o.rank = rank;
    o.birth = birth;
    o.death = birth;
    o.use(birth, field);
    return o;
  };
  auto keep = [&](boundary_object const& o) {
    if (o.birth >= 0) objs.push_back(o);
  };
  for (int j = 0; j < t.microbatches; ++j) {
    for (int i = 1; i < t.route_length(j); ++i) {
      int s = t.route_at(j, i), prev = t.route_at(j, i - 1);
      int r = t.rank_of(s), rp = t.rank_of(prev);
      // activation into s: x of s (and y of prev)
      boundary_object x = rp == r ? make(r, at(op::forward, prev, j), 1) : make(r, at(op::recv_act, s, j), 1);
      x.use(at(op::forward, s, j), 0);
      if (!t.forward_only) {
        x.use(backward_pos(s, j), 2);
        if (int w = at(op::backward_weight, s, j); w >= 0) x.use(w, 2);
      }
      keep(x);
      if (rp != r) {
        boundary_object y = make(rp, at(op::forward, prev, j), 1);
        y.use(at(op::send_act, prev, j), 0);
        keep(y);
      }
      if (t.forward_only) continue;
      // gradient from s back to prev: dx of s (and dy of prev)
      boundary_object dy = rp == r ? make(r, backward_pos(s, j), 1) : make(rp, at(op::recv_grad, prev, j), 1);
      dy.use(backward_pos(prev, j), 0);
      if (int w = at(op::backward_weight, prev, j); w >= 0) dy.use(w, 0);
      keep(dy);
      if (rp != r) {
        boundary_object dx = make(r, backward_pos(s, j), 1);
        dx.use(at(op::send_grad, s, j), 0);
        keep(dx);
      }
    }
  }
  std::sort(objs.begin(), objs.end(), [](boundary_object const& a, boundary_object const& b) {
    return a.rank != b.rank ? a.rank < b.rank : a.birth < b.birth;
  });
  t.slot_count.assign(p, 0);
  std::vector<int> slot_end; // last position each slot is busy, for the current rank
  int cur_rank = -1;
  for (boundary_object const& o : objs) {
    if (o.rank != cur_rank) {
      cur_rank = o.rank;
      slot_end.clear();
    }
    std::size_t slot = 0;
    while (slot < slot_end.size() && slot_end[slot] >= o.birth) ++slot;
    if (slot == slot_end.size()) slot_end.push_back(o.death);
    else slot_end[slot] = o.death;
    auto& list = t.lists[static_cast<std::size_t>(o.rank)];
    for (int k = 0; k < o.nrefs; ++k)
      set_field(list[static_cast<std::size_t>(o.ref_pos[k])], o.ref_field[k], static_cast<std::uint16_t>(slot));
    int& count = t.slot_count[static_cast<std::size_t>(o.rank)];
    count = static_cast<int>(slot_end.size()) > count ? static_cast<int>(slot_end.size()) : count;
  }
}

} // namespace detail

/// Lowers a compute table: inserts SEND/RECV pairs in one global order (a simulation of
/// the compute passes under `costs` gives the order; every pair sits at the same point of
/// it, so all ranks post matching transfers in the same order and blocking transfers
/// cannot wait in a cycle), then assigns boundary buffer slots. Neighbouring stages on the
/// same rank exchange nothing. Returns the input's error, or cyclic_wait, on failure.
constexpr table lower(table const& t, sim_costs const& costs = {}) {
  if (!t.ok()) return t;
  if (t.lowered) return t;
  simulation sim = simulate(t, costs);
  if (!sim.ok()) return failed(sim.error);
  std::vector<detail::sweep_event> events;
  events.reserve(sim.order.size() * 2);
  for (std::size_t k = 0; k < sim.order.size(); ++k) {
    auto ref = sim.order[k];
    op_time tm = sim.times[static_cast<std::size_t>(ref.rank)][static_cast<std::size_t>(ref.pos)];
    events.push_back({tm.start, static_cast<int>(k), 0});
    events.push_back({tm.end, static_cast<int>(k), 1});
  }
  std::sort(events.begin(), events.end());
  table out = t;
  for (auto& l : out.lists) l.clear();
  for (auto const& e : events) {
    auto ref = sim.order[static_cast<std::size_t>(e.topo)];
    action const a = t.lists[static_cast<std::size_t>(ref.rank)][static_cast<std::size_t>(ref.pos)];
    auto& mine = out.lists[static_cast<std::size_t>(ref.rank)];
    if (e.phase == 0) {
      mine.push_back(a);
      continue;
    }
    int peer_stage = -1;
    op send = op::send_act, recv = op::recv_act;
    if (a.kind == op::forward) {
      peer_stage = t.next_stage(a.mb, a.stage);
    } else if (makes_input_grad(a.kind)) {
      peer_stage = t.prev_stage(a.mb, a.stage);
      send = op::send_grad;
      recv = op::recv_grad;
    }
    if (peer_stage < 0) continue;
    int peer = t.rank_of(peer_stage);
    if (peer == ref.rank) continue;
    action s = make_action(send, a.stage, a.mb, a.chunk);
    s.peer = static_cast<std::uint16_t>(peer);
    action r = make_action(recv, peer_stage, a.mb, t.chunk_of(peer_stage));
    r.peer = static_cast<std::uint16_t>(ref.rank);
    mine.push_back(s);
    out.lists[static_cast<std::size_t>(peer)].push_back(r);
  }
  out.lowered = true;
  detail::assign_slots(out);
  return out;
}

} // namespace pipesched
