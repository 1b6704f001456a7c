// A stage of known cost for the executor benchmarks: every pass busy-waits for a set time,
// reads the first byte of each input boundary and writes its output's first 64 bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>

#include <pipesched/plan/step.hpp>

namespace bench_support {

using pipesched::io;

/// Busy-waits for `us` microseconds (a stage of known cost that keeps its core).
inline void spin_for(double us) {
  if (us <= 0) return;
  auto const end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(static_cast<std::int64_t>(us * 1e3));
  while (std::chrono::steady_clock::now() < end) {
  }
}

/// Each pass spins, reads its inputs' first bytes and writes its output's (so the
/// boundaries are really produced and consumed).
struct timed_stage {
  double pass_us = 0;
  std::uint64_t sum = 0;
  void touch(io const& x) {
    if (x.in) sum += *x.in.as<unsigned char>();
    if (x.aux) sum += *x.aux.as<unsigned char>();
    if (x.out) std::memset(x.out.data, static_cast<int>(sum & 0xff), 64);
  }
  template <class St> void forward(St, io const& x) {
    spin_for(pass_us);
    touch(x);
  }
  template <class St> void backward(St, io const& x) {
    spin_for(2 * pass_us);
    touch(x);
  }
};

} // namespace bench_support
