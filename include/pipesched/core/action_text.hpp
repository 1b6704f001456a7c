// pipesched: PyTorch's action syntax ("2F0", "5I3", "1W7", "0SEND_F1"), parsed in constexpr.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pipesched/core/table.hpp"
#include "pipesched/lower/lower.hpp"

namespace pipesched {

/// The text of one action in PyTorch's syntax: `{stage}{F|B|I|W}{micro-batch}` for compute,
/// `{stage}{SEND_F|RECV_F|SEND_B|RECV_B}{micro-batch}` for transfers (the stage is the one
/// that sends for SEND_*, the one that receives for RECV_*).
inline std::string format_action(action const& a) {
  std::string s = std::to_string(a.stage);
  s += op_name(a.kind);
  s += std::to_string(a.mb);
  return s;
}

namespace detail {

struct parsed_cell {
  op kind = op::forward;
  int stage = 0;
  int mb = 0;
};

constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/// Reads a decimal number at s[i..]; -1 when absent, -2 when above limit.
constexpr long read_number(std::string_view s, std::size_t& i, long limit) {
  if (i >= s.size() || !is_digit(s[i])) return -1;
  long v = 0;
  while (i < s.size() && is_digit(s[i])) {
    v = v * 10 + (s[i] - '0');
    if (v > limit) return -2;
    ++i;
  }
  return v;
}

constexpr bool parse_cell(std::string_view cell, parsed_cell& out, const char*& why) {
  std::size_t i = 0;
  long stage = read_number(cell, i, max_index - 1);
  if (stage == -1) {
    why = "a cell must start with the stage number";
    return false;
  }
  if (stage == -2) {
    why = "stage number too large";
    return false;
  }
  constexpr std::string_view names[] = {"SEND_F", "RECV_F", "SEND_B", "RECV_B", "F", "B", "I", "W"};
  constexpr op kinds[] = {op::send_act, op::recv_act, op::send_grad, op::recv_grad,
                          op::forward,  op::backward, op::backward_input, op::backward_weight};
  std::string_view rest = cell.substr(i);
  bool found = false;
  for (std::size_t k = 0; k < 8; ++k)
    if (rest.substr(0, names[k].size()) == names[k]) {
      out.kind = kinds[k];
      i += names[k].size();
      found = true;
      break;
    }
  if (!found) {
    why = "unknown pass: expected F, B, I, W, SEND_F, RECV_F, SEND_B or RECV_B after the stage";
    return false;
  }
  long mb = read_number(cell, i, max_index - 1);
  if (mb == -1) {
    why = "a micro-batch number must follow the pass";
    return false;
  }
  if (mb == -2) {
    why = "micro-batch number too large";
    return false;
  }
  if (i != cell.size()) {
    why = "unexpected characters after the micro-batch number";
    return false;
  }
  out.stage = static_cast<int>(stage);
  out.mb = static_cast<int>(mb);
  return true;
}

} // namespace detail

/// Parses per-rank action lists: one row per rank (rows separated by newlines; trailing
/// empty rows ignored), cells separated by commas, spaces around cells ignored, empty cells
/// skipped. Infers the placement from which row holds each stage (each stage on exactly one
/// row), S = largest stage + 1, m = largest micro-batch + 1. With transfer cells the table
/// is marked lowered and given buffer slots. Errors: errc::parse_error with rank = row,
/// position = cell index, and a detail.
constexpr table parse_actions(std::string_view text) {
  constexpr std::size_t max_text = std::size_t{64} << 20;
  if (text.size() > max_text) return failed({errc::parse_error, -1, -1, -1, -1, "input larger than 64 MiB"});
  std::vector<std::vector<detail::parsed_cell>> rows;
  bool transfers = false, split = false, any_backward = false;
  std::size_t pos = 0;
  int max_stage = -1, max_mb = -1;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    if (rows.size() >= static_cast<std::size_t>(max_ranks))
      return failed({errc::parse_error, static_cast<int>(rows.size()), -1, -1, -1, "more than 4096 rows"});
    rows.emplace_back();
    auto& row = rows.back();
    int const r = static_cast<int>(rows.size()) - 1;
    std::size_t cpos = 0;
    int cell_index = 0;
    while (cpos <= line.size()) {
      std::size_t comma = line.find(',', cpos);
      if (comma == std::string_view::npos) comma = line.size();
      std::string_view cell = line.substr(cpos, comma - cpos);
      while (!cell.empty() && detail::is_space(cell.front())) cell.remove_prefix(1);
      while (!cell.empty() && detail::is_space(cell.back())) cell.remove_suffix(1);
      if (!cell.empty()) {
        detail::parsed_cell c{};
        const char* why = nullptr;
        if (!detail::parse_cell(cell, c, why)) return failed({errc::parse_error, r, cell_index, -1, -1, why});
        transfers = transfers || is_transfer(c.kind);
        split = split || c.kind == op::backward_input || c.kind == op::backward_weight;
        any_backward = any_backward || (is_compute(c.kind) && c.kind != op::forward);
        if (is_compute(c.kind)) max_stage = c.stage > max_stage ? c.stage : max_stage;
        max_mb = c.mb > max_mb ? c.mb : max_mb;
        row.push_back(c);
      }
      ++cell_index;
      cpos = comma + 1;
    }
    pos = eol + 1;
  }
  while (!rows.empty() && rows.back().empty()) rows.pop_back();
  if (rows.empty()) return failed({errc::parse_error, 0, -1, -1, -1, "no actions"});
  if (max_stage < 0) return failed({errc::parse_error, 0, -1, -1, -1, "no compute actions"});
  int const p = static_cast<int>(rows.size());
  int const S = max_stage + 1;
  table t{};
  t.ranks = p;
  t.microbatches = max_mb + 1;
  t.stages = S;
  t.place = placement::custom;
  t.split_backward = split;
  t.forward_only = !any_backward;
  t.stage_rank.assign(static_cast<std::size_t>(S), -1);
  t.stage_chunk.assign(static_cast<std::size_t>(S), 0);
  for (int r = 0; r < p; ++r)
    for (std::size_t i = 0; i < rows[static_cast<std::size_t>(r)].size(); ++i) {
      auto const& c = rows[static_cast<std::size_t>(r)][i];
      if (!is_compute(c.kind)) continue;
      int& owner = t.stage_rank[static_cast<std::size_t>(c.stage)];
      if (owner >= 0 && owner != r)
        return failed({errc::parse_error, r, static_cast<int>(i), c.stage, c.mb, "stage appears on two rows"});
      owner = r;
    }
  std::vector<int> held(static_cast<std::size_t>(p), 0);
  for (int s = 0; s < S; ++s) {
    int r = t.stage_rank[static_cast<std::size_t>(s)];
    if (r < 0) return failed({errc::parse_error, -1, -1, s, -1, "a stage below the largest one has no action"});
    t.stage_chunk[static_cast<std::size_t>(s)] = held[static_cast<std::size_t>(r)]++;
  }
  int most = 0;
  for (int h : held) most = h > most ? h : most;
  t.chunks = most;
  if (S % p == 0) {
    // recognise the named placements so tools can report them
    bool loop = true, vee = S == 2 * p;
    for (int s = 0; s < S; ++s) {
      loop = loop && t.stage_rank[static_cast<std::size_t>(s)] == s % p;
      vee = vee && t.stage_rank[static_cast<std::size_t>(s)] == (s < p ? s : 2 * p - 1 - s);
    }
    t.place = loop ? placement::loop : (vee ? placement::v_shape : placement::custom);
  }
  t.lists.assign(static_cast<std::size_t>(p), {});
  for (int r = 0; r < p; ++r)
    for (std::size_t i = 0; i < rows[static_cast<std::size_t>(r)].size(); ++i) {
      auto const& c = rows[static_cast<std::size_t>(r)][i];
      if (c.stage >= S)
        return failed({errc::parse_error, r, static_cast<int>(i), c.stage, c.mb, "a transfer names a stage that has no pass"});
      action a = make_action(c.kind, c.stage, c.mb, t.stage_chunk[static_cast<std::size_t>(c.stage)]);
      if (is_transfer(c.kind)) {
        bool to_next = c.kind == op::send_act || c.kind == op::recv_grad;
        int other = to_next ? c.stage + 1 : c.stage - 1;
        if (other < 0 || other >= S)
          return failed({errc::parse_error, r, static_cast<int>(i), c.stage, c.mb, "a transfer past the first or last stage"});
        a.peer = static_cast<std::uint16_t>(t.stage_rank[static_cast<std::size_t>(other)]);
      }
      t.lists[static_cast<std::size_t>(r)].push_back(a);
    }
  if (transfers) {
    t.lowered = true;
    // slots need a complete table; an incomplete one is reported by verify()
    detail::op_index ix{};
    if (detail::build_index(t, ix).ok() && detail::check_coverage(t, ix).ok()) detail::assign_slots(t);
  }
  return t;
}

/// Formats a table as per-rank lines of comma-separated actions (compute actions only
/// unless `with_transfers`).
inline std::string format_actions(table const& t, bool with_transfers = false) {
  std::string out;
  for (auto const& list : t.lists) {
    bool first = true;
    for (action const& a : list) {
      if (!with_transfers && !is_compute(a.kind)) continue;
      if (!first) out += ',';
      out += format_action(a);
      first = false;
    }
    out += '\n';
  }
  return out;
}

} // namespace pipesched
