// pipesched tests: splitmix64, the seeded generator of the tests' random cases and data — the
// same sequence on every platform (std's distributions are not portable).
#pragma once

#include <cstdint>

namespace test_support {

/// The next value of the splitmix64 sequence whose state is `s` (advances it).
inline std::uint64_t splitmix64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

} // namespace test_support
