// Test support for plans and the host backend: the schedules under test, a type-list loop,
// and a stage functor that checks every boundary it reads.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "pipesched/core/action.hpp"
#include "pipesched/core/table.hpp"
#include "pipesched/plan/plan.hpp"
#include "pipesched/plan/step.hpp"
#include "pipesched/schedules/gpipe.hpp"
#include "pipesched/schedules/interleaved.hpp"
#include "pipesched/schedules/interleaved_zb.hpp"
#include "pipesched/schedules/looped_bfs.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/v_shape.hpp"
#include "pipesched/schedules/zb_v.hpp"
#include "pipesched/schedules/zero_bubble.hpp"

namespace plan_test {

template <class... Ts> struct type_list {};

template <class... Ts, class Fn> void for_each_type(type_list<Ts...>, Fn&& fn) { (fn(static_cast<Ts*>(nullptr)), ...); }

/// fn(T*) where In; otherwise nothing, and fn(T*) is not instantiated.
template <bool In, class T, class Fn> void visit_if(Fn& fn) {
  if constexpr (In) fn(static_cast<T*>(nullptr));
}

/// for_each_type on one slice of the list: the types whose index i has i % Parts == Part, in
/// list order. Only those are instantiated (visit_if's `if constexpr` discards the call for
/// any other type), so a test can train its list in Parts translation units compiled
/// side by side (tests/gpu/<stem>/part_<k>.cu). The slices of Part = 0 .. Parts-1 partition
/// the indices: run all of them and each type is visited exactly once.
template <std::size_t Part, std::size_t Parts, class... Ts, class Fn>
void for_each_type_in_part(type_list<Ts...>, Fn&& fn) {
  static_assert(Parts > 0 && Part < Parts, "for_each_type_in_part: Part must be below Parts (and Parts above 0)");
  [&]<std::size_t... I>(std::index_sequence<I...>) { (visit_if<I % Parts == Part, Ts>(fn), ...); }
  (std::index_sequence_for<Ts...>{});
}

/// Every training schedule at p ranks and m micro-batches (v = 2 where a schedule has
/// chunks). Adding a schedule is one line here.
template <int P, int M>
using training_schedules =
    type_list<pipesched::gpipe<pipesched::stages<P>, pipesched::microbatches<M>>,
              pipesched::one_f_one_b<pipesched::stages<P>, pipesched::microbatches<M>>,
              pipesched::interleaved_1f1b<pipesched::stages<P>, pipesched::microbatches<M>, pipesched::chunks<2>>,
              pipesched::zb_h1<pipesched::stages<P>, pipesched::microbatches<M>>,
              pipesched::zb_h2<pipesched::stages<P>, pipesched::microbatches<M>>,
              pipesched::zb_v<pipesched::stages<P>, pipesched::microbatches<M>>,
              pipesched::v_half<pipesched::stages<P>, pipesched::microbatches<M>>,
              pipesched::v_min<pipesched::stages<P>, pipesched::microbatches<M>>,
              pipesched::looped_bfs<pipesched::stages<P>, pipesched::microbatches<M>, pipesched::chunks<2>>,
              pipesched::interleaved_zb<pipesched::stages<P>, pipesched::microbatches<M>, pipesched::chunks<2>>>;

/// A readable test-case suffix: "1f1b.p4.m8".
template <class S> std::string label() {
  return std::string(S::name) + ".p" + std::to_string(S::ranks) + ".m" + std::to_string(S::microbatches);
}

/// What a checking functor writes into a boundary: which pass of which stage produced it.
struct stamp {
  std::int32_t what = 0; // 1: activation, 2: input gradient
  std::int32_t stage = -1;
  std::int32_t mb = -1;
  std::int32_t salt = 0;
};
inline constexpr std::size_t stamp_bytes = sizeof(stamp);

/// What both stamp-checking functors below share: each member forwards to Derived's
/// non-template `on_pass(step, io)` (so the per-step cost of compiling one stays small),
/// which decides what to check and stamp with `record`, `expect` and `put`. Counts calls
/// and mismatches; records the order of its calls (up to `capacity`).
template <class Derived> struct stamp_checking {
  static constexpr int capacity = 4096;
  int calls = 0;
  int mismatches = 0;
  /// Written into every stamp and expected back: give each iteration its own, so that a
  /// boundary left over from the previous iteration in a slot cannot pass for a new one.
  std::int32_t salt = 0x5eed;
  std::string first_problem;
  std::array<pipesched::action, capacity> order{};

  template <class St> void forward(St s, pipesched::io const& x) { self().on_pass(pipesched::runtime_of(s), x); }
  template <class St> void backward(St s, pipesched::io const& x) { self().on_pass(pipesched::runtime_of(s), x); }
  template <class St> void backward_input(St s, pipesched::io const& x) { self().on_pass(pipesched::runtime_of(s), x); }
  template <class St> void backward_weight(St s, pipesched::io const& x) {
    self().on_pass(pipesched::runtime_of(s), x);
  }

protected:
  Derived& self() { return static_cast<Derived&>(*this); }
  /// Counts the call and records the pass.
  void record(pipesched::runtime_step const& s) {
    if (calls < capacity)
      order[static_cast<std::size_t>(calls)] = pipesched::make_action(s.kind, s.stage, s.mb, s.chunk);
    ++calls;
  }
  /// Stamps view v: pass `what` (1: activation, 2: input gradient) of (stage, mb).
  void put(pipesched::view const& v, int what, int stage, int mb) const {
    stamp st{what, stage, mb, salt};
    std::memcpy(v.data, &st, sizeof st);
  }
  /// View v must hold the stamp of pass `what` of (stage, s.mb) with this salt.
  void expect(pipesched::runtime_step const& s, pipesched::view const& v, int what, int stage, char const* role) {
    stamp st{};
    if (v.data == nullptr || v.bytes < sizeof st) return fail(role, s, "no buffer");
    std::memcpy(&st, v.data, sizeof st);
    if (st.what != what || st.stage != stage || st.mb != s.mb || st.salt != salt) fail(role, s, "stale");
  }
  void fail(char const* role, pipesched::runtime_step const& s, char const* why) {
    if (mismatches++ == 0)
      first_problem = std::string(role) + " of stage " + std::to_string(s.stage) + ", micro-batch " +
                      std::to_string(s.mb) + ": " + why;
  }
};

/// A stage functor that stamps every output boundary and checks every input boundary
/// against what its producer must have written (straight routes: stage s reads stage
/// s-1's activation and stage s+1's gradient); a view is checked or stamped where the step
/// names a slot for it.
struct checking_functor : stamp_checking<checking_functor> {
  void on_pass(pipesched::runtime_step const& s, pipesched::io const& x) {
    using pipesched::op;
    record(s);
    if (s.kind == op::forward) {
      if (s.in >= 0) expect(s, x.in, 1, s.stage - 1, "F input");
      if (s.out >= 0) put(x.out, 1, s.stage, s.mb);
      return;
    }
    if (s.in >= 0) expect(s, x.in, 2, s.stage + 1, "backward output gradient");
    if (s.aux >= 0) expect(s, x.aux, 1, s.stage - 1, "backward saved input");
    if (s.kind != op::backward_weight && s.out >= 0) put(x.out, 2, s.stage, s.mb);
  }
};

/// checking_functor that first calls Derived's `before_pass(step, io)` in every pass (a
/// test's fault to inject, or sizes to record), then checks and stamps as checking_functor.
template <class Derived> struct checking_after_hook : checking_functor {
  template <class St> void forward(St s, pipesched::io const& x) {
    hook(s, x);
    checking_functor::forward(s, x);
  }
  template <class St> void backward(St s, pipesched::io const& x) {
    hook(s, x);
    checking_functor::backward(s, x);
  }
  template <class St> void backward_input(St s, pipesched::io const& x) {
    hook(s, x);
    checking_functor::backward_input(s, x);
  }
  template <class St> void backward_weight(St s, pipesched::io const& x) {
    hook(s, x);
    checking_functor::backward_weight(s, x);
  }

private:
  template <class St> void hook(St s, pipesched::io const& x) { static_cast<Derived&>(*this).before_pass(s, x); }
};

/// checking_functor with routes (skip paths): a boundary's producer is the micro-batch's
/// neighbour on its route (`routes->prev_stage(mb, s)`, `next_stage`), not s - 1 or s + 1.
/// Routes: a table or a schedule type's frozen one.
template <class Routes> struct route_checker : stamp_checking<route_checker<Routes>> {
  Routes const* routes = nullptr;

  void on_pass(pipesched::runtime_step const& s, pipesched::io const& x) {
    this->record(s);
    int const before = routes->prev_stage(s.mb, s.stage), after = routes->next_stage(s.mb, s.stage);
    if (s.kind == pipesched::op::forward) {
      if (before >= 0) this->expect(s, x.in, 1, before, "F input");
      if (after >= 0) this->put(x.out, 1, s.stage, s.mb);
      return;
    }
    if (after >= 0) this->expect(s, x.in, 2, after, "backward output gradient");
    if (before >= 0) this->expect(s, x.aux, 1, before, "backward saved input");
    if (s.kind != pipesched::op::backward_weight && before >= 0) this->put(x.out, 2, s.stage, s.mb);
  }
};

/// Rank r's compute passes in list order, as a checking functor records them
/// (make_action(kind, stage, mb, chunk)): of a run-time table, or of a frozen one
/// (S::lowered: size and at).
inline std::vector<pipesched::action> compute_list(pipesched::table const& t, int r) {
  std::vector<pipesched::action> out;
  for (pipesched::action const& a : t.lists[static_cast<std::size_t>(r)])
    if (pipesched::is_compute(a.kind)) out.push_back(pipesched::make_action(a.kind, a.stage, a.mb, a.chunk));
  return out;
}
template <class Table> std::vector<pipesched::action> compute_list(Table const& t, int r) {
  std::vector<pipesched::action> out;
  for (std::size_t i = 0; i < t.size(static_cast<std::size_t>(r)); ++i) {
    pipesched::action const a = t.at(static_cast<std::size_t>(r), i);
    if (pipesched::is_compute(a.kind)) out.push_back(pipesched::make_action(a.kind, a.stage, a.mb, a.chunk));
  }
  return out;
}

/// Overlapped pairs (compute actions flagged overlap_next, not last) in rank r's list, or in
/// every list with r = -1: of a run-time table, or of a frozen one or a runtime_schedule
/// (size and at).
inline int overlapped_pairs(pipesched::table const& t, int r = -1) {
  int n = 0;
  for (int q = 0; q < t.ranks; ++q) {
    if (r >= 0 && q != r) continue;
    auto const& l = t.lists[static_cast<std::size_t>(q)];
    for (std::size_t i = 0; i + 1 < l.size(); ++i) n += pipesched::overlaps_next(l[i]) ? 1 : 0;
  }
  return n;
}
template <class Table> constexpr int overlapped_pairs(Table const& t, int r = -1) {
  int n = 0;
  for (int q = 0; q < t.ranks; ++q) {
    if (r >= 0 && q != r) continue;
    std::size_t const len = t.size(static_cast<std::size_t>(q));
    for (std::size_t i = 0; i + 1 < len; ++i) n += pipesched::overlaps_next(t.at(static_cast<std::size_t>(q), i)) ? 1 : 0;
  }
  return n;
}

} // namespace plan_test
