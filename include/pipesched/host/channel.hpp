// pipesched: in-process rendezvous channels between rank threads, with cancellation.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipesched/core/action.hpp"
#include "pipesched/plan/step.hpp"

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

/// Thrown when a receive gets a boundary other than the one it expects.
struct transfer_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What a transfer carries besides its bytes, to check that both ends agree.
struct transfer_tag {
  int direction = 0; ///< 0: activation, 1: gradient
  int mb = 0;
  int from_stage = 0;
};

/// A shared stop flag plus every channel to wake when it is raised.
class stop_state {
public:
  bool stopped() const { return stop_.load(std::memory_order_acquire); }
  void reset() { stop_.store(false, std::memory_order_release); }
  void raise() { stop_.store(true, std::memory_order_release); }

private:
  std::atomic<bool> stop_{false};
};

/// A one-way rendezvous channel between two ranks: `send` blocks until the receiver has
/// copied the data out, `recv` blocks until a sender offers data. Both give up with
/// `cancelled` once the stop flag is raised (after `wake`), and with `timeout_error`
/// after `timeout`.
class channel {
public:
  void send(void const* data, std::size_t bytes, transfer_tag tag, stop_state const& stop,
            std::chrono::nanoseconds timeout) {
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock<std::mutex> lock(m_);
    src_ = data;
    bytes_ = bytes;
    tag_ = tag;
    posted_ = true;
    taken_ = false;
    cv_.notify_all();
    bool const done = cv_.wait_until(lock, deadline, [&] { return taken_ || stop.stopped(); });
    bool const ok = taken_;
    posted_ = false;
    taken_ = false;
    src_ = nullptr;
    if (ok) return;
    if (stop.stopped()) throw cancelled{};
    (void)done;
    throw timeout_error("pipesched: a send waited longer than the timeout for its receive (" + describe(tag) + ")");
  }

  void recv(void* data, std::size_t bytes, transfer_tag expect, stop_state const& stop,
            std::chrono::nanoseconds timeout) {
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock<std::mutex> lock(m_);
    bool const ready = cv_.wait_until(lock, deadline, [&] { return (posted_ && !taken_) || stop.stopped(); });
    if (stop.stopped()) throw cancelled{};
    if (!ready)
      throw timeout_error("pipesched: a receive waited longer than the timeout for its send (" + describe(expect) +
                          ")");
    if (tag_.direction != expect.direction || tag_.mb != expect.mb)
      throw transfer_error("pipesched: a receive got another boundary: expected " + describe(expect) + ", got " +
                           describe(tag_));
    if (bytes_ != bytes)
      throw transfer_error("pipesched: a send and its receive disagree on the size (" + std::to_string(bytes_) +
                           " and " + std::to_string(bytes) + " bytes)");
    if (bytes > 0) std::memcpy(data, src_, bytes);
    taken_ = true;
    cv_.notify_all();
  }

  /// Wakes every waiter so it can see the stop flag.
  void wake() {
    std::lock_guard<std::mutex> lock(m_);
    cv_.notify_all();
  }

  /// Forgets a transfer left half-done by a stopped run.
  void reset() {
    std::lock_guard<std::mutex> lock(m_);
    posted_ = taken_ = false;
    src_ = nullptr;
  }

private:
  static std::string describe(transfer_tag t) {
    return std::string(t.direction == 0 ? "activation" : "gradient") + " of micro-batch " + std::to_string(t.mb) +
           (t.from_stage >= 0 ? " from stage " + std::to_string(t.from_stage) : "");
  }

  std::mutex m_;
  std::condition_variable cv_;
  void const* src_ = nullptr;
  std::size_t bytes_ = 0;
  transfer_tag tag_{};
  bool posted_ = false;
  bool taken_ = false;
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

/// The transport of rank `rank` over a channel mesh: a SEND blocks until the peer's RECV
/// takes the data (rendezvous), so a wrong transfer order would hang — until the timeout.
class channel_transport {
public:
  channel_transport(channel_mesh& mesh, int rank, std::chrono::nanoseconds timeout)
      : mesh_(&mesh), rank_(rank), timeout_(timeout) {}

  template <class Step> void send(Step, io const& x) {
    constexpr int dir = Step::kind == op::send_act ? 0 : 1;
    mesh_->between(rank_, Step::peer)
        .send(x.in.data, x.in.bytes, transfer_tag{dir, Step::mb, Step::stage}, mesh_->stop(), timeout_);
  }
  template <class Step> void recv(Step, io const& x) {
    constexpr int dir = Step::kind == op::recv_act ? 0 : 1;
    mesh_->between(Step::peer, rank_)
        .recv(x.out.data, x.out.bytes, transfer_tag{dir, Step::mb, -1}, mesh_->stop(), timeout_);
  }

private:
  channel_mesh* mesh_;
  int rank_;
  std::chrono::nanoseconds timeout_;
};

} // namespace pipesched::host
