// The step rule DualPipe and DualPipeV share, transcribed once for tests/cpu/schedules_dualpipe.cpp
// and schedules_dualpipe_v.cpp: DeepSeek's dualpipe.py and dualpipev.py (PyTorch's DualPipeV)
// run the same eight phases per rank and differ only in how many ranks one direction spans
// and how a chunk's passes are named. Independent of include/pipesched/schedules/: it writes
// PyTorch's action text directly, for comparison with analysis/csv.hpp's to_csv.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

namespace dualpipe_rule {

/// One rank's order, cells joined by ",". The rank is `k` places from the outer end of the
/// `n` ranks one direction spans; each of its two chunks (0: the one entered first, 1: the
/// other) runs `per_chunk` micro-batches; `stage(c)` is chunk c's stage and `mb(c, j)` the
/// micro-batch of its j-th pass of a kind. A zero-bubble backward (I) queues its W in a FIFO
/// that the W steps pop; the rank next to the turn (k = n - 1) does not overlap its first
/// phase-4 pair. Valid for per_chunk >= 2n.
template <class Stage, class Mb> std::string order(int n, int k, int per_chunk, Stage stage, Mb mb) {
  std::vector<std::string> cells;
  int fc[2] = {0, 0}, bc[2] = {0, 0};
  std::deque<std::string> store;
  auto f = [&](int c) { return std::to_string(stage(c)) + "F" + std::to_string(mb(c, fc[c]++)); };
  auto b = [&](int c, bool zb) {
    std::string const s = std::to_string(stage(c)), j = std::to_string(mb(c, bc[c]++));
    if (zb) store.push_back(s + "W" + j);
    return s + (zb ? "I" : "B") + j;
  };
  auto w = [&] {
    cells.push_back(store.front());
    store.pop_front();
  };
  auto fb = [&](int fwd, int bwd) { // one overlapped pair: the forward first
    std::string const x = f(fwd);
    std::string const y = b(bwd, false);
    cells.push_back("(" + x + ";" + y + ")OVERLAP_F_B");
  };
  for (int i = 0; i < (n - k - 1) * 2; ++i) cells.push_back(f(0)); // phase 1: nF0
  for (int i = 0; i < k + 1; ++i) {                                // phase 2: nF0F1
    cells.push_back(f(0));
    cells.push_back(f(1));
  }
  for (int i = 0; i < n - k - 1; ++i) { // phase 3: nB1W1F1, zero bubble
    cells.push_back(b(1, true));
    w();
    cells.push_back(f(1));
  }
  for (int i = 0; i < per_chunk - 2 * n + k + 1; ++i) { // phase 4: nF0B1F1B0
    if (i == 0 && k == n - 1) {
      cells.push_back(f(0));
      cells.push_back(b(1, false));
    } else {
      fb(0, 1);
    }
    fb(1, 0);
  }
  for (int i = 0; i < n - k - 1; ++i) { // phase 5: nB1F1B0
    cells.push_back(b(1, false));
    fb(1, 0);
  }
  bool zb = false; // phase 6: nB1B0, the second half zero bubble
  for (int i = 0; i < k + 1; ++i) {
    if (i == (k + 1) / 2 && k % 2 == 1) zb = true;
    cells.push_back(b(1, zb));
    if (i == (k + 1) / 2 && k % 2 == 0) zb = true;
    cells.push_back(b(0, zb));
  }
  for (int i = 0; i < n - k - 1; ++i) { // phase 7: nWB0
    w();
    cells.push_back(b(0, true));
  }
  for (int i = 0; i < k + 1; ++i) w(); // phase 8: nW
  std::string row;
  for (std::size_t i = 0; i < cells.size(); ++i) row += (i ? "," : "") + cells[i];
  return row;
}

/// The rows of a CSV text (each ends with '\n').
inline std::vector<std::string> rows_of(std::string const& csv) {
  std::vector<std::string> rows;
  std::size_t pos = 0;
  while (pos < csv.size()) {
    std::size_t e = csv.find('\n', pos);
    rows.push_back(csv.substr(pos, e - pos));
    pos = e + 1;
  }
  return rows;
}

} // namespace dualpipe_rule
