// pipesched: in-process channels between rank threads, with cancellation and deadlines.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pipesched/core/action.hpp"
#include "pipesched/plan/action_record.hpp"
#include "pipesched/plan/step.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace pipesched::host {

/// Thrown by a blocked transfer when another rank failed and the run is being stopped.
struct cancelled : std::runtime_error {
  cancelled() : std::runtime_error("pipesched: rank stopped because another rank failed") {}
};

/// Thrown when a transfer waited longer than the executor's timeout (the backstop against
/// a hang, e.g. a functor that never returns on the peer rank).
struct timeout_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Thrown when a receive gets a boundary other than the one it expects, or of another size.
struct transfer_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A shared stop flag.
class stop_state {
public:
  bool stopped() const { return stop_.load(std::memory_order_acquire); }
  void reset() { stop_.store(false, std::memory_order_release); }
  void raise() { stop_.store(true, std::memory_order_release); }

private:
  std::atomic<bool> stop_{false};
};

/// How a blocked transfer waits: polls `spin` times (a pause instruction each), then
/// `yields` times giving its core away between polls (cheaper than a sleep and a wake-up
/// when threads outnumber cores), then sleeps until woken — until the stop flag is raised
/// (cancelled) or for at most `timeout` (timeout_error).
struct wait_policy {
  stop_state const* stop = nullptr;
  std::chrono::nanoseconds timeout = std::chrono::seconds(60);
  int spin = 0;
  int yields = 0;
};

namespace detail {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
} // namespace detail

/// A one-way channel from one rank's thread to another's (one sender, one receiver).
///
/// A send of at most `eager_capacity()` bytes is copied into the channel's staging buffer
/// and completes at once (the receiver copies it out at its receive); a larger one waits
/// until the receiver has copied it straight from the sender's slot (rendezvous). Either
/// way a second send waits until the receiver has taken the first, so the channel holds at
/// most one boundary. Buffering can only let ranks run further ahead than rendezvous does,
/// never less far, so an order that verify() proves free of deadlock under rendezvous
/// cannot hang here either (a Kahn network with blocking reads is monotonic in its buffer
/// sizes); eager capacity 0 gives pure rendezvous, which tests use to exercise exactly
/// the verified protocol.
///
/// The receiver checks the identity (direction, sending stage and chunk, micro-batch) and the
/// size of what arrives. Waits poll briefly, then sleep; the stop flag (after `wake`) ends
/// them with `cancelled`, the deadline with `timeout_error`.
class channel {
public:
  channel() = default;
  channel(channel const&) = delete;
  channel& operator=(channel const&) = delete;

  /// Allocates the staging buffer (before any run: transfers allocate nothing).
  void reserve_eager(std::size_t bytes) {
    staging_ = bytes > 0 ? std::make_unique<unsigned char[]>(bytes) : nullptr;
    capacity_ = bytes;
  }
  std::size_t eager_capacity() const { return capacity_; }

  void send(void const* data, std::size_t bytes, boundary_identity id, wait_policy const& w) {
    await([&] { return state_.load() == empty; }, w, id, "a send waited for the previous boundary to be received");
    id_ = id;
    bytes_ = bytes;
    if (bytes <= capacity_) {
      if (bytes > 0) std::memcpy(staging_.get(), data, bytes);
      src_ = staging_.get();
      set(staged);
      return;
    }
    src_ = data;
    set(posted);
    await([&] { return state_.load() == taken; }, w, id, "a send waited for its receive");
    src_ = nullptr;
    set(empty);
  }

  void recv(void* data, std::size_t bytes, boundary_identity expect, wait_policy const& w) {
    await([&] { int const s = state_.load(); return s == staged || s == posted; }, w, expect,
          "a receive waited for its send");
    if (!(id_ == expect))
      throw transfer_error("pipesched: a receive got another boundary: expected the " + describe(expect) +
                           ", got the " + describe(id_));
    if (bytes_ != bytes)
      throw transfer_error("pipesched: the " + describe(expect) + " has " + std::to_string(bytes_) +
                           " bytes at the sender and " + std::to_string(bytes) +
                           " at the receiver: give both ends the same boundary size");
    if (bytes > 0) std::memcpy(data, src_, bytes);
    set(state_.load() == staged ? empty : taken);
  }

  /// Wakes every sleeper so it can see the stop flag.
  void wake() {
    std::lock_guard<std::mutex> lock(m_);
    cv_.notify_all();
  }

  /// Forgets a transfer left half-done by a stopped run.
  void reset() {
    std::lock_guard<std::mutex> lock(m_);
    state_.store(empty);
    src_ = nullptr;
  }

private:
  enum : int { empty, staged, posted, taken };

  /// A state change: seen by pollers at once; sleepers are woken under the lock, so none
  /// can miss it between its last check and its sleep (state_ and sleepers_ are sequentially
  /// consistent: a setter that reads no sleeper stored before any later sleeper checks).
  void set(int s) {
    state_.store(s);
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lock(m_);
      cv_.notify_all();
    }
  }

  template <class Pred>
  void await(Pred const& ready, wait_policy const& w, boundary_identity const& id, const char* what) {
    for (int i = 0; i < w.spin; ++i) {
      if (ready()) return;
      if (w.stop->stopped()) throw cancelled{};
      detail::cpu_relax();
    }
    for (int i = 0; i < w.yields; ++i) {
      if (ready()) return;
      if (w.stop->stopped()) throw cancelled{};
      std::this_thread::yield();
    }
    if (ready()) return;
    std::unique_lock<std::mutex> lock(m_);
    sleepers_.fetch_add(1);
    bool const ok = cv_.wait_for(lock, w.timeout, [&] { return ready() || w.stop->stopped(); });
    sleepers_.fetch_sub(1);
    if (ok && ready()) return;
    if (w.stop->stopped()) throw cancelled{};
    throw timeout_error(std::string("pipesched: ") + what + " longer than the timeout (the " + describe(id) + ")");
  }

  std::atomic<int> state_{empty};
  std::atomic<int> sleepers_{0};
  std::mutex m_;
  std::condition_variable cv_;
  std::unique_ptr<unsigned char[]> staging_;
  std::size_t capacity_ = 0;
  void const* src_ = nullptr;
  std::size_t bytes_ = 0;
  boundary_identity id_{};
};

/// The channels of p ranks, one per ordered pair (sender, receiver), and their stop flag.
class channel_mesh {
public:
  explicit channel_mesh(int ranks)
      : ranks_(ranks), channels_(std::make_unique<channel[]>(static_cast<std::size_t>(ranks * ranks))) {}

  int ranks() const { return ranks_; }
  channel& between(int from, int to) { return channels_[static_cast<std::size_t>(from * ranks_ + to)]; }
  stop_state const& stop() const { return stop_; }
  bool stopped() const { return stop_.stopped(); }

  /// Raises the stop flag and wakes every blocked transfer.
  void request_stop() {
    stop_.raise();
    for (int k = 0; k < ranks_ * ranks_; ++k) channels_[static_cast<std::size_t>(k)].wake();
  }

  /// Clears the flag and any half-done transfer before a new run.
  void reset() {
    stop_.reset();
    for (int k = 0; k < ranks_ * ranks_; ++k) channels_[static_cast<std::size_t>(k)].reset();
  }

private:
  int ranks_;
  std::unique_ptr<channel[]> channels_;
  stop_state stop_;
};

/// The transport of rank `rank` over a channel mesh: a SEND hands its boundary to the
/// peer's channel (copied at once when small, rendezvous when large), a RECV takes it and
/// checks its identity. Records the action in progress (`current`).
class channel_transport {
public:
  channel_transport(channel_mesh& mesh, int rank, wait_policy w, action_record* current)
      : mesh_(&mesh), rank_(rank), wait_(w), current_(current) {}

  template <class Step> void on_action(Step s) { *current_ = action_record::of(s); }

  template <class Step> void send(Step s, io const& x) {
    mesh_->between(rank_, s.peer).send(x.in.data, x.in.bytes, identity_of(s), wait_);
  }
  template <class Step> void recv(Step s, io const& x) {
    mesh_->between(s.peer, rank_).recv(x.out.data, x.out.bytes, identity_of(s), wait_);
  }

private:
  channel_mesh* mesh_;
  int rank_;
  wait_policy wait_;
  action_record* current_;
};

} // namespace pipesched::host
