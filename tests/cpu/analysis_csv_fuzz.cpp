// opt: -O1 (a sweep over many run-time tables: 3 to 25 times slower at the tests' usual -O0)
// CSV import under fuzzing: random bytes, token soup and mutated valid CSVs through
// from_csv, then verify / simulate / simulate_lowered / lower / the renderers on what parses.
// Properties: no crash or hang, every refusal carries a diagnostic with a detail, and what
// parses reads back unchanged after export. Deterministic seed.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../support/splitmix.hpp"
#include "pipesched/analysis/csv.hpp"
#include "pipesched/analysis/render.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/pipeline/lower.hpp"
#include "pipesched/schedules/registry.hpp"
#include "pipesched/schedules/skip_paths.hpp"

using namespace pipesched;

namespace {

struct rng {
  std::uint64_t s;
  std::uint64_t next() { return test_support::splitmix64(s); }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }
  bool one_in(std::size_t n) { return below(n) == 0; }
};

const char* const tokens[] = {
    "F",       "B",           "I",           "W",    "SEND_F", "RECV_F", "SEND_B", "RECV_B",     "UNSHARD",
    "RESHARD", "REDUCE_GRAD", "OVERLAP_F_B", "(",    ")",      ";",      ",",      "\n",         "\r\n",
    "\r",      " ",           "\"",          "0",    "1",      "65534",  "65535",  "4294967296", "99999999999999999999",
    "-1",      "\t",          "\x00",        "\xff", "f",      "x"};
const char* const numbers[] = {"0",
                               "1",
                               "2",
                               "3",
                               "7",
                               "00",
                               "65534",
                               "65535",
                               "65536",
                               "4096",
                               "4294967297",
                               "18446744073709551617",
                               "999999999999999999999999999"};

/// Valid CSVs of small tables: every registered family, compute-only and with transfers,
/// plus a V-placement table and PyTorch's text forms.
std::vector<std::string> seeds() {
  std::vector<std::string> out;
  for (auto const& e : schedule_registry)
    for (int p = 1; p <= 4; ++p)
      for (int m = 1; m <= 4; ++m)
        for (int v = 0; v <= 2; ++v) {
          params pr{p, m, v};
          if (e.check(pr)) continue;
          table t = e.generate(pr);
          if (!t.ok()) continue;
          out.push_back(to_csv(t));
          table l = lower(t);
          if (l.ok()) out.push_back(to_csv(l, csv_format::compute_comms));
        }
  for (int p = 1; p <= 3; ++p)
    for (int m = 1; m <= 3; ++m) {
      table t = make_table(p, m, 2, placement::v_shape);
      for (int r = 0; r < p; ++r) {
        int s0 = stage_of(placement::v_shape, p, r, 0), s1 = stage_of(placement::v_shape, p, r, 1);
        for (int j = 0; j < m; ++j) push(t, op::forward, s0, j);
        for (int j = 0; j < m; ++j) push(t, op::forward, s1, j);
        for (int j = 0; j < m; ++j) push(t, op::backward_input, s1, j), push(t, op::backward_weight, s1, j);
        for (int j = 0; j < m; ++j) push(t, op::backward_input, s0, j), push(t, op::backward_weight, s0, j);
      }
      out.push_back(to_csv(t));
      out.push_back(to_csv(lower(t), csv_format::compute_comms));
    }
  out.push_back(" 0F0 ,,\"0F1\", 0B0,\t0B1 ,\r\n,1F0,1B0,1F1,1B1\r\r\n  \n");
  out.push_back("0UNSHARD,0F0,0F1,0B0,0B1,0REDUCE_GRAD,0RESHARD\n1F0,(1F1;1B0)OVERLAP_F_B,1B1");
  return out;
}

/// Cells of a line, as [begin, end) offsets into the text.
std::vector<std::pair<std::size_t, std::size_t>> cells_of(std::string const& s) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t b = 0;
  for (std::size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == ',' || s[i] == '\n') {
      if (i > b) out.push_back({b, i});
      b = i + 1;
    }
  return out;
}

void mutate(std::string& s, rng& g) {
  auto pos = [&](bool end_ok) { return g.below(s.size() + (end_ok ? 1 : 0)); };
  switch (g.below(15)) {
  case 0: // flip a bit
    if (!s.empty()) s[pos(false)] ^= static_cast<char>(1u << g.below(8));
    break;
  case 1: // set a byte
    if (!s.empty()) s[pos(false)] = static_cast<char>(g.below(256));
    break;
  case 2: { // insert a token
    const char* tk = tokens[g.below(sizeof tokens / sizeof *tokens)];
    std::string tok = tk[0] == 0 ? std::string(1, '\0') : std::string(tk);
    s.insert(pos(true), tok);
    break;
  }
  case 3: // delete a range
    if (!s.empty()) {
      std::size_t a = pos(false);
      s.erase(a, 1 + g.below(16));
    }
    break;
  case 4: // truncate
    s.resize(pos(true));
    break;
  case 5: { // duplicate a cell
    auto cs = cells_of(s);
    if (cs.empty()) break;
    auto c = cs[g.below(cs.size())];
    std::string cell = s.substr(c.first, c.second - c.first);
    auto d = cs[g.below(cs.size())];
    s.insert(d.second, "," + cell);
    break;
  }
  case 6: { // swap two cells
    auto cs = cells_of(s);
    if (cs.size() < 2) break;
    auto a = cs[g.below(cs.size())], b = cs[g.below(cs.size())];
    if (a.first > b.first) std::swap(a, b);
    if (a.first == b.first) break;
    std::string ca = s.substr(a.first, a.second - a.first), cb = s.substr(b.first, b.second - b.first);
    s.replace(b.first, b.second - b.first, ca);
    s.replace(a.first, a.second - a.first, cb);
    break;
  }
  case 7: { // replace a number by a boundary or huge one
    std::vector<std::size_t> starts;
    for (std::size_t i = 0; i < s.size(); ++i)
      if (s[i] >= '0' && s[i] <= '9' && (i == 0 || s[i - 1] < '0' || s[i - 1] > '9')) starts.push_back(i);
    if (starts.empty()) break;
    std::size_t a = starts[g.below(starts.size())], b = a;
    while (b < s.size() && s[b] >= '0' && s[b] <= '9') ++b;
    s.replace(a, b - a, numbers[g.below(sizeof numbers / sizeof *numbers)]);
    break;
  }
  case 8: { // shift a number by one
    std::vector<std::size_t> digits;
    for (std::size_t i = 0; i < s.size(); ++i)
      if (s[i] >= '0' && s[i] <= '9') digits.push_back(i);
    if (digits.empty()) break;
    char& c = s[digits[g.below(digits.size())]];
    c = static_cast<char>(c == '9' ? '0' : c + 1);
    break;
  }
  case 9: { // duplicate a line
    std::size_t a = s.rfind('\n', pos(false));
    a = a == std::string::npos ? 0 : a + 1;
    std::size_t b = s.find('\n', a);
    b = b == std::string::npos ? s.size() : b;
    s.insert(b, "\n" + s.substr(a, b - a));
    break;
  }
  case 10: { // delete a line
    std::size_t a = s.rfind('\n', pos(false));
    a = a == std::string::npos ? 0 : a + 1;
    std::size_t b = s.find('\n', a);
    s.erase(a, b == std::string::npos ? std::string::npos : b - a + 1);
    break;
  }
  case 11: { // binary garbage
    std::string junk;
    for (std::size_t k = 1 + g.below(32); k > 0; --k) junk += static_cast<char>(g.below(256));
    s.insert(pos(true), junk);
    break;
  }
  case 12: { // a very long line (rarely: it is the slow case)
    if (!g.one_in(64)) break;
    auto cs = cells_of(s);
    std::string cell = cs.empty() ? "0F0" : s.substr(cs[0].first, cs[0].second - cs[0].first);
    std::string line;
    for (std::size_t k = 500 + g.below(4000); k > 0; --k) line += cell + ",";
    s.insert(pos(true), line);
    break;
  }
  case 13: // swap two lines' ends: move the text after a newline to the front
    if (auto nl = s.find('\n', pos(false)); nl != std::string::npos) s = s.substr(nl + 1) + "\n" + s.substr(0, nl);
    break;
  default: // change a pass letter
    for (std::size_t k = 0; k < 4 && !s.empty(); ++k) {
      std::size_t i = pos(false);
      if (s[i] == 'F' || s[i] == 'B' || s[i] == 'I' || s[i] == 'W') {
        s[i] = "FBIW"[g.below(4)];
        break;
      }
    }
  }
}

std::string random_bytes(rng& g) {
  std::string s;
  for (std::size_t n = g.below(200); n > 0; --n) s += static_cast<char>(g.below(256));
  return s;
}

std::string token_soup(rng& g) {
  std::string s;
  for (std::size_t rows = 1 + g.below(5); rows > 0; --rows) {
    for (std::size_t n = g.below(12); n > 0; --n) {
      s += std::to_string(g.below(6));
      s += tokens[g.below(12)];
      if (!g.one_in(8)) s += std::to_string(g.below(5));
      s += g.one_in(10) ? ", " : ",";
    }
    s += g.one_in(4) ? "\r\n" : "\n";
  }
  return s;
}

/// A table with routes as text: its CSV, its routes, its rank count.
struct routed_seed {
  std::string csv, routes;
  int ranks;
};

/// Valid CSVs of small tables with routes: DualPipe (registry entries with paths) and skip
/// paths (both layouts, a cap, swaps), compute-only and with transfers.
std::vector<routed_seed> routed_seeds() {
  std::vector<routed_seed> out;
  auto add = [&](table const& t) {
    if (!t.ok()) return;
    out.push_back({to_csv(t), to_routes(t), t.ranks});
    table l = lower(t);
    if (l.ok()) out.push_back({to_csv(l, csv_format::compute_comms), to_routes(t), t.ranks});
  };
  for (auto const& e : schedule_registry)
    for (int p = 2; p <= 4; p += 2)
      for (int m = 2; m <= 6; m += 2) {
        params pr{p, m, 0};
        if (e.check(pr)) continue;
        table t = e.generate(pr);
        if (t.ok() && !t.paths.empty()) add(t);
      }
  for (int S : {3, 4, 5})
    for (int K = 2; K <= S; ++K)
      for (path_layout lay : {path_layout::last, path_layout::round_trip}) {
        skip_config c{};
        c.stages = S;
        c.keep = K;
        c.microbatches = 4;
        c.memory = 2;
        c.layout = lay;
        add(make_skip(c));
      }
  skip_config c{};
  c.stages = 5;
  c.keep = 4;
  c.microbatches = 3;
  add(skip_table(c, vec<vec<int>>{{0, 2, 1, 4}, {0, 3, 2, 4}, {0, 1, 3, 4}}));
  return out;
}

} // namespace

TEST_CASE("csv.fuzz.routes") {
  // the same properties with routes: mutated CSVs and mutated route texts of DualPipe and skip
  // tables, read ascending or with the (mutated) routes given, with and without the rank count
  std::vector<routed_seed> const base = routed_seeds();
  REQUIRE(base.size() > 20);
  rng g{0x0a7e'5eed'c5f0'1234ull};
  std::size_t const inputs = 40000;
  std::size_t rejected = 0, accepted = 0, verified = 0, failures = 0;
  for (std::size_t n = 0; n < inputs; ++n) {
    routed_seed sd = base[g.below(base.size())];
    if (!g.one_in(4))
      for (std::size_t k = 1 + g.below(3); k > 0; --k) mutate(sd.csv, g);
    if (g.one_in(2))
      for (std::size_t k = 1 + g.below(2); k > 0; --k) mutate(sd.routes, g);
    csv_read_options opt{};
    opt.routes = g.one_in(3) ? csv_routes::ascending : csv_routes::given;
    opt.route_text = sd.routes;
    opt.ranks = g.one_in(4) ? 0 : (g.one_in(8) ? static_cast<int>(g.below(8)) : sd.ranks);
    table t = from_csv(sd.csv, opt);
    if (!t.ok()) {
      ++rejected;
      if (t.error.code == errc::ok || t.error.detail == nullptr) {
        if (++failures <= 5) FAIL_CHECK("a refusal without a diagnostic for input " << n << ": " << sd.csv << "\nroutes:\n" << sd.routes);
      }
      continue;
    }
    ++accepted;
    // what parses reads back unchanged, its routes given as text
    std::string const routes = to_routes(t);
    table u = from_csv(to_csv(t, csv_format::compute_comms),
                       {.routes = csv_routes::given, .route_text = routes, .ranks = t.ranks});
    if (!u.ok() || u.lists != t.lists || u.stage_rank != t.stage_rank || u.lowered != t.lowered ||
        to_routes(u) != routes) {
      if (++failures <= 5) FAIL_CHECK("export then import changed input " << n << ": " << sd.csv << "\nroutes:\n" << sd.routes);
    }
    diagnostic d = verify(t);
    simulation sim = simulate(t);
    if (t.lowered && d.ok() && !simulate_lowered(t).ok()) {
      if (++failures <= 5) FAIL_CHECK("verified but simulate_lowered failed\n" << sd.csv);
    }
    if (!d.ok()) continue;
    ++verified;
    if (!sim.ok()) {
      if (++failures <= 5) FAIL_CHECK("verified but simulate failed: " << to_string(sim.error) << "\n" << sd.csv);
      continue;
    }
    if (!t.lowered && !verify(lower(t)).ok()) {
      if (++failures <= 5) FAIL_CHECK("its lowering does not verify\n" << sd.csv);
    }
  }
  MESSAGE("inputs " << inputs << ": refused " << rejected << ", parsed " << accepted << ", verified " << verified);
  CHECK(failures == 0);
  CHECK(accepted > inputs / 20);
  CHECK(verified > inputs / 100);
}

TEST_CASE("csv.fuzz.import_verify_simulate") {
  std::vector<std::string> const base = seeds();
  REQUIRE(base.size() > 100);
  rng g{0x5eed'c5f0'0d15'ea5eull};
  std::size_t const inputs = 200000;
  std::size_t rejected = 0, accepted = 0, verified = 0, lowered = 0, failures = 0;
  cost_model const costs[] = {{1, 1, 1, 0}, {1, 2, 1, 0.5}, {0.5, 0, 0.25, 0}, {0, 1, 0, 1}};
  for (std::size_t n = 0; n < inputs; ++n) {
    std::string s;
    std::size_t kind = g.below(10);
    if (kind == 0) s = random_bytes(g);
    else if (kind == 1) s = token_soup(g);
    else {
      s = base[g.below(base.size())];
      for (std::size_t k = g.one_in(2) ? 1 : 2 + g.below(3); k > 0; --k) mutate(s, g);
    }
    table t = from_csv(s);
    if (!t.ok()) {
      ++rejected;
      if (t.error.code == errc::ok || t.error.detail == nullptr) {
        if (++failures <= 5) FAIL_CHECK("a refusal without a diagnostic for input " << n << ": " << s);
      }
      continue;
    }
    ++accepted;
    // what parses reads back unchanged
    table u = from_csv(to_csv(t, csv_format::compute_comms));
    if (!u.ok() || u.lists != t.lists || u.stage_rank != t.stage_rank || u.lowered != t.lowered) {
      if (++failures <= 5) FAIL_CHECK("export then import changed input " << n << ": " << s);
    }
    sim_costs const c{costs[g.below(4)]};
    diagnostic d = verify(t);
    simulation sim = simulate(t, c);
    if (t.lowered) {
      ++lowered;
      simulation sl = simulate_lowered(t, c);
      // a lowered table that verifies runs under the two-stream model too
      if (d.ok() && !sl.ok()) {
        if (++failures <= 5) FAIL_CHECK("verified but simulate_lowered failed: " << to_string(sl.error) << "\n" << s);
      }
    }
    if (!d.ok()) continue;
    ++verified;
    if (!sim.ok()) {
      if (++failures <= 5) FAIL_CHECK("verified but simulate failed: " << to_string(sim.error) << "\n" << s);
      continue;
    }
    if (!t.lowered) {
      table l = lower(t, c);
      diagnostic dl = verify(l);
      if (!dl.ok()) {
        if (++failures <= 5) FAIL_CHECK("its lowering does not verify: " << to_string(dl) << "\n" << s);
      }
    }
    if (n % 16 == 0) {
      std::string a = render_text(t, sim, {});
      std::string b = render_chrome_trace(t, sim);
      std::string e = render_svg(t, sim);
      if (a.empty() || b.empty() || e.empty()) {
        if (++failures <= 5) FAIL_CHECK("empty picture for input " << n);
      }
    }
  }
  MESSAGE("inputs " << inputs << ": refused " << rejected << ", parsed " << accepted << " (lowered " << lowered
                    << "), verified " << verified);
  CHECK(failures == 0);
  CHECK(rejected + accepted == inputs);
  CHECK(accepted > inputs / 20);
  CHECK(verified > inputs / 100);
}
