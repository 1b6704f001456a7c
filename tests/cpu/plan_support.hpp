// Test support for plans and the host backend: the schedules under test, a type-list loop,
// and a stage functor that checks every boundary it reads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "pipesched/core/action.hpp"
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

/// A stage functor that stamps every output boundary and checks every input boundary
/// against what its producer must have written (straight routes: stage s reads stage
/// s-1's activation and stage s+1's gradient). Counts calls and mismatches; records the
/// order of its calls (up to `capacity`). Each member forwards to one non-template
/// function, so the per-step cost of compiling it stays small.
struct checking_functor {
  static constexpr int capacity = 4096;
  int calls = 0;
  int mismatches = 0;
  /// Written into every stamp and expected back: give each iteration its own, so that a
  /// boundary left over from the previous iteration in a slot cannot pass for a new one.
  std::int32_t salt = 0x5eed;
  std::string first_problem;
  std::array<pipesched::action, capacity> order{};

  template <class St> void forward(St s, pipesched::io const& x) { on_pass(pipesched::runtime_of(s), x); }
  template <class St> void backward(St s, pipesched::io const& x) { on_pass(pipesched::runtime_of(s), x); }
  template <class St> void backward_input(St s, pipesched::io const& x) { on_pass(pipesched::runtime_of(s), x); }
  template <class St> void backward_weight(St s, pipesched::io const& x) { on_pass(pipesched::runtime_of(s), x); }

  void on_pass(pipesched::runtime_step const& s, pipesched::io const& x) {
    using pipesched::op;
    if (calls < capacity)
      order[static_cast<std::size_t>(calls)] = pipesched::make_action(s.kind, s.stage, s.mb, s.chunk);
    ++calls;
    if (s.kind == op::forward) {
      if (s.in >= 0) expect(s, x.in, 1, s.stage - 1, "F input");
      if (s.out >= 0) put(x.out, 1, s.stage, s.mb);
      return;
    }
    if (s.in >= 0) expect(s, x.in, 2, s.stage + 1, "backward output gradient");
    if (s.aux >= 0) expect(s, x.aux, 1, s.stage - 1, "backward saved input");
    if (s.kind != op::backward_weight && s.out >= 0) put(x.out, 2, s.stage, s.mb);
  }

private:
  void put(pipesched::view const& v, int what, int stage, int mb) const {
    stamp s{what, stage, mb, salt};
    std::memcpy(v.data, &s, sizeof s);
  }
  void expect(pipesched::runtime_step const& st, pipesched::view const& v, int what, int stage, const char* role) {
    stamp s{};
    if (v.data == nullptr || v.bytes < sizeof s) {
      fail(role, st, "no buffer");
      return;
    }
    std::memcpy(&s, v.data, sizeof s);
    if (s.what != what || s.stage != stage || s.mb != st.mb || s.salt != salt) fail(role, st, "stale");
  }
  void fail(const char* role, pipesched::runtime_step const& st, const char* why) {
    if (mismatches++ == 0)
      first_problem = std::string(role) + " of stage " + std::to_string(st.stage) + ", micro-batch " +
                      std::to_string(st.mb) + ": " + why;
  }
};

/// checking_functor with routes (skip paths): a boundary's producer is the micro-batch's
/// neighbour on its route (`routes->prev_stage(mb, s)`, `next_stage`), not s - 1 or s + 1.
/// Routes: a table or a schedule type's frozen one.
template <class Routes> struct route_checker {
  static constexpr int capacity = 4096;
  Routes const* routes = nullptr;
  int calls = 0, mismatches = 0;
  std::int32_t salt = 0;
  std::string first_problem;
  std::array<pipesched::action, capacity> order{};

  template <class St> void forward(St s, pipesched::io const& x) { on_pass(pipesched::runtime_of(s), x); }
  template <class St> void backward(St s, pipesched::io const& x) { on_pass(pipesched::runtime_of(s), x); }
  template <class St> void backward_input(St s, pipesched::io const& x) { on_pass(pipesched::runtime_of(s), x); }
  template <class St> void backward_weight(St s, pipesched::io const& x) { on_pass(pipesched::runtime_of(s), x); }

  void on_pass(pipesched::runtime_step const& s, pipesched::io const& x) {
    if (calls < capacity) order[static_cast<std::size_t>(calls)] = pipesched::make_action(s.kind, s.stage, s.mb, s.chunk);
    ++calls;
    int const before = routes->prev_stage(s.mb, s.stage), after = routes->next_stage(s.mb, s.stage);
    if (s.kind == pipesched::op::forward) {
      if (before >= 0) expect(s, x.in, 1, before, "F input");
      if (after >= 0) put(x.out, 1, s.stage, s.mb);
      return;
    }
    if (after >= 0) expect(s, x.in, 2, after, "backward output gradient");
    if (before >= 0) expect(s, x.aux, 1, before, "backward saved input");
    if (s.kind != pipesched::op::backward_weight && before >= 0) put(x.out, 2, s.stage, s.mb);
  }

private:
  void put(pipesched::view const& v, int what, int stage, int mb) const {
    stamp st{what, stage, mb, salt};
    std::memcpy(v.data, &st, sizeof st);
  }
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

} // namespace plan_test
