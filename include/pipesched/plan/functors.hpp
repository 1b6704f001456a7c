// pipesched: the stage functors an executor is given, one per rank — a container or a tuple.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace pipesched::detail {

/// Calls fn(std::integral_constant<int, R>{}) for the R equal to the run-time rank.
template <int Ranks, class Fn> void with_rank(int rank, Fn&& fn) {
  [&]<int... R>(std::integer_sequence<int, R...>) {
    (void)((rank == R ? (fn(std::integral_constant<int, R>{}), true) : false) || ...);
  }
  (std::make_integer_sequence<int, Ranks>{});
}

/// Rank R's functor: fs[R] when fs is indexable, std::get<R>(fs) for a tuple.
template <int R, class Fs> decltype(auto) functor_of(Fs& fs) {
  if constexpr (requires { fs[R]; }) return (fs[R]);
  else return (std::get<R>(fs));
}

/// Throws unless `fs` holds exactly `ranks` functors (checked by the compiler for tuples
/// and arrays, at run time for containers).
template <int Ranks, class Fs> void check_functor_count(Fs const& fs) {
  if constexpr (std::is_array_v<Fs>) {
    static_assert(std::extent_v<Fs> == static_cast<std::size_t>(Ranks),
                  "pipesched: run(functors) needs exactly one stage functor per rank of the schedule");
  } else if constexpr (requires { std::tuple_size<Fs>::value; }) {
    static_assert(std::tuple_size<Fs>::value == static_cast<std::size_t>(Ranks),
                  "pipesched: run(functors) needs exactly one stage functor per rank of the schedule");
  } else if constexpr (requires { fs.size(); }) {
    if (fs.size() != static_cast<std::size_t>(Ranks))
      throw std::invalid_argument("pipesched: run(functors) got " + std::to_string(fs.size()) +
                                  " stage functors for a schedule of " + std::to_string(Ranks) +
                                  " ranks: give one per rank");
  }
}

/// The same for a rank count known at run time (the first parameter is ignored): a
/// container of another size throws std::invalid_argument.
template <int Unused, class Fs> void check_functor_count(Fs const& fs, int ranks) {
  if (fs.size() != static_cast<std::size_t>(ranks))
    throw std::invalid_argument("pipesched: run(functors) got " + std::to_string(fs.size()) +
                                " stage functors for a schedule of " + std::to_string(ranks) +
                                " ranks: give one per rank");
}

} // namespace pipesched::detail
