// Test support: an independent data-flow check of a lowered table's buffer slots.
//
// Walks each rank's list, keeping what every slot holds (a tag: activation or gradient,
// the stage it enters, the micro-batch). A read must find its tag in its slot; a write must
// not overwrite a tag that is read later. Returns the largest number of slots holding a
// value still to be read, which must equal the table's slot_count.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "pipesched/core/table.hpp"

namespace pipesched::testing {

struct slot_report {
  bool ok = true;
  std::string problem;
  std::vector<int> peak_live; // per rank
};

inline slot_report check_slots(table const& t) {
  slot_report rep;
  rep.peak_live.assign(static_cast<std::size_t>(t.ranks), 0);
  struct tag {
    int kind = -1; // 0 activation entering `stage`, 1 gradient of `stage`'s output
    int stage = -1, mb = -1;
    bool operator==(tag const&) const = default;
  };
  for (int r = 0; r < t.ranks; ++r) {
    auto const& list = t.lists[static_cast<std::size_t>(r)];
    // reads and writes of every action
    struct io {
      std::vector<std::pair<int, tag>> reads, writes; // (slot, tag)
    };
    std::vector<io> ios(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
      action const& a = list[i];
      int s = a.stage, j = a.mb;
      auto rd = [&](std::uint16_t slot, tag g) {
        if (slot != no_slot) ios[i].reads.push_back({slot, g});
      };
      auto wr = [&](std::uint16_t slot, tag g) {
        if (slot != no_slot) ios[i].writes.push_back({slot, g});
      };
      int nx = t.next_stage(j, s), pv = t.prev_stage(j, s);
      switch (a.kind) {
      case op::forward:
        rd(a.in, {0, s, j});
        wr(a.out, {0, nx, j});
        if ((a.in != no_slot) != (pv >= 0)) rep.ok = false, rep.problem = "F input slot presence";
        if ((a.out != no_slot) != (nx >= 0)) rep.ok = false, rep.problem = "F output slot presence";
        break;
      case op::backward:
      case op::backward_input:
        rd(a.in, {1, s, j});
        rd(a.aux, {0, s, j});
        wr(a.out, {1, pv, j});
        break;
      case op::backward_weight:
        rd(a.in, {1, s, j});
        rd(a.aux, {0, s, j});
        break;
      case op::send_act: rd(a.in, {0, nx, j}); break;
      case op::recv_act: wr(a.out, {0, s, j}); break;
      case op::send_grad: rd(a.in, {1, pv, j}); break;
      case op::recv_grad: wr(a.out, {1, s, j}); break;
      }
    }
    std::vector<tag> held;
    auto read_later = [&](std::size_t from, int slot, tag g) {
      for (std::size_t k = from; k < list.size(); ++k) {
        for (auto const& [sl, tg] : ios[k].reads)
          if (sl == slot && tg == g) return true;
        for (auto const& [sl, tg] : ios[k].writes)
          if (sl == slot) return false;
      }
      return false;
    };
    for (std::size_t i = 0; i < list.size(); ++i) {
      for (auto const& [slot, g] : ios[i].reads) {
        if (static_cast<std::size_t>(slot) >= held.size() || !(held[static_cast<std::size_t>(slot)] == g)) {
          rep.ok = false;
          rep.problem = "rank " + std::to_string(r) + " position " + std::to_string(i) + " reads a slot not holding its value";
          return rep;
        }
      }
      // alive during action i: held values read at i or later, plus values written at i
      int live = 0;
      for (std::size_t sl = 0; sl < held.size(); ++sl)
        if (held[sl].kind >= 0 && read_later(i, static_cast<int>(sl), held[sl])) ++live;
      for (auto const& [slot, g] : ios[i].writes) {
        if (static_cast<std::size_t>(slot) >= held.size()) held.resize(static_cast<std::size_t>(slot) + 1);
        tag old = held[static_cast<std::size_t>(slot)];
        if (old.kind >= 0 && read_later(i + 1, slot, old)) {
          rep.ok = false;
          rep.problem = "rank " + std::to_string(r) + " position " + std::to_string(i) + " overwrites a live value";
          return rep;
        }
        held[static_cast<std::size_t>(slot)] = g;
        ++live;
      }
      rep.peak_live[static_cast<std::size_t>(r)] = std::max(rep.peak_live[static_cast<std::size_t>(r)], live);
    }
  }
  return rep;
}

} // namespace pipesched::testing
