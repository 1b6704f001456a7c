// Renderers: the text grid puts each pass at its simulated time, the Chrome trace is valid
// JSON with the documented fields and scale, the SVG is well-formed XML with a box per pass.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipesched/analysis/json.hpp"
#include "pipesched/analysis/render.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/pipeline/lower.hpp"
#include "pipesched/schedules/registry.hpp"
#include "support/tables.hpp"

using namespace pipesched;
using pipesched::testing::looped_table;
using pipesched::testing::v_table;

namespace {

// ---- JSON: nlohmann-json's parser (strict RFC 8259: it throws on anything else) ---------

using json = nlohmann::json;

/// Parses `text` into `out`; false (and a message) when it is not valid JSON.
bool parse_json(std::string_view text, json& out) {
  try {
    out = json::parse(text);
    return true;
  } catch (json::parse_error const& e) {
    MESSAGE("invalid JSON: " << e.what());
    return false;
  }
}

// ---- an XML well-formedness check (elements, attributes, entities) -------------------------
struct xml_summary {
  bool ok = false;
  std::string root;
  std::map<std::string, int> count; ///< elements by name
  std::vector<std::string> texts;   ///< character data, entities decoded
};

xml_summary check_xml(std::string_view s) {
  xml_summary out;
  std::vector<std::string> stack;
  std::size_t i = 0;
  auto name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.';
  };
  auto entity = [&](std::size_t& k, std::string& dst) {
    static const std::pair<std::string_view, char> known[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (auto const& [e, c] : known)
      if (s.substr(k, e.size()) == e) {
        dst += c;
        k += e.size();
        return true;
      }
    return false;
  };
  if (s.substr(0, 5) == "<?xml") {
    i = s.find("?>");
    if (i == std::string_view::npos) return out;
    i += 2;
  }
  bool seen_root = false;
  while (i < s.size()) {
    if (s[i] != '<') {
      std::string text;
      while (i < s.size() && s[i] != '<') {
        if (s[i] == '&') {
          if (!entity(i, text)) return out;
        } else if (s[i] == '>') {
          return out;
        } else {
          text += s[i++];
        }
      }
      bool blank = text.find_first_not_of(" \t\r\n") == std::string::npos;
      if (!blank && stack.empty()) return out; // text outside the root
      if (!blank) out.texts.push_back(text);
      continue;
    }
    if (s.substr(i, 2) == "</") {
      std::size_t b = i + 2, e = b;
      while (e < s.size() && name_char(s[e])) ++e;
      if (e >= s.size() || s[e] != '>' || stack.empty() || stack.back() != s.substr(b, e - b)) return out;
      stack.pop_back();
      i = e + 1;
      continue;
    }
    std::size_t b = i + 1, e = b;
    while (e < s.size() && name_char(s[e])) ++e;
    if (e == b) return out;
    std::string name(s.substr(b, e - b));
    if (stack.empty()) {
      if (seen_root) return out; // a second root
      seen_root = true;
      out.root = name;
    }
    ++out.count[name];
    i = e;
    std::vector<std::string> attrs;
    while (true) {
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      if (i >= s.size()) return out;
      if (s.substr(i, 2) == "/>") {
        i += 2;
        break;
      }
      if (s[i] == '>') {
        ++i;
        stack.push_back(name);
        break;
      }
      std::size_t ab = i;
      while (i < s.size() && name_char(s[i])) ++i;
      if (i == ab || i >= s.size() || s[i] != '=') return out;
      std::string an(s.substr(ab, i - ab));
      for (auto const& a : attrs)
        if (a == an) return out; // repeated attribute
      attrs.push_back(an);
      ++i;
      if (i >= s.size() || s[i] != '"') return out;
      ++i;
      std::string val;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '<') return out;
        if (s[i] == '&') {
          if (!entity(i, val)) return out;
        } else {
          ++i;
        }
      }
      if (i >= s.size()) return out;
      ++i;
    }
  }
  out.ok = seen_root && stack.empty();
  return out;
}

// ---- tables -------------------------------------------------------------------------------

std::vector<std::string> lines_of(std::string const& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::size_t count_of(std::string const& s, std::string_view what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

/// Occurrences of a cell label: followed by a blank or a line end, not by another digit.
std::size_t count_label(std::string const& s, std::string const& label) {
  std::size_t n = 0;
  for (std::size_t at = s.find(label); at != std::string::npos; at = s.find(label, at + 1)) {
    char next = at + label.size() < s.size() ? s[at + label.size()] : '\n';
    n += (next == ' ' || next == '\n') ? 1 : 0;
  }
  return n;
}

/// The row of rank r in a one-band grid.
std::string rank_row(std::vector<std::string> const& lines, int r) {
  std::string prefix = "rank " + std::to_string(r) + " ";
  for (auto const& l : lines)
    if (l.rfind(prefix, 0) == 0) return l;
  return {};
}

} // namespace

TEST_CASE("render.text.one_f_one_b.p4.m8") {
  table t = make_schedule("1f1b", {4, 8}, false);
  simulation sim = simulate(t, sim_costs{cost_model{1, 1, 1, 0}});
  REQUIRE(sim.ok());
  std::string out = render_text(t, sim);
  auto lines = lines_of(out);
  // reference: makespan 33 for F = B = W = 1
  CHECK(lines[0].find("makespan 33") != std::string::npos);
  CHECK(lines[0].find("one cell = 1 time unit") != std::string::npos);
  CHECK(out.find("\x1b[") == std::string::npos);
  // the label width is 2 ("F7") plus a gap: the pass at time x starts at column lw + 3x
  std::size_t const lw = std::string("rank 3 ").size();
  for (int r = 0; r < 4; ++r) {
    std::string row = rank_row(lines, r);
    REQUIRE(!row.empty());
    for (std::size_t i = 0; i < t.lists[static_cast<std::size_t>(r)].size(); ++i) {
      action const& a = t.lists[static_cast<std::size_t>(r)][i];
      std::size_t col = lw + 3 * static_cast<std::size_t>(sim.times[static_cast<std::size_t>(r)][i].start);
      std::string label = std::string(1, a.kind == op::forward ? 'F' : 'B') + std::to_string(a.mb);
      CHECK(row.substr(col, label.size()) == label);
      if (a.kind == op::backward) CHECK(row.substr(col + 3, 3) == "---"); // B lasts two cells
    }
  }
  // rank r starts at time r (reference: the forward wave), idle before it
  CHECK(rank_row(lines, 3).substr(lw, 12) == ".  .  .  F0 ");
  CHECK(out.find("legend: F forward, B backward") != std::string::npos);
  CHECK(out.find(". idle") != std::string::npos);
}

TEST_CASE("render.text.readable.one_f_one_b.p8.m24") {
  table t = make_schedule("1f1b", {8, 24}, false);
  simulation sim = simulate(t, sim_costs{cost_model{1, 1, 1, 0}});
  text_options opt;
  opt.width = 120;
  std::string out = render_text(t, sim, opt);
  auto lines = lines_of(out);
  for (auto const& l : lines) CHECK(l.size() <= 120);
  // (m + p - 1) * 3 = 93 cells of 4 characters wrap into 4 bands of 8 rank rows
  CHECK(count_of(out, "rank 7 ") == 4);
  CHECK(count_of(out, "\ntime ") == 4);
  // each rank shows every micro-batch's F and B exactly once
  for (int j = 0; j < 24; ++j) {
    CHECK(count_label(out, "F" + std::to_string(j)) == 8);
    CHECK(count_label(out, "B" + std::to_string(j)) == 8);
  }
}

TEST_CASE("render.text.color") {
  table t = make_schedule("1f1b", {2, 2}, false);
  simulation sim = simulate(t);
  text_options opt;
  opt.color = true;
  std::string out = render_text(t, sim, opt);
  CHECK(out.find("\x1b[97;44m") != std::string::npos); // F: white on blue
  CHECK(out.find("\x1b[30;42m") != std::string::npos); // B: black on green
  // every colour is reset
  CHECK(count_of(out, "\x1b[0m") == count_of(out, "\x1b[") - count_of(out, "\x1b[0m"));
}

TEST_CASE("render.text.chunks_and_fractional_costs") {
  table t = looped_table(2, 2, 2);
  simulation sim = simulate(t, sim_costs{cost_model{0.5, 0.25, 0.5, 0}});
  std::string out = render_text(t, sim);
  // F 0.5, fused B 0.75: a cell is 0.25
  CHECK(out.find("one cell = 0.25 time units") != std::string::npos);
  CHECK(out.find("f0") != std::string::npos); // chunk 1 in lower case
  CHECK(out.find("b1") != std::string::npos);
  CHECK(out.find("lower case: chunk 1") != std::string::npos);
  table t4 = looped_table(2, 2, 4);
  std::string out4 = render_text(t4, simulate(t4));
  CHECK(out4.find("F0:2") != std::string::npos);
  CHECK(out4.find("b1:3") != std::string::npos);
}

TEST_CASE("render.text.split_backward_and_latency") {
  table t = make_table(2, 1, 1, placement::loop);
  t.split_backward = true;
  push(t, op::forward, 0, 0);
  push(t, op::backward_input, 0, 0);
  push(t, op::backward_weight, 0, 0);
  push(t, op::forward, 1, 0);
  push(t, op::backward_input, 1, 0);
  push(t, op::backward_weight, 1, 0);
  simulation sim = simulate(t, sim_costs{cost_model{1, 1, 1, 0.5}});
  std::string out = render_text(t, sim);
  CHECK(out.find("one cell = 0.5 time units") != std::string::npos);
  CHECK(out.find("I input-gradient backward") != std::string::npos);
  CHECK(out.find("W weight-gradient backward") != std::string::npos);
  // rank 1's F starts at 1 + 0.5 = cell 3
  auto lines = lines_of(out);
  CHECK(rank_row(lines, 1).substr(7, 12) == ".  .  .  F0 ");
}

TEST_CASE("render.refuses_a_foreign_simulation") {
  table t = make_schedule("1f1b", {2, 2}, false);
  simulation other = simulate(make_schedule("1f1b", {3, 2}, false));
  CHECK(render_text(t, other).find("cannot draw") != std::string::npos);
  json j;
  REQUIRE(parse_json(render_chrome_trace(t, other), j));
  CHECK(j.at("traceEvents").empty());
  CHECK(j.at("otherData").contains("error"));
  CHECK(check_xml(render_svg(t, other)).ok);
  CHECK(render_text(failed({errc::zero_ranks}), simulation{}).find("cannot draw") != std::string::npos);
}

TEST_CASE("render.chrome.json_and_scale") {
  table t = looped_table(3, 4, 2);
  simulation sim = simulate(t, sim_costs{cost_model{1, 0.5, 0.25, 0}});
  chrome_options opt;
  opt.process_name = "a \"quoted\"\\name\n";
  std::string text = render_chrome_trace(t, sim, opt);
  json j;
  REQUIRE(parse_json(text, j));
  REQUIRE(j.is_object());
  REQUIRE(j.contains("traceEvents"));
  json const& events = j.at("traceEvents");
  CHECK(j.at("otherData").at("us_per_unit") == 1000);
  int complete = 0, names = 0;
  bool process = false;
  for (json const& e : events) {
    std::string const ph = e.at("ph");
    if (ph == "M") {
      if (e.at("name") == "thread_name") {
        ++names;
        CHECK(e.at("args").at("name") == "rank " + std::to_string(e.at("tid").get<int>()));
      }
      if (e.at("name") == "process_name") process = e.at("args").at("name") == "a \"quoted\"\\name\n";
      continue;
    }
    REQUIRE(ph == "X");
    ++complete;
    json const& args = e.at("args");
    auto r = args.at("rank").get<std::size_t>();
    auto i = args.at("position").get<std::size_t>();
    REQUIRE(r < t.lists.size());
    REQUIRE(i < t.lists[r].size());
    action const& a = t.lists[r][i];
    CHECK(e.at("tid") == r);
    CHECK(e.at("pid") == 0);
    CHECK(e.at("ts").get<double>() == doctest::Approx(sim.times[r][i].start * 1000));
    CHECK(e.at("dur").get<double>() == doctest::Approx((sim.times[r][i].end - sim.times[r][i].start) * 1000));
    CHECK(args.at("stage") == a.stage);
    CHECK(args.at("microbatch") == a.mb);
    CHECK(args.at("chunk") == a.chunk);
    CHECK(args.at("pass") == op_name(a.kind));
    CHECK(e.at("name") == format_action(a));
    CHECK(e.at("cat") == (a.kind == op::forward ? "forward" : "backward"));
  }
  CHECK(process);
  CHECK(names == 3);
  CHECK(static_cast<std::size_t>(complete) == t.total_actions());
  // another scale
  opt.us_per_unit = 1;
  REQUIRE(parse_json(render_chrome_trace(t, sim, opt), j));
  double last_end = 0;
  for (json const& e : j.at("traceEvents"))
    if (e.at("ph") == "X") last_end = std::max(last_end, e.at("ts").get<double>() + e.at("dur").get<double>());
  CHECK(last_end == doctest::Approx(sim.makespan));
}

TEST_CASE("render.chrome.transfers.one_f_one_b.p4.m8") {
  table t = make_schedule("1f1b", {4, 8}, false);
  sim_costs const c{cost_model{1, 1, 1, 0.5}};
  table l = lower(t, c);
  REQUIRE(l.ok());
  // with simulate(), transfers take no time and are left out
  json j;
  REQUIRE(parse_json(render_chrome_trace(l, simulate(l, c)), j));
  for (json const& e : j.at("traceEvents")) CHECK(e.at("tid").get<int>() < 4);
  // with simulate_lowered(), each rank gets a comm track with its transfers and flow arrows
  simulation sl = simulate_lowered(l, c);
  REQUIRE(sl.ok());
  REQUIRE(parse_json(render_chrome_trace(l, sl), j));
  std::size_t sends = 0, recvs = 0, starts = 0, finishes = 0, comm_names = 0;
  for (auto const& list : l.lists)
    for (action const& a : list) sends += is_send(a.kind) ? 1 : 0;
  for (json const& e : j.at("traceEvents")) {
    std::string const ph = e.at("ph");
    if (ph == "M" && e.at("name") == "thread_name" && e.at("tid").get<int>() >= 4) {
      ++comm_names;
      CHECK(e.at("args").at("name") == "rank " + std::to_string(e.at("tid").get<int>() - 4) + " comm");
    }
    if (ph == "s") ++starts;
    if (ph == "f") ++finishes;
    if (ph != "X") continue;
    std::string const pass = e.at("args").at("pass");
    if (pass.rfind("SEND", 0) == 0 || pass.rfind("RECV", 0) == 0) {
      CHECK(e.at("tid").get<int>() >= 4);
      CHECK(e.at("dur").get<double>() == doctest::Approx(500)); // latency 0.5 units = 500 us
      recvs += pass.rfind("RECV", 0) == 0 ? 1 : 0;
    }
  }
  CHECK(comm_names == 4);
  CHECK(sends == 2u * 8u * 3u); // each micro-batch crosses 3 boundaries both ways
  CHECK(recvs == sends);
  CHECK(starts == sends);
  CHECK(finishes == sends);
}

TEST_CASE("render.svg.well_formed") {
  table t = looped_table(3, 4, 2);
  simulation sim = simulate(t, sim_costs{cost_model{1, 2, 1, 0}});
  svg_options opt;
  opt.title = "looped <BFS> & \"friends\"";
  std::string svg = render_svg(t, sim, opt);
  xml_summary x = check_xml(svg);
  REQUIRE(x.ok);
  CHECK(x.root == "svg");
  CHECK(svg.find("xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
  CHECK(svg.find("<script") == std::string::npos);
  CHECK(svg.find("href") == std::string::npos);
  // title escaped, then decoded back
  int titles = 0;
  for (auto const& s : x.texts) titles += s == opt.title ? 1 : 0;
  CHECK(titles == 2); // <title> and the heading
  // one tooltip per pass plus the picture's, a number in each box, rank labels, axis labels
  CHECK(static_cast<std::size_t>(x.count["title"]) == t.total_actions() + 1);
  for (int r = 0; r < 3; ++r)
    CHECK(std::find(x.texts.begin(), x.texts.end(), "rank " + std::to_string(r)) != x.texts.end());
  CHECK(std::find(x.texts.begin(), x.texts.end(), "time (cost units)") != x.texts.end());
  CHECK(std::find(x.texts.begin(), x.texts.end(), "0") != x.texts.end());
  // legend: F and B, each in both chunk shades
  for (const char* s : {"F forward", "F forward, chunk 1", "B backward", "B backward, chunk 1"})
    CHECK(std::find(x.texts.begin(), x.texts.end(), s) != x.texts.end());
  CHECK(svg.find("#3b6fb6") != std::string::npos);
  CHECK(svg.find("#9cc3ee") != std::string::npos);
}

TEST_CASE("render.svg.transfers_and_split") {
  table t = make_schedule("1f1b", {4, 8}, false);
  sim_costs const c{cost_model{1, 1, 1, 0.5}};
  table l = lower(t, c);
  simulation sl = simulate_lowered(l, c);
  REQUIRE(sl.ok());
  std::string svg = render_svg(l, sl);
  xml_summary x = check_xml(svg);
  REQUIRE(x.ok);
  CHECK(std::find(x.texts.begin(), x.texts.end(), "send") != x.texts.end());
  CHECK(std::find(x.texts.begin(), x.texts.end(), "receive") != x.texts.end());
  CHECK(static_cast<std::size_t>(x.count["title"]) == l.total_actions() + 1);
  CHECK(svg.find("makespan 41") != std::string::npos); // reference: 1F1B p=4 m=8, c = 0.5
}

TEST_CASE("render.every_registered_family") {
  for (auto const& e : schedule_registry)
    for (int p : {1, 4})
      for (int m : {1, 5}) {
        params pr{p, m};
        if (e.check(pr)) continue;
        table t = e.generate(pr);
        simulation sim = simulate(t, sim_costs{pr.cost});
        INFO(e.name << " p" << p << " m" << m);
        REQUIRE(sim.ok());
        CHECK(render_text(t, sim).find("rank " + std::to_string(p - 1)) != std::string::npos);
        json j;
        CHECK(parse_json(render_chrome_trace(t, sim), j));
        CHECK(check_xml(render_svg(t, sim)).ok);
      }
}

TEST_CASE("json.numbers_and_strings") {
  // JSON has no NaN or infinity: they are written null; finite values round-trip through
  // a strict parser with 10 significant digits.
  CHECK(json_number(std::nan("")) == "null");
  CHECK(json_number(HUGE_VAL) == "null");
  CHECK(json_number(-HUGE_VAL) == "null");
  CHECK(json_number(0.0) == "0");
  CHECK(json_number(-0.0) == "0");
  CHECK(json_number(103) == "103");
  CHECK(json_number(27.5) == "27.5");
  CHECK(json_number(1.0 / 3.0) == "0.3333333333");
  CHECK(json_number(1e300) == "1e+300");
  std::string const doc = "[" + json_number(std::nan("")) + "," + json_number(2.25) + "," +
                          json_string("a \"b\"\\ \n\t\x01 é") + "]";
  json j;
  REQUIRE(parse_json(doc, j));
  CHECK(j[0].is_null());
  CHECK(j[1] == 2.25);
  CHECK(j[2] == "a \"b\"\\ \n\t\x01 é");
}
