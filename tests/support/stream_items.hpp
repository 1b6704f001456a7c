// Test support for the stream executors (host/stream.hpp, cuda/basic_stream_executor.hpp):
// the items the tests push and what the stages must make of them, computed independently of
// any executor. Stage s maps each double x of an item to x * (1 + s/8) + s + 0.25 (a
// different affine map per stage, so the order of stages matters).
#pragma once

#include <cstddef>
#include <cstdint>
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

} // namespace stream_items
