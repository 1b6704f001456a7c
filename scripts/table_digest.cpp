// Digest of generated tables, for checking that a change to the generators, lowering or
// verification leaves every table as it was: build it against the headers of two commits
// and compare the lines (scripts/table-digest does both). Each line: cases and one FNV-1a
// hash over what the tables hold.
//   small: every registry family at p <= 6, m <= 10, v in {0, 1, 2}, extra slots 0 and 1,
//          compute and lowered; skip tables at S <= 7, every K, m <= 6, caps 0..2, both
//          layouts, both methods, order search on and off, lowered with 0 and 1 extra
//          slots: lists, slots, verify/verify_structure/verify_flow/verify_slots verdicts,
//          simulated times.
//   large: skip tables at S = 3..12, three K per S, m in {8, 16, 32}, caps 0, 2, K/2 and K,
//          both layouts, unit, per-stage and per-link costs, order search on (S <= 8,
//          m <= 16) and off: paths, lists, verdicts, makespans.
#include <cstdint>
#include <cstdio>

#include "pipesched/pipeline/lower.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/registry.hpp"
#include "pipesched/schedules/skip_paths.hpp"

using namespace pipesched;

namespace {

std::uint64_t h = 1469598103934665603ull;
void mix(const void* p, std::size_t n) {
  auto c = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= c[i];
    h *= 1099511628211ull;
  }
}
void mixi(long v) { mix(&v, sizeof v); }
void mixd(double v) { mix(&v, sizeof v); }

void digest_full(table const& t) {
  mixi(static_cast<long>(t.error.code));
  mixi(t.error.rank);
  mixi(t.error.position);
  if (!t.ok()) return;
  for (auto const& l : t.lists) {
    mixi(static_cast<long>(l.size()));
    for (action const& a : l) {
      mixi(static_cast<long>(a.kind));
      mixi(a.chunk);
      mixi(a.stage);
      mixi(a.mb);
      mixi(a.peer);
      mixi(a.in);
      mixi(a.out);
      mixi(a.aux);
      mixi(a.flags);
    }
  }
  for (int c : t.slot_count) mixi(c);
  diagnostic const d = verify(t);
  mixi(static_cast<long>(d.code));
  mixi(d.rank);
  mixi(d.position);
  mixi(d.stage);
  mixi(d.mb);
  mixi(static_cast<long>(verify_structure(t).code));
  mixi(static_cast<long>(verify_flow(t).code));
  if (t.lowered) mixi(static_cast<long>(verify_slots(t).code));
  simulation const s = t.lowered ? simulate_lowered(t) : simulate(t);
  mixi(static_cast<long>(s.error.code));
  if (!s.ok()) return;
  mixd(s.makespan);
  for (auto const& r : s.times)
    for (auto const& x : r) {
      mixd(x.start);
      mixd(x.end);
    }
}

void digest_skip(table const& t) {
  mixi(static_cast<long>(t.error.code));
  if (!t.ok()) return;
  for (auto const& p : t.paths)
    for (int s : p) mixi(s);
  for (auto const& l : t.lists) {
    mixi(static_cast<long>(l.size()));
    for (action const& a : l) {
      mixi(static_cast<long>(a.kind));
      mixi(a.stage);
      mixi(a.mb);
      mixi(a.peer);
      mixi(a.in);
      mixi(a.out);
    }
  }
  mixi(verify(t).code == errc::ok);
  simulation const s = simulate(t);
  mixi(static_cast<long>(s.error.code));
  if (s.ok()) mixd(s.makespan);
}

} // namespace

int main() {
  long n = 0;
  for (auto const& e : schedule_registry)
    for (int p = 1; p <= 6; ++p)
      for (int m = 1; m <= 10; ++m)
        for (int v = 0; v <= 2; ++v)
          for (int x = 0; x <= 1; ++x) {
            params pr{};
            pr.p = p;
            pr.m = m;
            pr.v = v;
            pr.extra_slots = x;
            pr.cost = cost_model{1, 2, 1, 0};
            digest_full(make_schedule(e.name, pr, false));
            digest_full(make_schedule(e.name, pr, true));
            ++n;
          }
  for (int S = 2; S <= 7; ++S)
    for (int K = 1; K <= S; ++K)
      for (int m = 1; m <= 6; ++m)
        for (int M = 0; M <= 2; ++M)
          for (auto l : {path_layout::last, path_layout::round_trip})
            for (auto meth : {path_method::cost_aware, path_method::rotation})
              for (int o = 0; o <= 1; ++o) {
                skip_config cfg{};
                cfg.stages = S;
                cfg.keep = K;
                cfg.microbatches = m;
                cfg.memory = M;
                cfg.layout = l;
                cfg.method = meth;
                cfg.costs = sim_costs{cost_model{1, 2, 1, 0}};
                cfg.order_search_rounds = o;
                table const t = make_skip(cfg);
                digest_full(t);
                for (int x = 0; x <= 1; ++x) digest_full(lower(t, skip_sim_costs(cfg), x));
                ++n;
              }
  std::printf("small %ld cases digest %016llx\n", n, static_cast<unsigned long long>(h));
  h = 1469598103934665603ull;
  n = 0;
  long ok = 0;
  for (int S = 3; S <= 12; ++S)
    for (int K : {S / 2 + 1, (3 * S) / 4, S})
      for (int m : {8, 16, 32})
        for (int cap : {0, 2, K / 2, K})
          for (auto l : {path_layout::last, path_layout::round_trip})
            for (int costs = 0; costs < 3; ++costs)
              for (int o : {0, 1}) {
                if (K < 2 || K > S) continue;
                if (o && (S > 8 || m > 16)) continue;
                skip_config cfg{};
                cfg.stages = S;
                cfg.keep = K;
                cfg.microbatches = m;
                cfg.memory = cap;
                cfg.layout = l;
                cfg.costs = sim_costs{cost_model{1, 2, 1, 0}};
                if (costs >= 1)
                  for (int s = 0; s < S; ++s)
                    cfg.costs.per_stage.push_back(
                        cost_model{1.0 + 0.37 * (s % 3), 1.5 + 0.25 * (s % 4), 0.5 + 0.1 * s, 0});
                if (costs == 2) {
                  cfg.costs.latency.assign(static_cast<std::size_t>(S * S), 0.0);
                  for (int a = 0; a < S; ++a)
                    for (int b = 0; b < S; ++b)
                      cfg.costs.latency[static_cast<std::size_t>(a * S + b)] = 0.05 * ((a + 2 * b) % 5);
                }
                cfg.order_search_rounds = o;
                table const t = make_skip(cfg);
                digest_skip(t);
                ++n;
                ok += t.ok();
                if (t.ok() && n % 7 == 0) digest_skip(lower(t, skip_sim_costs(cfg), 0));
              }
  std::printf("large %ld cases (%ld generated) digest %016llx\n", n, ok, static_cast<unsigned long long>(h));
}
