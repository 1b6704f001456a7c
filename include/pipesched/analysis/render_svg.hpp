// pipesched: a simulated schedule as a self-contained SVG picture (for docs).
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "pipesched/analysis/render_common.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/core/table.hpp"

namespace pipesched {

/// How `render_svg` draws.
struct svg_options {
  std::string title{};     ///< the heading; empty: ranks, micro-batches, makespan and bubble
  double unit_px = 0;      ///< pixels per cost unit; 0: at least 18 px for the shortest pass
  double row_px = 22;      ///< height of a rank's row
  double max_width = 6000; ///< widest plot area in pixels (unit_px shrinks to fit)
  bool legend = true;
};

namespace detail {

/// Fill and text colours of a pass; odd chunks get the lighter shade.
struct svg_paint {
  const char* fill;
  const char* text;
};

constexpr svg_paint svg_color(op k, int chunk) {
  bool light = (chunk & 1) != 0;
  switch (k) {
  case op::forward: return light ? svg_paint{"#9cc3ee", "#1a1a1a"} : svg_paint{"#3b6fb6", "#ffffff"};
  case op::backward: return light ? svg_paint{"#a6dba0", "#1a1a1a"} : svg_paint{"#3f9c4a", "#ffffff"};
  case op::backward_input: return light ? svg_paint{"#9fd8d0", "#1a1a1a"} : svg_paint{"#23867a", "#ffffff"};
  case op::backward_weight: return light ? svg_paint{"#f5d58a", "#1a1a1a"} : svg_paint{"#d98c10", "#1a1a1a"};
  default: return svg_paint{"#8c8c8c", "#ffffff"};
  }
}

} // namespace detail

/// Draws the simulation as SVG: a title, one row per rank (rank 0 on top) with a box per
/// compute pass coloured by pass (F blue, B green, I teal, W amber; odd chunks a lighter
/// shade) holding its micro-batch number and a tooltip, a thin grey lane under each row for
/// transfers when they have times (`simulate_lowered`), a time axis with ticks in cost
/// units, and a legend; an overlapped pair's two halves side by side over the pair's time,
/// inside one dark outline. Self-contained XML with no scripts or external references.
inline std::string render_svg(table const& t, simulation const& sim_in, svg_options const& opt = {}) {
  simulation const sim = detail::draw_pairs(t, sim_in); // overlapped pairs side by side
  using detail::format_number;
  std::string const head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  if (const char* why = detail::render_mismatch(t, sim))
    return head +
           "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"40\"><text x=\"8\" y=\"24\" "
           "font-family=\"sans-serif\" font-size=\"13\">pipesched: cannot draw: " +
           detail::xml_escape(why) + "</text></svg>\n";

  std::size_t const p = t.lists.size();
  double const span = sim.makespan > 0 ? sim.makespan : 1.0;
  double const dmin = detail::smallest_duration(t, sim);
  double unit = opt.unit_px;
  if (!(unit > 0)) {
    unit = 900.0 / span;
    if (dmin > 0 && 18.0 / dmin > unit) unit = 18.0 / dmin;
  }
  double const max_w = opt.max_width > 100 ? opt.max_width : 100;
  if (unit * span > max_w) unit = max_w / span;
  double const row_h = opt.row_px >= 8 ? opt.row_px : 8;

  bool comm = false, used[4][2] = {};
  for (std::size_t r = 0; r < p; ++r)
    for (std::size_t i = 0; i < t.lists[r].size(); ++i) {
      action const& a = t.lists[r][i];
      if (is_compute(a.kind)) used[static_cast<int>(a.kind)][a.chunk & 1] = true;
      else if (t.lowered && sim.times[r][i].end > sim.times[r][i].start) comm = true;
    }
  double const lane_h = comm ? 6 : 0;
  double const pitch = row_h + lane_h + 6;
  double const left = 64, right = 24, top = 44;
  double const plot_w = unit * span;
  double const rows_bottom = top + pitch * static_cast<double>(p);
  double const axis_y = rows_bottom + 2;
  double const legend_y = axis_y + 40;
  struct legend_entry {
    const char* fill;
    std::string text;
  };
  std::vector<legend_entry> legend;
  if (opt.legend) {
    const char* names[4] = {"F forward", "B backward", "I input gradient", "W weight gradient"};
    for (int k = 0; k < 4; ++k)
      for (int c = 0; c < 2; ++c)
        if (used[k][c])
          legend.push_back({detail::svg_color(static_cast<op>(k), c).fill,
                            std::string(names[k]) + (c ? (t.chunks > 2 ? ", odd chunks" : ", chunk 1") : "")});
    if (comm) {
      legend.push_back({"#8c8c8c", "send"});
      legend.push_back({"#bdbdbd", "receive"});
    }
  }
  auto entry_w = [](legend_entry const& e) { return 28 + 6.2 * static_cast<double>(e.text.size()); };
  double legend_w = 0;
  for (auto const& e : legend) legend_w += entry_w(e);
  double const width = left + (plot_w > legend_w ? plot_w : legend_w) + right;
  double const height = (opt.legend ? legend_y + 22 : axis_y + 34);
  auto x_of = [&](double tm) { return format_number(left + tm * unit, 2); };

  std::string title = opt.title;
  if (title.empty())
    title = std::to_string(t.ranks) + " ranks, " + std::to_string(t.stages) + " stages, " +
            std::to_string(t.microbatches) + " micro-batches: makespan " + format_number(sim.makespan) + ", bubble " +
            format_number(100.0 * sim.bubble_ratio, 1) + "%";

  std::string out = head;
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + format_number(width, 0) + "\" height=\"" +
         format_number(height, 0) + "\" viewBox=\"0 0 " + format_number(width, 0) + " " + format_number(height, 0) +
         "\" font-family=\"sans-serif\">\n";
  out += "<title>" + detail::xml_escape(title) + "</title>\n";
  out += "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  out += "<text x=\"" + format_number(left, 0) + "\" y=\"24\" font-size=\"15\" font-weight=\"bold\" fill=\"#1a1a1a\">" +
         detail::xml_escape(title) + "</text>\n";

  for (std::size_t r = 0; r < p; ++r) {
    double y = top + pitch * static_cast<double>(r);
    out += "<text x=\"" + format_number(left - 8, 0) + "\" y=\"" + format_number(y + row_h / 2, 2) +
           "\" font-size=\"12\" text-anchor=\"end\" dominant-baseline=\"central\" fill=\"#1a1a1a\">rank " +
           std::to_string(r) + "</text>\n";
    out += "<rect x=\"" + x_of(0) + "\" y=\"" + format_number(y, 2) + "\" width=\"" + format_number(plot_w, 2) +
           "\" height=\"" + format_number(row_h, 2) + "\" fill=\"#f2f2f2\"/>\n";
    for (std::size_t i = 0; i < t.lists[r].size(); ++i) {
      action const& a = t.lists[r][i];
      op_time const& tm = sim.times[r][i];
      double w = (tm.end - tm.start) * unit;
      if (is_transfer(a.kind)) {
        if (!comm || !(w > 0)) continue;
        out += "<rect x=\"" + x_of(tm.start) + "\" y=\"" + format_number(y + row_h + 1, 2) + "\" width=\"" +
               format_number(w, 2) + "\" height=\"" + format_number(lane_h - 1, 2) + "\" fill=\"" +
               (is_send(a.kind) ? "#8c8c8c" : "#bdbdbd") + "\"><title>" + op_name(a.kind) + " stage " +
               std::to_string(a.stage) + " micro-batch " + std::to_string(a.mb) + ", " + format_number(tm.start) +
               " to " + format_number(tm.end) + "</title></rect>\n";
        continue;
      }
      detail::svg_paint paint = detail::svg_color(a.kind, a.chunk);
      std::string label = detail::action_label(a, t.chunks);
      out += "<rect x=\"" + x_of(tm.start) + "\" y=\"" + format_number(y, 2) + "\" width=\"" + format_number(w, 2) +
             "\" height=\"" + format_number(row_h, 2) + "\" fill=\"" + paint.fill +
             "\" stroke=\"#ffffff\" stroke-width=\"0.75\"><title>" + label + ": stage " + std::to_string(a.stage) +
             ", chunk " + std::to_string(a.chunk) + ", " + format_number(tm.start) + " to " + format_number(tm.end) +
             "</title></rect>\n";
      std::string num = std::to_string(a.mb);
      double font = row_h * 0.5 < 11 ? row_h * 0.5 : 11;
      if (w >= 0.62 * font * static_cast<double>(num.size()) + 2)
        out += "<text x=\"" + format_number(left + (tm.start + tm.end) / 2 * unit, 2) + "\" y=\"" +
               format_number(y + row_h / 2, 2) + "\" font-size=\"" + format_number(font, 1) +
               "\" text-anchor=\"middle\" dominant-baseline=\"central\" fill=\"" + paint.text + "\">" + num +
               "</text>\n";
      if (i > 0 && overlaps_next(t.lists[r][i - 1]) && makes_input_grad(a.kind)) {
        // an overlapped pair: one outline around its two halves (drawn side by side)
        double const from = sim.times[r][i - 1].start;
        out += "<rect x=\"" + x_of(from) + "\" y=\"" + format_number(y + 0.75, 2) + "\" width=\"" +
               format_number((tm.end - from) * unit, 2) + "\" height=\"" + format_number(row_h - 1.5, 2) +
               "\" fill=\"none\" stroke=\"#1a1a1a\" stroke-width=\"1.5\"><title>overlapped pair: " +
               detail::action_label(t.lists[r][i - 1], t.chunks) + " with " + label + ", " + format_number(from) +
               " to " + format_number(tm.end) + "</title></rect>\n";
      }
    }
  }

  // time axis
  out += "<line x1=\"" + x_of(0) + "\" y1=\"" + format_number(axis_y, 2) + "\" x2=\"" + x_of(span) + "\" y2=\"" +
         format_number(axis_y, 2) + "\" stroke=\"#1a1a1a\" stroke-width=\"1\"/>\n";
  int most = static_cast<int>(plot_w / 48) > 1 ? static_cast<int>(plot_w / 48) : 1;
  double step = detail::nice_step(span, most);
  for (long k = 0; static_cast<double>(k) * step <= span * (1 + 1e-9); ++k) {
    double tm = static_cast<double>(k) * step;
    out += "<line x1=\"" + x_of(tm) + "\" y1=\"" + format_number(axis_y, 2) + "\" x2=\"" + x_of(tm) + "\" y2=\"" +
           format_number(axis_y + 5, 2) + "\" stroke=\"#1a1a1a\" stroke-width=\"1\"/>\n";
    out += "<text x=\"" + x_of(tm) + "\" y=\"" + format_number(axis_y + 16, 2) +
           "\" font-size=\"10\" text-anchor=\"middle\" fill=\"#1a1a1a\">" + format_number(tm, 3) + "</text>\n";
  }
  out += "<text x=\"" + x_of(span) + "\" y=\"" + format_number(axis_y + 30, 2) +
         "\" font-size=\"10\" text-anchor=\"end\" fill=\"#555555\">time (cost units)</text>\n";

  double x = left;
  for (auto const& e : legend) {
    out += "<rect x=\"" + format_number(x, 2) + "\" y=\"" + format_number(legend_y, 2) +
           "\" width=\"14\" height=\"14\" fill=\"" + e.fill + "\"/>\n";
    out += "<text x=\"" + format_number(x + 18, 2) + "\" y=\"" + format_number(legend_y + 7, 2) +
           "\" font-size=\"11\" dominant-baseline=\"central\" fill=\"#1a1a1a\">" + detail::xml_escape(e.text) +
           "</text>\n";
    x += entry_w(e);
  }
  out += "</svg>\n";
  return out;
}

} // namespace pipesched
