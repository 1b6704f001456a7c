// pipesched: a schedule as a text grid — one row per rank, time flowing right.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "pipesched/analysis/render_common.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/core/table.hpp"

namespace pipesched {

/// How `render_text` draws.
struct text_options {
  bool color = false;           ///< ANSI colours (for a terminal)
  int width = 0;                ///< wrap the grid into bands at most this many characters wide; 0: no wrap
  double resolution = 0;        ///< time per cell; 0: chosen from the smallest pass duration
  bool gap = true;              ///< a blank after the longest label, so cells read apart
  bool legend = true;           ///< a legend line at the end
  std::string title{};          ///< a first line; none when empty
  std::size_t max_cells = 4096; ///< most cells per row (the resolution grows to fit)
};

namespace detail {

/// ANSI colours of a pass: background by pass, brighter for odd chunks.
inline std::string ansi_color(op k, int chunk) {
  int bg = k == op::forward ? 44 : k == op::backward ? 42 : k == op::backward_input ? 46 : 43;
  if (chunk & 1) bg += 60; // bright variant
  int fg = (k == op::forward && !(chunk & 1)) ? 97 : 30;
  return "\x1b[" + std::to_string(fg) + ";" + std::to_string(bg) + "m";
}

inline constexpr const char* ansi_reset = "\x1b[0m";

} // namespace detail

/// Draws the simulated schedule as text: a summary line, a time axis, one row per rank in
/// which each cell is one time step (`resolution`, by default the largest step that puts
/// every pass start and end on the grid, at most the smallest pass duration). A pass shows
/// its letter and micro-batch in its first cell ("F3", "B3", "I3", "W3"; lower case for
/// chunk 1 and other odd chunks; ":k" after it when there are more than two chunks) and
/// '-' in the cells it continues over ('-' is a blank when coloured); idle cells show '.'.
/// Transfers are not drawn. The halves of an overlapped pair are drawn side by side, each over
/// half of the pair's time. With `width`, long rows wrap into bands of whole cells (a pass
/// that crosses into the next band continues there with '-').
inline std::string render_text(table const& t, simulation const& sim_in, text_options const& opt = {}) {
  simulation const sim = detail::draw_pairs(t, sim_in); // overlapped pairs side by side
  if (const char* why = detail::render_mismatch(t, sim)) return std::string("pipesched: cannot draw: ") + why + "\n";
  std::size_t const max_cells = opt.max_cells > 0 ? opt.max_cells : 4096;
  double const span = sim.makespan > 0 ? sim.makespan : 1.0;
  double res = opt.resolution > 0 ? opt.resolution : detail::grid_resolution(t, sim, max_cells);
  if (span / res > static_cast<double>(max_cells)) res = span / static_cast<double>(max_cells);
  std::size_t const ncells = static_cast<std::size_t>(std::ceil(span / res - 1e-9)) > 0
                                 ? static_cast<std::size_t>(std::ceil(span / res - 1e-9))
                                 : 1;

  // labels and the cell width
  std::size_t label_w = 1;
  for (auto const& list : t.lists)
    for (action const& a : list)
      if (is_compute(a.kind)) {
        std::size_t n = detail::action_label(a, t.chunks).size();
        label_w = n > label_w ? n : label_w;
      }
  std::size_t const cw = label_w + (opt.gap ? 1 : 0);

  // owner of each cell: index in the rank's list, -1 when idle
  std::size_t const p = t.lists.size();
  std::vector<std::vector<int>> owner(p, std::vector<int>(ncells, -1));
  bool used[4][2] = {};
  for (std::size_t r = 0; r < p; ++r)
    for (std::size_t i = 0; i < t.lists[r].size(); ++i) {
      action const& a = t.lists[r][i];
      if (!is_compute(a.kind)) continue;
      used[static_cast<int>(a.kind)][a.chunk & 1] = true;
      double s = sim.times[r][i].start / res, e = sim.times[r][i].end / res;
      long long c0 = std::llround(s), c1 = std::llround(e);
      if (c1 <= c0) c1 = c0 + 1;
      if (c0 < 0) c0 = 0;
      for (long long c = c0; c < c1 && c < static_cast<long long>(ncells); ++c)
        if (owner[r][static_cast<std::size_t>(c)] < 0) owner[r][static_cast<std::size_t>(c)] = static_cast<int>(i);
    }

  std::string const rank_prefix = "rank ";
  std::size_t const lw = rank_prefix.size() + std::to_string(p - 1).size() + 1;
  std::size_t per_band = ncells;
  if (opt.width > 0) {
    std::size_t room = static_cast<std::size_t>(opt.width) > lw ? static_cast<std::size_t>(opt.width) - lw : 0;
    per_band = room / cw > 0 ? room / cw : 1;
  }
  // ticks every `tick` cells, at least 8 characters apart
  std::size_t tick = 1;
  for (std::size_t k = 1;; k *= 10) {
    if (k * cw >= 8) {
      tick = k;
      break;
    }
    if (2 * k * cw >= 8) {
      tick = 2 * k;
      break;
    }
    if (5 * k * cw >= 8) {
      tick = 5 * k;
      break;
    }
  }

  std::string out;
  if (!opt.title.empty()) out += opt.title + "\n";
  out += "ranks " + std::to_string(t.ranks) + ", stages " + std::to_string(t.stages) + ", micro-batches " +
         std::to_string(t.microbatches) + "; makespan " + detail::format_number(sim.makespan) + ", bubble " +
         detail::format_number(100.0 * sim.bubble_ratio, 1) + "%; one cell = " + detail::format_number(res) +
         " time unit" + (res == 1.0 ? "" : "s") + "\n";

  for (std::size_t b0 = 0; b0 < ncells; b0 += per_band) {
    std::size_t const b1 = b0 + per_band < ncells ? b0 + per_band : ncells;
    if (b0 > 0) out += "\n";
    // axis: time labels over a ruler
    std::string labels(lw, ' '), ruler(lw, ' ');
    labels.replace(0, 4, "time");
    for (std::size_t c = b0; c < b1; ++c) {
      ruler += c % tick == 0 ? '|' : '-';
      ruler.append(cw - 1, '-');
    }
    for (std::size_t c = b0; c < b1; ++c) {
      if (c % tick != 0) continue;
      std::string lab = detail::format_number(static_cast<double>(c) * res, 3);
      std::size_t at = lw + (c - b0) * cw;
      if (labels.size() < at) labels.append(at - labels.size(), ' ');
      if (labels.size() > at) continue; // previous label too long: skip this one
      labels += lab;
    }
    out += labels + "\n" + ruler + "\n";
    for (std::size_t r = 0; r < p; ++r) {
      std::string row = rank_prefix + std::to_string(r);
      row.append(lw - row.size(), ' ');
      int prev = -2;
      bool colored = false;
      for (std::size_t c = b0; c < b1; ++c) {
        int o = owner[r][c];
        bool first = o >= 0 && o != prev && (c == 0 || owner[r][c - 1] != o);
        if (opt.color && o != prev) {
          if (colored) row += detail::ansi_reset;
          colored = false;
          if (o >= 0) {
            action const& a = t.lists[r][static_cast<std::size_t>(o)];
            row += detail::ansi_color(a.kind, a.chunk);
            colored = true;
          }
        }
        if (o < 0) {
          row += '.';
          row.append(cw - 1, ' ');
        } else if (first) {
          std::string lab = detail::action_label(t.lists[r][static_cast<std::size_t>(o)], t.chunks);
          row += lab;
          row.append(cw - lab.size(), ' ');
        } else {
          row.append(cw, opt.color ? ' ' : '-');
        }
        prev = o;
      }
      if (colored) row += detail::ansi_reset;
      while (!opt.color && !row.empty() && row.back() == ' ') row.pop_back();
      out += row + "\n";
    }
  }

  if (opt.legend) {
    std::string leg = "legend:";
    char const* names[4] = {"forward", "backward (input and weight)", "input-gradient backward",
                            "weight-gradient backward"};
    bool odd = false;
    for (int k = 0; k < 4; ++k) {
      odd = odd || used[k][1];
      if (!used[k][0] && !used[k][1]) continue;
      leg += ' ';
      if (opt.color) leg += detail::ansi_color(static_cast<op>(k), 0);
      leg += detail::pass_letter(static_cast<op>(k), 0);
      if (opt.color) leg += detail::ansi_reset;
      leg += std::string(" ") + names[k] + ",";
    }
    leg += " . idle";
    if (odd) leg += "; lower case: chunk 1" + std::string(t.chunks > 2 ? " and other odd chunks" : "");
    if (t.chunks > 2) leg += "; :k after the micro-batch: chunk k";
    if (!opt.color) leg += "; - the pass continues";
    out += leg + "\n";
  }
  return out;
}

} // namespace pipesched
