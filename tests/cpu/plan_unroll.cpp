// plan<S, R> calls exactly the rank's lowered list: same passes and transfers, in the same
// order, with the compile-time step and the run-time views of the slots each action names.
#include <doctest/doctest.h>

#include <vector>

#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/plan.hpp"
#include "pipesched/schedules/forward_only.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

/// Writes down every call as an action, recovering slot indices from the view addresses.
struct recorder {
  std::vector<view> const* slots = nullptr;
  std::vector<action> calls;

  std::uint16_t slot_of(view const& v) const {
    if (v.data == nullptr) return no_slot;
    for (std::size_t k = 0; k < slots->size(); ++k)
      if ((*slots)[k].data == v.data) return static_cast<std::uint16_t>(k);
    return 0xfffe; // an address that is no slot
  }
  template <class St> void note(io const& x) {
    action a = make_action(St::kind, St::stage, St::mb, St::chunk);
    a.peer = St::peer < 0 ? no_rank : static_cast<std::uint16_t>(St::peer);
    a.in = slot_of(x.in);
    a.out = slot_of(x.out);
    a.aux = slot_of(x.aux);
    calls.push_back(a);
  }
  template <class St> void forward(St, io const& x) { note<St>(x); }
  template <class St> void backward(St, io const& x) { note<St>(x); }
  template <class St> void backward_input(St, io const& x) { note<St>(x); }
  template <class St> void backward_weight(St, io const& x) { note<St>(x); }
  template <class St> void send(St, io const& x) { note<St>(x); }
  template <class St> void recv(St, io const& x) { note<St>(x); }
};

/// Rank R's step types carry the table's fields.
template <class S, int R, std::size_t... I> constexpr bool steps_match(std::index_sequence<I...>) {
  auto one = []<std::size_t K>(std::integral_constant<std::size_t, K>) {
    using st = typename plan<S, R>::template step_at<K>;
    action const a = S::lowered.at(R, K);
    return st::kind == a.kind && st::stage == a.stage && st::chunk == a.chunk && st::mb == a.mb &&
           st::in == detail::slot_or_none(a.in) && st::out == detail::slot_or_none(a.out) &&
           st::aux == detail::slot_or_none(a.aux) && st::peer == detail::rank_or_none(a.peer) &&
           st::stages == S::lowered.stages;
  };
  return (one(std::integral_constant<std::size_t, I>{}) && ...);
}

template <class S> void check_schedule() {
  table const t = S::make();
  REQUIRE(t.ok());
  [&]<int... R>(std::integer_sequence<int, R...>) {
    (
        [&] {
          static_assert(steps_match<S, R>(std::make_index_sequence<plan<S, R>::size>{}));
          CHECK(plan<S, R>::size == t.lists[R].size());
          CHECK(plan<S, R>::slots == t.slot_count[R]);
          CHECK(buffer_plan<S>::slots(R) == t.slot_count[R]);
          std::vector<unsigned char> block(block_bytes(plan<S, R>::slots, 8) + 1);
          std::vector<view> slots(static_cast<std::size_t>(plan<S, R>::slots));
          carve_slots(block.data(), plan<S, R>::slots, 8, slots.data());
          recorder rec;
          rec.slots = &slots;
          plan<S, R>::run(rec, rec, slots.data());
          REQUIRE(rec.calls.size() == t.lists[R].size());
          for (std::size_t i = 0; i < rec.calls.size(); ++i) {
            INFO("rank ", R, " position ", i);
            CHECK(rec.calls[i] == t.lists[R][i]);
          }
        }(),
        ...);
  }
  (std::make_integer_sequence<int, S::ranks>{});
}

template <int P, int M> void check_all() {
  plan_test::for_each_type(plan_test::training_schedules<P, M>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) { check_schedule<S>(); }
  });
}

} // namespace

TEST_CASE("plan.unroll.p1.m3") { check_all<1, 3>(); }
TEST_CASE("plan.unroll.p2.m5") { check_all<2, 5>(); }
TEST_CASE("plan.unroll.p4.m8") { check_all<4, 8>(); }
TEST_CASE("plan.unroll.p5.m3") { check_all<5, 3>(); }
TEST_CASE("plan.unroll.forward_only.p3.m4") { check_schedule<forward_only<stages<3>, microbatches<4>>>(); }
TEST_CASE("plan.unroll.forward_only.p2.m4.v2") {
  check_schedule<forward_only<stages<2>, microbatches<4>, chunks<2>>>();
}

TEST_CASE("plan.buffer_plan.1f1b.p4.m8") {
  using S = one_f_one_b<stages<4>, microbatches<8>>;
  table const t = S::make();
  int peak = 0, total = 0;
  for (int r = 0; r < 4; ++r) {
    CHECK(buffer_plan<S>::slots(r) == t.slot_count[static_cast<std::size_t>(r)]);
    peak = t.slot_count[static_cast<std::size_t>(r)] > peak ? t.slot_count[static_cast<std::size_t>(r)] : peak;
    total += t.slot_count[static_cast<std::size_t>(r)];
  }
  CHECK(buffer_plan<S>::max_slots == peak);
  CHECK(buffer_plan<S>::total_slots == total);
  CHECK(slot_stride(1) == slot_alignment);
  CHECK(slot_stride(slot_alignment) == slot_alignment);
  CHECK(block_bytes(3, 300) == 3 * 2 * slot_alignment);
}

namespace {
struct only_forward {
  template <class St> void forward(St, io const&) {}
};
struct fused_functor {
  template <class St> void forward(St, io const&) {}
  template <class St> void backward(St, io const&) {}
};
} // namespace

// The stage-functor concept, checked by the compiler (this file does not build if one fails).
using fused = one_f_one_b<stages<2>, microbatches<2>>;
static_assert(stage_functor_for<fused_functor, fused>);
static_assert(!stage_functor_for<only_forward, fused>);
static_assert(stage_functor_for<only_forward, forward_only<stages<2>, microbatches<2>>>);
static_assert(stage_functor_for<plan_test::checking_functor, fused>);
