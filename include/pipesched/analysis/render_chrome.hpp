// pipesched: a simulated schedule as a Chrome trace (the JSON "traceEvents" format Perfetto opens).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "pipesched/analysis/json.hpp"
#include "pipesched/analysis/render_common.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/core/action_text.hpp"
#include "pipesched/core/table.hpp"

namespace pipesched {

/// How `render_chrome_trace` writes.
struct chrome_options {
  /// Microseconds per cost unit (trace timestamps are in microseconds). The default, 1000,
  /// shows one cost unit as one millisecond.
  double us_per_unit = 1000.0;
  std::string process_name = "pipesched"; ///< the process's name in the viewer
};

/// Writes the simulation as Chrome trace JSON: one process (pid 0) holding one track per
/// rank (tid r, named "rank r"), and for a lowered table whose transfers have times (as
/// `simulate_lowered` gives; `simulate` gives them zero length) one "rank r comm" track each
/// (tid p + r) with the transfers and flow arrows from each SEND to its RECV. Every compute
/// pass is a complete event ("ph":"X") named by its PyTorch action text ("2F3"), category
/// the pass ("forward", "backward", "backward_input", "backward_weight"), ts and dur in
/// microseconds (cost units × us_per_unit), args: rank, position in the rank's list,
/// stage, micro-batch, chunk and pass letter. A table that cannot be drawn gives an empty
/// trace whose otherData.error says why.
inline std::string render_chrome_trace(table const& t, simulation const& sim_in, chrome_options const& opt = {}) {
  simulation const sim = detail::draw_pairs(t, sim_in); // overlapped pairs side by side
  using detail::format_number;
  std::string out = "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"generator\":\"pipesched\",\"us_per_unit\":";
  out += format_number(opt.us_per_unit);
  if (const char* why = detail::render_mismatch(t, sim)) {
    out += ",\"error\":" + json_string(why) + "},\"traceEvents\":[]}\n";
    return out;
  }
  double const scale = opt.us_per_unit > 0 ? opt.us_per_unit : 1000.0;
  out += ",\"ranks\":" + std::to_string(t.ranks) + ",\"stages\":" + std::to_string(t.stages) +
         ",\"microbatches\":" + std::to_string(t.microbatches) + ",\"makespan\":" + format_number(sim.makespan) +
         ",\"bubble_ratio\":" + format_number(sim.bubble_ratio) + "},\"traceEvents\":[\n";

  std::size_t const p = t.lists.size();
  bool comm = false;
  if (t.lowered)
    for (std::size_t r = 0; r < p && !comm; ++r)
      for (std::size_t i = 0; i < t.lists[r].size(); ++i)
        if (is_transfer(t.lists[r][i].kind) && sim.times[r][i].end > sim.times[r][i].start) {
          comm = true;
          break;
        }

  bool first = true;
  auto event = [&](std::string const& body) {
    if (!first) out += ",\n";
    out += "{" + body + "}";
    first = false;
  };
  auto meta = [&](const char* what, std::size_t tid, std::string const& args) {
    event(std::string("\"name\":\"") + what + "\",\"ph\":\"M\",\"pid\":0,\"tid\":" + std::to_string(tid) +
          ",\"args\":{" + args + "}");
  };
  meta("process_name", 0, "\"name\":" + json_string(opt.process_name));
  for (std::size_t r = 0; r < p; ++r) {
    meta("thread_name", r, "\"name\":\"rank " + std::to_string(r) + "\"");
    meta("thread_sort_index", r, "\"sort_index\":" + std::to_string(2 * r));
    if (comm) {
      meta("thread_name", p + r, "\"name\":\"rank " + std::to_string(r) + " comm\"");
      meta("thread_sort_index", p + r, "\"sort_index\":" + std::to_string(2 * r + 1));
    }
  }
  auto ts = [&](double x) { return format_number(x * scale, 3); };

  // receives by (kind, stage, micro-batch), for the flow arrows
  auto key = [](op k, int s, int j) {
    return (static_cast<std::uint64_t>(k) << 40) | (static_cast<std::uint64_t>(s) << 20) |
           static_cast<std::uint64_t>(j);
  };
  std::unordered_map<std::uint64_t, std::size_t> recv_rank;
  if (comm)
    for (std::size_t r = 0; r < p; ++r)
      for (action const& a : t.lists[r])
        if (is_recv(a.kind)) recv_rank[key(a.kind, a.stage, a.mb)] = r;

  std::size_t flow_id = 0;
  for (std::size_t r = 0; r < p; ++r)
    for (std::size_t i = 0; i < t.lists[r].size(); ++i) {
      action const& a = t.lists[r][i];
      op_time const& tm = sim.times[r][i];
      std::string args = "\"rank\":" + std::to_string(r) + ",\"position\":" + std::to_string(i) +
                         ",\"stage\":" + std::to_string(a.stage) + ",\"microbatch\":" + std::to_string(a.mb) +
                         ",\"chunk\":" + std::to_string(a.chunk) + ",\"pass\":\"" + op_name(a.kind) + "\"";
      bool const pair_second = i > 0 && overlaps_next(t.lists[r][i - 1]) && makes_input_grad(a.kind);
      bool const pair_first = overlaps_next(a) && i + 1 < t.lists[r].size() && makes_input_grad(t.lists[r][i + 1].kind);
      if (pair_first || pair_second) args += ",\"overlapped\":true";
      std::size_t tid = r;
      if (is_transfer(a.kind)) {
        if (!comm || !(tm.end > tm.start)) continue;
        tid = p + r;
        if (a.peer != no_rank) args += ",\"peer\":" + std::to_string(a.peer);
      }
      std::string common = "\"pid\":0,\"tid\":" + std::to_string(tid) + ",\"ts\":" + ts(tm.start);
      event("\"name\":\"" + format_action(a) + "\",\"cat\":\"" + detail::pass_word(a.kind) + "\",\"ph\":\"X\"," +
            common + ",\"dur\":" + ts(tm.end - tm.start) + ",\"args\":{" + args + "}");
      if (!is_send(a.kind) || a.mb >= t.microbatches || a.stage >= t.stages) continue;
      bool act = a.kind == op::send_act;
      int other = act ? t.next_stage(a.mb, a.stage) : t.prev_stage(a.mb, a.stage);
      if (other < 0) continue;
      auto it = recv_rank.find(key(act ? op::recv_act : op::recv_grad, other, a.mb));
      if (it == recv_rank.end()) continue;
      std::string id = std::to_string(flow_id++);
      std::string name = "\"name\":\"" + std::string(act ? "activation" : "gradient") + "\",\"cat\":\"transfer\"";
      event(name + ",\"ph\":\"s\",\"id\":" + id + "," + common);
      event(name + ",\"ph\":\"f\",\"bp\":\"e\",\"id\":" + id + ",\"pid\":0,\"tid\":" + std::to_string(p + it->second) +
            ",\"ts\":" + ts(tm.start));
    }
  out += "\n]}\n";
  return out;
}

} // namespace pipesched
