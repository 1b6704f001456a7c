// pipesched: a forward-only pipeline over an endless input stream, on host threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pipesched/plan/step.hpp"

namespace pipesched::host {

/// What push() does when the pipeline already holds `window` items it has not delivered.
enum class overflow : std::uint8_t {
  block,  ///< wait until the consumer has taken an item (back-pressure on the producer)
  reject, ///< return false at once: the caller decides (drop, retry, shed load)
};

/// Settings of a stream executor.
struct stream_options {
  /// Bytes of the boundary after each stage (S entries: stage s's output; the last one is
  /// what pop() returns) and of each input item.
  std::vector<std::size_t> output_bytes;
  std::size_t input_bytes = 0;
  /// Items in flight at most (between push and pop): every boundary is a ring of this many
  /// buffers, allocated once; an item's micro-batch index (`Step::mb`) is its number modulo
  /// the window, so per-item state a functor keeps has `window` entries.
  int window = 4;
  overflow when_full = overflow::block;
};

/// Thrown by push/pop after the pipeline was cancelled, or after a stage failed (then with
/// the stage's exception's message; the exception itself is rethrown by `finish`).
struct stream_closed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// An item that left the pipeline: its number (in push order) and its output bytes.
struct stream_item {
  std::uint64_t id = 0;
  std::vector<unsigned char> bytes;
};

/// A forward-only pipeline of S stages, one thread each, fed by an endless input stream:
/// the steady state of the forward-only schedule repeated, no drain between items. The
/// producer push()es items, the consumer pop()s results in push order; at most `window`
/// items are in flight (push blocks, or rejects, when they are). Stage functors are the
/// forward-only ones of compiled plans and run-time schedules: `forward(Step const& s, io
/// const& x)` with a runtime_step (s.stage, s.mb = item number mod window, s.first_stage,
/// s.last_stage), reading x.in and writing x.out — here stage 0's x.in is the pushed item
/// and the last stage's x.out is what pop() returns (has_in and has_out are always true).
///
/// Boundaries are rings of `window` buffers allocated once; a stage writes its output
/// straight into the next stage's ring (no copy between stages). `close()` then `finish()`
/// lets the items in flight finish (pop them); `cancel()` stops at once and drops them.
/// A functor that throws stops the pipeline: push/pop throw stream_closed, and finish()
/// rethrows the functor's exception.
template <class Functor> class stream_executor {
public:
  stream_executor(std::vector<Functor>& functors, stream_options const& o)
      : functors_(&functors), stages_(static_cast<int>(o.output_bytes.size())), window_(o.window), options_(o) {
    if (stages_ < 1)
      throw std::invalid_argument("pipesched: stream_options::output_bytes needs one size per stage (at least one)");
    if (functors.size() != static_cast<std::size_t>(stages_))
      throw std::invalid_argument("pipesched: a stream executor of " + std::to_string(stages_) + " stages got " +
                                  std::to_string(functors.size()) + " stage functors: give one per stage");
    if (window_ < 1) throw std::invalid_argument("pipesched: stream_options::window must be at least 1");
    // ring 0 holds the inputs, ring s + 1 stage s's outputs
    rings_.reserve(static_cast<std::size_t>(stages_) + 1);
    rings_.push_back(std::make_unique<ring>(window_, o.input_bytes));
    for (int s = 0; s < stages_; ++s)
      rings_.push_back(std::make_unique<ring>(window_, o.output_bytes[static_cast<std::size_t>(s)]));
    pushed_at_.assign(static_cast<std::size_t>(window_), {});
    done_.assign(static_cast<std::size_t>(stages_), false);
    stage_cv_ = std::make_unique<std::condition_variable[]>(static_cast<std::size_t>(stages_));
    try {
      for (int s = 0; s < stages_; ++s) threads_.emplace_back([this, s] { stage_loop(s); });
    } catch (...) {
      cancel();
      join();
      throw;
    }
  }
  stream_executor(stream_executor const&) = delete;
  stream_executor& operator=(stream_executor const&) = delete;
  ~stream_executor() {
    cancel();
    join();
  }

  /// Feeds one item (input_bytes of `data`); its number is the count of items pushed
  /// before it. Blocks while `window` items are in flight (overflow::block) or returns false
  /// (overflow::reject). Throws stream_closed after close(), cancel() or a failure.
  bool push(void const* data) {
    ring& in = *rings_[0];
    std::unique_lock<std::mutex> lock(m_);
    if (closed_ || stopped_) throw closed_error();
    auto const room = [&] { return inflight_ < static_cast<std::uint64_t>(window_) || stopped_; };
    if (!room()) {
      if (options_.when_full == overflow::reject) return false;
      push_cv_.wait(lock, room);
      if (stopped_) throw closed_error();
    }
    std::uint64_t const id = next_id_++;
    ++inflight_;
    lock.unlock();
    // the ring slot for this item is free: every earlier item in it was delivered
    std::size_t const slot = static_cast<std::size_t>(id % static_cast<std::uint64_t>(window_));
    if (in.bytes > 0) std::memcpy(in.slot(slot), data, in.bytes);
    pushed_at_[slot] = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> publish(m_);
    in.ready = id + 1; // one producer: items arrive in order
    stage_cv_[0].notify_one();
    return true;
  }

  /// The next item in push order, when it has gone through every stage; waits for it.
  /// Returns nothing once the stream is closed and every item was delivered. Throws
  /// stream_closed after cancel() or a failure.
  std::optional<stream_item> pop() {
    ring& out = *rings_.back();
    std::unique_lock<std::mutex> lock(m_);
    pop_cv_.wait(lock, [&] { return stopped_ || out.ready > delivered_ || (closed_ && delivered_ == next_id_); });
    if (stopped_) throw closed_error();
    if (out.ready <= delivered_) return std::nullopt; // closed and drained
    std::uint64_t const id = delivered_;
    lock.unlock();
    std::size_t const slot = static_cast<std::size_t>(id % static_cast<std::uint64_t>(window_));
    stream_item item{id, std::vector<unsigned char>(out.bytes)};
    if (out.bytes > 0) std::memcpy(item.bytes.data(), out.slot(slot), out.bytes);
    latency_.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - pushed_at_[slot]).count());
    lock.lock();
    ++delivered_;
    --inflight_;
    push_cv_.notify_one();                      // room for the producer
    stage_cv_[stages_ - 1].notify_one();        // an output slot for the last stage
    return item;
  }

  /// No more items: push throws from now on; items in flight go on and can be popped.
  void close() {
    std::lock_guard<std::mutex> lock(m_);
    closed_ = true;
    wake_all();
  }

  /// Closes the stream and waits until every pushed item has gone through every stage (pop
  /// them to make room: with a full window the last stage waits for the consumer). Rethrows
  /// a stage's exception.
  void finish() {
    close();
    std::unique_lock<std::mutex> lock(m_);
    done_cv_.wait(lock, [&] { return stopped_ || rings_.back()->ready == next_id_; });
    if (error_) std::rethrow_exception(error_);
  }

  /// Stops at once: items in flight are dropped, stages return, push/pop throw.
  void cancel() {
    std::lock_guard<std::mutex> lock(m_);
    stopped_ = true;
    wake_all();
  }

  /// Items pushed so far, and delivered (popped).
  std::uint64_t pushed() const {
    std::lock_guard<std::mutex> lock(m_);
    return next_id_;
  }
  std::uint64_t delivered() const {
    std::lock_guard<std::mutex> lock(m_);
    return delivered_;
  }
  /// Latency (µs from push to the moment pop took it) of every item popped so far, in order.
  std::vector<double> const& latencies() const { return latency_; }
  int stages() const { return stages_; }
  int window() const { return window_; }

private:
  /// `window` buffers of `bytes` each; `ready` counts the items written into it so far
  /// (published), `taken` those its reader is done with.
  struct ring {
    std::size_t bytes;
    std::size_t stride;
    std::unique_ptr<unsigned char[]> block;
    std::uint64_t ready = 0; // guarded by the executor's mutex
    std::uint64_t taken = 0;
    ring(int window, std::size_t b)
        : bytes(b), stride((b + 63) / 64 * 64), block(std::make_unique<unsigned char[]>(stride * static_cast<std::size_t>(window) + 1)) {}
    unsigned char* slot(std::size_t k) { return block.get() + k * stride; }
  };

  /// Wakes every waiter (close, cancel, failure); called with the mutex held.
  void wake_all() {
    push_cv_.notify_all();
    pop_cv_.notify_all();
    done_cv_.notify_all();
    for (int s = 0; s < stages_; ++s) stage_cv_[s].notify_all();
  }

  stream_closed closed_error() const {
    if (error_) {
      try {
        std::rethrow_exception(error_);
      } catch (std::exception const& e) {
        return stream_closed(std::string("pipesched: the stream stopped: a stage failed: ") + e.what());
      } catch (...) {
        return stream_closed("pipesched: the stream stopped: a stage failed");
      }
    }
    return stream_closed(closed_ && !stopped_ ? "pipesched: push after close()" : "pipesched: the stream was cancelled");
  }

  void stage_loop(int s) {
    ring& in = *rings_[static_cast<std::size_t>(s)];
    ring& out = *rings_[static_cast<std::size_t>(s) + 1];
    Functor& f = (*functors_)[static_cast<std::size_t>(s)];
    std::uint64_t const w = static_cast<std::uint64_t>(window_);
    for (std::uint64_t id = 0;; ++id) {
      {
        std::unique_lock<std::mutex> lock(m_);
        // go on when the input is there and the output slot is free (the item `window`
        // before this one has left the next stage — for the last stage: was popped), or stop
        // when nothing more can come (closed, and the producer or the stage before is done)
        auto const upstream_done = [&] { return closed_ && (s == 0 ? next_id_ <= id : done_[static_cast<std::size_t>(s) - 1]); };
        auto const go = [&] {
          if (stopped_) return true;
          bool const input = in.ready > id;
          std::uint64_t const freed = s + 1 == stages_ ? delivered_ : rings_[static_cast<std::size_t>(s) + 1]->taken;
          return (input && id < freed + w) || (!input && upstream_done());
        };
        // a few yielding polls first: waking a sleeping thread costs tens of µs
        for (int k = 0; k < 32 && !go(); ++k) {
          lock.unlock();
          std::this_thread::yield();
          lock.lock();
        }
        stage_cv_[s].wait(lock, go);
        if (stopped_) return;
        if (in.ready <= id) {
          done_[static_cast<std::size_t>(s)] = true; // closed, and everything before went through
          if (s + 1 < stages_) stage_cv_[s + 1].notify_one();
          done_cv_.notify_all();
          return;
        }
      }
      std::size_t const slot = static_cast<std::size_t>(id % w);
      runtime_step st{};
      st.kind = op::forward;
      st.stage = s;
      st.mb = static_cast<int>(slot);
      st.in = static_cast<int>(slot);
      st.out = static_cast<int>(slot);
      st.stages = stages_;
      st.has_in = st.has_out = true;
      st.first_stage = s == 0;
      st.last_stage = s + 1 == stages_;
      io const x{view{in.slot(slot), in.bytes}, view{out.slot(slot), out.bytes}, view{}, nullptr, s};
      try {
        f.forward(st, x);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m_);
        if (!error_) error_ = std::current_exception();
        stopped_ = true;
        wake_all();
        return;
      }
      std::lock_guard<std::mutex> lock(m_);
      in.taken = id + 1;
      out.ready = id + 1;
      if (s > 0) stage_cv_[s - 1].notify_one(); // a free output slot for the stage before
      if (s + 1 < stages_) stage_cv_[s + 1].notify_one();
      else {
        pop_cv_.notify_one();
        done_cv_.notify_all();
      }
    }
  }

  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  std::vector<Functor>* functors_;
  int stages_;
  int window_;
  stream_options options_;
  std::vector<std::unique_ptr<ring>> rings_;
  std::vector<std::chrono::steady_clock::time_point> pushed_at_;
  std::vector<double> latency_;
  std::vector<bool> done_; ///< per stage: finished after close (guarded by m_)
  std::vector<std::thread> threads_;
  mutable std::mutex m_;
  // who waits for what: the producer for room (push_cv_), the consumer for the next result
  // (pop_cv_), stage s for its input and its output slot (stage_cv_[s]); each state change
  // wakes only those it concerns
  std::condition_variable push_cv_, pop_cv_, done_cv_;
  std::unique_ptr<std::condition_variable[]> stage_cv_;
  std::uint64_t next_id_ = 0;   // items pushed
  std::uint64_t delivered_ = 0; // items popped
  std::uint64_t inflight_ = 0;
  bool closed_ = false;
  bool stopped_ = false;
  std::exception_ptr error_;
};

} // namespace pipesched::host
