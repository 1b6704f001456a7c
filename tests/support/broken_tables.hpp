// Test support: tables broken on purpose, for the checks that must refuse them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "pipesched/core/table.hpp"

namespace broken_tables {

/// The first slot write on some rank that lands on a boundary nothing has read yet, made by
/// moving a RECV's output onto the slot of the rank's previous write: (rank, index) of that
/// RECV, or (-1, -1) when no such RECV exists.
inline std::pair<int, int> clobber_unread_slot(pipesched::table& t) {
  for (std::size_t r = 0; r < t.lists.size(); ++r) {
    auto& list = t.lists[r];
    for (std::size_t j = 0; j < list.size(); ++j) {
      if (!pipesched::is_recv(list[j].kind)) continue;
      // the latest earlier write whose boundary no action in between reads
      for (std::size_t i = j; i-- > 0;) {
        std::uint16_t const k = list[i].out;
        if (k == pipesched::no_slot) continue;
        bool read = false;
        for (std::size_t b = i + 1; b < j && !read; ++b) read = list[b].in == k || list[b].aux == k;
        if (!read && k != list[j].out) {
          list[j].out = k;
          return {static_cast<int>(r), static_cast<int>(j)};
        }
        break;
      }
    }
  }
  return {-1, -1};
}

} // namespace broken_tables
