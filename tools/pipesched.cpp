// pipesched: the command-line tool — show, compare, export and import schedules.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include "pipesched/analysis/csv.hpp"
#include "pipesched/analysis/json.hpp"
#include "pipesched/analysis/render.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/registry.hpp"
#include "pipesched/schedules/skip_paths.hpp"

namespace {

using namespace pipesched;

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr const char* main_help = R"(pipesched: pipeline-parallel schedules — generate, check, simulate, draw, export.

usage: pipesched <command> [options]

commands:
  list       the schedule names
  show       one schedule's per-rank order and its metrics
  compare    every schedule side by side for one (p, m, costs)
  export     one schedule as csv (PyTorch's action format)
  import     read a PyTorch-format CSV, verify and simulate it
  paths      skip and reorder paths: one path per micro-batch, and the iteration time

'pipesched <command> --help' describes each command's options.
)";

constexpr const char* schedule_options = R"(  --schedule NAME        gpipe 1f1b interleaved zb-h1 zb-h2 zb-v v-half v-min forward-only
  --stages P             pipeline ranks (devices)
  --microbatches M       micro-batches per iteration
  --chunks V             model chunks per rank (interleaved; V-shape schedules use 2)
  --group G              interleaved micro-batch group size (default min(p, m))
  --costs F,B,W[,C]      per-stage (per-chunk when V > 1) costs of the forward, the
                         input-gradient backward and the weight-gradient backward, and the
                         link latency; a fused backward costs B+W (default 1,1,1,0)
  --slice-costs F,B,W[,C]  the same for one rank's whole slice of the model, shared out
                         over the schedule's chunks (compare schedules on one model)
  --extra-slots N        boundary slots per rank beyond the peak, used as a round robin
                         (double buffering on a GPU: see "slot reuse" in the metrics)
)";

struct options {
  std::map<std::string, std::string> values;
  std::vector<std::string> positional;
  bool has(std::string const& k) const { return values.count(k) != 0; }
  std::string get(std::string const& k, std::string const& def = "") const {
    auto it = values.find(k);
    return it == values.end() ? def : it->second;
  }
};

options parse_options(int argc, char** argv, int first, std::vector<std::string> const& with_value,
                      std::vector<std::string> const& flags) {
  options o;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      o.positional.push_back(a);
      continue;
    }
    std::string key = a.substr(2), value;
    bool inline_value = false;
    if (auto eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
      inline_value = true;
    }
    bool takes_value = false, known = false;
    for (auto const& k : with_value)
      if (k == key) takes_value = known = true;
    for (auto const& k : flags)
      if (k == key) known = true;
    if (!known) throw usage_error("unknown option --" + key);
    if (takes_value && !inline_value) {
      if (i + 1 >= argc) throw usage_error("option --" + key + " needs a value");
      value = argv[++i];
    }
    if (!takes_value && inline_value) throw usage_error("option --" + key + " takes no value");
    o.values[key] = value;
  }
  return o;
}

int to_int(std::string const& name, std::string const& s, int lo, int hi) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) throw usage_error("--" + name + " needs an integer, got '" + s + "'");
  if (v < lo || v > hi)
    throw usage_error("--" + name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return v;
}

double to_double(std::string const& what, std::string const& s) {
  try {
    std::size_t used = 0;
    double v = std::stod(s, &used);
    if (used != s.size() || !(v >= 0) || !std::isfinite(v)) throw std::invalid_argument("");
    return v;
  } catch (std::exception const&) {
    throw usage_error(what + " needs a finite non-negative number, got '" + s + "'");
  }
}

cost_model parse_costs(std::string const& s) {
  std::vector<double> v;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    auto comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    v.push_back(to_double("--costs", s.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  if (v.size() < 3 || v.size() > 4) throw usage_error("--costs takes F,B,W or F,B,W,C");
  cost_model c{v[0], v[1], v[2], v.size() == 4 ? v[3] : 0.0};
  if (c.f + c.b + c.w <= 0) throw usage_error("--costs: F + B + W must be positive");
  return c;
}

bool slice_costs_given = false;

params schedule_params(options const& o, bool need_name) {
  if (need_name && !o.has("schedule")) throw usage_error("--schedule NAME is required");
  if (!o.has("stages")) throw usage_error("--stages P is required");
  if (!o.has("microbatches")) throw usage_error("--microbatches M is required");
  params pr{};
  pr.p = to_int("stages", o.get("stages"), 1, max_ranks);
  pr.m = to_int("microbatches", o.get("microbatches"), 1, max_index);
  if (o.has("chunks")) pr.v = to_int("chunks", o.get("chunks"), 1, 64);
  if (o.has("group")) pr.g = to_int("group", o.get("group"), 1, max_index);
  if (o.has("extra-slots")) pr.extra_slots = to_int("extra-slots", o.get("extra-slots"), 0, 64);
  if (o.has("costs")) pr.cost = parse_costs(o.get("costs"));
  if (o.has("slice-costs")) {
    if (o.has("costs")) throw usage_error("give --costs or --slice-costs, not both");
    pr.cost = parse_costs(o.get("slice-costs"));
    slice_costs_given = true;
  }
  return pr;
}

/// --slice-costs: costs of one rank's whole slice, shared out over the schedule's chunks.
params per_chunk(params pr, table const& probe) {
  if (!slice_costs_given || probe.chunks <= 1) return pr;
  double v = probe.chunks;
  pr.cost.f /= v;
  pr.cost.b /= v;
  pr.cost.w /= v;
  return pr;
}

/// A number in text output (JSON output uses json_number, which writes null for what is
/// not finite).
std::string text_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return json_number(v);
}

/// The makespan of a lowered table on an executor with fixed slots (simulate_lowered with
/// slot reuse): what --extra-slots changes. Negative when the table is not lowered or fails.
double slot_reuse_makespan(table const& t, cost_model const& c) {
  if (!t.ok() || !t.lowered) return -1;
  sim_costs sc{c};
  sc.slot_reuse = true;
  simulation const s = simulate_lowered(t, sc);
  return s.ok() ? s.makespan : -1;
}

/// One JSON object of metrics for a table (`reuse`: slot_reuse_makespan, or negative).
std::string metrics_json(std::string_view name, table const& t, simulation const& sim, diagnostic const& verdict,
                         double budget = -1, double reuse = -1) {
  std::ostringstream o;
  o << "{";
  if (!name.empty()) o << "\"schedule\":" << json_string(name) << ",";
  o << "\"stages\":" << t.ranks << ",\"microbatches\":" << t.microbatches << ",\"chunks\":" << t.chunks
    << ",\"makespan\":" << json_number(sim.makespan) << ",\"max_rank_span\":" << json_number(sim.max_rank_span)
    << ",\"bubble_ratio\":" << json_number(sim.bubble_ratio) << ",\"peak_memory\":[";
  double peak = 0;
  for (std::size_t r = 0; r < sim.peak_memory.size(); ++r) {
    o << (r ? "," : "") << json_number(sim.peak_memory[r]);
    peak = sim.peak_memory[r] > peak ? sim.peak_memory[r] : peak;
  }
  o << "],\"busy\":[";
  for (std::size_t r = 0; r < sim.busy.size(); ++r) o << (r ? "," : "") << json_number(sim.busy[r]);
  o << "],\"verified\":" << (verdict.ok() ? "true" : "false");
  if (t.lowered && verdict.ok()) {
    o << ",\"slots\":[";
    for (std::size_t r = 0; r < t.slot_count.size(); ++r) o << (r ? "," : "") << t.slot_count[r];
    o << "]";
    if (reuse >= 0) o << ",\"slot_reuse_makespan\":" << json_number(reuse);
  }
  if (!verdict.ok()) o << ",\"error\":" << json_string(to_string(verdict));
  if (budget >= 0) o << ",\"fits_budget\":" << (peak <= budget + 1e-9 ? "true" : "false");
  o << "}";
  return o.str();
}

void print_metrics(std::ostream& os, table const& t, simulation const& sim, diagnostic const& verdict,
                   double reuse = -1) {
  os << "ranks " << t.ranks << ", stages " << t.stages << ", micro-batches " << t.microbatches << "\n";
  os << "makespan " << text_number(sim.makespan) << ", largest rank span " << text_number(sim.max_rank_span)
     << ", bubble ratio " << text_number(sim.bubble_ratio) << "\n";
  os << "peak memory per rank (unit: one micro-batch's activations on one rank's slice):";
  for (double m : sim.peak_memory) os << " " << text_number(m);
  os << "\n";
  if (t.lowered && reuse >= 0) {
    os << "slots per rank:";
    for (int n : t.slot_count) os << " " << n;
    os << "; with transfers and fixed slots (slot reuse, as on a GPU): makespan " << text_number(reuse) << "\n";
  }
  os << "verified: " << (verdict.ok() ? std::string("yes") : "NO — " + to_string(verdict)) << "\n";
}

void print_lists(std::ostream& os, table const& t) {
  for (int r = 0; r < t.ranks; ++r) {
    os << "rank " << r << ":";
    for (action const& a : t.lists[static_cast<std::size_t>(r)])
      if (is_compute(a.kind)) os << " " << format_action(a);
    os << "\n";
  }
}

table build(std::string const& name, params& pr) {
  table probe = make_schedule(name, pr, false);
  if (probe.ok()) pr = per_chunk(pr, probe);
  table t = make_schedule(name, pr);
  if (!t.ok()) {
    if (t.error.code == errc::unknown_schedule) {
      std::string names;
      for (auto const& e : schedule_registry) names += " " + std::string(e.name);
      throw usage_error("unknown schedule '" + name + "'; known:" + names);
    }
    throw usage_error("schedule '" + name + "' refused its parameters: " + to_string(t.error));
  }
  return t;
}

int cmd_list() {
  for (auto const& e : schedule_registry) std::cout << e.name << "\t" << e.summary << "\n";
  return 0;
}

int cmd_show(int argc, char** argv) {
  auto o = parse_options(argc, argv, 2,
                         {"schedule", "stages", "microbatches", "chunks", "group", "costs", "slice-costs", "width",
                          "extra-slots"},
                         {"json", "help", "color", "no-color", "lists"});
  if (o.has("help")) {
    std::cout << "usage: pipesched show --schedule NAME --stages P --microbatches M [options] [--json]\n\n"
              << "Draws the schedule as a grid (one row per rank, time to the right; F/B/I/W with the\n"
              << "micro-batch number, lower case for a rank's second chunk) and prints the simulated\n"
              << "metrics.\n\n"
              << schedule_options << "  --json                 one JSON object of metrics\n"
              << "  --lists                also print each rank's order as PyTorch-style actions\n"
              << "  --width N              wrap the grid at N columns (default 120)\n"
              << "  --color, --no-color    force ANSI colour on or off (default: on for a terminal)\n";
    return 0;
  }
  params pr = schedule_params(o, true);
  table t = build(o.get("schedule"), pr);
  diagnostic verdict = verify(t);
  simulation sim = simulate(t, sim_costs{pr.cost});
  double const reuse = verdict.ok() ? slot_reuse_makespan(t, pr.cost) : -1;
  if (o.has("json")) {
    std::cout << metrics_json(o.get("schedule"), t, sim, verdict, -1, reuse) << "\n";
    return verdict.ok() ? 0 : 1;
  }
  std::cout << o.get("schedule") << "\n";
  text_options to{};
  to.width = 120;
  to.color = o.has("color") || (!o.has("no-color") && isatty(STDOUT_FILENO));
  if (o.has("width")) to.width = to_int("width", o.get("width"), 20, 100000);
  std::cout << render_text(t, sim, to);
  if (o.has("lists")) print_lists(std::cout, t);
  print_metrics(std::cout, t, sim, verdict, reuse);
  return verdict.ok() ? 0 : 1;
}

int cmd_compare(int argc, char** argv) {
  auto o = parse_options(argc, argv, 2, {"stages", "microbatches", "costs", "memory-budget"}, {"json", "best", "help"});
  if (o.has("help")) {
    std::cout << "usage: pipesched compare --stages P --microbatches M [--costs F,B,W[,C]] [--memory-budget X] "
                 "[--json]\n\n"
                 "Every training schedule for the same model: costs are those of one rank's whole slice\n"
                 "(1/p of the layers); a schedule with V chunks per rank gets 1/V of them per chunk.\n"
                 "Memory is in the unit of one micro-batch's activations on one rank's slice.\n\n"
                 "  --memory-budget X      mark which schedules fit X (that unit) on every rank\n"
                 "  --best                 print only the name of the fastest schedule that fits\n"
                 "  --json                 a list of JSON objects, one per schedule\n";
    return 0;
  }
  params base = schedule_params(o, false);
  slice_costs_given = true; // compare: costs are always those of a rank's slice
  double budget = o.has("memory-budget") ? to_double("--memory-budget", o.get("memory-budget")) : -1;
  struct row {
    std::string name;
    table t;
    simulation sim;
    diagnostic verdict;
  };
  std::vector<row> results;
  for (auto const& e : schedule_registry) {
    if (e.name == "forward-only") continue;
    params pr = base;
    pr.v = 0;
    table probe = make_schedule(e.name, pr, false);
    if (!probe.ok()) continue;
    pr = per_chunk(pr, probe);
    table t = make_schedule(e.name, pr);
    results.push_back({std::string(e.name), t, simulate(t, sim_costs{pr.cost}), verify(t)});
  }
  // the fastest verified schedule within the budget (ties: the smaller peak memory)
  row const* best = nullptr;
  double best_peak = 0;
  for (auto const& r : results) {
    double peak = 0;
    for (double m : r.sim.peak_memory) peak = m > peak ? m : peak;
    if (!r.verdict.ok() || (budget >= 0 && peak > budget + 1e-9)) continue;
    if (!best || r.sim.makespan < best->sim.makespan - 1e-9 ||
        (r.sim.makespan < best->sim.makespan + 1e-9 && peak < best_peak)) {
      best = &r;
      best_peak = peak;
    }
  }
  if (o.has("best")) {
    if (!best) {
      std::cerr << "pipesched compare: no schedule fits the memory budget\n";
      return 1;
    }
    std::cout << best->name << "\n";
    return 0;
  }
  if (o.has("json")) {
    std::cout << "[";
    for (std::size_t i = 0; i < results.size(); ++i)
      std::cout << (i ? ",\n " : "") << metrics_json(results[i].name, results[i].t, results[i].sim,
                                                     results[i].verdict, budget);
    std::cout << "]\n";
    return 0;
  }
  std::printf("%-13s %6s %10s %8s %8s  %-s\n", "schedule", "chunks", "makespan", "bubble", "memory",
              budget >= 0 ? "fits  peak memory per rank" : "peak memory per rank");
  for (auto const& r : results) {
    double peak = 0;
    std::string per;
    for (double m : r.sim.peak_memory) {
      peak = m > peak ? m : peak;
      per += text_number(m) + " ";
    }
    std::printf("%-13s %6d %10s %7.1f%% %8s  %s%s%s\n", r.name.c_str(), r.t.chunks, text_number(r.sim.makespan).c_str(),
                100.0 * r.sim.bubble_ratio, text_number(peak).c_str(),
                budget < 0 ? "" : (peak <= budget + 1e-9 ? "yes   " : "no    "), per.c_str(),
                r.verdict.ok() ? "" : " (NOT VERIFIED)");
  }
  if (best)
    std::printf("fastest%s: %s (makespan %s, peak memory %s)\n", budget >= 0 ? " within the budget" : "",
                best->name.c_str(), text_number(best->sim.makespan).c_str(), text_number(best_peak).c_str());
  else
    std::printf("no schedule fits the memory budget\n");
  return 0;
}

/// --latency FILE: S x S numbers (row = sender), separated by spaces, commas or newlines.
vec<double> read_latency(std::string const& file, int S) {
  std::ifstream in(file);
  if (!in) throw usage_error("cannot open '" + file + "'");
  vec<double> lat;
  std::string tok;
  while (in >> tok) {
    std::size_t pos = 0;
    while (pos <= tok.size()) {
      std::size_t comma = tok.find(',', pos);
      if (comma == std::string::npos) comma = tok.size();
      if (comma > pos) lat.push_back(to_double("--latency", tok.substr(pos, comma - pos)));
      pos = comma + 1;
    }
  }
  if (lat.size() != static_cast<std::size_t>(S) * static_cast<std::size_t>(S))
    throw usage_error("--latency: '" + file + "' holds " + std::to_string(lat.size()) + " numbers, S x S = " +
                      std::to_string(S * S) + " needed");
  for (double x : lat)
    if (x < 0) throw usage_error("--latency: latencies must be non-negative");
  return lat;
}

/// The skip-path options shared by 'paths' and 'export --schedule skip'.
skip_config skip_options(options const& o) {
  if (!o.has("stages")) throw usage_error("--stages S is required");
  if (!o.has("keep")) throw usage_error("--keep K is required");
  if (!o.has("microbatches")) throw usage_error("--microbatches M is required");
  skip_config c{};
  c.stages = to_int("stages", o.get("stages"), 1, max_ranks - 1);
  c.keep = to_int("keep", o.get("keep"), 1, c.stages);
  c.microbatches = to_int("microbatches", o.get("microbatches"), 1, max_index);
  if (o.has("memory")) c.memory = to_int("memory", o.get("memory"), 1, max_index);
  std::string layout = o.get("layout", "last");
  if (layout == "last") c.layout = path_layout::last;
  else if (layout == "return") c.layout = path_layout::round_trip;
  else throw usage_error("--layout takes last or return, got '" + layout + "'");
  std::string method = o.get("method", "cost");
  if (method == "cost") c.method = path_method::cost_aware;
  else if (method == "rotation") c.method = path_method::rotation;
  else throw usage_error("--method takes cost or rotation, got '" + method + "'");
  c.costs = sim_costs{o.has("costs") ? parse_costs(o.get("costs")) : cost_model{}};
  if (o.has("latency")) c.costs.latency = read_latency(o.get("latency"), c.stages);
  c.search_rounds = o.has("search") ? to_int("search", o.get("search"), 0, 100) : 2;
  return c;
}

int cmd_export(int argc, char** argv) {
  auto o = parse_options(argc, argv, 2,
                         {"schedule", "stages", "microbatches", "chunks", "group", "costs", "slice-costs", "extra-slots",
                          "format", "title",
                          "keep", "memory", "latency", "layout", "method", "search"},
                         {"transfers", "help"});
  if (o.has("help")) {
    std::cout << "usage: pipesched export --schedule NAME --stages P --microbatches M [options] --format csv\n\n"
              << "Writes one CSV row per rank (rank 0 first); each cell is an action in PyTorch's\n"
              << "syntax {stage}{F|B|I|W}{microbatch} with the global stage index.\n\n"
              << schedule_options
              << "  --format FMT           csv (PyTorch's action format), chrome (trace JSON for\n"
              << "                         Perfetto / chrome://tracing; 1 cost unit = 1 ms), svg, text\n"
              << "  --transfers            csv: include SEND_F/RECV_F/SEND_B/RECV_B cells;\n"
              << "                         chrome: simulate transfers on per-rank comm tracks\n"
              << "  --title TEXT           svg: the picture's title\n"
              << "  --schedule skip        skip paths (rank = stage): also --keep K, and optionally\n"
              << "                         --memory C, --latency FILE, --layout last|return,\n"
              << "                         --method cost|rotation, --search N (see 'pipesched paths --help')\n";
    return 0;
  }
  params pr = schedule_params(o, true);
  std::string fmt = o.get("format", "csv");
  table t;
  sim_costs costs{pr.cost};
  if (o.get("schedule") == "skip") {
    skip_config c = skip_options(o);
    t = lower(make_skip(c), skip_sim_costs(c));
    if (!t.ok()) throw usage_error("skip paths refused their parameters: " + to_string(t.error));
    costs = skip_sim_costs(c);
  } else {
    for (const char* k : {"keep", "memory", "latency", "layout", "method", "search"})
      if (o.has(k)) throw usage_error(std::string("--") + k + " is for --schedule skip only");
    t = build(o.get("schedule"), pr);
  }
  if (fmt == "csv") {
    std::cout << to_csv(t, o.has("transfers") ? csv_format::compute_comms : csv_format::compute_only);
    return 0;
  }
  if (fmt == "chrome") {
    simulation sim = o.has("transfers") ? simulate_lowered(t, costs) : simulate(t, costs);
    std::cout << render_chrome_trace(t, sim);
    return 0;
  }
  simulation sim = simulate(t, costs);
  if (fmt == "svg") {
    svg_options so{};
    so.title = o.has("title") ? o.get("title")
                              : o.get("schedule") + ", p = " + std::to_string(pr.p) + ", m = " + std::to_string(pr.m);
    if (!o.has("title") && o.get("schedule") == "skip") so.title += ", K = " + o.get("keep");
    std::cout << render_svg(t, sim, so);
    return 0;
  }
  if (fmt == "text") {
    text_options to{};
    to.width = 120;
    std::cout << render_text(t, sim, to);
    return 0;
  }
  throw usage_error("unknown --format '" + fmt + "' (csv, chrome, svg, text)");
}

int cmd_paths(int argc, char** argv) {
  auto o = parse_options(argc, argv, 2,
                         {"stages", "keep", "microbatches", "memory", "costs", "latency", "layout", "method", "search"},
                         {"json", "help"});
  if (o.has("help")) {
    std::cout << "usage: pipesched paths --stages S --keep K --microbatches M [--memory C] [--costs F,B,W[,C]]\n"
                 "                       [--latency FILE] [--layout last|return] [--method cost|rotation] [--json]\n\n"
                 "Assigns each micro-batch a path through K of the S stages (stage s on rank s) and\n"
                 "prints one line per micro-batch, 'j: s0 s1 ...', then the simulated iteration time\n"
                 "next to the full pipeline's (every stage kept, same cap and costs).\n\n"
                 "  --stages S             stages (= ranks)\n"
                 "  --keep K               stages each micro-batch visits, stage 0 (and S-1 in layout\n"
                 "                         last) counted\n"
                 "  --microbatches M       micro-batches per iteration\n"
                 "  --memory C             at most C micro-batches in flight on any rank (default M)\n"
                 "  --costs F,B,W[,C]      per-stage pass costs and link latency (default 1,1,1,0)\n"
                 "  --latency FILE         S x S link latencies (row = sender), replaces C\n"
                 "  --layout last|return   the head on the last stage (default), or on stage 0's rank\n"
                 "                         with every path returning there for the loss\n"
                 "  --method cost|rotation the cost-aware assignment (default) or the plain rotation rule\n"
                 "  --search N             cost: rounds of local search by simulation (default 2)\n"
                 "  --json                 {\"paths\": [[...], ...], \"makespan\": T, \"full_pipeline_makespan\": T}\n";
    return 0;
  }
  skip_config c = skip_options(o);
  diagnostic err{};
  vec<vec<int>> paths = assign_paths(c, err);
  if (err) throw usage_error("no paths: " + to_string(err));
  table t = skip_table(c, paths);
  if (!t.ok()) throw usage_error("no schedule: " + to_string(t.error));
  sim_costs const sc = skip_sim_costs(c);
  double const ms = simulate(t, sc).makespan;
  table full = make_skip(full_pipeline(c));
  double const full_ms = full.ok() ? simulate(full, sc).makespan : 0;
  diagnostic verdict = verify(lower(t, sc));
  if (o.has("json")) {
    std::cout << "{\"paths\":[";
    for (std::size_t j = 0; j < paths.size(); ++j) {
      std::cout << (j ? "," : "") << "[";
      for (std::size_t i = 0; i < paths[j].size(); ++i) std::cout << (i ? "," : "") << paths[j][i];
      std::cout << "]";
    }
    std::cout << "],\"makespan\":" << json_number(ms) << ",\"full_pipeline_makespan\":" << json_number(full_ms)
              << ",\"layout\":" << json_string(c.layout == path_layout::last ? "last" : "return")
              << ",\"verified\":" << (verdict.ok() ? "true" : "false") << "}\n";
    return verdict.ok() ? 0 : 1;
  }
  for (std::size_t j = 0; j < paths.size(); ++j) {
    std::cout << j << ":";
    for (int s : paths[j]) std::cout << " " << s;
    if (c.layout == path_layout::round_trip) std::cout << " -> 0";
    std::cout << "\n";
  }
  std::cout << "makespan " << text_number(ms) << ", full pipeline " << text_number(full_ms);
  if (full_ms > 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", 100.0 * (1.0 - ms / full_ms));
    std::cout << " (" << buf << "% shorter)";
  }
  std::cout << "\nverified: " << (verdict.ok() ? std::string("yes") : "NO — " + to_string(verdict)) << "\n";
  return verdict.ok() ? 0 : 1;
}

int cmd_import(int argc, char** argv) {
  auto o = parse_options(argc, argv, 2, {"costs"}, {"json", "help"});
  if (o.has("help")) {
    std::cout << "usage: pipesched import FILE [--costs F,B,W[,C]] [--json]\n\n"
                 "Reads a PyTorch-format CSV (one row per rank, cells like 2F0, 5I3, 1W7, optionally\n"
                 "SEND/RECV cells), verifies it and simulates it.\n";
    return 0;
  }
  if (o.positional.size() != 1) throw usage_error("import takes one FILE");
  std::ifstream in(o.positional[0], std::ios::binary);
  if (!in) throw usage_error("cannot open '" + o.positional[0] + "'");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  table t = from_csv(text);
  if (!t.ok()) {
    std::cerr << "pipesched import: " << o.positional[0] << ": " << to_string(t.error) << "\n";
    return 1;
  }
  cost_model c = o.has("costs") ? parse_costs(o.get("costs")) : cost_model{};
  diagnostic verdict = verify(t);
  simulation sim = verdict.ok() ? simulate(t, sim_costs{c}) : simulation{};
  if (o.has("json")) {
    std::cout << metrics_json("", t, sim, verdict) << "\n";
  } else {
    print_lists(std::cout, t);
    print_metrics(std::cout, t, sim, verdict);
  }
  return verdict.ok() ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "help") == 0 ||
        std::strcmp(argv[1], "-h") == 0) {
      std::cout << main_help;
      return argc < 2 ? 2 : 0;
    }
    std::string cmd = argv[1];
    if (cmd == "list") return cmd_list();
    if (cmd == "show") return cmd_show(argc, argv);
    if (cmd == "compare") return cmd_compare(argc, argv);
    if (cmd == "export") return cmd_export(argc, argv);
    if (cmd == "import") return cmd_import(argc, argv);
    if (cmd == "paths") return cmd_paths(argc, argv);
    throw usage_error("unknown command '" + cmd + "'");
  } catch (usage_error const& e) {
    std::cerr << "pipesched: " << e.what() << "\n(see 'pipesched --help')\n";
    return 2;
  } catch (std::exception const& e) {
    std::cerr << "pipesched: error: " << e.what() << "\n";
    return 1;
  }
}
