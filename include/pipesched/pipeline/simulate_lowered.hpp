// pipesched: simulation of a lowered table with transfers on per-rank communication streams.
#pragma once

#include <cstddef>
#include <vector>

#include "pipesched/pipeline/cost.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/core/graph.hpp"
#include "pipesched/core/table.hpp"

namespace pipesched {

/// Simulates a lowered table with two streams per rank that overlap: a compute stream that
/// runs the rank's compute passes in list order, and a communication stream that runs its
/// SEND and RECV actions in list order. A SEND starts when its producer (the F, or the B/I,
/// of its stage and micro-batch) has ended, the sender's stream has finished its earlier
/// transfers, and the peer's stream has reached the matching RECV (every earlier transfer
/// of the peer done); it takes `costs.link(sender, receiver, p)` (latency + bytes /
/// bandwidth), and the RECV spans the same interval on the peer. A compute pass waits for
/// its same-rank inputs and for the RECV of each input that comes from another rank (not
/// for the producer plus a latency as in `simulate`).
///
/// With `costs.slot_reuse`, a boundary slot is rewritten only after every read of its
/// previous boundary has ended (the send included), as on a GPU with fixed slots; extra
/// slots (lower(..., extra_slots)) then show what double buffering gains.
///
/// Reports the fields `simulate` reports, with the times of the transfers filled in
/// (transfers do not count in busy, idle, spans or the makespan). Errors: those of the
/// table's index, missing_recv when a pass has no RECV for a remote input,
/// transfer_mismatch when a SEND meets a RECV of another boundary or has no producer,
/// transfer_deadlock when the streams wait on each other. A table that is not lowered is
/// passed to `simulate`.
inline simulation simulate_lowered(table const& t, sim_costs const& costs = {}) {
  if (!t.ok() || !t.lowered) return simulate(t, costs);
  simulation sim{};
  if (!costs.fits(t.stages, t.ranks)) {
    sim.error = diagnostic{errc::cost_shape};
    return sim;
  }
  detail::op_index ix{};
  if (auto d = detail::build_index(t, ix)) {
    sim.error = d;
    return sim;
  }
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  std::size_t const sm = static_cast<std::size_t>(t.stages) * static_cast<std::size_t>(t.microbatches);
  auto sm_key = [&](int s, int j) {
    return static_cast<std::size_t>(s) * static_cast<std::size_t>(t.microbatches) + static_cast<std::size_t>(j);
  };
  // where each RECV sits: [0, sm) activations, [sm, 2 sm) gradients; -1 when absent
  std::vector<int> recv_pos(2 * sm, -1);
  for (std::size_t r = 0; r < p; ++r)
    for (std::size_t i = 0; i < t.lists[r].size(); ++i) {
      action const& a = t.lists[r][i];
      if (!is_recv(a.kind)) continue;
      if (a.stage >= t.stages || a.mb >= t.microbatches || t.rank_of(a.stage) != static_cast<int>(r)) {
        sim.error = {errc::transfer_mismatch,
                     static_cast<int>(r),
                     static_cast<int>(i),
                     a.stage,
                     a.mb,
                     "a receive for a stage this rank does not hold"};
        return sim;
      }
      int& slot = recv_pos[(a.kind == op::recv_grad ? sm : 0) + sm_key(a.stage, a.mb)];
      if (slot >= 0) {
        sim.error = {errc::transfer_mismatch,       static_cast<int>(r), static_cast<int>(i), a.stage, a.mb,
                     "a boundary is received twice"};
        return sim;
      }
      slot = static_cast<int>(i);
    }

  // costs.slot_reuse: per rank and action, the positions that must have ended before it may
  // write its slot — every read of the slot's previous boundary (the writer too if nothing
  // read it), in list order
  std::vector<std::vector<std::size_t>> war_start(p), war_pos(p);
  if (costs.slot_reuse) {
    for (std::size_t r = 0; r < p; ++r) {
      auto const& list = t.lists[r];
      std::size_t const slots = r < t.slot_count.size() ? static_cast<std::size_t>(t.slot_count[r]) : 0;
      std::vector<std::vector<std::size_t>> readers(slots);
      std::vector<long> writer(slots, -1);
      war_start[r].assign(list.size() + 1, 0);
      for (std::size_t i = 0; i < list.size(); ++i) {
        action const& a = list[i];
        war_start[r][i] = war_pos[r].size();
        for (std::uint16_t k : {a.in, a.aux})
          if (k != no_slot && k < slots) readers[k].push_back(i);
        if (a.out != no_slot && a.out < slots) {
          std::uint16_t const k = a.out;
          if (readers[k].empty() && writer[k] >= 0) war_pos[r].push_back(static_cast<std::size_t>(writer[k]));
          for (std::size_t x : readers[k]) war_pos[r].push_back(x);
          readers[k].clear();
          writer[k] = static_cast<long>(i);
        }
      }
      war_start[r][list.size()] = war_pos[r].size();
    }
  }

  sim.times.assign(p, {});
  std::vector<std::vector<char>> done(p);
  for (std::size_t r = 0; r < p; ++r) {
    sim.times[r].assign(t.lists[r].size(), op_time{});
    done[r].assign(t.lists[r].size(), 0);
  }
  std::vector<std::size_t> cptr(p, 0), tptr(p, 0);
  std::vector<double> compute_free(p, 0.0), comm_free(p, 0.0);
  std::size_t remaining = t.total_actions();
  sim.order.reserve(remaining);
  auto fail = [&](errc e, std::size_t r, std::size_t i, const char* why) {
    action const& a = t.lists[r][i];
    sim.error = {e, static_cast<int>(r), static_cast<int>(i), a.stage, a.mb, why};
    return sim;
  };
  auto skip_compute = [&](std::size_t r) {
    while (tptr[r] < t.lists[r].size() && is_compute(t.lists[r][tptr[r]].kind)) ++tptr[r];
  };

  while (remaining > 0) {
    bool progress = false;
    for (std::size_t r = 0; r < p; ++r) {
      auto const& list = t.lists[r];
      // compute stream
      while (cptr[r] < list.size()) {
        action const& a = list[cptr[r]];
        if (!is_compute(a.kind)) {
          ++cptr[r];
          continue;
        }
        // an overlapped pair: both halves start once both halves' inputs are ready and end together
        bool const pair = overlaps_next(a) && cptr[r] + 1 < list.size() && makes_input_grad(list[cptr[r] + 1].kind);
        std::size_t const halves = pair ? 2 : 1;
        double start = compute_free[r];
        bool ready = true;
        for (std::size_t h = 0; h < halves && ready; ++h) {
          action const& x = list[cptr[r] + h];
          auto dp = detail::dependencies(ix, x);
          for (int k = 0; k < dp.n && ready; ++k) {
            auto d = dp.d[k];
            std::size_t dr = static_cast<std::size_t>(d.rank), dpos = static_cast<std::size_t>(d.pos);
            if (dr != r) {
              // a remote input arrives with its RECV on this rank
              std::size_t base = x.kind == op::forward ? 0 : sm;
              int rp = recv_pos[base + sm_key(x.stage, x.mb)];
              if (rp < 0) return fail(errc::missing_recv, r, cptr[r] + h, "no receive for a remote input");
              dr = r;
              dpos = static_cast<std::size_t>(rp);
            }
            if (!done[dr][dpos]) ready = false;
            else start = sim.times[dr][dpos].end > start ? sim.times[dr][dpos].end : start;
          }
          if (costs.slot_reuse)
            for (std::size_t k = war_start[r][cptr[r] + h]; k < war_start[r][cptr[r] + h + 1] && ready; ++k) {
              std::size_t const w = war_pos[r][k];
              if (w >= cptr[r] && w < cptr[r] + halves) continue; // the pair itself
              if (!done[r][w]) ready = false;
              else start = sim.times[r][w].end > start ? sim.times[r][w].end : start;
            }
        }
        if (!ready) break;
        double end = start + (pair ? costs.pair_duration(a.stage, list[cptr[r] + 1].kind, list[cptr[r] + 1].stage)
                                   : costs.duration(a.kind, a.stage));
        for (std::size_t h = 0; h < halves; ++h) {
          sim.times[r][cptr[r]] = op_time{start, end};
          done[r][cptr[r]] = 1;
          sim.order.push_back(detail::op_ref{static_cast<int>(r), static_cast<int>(cptr[r])});
          ++cptr[r];
          --remaining;
        }
        compute_free[r] = end;
        progress = true;
      }
      // communication stream: a SEND pairs with the RECV its peer has reached
      while (true) {
        skip_compute(r);
        if (tptr[r] >= list.size()) break;
        action const& a = list[tptr[r]];
        if (is_recv(a.kind)) break; // completed by its sender
        std::size_t q = a.peer;
        if (q >= p || q == r) return fail(errc::transfer_mismatch, r, tptr[r], "peer out of range");
        bool act = a.kind == op::send_act;
        auto src = ix.at(act ? 0 : 1, a.stage, a.mb);
        if (!src.found() || static_cast<std::size_t>(src.rank) != r)
          return fail(errc::transfer_mismatch, r, tptr[r], "a send without its producer on this rank");
        if (!done[r][static_cast<std::size_t>(src.pos)]) break;
        skip_compute(q);
        if (tptr[q] >= t.lists[q].size())
          return fail(errc::transfer_mismatch, r, tptr[r], "the peer has nothing left to receive");
        action const& b = t.lists[q][tptr[q]];
        if (!is_recv(b.kind) || b.peer != r) break; // the peer's stream is busy with another transfer
        int expect = act ? ix.route.after(a.mb, a.stage) : ix.route.before(a.mb, a.stage);
        if (b.kind != (act ? op::recv_act : op::recv_grad) || b.mb != a.mb || b.stage != expect)
          return fail(errc::transfer_mismatch, r, tptr[r], "the peer's receive is for another boundary");
        double start = sim.times[r][static_cast<std::size_t>(src.pos)].end;
        start = comm_free[r] > start ? comm_free[r] : start;
        start = comm_free[q] > start ? comm_free[q] : start;
        if (costs.slot_reuse) {
          // the receiving slot's previous boundary must have been read (and sent) to the end
          bool free = true;
          for (std::size_t k = war_start[q][tptr[q]]; k < war_start[q][tptr[q] + 1] && free; ++k) {
            std::size_t const w = war_pos[q][k];
            if (!done[q][w]) free = false;
            else start = sim.times[q][w].end > start ? sim.times[q][w].end : start;
          }
          if (!free) break;
        }
        double end = start + costs.link(static_cast<int>(r), static_cast<int>(q), t.ranks);
        sim.times[r][tptr[r]] = op_time{start, end};
        sim.times[q][tptr[q]] = op_time{start, end};
        done[r][tptr[r]] = 1;
        done[q][tptr[q]] = 1;
        comm_free[r] = comm_free[q] = end;
        ++tptr[r];
        ++tptr[q];
        remaining -= 2;
        progress = true;
      }
    }
    if (!progress) {
      for (std::size_t r = 0; r < p; ++r) {
        skip_compute(r);
        std::size_t i = cptr[r] < tptr[r] ? cptr[r] : tptr[r];
        while (i < t.lists[r].size() && done[r][i]) ++i;
        if (i < t.lists[r].size()) return fail(errc::transfer_deadlock, r, i, nullptr);
      }
      sim.error = {errc::transfer_deadlock};
      return sim;
    }
  }

  detail::finish_metrics(t, sim, costs);
  return sim;
}

} // namespace pipesched
