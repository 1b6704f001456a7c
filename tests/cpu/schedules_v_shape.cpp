// V-Half and V-Min against the reference (shared/reference/schedules.md: "V-shape family",
// "Cases", "Worst-rank idle slots"). Each expected number names its source: "reference"
// (schedules.md, section named), "closed form" (derived next to it) or "regression value"
// (the generator's own output).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "../support/conformance.hpp"
#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/v_shape.hpp"

using namespace pipesched;
using pipesched::testing::check_conformance;

namespace {
constexpr cost_model unit{1, 1, 1, 0};

/// Idle slots on the worst rank, the measure of the reference's idle-slot table: simulate the
/// table with F = B = W = 1 per chunk and no latency (one pass = one slot); a rank's idle
/// slots are its span (start of its first pass to end of its last) minus its busy time (6m
/// slots for a V-shape rank: F, I and W of two chunks per micro-batch); the worst rank is
/// the one with the most. Time before a rank's first pass and after its last does not count.
/// `c` sets the pass costs for tables whose passes are not one chunk each (1F1B in chunk
/// units: a stage is two chunks, F = 2, fused B = 4).
double worst_idle_slots(table const& t, cost_model c = unit) {
  simulation s = simulate(t, sim_costs{c});
  REQUIRE(s.ok());
  double worst = 0;
  REQUIRE(s.idle.size() == t.lists.size());
  for (std::size_t r = 0; r < s.idle.size(); ++r) {
    double span = s.rank_end[r] - s.rank_start[r];
    // independent: the rank's work summed from its own list and the costs (a fused B costs
    // B + W), not simulate()'s busy time, so that idle is the reference's measure
    double work = 0;
    for (action const& a : t.lists[r])
      work += a.kind == op::forward           ? c.f
              : a.kind == op::backward        ? c.b + c.w
              : a.kind == op::backward_input  ? c.b
              : a.kind == op::backward_weight ? c.w
                                              : 0.0;
    CHECK(s.idle[r] == doctest::Approx(span - work));
    worst = std::max(worst, s.idle[r]);
  }
  return worst;
}

double largest(vec<double> const& v) { return *std::max_element(v.begin(), v.end()); }

constexpr int v_half_units(int p) { return (p + 2) / 2; }
constexpr int v_min_units(int p) { return (p + 4) / 3; }

template <class Family> table make(int p, int m, cost_model c = unit) { return Family::generate({p, m, 0, 0, c}); }

std::string label(char const* name, int p, int m) {
  return std::string(name) + " p=" + std::to_string(p) + " m=" + std::to_string(m);
}
} // namespace

// Compile time: the schedule types (generate, lower, verify), the reference cases, the bound
// carried in the table, and generation at p = 16, m = 128 within the default constexpr limits.
static_assert(v_half<stages<4>, microbatches<8>>::valid);
static_assert(v_min<stages<4>, microbatches<8>>::valid);
static_assert(v_min<stages<6>, microbatches<3>, chunks<2>>::valid);
static_assert(v_half<stages<5>, microbatches<1>>::valid);
// reference: schedules.md, Cases (c = 0), rows V-Half (makespan 53) and V-Min (makespan 59)
static_assert(simulate(v_half_family::generate({4, 8}), sim_costs{unit}).makespan == 53);
static_assert(simulate(v_min_family::generate({4, 8}), sim_costs{unit}).makespan == 59);
// reference: schedules.md, "V-shape family": V-Half memory ⌊(p+2)/2⌋ = 3, V-Min ⌊(p+4)/3⌋ = 2
// units at p = 4 (also the Cases rows), × 2 chunk-activations per unit (v = 2)
static_assert(v_half_family::generate({4, 8}).memory_bound_chunks == 2 * 3);
static_assert(v_min_family::generate({4, 8}).memory_bound_chunks == 2 * 2);
static_assert(verify(v_half_family::generate({8, 24})).ok());
static_assert(verify(v_min_family::generate({8, 24})).ok());
static_assert(v_half_family::check({4, 8, 3}).code == errc::needs_two_chunks);
static_assert(v_min_family::check({4, 8, 1}).code == errc::needs_two_chunks);
// closed form: S = 2p stages, one F, I and W each per (stage, micro-batch) (reference:
// schedules.md, Dependencies, rule 1): 3·2p·m
// (p = 16, m = 128 as schedule types: their generators are split in two constant
// evaluations, split_generator; one call of generate() there exceeds g++'s default budget)
static_assert(v_half<ranks<16>, microbatches<128>>::summary.compute == 6u * 16u * 128u);
static_assert(v_min<ranks<16>, microbatches<128>>::summary.compute == 6u * 16u * 128u);
static_assert(v_half<ranks<16>, microbatches<128>>::compute.size(0) == 6u * 128u);
static_assert(v_min<ranks<16>, microbatches<128>>::compute.size(15) == 6u * 128u);
static_assert(split_generator<v_half_family> && split_generator<v_min_family>);
// The stream programs every CUDA executor names (copy mode: one process; rendezvous: NCCL) at
// p = 16, m = 128, derived and checked inside the compiler within g++'s default constexpr
// limits, as for zb_v and interleaved_1f1b in schedules_compile_budget.cpp
static_assert(cuda::stream_program_of<v_half<ranks<16>, microbatches<128>>>::valid);
static_assert(cuda::stream_program_of<v_half<ranks<16>, microbatches<128>>, cuda::transfer_mode::rendezvous>::valid);
static_assert(cuda::stream_program_of<v_min<ranks<16>, microbatches<128>>>::valid);
static_assert(cuda::stream_program_of<v_min<ranks<16>, microbatches<128>>, cuda::transfer_mode::rendezvous>::valid);

TEST_CASE("schedule.v_half.reference.p4.m8") {
  // Cases table: V-Half, p = 4, m = 8, F = B = W = 1 -> makespan 53, span 53, memory 3
  // reference: schedules.md, Cases (c = 0), row V-Half (the three numbers below)
  table t = make<v_half_family>(4, 8);
  check_conformance(t, unit, "v-half p=4 m=8");
  CHECK(t.place == placement::v_shape);
  CHECK(t.split_backward);
  auto s = simulate(t, sim_costs{unit});
  CHECK(s.makespan == doctest::Approx(53));
  CHECK(s.max_rank_span == doctest::Approx(53));
  CHECK(largest(s.peak_memory) == doctest::Approx(3));
  CHECK(v_half<stages<4>, microbatches<8>>::make().lists == lower(t, sim_costs{unit}).lists);
}

TEST_CASE("schedule.v_min.reference.p4.m8") {
  // Cases table: V-Min, p = 4, m = 8, F = B = W = 1 -> makespan 59, span 59, memory 2
  // reference: schedules.md, Cases (c = 0), row V-Min (the three numbers below)
  table t = make<v_min_family>(4, 8);
  check_conformance(t, unit, "v-min p=4 m=8");
  auto s = simulate(t, sim_costs{unit});
  CHECK(s.makespan == doctest::Approx(59));
  CHECK(s.max_rank_span == doctest::Approx(59));
  CHECK(largest(s.peak_memory) == doctest::Approx(2));
  CHECK(v_min<stages<4>, microbatches<8>>::make().lists == lower(t, sim_costs{unit}).lists);
}

TEST_CASE("schedule.v_shape.idle_slots.definition") {
  // The measure reproduces the reference's own row "1F1B, same model in chunk units":
  // 18, 24, 30, 42 idle slots for p = 4, 5, 6, 8 (= 6(p-1)), for any m >= 2p.
  // reference: schedules.md, "Worst-rank idle slots" table, row "1F1B, same model in chunk units"
  int const expect[] = {18, 24, 30, 42};
  int i = 0;
  for (int p : {4, 5, 6, 8}) {
    for (int m : {2 * p, 3 * p})
      CHECK(worst_idle_slots(one_f_one_b_family::generate({p, m}), cost_model{2, 2, 2, 0}) == expect[i]);
    ++i;
  }
  // a rank busy from its first pass to its last has none: ZB-V-like single rank
  // closed form: 0, derived: with p = 1 every pass is on the one rank and every dependency of a
  // pass is an earlier pass of the same list, so the rank never waits
  CHECK(worst_idle_slots(make<v_half_family>(1, 5)) == 0);
  // one micro-batch: rank 0 runs F at 0, waits for f at 2p-1 (the forward through the V),
  // then B, waits for b at 4p-1 (the backward through the V), then the last W ends at 4p+1;
  // 6 slots busy: 4p-5 idle
  // closed form, derived above for rank 0 (its chunk-1 W fits the 2p−2 idle slots between B and
  // b, as the reference's "put each pending W into an idle slot" does); rank i starts i slots
  // later and gets b back i slots earlier, so rank 0 is the worst
  for (int p : {2, 4, 7}) {
    CHECK(worst_idle_slots(make<v_min_family>(p, 1)) == 4 * p - 5);
    CHECK(worst_idle_slots(make<v_half_family>(p, 1)) == 4 * p - 5);
  }
}

TEST_CASE("schedule.v_half.idle.p4-8.m2p") {
  // worst-rank idle slots, F = B = W = 1, m >= 2p: at most the reference's 5, 11, 11, 17
  // reference: schedules.md, "Worst-rank idle slots", row V-Half (p = 4, 5, 6, 8)
  int const floor_slots[] = {5, 11, 11, 17};
  int i = 0;
  for (int p : {4, 5, 6, 8}) {
    for (int m : {2 * p, 2 * p + 3, 3 * p}) {
      INFO(label("v-half", p, m));
      table t = make<v_half_family>(p, m);
      CHECK(worst_idle_slots(t) <= floor_slots[i]);
      CHECK(largest(simulate(t, sim_costs{unit}).peak_memory) <= v_half_units(p));
    }
    ++i;
  }
}

TEST_CASE("schedule.v_min.idle.p4-8.m2p") {
  // worst-rank idle slots, F = B = W = 1, m >= 2p: the reference's greedy V-Min leaves 11,
  // 15, 17, 27; the blocks searched here reach 11, 11, 18, 23 (p = 6 is one slot short, see
  // the next case; p = 8 reaches the 23 of the reference's wider search at M = p)
  // 11, 15 -- reference: schedules.md, "Worst-rank idle slots", row "V-Min (greedy)", p = 4, 5.
  // 18 -- regression value: the generator's own output at p = 6, one slot worse than the
  //       reference's 17 (docs/01_schedules.md lists the gap; schedule.v_min.idle.p6.m12).
  // 23 -- reference: schedules.md, "V-shape family", wider search: "for p = 8 at M = p that is 23
  //       idle slots" (M = p chunk-activations = ⌊(p+4)/3⌋ = 4 units, V-Min's memory at p = 8).
  int const floor_slots[] = {11, 15, 18, 23};
  int i = 0;
  for (int p : {4, 5, 6, 8}) {
    for (int m : {2 * p, 2 * p + 3, 3 * p}) {
      INFO(label("v-min", p, m));
      table t = make<v_min_family>(p, m);
      CHECK(worst_idle_slots(t) <= floor_slots[i]);
      CHECK(largest(simulate(t, sim_costs{unit}).peak_memory) <= v_min_units(p));
    }
    ++i;
  }
  // regression value: 11 at p = 5 is the generator's own output (docs/01_schedules.md, "V-Min,
  // ours / reference greedy 11 / 15"), better than the reference's 15; not a reference figure
  CHECK(worst_idle_slots(make<v_min_family>(5, 10)) <= 11);
}

TEST_CASE("schedule.v_min.idle.p6.m12") {
  // reference: schedules.md, "Worst-rank idle slots", V-Min (greedy) at p = 6: 17. Our block
  // search alone gives 18; the reference's own construction, timed as a candidate
  // (v_shape_reference.hpp), gives 17, so the family does.
  CHECK(worst_idle_slots(detail::v_shape_for_costs(false, params{6, 12}, 2 * v_min_units(6))) == 18); // regression value
  CHECK(worst_idle_slots(make<v_min_family>(6, 12)) == 17);
  for (int m : {13, 18, 24}) CHECK(worst_idle_slots(make<v_min_family>(6, m)) == 17);
}

TEST_CASE("schedule.v_shape.reference_construction") {
  // The reference repository's V-Half and V-Min, built from its rules (v_shape_reference.hpp),
  // reproduce its worst-rank idle slots (reference: schedules.md, "Worst-rank idle slots",
  // F = B = W = 1, m >= 2p): V-Half 5, 11, 11, 17 and V-Min 11, 15, 17, 27 at p = 4, 5, 6, 8,
  // and the Cases rows at p = 4, m = 8 (V-Half 53 / memory 3, V-Min 59 / memory 2); every
  // order verifies within the family's memory.
  int const ps[] = {4, 5, 6, 8};
  int const half_idle[] = {5, 11, 11, 17}, min_idle[] = {11, 15, 17, 27};
  for (int i = 0; i < 4; ++i)
    for (int m : {2 * ps[i], 3 * ps[i] + 1}) {
      int const p = ps[i];
      INFO(label("reference", p, m));
      table h = detail::reference_v_order(p, m, false), n = detail::reference_v_order(p, m, true);
      h.memory_bound_chunks = 2 * v_half_units(p);
      n.memory_bound_chunks = 2 * v_min_units(p);
      CHECK(verify(h).ok());
      CHECK(verify(n).ok());
      CHECK(worst_idle_slots(h) == half_idle[i]);
      CHECK(worst_idle_slots(n) == min_idle[i]);
    }
  simulation const h = simulate(detail::reference_v_order(4, 8, false), sim_costs{unit});
  simulation const n = simulate(detail::reference_v_order(4, 8, true), sim_costs{unit});
  CHECK(h.max_rank_span == 53);
  CHECK(largest(h.peak_memory) == 3);
  CHECK(n.max_rank_span == 59);
  CHECK(largest(n.peak_memory) == 2);
}

TEST_CASE("schedule.v_shape.reference_order_extends") {
  // reference_v_order repeats the steady state of the order built for m0 = 2p + 4; it equals
  // the full construction (reference_v_order_built) for every p <= 16, m <= 6p + 12.
  for (int p = 1; p <= 16; ++p)
    for (int m = 2 * p + 5; m <= 6 * p + 12; m += (p > 8 ? 3 : 1))
      for (bool vmin : {false, true}) {
        INFO(label(vmin ? "v-min" : "v-half", p, m));
        CHECK(detail::reference_v_order(p, m, vmin).lists == detail::reference_v_order_built(p, m, vmin).lists);
      }
}

TEST_CASE("schedule.v_shape.split_generator") {
  // generate() is the split generator's two halves and its choice, as schedule<> runs them
  for (int p : {3, 6, 8})
    for (int m : {p, 2 * p, 3 * p + 1})
      for (cost_model const c : {unit, cost_model{1, 2, 1, 0.25}}) {
        params const pr{p, m, 0, 0, c};
        INFO(label("v-shape", p, m));
        for (bool half : {true, false}) {
          table const own = half ? v_half_family::generate_own(pr) : v_min_family::generate_own(pr);
          table const alt = half ? v_half_family::alternative(pr) : v_min_family::alternative(pr);
          bool const take = half ? v_half_family::prefer_alternative(own, alt, pr) : v_min_family::prefer_alternative(own, alt, pr);
          table const full = half ? v_half_family::generate(pr) : v_min_family::generate(pr);
          CHECK(full.lists == (take ? alt : own).lists);
          CHECK(full.memory_bound_chunks == (take ? alt : own).memory_bound_chunks);
        }
      }
  // and the compiler's two evaluations give the type the same table
  CHECK(thaw(v_min<ranks<6>, microbatches<12>>::compute).lists == v_min_family::generate({6, 12}).lists);
}

TEST_CASE("schedule.v_shape.memory.p1-16.m1-64") {
  // peak memory floor((p+2)/2) (V-Half) and floor((p+4)/3) (V-Min) in the reference unit on
  // every rank, for every p and m; reached once m >= 2p. verify() enforces the bound carried
  // in the table; the lowering must pass too.
  for (int p = 1; p <= 16; ++p)
    for (int m = 1; m <= 64; m += (m < 12 ? 1 : 5)) {
      struct family_case {
        char const* name;
        table t;
        int units;
      };
      for (family_case const& f : {family_case{"v-half", make<v_half_family>(p, m), v_half_units(p)},
                                   family_case{"v-min", make<v_min_family>(p, m), v_min_units(p)}}) {
        INFO(label(f.name, p, m));
        REQUIRE_MESSAGE(f.t.ok(), to_string(f.t.error));
        // reference: schedules.md, "V-shape family": memory ⌊(p+2)/2⌋ (V-Half), ⌊(p+4)/3⌋ (V-Min)
        // units, × 2 chunk-activations per unit (v = 2). The figures are the steady state's
        // (the reference's idle-slot table is for m ≥ 2p, its Cases rows have m = 2p), hence
        // equality is required only from m = 2p on.
        CHECK(f.t.memory_bound_chunks == 2 * f.units);
        diagnostic d = verify(f.t);
        CHECK_MESSAGE(d.ok(), to_string(d));
        diagnostic dl = verify(lower(f.t, sim_costs{unit}));
        CHECK_MESSAGE(dl.ok(), to_string(dl));
        double peak = largest(simulate(f.t, sim_costs{unit}).peak_memory);
        CHECK(peak <= f.units);
        if (m >= 2 * p) CHECK(peak == doctest::Approx(f.units));
      }
    }
}

TEST_CASE("schedule.v_shape.conformance.p1-16") {
  // lowering with buffer slots under other costs and latency (the slot check is quadratic)
  cost_model const costs_set[] = {{1, 1, 1, 0}, {1, 2, 1, 0}, {0.5, 1.25, 0.75, 0.25}, {2, 1, 3, 0}};
  int i = 0;
  for (int p : {1, 2, 3, 4, 6, 9, 16})
    for (int m : {1, 2, p + 1, 2 * p + 7}) {
      cost_model const& c = costs_set[static_cast<std::size_t>(i++) % std::size(costs_set)];
      check_conformance(make<v_half_family>(p, m, c), c, label("v-half", p, m));
      check_conformance(make<v_min_family>(p, m, c), c, label("v-min", p, m));
    }
}

TEST_CASE("schedule.v_shape.costs_only_shorten") {
  // With F = B = W (any scale), c = 0 and m >= 2p the order is the unit-cost building-block
  // order whatever the scale; otherwise the costs may change it, only to a shorter largest rank
  // span under those costs than the unit-cost order's, at no more memory than the bound.
  for (int p : {1, 3, 4, 7})
    for (int m : {1, 5, 2 * p + 9}) {
      INFO(label("v-shape", p, m));
      if (m >= 2 * p) {
        CHECK(make<v_half_family>(p, m).lists == make<v_half_family>(p, m, cost_model{2, 2, 2, 0}).lists);
        CHECK(make<v_min_family>(p, m).lists == make<v_min_family>(p, m, cost_model{0.5, 0.5, 0.5, 0}).lists);
      }
      for (cost_model const c : {cost_model{1, 3, 0.5, 0.25}, cost_model{2, 1, 1, 0}}) {
        for (bool half : {true, false}) {
          table const unit_order = half ? make<v_half_family>(p, m) : make<v_min_family>(p, m);
          table const ours = half ? make<v_half_family>(p, m, c) : make<v_min_family>(p, m, c);
          simulation const a = simulate(ours, sim_costs{c}), b = simulate(unit_order, sim_costs{c});
          REQUIRE(a.ok());
          CHECK(a.max_rank_span <= b.max_rank_span + 1e-9);
          CHECK(largest(a.peak_memory) <= (half ? v_half_units(p) : v_min_units(p)));
          CHECK(verify(ours).ok());
        }
      }
    }
}

TEST_CASE("schedule.v_shape.repeated_steady_state.p1-12") {
  // Past 2p + 6 micro-batches the generator repeats the steady state of a shorter build; the
  // result is the order a direct build for m gives.
  for (int p = 1; p <= 12; ++p)
    for (int m : {2 * p + 7, 3 * p + 11, 5 * p + 8}) {
      INFO(label("v-shape", p, m));
      CHECK(detail::v_shape_schedule(true, p, m, 2 * v_half_units(p)).lists ==
            detail::v_shape_schedule(true, p, m, 2 * v_half_units(p), false).lists);
      CHECK(detail::v_shape_schedule(false, p, m, 2 * v_min_units(p)).lists ==
            detail::v_shape_schedule(false, p, m, 2 * v_min_units(p), false).lists);
    }
}

TEST_CASE("schedule.v_shape.refuses_other_chunks") {
  for (int v : {1, 3}) {
    CHECK(make<v_half_family>(4, 8).ok());
    CHECK(v_half_family::generate({4, 8, v}).error.code == errc::needs_two_chunks);
    CHECK(v_min_family::generate({4, 8, v}).error.code == errc::needs_two_chunks);
  }
  CHECK(v_min_family::generate({4, 8, 2}).ok());
  CHECK(v_min_family::generate({4, 0}).error.code == errc::zero_microbatches);
}

namespace {
/// Every pass code in a layout, decoded by the pass-code helpers, sits where the layout's
/// indexes say: a compute pass at pass_slot, a W (while squeezing) at weight_slot.
void check_codes_agree(detail::v_layout const& L, bool squeeze_codes) {
  int const m = L.m;
  for (int r = 0; r < L.p; ++r)
    for (int s = 0; s < L.len; ++s) {
      int const x = L.occupant[static_cast<std::size_t>(L.len * r + s)];
      if (x == detail::free_slot) continue;
      REQUIRE(x >= 0);
      if (detail::is_forward_code(x, m) || detail::is_input_backward_code(x, m)) {
        int const kind = detail::code_kind(x, m), mb = detail::code_index(x, m);
        CHECK(detail::pass_code(kind, mb, m) == x);
        CHECK(L.pass_slot[static_cast<std::size_t>((4 * r + kind) * m + mb)] == s);
      } else if (squeeze_codes) {
        CHECK(detail::code_kind(x, m) == detail::squeeze_weight);
        int const n = detail::code_index(x, m);
        CHECK(detail::squeeze_weight_code(n, m) == x);
        CHECK(L.weight_slot[static_cast<std::size_t>(2 * m * r + n)] == s);
      } else {
        CHECK(x < detail::first_weight_code(m) + 2 * m); // a final W code: (kind + 2) m + mb
      }
    }
}
} // namespace

TEST_CASE("schedule.v_shape.layout_codes.p1-8") {
  // The squeeze's hot loops read codes inline (x < 0 free, x < 2m forward, ...); the helpers
  // name the same encoding.
  static_assert(detail::first_input_code(5) == 10 && detail::first_weight_code(5) == 20);
  static_assert(detail::is_forward_code(detail::pass_code(detail::v_forward1, 4, 5), 5));
  static_assert(detail::is_input_backward_code(detail::pass_code(detail::v_input_backward0, 0, 5), 5));
  static_assert(!detail::is_forward_code(detail::free_slot, 5));
  for (int p = 1; p <= 8; ++p)
    for (int m : {1, 2, 5, p + 3}) {
      INFO(label("v-half block", p, m));
      detail::v_layout L{};
      vec<int> base(static_cast<std::size_t>(4 * p), 0);
      detail::block_slots(detail::v_half_block(p), p, base.data());
      if (!detail::block_usable(base.data(), p)) continue;
      L.p = p;
      L.m = m;
      REQUIRE(detail::lay_out(L, base.data()));
      check_codes_agree(L, true);
      detail::place_weights(L);
      check_codes_agree(L, true);
      detail::squeeze(L, true);
      check_codes_agree(L, true);
      detail::drop_weights(L);
      detail::squeeze(L, false);
      check_codes_agree(L, true);
      detail::final_weights(L);
      check_codes_agree(L, false);
    }
}
