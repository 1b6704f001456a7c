// Test support for the stream executors (host/stream.hpp, cuda/basic_stream_executor.hpp):
// the items the tests push and what the stages must make of them, computed independently of
// any executor. Stage s maps each double x of an item to x * (1 + s/8) + s + 0.25 (a
// different affine map per stage, so the order of stages matters).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "pipesched/host/stream.hpp"

namespace stream_items {

/// Doubles per item.
inline constexpr int width = 8;

/// Stage s's map of one double.
inline double stage_map(double x, int s) { return x * (1.0 + s / 8.0) + s + 0.25; }

/// Item `id`'s input.
inline std::vector<double> input_of(std::uint64_t id) {
  std::vector<double> v(width);
  for (int k = 0; k < width; ++k) v[static_cast<std::size_t>(k)] = static_cast<double>(id) * 0.5 + k;
  return v;
}

/// What `stages` stages applied one after another make of item `id`.
inline std::vector<double> sequential(std::uint64_t id, int stages) {
  std::vector<double> v = input_of(id);
  for (int s = 0; s < stages; ++s)
    for (double& x : v) x = stage_map(x, s);
  return v;
}

/// Options of `stages` stages of `width` doubles, a window and an overflow policy (the host
/// stream_options, or the CUDA one: both have these fields).
template <class Options>
Options options(int stages, int window, pipesched::host::overflow o = pipesched::host::overflow::block) {
  Options opt;
  opt.input_bytes = width * sizeof(double);
  opt.output_bytes.assign(static_cast<std::size_t>(stages), width * sizeof(double));
  opt.window = window;
  opt.when_full = o;
  return opt;
}

/// What the consumer of push_and_pop saw: the items popped, and how many came out wrong.
struct popped {
  std::uint64_t items = 0;
  int wrong = 0;
};

/// Pushes items 0..n-1 from a producer thread (then close()) and pops on this thread until
/// the stream ends (host or CUDA stream executor). An item is wrong when it comes out of
/// push order, with another size, or not equal to `stages` stages applied one after another
/// (the same arithmetic: equal to the bit).
template <class Executor> popped push_and_pop(Executor& ex, std::uint64_t n, int stages) {
  std::thread producer([&] {
    for (std::uint64_t id = 0; id < n; ++id) {
      auto const v = input_of(id);
      ex.push(v.data());
    }
    ex.close();
  });
  popped r;
  while (auto item = ex.pop()) {
    std::vector<double> got(width);
    std::memcpy(got.data(), item->bytes.data(), std::min<std::size_t>(item->bytes.size(), width * sizeof(double)));
    if (item->id != r.items || item->bytes.size() != width * sizeof(double) || got != sequential(r.items, stages))
      ++r.wrong;
    ++r.items;
  }
  producer.join();
  return r;
}

} // namespace stream_items
