// Per-action cost of executing a lowered table, p = 4, m = 32, all ranks one after another
// on one thread, with empty stage functors and a transport that moves nothing:
//
//   BM_plan_inlined/<schedule>      plan<S, r>::run — the list unrolled at compile time
//   BM_plan_interpreted/<schedule>  the same table as a vector of actions, a switch on the
//                                   pass and an indirect call per action
//
// items_per_second: actions (compute passes and transfers) executed per second.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <pipesched/plan/buffer_plan.hpp>
#include <pipesched/plan/plan.hpp>
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

void interpret(std::vector<action> const& list, view const* slots, int rank, int stages, handlers const& h,
               empty_stage& f) {
  auto slot = [&](std::uint16_t k) { return k == no_slot ? view{} : slots[k]; };
  for (action const& a : list) {
    runtime_step const s{a.kind,
                         a.stage,
                         a.chunk,
                         a.mb,
                         detail::slot_or_none(a.in),
                         detail::slot_or_none(a.out),
                         detail::slot_or_none(a.aux),
                         detail::rank_or_none(a.peer),
                         stages};
    io const x{slot(a.in), slot(a.out), slot(a.aux), nullptr, rank};
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

template <class S> void register_schedule() {
  std::string const name = S::name;
  benchmark::RegisterBenchmark(("BM_plan_inlined/" + name).c_str(), plan_inlined<S>);
  benchmark::RegisterBenchmark(("BM_plan_interpreted/" + name).c_str(), plan_interpreted<S>);
}

[[maybe_unused]] bool const registered = [] {
  register_schedule<gpipe<stages<p>, microbatches<m>>>();
  register_schedule<one_f_one_b<stages<p>, microbatches<m>>>();
  register_schedule<interleaved_1f1b<stages<p>, microbatches<m>, chunks<2>>>();
  register_schedule<zb_h1<stages<p>, microbatches<m>>>();
  register_schedule<zb_h2<stages<p>, microbatches<m>>>();
  register_schedule<zb_v<stages<p>, microbatches<m>>>();
  register_schedule<v_half<stages<p>, microbatches<m>>>();
  register_schedule<v_min<stages<p>, microbatches<m>>>();
  return true;
}();

} // namespace
