// pipesched: per-rank action lists as CSV in PyTorch's format (export and import).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pipesched/pipeline/verify.hpp"
#include "pipesched/core/action_text.hpp"
#include "pipesched/core/table.hpp"
#include "pipesched/pipeline/lower.hpp"

namespace pipesched {

/// PyTorch's two CSV flavours: compute actions only (what `_load_csv` reads by default), or
/// compute and transfer actions (its "compute_comms" format).
enum class csv_format : std::uint8_t { compute_only, compute_comms };

/// Writes one row per rank (rank 0 first), each cell one action in PyTorch's syntax
/// `{stage}{F|B|I|W}{micro-batch}` with the global stage index, an overlapped pair as
/// `({F};{B or I})OVERLAP_F_B`; with compute_comms the
/// transfers of a lowered table too: `{stage}SEND_F{mb}` / `{stage}SEND_B{mb}` carry the
/// sending stage, `{stage}RECV_F{mb}` / `{stage}RECV_B{mb}` the receiving stage. Rows end
/// with '\n'. A failed table gives an empty string.
inline std::string to_csv(table const& t, csv_format format = csv_format::compute_only) {
  std::string out;
  if (!t.ok()) return out;
  for (auto const& list : t.lists) {
    bool first = true;
    for (std::size_t i = 0; i < list.size(); ++i) {
      action const& a = list[i];
      if (format == csv_format::compute_only && !is_compute(a.kind)) continue;
      if (!first) out += ',';
      first = false;
      if (overlaps_next(a) && i + 1 < list.size()) {
        // an overlapped pair: PyTorch's (F;B)OVERLAP_F_B
        out += '(';
        out += format_action(a);
        out += ';';
        out += format_action(list[++i]);
        out += ")OVERLAP_F_B";
        continue;
      }
      out += format_action(a);
    }
    out += '\n';
  }
  return out;
}

/// Bounds on what `from_csv` accepts; inputs beyond them are refused with a diagnostic.
struct csv_limits {
  std::size_t max_bytes = std::size_t{64} << 20;  ///< text size
  int max_rows = max_ranks;                       ///< ranks
  int max_index = pipesched::max_index;           ///< stages and micro-batches (S, m at most this)
  std::size_t max_actions = std::size_t{1} << 22; ///< actions over all rows
};

/// Which stages each micro-batch visits, and in what order (`table::paths`). PyTorch's
/// format has no place for this: its tables send every micro-batch through every stage.
enum class csv_routes : std::uint8_t {
  /// every micro-batch visits every stage, 0 to S-1 (PyTorch's model): a missing F cell is
  /// an error
  every_stage,
  /// each micro-batch visits the stages of its F cells in increasing order: DualPipe (half of
  /// the micro-batches through each copy of the model) and skip paths without swaps
  ascending,
  /// the routes are given as text (`csv_read_options::route_text`, what `to_routes` writes):
  /// any order, skip paths with swaps and layout round_trip included
  given,
};

/// How `from_csv` reads a table.
struct csv_read_options {
  csv_limits limits{};
  /// Read SEND/RECV cells (the table is then lowered) or check their syntax and drop them
  /// (the table is a compute table that `lower()` can lower again).
  bool keep_transfers = true;
  csv_routes routes = csv_routes::every_stage;
  /// With csv_routes::given: line j lists micro-batch j's stages in the order it visits them,
  /// separated by blanks or commas (e.g. "0 1 3\n0 2 1 3\n").
  std::string_view route_text{};
  /// The rank count, when it is more than the text's rows: blank lines at the end of the text
  /// are dropped, so ranks that run nothing at the end (a skip table whose last stages no
  /// route visits) come back only when named here. 0: the rows.
  int ranks = 0;
};

/// The routes of a table as text, one line per micro-batch (micro-batch 0 first): its stages
/// in the order it visits them, separated by a space. With `to_csv`'s text, `from_csv(csv,
/// {.routes = csv_routes::given, .route_text = to_routes(t)})` reads the same table back,
/// routes included. A failed table gives an empty string.
inline std::string to_routes(table const& t) {
  std::string out;
  if (!t.ok()) return out;
  for (int j = 0; j < t.microbatches; ++j) {
    for (int i = 0; i < t.route_length(j); ++i) {
      if (i > 0) out += ' ';
      out += std::to_string(t.route_at(j, i));
    }
    out += '\n';
  }
  return out;
}

namespace detail {

constexpr bool csv_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool csv_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

constexpr std::string_view csv_trim(std::string_view s) {
  while (!s.empty() && csv_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && csv_blank(s.back())) s.remove_suffix(1);
  return s;
}

/// What one cell (or one sub-action of an OVERLAP_F_B cell) holds.
struct csv_cell {
  op kind = op::forward;
  int stage = 0;
  int mb = 0;
  bool overlap_next = false; ///< the first of an OVERLAP_F_B group's two compute actions
};

/// A number at s[i..]: -1 when there is none, -2 when it exceeds `limit`.
constexpr long csv_number(std::string_view s, std::size_t& i, long limit) {
  if (i >= s.size() || !csv_digit(s[i])) return -1;
  long v = 0;
  bool over = false;
  while (i < s.size() && csv_digit(s[i])) {
    if (!over) {
      v = v * 10 + (s[i] - '0');
      over = v > limit;
    }
    ++i;
  }
  return over ? -2 : v;
}

/// One action `{stage}{type}{mb}`. Returns 1 for an action, 0 for a PyTorch action with no
/// counterpart here (UNSHARD, RESHARD, REDUCE_GRAD: skipped), -1 on error (`why` set).
constexpr int csv_action(std::string_view s, long limit, csv_cell& out, const char*& why) {
  std::size_t i = 0;
  long stage = csv_number(s, i, limit);
  if (stage == -1) {
    why = "bad token: a cell starts with the stage number, as in 2F0";
    return -1;
  }
  if (stage == -2) {
    why = "stage number too large";
    return -1;
  }
  struct name_kind {
    std::string_view name;
    op kind;
    bool skipped;
  };
  constexpr name_kind names[] = {
      {"SEND_F", op::send_act, false},    {"RECV_F", op::recv_act, false},   {"SEND_B", op::send_grad, false},
      {"RECV_B", op::recv_grad, false},   {"UNSHARD", op::forward, true},    {"RESHARD", op::forward, true},
      {"REDUCE_GRAD", op::forward, true}, {"F", op::forward, false},         {"B", op::backward, false},
      {"I", op::backward_input, false},   {"W", op::backward_weight, false},
  };
  std::string_view rest = s.substr(i);
  name_kind const* hit = nullptr;
  for (auto const& n : names)
    if (rest.substr(0, n.name.size()) == n.name) {
      hit = &n;
      break;
    }
  if (hit == nullptr) {
    why = "bad token: unknown action type (F, B, I, W, SEND_F, RECV_F, SEND_B or RECV_B)";
    return -1;
  }
  i += hit->name.size();
  long mb = csv_number(s, i, limit);
  if (mb == -2) {
    why = "micro-batch number too large";
    return -1;
  }
  if (i != s.size()) {
    why = "bad token: unexpected characters after the action";
    return -1;
  }
  if (hit->skipped) return 0;
  if (mb == -1) {
    why = "bad token: the micro-batch number is missing";
    return -1;
  }
  out.kind = hit->kind;
  out.stage = static_cast<int>(stage);
  out.mb = static_cast<int>(mb);
  return 1;
}

/// One cell: an action, or PyTorch's `(a;b)OVERLAP_F_B`: two compute sub-actions that form
/// one overlapped pair (the first is flagged overlap_next; verify() checks the pair is an F
/// and then a B or I). A group that holds one compute action (PyTorch's FSDP actions are
/// skipped) is that action alone; one with more than two is refused. Appends to `out`;
/// returns false on error.
constexpr bool csv_parse_cell(std::string_view cell, long limit, std::vector<csv_cell>& out, const char*& why) {
  if (cell.size() >= 2 && cell.front() == '"' && cell.back() == '"') cell = csv_trim(cell.substr(1, cell.size() - 2));
  if (cell.empty()) return true;
  if (cell.front() == '(') {
    std::size_t close = cell.find(')');
    if (close == std::string_view::npos) {
      why = "bad token: '(' without ')'";
      return false;
    }
    if (cell.substr(close + 1) != "OVERLAP_F_B") {
      why = "bad token: a parenthesised group must be followed by OVERLAP_F_B";
      return false;
    }
    std::string_view inner = cell.substr(1, close - 1);
    std::size_t const first = out.size();
    std::size_t pos = 0;
    while (pos <= inner.size()) {
      std::size_t semi = inner.find(';', pos);
      if (semi == std::string_view::npos) semi = inner.size();
      std::string_view sub = csv_trim(inner.substr(pos, semi - pos));
      pos = semi + 1;
      if (sub.empty()) continue;
      if (sub.front() == '(') {
        why = "bad token: nested OVERLAP_F_B groups";
        return false;
      }
      csv_cell c{};
      int r = csv_action(sub, limit, c, why);
      if (r < 0) return false;
      if (r == 0) continue;
      if (!is_compute(c.kind)) {
        why = "bad token: an OVERLAP_F_B group holds compute actions only";
        return false;
      }
      out.push_back(c);
    }
    if (out.size() - first > 2) {
      why = "bad token: an OVERLAP_F_B group pairs two compute actions, a forward and a backward";
      return false;
    }
    if (out.size() - first == 2) out[first].overlap_next = true;
    return true;
  }
  csv_cell c{};
  int r = csv_action(cell, limit, c, why);
  if (r < 0) return false;
  if (r == 1) out.push_back(c);
  return true;
}

constexpr diagnostic csv_error(int row, int cell, const char* why, int stage = -1, int mb = -1) {
  return diagnostic{errc::parse_error, row, cell, stage, mb, why};
}

/// The text up to the end of its last line that holds more than blanks: blank lines at the
/// end are neither rows nor routes.
constexpr std::string_view csv_body(std::string_view text) {
  std::size_t end = 0;
  for (std::size_t ls = 0; ls < text.size();) {
    std::size_t le = ls;
    while (le < text.size() && text[le] != '\n' && text[le] != '\r') ++le;
    if (!csv_trim(text.substr(ls, le - ls)).empty()) end = le;
    ls = le + 1;
  }
  return text.substr(0, end);
}

/// The line of `body` that starts at `pos` ("\n", "\r\n" or "\r" end one); `pos` moves past
/// its end. Loop while pos <= body.size(): the last line has no end of its own.
constexpr std::string_view csv_next_line(std::string_view body, std::size_t& pos) {
  std::size_t eol = pos;
  while (eol < body.size() && body[eol] != '\n' && body[eol] != '\r') ++eol;
  std::string_view const line = body.substr(pos, eol - pos);
  if (eol < body.size() && body[eol] == '\r' && eol + 1 < body.size() && body[eol + 1] == '\n') ++eol;
  pos = eol + 1;
  return line;
}

/// Reads route text (one line per micro-batch, stage numbers separated by blanks or commas;
/// blank lines at the end ignored) into `out`. Errors name the micro-batch (the line) and,
/// where there is one, the stage.
constexpr diagnostic csv_parse_routes(std::string_view text, long limit, std::size_t max_visits,
                                      vec<vec<int>>& out) {
  out.clear();
  std::string_view const body = csv_body(text);
  if (csv_trim(body).empty()) return csv_error(-1, -1, "routes: no routes given");
  std::size_t visits = 0;
  vec<int> line_of; // per stage: the last line that visited it, plus one
  for (std::size_t pos = 0; pos <= body.size();) {
    std::string_view const line = csv_next_line(body, pos);
    int const j = static_cast<int>(out.size());
    if (j > limit) return csv_error(-1, -1, "routes: more lines than the micro-batch limit", -1, j);
    out.emplace_back();
    auto& route = out.back();
    std::size_t i = 0;
    while (i < line.size()) {
      char const c = line[i];
      if (csv_blank(c) || c == ',') {
        ++i;
        continue;
      }
      long s = csv_number(line, i, limit);
      if (s == -1) return csv_error(-1, -1, "routes: a route holds stage numbers only", -1, j);
      if (s == -2) return csv_error(-1, -1, "routes: stage number too large", -1, j);
      std::size_t const su = static_cast<std::size_t>(s);
      if (su >= line_of.size()) line_of.resize(su + 1, 0);
      if (line_of[su] == j + 1) return csv_error(-1, -1, "routes: a route visits a stage twice", static_cast<int>(s), j);
      line_of[su] = j + 1;
      if (++visits > max_visits) return csv_error(-1, -1, "routes: more visits than the action limit", -1, j);
      route.push_back(static_cast<int>(s));
    }
    if (route.empty()) return csv_error(-1, -1, "routes: an empty route (each line lists a micro-batch's stages)", -1, j);
  }
  return {};
}

} // namespace detail

/// Reads PyTorch-format CSV text into a table. Each line is a rank (rank 0 first; "\n",
/// "\r\n" or "\r" end a line; blank lines at the end are ignored, blank lines before them
/// are ranks with no cells). Cells are separated by commas, blanks around a cell and a
/// surrounding pair of double quotes are dropped, empty cells (PyTorch's idle steps) are
/// skipped. Cells: `{stage}{F|B|I|W}{mb}`, the transfers `{stage}{SEND_F|RECV_F|SEND_B|
/// RECV_B}{mb}` (stage: the sender for SEND_*, the receiver for RECV_*; the peer is the rank
/// of the stage after (SEND_F, RECV_B) or before (RECV_F, SEND_B) it), PyTorch's
/// `(F;B)OVERLAP_F_B` (an overlapped pair: its two compute sub-actions in order, the first
/// flagged overlap_next), and UNSHARD / RESHARD /
/// REDUCE_GRAD, which are accepted and skipped.
///
/// The table: p = rows, S = largest stage + 1, m = largest micro-batch + 1; each stage on
/// exactly one row, every row holding S/p stages, numbered as chunks in increasing stage
/// order; the placement is loop or v_shape when the stages sit that way, else custom.
/// Routes (`opt.routes`): by default every micro-batch visits every stage in order, as in
/// PyTorch. `csv_routes::ascending` gives each micro-batch the stages of its F cells in
/// increasing order; `csv_routes::given` reads them from `opt.route_text` (S and m then
/// count the routes' stages and lines too). With routes, rows may hold different numbers of
/// stages (chunks = the smallest count), the stages with no cells (no route visits them) go
/// in increasing order to the rows with none, S × m is bounded by `limits.max_actions`, and a
/// transfer cell's peer is the rank of the stage before or after it on its micro-batch's
/// route; routes that send every micro-batch through every stage in order give the plain
/// table (no `paths`).
/// split_backward when I or W appear, forward_only when no backward appears, lowered when
/// transfer cells are kept (their buffer slots are assigned when `verify` passes; run
/// `verify(t)` on every imported table before using it).
///
/// A leading UTF-8 byte-order mark is skipped. Errors come back in the table's `error`:
/// errc::parse_error with rank = row, position =
/// cell index in the row (counting empty cells, from 0) and a detail (route text: the
/// micro-batch is its line, rank and position -1); errc::duplicate_pass
/// for a repeated transfer cell; errc::missing_pass when there are fewer F cells than
/// stages × micro-batches (the bound that keeps `verify` and `simulate` memory in check;
/// with given routes, than the routes' visits; with ascending ones, a micro-batch without
/// an F cell).
constexpr table from_csv(std::string_view text, csv_read_options const& opt = {}) {
  csv_limits const& lim = opt.limits;
  // a UTF-8 byte-order mark (spreadsheets write one) is not part of the first cell
  if (text.size() >= 3 && text[0] == '\xEF' && text[1] == '\xBB' && text[2] == '\xBF') text.remove_prefix(3);
  if (text.size() > lim.max_bytes)
    return failed(detail::csv_error(-1, -1, "input larger than the size limit (64 MiB)"));
  long const index_limit = static_cast<long>(lim.max_index) - 1;

  struct placed {
    detail::csv_cell c;
    int cell;
  };
  std::vector<std::vector<placed>> rows;
  std::vector<int> stage_row; // row of each stage seen, -1 when none
  std::size_t total = 0, forwards = 0;
  int max_stage = -1, max_mb = -1;
  bool split = false, backward = false, transfers = false;
  std::vector<detail::csv_cell> cells;

  // blank lines at the end are not ranks: the text ends with the last non-blank line
  std::string_view const body = detail::csv_body(text);
  if (detail::csv_trim(body).empty()) return failed(detail::csv_error(0, -1, "no actions"));

  for (std::size_t pos = 0; pos <= body.size();) {
    std::string_view const line = detail::csv_next_line(body, pos);
    int const r = static_cast<int>(rows.size());
    if (r >= lim.max_rows) return failed(detail::csv_error(r, -1, "more rows than the rank limit (4096)"));
    rows.emplace_back();
    int cell_index = 0;
    std::size_t cpos = 0;
    while (cpos <= line.size()) {
      std::size_t comma = line.find(',', cpos);
      if (comma == std::string_view::npos) comma = line.size();
      std::string_view cell = detail::csv_trim(line.substr(cpos, comma - cpos));
      cpos = comma + 1;
      if (!cell.empty()) {
        cells.clear();
        const char* why = nullptr;
        if (!detail::csv_parse_cell(cell, index_limit, cells, why))
          return failed(detail::csv_error(r, cell_index, why));
        for (auto const& c : cells) {
          if (is_transfer(c.kind)) {
            transfers = true;
            if (!opt.keep_transfers) continue;
          }
          if (++total > lim.max_actions) return failed(detail::csv_error(r, cell_index, "more actions than the limit"));
          if (static_cast<std::size_t>(c.stage) >= stage_row.size())
            stage_row.resize(static_cast<std::size_t>(c.stage) + 1, -1);
          int& owner = stage_row[static_cast<std::size_t>(c.stage)];
          if (owner >= 0 && owner != r)
            return failed(detail::csv_error(r, cell_index, "the stage is already on another row", c.stage, c.mb));
          owner = r;
          max_stage = c.stage > max_stage ? c.stage : max_stage;
          max_mb = c.mb > max_mb ? c.mb : max_mb;
          split = split || c.kind == op::backward_input || c.kind == op::backward_weight;
          backward = backward || (is_compute(c.kind) && c.kind != op::forward);
          forwards += c.kind == op::forward ? 1u : 0u;
          rows.back().push_back({c, cell_index});
        }
      }
      ++cell_index;
    }
  }

  if (max_stage < 0) return failed(detail::csv_error(0, -1, "no actions"));
  if (opt.ranks > lim.max_rows) return failed(detail::csv_error(-1, -1, "more ranks named than the rank limit (4096)"));
  if (opt.ranks > 0 && static_cast<std::size_t>(opt.ranks) < rows.size())
    return failed(detail::csv_error(opt.ranks, -1, "more rows than the ranks named"));
  if (static_cast<std::size_t>(opt.ranks) > rows.size()) rows.resize(static_cast<std::size_t>(opt.ranks));
  int const p = static_cast<int>(rows.size());
  bool const routed = opt.routes != csv_routes::every_stage;
  int S = max_stage + 1;
  int m = max_mb + 1;
  vec<vec<int>> routes;
  if (opt.routes == csv_routes::given) {
    if (auto d = detail::csv_parse_routes(opt.route_text, index_limit, lim.max_actions, routes)) return failed(d);
    if (static_cast<std::size_t>(m) > routes.size())
      return failed(detail::csv_error(-1, -1, "routes: fewer lines than micro-batches (a micro-batch with cells has no route)",
                                      -1, static_cast<int>(routes.size())));
    m = static_cast<int>(routes.size());
    std::size_t visits = 0;
    for (auto const& route : routes) {
      visits += route.size();
      for (int s : route) S = s + 1 > S ? s + 1 : S;
    }
    // the bound that keeps `verify` and `simulate` memory in check, as below
    if (forwards < visits) return failed({errc::missing_pass, -1, -1, -1, -1, "fewer F cells than the routes' visits"});
  }
  if (stage_row.size() < static_cast<std::size_t>(S)) stage_row.resize(static_cast<std::size_t>(S), -1);
  std::vector<int> held(static_cast<std::size_t>(p), 0);
  for (int s = 0; s < S; ++s)
    if (int const r = stage_row[static_cast<std::size_t>(s)]; r >= 0) ++held[static_cast<std::size_t>(r)];
  if (routed) {
    // a stage that no route visits has no cells: the stages without a row go, in increasing
    // order, to the rows without cells, in increasing order (skip paths: rank s holds stage s)
    int r = 0;
    for (int s = 0; s < S; ++s) {
      if (stage_row[static_cast<std::size_t>(s)] >= 0) continue;
      while (r < p && held[static_cast<std::size_t>(r)] > 0) ++r;
      if (r == p) break;
      stage_row[static_cast<std::size_t>(s)] = r;
      held[static_cast<std::size_t>(r)] = 1;
    }
  }
  for (int s = 0; s < S; ++s)
    if (stage_row[static_cast<std::size_t>(s)] < 0)
      return failed(detail::csv_error(-1, -1, "a stage appears on no row (stages are 0 to the largest one named)", s));
  int v = 0;
  if (!routed) {
    if (S % p != 0) return failed(detail::csv_error(-1, -1, "the stage count is not a multiple of the row count"));
    v = S / p;
    for (int r = 0; r < p; ++r)
      if (held[static_cast<std::size_t>(r)] != v)
        return failed(detail::csv_error(r, -1, "rows hold different numbers of stages (each row needs S / rows)"));
    if (forwards < static_cast<std::size_t>(S) * static_cast<std::size_t>(m))
      return failed({errc::missing_pass, -1, -1, -1, -1, "fewer F cells than stages x micro-batches"});
  } else {
    // with routes a row may hold more stages than another (layout round_trip puts the head on
    // rank 0 as a second stage); chunks is the smallest count
    v = S;
    for (int r = 0; r < p; ++r) {
      int const h = held[static_cast<std::size_t>(r)];
      if (h == 0) return failed(detail::csv_error(r, -1, "a row holds no stage"));
      v = h < v ? h : v;
    }
    // verify and simulate index by (stage, micro-batch)
    if (static_cast<std::size_t>(S) * static_cast<std::size_t>(m) > lim.max_actions)
      return failed(detail::csv_error(-1, -1, "stages x micro-batches above the action limit"));
  }
  std::size_t const sm = static_cast<std::size_t>(S) * static_cast<std::size_t>(m);
  if (opt.routes == csv_routes::ascending) {
    // each micro-batch's route: the stages of its F cells, in increasing order
    vec<char> visited(sm, 0);
    for (auto const& row : rows)
      for (auto const& pc : row)
        if (pc.c.kind == op::forward)
          visited[static_cast<std::size_t>(pc.c.stage) * static_cast<std::size_t>(m) + static_cast<std::size_t>(pc.c.mb)] = 1;
    routes.assign(static_cast<std::size_t>(m), {});
    for (int j = 0; j < m; ++j) {
      auto& route = routes[static_cast<std::size_t>(j)];
      for (int s = 0; s < S; ++s)
        if (visited[static_cast<std::size_t>(s) * static_cast<std::size_t>(m) + static_cast<std::size_t>(j)]) route.push_back(s);
      if (route.empty()) return failed({errc::missing_pass, -1, -1, -1, j, "the micro-batch has no F cell, so no route"});
    }
  }
  if (routed) {
    // every micro-batch through every stage in order: the plain table, no routes
    bool every = true;
    for (auto const& route : routes) {
      every = every && static_cast<int>(route.size()) == S;
      for (std::size_t i = 0; every && i < route.size(); ++i) every = route[i] == static_cast<int>(i);
    }
    if (every) routes.clear();
  }

  table t{};
  t.ranks = p;
  t.microbatches = m;
  t.chunks = v;
  t.stages = S;
  t.split_backward = split;
  t.forward_only = !backward;
  t.lowered = transfers && opt.keep_transfers;
  t.stage_rank.assign(static_cast<std::size_t>(S), 0);
  for (int s = 0; s < S; ++s) t.stage_rank[static_cast<std::size_t>(s)] = stage_row[static_cast<std::size_t>(s)];
  t.stage_chunk.assign(static_cast<std::size_t>(S), 0);
  std::fill(held.begin(), held.end(), 0);
  for (int s = 0; s < S; ++s)
    t.stage_chunk[static_cast<std::size_t>(s)] = held[static_cast<std::size_t>(t.rank_of(s))]++;
  t.paths = std::move(routes);
  bool const even = S == p * v; // every row holds v stages
  bool loop = even, vee = even && v == 2;
  for (int s = 0; s < S; ++s) {
    loop = loop && t.rank_of(s) == s % p;
    vee = vee && t.rank_of(s) == (s < p ? s : 2 * p - 1 - s);
  }
  t.place = loop ? placement::loop : (vee ? placement::v_shape : placement::custom);

  // which transfer cells were seen: (kind, stage, micro-batch); S*m is bounded by the F count
  // (without routes) or by the action limit (with them)
  vec<unsigned char> seen_transfers(transfers && opt.keep_transfers ? 4 * sm : 0, 0);
  t.lists.assign(static_cast<std::size_t>(p), {});
  for (int r = 0; r < p; ++r) {
    auto& list = t.lists[static_cast<std::size_t>(r)];
    list.reserve(rows[static_cast<std::size_t>(r)].size());
    for (auto const& [c, cell] : rows[static_cast<std::size_t>(r)]) {
      int chunk = t.chunk_of(c.stage);
      action a = make_action(c.kind, c.stage, c.mb, chunk > 255 ? 255 : chunk);
      if (c.overlap_next) a.flags = overlap_next;
      if (is_transfer(c.kind)) {
        std::size_t key = (static_cast<std::size_t>(c.kind) - static_cast<std::size_t>(op::send_act)) * sm +
                          static_cast<std::size_t>(c.stage) * static_cast<std::size_t>(m) +
                          static_cast<std::size_t>(c.mb);
        if (seen_transfers[key]++)
          return failed({errc::duplicate_pass, r, cell, c.stage, c.mb, "a transfer cell appears twice"});
        // the peer is the rank of the stage after (before) this one on the micro-batch's route
        bool to_next = c.kind == op::send_act || c.kind == op::recv_grad;
        int other = to_next ? t.next_stage(c.mb, c.stage) : t.prev_stage(c.mb, c.stage);
        a.peer = (other >= 0 && other < S) ? static_cast<std::uint16_t>(t.rank_of(other)) : no_rank;
      }
      list.push_back(a);
    }
  }
  if (t.lowered && verify(t).ok()) detail::assign_slots(t);
  return t;
}

} // namespace pipesched
