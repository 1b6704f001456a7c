// CSV in PyTorch's format: exact cell syntax, import inference, every refusal, round trips.
// Expected numbers and texts name their source: "reference" (shared/reference/schedules.md,
// section named), "closed form" (derived by hand next to them), "independent" (read off the
// input text of the test itself) or a documented convention/limit (docs/02_analysis.md).
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "pipesched/analysis/csv.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/pipeline/lower.hpp"
#include "pipesched/schedules/custom.hpp"
#include "pipesched/schedules/registry.hpp"
#include "pipesched/schedules/skip_paths.hpp"
#include "support/tables.hpp"

using namespace pipesched;
using pipesched::testing::looped_table;
using pipesched::testing::v_table;

namespace {

diagnostic error_of(std::string_view text, csv_read_options const& opt = {}) { return from_csv(text, opt).error; }

bool detail_has(diagnostic const& d, std::string_view what) {
  return d.detail != nullptr && std::string_view(d.detail).find(what) != std::string_view::npos;
}

/// A compute table read back (u) against the one written (t): what the CSV carries.
void check_same_compute_table(table const& u, table const& t) {
  REQUIRE_MESSAGE(u.ok(), to_string(u.error));
  CHECK(u.lists == t.lists);
  CHECK(u.ranks == t.ranks);
  CHECK(u.stages == t.stages);
  CHECK(u.microbatches == t.microbatches);
  CHECK(u.chunks == t.chunks);
  CHECK(u.stage_rank == t.stage_rank);
  CHECK(u.stage_chunk == t.stage_chunk);
  CHECK(u.split_backward == t.split_backward);
  CHECK(u.forward_only == t.forward_only);
  CHECK(!u.lowered);
  CHECK(verify(u).ok());
}

void check_round_trip(table const& t, std::string const& what) {
  INFO(what);
  REQUIRE(t.ok());
  REQUIRE(verify(t).ok());
  check_same_compute_table(from_csv(to_csv(t)), t);
  // with transfers: the lowered table comes back with the same lists and buffer slots
  table l = lower(t);
  REQUIRE(l.ok());
  table w = from_csv(to_csv(l, csv_format::compute_comms));
  REQUIRE_MESSAGE(w.ok(), to_string(w.error));
  if (t.ranks > 1) {
    CHECK(w.lowered);
    CHECK(w.lists == l.lists);
    CHECK(w.slot_count == l.slot_count);
  } else {
    // one rank: no transfer cells, so the text is a compute table; lowering it again gives l
    CHECK(!w.lowered);
    CHECK(lower(w).lists == l.lists);
  }
  CHECK(verify(w).ok());
  // dropping the transfer cells gives the compute table back
  csv_read_options drop;
  drop.keep_transfers = false;
  table c = from_csv(to_csv(l, csv_format::compute_comms), drop);
  REQUIRE(c.ok());
  CHECK(!c.lowered);
  CHECK(c.lists == t.lists);
}

/// The routes of two tables, micro-batch by micro-batch (a table whose micro-batches visit
/// every stage in order has no `paths`; its routes are 0..S-1).
bool same_routes(table const& a, table const& b) {
  if (a.microbatches != b.microbatches) return false;
  for (int j = 0; j < a.microbatches; ++j) {
    if (a.route_length(j) != b.route_length(j)) return false;
    for (int i = 0; i < a.route_length(j); ++i)
      if (a.route_at(j, i) != b.route_at(j, i)) return false;
  }
  return true;
}

/// A table with routes read back from its CSV with `opt` (its routes mode): the same lists,
/// routes and placement; lowered with transfer cells, the same lists and slots.
void check_routed_round_trip(table const& t, csv_read_options opt, std::string const& what) {
  INFO(what);
  REQUIRE(t.ok());
  REQUIRE(verify(t).ok());
  opt.ranks = t.ranks;
  std::string const routes = to_routes(t);
  if (opt.routes == csv_routes::given) opt.route_text = routes;
  table u = from_csv(to_csv(t), opt);
  check_same_compute_table(u, t);
  CHECK(same_routes(u, t));
  CHECK(u.place == t.place); // (p = 1: loop and V placement are one; no family with routes has p = 1)
  table l = lower(t);
  REQUIRE(l.ok());
  table w = from_csv(to_csv(l, csv_format::compute_comms), opt);
  REQUIRE_MESSAGE(w.ok(), to_string(w.error));
  CHECK(w.lists == l.lists); // peers included: each transfer's peer comes from the route
  CHECK(w.slot_count == l.slot_count);
  CHECK(verify(w).ok());
}

} // namespace

TEST_CASE("csv.export.one_f_one_b.p2.m2") {
  // 1F1B rank r: min(p-r-1, m) warm-up forwards, then (F, B) pairs, then the remaining B's
  // closed form: that rule (reference: schedules.md, 1F1B) by hand for p = 2, m = 2: rank 0 warms
  // up with F0, pairs (F1, B0), then B1; rank 1 has no warm-up: (F0, B0), (F1, B1)
  table t = make_schedule("1f1b", {2, 2}, false);
  CHECK(to_csv(t) == "0F0,0F1,0B0,0B1\n1F0,1B0,1F1,1B1\n");
}

TEST_CASE("csv.export.transfer_cells.p2.m1") {
  // PyTorch's convention: SEND_* names the sending stage, RECV_* the receiving stage
  // closed form, by hand: 1F1B p = 2, m = 1 is F, F, B, B in dependency order; each SEND right
  // after its producer and its RECV right before the consumer, at the same point of the one
  // global order (reference: schedules.md, "Checking a schedule", item 3)
  table l = lower(make_schedule("1f1b", {2, 1}, false));
  REQUIRE(l.ok());
  CHECK(to_csv(l, csv_format::compute_comms) == "0F0,0SEND_F0,0RECV_B0,0B0\n1RECV_F0,1F0,1B0,1SEND_B0\n");
  CHECK(to_csv(l) == "0F0,0B0\n1F0,1B0\n");
}

TEST_CASE("csv.export.split_and_chunks") {
  table t = v_table(2, 1);
  // V placement: rank 0 holds stages 0 and 3, rank 1 stages 1 and 2
  // closed form: support/tables.hpp's v_table order (F chunk 0, F chunk 1, I+W chunk 1, I+W
  // chunk 0) on the reference's V placement (schedules.md, Placements: stage r and 2p−1−r)
  CHECK(to_csv(t) == "0F0,3F0,3I0,3W0,0I0,0W0\n1F0,2F0,2I0,2W0,1I0,1W0\n");
  CHECK(to_csv(failed({errc::zero_ranks})).empty());
}

TEST_CASE("csv.import.infers_the_table") {
  SUBCASE("one chunk, fused backward") {
    table t = from_csv("0F0,0F1,0B0,0B1\n1F0,1B0,1F1,1B1\n");
    REQUIRE(t.ok());
    // independent: read off the text -- 2 rows, stages 0-1, micro-batches 0-1, one stage per
    // row; row 1's third cell is 1F1
    CHECK(t.ranks == 2);
    CHECK(t.stages == 2);
    CHECK(t.chunks == 1);
    CHECK(t.microbatches == 2);
    CHECK(t.place == placement::loop);
    CHECK(!t.split_backward);
    CHECK(!t.forward_only);
    CHECK(!t.lowered);
    CHECK(t.lists[1][2] == make_action(op::forward, 1, 1));
    CHECK(verify(t).ok());
  }
  SUBCASE("V placement, split backward") {
    table t = from_csv("0F0,3F0,3I0,3W0,0I0,0W0\n1F0,2F0,2I0,2W0,1I0,1W0");
    REQUIRE(t.ok());
    // independent: read off the text -- rank 0 holds stages 0 and 3, rank 1 stages 1 and 2, the
    // reference's V placement (schedules.md, Placements) with chunk 1 = the later stage; row 0's
    // second cell 3F0 is chunk 1
    CHECK(t.place == placement::v_shape);
    CHECK(t.chunks == 2);
    CHECK(t.stage_rank == vec<int>{0, 1, 1, 0});
    CHECK(t.stage_chunk == vec<int>{0, 0, 1, 1});
    CHECK(t.split_backward);
    CHECK(t.lists[0][1].chunk == 1);
    CHECK(verify(t).ok());
  }
  SUBCASE("custom placement") {
    // rank 0 holds stages 0 and 1, rank 1 stages 2 and 3
    // independent: read off the text (stage ranks 0 0 1 1, chunks by order on the rank 0 1 0 1)
    table t = from_csv("0F0,1F0,1B0,0B0\n2F0,3F0,3B0,2B0");
    REQUIRE(t.ok());
    CHECK(t.place == placement::custom);
    CHECK(t.stage_rank == vec<int>{0, 0, 1, 1});
    CHECK(t.stage_chunk == vec<int>{0, 1, 0, 1});
    CHECK(verify(t).ok());
  }
  SUBCASE("forward only") {
    table t = from_csv("0F0,0F1\n1F0,1F1");
    REQUIRE(t.ok());
    CHECK(t.forward_only);
    CHECK(verify(t).ok());
  }
  SUBCASE("transfers make it lowered") {
    table t = from_csv("0F0,0SEND_F0,0RECV_B0,0B0\n1RECV_F0,1F0,1B0,1SEND_B0");
    REQUIRE(t.ok());
    CHECK(t.lowered);
    // independent: the peers are the other row, the one holding the next or previous stage;
    // one slot count per row
    CHECK(t.lists[0][1].peer == 1);
    CHECK(t.lists[1][0].peer == 0);
    CHECK(t.lists[1][3].peer == 0);
    CHECK(t.lists[0][2].peer == 1);
    CHECK(verify(t).ok());
    CHECK(t.slot_count.size() == 2);
  }
}

TEST_CASE("csv.import.pytorch_text_forms") {
  // idle steps are empty cells; blanks, quotes, CRLF and lone CR line ends; trailing blank lines
  table t = from_csv(" 0F0 ,,\"0F1\", 0B0,\t0B1 ,\r\n,1F0,1B0,1F1,1B1\r\r\n  \n");
  REQUIRE_MESSAGE(t.ok(), to_string(t.error));
  // independent: two non-blank rows of four action cells each (empty cells are idle steps)
  CHECK(t.ranks == 2);
  CHECK(t.lists[0].size() == 4);
  CHECK(t.lists[1].size() == 4);
  CHECK(verify(t).ok());
  // PyTorch's FSDP and gradient-reduction actions are skipped; OVERLAP_F_B expands in order
  // into an overlapped pair (the F flagged overlap_next)
  table u = from_csv("0UNSHARD,0F0,0F1,0B0,0B1,0REDUCE_GRAD,0RESHARD\n1F0,(1F1;1B0)OVERLAP_F_B,1B1");
  REQUIRE_MESSAGE(u.ok(), to_string(u.error));
  // independent: row 0 keeps its 4 F/B cells; row 1's F0, (F1; B0), B1 expand to 4
  CHECK(u.lists[0].size() == 4);
  REQUIRE(u.lists[1].size() == 4);
  action f1 = make_action(op::forward, 1, 1);
  f1.flags = overlap_next;
  CHECK(u.lists[1][1] == f1);
  CHECK(!overlaps_next(u.lists[1][2]));
  CHECK(u.lists[1][2] == make_action(op::backward, 1, 0));
  CHECK(verify(u).ok());
}

TEST_CASE("csv.import.simulates_like_the_reference.one_f_one_b.p4.m8") {
  // 1F1B for p = 4, m = 8 written out by the warm-up rule; reference: makespan 33 with
  // F = B = W = 1 (a fused B costs 2), 41 with c = 0.5
  // (reference: schedules.md, Cases (c = 0), rows "1F1B 1,1,1" and "1F1B, c = 0.5"; the table is
  // built here independently of the generator, from the reference's 1F1B rule)
  std::string text;
  for (int r = 0; r < 4; ++r) {
    int w = 4 - r - 1;
    std::string s = std::to_string(r);
    std::string row;
    auto cell = [&](char pass, int j) { row += (row.empty() ? "" : ",") + s + pass + std::to_string(j); };
    for (int j = 0; j < w; ++j) cell('F', j);
    for (int i = 0; i < 8 - w; ++i) {
      cell('F', w + i);
      cell('B', i);
    }
    for (int i = 8 - w; i < 8; ++i) cell('B', i);
    text += row + "\n";
  }
  table t = from_csv(text);
  REQUIRE(t.ok());
  REQUIRE(verify(t).ok());
  CHECK(simulate(t, sim_costs{cost_model{1, 1, 1, 0}}).makespan == doctest::Approx(33));
  CHECK(simulate(t, sim_costs{cost_model{1, 1, 1, 0.5}}).makespan == doctest::Approx(41));
  CHECK(to_csv(t) == text);
}

TEST_CASE("csv.import.errors") {
  struct bad {
    const char* text;
    errc code;
    int rank, position;
    const char* detail;
  };
  bad const cases[] = {
      {"0F0,0X0", errc::parse_error, 0, 1, "unknown action type"},
      {"0F0,0f0", errc::parse_error, 0, 1, "unknown action type"},
      {"0F0,F0", errc::parse_error, 0, 1, "stage number"},
      {"0F0,-1F0", errc::parse_error, 0, 1, "stage number"},
      {"0F", errc::parse_error, 0, 0, "micro-batch number is missing"},
      {"0F0x", errc::parse_error, 0, 0, "unexpected characters"},
      {"0F0 1F0", errc::parse_error, 0, 0, "unexpected characters"},
      {"0F0,,,0SEND_F", errc::parse_error, 0, 3, "micro-batch number is missing"},
      {"65535F0", errc::parse_error, 0, 0, "stage number too large"},
      {"99999999999999999999999F0", errc::parse_error, 0, 0, "stage number too large"},
      {"0F65535", errc::parse_error, 0, 0, "micro-batch number too large"},
      {"0F0\n1F0,0B0", errc::parse_error, 1, 1, "already on another row"},
      {"0F0,1F0\n2F0", errc::parse_error, -1, -1, "not a multiple"},
      {"0F0,1F0,2F0\n3F0", errc::parse_error, 0, -1, "different numbers of stages"},
      {"0F0\n\n2F0\n3F0", errc::parse_error, -1, -1, "appears on no row"},
      {"0F0\n2F0", errc::parse_error, -1, -1, "appears on no row"},
      {"", errc::parse_error, 0, -1, "no actions"},
      {" \n\r\n \t", errc::parse_error, 0, -1, "no actions"},
      {",,,\n,", errc::parse_error, 0, -1, "no actions"},
      {"0UNSHARD", errc::parse_error, 0, -1, "no actions"},
      {"(0F0;0B0", errc::parse_error, 0, 0, "without ')'"},
      {"(0F0;0B0)F", errc::parse_error, 0, 0, "OVERLAP_F_B"},
      {"((0F0))OVERLAP_F_B", errc::parse_error, 0, 0, "OVERLAP_F_B"},
      {"(0F0;0SEND_F0)OVERLAP_F_B", errc::parse_error, 0, 0, "compute actions only"},
      {"0F5000", errc::missing_pass, -1, -1, "fewer F cells"},
      {"0F0,0SEND_F0,0SEND_F0\n1RECV_F0,1F0", errc::duplicate_pass, 0, 2, "twice"},
  };
  // rank / position: independent -- the row and the cell (empty cells counted) of the offending
  // cell in the text, as docs/02_analysis.md defines them ("rank = row and position = cell");
  // position -1 where the error is about a whole row (rank = that row: the first one holding a
  // wrong number of stages), rank and position -1 where it belongs to no one row (a stage on no
  // row, a stage count that does not divide, the pass count), and rank 0, position -1 for a
  // text with no actions (the library's convention: regression value).
  for (auto const& c : cases) {
    INFO(c.text);
    diagnostic d = error_of(c.text);
    CHECK(d.code == c.code);
    CHECK(d.rank == c.rank);
    CHECK(d.position == c.position);
    CHECK_MESSAGE(detail_has(d, c.detail), (d.detail ? d.detail : "(no detail)"));
  }
  // the diagnostic names the stage where it applies
  // independent: 0B0 puts stage 0 on a second row; in "0F0\n2F0" stage 1 appears on no row
  CHECK(error_of("0F0\n1F0,0B0").stage == 0);
  CHECK(error_of("0F0\n2F0").stage == 1);
}

TEST_CASE("csv.import.limits") {
  // independent: the texts' sizes are counted by hand -- 19 bytes > 16 and 15 <= 16; 3 rows
  // against 2 (the first refused is row 2); 4 actions against 3; "10F0" needs index 10 >= 10
  csv_read_options opt;
  opt.limits.max_bytes = 16;
  CHECK(detail_has(error_of("0F0,0F1,0B0,0B1,0F2", opt), "size limit"));
  CHECK(error_of("0F0,0F1,0B0,0B1", opt).ok());
  opt = {};
  opt.limits.max_rows = 2;
  diagnostic d = error_of("0F0\n1F0\n2F0", opt);
  CHECK(detail_has(d, "rank limit"));
  CHECK(d.rank == 2);
  opt = {};
  opt.limits.max_actions = 3;
  CHECK(detail_has(error_of("0F0,0B0\n1F0,1B0", opt), "more actions"));
  opt = {};
  opt.limits.max_index = 10;
  CHECK(detail_has(error_of("10F0", opt), "stage number too large"));
  CHECK(error_of("9F0,9B0,8F0,8B0,7F0,7B0,6F0,6B0,5F0,5B0,4F0,4B0,3F0,3B0,2F0,2B0,1F0,1B0,0F0,0B0", opt).ok());
  // the default limits: 4096 rows
  // documented limit: docs/02_analysis.md, CSV ("limits (... 4096 rows ...)"); the first row
  // refused is row index 4096
  std::string rows;
  for (int r = 0; r < 4097; ++r) rows += std::to_string(r) + "F0\n";
  d = error_of(rows);
  CHECK(detail_has(d, "rank limit"));
  CHECK(d.rank == 4096);
  rows.resize(rows.rfind("4096F0"));
  CHECK(from_csv(rows).ok());
  // a long line of garbage is refused at its first cell
  std::string junk(1 << 20, 'x');
  d = error_of(junk);
  CHECK(d.code == errc::parse_error);
  CHECK(d.position == 0); // independent: the text is one cell, cell 0
  // a cell with a million digits is a number too large, not an overflow
  std::string digits(1 << 20, '7');
  CHECK(detail_has(error_of(digits + "F0"), "too large"));
}

TEST_CASE("csv.import.lowered_checked_by_verify") {
  // rank 1 runs its forward before it receives the input
  table t = from_csv("0F0,0SEND_F0,0RECV_B0,0B0\n1F0,1RECV_F0,1B0,1SEND_B0");
  REQUIRE(t.ok());
  CHECK(t.lowered);
  CHECK(!verify(t).ok());
  CHECK(t.slot_count.empty()); // slots only for a table that verifies
  // a SEND_F from the last stage has no peer
  table u = from_csv("0F0,0RECV_B0,0B0\n1RECV_F0,1F0,1SEND_F0,1B0,1SEND_B0");
  REQUIRE(u.ok());
  CHECK(u.lists[1][2].peer == no_rank);
  CHECK(!verify(u).ok());
}

TEST_CASE("csv.round_trip.hand_built") {
  for (int p : {1, 2, 3, 4})
    for (int m : {1, 2, 5}) {
      check_round_trip(looped_table(p, m, 1), "looped v1 p" + std::to_string(p) + " m" + std::to_string(m));
      check_round_trip(looped_table(p, m, 2), "looped v2 p" + std::to_string(p) + " m" + std::to_string(m));
      check_round_trip(looped_table(p, m, 3), "looped v3 p" + std::to_string(p) + " m" + std::to_string(m));
      check_round_trip(v_table(p, m), "v p" + std::to_string(p) + " m" + std::to_string(m));
    }
}

TEST_CASE("csv.round_trip.registry") {
  // every registered family (gpipe, 1f1b, forward-only and whatever is added later)
  int families = 0;
  for (auto const& e : schedule_registry) {
    int tables = 0;
    for (int p : {1, 2, 3, 4, 8})
      for (int m : {1, 2, 3, 4, 8, 12})
        for (int v : {0, 1, 2, 3}) {
          params pr{p, m, v};
          if (e.check(pr)) continue;
          table t = e.generate(pr);
          if (!t.ok()) continue;
          if (!t.paths.empty()) {
            // routes (dualpipe: half of the micro-batches through the mirror stages) are not
            // in PyTorch's format: by default the text reads back as a table whose
            // micro-batches miss half of the stages, which from_csv refuses; with the routes
            // inferred from the F cells (ascending) or given, it is the table again
            INFO(e.name << " p" << p << " m" << m);
            CHECK(from_csv(to_csv(t)).error.code == errc::missing_pass);
            check_routed_round_trip(t, {.routes = csv_routes::ascending}, std::string(e.name) + " ascending");
            check_routed_round_trip(t, {.routes = csv_routes::given}, std::string(e.name) + " given");
            ++tables;
            continue;
          }
          check_round_trip(t, std::string(e.name) + " p" + std::to_string(p) + " m" + std::to_string(m) + " v" +
                                  std::to_string(v));
          ++tables;
        }
    INFO(e.name);
    CHECK(tables > 0); // closed form: every family accepts some (p, m, v) of the grid
    MESSAGE(e.name << ": " << tables << " tables round-tripped");
    ++families;
  }
  // closed form: at least gpipe, 1f1b and forward-only are registered (the registry holds the
  // nine named families of docs/01_schedules.md's summary); a floor, not a count
  CHECK(families >= 3);
}

TEST_CASE("csv.import.byte_order_mark") {
  // A UTF-8 byte-order mark before the first row (spreadsheets write one) is skipped: the
  // table is the one without it. Independent: 1F1B's rows for p = 2, m = 1 written by hand
  // (schedules.md, 1F1B: rank 0 runs F then B; rank 1, the last stage, F then B).
  std::string_view const rows = "0F0,0B0\n1F0,1B0\n";
  table const plain = from_csv(rows);
  table const marked = from_csv(std::string("\xEF\xBB\xBF") + std::string(rows));
  REQUIRE(plain.ok());
  REQUIRE(marked.ok());
  CHECK(marked.lists == plain.lists);
  CHECK(marked.ranks == 2);
  // a mark anywhere else is still an error, named where it is
  CHECK_FALSE(from_csv(std::string("0F0,0B0\n\xEF\xBB\xBF") + "1F0,1B0\n").ok());
}

TEST_CASE("csv.routes.hand_built_dualpipe_shape") {
  // independent: two ranks in V placement (rank 0 holds stages 0 and 3, rank 1 stages 1 and
  // 2); micro-batch 0 goes 0 -> 1, micro-batch 1 goes 2 -> 3 (DualPipe's two directions).
  // Rank 0: 0F0, 3F1 (after 2F1 on rank 1), 3B1 (the route's end), 0B0 (after 1B0);
  // rank 1: 1F0, 2F1 (a route's start), 1B0 (the route's end), 2B1 (after 3B1).
  std::string_view const text = "0F0,3F1,3B1,0B0\n1F0,2F1,1B0,2B1\n";
  CHECK(error_of(text).code == errc::missing_pass); // PyTorch's reading: 4 stages x 2 F cells each
  table t = from_csv(text, {.routes = csv_routes::ascending});
  REQUIRE_MESSAGE(t.ok(), to_string(t.error));
  REQUIRE(t.paths.size() == 2);
  CHECK(t.paths[0] == vec<int>{0, 1});
  CHECK(t.paths[1] == vec<int>{2, 3});
  CHECK(t.ranks == 2);
  CHECK(t.stages == 4);
  CHECK(t.chunks == 2);
  CHECK(t.place == placement::v_shape);
  CHECK(verify(t).ok());
  // the same routes given as text, with commas and blanks, and a CRLF
  table g = from_csv(text, {.routes = csv_routes::given, .route_text = " 0, 1\r\n2 3\n\n"});
  REQUIRE_MESSAGE(g.ok(), to_string(g.error));
  CHECK(g.paths == t.paths);
  CHECK(g.lists == t.lists);
  // with transfer cells (rank 1 receives 2RECV_B1 before it sends 1SEND_B0: rank 0 sends
  // 3SEND_B1 before it receives 0RECV_B0, and rendezvous transfers would wait on each other
  // the other way round)
  std::string_view const lowered = "0F0,0SEND_F0,3RECV_F1,3F1,3B1,3SEND_B1,0RECV_B0,0B0\n"
                                   "1RECV_F0,1F0,2F1,2SEND_F1,1B0,2RECV_B1,1SEND_B0,2B1\n";
  table l = from_csv(lowered, {.routes = csv_routes::ascending});
  REQUIRE_MESSAGE(l.ok(), to_string(l.error));
  CHECK(l.lowered);
  CHECK(l.lists[0][1].peer == 1); // 0SEND_F0: stage 1, rank 1
  CHECK(l.lists[1][3].peer == 0); // 2SEND_F1: stage 3, rank 0
  CHECK(l.lists[1][6].peer == 0); // 1SEND_B0: stage 0, rank 0
  CHECK(verify(l).ok());
  CHECK(l.slot_count.size() == 2); // slots assigned: the table verifies
  CHECK(error_of(lowered).code == errc::missing_pass);
  // a route that skips a stage: 0 -> 2, stage 1 on the blank row 1. The peer of 0SEND_F0 is
  // rank 2 (stage 2 follows stage 0 on the route), not stage 1's rank as PyTorch reads it
  table skip = from_csv("0F0,0SEND_F0,0RECV_B0,0B0\n\n2RECV_F0,2F0,2B0,2SEND_B0\n",
                        {.routes = csv_routes::given, .route_text = "0 2\n"});
  REQUIRE_MESSAGE(skip.ok(), to_string(skip.error));
  CHECK(skip.lists[0][1].peer == 2);
  CHECK(skip.lists[2][0].peer == 0); // 2RECV_F0 from stage 0
  CHECK(skip.lists[2][3].peer == 0); // 2SEND_B0 to stage 0
  CHECK(verify(skip).ok());
}

namespace {
// independent: the two-direction table of csv.routes.hand_built_dualpipe_shape
struct two_directions {
  static constexpr std::string_view text = "0F0,3F1,3B1,0B0\n1F0,2F1,1B0,2B1\n";
  static constexpr auto routes = csv_routes::ascending;
};
struct two_directions_given {
  static constexpr std::string_view text = "0F0,3F1,3B1,0B0\n1F0,2F1,1B0,2B1\n";
  static constexpr std::string_view routes = "0 1\n2 3\n";
};
// independent: one micro-batch 0 -> 2 -> 3 on four ranks; rank 1 runs nothing (its blank
// row takes stage 1, which no route visits)
struct blank_middle_row {
  static constexpr std::string_view text = "0F0,0B0\n\n2F0,2B0\n3F0,3B0\n";
  static constexpr std::string_view routes = "0 2 3\n";
};
struct no_routes {
  static constexpr std::string_view text = "0F0,3F1,3B1,0B0\n1F0,2F1,1B0,2B1\n";
};
struct idle_last_rank {
  static constexpr std::string_view text = "0F0,0B0\n\n2F0,2B0\n";
  static constexpr std::string_view routes = "0 2\n";
  static constexpr int ranks = 4;
};
} // namespace

TEST_CASE("csv.routes.custom_schedule_types") {
  // the compiler reads, lowers and verifies tables with routes as custom<Source> schedules
  using A = custom<two_directions>;
  using G = custom<two_directions_given>;
  static_assert(A::valid);
  static_assert(G::valid);
  table a = A::make();
  REQUIRE(a.ok());
  CHECK(a.paths == vec<vec<int>>{{0, 1}, {2, 3}});
  CHECK(G::make().lists == a.lists);
  CHECK(G::make().paths == a.paths);
  // without routes the same text misses passes (the build stops; tests/compile_fail/custom_missing_pass.cpp)
  CHECK(custom_family<no_routes>::source().error.code == errc::missing_pass);
  using B = custom<blank_middle_row>;
  static_assert(B::valid);
  CHECK(B::make().rank_of(1) == 1);
  CHECK(B::make().lists[1].empty());
  // ranks 1 and 3 run nothing; only rank 1 can hold stage 1 (stage 3 does not exist): a row
  // holds no stage
  CHECK(detail_has(custom_family<idle_last_rank>::source().error, "a row holds no stage"));
}
TEST_CASE("csv.routes.skip_paths") {
  // skip tables from make_skip (both layouts, caps, every K) and from given paths with swaps:
  // the CSV and the routes text give the table back; ascending does wherever no route swaps
  int tables = 0, ascending = 0, with_idle_ranks = 0;
  for (int S : {3, 4, 6})
    for (int K = 2; K <= S; ++K)
      for (int m : {1, 3, 6})
        for (path_layout lay : {path_layout::last, path_layout::round_trip})
          for (int cap : {0, 2}) {
            skip_config c{};
            c.stages = S;
            c.keep = K;
            c.microbatches = m;
            c.memory = cap;
            c.layout = lay;
            table t = make_skip(c);
            if (!t.ok()) continue;
            std::string const what = "S" + std::to_string(S) + " K" + std::to_string(K) + " m" + std::to_string(m) +
                                     (lay == path_layout::last ? " last" : " round_trip") + " cap" + std::to_string(cap);
            check_routed_round_trip(t, {.routes = csv_routes::given}, what + " given");
            bool sorted = true;
            for (auto const& route : t.paths)
              for (std::size_t i = 1; i < route.size(); ++i) sorted = sorted && route[i - 1] < route[i];
            if (sorted) {
              check_routed_round_trip(t, {.routes = csv_routes::ascending}, what + " ascending");
              ++ascending;
            }
            // ranks at the end with no cells: only `ranks` brings them back
            std::string const csv = to_csv(t);
            if (csv.size() >= 2 && csv[csv.size() - 2] == '\n') {
              ++with_idle_ranks;
              table u = from_csv(csv, {.routes = csv_routes::given, .route_text = to_routes(t)});
              CHECK((!u.ok() || u.ranks < t.ranks));
            }
            ++tables;
          }
  MESSAGE(tables << " skip tables, " << ascending << " also ascending, " << with_idle_ranks << " with idle last ranks");
  CHECK(tables > 50);
  CHECK(ascending > 0);
  CHECK(with_idle_ranks > 0);
  // swaps (independent: the paths of skip.given_paths.type, each with one swap): ascending
  // reads other routes, the given ones read the table
  for (path_layout lay : {path_layout::last, path_layout::round_trip}) {
    skip_config c{};
    c.stages = lay == path_layout::last ? 5 : 4;
    c.keep = 4;
    c.microbatches = 3;
    c.layout = lay;
    vec<vec<int>> paths = lay == path_layout::last ? vec<vec<int>>{{0, 2, 1, 4}, {0, 3, 2, 4}, {0, 1, 3, 4}}
                                                   : vec<vec<int>>{{0, 1, 3, 2}, {0, 2, 1, 3}, {0, 1, 2, 3}};
    table t = skip_table(c, paths);
    REQUIRE_MESSAGE(t.ok(), to_string(t.error));
    check_routed_round_trip(t, {.routes = csv_routes::given}, "swaps");
    table a = from_csv(to_csv(t), {.routes = csv_routes::ascending, .ranks = t.ranks});
    REQUIRE(a.ok());
    CHECK_FALSE(same_routes(a, t));
  }
}

TEST_CASE("csv.routes.refusals") {
  std::string_view const text = "0F0,3F1,3B1,0B0\n1F0,2F1,1B0,2B1\n";
  auto given = [&](std::string_view routes, std::string_view csv = "0F0,3F1,3B1,0B0\n1F0,2F1,1B0,2B1\n") {
    return error_of(csv, {.routes = csv_routes::given, .route_text = routes});
  };
  // the route text: each refusal names its line (the micro-batch) and, where there is one, the stage
  diagnostic d = given("0 1\n2 x\n");
  CHECK(d.code == errc::parse_error);
  CHECK(d.mb == 1);
  CHECK(detail_has(d, "stage numbers only"));
  d = given("0 1 0\n2 3\n");
  CHECK(detail_has(d, "visits a stage twice"));
  CHECK(d.mb == 0);
  CHECK(d.stage == 0);
  CHECK(detail_has(given("0 1\n\n2 3\n"), "empty route"));
  CHECK(detail_has(given(""), "no routes"));
  d = given("0 1\n");
  CHECK(detail_has(d, "fewer lines than micro-batches"));
  CHECK(d.mb == 1); // independent: micro-batch 1 has cells and no line
  CHECK(detail_has(given("0 1\n2 99999999999\n"), "too large"));
  // a route through a stage no row holds and no blank row can take
  CHECK(detail_has(given("0 1\n2 4\n"), "appears on no row"));
  // more visits than F cells
  CHECK(given("0 1 2\n2 3\n").code == errc::missing_pass);
  // cells off their micro-batch's route: read, then refused by verify (3F1 is not on 0 -> 2 -> 1)
  table off = from_csv("0F0,0B0,3F1,3B1\n1F0,2F1,1B0,2B1\n", {.routes = csv_routes::given, .route_text = "0 1\n2 1\n"});
  REQUIRE(off.ok());
  CHECK_FALSE(verify(off).ok());
  // ascending: a micro-batch below the largest with no F cell has no route
  d = error_of("0F0,0B0,0F2,0B2\n1F0,1B0,1F2,1B2\n", {.routes = csv_routes::ascending});
  CHECK(d.code == errc::missing_pass);
  CHECK(d.mb == 1);
  // ranks: fewer than the rows, beyond the limit; more gives blank rows (a rank without stages
  // is refused unless a stage without cells goes there)
  CHECK(detail_has(error_of(text, {.routes = csv_routes::ascending, .ranks = 1}), "more rows than the ranks"));
  CHECK(detail_has(error_of(text, {.routes = csv_routes::ascending, .ranks = 5000}), "rank limit"));
  CHECK(detail_has(error_of(text, {.routes = csv_routes::ascending, .ranks = 3}), "a row holds no stage"));
  // a stage without cells goes to the first row without cells: 0 -> 2 with stage 1 unvisited
  table idle = from_csv("0F0,0B0\n\n2F0,2B0\n", {.routes = csv_routes::given, .route_text = "0 2\n"});
  REQUIRE_MESSAGE(idle.ok(), to_string(idle.error));
  CHECK(idle.rank_of(1) == 1);
  CHECK(idle.place == placement::loop);
  CHECK(verify(idle).ok());
  // S x m above the action limit (a route table's S x m is not bounded by its cells)
  csv_read_options small{.routes = csv_routes::ascending, .ranks = 6};
  small.limits.max_actions = 10; // independent: 4 cells; S = 6, m = 2 gives 12
  std::string_view const sparse = "0F0,0B0\n5F1,5B1\n";
  CHECK(detail_has(error_of(sparse, small), "above the action limit"));
  small.limits.max_actions = 12;
  CHECK(from_csv(sparse, small).ok()); // stages 1..4 on the blank rows 2..5
  // without routes, rows must still hold S / p stages each
  CHECK(detail_has(error_of("0F0,0B0,2F0,2B0,3F0,3B0\n1F0,1B0\n"), "different numbers of stages"));
}
