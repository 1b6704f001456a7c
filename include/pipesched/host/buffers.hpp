// pipesched: host memory for one rank's boundary buffers, allocated once.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <vector>

#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/step.hpp"

namespace pipesched::host {

/// One rank's boundary slots in one aligned block of host memory. Allocated by the
/// constructor; the views stay valid and nothing is allocated again until destruction.
class boundary_buffers {
public:
  boundary_buffers() = default;
  /// `slots` slots of `slot_bytes` bytes each.
  boundary_buffers(int slots, std::size_t slot_bytes)
      : boundary_buffers(std::vector<std::size_t>(static_cast<std::size_t>(slots), slot_bytes)) {}
  /// One slot per entry, of that many bytes.
  explicit boundary_buffers(std::vector<std::size_t> const& slot_bytes)
      : slots_(static_cast<int>(slot_bytes.size())), views_(slot_bytes.size()) {
    std::size_t const n = block_bytes(slot_bytes);
    if (n > 0) {
      block_ = static_cast<unsigned char*>(::operator new (n, std::align_val_t{slot_alignment}));
      std::memset(block_, 0, n);
    }
    // zero-byte slots keep a null address (a boundary of no bytes has nothing to point at)
    carve_slots(block_, slot_bytes, views_.data());
    for (std::size_t k = 0; k < slot_bytes.size(); ++k)
      if (slot_bytes[k] == 0) views_[k].data = nullptr;
  }
  boundary_buffers(boundary_buffers const&) = delete;
  boundary_buffers& operator=(boundary_buffers const&) = delete;
  boundary_buffers(boundary_buffers&& o) noexcept
      : slots_(o.slots_), block_(o.block_), views_(static_cast<std::vector<view>&&>(o.views_)) {
    o.block_ = nullptr;
    o.slots_ = 0;
  }
  boundary_buffers& operator=(boundary_buffers&& o) noexcept {
    if (this != &o) {
      release();
      slots_ = o.slots_;
      block_ = o.block_;
      views_ = static_cast<std::vector<view>&&>(o.views_);
      o.block_ = nullptr;
      o.slots_ = 0;
    }
    return *this;
  }
  ~boundary_buffers() { release(); }

  int slots() const { return slots_; }
  /// Views of the slots, `slots()` of them (null when there are none).
  view const* views() const { return views_.empty() ? nullptr : views_.data(); }
  view const& operator[](int k) const { return views_[static_cast<std::size_t>(k)]; }

private:
  void release() {
    if (block_) ::operator delete (block_, std::align_val_t{slot_alignment});
    block_ = nullptr;
  }
  int slots_ = 0;
  unsigned char* block_ = nullptr;
  std::vector<view> views_;
};

} // namespace pipesched::host
