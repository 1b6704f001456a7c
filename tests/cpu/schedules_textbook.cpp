// Never worse than the textbook rule: for every cost-aware family, over seeded random cases
// (p <= 16, m <= 4p, F, B, W from a few ratios, link latency c in {0, 0.1, 0.25, 0.5}), the
// generated schedule's largest rank span against the family's textbook order, built
// independently in tests/support/textbook.hpp from shared/reference/schedules.md and simulated
// with the same pipesched::simulate. Each family's MESSAGE says how often ours is strictly
// shorter. Expected numbers name their source (reference section, closed form, or the
// independent textbook simulation).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/interleaved.hpp"
#include "pipesched/schedules/v_shape.hpp"
#include "pipesched/schedules/zb_v.hpp"
#include "pipesched/schedules/zero_bubble.hpp"
#include "support/splitmix.hpp"
#include "support/textbook.hpp"

namespace {

using pipesched::cost_model;
using pipesched::params;
using pipesched::sim_costs;
using pipesched::table;

/// splitmix64: the same cases on every platform (std distributions are not portable).
struct rng {
  std::uint64_t s;
  std::uint64_t next() { return test_support::splitmix64(s); }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }
};

cost_model const ratios[] = {{1, 1, 1, 0}, {1, 2, 1, 0}, {1, 1, 0.5, 0}, {2, 1, 1, 0}, {1, 2, 0.5, 0}, {1, 1.5, 2, 0}};
double const latencies[] = {0, 0.1, 0.25, 0.5};

struct one_case {
  int p, m;
  cost_model cost;
};

/// p in [p_lo, 16], m in [1, 4p], a cost ratio and a latency.
one_case draw(rng& g, int p_lo) {
  one_case c{};
  c.p = p_lo + g.below(17 - p_lo);
  c.m = 1 + g.below(4 * c.p);
  c.cost = ratios[g.below(static_cast<int>(std::size(ratios)))];
  c.cost.c = latencies[g.below(static_cast<int>(std::size(latencies)))];
  return c;
}

std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

std::string where(one_case const& c, int v = 0) {
  return "p=" + std::to_string(c.p) + " m=" + std::to_string(c.m) + (v ? " v=" + std::to_string(v) : "") +
         " F,B,W,c=" + num(c.cost.f) + "," + num(c.cost.b) + "," + num(c.cost.w) + "," + num(c.cost.c);
}

struct measured {
  bool ok = false;
  double span = 0;
  int peak = 0; ///< chunk-activations, largest over ranks
};

measured measure(table const& t, cost_model const& cost) {
  measured out{};
  if (!t.ok() || !pipesched::verify(t).ok()) return out;
  pipesched::simulation const s = pipesched::simulate(t, sim_costs{cost});
  if (!s.ok()) return out;
  out.ok = true;
  out.span = s.max_rank_span;
  for (int x : s.peak_chunks) out.peak = x > out.peak ? x : out.peak;
  return out;
}

double tol(double x) { return 1e-9 * (1.0 + x); }

/// Counts for one family's MESSAGE.
struct tally {
  int cases = 0, better = 0, equal = 0, less_memory = 0, skipped = 0;
  void add(measured const& ours, measured const& book) {
    ++cases;
    if (ours.span < book.span - tol(book.span)) ++better;
    else if (ours.span <= book.span + tol(book.span)) ++equal;
    if (ours.peak < book.peak) ++less_memory;
  }
  std::string text(char const* family) const {
    return std::string(family) + ": " + std::to_string(cases) + " cases, ours strictly shorter in " +
           std::to_string(better) + ", equal in " + std::to_string(equal) + ", less memory in " +
           std::to_string(less_memory) + (skipped ? ", textbook order not defined or waits on itself in " +
                                                        std::to_string(skipped)
                                                  : std::string());
  }
};

} // namespace

// ---- the textbook builders against the reference's figures ------------------------------
// (what makes them textbook orders: each reproduces the reference's numbers where it has any)

TEST_CASE("schedule.textbook.builders.reference_cases") {
  cost_model const unit{1, 1, 1, 0};
  // reference: schedules.md, Cases (c = 0), row "ZB-H1 4 8 1 1,1,1": span 27, memory 4
  measured h1 = measure(textbook::zb_h1(4, 8), unit);
  REQUIRE(h1.ok);
  CHECK(h1.span == doctest::Approx(27));
  CHECK(h1.peak == 4);
  // reference: schedules.md, Cases (c = 0), row "interleaved, g = p 4 8 2 ½,½,½": span 28.5,
  // rank-0 memory 5.5 units = 11 chunk-activations
  measured il = measure(textbook::interleaved(4, 8, 2, 4), {0.5, 0.5, 0.5, 0});
  REQUIRE(il.ok);
  CHECK(il.span == doctest::Approx(28.5));
  CHECK(il.peak == 11);
  // reference: schedules.md, Interleaved 1F1B: PyTorch's g for p = 4, m = 10 (g = 5): span 34.5,
  // rank-0 memory 6 units = 12 chunk-activations
  CHECK(textbook::pytorch_group(4, 10) == 5); // reference: same sentence, g = 10 / max(1, floor(10/4))
  measured pt = measure(textbook::interleaved(4, 10, 2, 5), {0.5, 0.5, 0.5, 0});
  REQUIRE(pt.ok);
  CHECK(pt.span == doctest::Approx(34.5));
  CHECK(pt.peak == 12);
  // reference: schedules.md, Cases (c = 0), row "ZB-V 4 8 2 1,1,1": span 48, memory 4 units
  // = 8 chunk-activations (PyTorch's ZBV is the paper's ZB-V for F = B = W)
  measured zv = measure(textbook::zb_v(4, 8), unit);
  REQUIRE(zv.ok);
  CHECK(zv.span == doctest::Approx(48));
  CHECK(zv.peak == 8);
  // reference: schedules.md, Cases (c = 0), rows "V-Half 4 8 2" memory 3 and "V-Min" memory 2
  // (in chunk-activations 6 and 4): the blocks' peaks
  measured vh = measure(textbook::v_block(true, 4, 8), unit);
  measured vm = measure(textbook::v_block(false, 4, 8), unit);
  REQUIRE(vh.ok);
  REQUIRE(vm.ok);
  CHECK(vh.peak == 6);
  CHECK(vm.peak == 4);
  MESSAGE("textbook V-Half p4 m8 span " << vh.span << " (reference, with its moves: 53); V-Min " << vm.span
                                        << " (59)");
}

TEST_CASE("schedule.textbook.builders.zero_bubble") {
  // closed form: with F = B = W = 1, m >= 2p - 1 the paper's ZB-H2 has no bubble (reference:
  // schedules.md, Zero bubble: "bubble (p−1)(F+B−2W), zero when F+B ≤ 2W"): every rank is
  // busy 3m from its first pass to its last; ZB-H1's span is m(F+B+W) + (p−1)(F+B−W) = 3m + p − 1
  // (reference: same section, W ≤ F). The textbook builders must reproduce both.
  for (int p = 1; p <= 8; ++p)
    for (int m = 2 * p - 1; m <= 3 * p; ++m) {
      CAPTURE(p);
      CAPTURE(m);
      measured h2 = measure(textbook::zb_h2(p, m), {1, 1, 1, 0});
      measured h1 = measure(textbook::zb_h1(p, m), {1, 1, 1, 0});
      REQUIRE(h2.ok);
      REQUIRE(h1.ok);
      CHECK(h2.span == doctest::Approx(3.0 * m));
      CHECK(h2.peak == 2 * p - 1); // reference: "memory 2p−1 to 2p"; rank 0's warm-up 2p−1 (closed form)
      CHECK(h1.span == doctest::Approx(3.0 * m + p - 1));
    }
  // reference: schedules.md, V-shape family: "ZB-V: zero bubble when F = B = W and m ≥ 2p"
  for (int p = 2; p <= 8; ++p)
    for (int m = 2 * p; m <= 3 * p; ++m) {
      CAPTURE(p);
      CAPTURE(m);
      measured zv = measure(textbook::zb_v(p, m), {1, 1, 1, 0});
      REQUIRE(zv.ok);
      CHECK(zv.span == doctest::Approx(6.0 * m)); // closed form: 2 chunks × (F+B+W) × m, no idle slot
    }
}

// ---- the property: ours no longer than the textbook order ------------------------------

TEST_CASE("schedule.textbook.interleaved") {
  // Textbook: the plain rule (schedules.md, Interleaved 1F1B) with Megatron's g = p and with
  // PyTorch's g = m / max(1, floor(m/p)) where PyTorch accepts m (exact division); each kept
  // when it does not wait on itself. Ours (default g): at most the shorter of them, at most
  // the larger of their peaks (the generator's own rule: docs/01_schedules.md).
  rng g{0x16'01};
  tally t{};
  for (int i = 0; i < 160; ++i) {
    one_case c = draw(g, 2);
    int const v = 2 + g.below(3);
    CAPTURE(where(c, v));
    measured ours = measure(pipesched::interleaved_1f1b_family::generate({c.p, c.m, v, 0, c.cost}), c.cost);
    REQUIRE(ours.ok);
    measured book{};
    int const gs[2] = {textbook::megatron_group(c.p, c.m), textbook::pytorch_group(c.p, c.m)};
    int budget = 0;
    for (int k = 0; k < 2; ++k) {
      if (gs[k] == 0 || (k == 1 && gs[1] == gs[0])) continue;
      measured b = measure(textbook::interleaved(c.p, c.m, v, gs[k]), c.cost);
      if (!b.ok) continue;
      budget = b.peak > budget ? b.peak : budget;
      if (!book.ok || b.span < book.span) book = b;
    }
    if (!book.ok) {
      ++t.skipped;
      continue;
    }
    CHECK(ours.span <= book.span + tol(book.span));
    CHECK(ours.peak <= budget);
    t.add(ours, book);
  }
  MESSAGE(t.text("interleaved"));
  CHECK(t.cases >= 100); // closed form: most draws have a textbook order (guards the sampling)
}

TEST_CASE("schedule.textbook.zb_h1") {
  // Textbook: 1F1B with I and W, rank r's W's deferred by r (schedules.md, Zero bubble).
  rng g{0x16'02};
  tally t{};
  for (int i = 0; i < 100; ++i) {
    one_case c = draw(g, 1);
    CAPTURE(where(c));
    measured ours = measure(pipesched::zb_h1_family::generate({c.p, c.m, 0, 0, c.cost}), c.cost);
    measured book = measure(textbook::zb_h1(c.p, c.m), c.cost);
    REQUIRE(ours.ok);
    REQUIRE(book.ok);
    CHECK(ours.span <= book.span + tol(book.span));
    CHECK(ours.peak <= book.peak);
    t.add(ours, book);
  }
  MESSAGE(t.text("zb-h1"));
}

namespace {

/// Where a family is not (yet) never-worse: the span assertion holds on `asserted` cases;
/// outside them the cases where ours is longer are counted (and the first three shown) and
/// the count may not grow past the known gap recorded in docs/01_schedules.md.
struct gap {
  int count = 0;
  std::string examples;
  void add(one_case const& c, measured const& ours, measured const& book) {
    if (ours.span <= book.span + tol(book.span)) return;
    if (++count <= 3)
      examples += "\n  " + where(c) + ": ours " + num(ours.span) + ", textbook " + num(book.span);
  }
};

void check_family(char const* family, std::uint64_t seed, int draws, int p_lo,
                  table (*ours_of)(one_case const&), table (*book_of)(one_case const&),
                  bool (*asserted)(one_case const&), int max_peak_of_p_m, int known_gap) {
  rng g{seed};
  tally t{};
  gap outside{};
  int in_subset = 0;
  for (int i = 0; i < draws; ++i) {
    one_case c = draw(g, p_lo);
    CAPTURE(where(c));
    measured ours = measure(ours_of(c), c.cost);
    measured book = measure(book_of(c), c.cost);
    REQUIRE(ours.ok);
    REQUIRE(book.ok);
    // memory: never above the textbook order's, except ZB-H2 (max_peak_of_p_m = 1: the
    // reference's ZB-H2 envelope min(2p, m) instead)
    if (max_peak_of_p_m) CHECK(ours.peak <= (2 * c.p < c.m ? 2 * c.p : c.m));
    else CHECK(ours.peak <= book.peak);
    if (asserted(c)) {
      ++in_subset;
      CHECK(ours.span <= book.span + tol(book.span));
    } else {
      outside.add(c, ours, book);
    }
    t.add(ours, book);
  }
  std::string const gap_text = in_subset == draws ? std::string(" (every case)")
                                                  : "; known gap: ours longer in " + std::to_string(outside.count) +
                                                        " of the other " + std::to_string(draws - in_subset) +
                                                        outside.examples;
  MESSAGE(t.text(family) << "; span asserted in " << in_subset << gap_text);
  CHECK(in_subset > 0); // the subset is not empty in this sample
  // regression value: the known gap's count in this seeded sample, docs/01_schedules.md
  // ("Never longer than the textbook rule"); lower is fine, higher is a regression
  CHECK(outside.count <= known_gap);
}

} // namespace

TEST_CASE("schedule.textbook.zb_h2") {
  // Textbook: ZB-H2's rule in unit steps, cost-blind (tests/support/textbook.hpp). Ours may
  // hold up to min(2p, m) (reference: "memory 2p−1 to 2p"); the textbook order min(2p−1, m).
  // Never worse asserted on every case, any costs and latency (docs/01_schedules.md): the
  // generator keeps the textbook order, built in the library, among its candidates.
  check_family(
      "zb-h2", 0x16'03, 100, 1,
      [](one_case const& c) { return pipesched::zb_h2_family::generate({c.p, c.m, 0, 0, c.cost}); },
      [](one_case const& c) { return textbook::zb_h2(c.p, c.m); }, [](one_case const&) { return true; }, 1, 0);
}

TEST_CASE("schedule.textbook.zb_v") {
  // Textbook: PyTorch's ZBV order (tests/support/textbook.hpp), memory 2p chunk-activations.
  // Never worse asserted on every case, any costs and latency (docs/01_schedules.md): the
  // generator keeps the textbook order, built in the library, among its candidates.
  check_family(
      "zb-v", 0x16'04, 100, 1,
      [](one_case const& c) { return pipesched::zb_v_family::generate({c.p, c.m, 2, 0, c.cost}); },
      [](one_case const& c) { return textbook::zb_v(c.p, c.m); }, [](one_case const&) { return true; }, 0, 0);
}

TEST_CASE("schedule.textbook.v_half") {
  // Textbook: V-Half's building block (schedules.md, V-shape family), W's into idle slots.
  // Never worse asserted on every case, any costs and latency (docs/01_schedules.md): the
  // generator times the textbook block order among its candidates (before: 9 known longer).
  check_family(
      "v-half", 0x16'05, 100, 1,
      [](one_case const& c) { return pipesched::v_half_family::generate({c.p, c.m, 2, 0, c.cost}); },
      [](one_case const& c) { return textbook::v_block(true, c.p, c.m); }, [](one_case const&) { return true; }, 0,
      0);
}

TEST_CASE("schedule.textbook.v_min") {
  // Textbook: V-Min's building block (schedules.md, V-shape family), W's into idle slots.
  // Never worse asserted on every case, any costs and latency (docs/01_schedules.md), as
  // V-Half (before: 2 known longer).
  check_family(
      "v-min", 0x16'06, 100, 1,
      [](one_case const& c) { return pipesched::v_min_family::generate({c.p, c.m, 2, 0, c.cost}); },
      [](one_case const& c) { return textbook::v_block(false, c.p, c.m); }, [](one_case const&) { return true; }, 0,
      0);
}
