// pipesched: the command-line tool — show, compare, export and import schedules.
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "pipesched/analysis/csv.hpp"
#include "pipesched/analysis/json.hpp"
#include "pipesched/analysis/render.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/registry.hpp"
#include "pipesched/schedules/select.hpp"
#include "pipesched/schedules/skip_paths.hpp"

namespace {

using namespace pipesched;

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct options {
  std::map<std::string, std::string> values;
  std::vector<std::string> positional;
  bool has(std::string const& k) const { return values.count(k) != 0; }
  std::string get(std::string const& k, std::string const& def = "") const {
    auto it = values.find(k);
    return it == values.end() ? def : it->second;
  }
};

// ---- limits: sizes the tool refuses up front (docs/02_analysis.md, "Limits") ----
// Generating, lowering, verifying and simulating a table take time and memory in proportion
// to its passes, about 3 s and 0.6 GB per million (stage, micro-batch) pairs on one core;
// compare builds every schedule; the cost-aware path assignment grows faster than linearly.
constexpr long max_pairs = 1L << 20;         ///< show, export: ranks x chunks x micro-batches
constexpr long max_compare_pairs = 1L << 18; ///< compare: ranks x micro-batches
constexpr long max_path_pairs = 1L << 16;    ///< paths: stages x micro-batches ...
constexpr long max_path_square = 1L << 23;   ///< ... and stages x stages x micro-batches
constexpr long max_search_pairs = 1L << 11;  ///< the same with the local search (--search above 0)
constexpr long max_search_square = 1L << 16;

constexpr const char* limits_text = R"(limits (refused up front, exit 2; larger runs would take minutes or gigabytes):
  at most 4096 ranks and 65535 micro-batches;
  show, export: ranks x chunks x micro-batches at most 1048576 (about 3 s, 0.6 GB);
  compare: ranks x micro-batches at most 262144 (every schedule is built);
  paths, export --schedule skip: stages x micro-batches at most 65536 and
  stages x stages x micro-batches at most 8388608; with the local search of the
  cost-aware method (the default: --search 2) at most 2048 and 65536.
)";

/// The command-line grammar (CLI11): one subcommand per command; every option takes a
/// string that the command converts and checks itself, so that messages speak in flags.
struct command {
  CLI::App* app = nullptr;
  std::vector<std::pair<std::string, CLI::Option*>> opts; // name without the dashes
  CLI::Option* file = nullptr;

  /// An option --name (and --former, its former spelling, when given).
  command& value(std::string const& name, std::string const& type, std::string const& help,
                 std::string const& former = "") {
    CLI::Option* o = app->add_option("--" + name + (former.empty() ? "" : ",--" + former), help);
    o->type_name(type)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)->allow_extra_args(false);
    opts.emplace_back(name, o);
    return *this;
  }
  command& flag(std::string const& name, std::string const& help) {
    CLI::Option* o = app->add_flag("--" + name, help);
    o->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    opts.emplace_back(name, o);
    return *this;
  }
  command& schedule_options() {
    value("schedule", "NAME",
          "gpipe 1f1b interleaved zb-h1 zb-h2 zb-v v-half v-min looped-bfs interleaved-zb dualpipe-v dualpipe"
          " forward-only");
    value("ranks", "P", "pipeline ranks (devices), 1 to 4096; the model has P x V stages (--stages: former name)",
          "stages");
    value("microbatches", "M", "micro-batches per iteration, 1 to 65535");
    value("chunks", "V", "model chunks per rank (interleaved, looped-bfs, interleaved-zb: default 2; V-shape schedules use 2)");
    value("group", "G", "interleaved micro-batch group size (default min(p, m))");
    value("costs", "F,B,W[,C[,FB]]",
          "per-stage (per-chunk when V > 1) costs of the forward, the input-gradient backward and the "
          "weight-gradient backward, the link latency, and an overlapped forward-backward pair (F with a "
          "fused B; 0: F+B+W, no gain); finite non-negative numbers; a fused backward "
          "costs B+W (default 1,1,1,0,0)");
    value("slice-costs", "F,B,W[,C[,FB]]",
          "the same for one rank's whole slice of the model, shared out over the schedule's chunks "
          "(compare schedules on one model)");
    value("extra-slots", "N",
          "boundary slots per rank beyond the peak, used as a round robin (double buffering on a GPU: see "
          "\"slot reuse\" in the metrics), 0 to 64");
    return *this;
  }

  /// What was given, as name -> value; a repeated option, an unknown one or a stray
  /// argument is a usage error.
  options collect() const {
    options o;
    for (auto const& [name, opt] : opts) {
      if (opt->count() > 1)
        throw usage_error("--" + name + " given more than once" +
                          (name == "ranks" ? " (--stages is its former name, the same option)" : ""));
      if (opt->count() == 1) o.values[name] = opt->get_expected_min() == 0 ? "" : opt->results().front();
    }
    if (file && file->count() > 0) o.positional = file->results();
    for (std::string const& a : app->remaining()) {
      if (a.rfind("--", 0) == 0) {
        auto eq = a.find('=');
        throw usage_error("unknown option " + a.substr(0, eq));
      }
      if (a.size() > 1 && a[0] == '-' && !(a[1] >= '0' && a[1] <= '9')) throw usage_error("unknown option " + a);
      if (file) throw usage_error(app->get_name() + " takes one FILE, got also '" + a + "'");
      throw usage_error(app->get_name() + " takes no argument '" + a + "' (options start with --)");
    }
    return o;
  }
};

int to_int(std::string const& name, std::string const& s, int lo, int hi) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size())
    throw usage_error("--" + name + " needs an integer, got '" + s + "'");
  if (v < lo || v > hi)
    throw usage_error("--" + name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return v;
}

/// Any finite non-negative number (blanks around it allowed; a value too small for a double
/// reads as the nearest one, 0 or a subnormal; one too large is refused).
double to_double(std::string const& what, std::string const& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  std::string const t = s.substr(b, e - b);
  char* end = nullptr;
  double const v = t.empty() ? -1 : std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || !std::isfinite(v) || !(v >= 0))
    throw usage_error(what + " needs a finite non-negative number, got '" + s + "'");
  return v == 0 ? 0.0 : v; // -0 reads as 0
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
  if (v.size() < 3 || v.size() > 5) throw usage_error("--costs takes F,B,W or F,B,W,C or F,B,W,C,FB");
  cost_model c{v[0], v[1], v[2], v.size() >= 4 ? v[3] : 0.0, v.size() == 5 ? v[4] : 0.0};
  if (c.f + c.b + c.w <= 0) throw usage_error("--costs: F + B + W must be positive");
  return c;
}

bool slice_costs_given = false;

params schedule_params(options const& o, bool need_name) {
  if (need_name && !o.has("schedule")) throw usage_error("--schedule NAME is required");
  if (!o.has("ranks")) throw usage_error("--ranks P is required");
  if (!o.has("microbatches")) throw usage_error("--microbatches M is required");
  params pr{};
  pr.p = to_int("ranks", o.get("ranks"), 1, max_ranks);
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
  // DualPipe (V placement with routes): each chunk is a whole model stage, costing the slice
  if (probe.place == placement::v_shape && !probe.paths.empty()) return pr;
  double v = probe.chunks;
  pr.cost.f /= v;
  pr.cost.b /= v;
  pr.cost.w /= v;
  pr.cost.fb /= v;
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
  // "stages" is the former name of "ranks", kept for existing scripts; the model's stage
  // count (ranks x chunks) is "model_stages"
  o << "\"ranks\":" << t.ranks << ",\"model_stages\":" << t.stages << ",\"stages\":" << t.ranks
    << ",\"microbatches\":" << t.microbatches << ",\"chunks\":" << t.chunks
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

/// compare --json: a row's "parameter_copies" (2 for DualPipe, whose ranks each hold two
/// copies' worth of parameters; 1 for every other schedule).
std::string with_parameter_copies(std::string json, int copies) {
  json.insert(json.size() - 1, ",\"parameter_copies\":" + std::to_string(copies));
  return json;
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

/// A library diagnostic in the tool's words: parameter errors name the flags (--chunks 2),
/// not the C++ parameters (chunks<2>) the library's messages speak of.
std::string tool_message(diagnostic const& d) {
  switch (d.code) {
  case errc::zero_ranks: return "--ranks must be at least 1";
  case errc::zero_microbatches: return "--microbatches must be at least 1";
  case errc::zero_chunks: return "--chunks must be at least 1";
  case errc::needs_one_chunk:
    return "this schedule holds one chunk per rank: drop --chunks, or use --schedule interleaved, looped-bfs or "
           "interleaved-zb for --chunks above 1";
  case errc::needs_two_chunks: return "V-shape schedules hold exactly two chunks per rank: use --chunks 2 or drop it";
  case errc::group_size_out_of_range:
    return "--group must be between 1 and --microbatches (without it: min(--ranks, --microbatches))";
  case errc::too_large:
    return "too many ranks, stages or micro-batches: at most 4096 ranks (--ranks) and 65535 stages "
           "(--ranks x --chunks) or micro-batches (--microbatches)";
  case errc::negative_cost: return "--costs must be non-negative numbers with F + B + W positive";
  case errc::extra_slots_out_of_range: return "--extra-slots must be between 0 and 64";
  default: break;
  }
  std::string s = to_string(d);
  // a detail that names a C++ parameter (skip paths given as a type): say the flag
  for (auto const& [cpp, flag] : {std::pair<std::string_view, std::string_view>{"ranks<P>", "--ranks"},
                                  {"microbatches<M>", "--microbatches"},
                                  {"chunks<V>", "--chunks"},
                                  {"group_size<G>", "--group"},
                                  {"extra_slots<N>", "--extra-slots"},
                                  {"costs<F,B,W,C>", "--costs"}})
    for (auto at = s.find(cpp); at != std::string::npos; at = s.find(cpp)) s.replace(at, cpp.size(), flag);
  return s;
}

std::string schedule_names() {
  std::string names;
  for (auto const& e : schedule_registry) {
    names += ' ';
    names += e.name;
  }
  return names;
}

/// Refuses a schedule too large to build in reasonable time and memory (limits_text).
void check_size(std::string const& name, params const& pr) {
  // the schedule's own chunk count, from the same schedule at a small size
  params small = pr;
  small.p = pr.p < 4 ? pr.p : 4;
  small.m = pr.m < 8 ? pr.m : 8;
  small.g = 0;
  table const probe = make_schedule(name, small, false);
  long const v = probe.ok() ? probe.chunks : (pr.v > 1 ? pr.v : 1);
  long const pairs = static_cast<long>(pr.p) * v * pr.m;
  if (pairs > max_pairs)
    throw usage_error("too large: --ranks " + std::to_string(pr.p) + " x " + std::to_string(v) +
                      " chunks x --microbatches " + std::to_string(pr.m) + " = " + std::to_string(pairs) +
                      " (stage, micro-batch) pairs; the limit is " + std::to_string(max_pairs) + "");
}

table build(std::string const& name, params& pr) {
  if (find_schedule(name) == nullptr) {
    std::string msg = "unknown schedule '";
    msg += name;
    msg += "'; known:";
    msg += schedule_names();
    throw usage_error(msg);
  }
  check_size(name, pr);
  table probe = make_schedule(name, pr, false);
  if (probe.ok()) pr = per_chunk(pr, probe);
  table t = make_schedule(name, pr);
  if (!t.ok()) {
    std::string msg = "schedule '";
    msg += name;
    msg += "' refused its parameters: ";
    msg += tool_message(t.error);
    throw usage_error(msg);
  }
  return t;
}

int cmd_list() {
  for (auto const& e : schedule_registry) std::cout << e.name << "\t" << e.summary << "\n";
  return 0;
}

int cmd_show(options const& o) {
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

/// --chunks LIST for compare: chunk counts, each 2 to 64, comma-separated.
std::vector<int> parse_chunk_list(std::string const& s) {
  std::vector<int> v;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    auto comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    v.push_back(to_int("chunks", s.substr(pos, comma - pos), 2, 64));
    pos = comma + 1;
  }
  return v;
}

int cmd_compare(options const& o) {
  options without_chunks = o; // compare's --chunks is a list, read below
  without_chunks.values.erase("chunks");
  params base = schedule_params(without_chunks, false);
  slice_costs_given = true; // compare: costs are always those of a rank's slice
  if (long const pairs = static_cast<long>(base.p) * base.m; pairs > max_compare_pairs)
    throw usage_error("too large: compare --ranks " + std::to_string(base.p) + " x --microbatches " +
                      std::to_string(base.m) + " = " + std::to_string(pairs) + "; the limit is " +
                      std::to_string(max_compare_pairs));
  double budget = o.has("memory-budget") ? to_double("--memory-budget", o.get("memory-budget")) : -1;
  // The candidates of select_schedule, in its order; --chunks replaces the chunk counts of the
  // loop-placement families that take any (interleaved, interleaved-zb, looped-bfs) with its list.
  std::vector<detail::candidate> cands;
  std::vector<int> const chunk_list = o.has("chunks") ? parse_chunk_list(o.get("chunks")) : std::vector<int>{};
  for (detail::candidate const& c : detail::selection_candidates) {
    std::string_view const n = c.name;
    bool const any_chunks = n == "interleaved" || n == "interleaved-zb" || n == "looped-bfs";
    if (!any_chunks || chunk_list.empty()) {
      cands.push_back(c);
      continue;
    }
    bool seen = false; // the family's first entry stands for all its chunk counts
    for (auto const& d : cands) seen = seen || std::string_view(d.name) == n;
    if (seen) continue;
    for (int v : chunk_list) {
      detail::candidate e = c;
      e.chunks = v;
      cands.push_back(e);
    }
  }
  struct row {
    std::string name;
    table t;
    simulation sim;
    diagnostic verdict;
    bool two_copies = false; ///< DualPipe: two copies of the model's parameters, not a --best candidate
  };
  std::vector<row> results;
  std::vector<detail::candidate_score> scores;
  for (detail::candidate const& c : cands) {
    params const pr = detail::candidate_params(c, base.p, base.m, base.cost);
    if (c.check(pr)) continue;
    table t = make_schedule(c.name, pr);
    if (!t.ok()) continue;
    results.push_back({std::string(c.name), t, simulate(t, sim_costs{pr.cost}), verify(t)});
    // the choice: select_schedule's own score and rule (detail::score, choose_candidate), so
    // `compare --best` and select_schedule give one answer
    detail::candidate_score sc = detail::score(c, base.p, base.m, base.cost);
    sc.valid = sc.valid && results.back().verdict.ok();
    scores.push_back(sc);
  }
  std::size_t const chosen = detail::choose_candidate(scores.data(), scores.size(), budget);
  // DualPipe, shown for comparison but never chosen: its 2p table stages are two copies of
  // the model's p stages (2x parameters per rank, the copies' gradients summed by the user),
  // so it cannot replace the others by one `using` line. Each chunk is a whole rank slice:
  // the slice's costs per chunk, and memory in stage-activations (peak_chunks), the same
  // unit as the other rows (simulate's peak_memory counts a chunk as half a slice).
  params dual = base;
  dual.v = 2;
  if (!dualpipe_family::check(dual)) {
    table t = make_schedule(dualpipe_family::name, dual);
    if (t.ok()) {
      simulation sim = simulate(t, sim_costs{dual.cost});
      for (std::size_t r = 0; r < sim.peak_memory.size(); ++r)
        sim.peak_memory[r] = static_cast<double>(sim.peak_chunks[r]);
      results.push_back({std::string(dualpipe_family::name), t, sim, verify(t), true});
    }
  }
  row const* best = chosen < scores.size() ? &results[chosen] : nullptr; // the rows after the scored ones are never chosen
  double const best_peak = best ? scores[chosen].peak_memory : 0;
  if (o.has("best")) {
    if (!best) {
      std::cerr << "pipesched compare: no schedule fits the memory budget\n";
      return 1;
    }
    // the name, and --chunks V when the winner has other than its family's default chunk
    // count: ready to paste after `show --schedule`
    params dflt{};
    dflt.p = base.p;
    dflt.m = base.m;
    int const default_chunks = make_schedule(best->name, dflt, false).chunks;
    std::cout << best->name
              << (best->t.chunks != default_chunks ? " --chunks " + std::to_string(best->t.chunks) : std::string())
              << "\n";
    return 0;
  }
  if (o.has("json")) {
    std::cout << "[";
    for (std::size_t i = 0; i < results.size(); ++i)
      std::cout << (i ? ",\n " : "")
                << with_parameter_copies(
                       metrics_json(results[i].name, results[i].t, results[i].sim, results[i].verdict, budget),
                       results[i].two_copies ? 2 : 1);
    std::cout << "]\n";
    return 0;
  }
  std::printf("%-14s %6s %10s %8s %8s  %-s\n", "schedule", "chunks", "makespan", "bubble", "memory",
              budget >= 0 ? "fits  peak memory per rank" : "peak memory per rank");
  for (auto const& r : results) {
    double peak = 0;
    std::string per;
    for (double m : r.sim.peak_memory) {
      peak = m > peak ? m : peak;
      per += text_number(m) + " ";
    }
    std::printf("%-14s %6d %10s %7.1f%% %8s  %s%s%s%s\n", r.name.c_str(), r.t.chunks, text_number(r.sim.makespan).c_str(),
                100.0 * r.sim.bubble_ratio, text_number(peak).c_str(),
                budget < 0 ? "" : (peak <= budget + 1e-9 ? "yes   " : "no    "), per.c_str(),
                r.verdict.ok() ? "" : " (NOT VERIFIED)", r.two_copies ? " (2x parameters; not chosen)" : "");
  }
  if (best)
    std::printf("fastest%s: %s (makespan %s, peak memory %s)\n", budget >= 0 ? " within the budget" : "",
                best->name.c_str(), text_number(best->sim.makespan).c_str(), text_number(best_peak).c_str());
  else std::printf("no schedule fits the memory budget\n");
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
    throw usage_error("--latency: '" + file + "' holds " + std::to_string(lat.size()) +
                      " numbers, S x S = " + std::to_string(S * S) + " needed");
  for (double x : lat)
    if (x < 0) throw usage_error("--latency: latencies must be non-negative");
  return lat;
}

/// The skip-path options shared by 'paths' and 'export --schedule skip'.
skip_config skip_options(options const& o) {
  if (!o.has("ranks")) throw usage_error("--ranks S is required (S stages, one per rank)");
  if (!o.has("keep")) throw usage_error("--keep K is required");
  if (!o.has("microbatches")) throw usage_error("--microbatches M is required");
  skip_config c{};
  c.stages = to_int("ranks", o.get("ranks"), 1, max_ranks - 1);
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
  c.order_search_rounds = o.has("order-search") ? to_int("order-search", o.get("order-search"), 0, 100) : 0;
  long const pairs = static_cast<long>(c.stages) * c.microbatches;
  bool const search = (c.method == path_method::cost_aware && c.search_rounds > 0) || c.order_search_rounds > 0;
  long const pair_limit = search ? max_search_pairs : max_path_pairs;
  long const square_limit = search ? max_search_square : max_path_square;
  if (pairs > pair_limit || pairs * c.stages > square_limit)
    throw usage_error("too large: --ranks " + std::to_string(c.stages) + " x --microbatches " +
                      std::to_string(c.microbatches) + " = " + std::to_string(pairs) +
                      " and x --ranks again = " + std::to_string(pairs * c.stages) + "; the limits are " +
                      std::to_string(pair_limit) + " and " + std::to_string(square_limit) +
                      (search ? " with a local search (--search 0 or --method rotation, and --order-search 0: 65536 and "
                                "8388608)"
                              : ""));
  return c;
}

/// A picture of table t (its own simulation with `costs`): fmt chrome (with `transfers`, the
/// lowered table's transfers on per-rank comm tracks), svg (titled), text. False for another fmt.
bool print_picture(std::ostream& os, table const& t, sim_costs const& costs, std::string const& fmt,
                   std::string const& title, bool transfers) {
  if (fmt == "chrome") {
    simulation sim = transfers ? simulate_lowered(t, costs) : simulate(t, costs);
    os << render_chrome_trace(t, sim);
    return true;
  }
  if (fmt != "svg" && fmt != "text") return false;
  simulation sim = simulate(t, costs);
  if (fmt == "svg") {
    svg_options so{};
    so.title = title;
    os << render_svg(t, sim, so);
  } else {
    text_options to{};
    to.width = 120;
    os << render_text(t, sim, to);
  }
  return true;
}

int cmd_export(options const& o) {
  params pr = schedule_params(o, true);
  std::string fmt = o.get("format", "csv");
  table t;
  sim_costs costs{pr.cost};
  if (o.get("schedule") == "skip") {
    skip_config c = skip_options(o);
    t = lower(make_skip(c), skip_sim_costs(c));
    if (!t.ok()) throw usage_error("skip paths refused their parameters: " + tool_message(t.error));
    costs = skip_sim_costs(c);
  } else {
    for (const char* k : {"keep", "memory", "latency", "layout", "method", "search", "order-search"})
      if (o.has(k)) throw usage_error(std::string("--") + k + " is for --schedule skip only");
    t = build(o.get("schedule"), pr);
  }
  if (fmt == "csv") {
    std::cout << to_csv(t, o.has("transfers") ? csv_format::compute_comms : csv_format::compute_only);
    return 0;
  }
  if (fmt == "routes") {
    std::cout << to_routes(t);
    return 0;
  }
  std::string title = o.has("title") ? o.get("title")
                                     : o.get("schedule") + ", p = " + std::to_string(pr.p) + ", m = " + std::to_string(pr.m);
  if (!o.has("title") && o.get("schedule") == "skip") title += ", K = " + o.get("keep");
  if (print_picture(std::cout, t, costs, fmt, title, o.has("transfers"))) return 0;
  throw usage_error("unknown --format '" + fmt + "' (csv, routes, chrome, svg, text)");
}

int cmd_paths(options const& o) {
  skip_config c = skip_options(o);
  diagnostic err{};
  vec<vec<int>> paths = assign_paths(c, err);
  if (err) throw usage_error("no paths: " + tool_message(err));
  table t = skip_table(c, paths);
  if (!t.ok()) throw usage_error("no schedule: " + tool_message(t.error));
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

/// What the CSV reader would take for a rank but is a slip in a file: a blank line between
/// rows and a quote left open. "" when neither; else the message, with its line number.
/// `text` has its byte-order mark removed. With routes (`blank_rows`), a blank line is a rank
/// that runs nothing (a skip table's stage that no route visits), not a slip.
std::string csv_layout_problem(std::string_view text, bool blank_rows) {
  // the last line that holds something: blank lines after it are the file's end
  std::size_t last = 0, line = 0;
  std::vector<std::pair<std::size_t, std::string_view>> lines; // (number, text)
  for (std::size_t ls = 0; ls <= text.size();) {
    std::size_t le = ls;
    while (le < text.size() && text[le] != '\n' && text[le] != '\r') ++le;
    lines.emplace_back(++line, text.substr(ls, le - ls));
    if (le < text.size() && text[le] == '\r' && le + 1 < text.size() && text[le + 1] == '\n') ++le;
    ls = le + 1;
  }
  auto blank = [](std::string_view l) {
    for (char ch : l)
      if (ch != ' ' && ch != '\t' && ch != '\v' && ch != '\f') return false;
    return true;
  };
  for (auto const& [n, l] : lines)
    if (!blank(l)) last = n;
  for (auto const& [n, l] : lines) {
    if (n > last) break;
    if (blank(l) && !blank_rows)
      return "line " + std::to_string(n) +
             ": blank line between rows (each line is one rank's row; remove it, or give --routes if the "
             "rank runs nothing)";
    std::size_t quotes = 0, open_at = 0;
    for (std::size_t i = 0; i < l.size(); ++i)
      if (l[i] == '"' && quotes++ % 2 == 0) open_at = i;
    if (quotes % 2 != 0)
      return "line " + std::to_string(n) + ", column " + std::to_string(open_at + 1) +
             ": unterminated quote (a quoted cell must close on its line)";
  }
  return "";
}

/// A file's text, at most one byte past the CSV reader's size limit (from_csv refuses that);
/// what cannot be read is a usage error (`what`: "import", "--routes").
std::string read_capped(std::string const& file, std::string const& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) throw usage_error(what + ": cannot read '" + file + "': it is a directory");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw usage_error(what + ": cannot open '" + file + "': " + std::strerror(errno));
  std::string text;
  try {
    std::size_t const cap = csv_limits{}.max_bytes + 1;
    char buf[1 << 16];
    while (text.size() < cap && in.read(buf, static_cast<std::streamsize>(sizeof buf)).gcount() > 0)
      text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (in.bad()) throw std::runtime_error(std::strerror(errno));
  } catch (std::exception const& e) {
    throw usage_error(what + ": cannot read '" + file + "': " + e.what());
  }
  if (text.size() > csv_limits{}.max_bytes) text.resize(csv_limits{}.max_bytes + 1);
  return text;
}

int cmd_import(options const& o) {
  if (o.positional.size() != 1) throw usage_error("import takes one FILE");
  cost_model const c = o.has("costs") ? parse_costs(o.get("costs")) : cost_model{};
  if (o.has("format")) {
    std::string const fmt = o.get("format");
    if (fmt != "svg" && fmt != "chrome" && fmt != "text")
      throw usage_error("unknown --format '" + fmt + "' (import draws svg, chrome or text)");
    if (o.has("json")) throw usage_error("--format and --json: give one (--json prints the metrics)");
  }
  if (o.has("title") && o.get("format") != "svg") throw usage_error("--title is for --format svg");
  csv_read_options read{};
  std::string route_text;
  if (o.has("routes")) {
    if (o.get("routes") == "ascending") {
      read.routes = csv_routes::ascending;
    } else {
      route_text = read_capped(o.get("routes"), "--routes");
      if (route_text.size() > csv_limits{}.max_bytes) throw usage_error("--routes: the file is larger than 64 MiB");
      read.routes = csv_routes::given;
      read.route_text = route_text;
    }
  }
  if (o.has("ranks")) read.ranks = to_int("ranks", o.get("ranks"), 1, max_ranks);
  std::string const& file = o.positional[0];
  std::string const text = read_capped(file, "import");
  std::string_view body = text;
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3); // UTF-8 byte-order mark
  auto fail = [&](std::string const& what) {
    if (o.has("json")) std::cout << "{\"verified\":false,\"error\":" << json_string(what) << "}\n";
    std::cerr << "pipesched import: " << file << ": " << what << "\n";
    return 1;
  };
  if (std::string why = csv_layout_problem(body, read.routes != csv_routes::every_stage); !why.empty())
    return fail(why);
  table t = from_csv(body, read);
  if (!t.ok()) {
    std::string where;
    if (t.error.code == errc::parse_error && t.error.rank < 0 && t.error.mb >= 0 && read.routes == csv_routes::given) {
      where = "--routes: line " + std::to_string(t.error.mb + 1) + ": ";
    } else if (t.error.rank >= 0) {
      // no blank lines before the last row (checked above): row r is line r + 1
      where = "line " + std::to_string(t.error.rank + 1);
      if (t.error.position >= 0) where += ", cell " + std::to_string(t.error.position + 1);
      where += ": ";
    }
    std::string hint;
    if (t.error.code == errc::missing_pass && read.routes == csv_routes::every_stage)
      hint = "; if micro-batches skip stages (DualPipe, skip paths), give their routes: --routes ascending|FILE";
    return fail(where + to_string(t.error) + hint);
  }
  diagnostic verdict = verify(t);
  // a table that fails verification: what is wrong, and no metrics
  if (!verdict.ok()) return fail("not a valid schedule: " + to_string(verdict));
  if (o.has("format")) {
    std::string const title = o.has("title") ? o.get("title") : std::filesystem::path(file).filename().string();
    // a lowered table (transfer cells in the file) draws its transfers in the trace
    if (print_picture(std::cout, t, sim_costs{c}, o.get("format"), title, t.lowered)) return 0;
  }
  // a compute table is lowered as show lowers a schedule: its buffer slots per rank and the
  // makespan with fixed slots, what an executor would allocate and take
  if (!t.lowered) {
    table l = lower(t, sim_costs{c});
    if (l.ok() && verify(l).ok()) t = std::move(l);
  }
  double const reuse = slot_reuse_makespan(t, c);
  simulation sim = simulate(t, sim_costs{c});
  if (o.has("json")) {
    std::cout << metrics_json("", t, sim, verdict, -1, reuse) << "\n";
  } else {
    print_lists(std::cout, t);
    print_metrics(std::cout, t, sim, verdict, reuse);
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"pipesched: pipeline-parallel schedules — generate, check, simulate, draw, export.", "pipesched"};
  app.get_formatter()->label("Usage", "usage");
  app.get_formatter()->label("OPTIONS", "options");
  app.get_formatter()->label("SUBCOMMAND", "command");
  app.get_formatter()->column_width(30);
  app.set_help_flag("-h,--help", "this help; 'pipesched <command> --help' describes each command's options");
  app.require_subcommand(0, 1);
  app.allow_extras();
  app.footer(limits_text);
  auto sub = [&](const char* name, const char* summary, const char* about) {
    command c;
    c.app = app.add_subcommand(name, summary);
    c.app->group("commands");
    c.app->allow_extras();
    c.app->footer(about);
    return c;
  };
  command list = sub("list", "the schedule names", "");
  command show = sub("show", "one schedule's per-rank order and its metrics",
                     "Draws the schedule as a grid (one row per rank, time to the right; F/B/I/W with the\n"
                     "micro-batch number, lower case for a rank's second chunk) and prints the simulated\n"
                     "metrics. Required: --schedule, --ranks, --microbatches.\n"
                     "Limit: ranks x chunks x micro-batches at most 1048576 (see 'pipesched --help').");
  show.schedule_options()
      .flag("json", "one JSON object of metrics")
      .flag("lists", "also print each rank's order as PyTorch-style actions")
      .value("width", "N", "wrap the grid at N columns (default 120)")
      .flag("color", "force ANSI colour on (default: on for a terminal)")
      .flag("no-color", "force ANSI colour off");
  command compare = sub("compare", "every schedule side by side for one (p, m, costs)",
                        "Every training schedule for the same model: costs are those of one rank's whole slice\n"
                        "(1/p of the layers); a schedule with V chunks per rank gets 1/V of them per chunk.\n"
                        "Memory is in the unit of one micro-batch's activations on one rank's slice.\n"
                        "Required: --ranks, --microbatches. Limit: ranks x micro-batches at most 262144.");
  compare.value("ranks", "P", "pipeline ranks (devices), 1 to 4096 (--stages: former name)", "stages")
      .value("microbatches", "M", "micro-batches per iteration, 1 to 65535")
      .value("costs", "F,B,W[,C]", "costs of one rank's whole slice (default 1,1,1,0)")
      .value("memory-budget", "X", "mark which schedules fit X (that unit) on every rank")
      .value("chunks", "V[,V...]",
             "chunk counts for interleaved, interleaved-zb and looped-bfs, 2 to 64 (default: interleaved 2 "
             "and 4, the others 2: select_schedule's candidates)")
      .flag("best", "print only the name of the fastest schedule that fits (ties: less memory, then the "
                    "order of the list; select_schedule's rule)")
      .flag("json", "a list of JSON objects, one per schedule");
  command exp = sub("export", "one schedule as csv (PyTorch's action format)",
                    "Writes one CSV row per rank (rank 0 first); each cell is an action in PyTorch's\n"
                    "syntax {stage}{F|B|I|W}{microbatch} with the global stage index.\n"
                    "--schedule skip: skip paths (rank = stage): also --keep K, and optionally --memory C,\n"
                    "--latency FILE, --layout last|return, --method cost|rotation, --search N\n"
                    "(see 'pipesched paths --help'). Limits: as show and paths (see 'pipesched --help').");
  exp.schedule_options()
      .value("format", "FMT",
             "csv (PyTorch's action format, the default), chrome (trace JSON for Perfetto / chrome://tracing; "
             "1 cost unit = 1 ms), svg, text, routes (each micro-batch's stages, one line each, for "
             "'import --routes')")
      .flag("transfers", "csv: include SEND_F/RECV_F/SEND_B/RECV_B cells; chrome: simulate transfers on "
                         "per-rank comm tracks")
      .value("title", "TEXT", "svg: the picture's title")
      .value("keep", "K", "--schedule skip: stages each micro-batch visits")
      .value("memory", "C", "--schedule skip: at most C micro-batches in flight on any rank")
      .value("latency", "FILE", "--schedule skip: S x S link latencies")
      .value("layout", "last|return", "--schedule skip: where the head sits")
      .value("method", "cost|rotation", "--schedule skip: path assignment")
      .value("search", "N", "--schedule skip: rounds of local search")
      .value("order-search", "N", "--schedule skip: rounds of local search on the per-rank orders");
  command imp = sub("import", "read a PyTorch-format CSV, verify and simulate it",
                    "Reads a PyTorch-format CSV (one row per rank, cells like 2F0, 5I3, 1W7, optionally\n"
                    "SEND/RECV cells; a UTF-8 byte-order mark is skipped), verifies it and simulates it.\n"
                    "A file that cannot be read exits 2; a file that is not a valid schedule (a bad cell,\n"
                    "a blank line between rows, an unterminated quote, a table that fails verification)\n"
                    "exits 1 with what is wrong, its line and cell, and no metrics.\n"
                    "PyTorch's format sends every micro-batch through every stage; for DualPipe\n"
                    "give --routes ascending, for skip paths the routes 'export --format routes' writes.\n"
                    "--format svg|chrome|text draws a table that verifies (as export does).");
  imp.file = imp.app->add_option("file", "the CSV file")->type_name("FILE");
  imp.value("costs", "F,B,W[,C]", "per-stage pass costs and link latency (default 1,1,1,0)")
      .value("routes", "ascending|FILE",
             "micro-batches that skip stages: each visits the stages of its F cells in increasing order "
             "(DualPipe), or the routes in FILE, one line per micro-batch (export --format routes)")
      .value("ranks", "P", "the rank count when the last ranks have no cells (their lines are blank)")
      .value("format", "FMT",
             "draw the table instead of printing its lists and metrics: svg, chrome (trace JSON; with "
             "SEND/RECV cells, the transfers on per-rank comm tracks), text")
      .value("title", "TEXT", "svg: the picture's title (default: the file's name)")
      .flag("json", "one JSON object of metrics ({\"verified\":false,\"error\":...} when invalid)");
  command paths = sub("paths", "skip and reorder paths: one path per micro-batch, and the iteration time",
                      "Assigns each micro-batch a path through K of the S stages (stage s on rank s) and\n"
                      "prints one line per micro-batch, 'j: s0 s1 ...', then the simulated iteration time\n"
                      "next to the full pipeline's (every stage kept, same cap and costs).\n"
                      "Required: --ranks, --keep, --microbatches. Limits: stages x micro-batches at most\n"
                      "65536 and stages x stages x micro-batches at most 8388608; with the local search\n"
                      "(--method cost and --search above 0, the default; or --order-search above 0) at most\n"
                      "2048 and 65536.\n"
                      "--json: {\"paths\": [[...], ...], \"makespan\": T, \"full_pipeline_makespan\": T}");
  paths.value("ranks", "S", "ranks, one stage each (--stages: former name)", "stages")
      .value("keep", "K", "stages each micro-batch visits, stage 0 (and S-1 in layout last) counted")
      .value("microbatches", "M", "micro-batches per iteration")
      .value("memory", "C", "at most C micro-batches in flight on any rank (default M)")
      .value("costs", "F,B,W[,C]", "per-stage pass costs and link latency (default 1,1,1,0)")
      .value("latency", "FILE", "S x S link latencies (row = sender), replaces C")
      .value("layout", "last|return",
             "the head on the last stage (default), or on stage 0's rank with every path returning there for "
             "the loss")
      .value("method", "cost|rotation", "the cost-aware assignment (default) or the plain rotation rule")
      .value("search", "N", "cost: rounds of local search by simulation, 0 to 100 (default 2)")
      .value("order-search", "N",
             "rounds of local search on each rank's order of passes, the cap kept, 0 to 100 (default 0); "
             "the full pipeline gets the same")
      .flag("json", "one JSON object");
  try {
    if (argc >= 2 && std::strcmp(argv[1], "help") == 0) {
      std::cout << app.help();
      return 0;
    }
    try {
      app.parse(argc, argv);
    } catch (CLI::CallForHelp const&) {
      auto chosen = app.get_subcommands();
      std::cout << (chosen.empty() ? app.help() : chosen.front()->help("pipesched"));
      return 0;
    } catch (CLI::ParseError const& e) {
      throw usage_error(e.what());
    }
    auto chosen = app.get_subcommands();
    if (chosen.empty()) {
      auto rest = app.remaining();
      if (rest.empty()) {
        std::cout << app.help();
        return 2;
      }
      if (rest.front().rfind("-", 0) == 0) throw usage_error("unknown option " + rest.front());
      throw usage_error("unknown command '" + rest.front() + "'");
    }
    CLI::App* c = chosen.front();
    if (c == list.app) {
      list.collect();
      return cmd_list();
    }
    if (c == show.app) return cmd_show(show.collect());
    if (c == compare.app) return cmd_compare(compare.collect());
    if (c == exp.app) return cmd_export(exp.collect());
    if (c == imp.app) return cmd_import(imp.collect());
    if (c == paths.app) return cmd_paths(paths.collect());
    throw usage_error("unknown command '" + c->get_name() + "'");
  } catch (usage_error const& e) {
    std::cerr << "pipesched: " << e.what() << "\n(see 'pipesched --help')\n";
    return 2;
  } catch (std::exception const& e) {
    std::cerr << "pipesched: error: " << e.what() << "\n";
    return 1;
  }
}
