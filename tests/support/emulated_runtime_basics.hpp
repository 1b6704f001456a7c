// Test support: what the two emulated CUDA runtimes (emulated_cuda.hpp, emulated_nccl.hpp)
// do alike, written once: host memory stands for device memory (each runtime allocates its
// own way), a graph's executable is a copy of the captured graph, and the types a runtime
// policy names. Each runtime derives from runtime_basics<its graph type>; each header defines
// its own CUstream_st (the two are never included together).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

struct CUstream_st;

namespace emu_support {

/// A profiler range pushed ("+" and its name) or popped ("-"), on a thread.
struct range_event {
  std::thread::id thread;
  std::string text;
};

/// Every range_push / range_pop so far, in order, over all threads (clear_ranges empties it).
inline std::vector<range_event>& ranges() {
  static std::vector<range_event> r;
  return r;
}
inline std::mutex& ranges_mutex() {
  static std::mutex m;
  return m;
}
inline void clear_ranges() {
  std::lock_guard<std::mutex> g(ranges_mutex());
  ranges().clear();
}

/// Pushes and pops balance on every thread, and no pop comes before its push.
inline bool ranges_balanced() {
  std::vector<std::pair<std::thread::id, int>> depth;
  for (emu_support::range_event const& e : emu_support::ranges()) {
    auto it = std::find_if(depth.begin(), depth.end(), [&](auto const& d) { return d.first == e.thread; });
    if (it == depth.end()) it = depth.insert(depth.end(), {e.thread, 0});
    it->second += e.text == "-" ? -1 : 1;
    if (it->second < 0) return false;
  }
  for (auto const& d : depth)
    if (d.second != 0) return false;
  return true;
}

template <class Graph> struct runtime_basics {
  using status = int;
  using stream_t = CUstream_st*;
  using graph_t = Graph*;
  using graph_exec_t = Graph*;
  static constexpr status success = 0;

  /// nvtxRangePushA / nvtxRangePop, recorded (ranges()).
  static void range_push(char const* name) {
    std::lock_guard<std::mutex> g(ranges_mutex());
    ranges().push_back({std::this_thread::get_id(), std::string("+") + name});
  }
  static void range_pop() {
    std::lock_guard<std::mutex> g(ranges_mutex());
    ranges().push_back({std::this_thread::get_id(), "-"});
  }

  static status free(void* p) {
    std::free(p);
    return success;
  }
  static status memset(void* p, int v, std::size_t n) {
    std::memset(p, v, n);
    return success;
  }
  static status graph_instantiate(Graph** x, Graph* g) {
    *x = new Graph(*g);
    return success;
  }
  static status graph_destroy(Graph* g) {
    delete g;
    return success;
  }
  static status graph_exec_destroy(Graph* x) {
    delete x;
    return success;
  }
};

} // namespace emu_support
