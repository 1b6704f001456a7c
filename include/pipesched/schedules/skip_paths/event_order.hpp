// pipesched: skip paths — the per-rank order of a skip schedule, from an event simulation of
// every micro-batch's chain of passes along its path (four orders under a memory cap; the
// shortest iteration is kept).
#pragma once

#include "pipesched/core/table.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/verify.hpp"
#include "pipesched/schedules/skip_paths/config.hpp"

namespace pipesched {

namespace detail {

/// A skip table without passes: rank s holds stage s, and in layout round_trip one more
/// stage S, the head, sits on rank 0 (chunk 1) at the end of every route. The routes are
/// the model paths (plus S in round_trip).
constexpr table skip_frame(skip_config const& c, vec<vec<int>> const& model_paths) {
  int const S = c.stages;
  bool const round_trip = c.layout == path_layout::round_trip;
  table t = make_table(S, c.microbatches, 1, placement::loop);
  if (round_trip) {
    t.stages = S + 1;
    t.place = placement::custom;
    t.stage_rank.push_back(0);
    t.stage_chunk.push_back(1);
  }
  t.paths = model_paths;
  if (round_trip)
    for (auto& route : t.paths) route.push_back(S);
  return t;
}

/// The memory cap as places on each rank: a micro-batch takes one place on every rank of
/// its model path when it enters stage 0, and frees a rank's place with its last backward
/// there. A micro-batch enters only when all its places are free, so none waits for memory
/// once started.
struct rank_places {
  int places = 0;            ///< per rank
  vec<int> admitted;         ///< per rank: micro-batches let onto it so far
  vec<vec<double>> released; ///< per rank: when each place was freed, in order
};

/// When a micro-batch with model path `model_path` may enter: the latest of the releases it
/// waits for (on each rank of its path, release number admitted - places), or a negative
/// value while some rank has no place free yet.
constexpr double admission_time(rank_places const& ranks, vec<int> const& model_path) {
  double at = 0;
  int const* const admitted = ranks.admitted.data();
  vec<double> const* const released = ranks.released.data();
  for (int s : model_path) {
    int const release = admitted[s] - ranks.places; // the release it waits for
    if (release < 0) continue;
    vec<double> const& freed_at = released[s];
    if (static_cast<std::size_t>(release) >= freed_at.size()) return -1.0;
    double const freed = freed_at.data()[release];
    at = freed > at ? freed : at;
  }
  return at;
}

/// How a rank picks its next pass among those whose input has arrived.
enum class skip_order : unsigned char {
  /// The pass that can start first (ties: input ready first, backward first, micro-batch
  /// id): shared/reference/skip-paths.md's order.
  earliest,
  /// 1F1B's two rules added to `earliest`: a forward at position k of its route (0: stage 0)
  /// starts on a rank only while the rank holds fewer than max(1, places − k) micro-batches
  /// (rank r of a full pipeline with S places holds at most S − r), which keeps the later
  /// ranks from running forwards that delay the backwards freeing places; and between a
  /// forward and a backward that could start at the same time, a rank takes the kind it did
  /// not run last (1F1B alternates one forward, one backward).
  by_position,
  /// by_position with the alternation first: between a forward and a backward that could
  /// start at the same time, a rank takes the kind it did not run last even when the other
  /// kind's input arrived earlier (by_position asks which input was ready first, and
  /// alternates only between inputs ready together). Where memory binds hard (a cap of K/2
  /// in layout round_trip) this starts a new micro-batch as soon as a place frees instead of
  /// first draining every waiting backward.
  alternating,
  /// The dispatch rule "most work remaining", with Giffler and Thompson's conflict set: on
  /// each rank, among the passes that could start before the earliest of them could end,
  /// the one whose micro-batch has the most work left (this pass and the rest of its chain,
  /// links included) is the rank's candidate, even when it leaves the rank idle until its
  /// input arrives; as in the other orders the candidate that starts first runs next. No
  /// count rule. Where a rank is the bottleneck (rank 0 in layout round_trip, which also
  /// holds the head) it keeps the micro-batches with long chains ahead moving before a
  /// backward that ends its micro-batch.
  most_work_remaining,
};

/// The event simulation's state. A micro-batch's chain has 2L - 1 steps for a route of L
/// stages: forwards along the route (steps 0..L-2), the last forward with its backward
/// (step L-1), backwards in reverse (steps L..2L-2). Open micro-batches (first_open up to
/// the next to admit) compete for their next step's rank.
struct skip_events {
  std::size_t route_length = 0; ///< L (every route has it)
  std::size_t steps = 0;        ///< 2L - 1
  // per micro-batch
  vec<std::size_t> next_step; ///< its next step (steps: done)
  vec<double> input_ready;    ///< when its next step's input arrives
  vec<int> next_rank;         ///< the rank of its next step
  vec<double> step_work;      ///< [mb * steps + k]: step k's duration (most_work_remaining only)
  vec<double> work_left;      ///< [mb * steps + k]: step k and the rest of the chain, links included (same)
  // per rank
  vec<double> free_at;          ///< when the rank finishes its last pass
  vec<int> candidate;           ///< the micro-batch the rank would run next this round, -1: none
  vec<int> candidate_round;     ///< choose_rank_candidates: the round its candidate is of (older: none this round)
  int round = 0;                ///< choose_rank_candidates' rounds so far
  vec<double> candidate_ready;  ///< when that pass's input (and admission) is ready
  vec<char> candidate_backward; ///< whether that pass is a backward
  vec<int> held;                ///< micro-batches whose forward ran on the rank and whose place is not freed
  vec<char> last_backward;      ///< whether the rank's last pass was a backward
  vec<double> earliest_end;     ///< most_work_remaining: the earliest end among the rank's passes
  vec<double> start_of;         ///< most_work_remaining, per micro-batch: when its next step could start (-1: it cannot yet)
  vec<int> first_on_rank;       ///< [mb * ranks + r]: where its route first visits rank r (-1: never)
  skip_order order = skip_order::earliest;
  rank_places ranks;
  // the lists' own timing, what simulate() gives them: a pass starts once its rank ended the
  // pass before it in the list and its input arrived (admission plays no part there)
  vec<double> list_free;  ///< per rank: when its list so far ends
  vec<double> list_input; ///< per micro-batch: when its next step's input arrives
  double list_end = 0;    ///< the lists' iteration so far (simulate()'s makespan)
  int next_admit = 0; ///< micro-batches enter stage 0 in id order; this one is next
  int first_open = 0; ///< micro-batches below it are done
  // admission_time of micro-batch next_admit, kept until an admission or a release changes it
  // (asked once per chosen step otherwise: the compilers' constexpr budgets count)
  double admit_at = 0;
  bool admit_known = false;
  // choose_listed_candidates, where many micro-batches can be open at once (no cap, or a
  // loose one): choose_rank_candidates passes over all of them per step, which costs more
  // than the upkeep below only then (measured: docs/05_skip_paths.md). A step changes the
  // candidates of three ranks at most: the rank that ran (its time, held count, last kind),
  // the rank of the micro-batch's next step (a new input there) and the rank where the next
  // micro-batch enters (its admission waits on places that admissions and releases change).
  // Every other rank's candidate is what choosing again would give, so only those three
  // choose again, each among its own waiting micro-batches.
  bool listed = false;
  vec<int> waiting;       ///< [r * m + i]: the open micro-batches whose next step is on rank r, in id order
  vec<int> waiting_count; ///< per rank: how many
  int changed[2] = {-1, -1}; ///< the ranks run_step changed (-1: none)
  // the rank whose candidate starts first (ties: the lower rank), by a tournament over the
  // ranks: leaves at leaves + r, each node the better of its two children
  std::size_t leaves = 1;
  vec<double> best_start;
  vec<int> best_rank; ///< -1: no rank below the node has a candidate
};

/// Stage of step k of a micro-batch with route `route` of length L.
constexpr int stage_of_step(vec<int> const& route, std::size_t L, std::size_t k) {
  return k < L ? route[k] : route[2 * L - 2 - k];
}

/// When micro-batch j's next step may start as far as its input and admission go (k: that
/// step), or a negative value while it waits for a place. Only micro-batch next_admit is
/// open at step 0: its admission time is kept in `sim` until run_step changes what it waits for.
constexpr double step_ready(skip_events& sim, vec<vec<int>> const& model_paths, int j, std::size_t k) {
  double const ready = sim.input_ready[static_cast<std::size_t>(j)];
  if (k != 0) return ready;
  if (!sim.admit_known) {
    sim.admit_at = admission_time(sim.ranks, model_paths[static_cast<std::size_t>(j)]);
    sim.admit_known = true;
  }
  double const admitted_at = sim.admit_at;
  if (admitted_at < 0) return -1.0;
  return admitted_at > ready ? admitted_at : ready;
}

/// The rank candidate that starts first (ties: the lower rank): its micro-batch and start,
/// micro-batch -1 when no rank has one.
struct next_pass {
  int mb = -1;
  double start = 0;
};

/// Each rank's candidate among the open micro-batches: passes whose input is ready by the
/// time the rank is free compete on (when they could start, input ready, backward first,
/// micro-batch id). A micro-batch that has not entered yet needs its admission too. In orders
/// by_position and alternating a forward also needs the rank to hold fewer than its
/// position allows, and a tie between a forward and a backward goes to the kind the rank
/// did not run last (in order alternating before the input-ready comparison, in
/// by_position after it). Returns the candidate that starts first (ties: the lower rank),
/// kept on the way: a rank's candidate only ever moves to one that starts no later, so the
/// rank that starts first stays first until another rank's candidate starts earlier (or as
/// early on a lower rank); what earliest_candidate finds by a pass over the ranks.
constexpr next_pass choose_rank_candidates(skip_events& sim, vec<vec<int>> const& model_paths) {
  // raw pointers: this loop runs inside the compiler, where every call counts
  std::size_t const* const next_step = sim.next_step.data();
  int const* const next_rank = sim.next_rank.data();
  double const* const free_at = sim.free_at.data();
  int const* const held = sim.held.data();
  char const* const last_backward = sim.last_backward.data();
  bool const one_f_one_b_rules = sim.order == skip_order::by_position || sim.order == skip_order::alternating;
  bool const alternate_first = sim.order == skip_order::alternating;
  int* const candidate = sim.candidate.data();
  double* const candidate_ready = sim.candidate_ready.data();
  char* const candidate_backward = sim.candidate_backward.data();
  std::size_t const steps = sim.steps, last_forward = sim.route_length - 1;
  int* const candidate_round = sim.candidate_round.data();
  int const round = ++sim.round; // a rank whose candidate_round is older has none yet
  int const m = static_cast<int>(sim.next_step.size());
  while (sim.first_open < m && next_step[sim.first_open] >= steps) ++sim.first_open;
  int const last_open = sim.next_admit < m ? sim.next_admit : m - 1;
  double const* const input_ready = sim.input_ready.data();
  int first_rank = -1; // the rank whose candidate starts first
  double first_start = 0;
  for (int j = sim.first_open; j <= last_open; ++j) {
    std::size_t const k = next_step[j];
    if (k >= steps) continue;
    int const r = next_rank[j];
    double const ready = k != 0 ? input_ready[j] : step_ready(sim, model_paths, j, k);
    if (ready < 0) continue;
    bool const backward = k >= last_forward;
    if (one_f_one_b_rules && !backward) { // a forward here is the micro-batch's first visit to rank r
      int const allowed = sim.ranks.places - static_cast<int>(k);
      if (held[r] >= (allowed > 1 ? allowed : 1)) continue;
    }
    double const rank_free = free_at[r];
    double const start = ready > rank_free ? ready : rank_free;
    bool better = candidate_round[r] != round;
    if (!better) {
      double const held_ready = candidate_ready[r];
      double const held_start = held_ready > rank_free ? held_ready : rank_free;
      bool const held_backward = candidate_backward[r];
      if (start != held_start) better = start < held_start;
      else if (alternate_first && backward != held_backward) better = last_backward[r] ? !backward : backward;
      else if (ready != held_ready) better = ready < held_ready;
      else if (backward != held_backward) better = (one_f_one_b_rules && last_backward[r]) ? !backward : backward;
    }
    if (better) {
      candidate[r] = j;
      candidate_round[r] = round;
      candidate_ready[r] = ready;
      candidate_backward[r] = backward;
      if (first_rank == r || first_rank < 0 || start < first_start || (start == first_start && r < first_rank)) {
        first_rank = r;
        first_start = start;
      }
    }
  }
  if (first_rank < 0) return next_pass{};
  return next_pass{candidate[first_rank], first_start};
}

/// choose_rank_candidates where many micro-batches are open (skip_events::listed): the same
/// candidates, by the same rule over the same micro-batches in the same order, but only
/// the ranks the last step changed choose again, each among its own waiting micro-batches,
/// and the first rank comes from the tournament over the ranks. The rule is written out in
/// both (a shared helper would cost the scan, under a cap near the compilers' budget, a
/// call per micro-batch); skip.event_order.its_time_is_simulates checks they agree.
constexpr next_pass choose_listed_candidates(skip_events& sim, vec<vec<int>> const& model_paths) {
  // raw pointers: this loop runs inside the compiler, where every call counts
  std::size_t const* const next_step = sim.next_step.data();
  int const* const next_rank = sim.next_rank.data();
  double const* const free_at = sim.free_at.data();
  int const* const held = sim.held.data();
  char const* const last_backward = sim.last_backward.data();
  bool const one_f_one_b_rules = sim.order == skip_order::by_position || sim.order == skip_order::alternating;
  bool const alternate_first = sim.order == skip_order::alternating;
  int* const candidate = sim.candidate.data();
  double* const candidate_ready = sim.candidate_ready.data();
  char* const candidate_backward = sim.candidate_backward.data();
  std::size_t const last_forward = sim.route_length - 1;
  int const m = static_cast<int>(sim.next_step.size());
  double const* const input_ready = sim.input_ready.data();
  int const* const waiting = sim.waiting.data();
  int const* const waiting_count = sim.waiting_count.data();
  double* const best_start = sim.best_start.data();
  int* const best_rank = sim.best_rank.data();
  int const entering = sim.next_admit < m ? next_rank[sim.next_admit] : -1;
  int const changed[3] = {sim.changed[0], sim.changed[1] != sim.changed[0] ? sim.changed[1] : -1,
                          entering != sim.changed[0] && entering != sim.changed[1] ? entering : -1};
  sim.changed[0] = sim.changed[1] = -1;
  for (int const r : changed) {
    if (r < 0) continue;
    candidate[r] = -1;
    int const* const mine = waiting + static_cast<std::size_t>(r) * static_cast<std::size_t>(m);
    double const rank_free = free_at[r];
    double start_of_candidate = 0;
    for (int i = 0, n = waiting_count[r]; i < n; ++i) {
      int const j = mine[i];
      std::size_t const k = next_step[j];
      double const ready = k != 0 ? input_ready[j] : step_ready(sim, model_paths, j, k);
      if (ready < 0) continue;
      bool const backward = k >= last_forward;
      if (one_f_one_b_rules && !backward) { // a forward here is the micro-batch's first visit to rank r
        int const allowed = sim.ranks.places - static_cast<int>(k);
        if (held[r] >= (allowed > 1 ? allowed : 1)) continue;
      }
      double const start = ready > rank_free ? ready : rank_free;
      bool better = candidate[r] < 0;
      if (!better) {
        double const held_ready = candidate_ready[r];
        bool const held_backward = candidate_backward[r];
        if (start != start_of_candidate) better = start < start_of_candidate;
        else if (alternate_first && backward != held_backward) better = last_backward[r] ? !backward : backward;
        else if (ready != held_ready) better = ready < held_ready;
        else if (backward != held_backward) better = (one_f_one_b_rules && last_backward[r]) ? !backward : backward;
      }
      if (better) {
        candidate[r] = j;
        candidate_ready[r] = ready;
        candidate_backward[r] = backward;
        start_of_candidate = start;
      }
    }
    // the rank's leaf, then up to the root: each node the better of its children (the left
    // one, of lower ranks, on a tie), as far as a node changes
    std::size_t node = sim.leaves + static_cast<std::size_t>(r);
    int const leaf_rank = candidate[r] >= 0 ? r : -1;
    if (best_rank[node] == leaf_rank && best_start[node] == start_of_candidate) continue;
    best_rank[node] = leaf_rank;
    best_start[node] = start_of_candidate;
    for (node /= 2; node >= 1; node /= 2) {
      std::size_t const a = 2 * node, b = a + 1;
      bool const left = best_rank[b] < 0 || (best_rank[a] >= 0 && !(best_start[b] < best_start[a]));
      int const up_rank = left ? best_rank[a] : best_rank[b];
      double const up_start = left ? best_start[a] : best_start[b];
      if (best_rank[node] == up_rank && best_start[node] == up_start) break;
      best_rank[node] = up_rank;
      best_start[node] = up_start;
    }
  }
  if (best_rank[1] < 0) return next_pass{};
  return next_pass{candidate[best_rank[1]], best_start[1]};
}

/// Order most_work_remaining: each rank's candidate among the open micro-batches. First the
/// earliest end E of any pass the rank could run next; then, among the passes that could
/// start before E, the one with the most work left (ties: the earlier start, backward first,
/// micro-batch id).
constexpr void choose_most_work_remaining(skip_events& sim, vec<vec<int>> const& model_paths) {
  std::size_t const ranks = sim.candidate.size(), steps = sim.steps, last_forward = sim.route_length - 1;
  int* const candidate = sim.candidate.data();
  double* const candidate_ready = sim.candidate_ready.data();
  char* const candidate_backward = sim.candidate_backward.data();
  double* const earliest_end = sim.earliest_end.data();
  double* const start_of = sim.start_of.data();
  double const* const free_at = sim.free_at.data();
  double const* const step_work = sim.step_work.data();
  double const* const work_left = sim.work_left.data();
  std::size_t const* const next_step = sim.next_step.data();
  int const* const next_rank = sim.next_rank.data();
  double const* const input_ready = sim.input_ready.data();
  int const m = static_cast<int>(sim.next_step.size());
  while (sim.first_open < m && next_step[sim.first_open] >= steps) ++sim.first_open;
  int const last_open = sim.next_admit < m ? sim.next_admit : m - 1;
  for (std::size_t r = 0; r < ranks; ++r) earliest_end[r] = -1.0; // none yet
  for (int j = sim.first_open; j <= last_open; ++j) {
    std::size_t const J = static_cast<std::size_t>(j), k = next_step[J];
    start_of[J] = -1.0;
    if (k >= steps) continue;
    double const ready = k != 0 ? input_ready[J] : step_ready(sim, model_paths, j, k);
    if (ready < 0) continue;
    std::size_t const r = static_cast<std::size_t>(next_rank[J]);
    start_of[J] = ready > free_at[r] ? ready : free_at[r];
    double const end = start_of[J] + step_work[J * steps + k];
    if (earliest_end[r] < 0 || end < earliest_end[r]) earliest_end[r] = end;
  }
  for (std::size_t r = 0; r < ranks; ++r) candidate[r] = -1;
  for (int j = sim.first_open; j <= last_open; ++j) {
    std::size_t const J = static_cast<std::size_t>(j);
    double const start = start_of[J];
    if (start < 0) continue;
    std::size_t const r = static_cast<std::size_t>(next_rank[J]), k = next_step[J];
    if (!(start < earliest_end[r])) continue; // starts after some pass of the rank could end
    double const left = work_left[J * steps + k];
    bool const backward = k >= last_forward;
    bool better = candidate[r] < 0;
    if (!better) {
      std::size_t const c = static_cast<std::size_t>(candidate[r]);
      double const held_left = work_left[c * steps + next_step[c]];
      if (left != held_left) better = left > held_left;
      else if (start != start_of[c]) better = start < start_of[c];
      else if (backward != static_cast<bool>(candidate_backward[r])) better = backward;
    }
    if (better) {
      candidate[r] = j;
      candidate_ready[r] = start; // (its start: the rank is free by then)
      candidate_backward[r] = backward;
    }
  }
}

/// The rank candidate that starts first (ties: the lower rank), by a pass over the ranks.
constexpr next_pass earliest_candidate(skip_events const& sim) {
  next_pass first{};
  int const* const candidate = sim.candidate.data();
  double const* const candidate_ready = sim.candidate_ready.data();
  double const* const free_at = sim.free_at.data();
  std::size_t const ranks = sim.candidate.size();
  for (std::size_t r = 0; r < ranks; ++r) {
    if (candidate[r] < 0) continue;
    double const start = candidate_ready[r] > free_at[r] ? candidate_ready[r] : free_at[r];
    if (first.mb < 0 || start < first.start) first = next_pass{candidate[r], start};
  }
  return first;
}

/// Runs the next step of micro-batch `run.mb` from `run.start`: appends its pass(es) to its
/// rank's list, admits the micro-batch at its first step, counts it held on the rank at its
/// first forward there (orders by_position and alternating), frees its place there at its
/// last backward there (the backward of its first stage on that rank), and sets when its
/// next step's input arrives.
constexpr void run_step(skip_events& sim, table& t, skip_config const& c, sim_costs const& costs,
                        vec<vec<int>> const& model_paths, next_pass const& run) {
  // raw pointers and few calls: this runs inside the compiler, once per step of every
  // simulated order, where every call and statement counts against the budget
  std::size_t const mb = static_cast<std::size_t>(run.mb);
  std::size_t const L = sim.route_length;
  std::size_t* const next_step = sim.next_step.data();
  std::size_t const k = next_step[mb];
  int const* const route = t.paths[mb].data();
  int const* const stage_rank = t.stage_rank.data();
  int const s = k < L ? route[k] : route[2 * L - 2 - k]; // stage_of_step
  std::size_t const r = static_cast<std::size_t>(stage_rank[s]);
  double end = run.start;
  if (k == 0) {
    ++sim.next_admit;
    int* const admitted = sim.ranks.admitted.data();
    for (int q : model_paths[mb]) ++admitted[q];
    sim.admit_known = false;
  }
  bool const counts_held = sim.order == skip_order::by_position || sim.order == skip_order::alternating;
  bool const backward = k >= L - 1;
  // position of the micro-batch's first stage on rank r
  std::size_t const first = static_cast<std::size_t>(sim.first_on_rank.data()[mb * sim.free_at.size() + r]);
  if (counts_held && k == first) ++sim.held.data()[r];
  vec<action>& list = t.lists[r];
  int const chunk = t.stage_chunk.data()[s];
  if (k == L - 1) { // last forward, then its backward
    list.push_back(make_action(op::forward, s, run.mb, chunk));
    list.push_back(make_action(op::backward, s, run.mb, chunk));
    end += costs.duration(op::forward, s) + costs.duration(op::backward, s);
  } else {
    op const kind = k < L ? op::forward : op::backward;
    list.push_back(make_action(kind, s, run.mb, chunk));
    end += costs.duration(kind, s);
  }
  if (backward && route[first] == s) { // the backward of the first stage on this rank frees the place
    sim.ranks.released[r].push_back(end);
    sim.admit_known = false;
    if (counts_held) --sim.held.data()[r];
  }
  sim.free_at.data()[r] = end;
  sim.last_backward.data()[r] = backward;
  double* const list_free = sim.list_free.data();
  double* const list_input = sim.list_input.data();
  double const list_start = list_free[r] > list_input[mb] ? list_free[r] : list_input[mb];
  double const list_end = list_start + (end - run.start);
  list_free[r] = list_end;
  sim.list_end = list_end > sim.list_end ? list_end : sim.list_end;
  std::size_t const next = ++next_step[mb];
  int next_rank = -1;
  if (next < sim.steps) {
    next_rank = stage_rank[next < L ? route[next] : route[2 * L - 2 - next]];
    double const link = costs.link(static_cast<int>(r), next_rank, c.stages);
    sim.next_rank.data()[mb] = next_rank;
    sim.input_ready.data()[mb] = end + link;
    list_input[mb] = list_end + link;
  }
  if (sim.listed) { // choose_listed_candidates' waiting lists
    std::size_t const m = sim.next_step.size();
    int* const waiting = sim.waiting.data();
    int* const count = sim.waiting_count.data();
    int const j = run.mb;
    int* const here = waiting + r * m; // the micro-batch leaves rank r's list
    int const n = count[r]--;
    int i = 0;
    while (here[i] != j) ++i;
    for (; i + 1 < n; ++i) here[i] = here[i + 1];
    if (k == 0 && sim.next_admit < static_cast<int>(m)) { // the next one may enter: the last id
      std::size_t const q = static_cast<std::size_t>(sim.next_rank.data()[sim.next_admit]);
      waiting[q * m + static_cast<std::size_t>(count[q]++)] = sim.next_admit;
    }
    if (next_rank >= 0) { // and joins its next rank's list, in id order
      int* const there = waiting + static_cast<std::size_t>(next_rank) * m;
      int at = count[next_rank]++;
      for (; at > 0 && there[at - 1] > j; --at) there[at] = there[at - 1];
      there[at] = j;
    }
    sim.changed[0] = static_cast<int>(r);
    sim.changed[1] = next_rank;
  }
}

/// The table of one event simulation in order `order` (failed when it stalls); with
/// `makespan`, also the table's iteration time as simulate() gives it (tests check they
/// agree), found on the way at no extra cost: the compilers' constexpr budgets count.
/// `listed`: -1 chooses the candidates as below; 0 and 1 force the pass over every open
/// micro-batch (choose_rank_candidates) or the lists (choose_listed_candidates), which give
/// the same table (tests compare them).
constexpr table skip_table_in_order(skip_config const& c, vec<vec<int>> const& model_paths, skip_order order,
                                    double* makespan = nullptr, int listed = -1) {
  int const m = c.microbatches;
  int const places = c.memory > 0 ? c.memory : m;
  table t = skip_frame(c, model_paths);
  sim_costs const costs = skip_sim_costs(c);
  std::size_t const ranks = static_cast<std::size_t>(c.stages), mbs = static_cast<std::size_t>(m);
  skip_events sim;
  sim.route_length = t.paths[0].size();
  sim.steps = 2 * sim.route_length - 1; // the last forward and its backward are one step
  sim.next_step.assign(mbs, 0);
  sim.input_ready.assign(mbs, 0.0);
  sim.next_rank.assign(mbs, 0); // every route starts at stage 0, on rank 0
  sim.free_at.assign(ranks, 0.0);
  sim.list_free.assign(ranks, 0.0);
  sim.list_input.assign(mbs, 0.0);
  sim.candidate.assign(ranks, -1);
  sim.candidate_round.assign(ranks, 0);
  sim.candidate_ready.assign(ranks, 0.0);
  sim.candidate_backward.assign(ranks, 0);
  sim.held.assign(ranks, 0);
  sim.last_backward.assign(ranks, 0);
  sim.order = order;
  if (order == skip_order::most_work_remaining) { // each step's duration and the work left from it
    sim.step_work.assign(mbs * sim.steps, 0.0);
    sim.work_left.assign(mbs * sim.steps, 0.0);
    sim.earliest_end.assign(ranks, 0.0);
    sim.start_of.assign(mbs, -1.0);
    std::size_t const L = sim.route_length;
    for (std::size_t j = 0; j < mbs; ++j) {
      auto const& route = t.paths[j];
      double left = 0;
      for (std::size_t k = sim.steps; k-- > 0;) {
        int const s = stage_of_step(route, L, k);
        double const work = k == L - 1 ? costs.duration(op::forward, s) + costs.duration(op::backward, s)
                                       : costs.duration(k < L ? op::forward : op::backward, s);
        sim.step_work[j * sim.steps + k] = work;
        left += work;
        sim.work_left[j * sim.steps + k] = left;
        if (k > 0) left += costs.link(t.rank_of(stage_of_step(route, L, k - 1)), t.rank_of(s), c.stages);
      }
    }
  }
  sim.first_on_rank.assign(mbs * ranks, -1);
  for (std::size_t j = 0; j < mbs; ++j) {
    int const* const route = t.paths[j].data();
    int* const first = sim.first_on_rank.data() + j * ranks;
    for (std::size_t i = sim.route_length; i-- > 0;)
      first[t.stage_rank[static_cast<std::size_t>(route[i])]] = static_cast<int>(i);
  }
  // the lists and the tournament where more micro-batches can be open than twice the
  // tournament's depth (a node update costs about what one open micro-batch's does)
  int depth = 0;
  while (sim.leaves < ranks) {
    sim.leaves *= 2;
    ++depth;
  }
  sim.listed = order != skip_order::most_work_remaining && (listed < 0 ? places > 2 * depth : listed > 0);
  if (sim.listed) {
    sim.waiting.assign(ranks * mbs, -1);
    sim.waiting_count.assign(ranks, 0);
    if (mbs > 0) { // micro-batch 0 enters first, on rank 0
      sim.waiting_count[0] = 1;
      sim.waiting[0] = 0;
    }
    sim.best_start.assign(2 * sim.leaves, 0.0);
    sim.best_rank.assign(2 * sim.leaves, -1);
  }
  sim.ranks.places = places;
  sim.ranks.admitted.assign(ranks, 0);
  sim.ranks.released.resize(ranks);
  for (std::size_t remaining = mbs * sim.steps; remaining > 0; --remaining) {
    next_pass run{};
    if (order == skip_order::most_work_remaining) {
      choose_most_work_remaining(sim, model_paths);
      run = earliest_candidate(sim);
    } else if (sim.listed) {
      run = choose_listed_candidates(sim, model_paths);
    } else {
      run = choose_rank_candidates(sim, model_paths);
    }
    if (run.mb < 0) return failed({errc::cyclic_wait, -1, -1, -1, -1, "skip event simulation stalled"});
    run_step(sim, t, c, costs, model_paths, run);
  }
  t.memory_bound_chunks = c.layout == path_layout::round_trip ? places + 1 : places;
  t.memory_bound_microbatches = places < m ? places : 0; // the cap, when it binds
  if (makespan) *makespan = sim.list_end;
  return t;
}

/// Whether c's memory cap can bind: fewer places than micro-batches.
constexpr bool skip_cap_binds(skip_config const& c) { return c.memory > 0 && c.memory < c.microbatches; }

/// skip_table without the checks, in the earliest-start order only, with its iteration time:
/// the cost-aware assignment times its candidates with it (its caller checks them), and the
/// shortest of the four orders is taken once, for the paths chosen (skip_table).
constexpr table skip_table_unchecked(skip_config const& c, vec<vec<int>> const& model_paths, double& makespan) {
  return skip_table_in_order(c, model_paths, skip_order::earliest, &makespan);
}

/// The shortest of the four orders' tables under a binding cap (ties: the earlier order in
/// the enum); without one, the earliest-start order; with `makespan`, also its time. No
/// order is best everywhere (each is strictly the shortest somewhere: test
/// skip.cap_binding.four_orders_keep_the_shortest). Over S ≤ 16, all K, m ∈ {1, 4, 8, 16,
/// 32}, both layouts and caps K and K/2 with unit costs (2043 iterations) the four shorten
/// 526 iterations against the earliest-start order alone, by up to 17%; the full pipeline
/// with cap S takes 1F1B's (m + S − 1)·(F + B + W) (docs/05_skip_paths.md; bench_skip_paths'
/// skip_cap_orders and skip_cap_exact measure them).
/// `earliest` is the earliest-start order's table of model_paths with its time `earliest_time`
/// (skip_table_unchecked's), which the cost-aware assignment has already for the paths it
/// chose (simulating them again would cost the compilers' constexpr budgets ~12%).
constexpr table skip_table_shortest_from(skip_config const& c, vec<vec<int>> const& model_paths, table earliest,
                                         double earliest_time, double* makespan = nullptr) {
  double best_time = earliest_time;
  table best = static_cast<table&&>(earliest);
  if (makespan) *makespan = best_time;
  if (!skip_cap_binds(c)) return best;
  for (skip_order const order : {skip_order::by_position, skip_order::alternating, skip_order::most_work_remaining}) {
    double time = 0;
    table other = skip_table_in_order(c, model_paths, order, &time);
    if (!other.ok()) continue;
    if (!best.ok() || time < best_time) {
      best = static_cast<table&&>(other);
      best_time = time;
    }
  }
  if (makespan) *makespan = best_time;
  return best;
}
/// skip_table_shortest_from with the earliest-start order simulated here.
constexpr table skip_table_shortest(skip_config const& c, vec<vec<int>> const& model_paths,
                                    double* makespan = nullptr) {
  double time = 0;
  table earliest = skip_table_in_order(c, model_paths, skip_order::earliest, &time);
  return skip_table_shortest_from(c, model_paths, static_cast<table&&>(earliest), time, makespan);
}

/// Length of the step that starts at `i` of a skip table's rank list: 2 for a last forward
/// and the backward that follows it (one step of the event simulation), else 1.
constexpr std::size_t skip_step_length(vec<action> const& list, std::size_t i) {
  if (i + 1 < list.size() && list[i].kind == op::forward && list[i + 1].kind == op::backward &&
      list[i].stage == list[i + 1].stage && list[i].mb == list[i + 1].mb)
    return 2;
  return 1;
}

/// `list` with the step of length `len` at `from` moved to start at `to` (`to` a step
/// boundary of the list without it, counted in the list with it: to <= from moves it earlier,
/// to >= from + len later, past the steps in between).
constexpr void skip_move_step(vec<action> const& list, std::size_t from, std::size_t len, std::size_t to,
                              vec<action>& out) {
  out.clear();
  for (std::size_t i = 0; i <= list.size(); ++i) {
    if (i == to)
      for (std::size_t k = 0; k < len; ++k) out.push_back(list[from + k]);
    if (i < list.size() && (i < from || i >= from + len)) out.push_back(list[i]);
  }
}

/// The iteration time of t's lists and the sum of its passes' end times (the tie-break that
/// lets a move that ends passes earlier stay while the iteration is as long); `ok` false when
/// a rank waits in a cycle.
struct skip_order_score {
  bool ok = false;
  double makespan = 0, ends = 0;
};
/// With `resume`, t differs from the table whose times resume.base holds only as it says
/// (sim_resume); t's times go to `times`.
constexpr skip_order_score score_skip_order(table const& t, sim_costs const& costs, route_neighbours const& route,
                                            flat_times& times, sim_resume const& resume = {}) {
  simulation const sim = simulate_times(t, costs, route, resume, &times);
  skip_order_score out;
  if (!sim.ok()) return out;
  out.ok = true;
  for (double const end : times.end) {
    out.makespan = end > out.makespan ? end : out.makespan;
    out.ends += end;
  }
  return out;
}

/// What the order search of a skip table works with: the costs, the cap, the scratch.
struct skip_order_search {
  sim_costs costs;
  route_neighbours route; ///< the table's, made once: moves within a rank keep the routes
  int places = 0;
  int window = 8;
  long budget = 0; ///< simulations left; the search stops when none are
  vec<int> first, last;
  vec<action> saved, moved;
  vec<std::size_t> starts;
  std::size_t changed = 0; ///< the first position move() changed
  flat_times base, trial; ///< the times of the table descend() holds, and of a move's

  constexpr bool better(skip_order_score const& x, skip_order_score const& y) const {
    double const tol = 1e-12 * (1 + y.makespan);
    if (x.makespan < y.makespan - tol) return true;
    return x.makespan <= y.makespan + tol && x.ends < y.ends - 1e-12 * (1 + y.ends);
  }

  /// The step boundaries of `list`.
  constexpr void step_starts(vec<action> const& list) {
    starts.clear();
    for (std::size_t i = 0; i < list.size(); i += skip_step_length(list, i)) starts.push_back(i);
  }

  /// `moved` = `list` with its step number `step` moved to boundary number q (!= step,
  /// step + 1); false when the move passes a step of its own micro-batch (that order is its
  /// chain's) or breaks the cap.
  constexpr bool move(vec<action> const& list, std::size_t step, std::size_t q) {
    std::size_t const from = starts[step], len = skip_step_length(list, from);
    std::size_t const to = q < starts.size() ? starts[q] : list.size();
    std::size_t const a = to < from ? to : from + len, b = to < from ? from : to;
    for (std::size_t i = a; i < b; ++i)
      if (list[i].mb == list[from].mb) return false;
    changed = to < from ? to : from;
    skip_move_step(list, from, len, to, moved);
    return place_over_cap(moved, places, first, last) < 0;
  }

  /// Rounds of first-improvement descent: every step of every rank tried at each of the
  /// nearest `window` step boundaries before and after it. A move changes one rank's list
  /// from one position on, so its simulation resumes there from the times of the table
  /// before it (sim_resume: the same times as a simulation from the start).
  /// `best` is t's score and `base` t's times (the caller's score_skip_order wrote both).
  constexpr void descend(table& t, skip_order_score& best, int rounds) {
    for (int round = 0; round < rounds && budget > 0; ++round) {
      bool improved = false;
      for (std::size_t r = 0; r < t.lists.size(); ++r) {
        for (std::size_t step = 0;; ++step) {
          vec<action>& list = t.lists[r];
          step_starts(list);
          if (step >= starts.size()) break;
          std::size_t const w = static_cast<std::size_t>(window);
          std::size_t const lo = step > w ? step - w : 0;
          std::size_t const hi = step + w + 1 < starts.size() ? step + w + 1 : starts.size();
          for (std::size_t q = lo; q <= hi; ++q) {
            if (q == step || q == step + 1 || !move(list, step, q)) continue;
            if (budget-- <= 0) return;
            saved = list;
            list = moved;
            skip_order_score const x = score_skip_order(t, costs, route, trial, sim_resume{&base, r, changed});
            if (x.ok && better(x, best)) {
              best = x;
              base = static_cast<flat_times&&>(trial);
              improved = true;
              break; // the list changed: on to the next step (numbered in the new list)
            }
            list = saved;
          }
        }
      }
      if (!improved) break;
    }
  }
};

/// Local search on the per-rank orders of skip table t (compute passes, as the event
/// simulation writes them), c.order_search_rounds > 0 (skip_config): a descent moves one
/// step (the last forward and its backward are one) of one rank to one of the nearest
/// `window` step boundaries before or after it, and a move stays when the rank still holds
/// at most the cap's places, simulate() finds no cycle, and the iteration is shorter, or as
/// long with a smaller sum of the passes' end times (c.order_search_rounds rounds). Then
/// 4 kicks per round: from the best order, two to four random moves (a fixed pseudo-random
/// sequence: the same table every time), a descent, and the result kept when it beats the
/// best (a descent alone stops where no single move helps, and some shorter orders differ on
/// several ranks at once). At most rounds · min(64 · steps, 8192) simulations in all
/// (seconds at the tool's limits). The iteration never gets longer; dependencies need
/// nothing else (the simulation refuses an order that waits in a cycle, and a move within
/// one rank keeps every other list).
constexpr table improve_skip_order(skip_config const& c, table t, int window = 8) {
  if (c.order_search_rounds <= 0 || !t.ok()) return t;
  skip_order_search search;
  search.costs = skip_sim_costs(c);
  search.places = c.memory > 0 ? c.memory : c.microbatches;
  search.window = window;
  long steps = 0;
  for (auto const& list : t.lists)
    for (std::size_t i = 0; i < list.size(); i += skip_step_length(list, i)) ++steps;
  search.budget = static_cast<long>(c.order_search_rounds) * (64 * steps < 8192 ? 64 * steps : 8192);
  search.first.assign(static_cast<std::size_t>(c.microbatches), -1);
  search.last.assign(static_cast<std::size_t>(c.microbatches), -1);
  search.route = neighbours_on_routes(t);
  skip_order_score best = score_skip_order(t, search.costs, search.route, search.base);
  if (!best.ok) return t;
  search.descend(t, best, c.order_search_rounds);
  std::uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto next = [&seed](std::size_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::size_t>((seed >> 33) % (n > 0 ? n : 1));
  };
  for (int kick = 0; kick < 4 * c.order_search_rounds && search.budget > 0; ++kick) {
    table trial = t;
    for (int k = 0, moves = 2 + static_cast<int>(next(3)); k < moves; ++k) {
      vec<action>& list = trial.lists[next(trial.lists.size())];
      search.step_starts(list);
      if (search.starts.size() < 2) continue;
      std::size_t const step = next(search.starts.size());
      std::size_t const q = next(search.starts.size() + 1);
      if (q == step || q == step + 1 || !search.move(list, step, q)) continue;
      list = search.moved;
    }
    skip_order_score score = score_skip_order(trial, search.costs, search.route, search.base);
    if (!score.ok) continue;
    search.descend(trial, score, c.order_search_rounds);
    if (search.better(score, best)) {
      best = score;
      t = static_cast<table&&>(trial);
    }
  }
  return t;
}

} // namespace detail

/// The compute table of paths `model_paths` (model stages; checked) under configuration c:
/// rank s holds stage s (and the head stage S in layout round_trip). The per-rank order
/// comes from an event simulation of every micro-batch's chain (forwards along its path,
/// the last forward and its backward together, backwards in reverse): a rank runs one pass
/// at a time, picking among the passes whose input has arrived by (arrival, backward first,
/// micro-batch); micro-batches enter stage 0 in id order, and one enters only when every
/// rank on its path has a free place among its `memory` (so none waits for memory later).
/// Under a binding cap three more simulations run: two with 1F1B's rules
/// (skip_order::by_position: a count held per rank by position, alternation on ties;
/// skip_order::alternating: the alternation before the input-ready time) and one with the
/// dispatch rule "most work remaining" (skip_order::most_work_remaining); the shortest
/// iteration is kept. With c.order_search_rounds, a local search on the per-rank orders
/// follows (detail::improve_skip_order).
constexpr table skip_table(skip_config const& c, vec<vec<int>> const& model_paths) {
  if (auto d = check_config(c)) return failed(d);
  if (static_cast<int>(model_paths.size()) != c.microbatches)
    return failed({errc::bad_path, -1, -1, -1, -1, "one path per micro-batch"});
  if (auto r = check_paths(model_paths, c.stages, c.layout); r != path_rule::ok)
    return failed({errc::bad_path, -1, -1, -1, -1, path_rule_text(r)});
  return detail::improve_skip_order(c, detail::skip_table_shortest(c, model_paths));
}

namespace detail {

/// skip_table for paths checked already, whose earliest-start table (skip_table_unchecked's)
/// the caller has: make_skip's cost-aware assignment times its winner so.
constexpr table skip_table_from_earliest(skip_config const& c, vec<vec<int>> const& model_paths, table earliest,
                                         double earliest_time) {
  return improve_skip_order(c, skip_table_shortest_from(c, model_paths, static_cast<table&&>(earliest), earliest_time));
}

} // namespace detail

/// Model paths of a skip table (the head stage of layout round_trip dropped).
constexpr vec<vec<int>> model_paths(table const& t) {
  vec<vec<int>> out = t.paths;
  if (t.place == placement::custom && t.stages == t.ranks + 1)
    for (auto& path : out)
      if (!path.empty() && path.back() == t.ranks) path.pop_back();
  return out;
}

} // namespace pipesched
