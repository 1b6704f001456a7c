// Test support: what the two emulated CUDA runtimes (emulated_cuda.hpp, emulated_nccl.hpp)
// do alike, written once: host memory stands for device memory (each runtime allocates its
// own way), a graph's executable is a copy of the captured graph, and the types a runtime
// policy names. Each runtime derives from runtime_basics<its graph type>; each header defines
// its own CUstream_st (the two are never included together).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>

struct CUstream_st;

namespace emu_support {

template <class Graph> struct runtime_basics {
  using status = int;
  using stream_t = CUstream_st*;
  using graph_t = Graph*;
  using graph_exec_t = Graph*;
  static constexpr status success = 0;

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
