// Test support: how the NCCL executor's CPU tests (on tests/support/emulated_nccl.hpp) look
// at failures: fresh folders for failure boards, and each rank's exception sorted by type.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "support/emulated_nccl.hpp"

#include "pipesched/cuda/basic_nccl_executor.hpp"
#include "pipesched/cuda/launch.hpp"

namespace emu_nccl {

/// A path in the temporary folder named after `what` and this process, removed if present.
inline std::string fresh_folder(char const* what) {
  auto const p = std::filesystem::temp_directory_path() /
                 (std::string("pipesched_") + what + "_" + std::to_string(static_cast<long>(::getpid())));
  std::filesystem::remove_all(p);
  return p.string();
}

/// A file failure board in a fresh folder, removed at the end of the scope.
struct scoped_board {
  pipesched::cuda::file_failure_board board;
  explicit scoped_board(char const* what) : board(fresh_folder(what)) {}
  scoped_board(scoped_board const&) = delete;
  scoped_board& operator=(scoped_board const&) = delete;
  ~scoped_board() { std::filesystem::remove_all(board.folder()); }

  /// Executor options that post failures to this board, with `deadline`.
  pipesched::cuda::nccl_options options(std::chrono::milliseconds deadline) {
    pipesched::cuda::nccl_options o;
    o.deadline = deadline;
    o.board = &board;
    return o;
  }
};

/// Rank k's outcome `e` must be an exception (its message INFO'd): a transport_error goes to
/// on_transport(error), another cuda::error to on_error(error); anything else fails.
template <class OnTransport, class OnError>
void expect_error(std::exception_ptr const& e, int k, OnTransport on_transport, OnError on_error) {
  REQUIRE(e);
  std::string const m = message_of(e);
  INFO(m);
  try {
    std::rethrow_exception(e);
  } catch (pipesched::cuda::transport_error const& t) {
    on_transport(t);
  } catch (pipesched::cuda::error const& c) {
    on_error(c);
  } catch (...) {
    FAIL("rank ", k, " ended with another exception: ", m);
  }
}

/// Rank k's outcome must be a transport_error; `check` looks at it.
template <class Check> void expect_transport_error(std::exception_ptr const& e, int k, Check check) {
  expect_error(e, k, check, [&](pipesched::cuda::error const&) {
    FAIL("rank ", k, " ended with another exception: ", message_of(e));
  });
}

/// The outcomes of all `ranks` ranks must be transport_errors; check(error, k) looks at rank k's.
template <class Check> void expect_transport_errors(std::vector<std::exception_ptr> const& errors, int ranks, Check check) {
  REQUIRE(errors.size() == static_cast<std::size_t>(ranks));
  for (int k = 0; k < ranks; ++k) {
    CAPTURE(k);
    expect_transport_error(errors[static_cast<std::size_t>(k)], k,
                           [&](pipesched::cuda::transport_error const& t) { check(t, k); });
  }
}

/// The outcomes of all `ranks` ranks must be exceptions: on_transport(error, k) looks at rank
/// k's transport_error, on_error(error, k) at another cuda::error; anything else fails.
template <class OnTransport, class OnError>
void expect_errors(std::vector<std::exception_ptr> const& errors, int ranks, OnTransport on_transport, OnError on_error) {
  REQUIRE(errors.size() == static_cast<std::size_t>(ranks));
  for (int k = 0; k < ranks; ++k) {
    CAPTURE(k);
    expect_error(
        errors[static_cast<std::size_t>(k)], k, [&](pipesched::cuda::transport_error const& t) { on_transport(t, k); },
        [&](pipesched::cuda::error const& c) { on_error(c, k); });
  }
}

/// Boundaries per directed edge (from, to) of a lowered table, sends counted on the sender.
inline std::map<std::pair<int, int>, std::size_t> sends_per_edge(pipesched::table const& lowered) {
  std::map<std::pair<int, int>, std::size_t> n;
  for (std::size_t r = 0; r < lowered.lists.size(); ++r)
    for (pipesched::action a : lowered.lists[r])
      if (pipesched::is_send(a.kind)) ++n[{static_cast<int>(r), a.peer}];
  return n;
}

/// Every directed edge of world w carried the lowered table's sends `iterations` times, each
/// boundary `bytes` long, plus (with `warm_up`) one warm-up boundary on every edge in use.
inline void expect_bytes_per_edge(world const& w, pipesched::table const& lowered, std::size_t iterations,
                                  std::size_t bytes, bool warm_up, std::string const& name) {
  auto const sends = sends_per_edge(lowered);
  int const P = static_cast<int>(lowered.lists.size());
  for (int a = 0; a < P; ++a)
    for (int b = 0; b < P; ++b) {
      auto const it = sends.find({a, b});
      std::size_t const n = it == sends.end() ? 0 : it->second;
      INFO(name, " edge ", a, "->", b);
      CHECK(w.bytes_moved[static_cast<std::size_t>(a * P + b)] == (iterations * n + (n > 0 && warm_up ? 1 : 0)) * bytes);
    }
}

} // namespace emu_nccl
