// pipesched: PyTorch's action syntax ("2F0", "5I3", "1W7", "0SEND_F1"); reading it is
// analysis/csv.hpp's from_csv.
#pragma once

#include <string>

#include "pipesched/core/table.hpp"

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

} // namespace pipesched
