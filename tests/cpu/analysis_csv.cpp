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
#include "pipesched/schedules/registry.hpp"
#include "support/tables.hpp"

using namespace pipesched;
using pipesched::testing::looped_table;
using pipesched::testing::v_table;

namespace {

diagnostic error_of(std::string_view text, csv_read_options const& opt = {}) { return from_csv(text, opt).error; }

bool detail_has(diagnostic const& d, std::string_view what) {
  return d.detail != nullptr && std::string_view(d.detail).find(what) != std::string_view::npos;
}

void check_round_trip(table const& t, std::string const& what) {
  INFO(what);
  REQUIRE(t.ok());
  REQUIRE(verify(t).ok());
  table u = from_csv(to_csv(t));
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
            // in PyTorch's format: the text reads back as a table whose micro-batches miss
            // half of the stages, which from_csv refuses (docs/01, DualPipe)
            CHECK(from_csv(to_csv(t)).error.code == errc::missing_pass);
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
