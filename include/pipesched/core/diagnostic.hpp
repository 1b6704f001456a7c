// pipesched: error codes shared by generators, lowering, verification and parsers.
#pragma once

#include <cstdint>
#include <string>

namespace pipesched {

/// Every problem pipesched can report. Compile-time checks static_assert on these codes;
/// run-time callers get them in a `diagnostic` with the place where the problem is.
enum class errc : std::uint8_t {
  ok = 0,
  // parameters
  zero_ranks,
  zero_microbatches,
  zero_chunks,
  needs_one_chunk,
  needs_two_chunks,
  needs_even_split,
  group_size_out_of_range,
  too_large,
  negative_cost,
  extra_slots_out_of_range,
  // tables
  stage_out_of_range,
  microbatch_out_of_range,
  wrong_rank,
  missing_pass,
  duplicate_pass,
  mixed_backward,
  backward_before_forward,
  weight_before_input,
  cyclic_wait,
  bad_overlap,
  // lowering and transfers
  missing_recv,
  transfer_mismatch,
  transfer_deadlock,
  // memory
  memory_bound_exceeded,
  // text input
  parse_error,
  // paths
  bad_path,
  // names
  unknown_schedule,
  // stream programs (CUDA)
  program_unordered_read,
  program_unordered_rewrite,
  program_hang,
  program_malformed,
  // generators
  not_generated,
  // buffer slots of a lowered table
  slot_mismatch,
  // costs given to a simulation
  cost_shape,
};

/// A short sentence that says what is wrong and what to change.
constexpr const char* message(errc e) {
  switch (e) {
  case errc::ok: return "ok";
  case errc::zero_ranks: return "ranks<P> must be at least 1: a pipeline needs one rank or more";
  case errc::zero_microbatches: return "microbatches<M> must be at least 1";
  case errc::zero_chunks: return "chunks<V> must be at least 1";
  case errc::needs_one_chunk:
    return "this schedule holds one chunk per rank: drop chunks<V> or use interleaved_1f1b for V > 1";
  case errc::needs_two_chunks: return "V-shape schedules hold exactly two chunks per rank: use chunks<2> or drop it";
  case errc::needs_even_split:
    return "dualpipe needs an even number of ranks and of micro-batches: half of the micro-batches enter from each "
           "end, half of the ranks lie on each side of the middle";
  case errc::group_size_out_of_range:
    return "group_size<G> must be between 1 and the number of micro-batches (0 picks the default, min(p, m))";
  case errc::too_large: return "too many ranks, stages or micro-batches: at most 4096 ranks and 65535 stages or micro-batches";
  case errc::negative_cost: return "costs must be non-negative and F + B + W must be positive";
  case errc::extra_slots_out_of_range: return "extra_slots<N> must be between 0 and 64";
  case errc::stage_out_of_range: return "an action names a stage outside 0..S-1";
  case errc::microbatch_out_of_range: return "an action names a micro-batch outside 0..m-1";
  case errc::wrong_rank: return "an action runs on a rank that does not hold its stage";
  case errc::missing_pass: return "a (pass, stage, micro-batch) that every schedule must run is missing";
  case errc::duplicate_pass: return "a (pass, stage, micro-batch) appears more than once";
  case errc::mixed_backward: return "a (stage, micro-batch) has both a fused B and a split I/W backward";
  case errc::backward_before_forward: return "a backward pass comes before its own forward on the same rank";
  case errc::weight_before_input: return "a weight-gradient pass W comes before its input-gradient pass I";
  case errc::cyclic_wait: return "the ranks' orders wait on each other in a cycle: the schedule would hang";
  case errc::bad_overlap:
    return "an overlapped pair must be a forward followed by a B or I of another stage or micro-batch on the same "
           "rank, neither half needing the other's output";
  case errc::missing_recv: return "a pass that needs a boundary from another rank has no receive before it";
  case errc::transfer_mismatch: return "a send and the receive its peer posts at the same point do not match";
  case errc::transfer_deadlock: return "the blocking sends and receives wait on each other: the lowered schedule would hang";
  case errc::memory_bound_exceeded: return "a rank's peak activation memory exceeds the schedule's bound";
  case errc::parse_error: return "the text is not a valid action list";
  case errc::slot_mismatch:
    return "a pass or transfer reads a buffer slot that does not hold the boundary it expects (or has no slot for "
           "it): the table's slot numbers are wrong; let lower() assign them";
  case errc::bad_path: return "a micro-batch path breaks a path rule";
  case errc::cost_shape:
    return "the costs do not fit the table: per-stage costs need one entry per stage, link latencies and bandwidths "
           "p x p entries (a skip table in layout round_trip has S + 1 stages: make its costs with skip_sim_costs)";
  case errc::unknown_schedule: return "no schedule has that name";
  case errc::program_unordered_read:
    return "the stream program may read a boundary slot before its write is done: a wait on the writer's event is "
           "missing or comes before its record";
  case errc::program_unordered_rewrite:
    return "the stream program may rewrite a boundary slot while its previous boundary is still read or sent: a wait "
           "on the last reader's event is missing or comes before its record";
  case errc::program_hang: return "the streams of the stream program wait on each other in a cycle: it would hang";
  case errc::program_malformed:
    return "the stream program does not run each action of the table exactly once, passes in their rank's order";
  case errc::not_generated:
    return "the generator made no such order for these parameters (a split generator's alternative that is not "
           "needed)";
  }
  return "unknown error";
}

/// An error value: the code and, where it applies, where it was found.
struct diagnostic {
  errc code = errc::ok;
  int rank = -1;     ///< rank (CSV row) or -1
  int position = -1; ///< index in the rank's list (CSV cell) or -1
  int stage = -1;
  int mb = -1;
  const char* detail = nullptr; ///< optional finer description (static string)

  constexpr explicit operator bool() const { return code != errc::ok; }
  constexpr bool ok() const { return code == errc::ok; }
};

/// Human-readable form of a diagnostic ("cyclic_wait at rank 2, position 7: ...").
inline std::string to_string(diagnostic const& d) {
  std::string s = message(d.code);
  if (d.detail) {
    s += " (";
    s += d.detail;
    s += ")";
  }
  auto add = [&](const char* name, int v) {
    if (v >= 0) {
      s += ", ";
      s += name;
      s += " ";
      s += std::to_string(v);
    }
  };
  add("rank", d.rank);
  add("position", d.position);
  add("stage", d.stage);
  add("micro-batch", d.mb);
  return s;
}

} // namespace pipesched
