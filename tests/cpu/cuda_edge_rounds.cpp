// One communicator per directed edge (include/pipesched/cuda/edge_rounds.hpp): for every
// schedule family at several sizes (and DualPipe, DualPipe-V), the edges of the table are
// coloured into rounds in which no rank is in two edges; every edge is in exactly one round;
// there are at most 2D - 1 rounds (D: the most edges at one rank, derived in the header);
// and the colour and key each rank passes, put through NCCL's split rule (the ranks of one
// colour ordered by key, then by parent rank — simulated here independently), give each
// edge a communicator of its two ends in which edge_peer names the other end. Closed forms
// for small graphs, and the errors for bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "pipesched/cuda/edge_rounds.hpp"
#include "pipesched/schedules/dualpipe.hpp"
#include "pipesched/schedules/dualpipe_v.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

struct edge {
  int from = 0, to = 0;
};

// A ring 0->1->2->3->0 (closed form: greedy in this order puts 0->1 and 2->3 in round 0,
// 1->2 and 3->0 in round 1), checked at compile time.
constexpr bool ring_of_four() {
  std::vector<edge> const e = {{0, 1}, {1, 2}, {2, 3}, {3, 0}};
  cuda::edge_round_plan const p = cuda::color_edge_rounds(e, 4);
  return p.rounds.size() == 2 && p.round_of == std::vector<int>{0, 1, 0, 1} &&
         cuda::split_of(e, p, 1, 3).color == 3 && cuda::split_of(e, p, 1, 3).key == 0 &&
         cuda::split_of(e, p, 1, 0).color == 3 && cuda::split_of(e, p, 1, 0).key == 1;
}
static_assert(ring_of_four());

/// The directed edges of a table (sends, sender -> receiver), sorted, each once.
template <class S> std::vector<edge> edges_of() {
  std::set<std::pair<int, int>> set;
  table const t = S::make();
  for (std::size_t r = 0; r < t.lists.size(); ++r)
    for (action a : t.lists[r])
      if (is_send(a.kind)) set.insert({static_cast<int>(r), a.peer});
  std::vector<edge> out;
  for (auto [a, b] : set) out.push_back({a, b});
  return out;
}

/// Checks every property for `edges` on `ranks` ranks; returns the number of rounds.
std::size_t check_rounds(std::vector<edge> const& edges, int ranks) {
  cuda::edge_round_plan const p = cuda::color_edge_rounds(edges, ranks);
  // D: the most edges at one rank (a self edge counts once)
  std::vector<int> deg(static_cast<std::size_t>(ranks), 0);
  for (edge const& e : edges) {
    ++deg[static_cast<std::size_t>(e.from)];
    if (e.to != e.from) ++deg[static_cast<std::size_t>(e.to)];
  }
  int const d = edges.empty() ? 0 : *std::max_element(deg.begin(), deg.end());
  CHECK(p.rounds.size() <= static_cast<std::size_t>(edges.empty() ? 0 : 2 * d - 1));
  CHECK(p.rounds.size() >= static_cast<std::size_t>(d)); // (any colouring needs D rounds)
  REQUIRE(p.round_of.size() == edges.size());
  std::vector<int> seen(edges.size(), 0);
  for (std::size_t k = 0; k < p.rounds.size(); ++k) {
    CAPTURE(k);
    CHECK(!p.rounds[k].empty());
    std::vector<int> used(static_cast<std::size_t>(ranks), 0);
    for (int e : p.rounds[k]) {
      ++seen[static_cast<std::size_t>(e)];
      CHECK(p.round_of[static_cast<std::size_t>(e)] == static_cast<int>(k));
      edge const& x = edges[static_cast<std::size_t>(e)];
      ++used[static_cast<std::size_t>(x.from)];
      if (x.to != x.from) ++used[static_cast<std::size_t>(x.to)];
    }
    for (int r = 0; r < ranks; ++r) CHECK(used[static_cast<std::size_t>(r)] <= 1); // disjoint
    // NCCL's split rule, simulated: members of each colour ordered by (key, parent rank)
    std::map<int, std::vector<std::pair<int, int>>> groups; // colour -> (key, rank)
    for (int r = 0; r < ranks; ++r) {
      cuda::edge_split const s = cuda::split_of(edges, p, k, r);
      if (used[static_cast<std::size_t>(r)] == 0) CHECK(s.color == cuda::split_no_color);
      if (s.color != cuda::split_no_color) groups[s.color].push_back({s.key, r});
    }
    for (auto& [color, m] : groups) {
      CAPTURE(color);
      std::sort(m.begin(), m.end());
      REQUIRE(color >= 0);
      REQUIRE(static_cast<std::size_t>(color) < edges.size());
      CHECK(p.round_of[static_cast<std::size_t>(color)] == static_cast<int>(k));
      edge const& x = edges[static_cast<std::size_t>(color)];
      if (x.from == x.to) { // a one-rank communicator; the peer is itself, rank 0
        REQUIRE(m.size() == 1);
        CHECK(m[0].second == x.from);
        CHECK(cuda::edge_peer(x.from, x.to, x.from) == 0);
        continue;
      }
      REQUIRE(m.size() == 2); // exactly the edge's two ends
      CHECK(m[0].second == x.from);
      CHECK(m[1].second == x.to);
      // the peer each end addresses is the other end's rank inside the communicator
      CHECK(cuda::edge_peer(x.from, x.to, x.from) == 1);
      CHECK(cuda::edge_peer(x.from, x.to, x.to) == 0);
    }
    CHECK(groups.size() == p.rounds[k].size());
  }
  for (std::size_t e = 0; e < edges.size(); ++e) CHECK(seen[e] == 1); // every edge once
  return p.rounds.size();
}

template <class S> void check_schedule() {
  INFO(plan_test::label<S>());
  std::vector<edge> const e = edges_of<S>();
  CHECK(!e.empty());
  (void)check_rounds(e, S::ranks);
}

} // namespace

TEST_CASE("cuda.edge_rounds.every_schedule") {
  plan_test::for_each_type(plan_test::training_schedules<2, 4>{}, []<class S>(S*) { check_schedule<S>(); });
  plan_test::for_each_type(plan_test::training_schedules<3, 5>{}, []<class S>(S*) { check_schedule<S>(); });
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) { check_schedule<S>(); });
  check_schedule<dualpipe<stages<4>, microbatches<8>>>();
  check_schedule<dualpipe_v<stages<4>, microbatches<8>>>();
}

TEST_CASE("cuda.edge_rounds.closed_forms") {
  // a straight pipeline of p >= 3 ranks, both directions (1F1B's edges): D = 4 at the inner
  // ranks (a->a+1, a+1->a, and the same with a-1). Greedy in (from, to) order puts the pair
  // (a, a+1) into rounds 0 and 1 for even a, 2 and 3 for odd a (a's rounds 0/1, resp. 2/3,
  // are taken by the pair (a-1, a)): exactly 4 rounds, the least any colouring can have
  for (int p : {3, 4, 8, 16}) {
    std::vector<edge> e;
    for (int a = 0; a < p; ++a) {
      if (a > 0) e.push_back({a, a - 1});
      if (a + 1 < p) e.push_back({a, a + 1});
    }
    std::sort(e.begin(), e.end(), [](edge x, edge y) { return x.from != y.from ? x.from < y.from : x.to < y.to; });
    CAPTURE(p);
    CHECK(check_rounds(e, p) == 4);
  }
  // the complete digraph on 6 ranks with self edges: D = 2 * 5 + 1 = 11, at most 21 rounds
  {
    std::vector<edge> e;
    for (int a = 0; a < 6; ++a)
      for (int b = 0; b < 6; ++b) e.push_back({a, b});
    std::size_t const n = check_rounds(e, 6);
    CHECK(n <= 21);
  }
  // self edges only: one round (no two share a rank)
  CHECK(check_rounds({{0, 0}, {1, 1}, {2, 2}}, 3) == 1);
  // no edges: no rounds
  CHECK(check_rounds({}, 4) == 0);
}

TEST_CASE("cuda.edge_rounds.bad_input") {
  CHECK_THROWS_WITH_AS(cuda::color_edge_rounds(std::vector<edge>{{0, 1}, {1, 4}}, 4),
                       "pipesched: the edge 1->4 has a rank outside [0, 4)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(cuda::color_edge_rounds(std::vector<edge>{{0, 1}, {1, 0}, {0, 1}}, 2),
                       "pipesched: the edge 0->1 is given twice: one communicator per directed edge",
                       std::invalid_argument);
}
