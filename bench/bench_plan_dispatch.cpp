// Per-action cost of executing a lowered table, p = 4, m = 32, all ranks one after another
// on one thread, with a transport that moves nothing. Two pairs:
//
// The fair pair (the headline): every pass and transfer is one call of an out-of-line
// function — as in any real stage, whose pass calls into kernels or a layer library —
// taking the step's stage, micro-batch and output view:
//
//   BM_plan_inlined_call/<schedule>    plan<S, r>::run — the list unrolled at compile time
//   BM_switch_interpreter/<schedule>   the same table as a vector of actions, a `switch` on
//                                      the pass calling the functor's members directly
//   BM_runtime_schedule/<schedule>     pipesched's run-time path (runtime_schedule::run, what
//                                      host::runtime_executor runs per rank) with the same stage
//
// The limit case: empty functors, which the compiler deletes from the inlined plan, against
// an interpreter that goes through a function pointer per action (what the plan saves at
// most, not what it saves on real stages):
//
//   BM_plan_inlined/<schedule>         plan<S, r>::run with empty functors
//   BM_plan_interpreted/<schedule>     vector, switch and an indirect call per action
//
// items_per_second: actions (compute passes and transfers) executed per second.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <pipesched/plan/buffer_plan.hpp>
#include <pipesched/plan/plan.hpp>
#include <pipesched/plan/runtime_plan.hpp>
#include <pipesched/schedules/gpipe.hpp>
#include <pipesched/schedules/interleaved.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>
#include <pipesched/schedules/v_shape.hpp>
#include <pipesched/schedules/zb_v.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

namespace {

using namespace pipesched;

constexpr int p = 4;
constexpr int m = 32;

/// Empty functor and transport: each call only keeps the view it was given alive, so the
/// compiler must still produce the call's arguments but nothing else.
struct empty_stage {
  template <class St> static void touch(St const& s, io const& x) {
    benchmark::DoNotOptimize(s.mb);
    benchmark::DoNotOptimize(x.out.data);
  }
  template <class St> void forward(St s, io const& x) { touch(s, x); }
  template <class St> void backward(St s, io const& x) { touch(s, x); }
  template <class St> void backward_input(St s, io const& x) { touch(s, x); }
  template <class St> void backward_weight(St s, io const& x) { touch(s, x); }
  template <class St> void send(St s, io const& x) { touch(s, x); }
  template <class St> void recv(St s, io const& x) { touch(s, x); }
};

/// The out-of-line work of one pass: what a real stage's call into its kernels costs at
/// the least. Defined below main's reach of inlining (noinline), so both the plan and the
/// interpreter pay one real call with the same three arguments.
[[gnu::noinline]] void stage_call(int stage, int mb, void* out) {
  benchmark::DoNotOptimize(stage);
  benchmark::DoNotOptimize(mb);
  benchmark::DoNotOptimize(out);
}

/// A stage (and transport) whose every member is one out-of-line call.
struct calling_stage {
  template <class St> void forward(St s, io const& x) { stage_call(s.stage, s.mb, x.out.data); }
  template <class St> void backward(St s, io const& x) { stage_call(s.stage, s.mb, x.out.data); }
  template <class St> void backward_input(St s, io const& x) { stage_call(s.stage, s.mb, x.out.data); }
  template <class St> void backward_weight(St s, io const& x) { stage_call(s.stage, s.mb, x.in.data); }
  template <class St> void send(St s, io const& x) { stage_call(s.stage, s.mb, x.in.data); }
  template <class St> void recv(St s, io const& x) { stage_call(s.stage, s.mb, x.out.data); }
};

/// Every rank's boundary slots (the views point into one block per rank).
struct slot_storage {
  std::vector<std::vector<unsigned char>> blocks;
  std::vector<std::vector<view>> views;
  explicit slot_storage(table const& t) {
    for (int r = 0; r < t.ranks; ++r) {
      int const n = t.slot_count[static_cast<std::size_t>(r)];
      blocks.emplace_back(block_bytes(n, 64));
      views.emplace_back(static_cast<std::size_t>(n));
      carve_slots(blocks.back().data(), n, 64, views.back().data());
    }
  }
};

template <class S> void plan_inlined(benchmark::State& state) {
  table const t = S::make();
  slot_storage slots(t);
  empty_stage f;
  for (auto _ : state) {
    [&]<int... R>(std::integer_sequence<int, R...>) { (plan<S, R>::run(f, f, slots.views[R].data()), ...); }
    (std::make_integer_sequence<int, S::ranks>{});
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(t.total_actions()));
}

/// The run-time interpreter: one handler per pass kind behind a function pointer.
struct handlers {
  using fn = void (*)(empty_stage&, runtime_step const&, io const&);
  fn forward, backward, backward_input, backward_weight, send, recv;
};

handlers make_handlers() {
  handlers h{};
  h.forward = [](empty_stage& f, runtime_step const& s, io const& x) { f.forward(s, x); };
  h.backward = [](empty_stage& f, runtime_step const& s, io const& x) { f.backward(s, x); };
  h.backward_input = [](empty_stage& f, runtime_step const& s, io const& x) { f.backward_input(s, x); };
  h.backward_weight = [](empty_stage& f, runtime_step const& s, io const& x) { f.backward_weight(s, x); };
  h.send = [](empty_stage& f, runtime_step const& s, io const& x) { f.send(s, x); };
  h.recv = [](empty_stage& f, runtime_step const& s, io const& x) { f.recv(s, x); };
  return h;
}

/// What an interpreter makes of an action before it calls anything: the run-time step and
/// the boundary views of its slots.
struct decoded {
  runtime_step step;
  io views;
};
inline decoded decode(action const& a, view const* slots, int rank, int stages) {
  auto slot = [&](std::uint16_t k) { return k == no_slot ? view{} : slots[k]; };
  return {runtime_step{a.kind, a.stage, a.chunk, a.mb, detail::slot_or_none(a.in), detail::slot_or_none(a.out),
                       detail::slot_or_none(a.aux), detail::rank_or_none(a.peer), stages},
          io{slot(a.in), slot(a.out), slot(a.aux), nullptr, rank}};
}

void interpret(std::vector<action> const& list, view const* slots, int rank, int stages, handlers const& h,
               empty_stage& f) {
  for (action const& a : list) {
    auto const [s, x] = decode(a, slots, rank, stages);
    switch (a.kind) {
    case op::forward: h.forward(f, s, x); break;
    case op::backward: h.backward(f, s, x); break;
    case op::backward_input: h.backward_input(f, s, x); break;
    case op::backward_weight: h.backward_weight(f, s, x); break;
    case op::send_act:
    case op::send_grad: h.send(f, s, x); break;
    case op::recv_act:
    case op::recv_grad: h.recv(f, s, x); break;
    }
  }
}

template <class S> void plan_interpreted(benchmark::State& state) {
  table const t = S::make();
  slot_storage slots(t);
  std::vector<std::vector<action>> lists;
  for (int r = 0; r < t.ranks; ++r)
    lists.emplace_back(t.lists[static_cast<std::size_t>(r)].begin(), t.lists[static_cast<std::size_t>(r)].end());
  handlers h = make_handlers();
  benchmark::DoNotOptimize(&h); // the handlers are run-time values: no devirtualisation
  empty_stage f;
  for (auto _ : state) {
    for (int r = 0; r < t.ranks; ++r)
      interpret(lists[static_cast<std::size_t>(r)], slots.views[static_cast<std::size_t>(r)].data(), r, t.stages, h, f);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(t.total_actions()));
}

template <class S> void plan_inlined_call(benchmark::State& state) {
  table const t = S::make();
  slot_storage slots(t);
  calling_stage f;
  for (auto _ : state) {
    [&]<int... R>(std::integer_sequence<int, R...>) { (plan<S, R>::run(f, f, slots.views[R].data()), ...); }
    (std::make_integer_sequence<int, S::ranks>{});
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(t.total_actions()));
}

/// The interpreter a user would write: a loop over the actions and a switch on the pass
/// that calls the functor's members directly (with a run-time step).
void interpret_switch(std::vector<action> const& list, view const* slots, int rank, int stages, calling_stage& f) {
  for (action const& a : list) {
    auto const [s, x] = decode(a, slots, rank, stages);
    switch (a.kind) {
    case op::forward: f.forward(s, x); break;
    case op::backward: f.backward(s, x); break;
    case op::backward_input: f.backward_input(s, x); break;
    case op::backward_weight: f.backward_weight(s, x); break;
    case op::send_act:
    case op::send_grad: f.send(s, x); break;
    case op::recv_act:
    case op::recv_grad: f.recv(s, x); break;
    }
  }
}

template <class S> void switch_interpreter(benchmark::State& state) {
  table const t = S::make();
  slot_storage slots(t);
  std::vector<std::vector<action>> lists;
  for (int r = 0; r < t.ranks; ++r)
    lists.emplace_back(t.lists[static_cast<std::size_t>(r)].begin(), t.lists[static_cast<std::size_t>(r)].end());
  calling_stage f;
  for (auto _ : state) {
    for (int r = 0; r < t.ranks; ++r)
      interpret_switch(lists[static_cast<std::size_t>(r)], slots.views[static_cast<std::size_t>(r)].data(), r, t.stages,
                       f);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(t.total_actions()));
}

/// The run-time path (host::runtime_executor's inner loop): the same table as a
/// runtime_schedule, run rank by rank with the same calling stage (called with runtime_step).
template <class S> void runtime_schedule_run(benchmark::State& state) {
  runtime_schedule const sched(S::make());
  table const& t = sched.lowered();
  slot_storage slots(t);
  calling_stage f;
  for (auto _ : state) {
    for (int r = 0; r < t.ranks; ++r) sched.run(r, f, f, slots.views[static_cast<std::size_t>(r)].data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(t.total_actions()));
}

template <class S> void register_schedule() {
  std::string const name = S::name;
  benchmark::RegisterBenchmark(("BM_plan_inlined_call/" + name).c_str(), plan_inlined_call<S>);
  benchmark::RegisterBenchmark(("BM_switch_interpreter/" + name).c_str(), switch_interpreter<S>);
  benchmark::RegisterBenchmark(("BM_runtime_schedule/" + name).c_str(), runtime_schedule_run<S>);
  benchmark::RegisterBenchmark(("BM_plan_inlined/" + name).c_str(), plan_inlined<S>);
  benchmark::RegisterBenchmark(("BM_plan_interpreted/" + name).c_str(), plan_interpreted<S>);
}

[[maybe_unused]] bool const registered = [] {
  register_schedule<gpipe<ranks<p>, microbatches<m>>>();
  register_schedule<one_f_one_b<ranks<p>, microbatches<m>>>();
  register_schedule<interleaved_1f1b<ranks<p>, microbatches<m>, chunks<2>>>();
  register_schedule<zb_h1<ranks<p>, microbatches<m>>>();
  register_schedule<zb_h2<ranks<p>, microbatches<m>>>();
  register_schedule<zb_v<ranks<p>, microbatches<m>>>();
  register_schedule<v_half<ranks<p>, microbatches<m>>>();
  register_schedule<v_min<ranks<p>, microbatches<m>>>();
  return true;
}();

} // namespace
