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
template <class Source>
concept has_route_text = requires {
  { Source::routes } -> std::convertible_to<std::string_view>;
};
template <class Source>
concept has_route_mode = requires {
  { Source::routes } -> std::convertible_to<csv_routes>;
};
template <class Source>
concept has_ranks = requires {
  { Source::ranks } -> std::convertible_to<int>;
};

/// How custom<Source> reads Source::text: its routes and rank count when it names them.
template <class Source> constexpr csv_read_options custom_read_options() {
  csv_read_options o{};
  if constexpr (has_route_text<Source>) {
    o.routes = csv_routes::given;
    o.route_text = Source::routes;
  } else if constexpr (has_route_mode<Source>) {
    o.routes = Source::routes;
  }
  if constexpr (has_ranks<Source>) o.ranks = Source::ranks;
  return o;
}
} // namespace detail

/// A user's table as a schedule family. `Source` provides either
///   `static constexpr std::string_view text` — per-rank rows of PyTorch-style cells,
///   e.g. "0F0,0F1,0B0,0B1\n1F0,1B0,1F1,1B1" (compute only, or with SEND/RECV cells), or
///   `static constexpr pipesched::table make()` — a table built in code.
/// With text, micro-batches that skip stages (DualPipe, skip paths) need their routes:
///   `static constexpr auto routes = pipesched::csv_routes::ascending;` (each micro-batch
///   visits the stages of its F cells in increasing order), or
///   `static constexpr std::string_view routes = "0 1 3\n0 2 3\n";` (line j: micro-batch
///   j's stages in the order it visits them);
/// and `static constexpr int ranks = P;` when the last ranks run nothing (blank rows).
/// The compiler parses, lowers (unless transfers are given) and verifies it like any
/// generated schedule; problems stop the build with the message of the failing check.
template <class Source> struct custom_family {
  static_assert(detail::has_text<Source> || detail::has_make<Source>,
                "pipesched: custom<Source> needs `static constexpr std::string_view text` (per-rank rows of "
                "actions such as \"0F0,0F1,0B0\") or `static constexpr pipesched::table make()`");
  static constexpr const char* name = "custom";
  static constexpr table source() {
    if constexpr (detail::has_text<Source>) return from_csv(Source::text, detail::custom_read_options<Source>());
    else return Source::make();
  }
  static constexpr diagnostic check(params const&) { return source().error; }
  static constexpr table generate(params const&) { return source(); }
};

template <class Source> using custom = schedule<custom_family<Source>>;

} // namespace pipesched
