// pipesched: the action a rank is in, in one word — for failures that name it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "pipesched/core/action.hpp"
#include "pipesched/plan/step.hpp"

namespace pipesched {

/// "activation of micro-batch 3 from stage 2 (chunk 0)".
inline std::string describe(boundary_identity const& b) {
  return std::string(b.direction == 0 ? "activation" : "gradient") + " of micro-batch " + std::to_string(b.mb) +
         " from stage " + std::to_string(b.from_stage) + " (chunk " + std::to_string(b.from_chunk) + ")";
}

/// An action packed into one word (kind, stage, micro-batch), cheap to record before every
/// action so that a failure can name the action it happened in.
struct action_record {
  std::uint64_t bits = ~std::uint64_t{0};

  template <class Step> static constexpr action_record of(Step const& s) {
    return action_record{static_cast<std::uint64_t>(s.kind) | (std::uint64_t(s.stage) << 8) |
                         (std::uint64_t(s.mb) << 24) | (std::uint64_t(s.chunk) << 40)};
  }
  bool empty() const { return bits == ~std::uint64_t{0}; }
  op kind() const { return static_cast<op>(bits & 0xff); }
  int stage() const { return static_cast<int>((bits >> 8) & 0xffff); }
  int mb() const { return static_cast<int>((bits >> 24) & 0xffff); }
  int chunk() const { return static_cast<int>((bits >> 40) & 0xff); }
};

/// "F of stage 2, micro-batch 3" (or "no action yet").
inline std::string describe(action_record const& a) {
  if (a.empty()) return "before its first action";
  return std::string(op_name(a.kind())) + " of stage " + std::to_string(a.stage()) + ", micro-batch " +
         std::to_string(a.mb());
}

/// The name of a profiler range around a pass issued for rank r: PyTorch's action syntax and
/// the rank, "2F3 r1" (stage 2's forward of micro-batch 3, issued for rank 1). `number` is a
/// micro-batch, or a stream's item (which outgrows action_record's 16 bits).
struct action_label {
  char text[48];
};
inline action_label range_label(int stage, op kind, std::uint64_t number, int rank) {
  action_label l{};
  std::snprintf(l.text, sizeof l.text, "%d%s%llu r%d", stage, op_name(kind), static_cast<unsigned long long>(number),
                rank);
  return l;
}
inline action_label label_of(action_record const& a, int rank) {
  return range_label(a.stage(), a.kind(), static_cast<std::uint64_t>(a.mb()), rank);
}

/// Where a run failed: the rank, and the action it was in (or before its first action).
struct failure_site {
  int rank = -1;
  action_record action{};
};

} // namespace pipesched
