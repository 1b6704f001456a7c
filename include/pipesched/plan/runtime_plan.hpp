// pipesched: schedules chosen at run time — a verified lowered table, run with the same stage
// functors as compiled plans.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pipesched/core/action.hpp"
#include "pipesched/core/diagnostic.hpp"
#include "pipesched/core/table.hpp"
#include "pipesched/pipeline/cost.hpp"
#include "pipesched/pipeline/lower.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/step.hpp"

namespace pipesched {

/// A table that cannot run: its verification's sentence, and where (diagnostic).
struct schedule_error : std::invalid_argument {
  diagnostic where;
  explicit schedule_error(diagnostic const& d) : std::invalid_argument("pipesched: " + to_string(d)), where(d) {}
};

/// A schedule known only at run time — from `make_schedule(name, params)`, a skip-path table
/// or an imported CSV — lowered when it is not yet (with `costs`, `extra_slots`) and
/// verified (its buffer slots too, when it came lowered: verify_slots): a table that fails
/// throws schedule_error with the verification's sentence, so nothing unverified runs. Holds, per rank, each action's run-time step and the boundary
/// each of its views holds; `run` calls a rank's list in order, as plan<S, R>::run does.
///
/// It reads like a frozen static_table (size, at, stages, prev_stage, slot_count), so the
/// buffer plan and the executors size slots and channels from it the same way.
class runtime_schedule {
public:
  explicit runtime_schedule(table t, sim_costs const& costs = {}, int extra_slots = 0) {
    if (!t.ok()) throw schedule_error(t.error);
    bool const numbered_elsewhere = t.lowered; // slots not assigned by lower() here: check them
    if (!t.lowered) {
      t = lower(t, costs, extra_slots);
      if (!t.ok()) throw schedule_error(t.error);
    }
    if (diagnostic const d = verify(t)) throw schedule_error(d);
    if (numbered_elsewhere)
      if (diagnostic const d = verify_slots(t)) throw schedule_error(d);
    table_ = std::move(t);
    ranks = table_.ranks;
    stages = table_.stages;
    microbatches = table_.microbatches;
    std::size_t const p = static_cast<std::size_t>(ranks);
    steps_.resize(p);
    keys_.resize(p);
    for (std::size_t r = 0; r < p; ++r) {
      auto const& list = table_.lists[r];
      steps_[r].reserve(list.size());
      keys_[r].reserve(list.size());
      for (action const& a : list) {
        runtime_step s{};
        s.kind = a.kind;
        s.stage = a.stage;
        s.chunk = a.chunk;
        s.mb = a.mb;
        s.in = detail::slot_or_none(a.in);
        s.out = detail::slot_or_none(a.out);
        s.aux = detail::slot_or_none(a.aux);
        s.peer = detail::rank_or_none(a.peer);
        s.stages = stages;
        s.peer_stage = detail::peer_stage_of(table_, a);
        s.peer_chunk = s.peer_stage < 0 ? -1 : table_.chunk_of(s.peer_stage);
        s.has_in = s.in >= 0;
        s.has_out = s.out >= 0;
        s.has_aux = s.aux >= 0;
        s.first_stage = s.stage == 0;
        s.last_stage = s.stage == stages - 1;
        steps_[r].push_back(s);
        keys_[r].push_back({boundary_key(table_, a, field::in), boundary_key(table_, a, field::out),
                            boundary_key(table_, a, field::aux)});
      }
    }
    slot_count.assign(table_.slot_count.begin(), table_.slot_count.end());
  }

  int ranks = 0;
  int stages = 0;
  int microbatches = 0;
  std::vector<int> slot_count; ///< per rank

  table const& lowered() const { return table_; }
  std::size_t size(std::size_t r) const { return table_.lists[r].size(); }
  action const& at(std::size_t r, std::size_t i) const { return table_.lists[r][i]; }
  int prev_stage(int j, int s) const { return table_.prev_stage(j, s); }
  int next_stage(int j, int s) const { return table_.next_stage(j, s); }
  int slots(int r) const { return slot_count[static_cast<std::size_t>(r)]; }
  std::vector<runtime_step> const& steps(int r) const { return steps_[static_cast<std::size_t>(r)]; }

  /// Throws std::invalid_argument unless F has, for a runtime_step, every member this
  /// schedule calls (checked before an executor starts an iteration).
  template <class F> void check_functor() const {
    F* f = nullptr;
    runtime_step const s{};
    io const x{};
    (void)f;
    (void)s;
    (void)x;
    for (auto const& list : table_.lists)
      for (action const& a : list) {
        bool ok = true;
        char const* name = "";
        switch (a.kind) {
        case op::forward: ok = requires { f->forward(s, x); }; name = "forward"; break;
        case op::backward: ok = requires { f->backward(s, x); }; name = "backward"; break;
        case op::backward_input: ok = requires { f->backward_input(s, x); }; name = "backward_input"; break;
        case op::backward_weight: ok = requires { f->backward_weight(s, x); }; name = "backward_weight"; break;
        default: break;
        }
        if (!ok) missing(name);
      }
  }

  /// Runs rank r's list once: each compute action calls the functor's member for its pass
  /// with a runtime_step (an overlapped pair: one call of forward_backward when the functor
  /// has it, else forward then backward), each transfer the transport's send or recv; `views` as for
  /// plan<S, R>::run (a `view const*` of slots, or boundary_views). The transport's
  /// on_action, when it has one, is told of every action first.
  template <class Functor, class Transport, class Views>
  void run(int r, Functor& functor, Transport& transport, Views const& views, stream_handle stream = nullptr) const {
    std::size_t const n = steps_[static_cast<std::size_t>(r)].size();
    for (std::size_t i = 0; i < n; ++i) run_step(r, i, functor, transport, views, stream);
  }

  /// Runs action i of rank r as plan<S, R>::run_step does: like run_one, except that an
  /// overlapped pair runs as one call of the functor's forward_backward when it has one (at
  /// the pair's forward; its backward's position then does nothing). For executors that give
  /// each action its own place in a stream program, whose pairs are one stretch of a stream.
  template <class Functor, class Transport, class Views>
  void run_step(int r, std::size_t i, Functor& functor, Transport& transport, Views const& views,
                stream_handle stream = nullptr) const {
    if constexpr (has_forward_backward<Functor, runtime_step, runtime_step>) {
      std::size_t const rr = static_cast<std::size_t>(r);
      auto const& list = table_.lists[rr];
      if (i + 1 < list.size() && overlaps_next(list[i])) {
        runtime_step const& s = steps_[rr][i];
        runtime_step const& b = steps_[rr][i + 1];
        auto const& k = keys_[rr][i];
        auto const& kb = keys_[rr][i + 1];
        io const x{view_of(views, s.in, k[0]), view_of(views, s.out, k[1]), view_of(views, s.aux, k[2]), stream, r};
        io const xb{view_of(views, b.in, kb[0]), view_of(views, b.out, kb[1]), view_of(views, b.aux, kb[2]), stream, r};
        if constexpr (requires { transport.on_action(s); }) transport.on_action(s);
        functor.forward_backward(s, b, x, xb);
        return;
      }
      if (i > 0 && overlaps_next(list[i - 1])) return; // the backward half of the pair run above
    }
    run_one(r, i, functor, transport, views, stream);
  }

  /// Runs action i of rank r alone, as plan<S, R>::run_one does: an overlapped pair's halves
  /// run apart.
  template <class Functor, class Transport, class Views>
  void run_one(int r, std::size_t i, Functor& functor, Transport& transport, Views const& views,
               stream_handle stream = nullptr) const {
    std::size_t const rr = static_cast<std::size_t>(r);
    runtime_step const& s = steps_[rr][i];
    auto const& k = keys_[rr][i];
    io const x{view_of(views, s.in, k[0]), view_of(views, s.out, k[1]), view_of(views, s.aux, k[2]), stream, r};
    if constexpr (requires { transport.on_action(s); }) transport.on_action(s);
    dispatch(s, x, functor, transport);
  }

private:
  /// The functor's member for step s's pass, or the transport's send or recv.
  template <class Functor, class Transport>
  static void dispatch(runtime_step const& s, io const& x, Functor& functor, Transport& transport) {
    switch (s.kind) {
    case op::forward:
      if constexpr (requires { functor.forward(s, x); }) functor.forward(s, x);
      else missing("forward");
      break;
    case op::backward:
      if constexpr (requires { functor.backward(s, x); }) functor.backward(s, x);
      else missing("backward");
      break;
    case op::backward_input:
      if constexpr (requires { functor.backward_input(s, x); }) functor.backward_input(s, x);
      else missing("backward_input");
      break;
    case op::backward_weight:
      if constexpr (requires { functor.backward_weight(s, x); }) functor.backward_weight(s, x);
      else missing("backward_weight");
      break;
    case op::send_act:
    case op::send_grad: transport.send(s, x); break;
    case op::recv_act:
    case op::recv_grad: transport.recv(s, x); break;
    }
  }
  [[noreturn]] static void missing(char const* member) {
    throw std::invalid_argument(std::string("pipesched: the stage functor has no member `template <class Step> void ") +
                                member + "(Step, pipesched::io const&)` accepting a pipesched::runtime_step, which "
                                         "this run-time schedule calls");
  }
  static view view_of(view const* slots, int slot, int) { return slot < 0 ? view{} : slots[slot]; }
  static view view_of(boundary_views const& b, int slot, int key) {
    return slot < 0 || key < 0 ? view{} : view{b.slots[slot].data, b.bytes[key]};
  }

  table table_;
  std::vector<std::vector<runtime_step>> steps_;
  std::vector<std::vector<std::array<int, 3>>> keys_;
};

} // namespace pipesched
