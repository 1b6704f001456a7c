// pipesched: one communicator per directed edge, for NCCL iterations captured in a CUDA graph.
//
// A captured iteration's transfers on one shared communicator share its FIFO: unrelated
// edges can then wait on each other across ranks and form a cycle. With one communicator
// per directed edge (sender -> receiver) they cannot. Communicators are made by splitting
// the world communicator, a collective call in which each rank joins at most one new
// communicator: so the edges are coloured into *rounds* in which no rank is in two edges,
// and each round is one split on every rank. No CUDA or NCCL header: plain functions, the
// same on every rank (deterministic from the shared edge order), tested on the CPU.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace pipesched::cuda {

/// The colour of a rank that joins no communicator in a split (NCCL_SPLIT_NOCOLOR).
inline constexpr int split_no_color = -1;

/// What one rank passes to the split of one round: colour (the edge's index, or
/// split_no_color) and key (0: the edge's sender, 1: its receiver, so that inside the edge's
/// communicator the sender is rank 0 and the receiver rank 1; a self edge r->r makes a
/// one-rank communicator).
struct edge_split {
  int color = split_no_color;
  int key = 0;
};

/// Edges coloured into rounds: `round_of[e]` is edge e's round, `rounds[k]` the indices of the
/// edges of round k in increasing order.
struct edge_round_plan {
  std::vector<int> round_of;
  std::vector<std::vector<int>> rounds;
};

/// Colours `edges` (anything with int members `from` and `to`, in the order every rank
/// shares) into rounds in which no rank is in two edges: greedily, in the edges' order, each
/// edge into the first round where neither of its ranks is taken yet. Every edge lands in
/// exactly one round.
///
/// Bound: let deg(r) be the number of edges at rank r (a self edge counts once) and D the
/// largest. When edge (a, b) is placed, a round is closed to it only by an earlier edge at a
/// or at b, and there are at most (deg(a) - 1) + (deg(b) - 1) of those; so one of the first
/// deg(a) + deg(b) - 1 <= 2D - 1 rounds is free, and there are at most 2D - 1 rounds
/// (at most D when every edge is a self edge).
///
/// Throws std::invalid_argument for an end outside [0, ranks) and for an edge given twice
/// (one communicator per directed edge).
template <class Edges> constexpr edge_round_plan color_edge_rounds(Edges const& edges, int ranks) {
  edge_round_plan out;
  std::size_t const n = edges.size();
  std::vector<std::vector<char>> taken; // [round][rank]
  for (std::size_t e = 0; e < n; ++e) {
    int const a = edges[e].from, b = edges[e].to;
    if (a < 0 || a >= ranks || b < 0 || b >= ranks)
      throw std::invalid_argument("pipesched: the edge " + std::to_string(a) + "->" + std::to_string(b) +
                                  " has a rank outside [0, " + std::to_string(ranks) + ")");
    for (std::size_t f = 0; f < e; ++f)
      if (edges[f].from == a && edges[f].to == b)
        throw std::invalid_argument("pipesched: the edge " + std::to_string(a) + "->" + std::to_string(b) +
                                    " is given twice: one communicator per directed edge");
    std::size_t k = 0;
    while (k < taken.size() && (taken[k][static_cast<std::size_t>(a)] || taken[k][static_cast<std::size_t>(b)])) ++k;
    if (k == taken.size()) {
      taken.emplace_back(static_cast<std::size_t>(ranks), char{0});
      out.rounds.emplace_back();
    }
    taken[k][static_cast<std::size_t>(a)] = taken[k][static_cast<std::size_t>(b)] = 1;
    out.rounds[k].push_back(static_cast<int>(e));
    out.round_of.push_back(static_cast<int>(k));
  }
  return out;
}

/// What `rank` passes to the split of round `k` of `plan` (made from `edges`).
template <class Edges>
constexpr edge_split split_of(Edges const& edges, edge_round_plan const& plan, std::size_t k, int rank) {
  for (int e : plan.rounds.at(k)) {
    int const a = edges[static_cast<std::size_t>(e)].from, b = edges[static_cast<std::size_t>(e)].to;
    if (rank == a) return {e, 0};
    if (rank == b) return {e, 1};
  }
  return {};
}

/// The rank of the other end inside the communicator of the edge `from -> to`, seen from
/// `rank` (one of its ends): the sender is rank 0, the receiver rank 1; a self edge has one
/// rank, 0.
constexpr int edge_peer(int from, int to, int rank) { return from == to ? 0 : rank == from ? 1 : 0; }

} // namespace pipesched::cuda
