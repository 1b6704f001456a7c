// pipesched: schedules written by the user, as text or as a constexpr function.
#pragma once

#include <string_view>

#include "pipesched/analysis/csv.hpp"
#include "pipesched/pipeline/schedule.hpp"

namespace pipesched {

namespace detail {
template <class Source>
concept has_text = requires {
  { Source::text } -> std::convertible_to<std::string_view>;
};
template <class Source>
concept has_make = requires {
  { Source::make() } -> std::same_as<table>;
};
} // namespace detail

/// A user's table as a schedule family. `Source` provides either
///   `static constexpr std::string_view text` — per-rank rows of PyTorch-style cells,
///   e.g. "0F0,0F1,0B0,0B1\n1F0,1B0,1F1,1B1" (compute only, or with SEND/RECV cells), or
///   `static constexpr pipesched::table make()` — a table built in code.
/// The compiler parses, lowers (unless transfers are given) and verifies it like any
/// generated schedule; problems stop the build with the message of the failing check.
template <class Source> struct custom_family {
  static_assert(detail::has_text<Source> || detail::has_make<Source>,
                "pipesched: custom<Source> needs `static constexpr std::string_view text` (per-rank rows of "
                "actions such as \"0F0,0F1,0B0\") or `static constexpr pipesched::table make()`");
  static constexpr const char* name = "custom";
  static constexpr table source() {
    if constexpr (detail::has_text<Source>) return from_csv(Source::text);
    else return Source::make();
  }
  static constexpr diagnostic check(params const&) { return source().error; }
  static constexpr table generate(params const&) { return source(); }
};

template <class Source> using custom = schedule<custom_family<Source>>;

} // namespace pipesched
