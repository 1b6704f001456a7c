// pipesched: what the text, Chrome-trace and SVG renderers share (labels, numbers, time grid).
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/core/table.hpp"

namespace pipesched::detail {

/// Why a simulation cannot be drawn for a table, or nullptr when it can.
inline const char* render_mismatch(table const& t, simulation const& sim) {
  if (!t.ok()) return "the table carries an error";
  if (!sim.ok()) return "the simulation failed";
  if (t.ranks < 1 || t.lists.size() != static_cast<std::size_t>(t.ranks)) return "the table has no ranks";
  if (sim.times.size() != t.lists.size()) return "the simulation is not of this table";
  for (std::size_t r = 0; r < t.lists.size(); ++r) {
    if (sim.times[r].size() != t.lists[r].size()) return "the simulation is not of this table";
    for (op_time const& tm : sim.times[r])
      if (!std::isfinite(tm.start) || !std::isfinite(tm.end) || tm.start < 0 || tm.end < tm.start)
        return "the simulation has negative, reversed or non-finite times";
  }
  if (!std::isfinite(sim.makespan) || sim.makespan < 0) return "the simulation has a non-finite makespan";
  return nullptr;
}

/// The simulation as drawn: the two halves of an overlapped pair share one interval in the
/// simulation; a picture puts them side by side, the forward in its first half and the
/// backward in its second, so both stay visible (a pair's box is the pair's whole time).
inline simulation draw_pairs(table const& t, simulation const& sim) {
  simulation out = sim;
  if (out.times.size() != t.lists.size()) return out;
  for (std::size_t r = 0; r < t.lists.size(); ++r) {
    auto const& l = t.lists[r];
    if (out.times[r].size() != l.size()) return sim;
    for (std::size_t i = 0; i + 1 < l.size(); ++i)
      if (overlaps_next(l[i]) && makes_input_grad(l[i + 1].kind)) {
        op_time& a = out.times[r][i];
        op_time& b = out.times[r][i + 1];
        double const mid = (a.start + a.end) / 2;
        a.end = mid;
        b.start = mid;
      }
  }
  return out;
}

/// The pass letter: F, B, I, W (upper case for even chunks, lower case for odd chunks).
constexpr char pass_letter(op k, int chunk) {
  char c = k == op::forward ? 'F' : k == op::backward ? 'B' : k == op::backward_input ? 'I' : 'W';
  return (chunk & 1) ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr const char* pass_word(op k) {
  switch (k) {
  case op::forward: return "forward";
  case op::backward: return "backward";
  case op::backward_input: return "backward_input";
  case op::backward_weight: return "backward_weight";
  case op::send_act: return "send_activation";
  case op::recv_act: return "recv_activation";
  case op::send_grad: return "send_gradient";
  case op::recv_grad: return "recv_gradient";
  }
  return "unknown";
}

/// Short label of a compute action: pass letter and micro-batch ("F3", "b3"); with more
/// than two chunks the chunk follows after a colon ("F3:2").
inline std::string action_label(action const& a, int chunks) {
  std::string s(1, pass_letter(a.kind, a.chunk));
  s += std::to_string(a.mb);
  if (chunks > 2) {
    s += ':';
    s += std::to_string(a.chunk);
  }
  return s;
}

/// Locale-independent shortest decimal for a double, rounded to `digits` decimals first.
inline std::string format_number(double v, int digits = 6) {
  if (!std::isfinite(v)) return "0";
  double scale = std::pow(10.0, digits);
  double r = std::fabs(v) < 1e15 ? std::round(v * scale) / scale : v;
  if (r == 0) r = 0; // no "-0"
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, r);
  return std::string(buf, res.ptr);
}

/// Escapes text for XML character data and attribute values.
inline std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    case '\'': out += "&apos;"; break;
    default:
      // control characters other than tab and newline are not allowed in XML 1.0
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') out += ' ';
      else out += c;
    }
  }
  return out;
}

/// Smallest positive duration of a compute action, or 0 when there is none.
inline double smallest_duration(table const& t, simulation const& sim) {
  double best = 0;
  for (std::size_t r = 0; r < t.lists.size(); ++r)
    for (std::size_t i = 0; i < t.lists[r].size(); ++i) {
      if (!is_compute(t.lists[r][i].kind)) continue;
      double d = sim.times[r][i].end - sim.times[r][i].start;
      if (d > 0 && (best == 0 || d < best)) best = d;
    }
  return best;
}

/// Time per grid cell: the largest min_duration / k (k = 1..12) that puts every start and end
/// of a compute action on the grid; min_duration itself (times rounded) when none does; and
/// never so small that the grid exceeds max_cells cells.
inline double grid_resolution(table const& t, simulation const& sim, std::size_t max_cells) {
  double const dmin = smallest_duration(t, sim);
  double const span = sim.makespan > 0 ? sim.makespan : 1.0;
  if (dmin <= 0) return span / static_cast<double>(max_cells > 0 ? max_cells : 1);
  auto on_grid = [&](double res) {
    for (std::size_t r = 0; r < t.lists.size(); ++r)
      for (std::size_t i = 0; i < t.lists[r].size(); ++i) {
        if (!is_compute(t.lists[r][i].kind)) continue;
        for (double x : {sim.times[r][i].start, sim.times[r][i].end}) {
          double q = x / res;
          if (std::fabs(q - std::round(q)) > 1e-6 * (q > 1 ? q : 1)) return false;
        }
      }
    return true;
  };
  double res = dmin;
  for (int k = 1; k <= 12; ++k)
    if (on_grid(dmin / k)) {
      res = dmin / k;
      break;
    }
  if (max_cells > 0 && span / res > static_cast<double>(max_cells)) res = span / static_cast<double>(max_cells);
  return res;
}

/// A tick step of 1, 2 or 5 times a power of ten giving at most `most` ticks over `span`.
inline double nice_step(double span, int most) {
  if (!(span > 0) || most < 1) return 1;
  double raw = span / most;
  double p10 = std::pow(10.0, std::floor(std::log10(raw)));
  for (double f : {1.0, 2.0, 5.0, 10.0})
    if (f * p10 >= raw) return f * p10;
  return 10 * p10;
}

} // namespace pipesched::detail
