// plan_test::for_each_type_in_part (plan_support.hpp): part k of n visits exactly the types at
// the indices i with i % n == k, in list order, so the n parts together visit every type once;
// and the types of the other parts are not instantiated (a poisoned type in another part
// would stop this file compiling).
#include <doctest/doctest.h>

#include <cstddef>
#include <type_traits>
#include <vector>

#include "plan_support.hpp"

namespace {

/// Type i of the list: carries its index.
template <std::size_t I> struct tag { static constexpr std::size_t index = I; };

/// A type that must never be visited: calling the functor below on it does not compile.
struct poison {};

struct recorder {
  std::vector<std::size_t>* seen;
  template <class T> void operator()(T*) const {
    static_assert(!std::is_same_v<T, poison>, "for_each_type_in_part instantiated a type of another part");
    seen->push_back(T::index);
  }
};

using seven = plan_test::type_list<tag<0>, tag<1>, tag<2>, tag<3>, tag<4>, tag<5>, tag<6>>;

template <std::size_t Part, std::size_t Parts, class List> std::vector<std::size_t> visited(List list) {
  std::vector<std::size_t> seen;
  plan_test::for_each_type_in_part<Part, Parts>(list, recorder{&seen});
  return seen;
}

} // namespace

TEST_CASE("plan_support.for_each_type_in_part: the slices i % n == k partition the list") {
  // 7 types in 3 parts: {0, 3, 6}, {1, 4}, {2, 5}.
  CHECK(visited<0, 3>(seven{}) == std::vector<std::size_t>{0, 3, 6});
  CHECK(visited<1, 3>(seven{}) == std::vector<std::size_t>{1, 4});
  CHECK(visited<2, 3>(seven{}) == std::vector<std::size_t>{2, 5});
  // One part is the whole list, in order; more parts than types leaves the extra parts empty.
  CHECK(visited<0, 1>(seven{}) == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6});
  CHECK(visited<6, 8>(seven{}) == std::vector<std::size_t>{6});
  CHECK(visited<7, 8>(seven{}).empty());
}

TEST_CASE("plan_support.for_each_type_in_part: the other parts' types are not instantiated") {
  // poison sits at indices 1 and 3: part 0 of 2 (indices 0, 2, 4) never calls the recorder on
  // it, so recorder::operator()<poison> and its static_assert are never instantiated.
  using mixed = plan_test::type_list<tag<0>, poison, tag<2>, poison, tag<4>>;
  CHECK(visited<0, 2>(mixed{}) == std::vector<std::size_t>{0, 2, 4});
}
