// pipesched::vec: the std::vector subset the library uses, including self-referencing
// arguments (an element of the array passed to push_back or resize that reallocates).
#include <doctest/doctest.h>

#include <type_traits>
#include <vector>

#include "pipesched/core/vec.hpp"

using pipesched::vec;

TEST_CASE("vec.basics") {
  vec<int> v;
  for (int i = 0; i < 100; ++i) v.push_back(i);
  CHECK(v.size() == 100);
  CHECK(v[57] == 57);
  v.insert(v.begin() + 3, -1);
  CHECK(v[3] == -1);
  CHECK(v[4] == 3);
  v.erase(v.begin() + 3);
  CHECK(v[3] == 3);
  v.resize(10);
  CHECK(v.size() == 10);
  vec<int> w = v;
  CHECK(w == v);
  std::vector<int> s(w); // conversions both ways are explicit
  CHECK(s.size() == 10);
  CHECK(vec<int>(s) == w);
  static_assert(!std::is_convertible_v<vec<int>, std::vector<int>>);
  static_assert(!std::is_convertible_v<std::vector<int>, vec<int>>);
}

TEST_CASE("vec.self_reference") {
  vec<int> v;
  v.push_back(7);
  while (v.size() < v.capacity()) v.push_back(1);
  v.push_back(v[0]); // reallocates while reading v[0]
  CHECK(v.back() == 7);
  v.resize(v.capacity() + 5, v[0]);
  CHECK(v.back() == 7);
  v.assign(v.size() * 3, v[1]);
  CHECK(v.back() == 1);
}

static_assert([] {
  vec<int> v(3, 4);
  v.push_back(v[0]);
  return v.size() == 4 && v[3] == 4;
}());
