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
  std::vector<std::size_t> output_bytes{};
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

namespace detail {

/// What both stream executors (this one and cuda::basic_stream_executor) keep under one
/// mutex: the checks of their options, the admission of items into the window, the count of
/// items delivered, and the stop state (close, cancel, the first failure). `failure_prefix`
/// opens the message of stream_closed after a failure, before the failure's own message.
struct stream_gate {
  int window;
  overflow when_full;
  char const* failure_prefix;
  mutable std::mutex m;
  // the producer waits for room (push_cv), the consumer for the next result (pop_cv)
  std::condition_variable push_cv, pop_cv;
  std::uint64_t next_id = 0;   ///< items admitted (pushed)
  std::uint64_t delivered = 0; ///< items popped
  std::uint64_t inflight = 0;
  bool closed = false, stopped = false;
  std::exception_ptr error;

  stream_gate(std::size_t stages, std::size_t functors, int w, overflow o, char const* prefix)
      : window(w), when_full(o), failure_prefix(prefix) {
    if (stages < 1)
      throw std::invalid_argument("pipesched: stream_options::output_bytes needs one size per stage (at least one)");
    if (functors != stages)
      throw std::invalid_argument("pipesched: a stream executor of " + std::to_string(stages) + " stages got " +
                                  std::to_string(functors) + " stage functors: give one per stage");
    if (w < 1) throw std::invalid_argument("pipesched: stream_options::window must be at least 1");
  }

  /// With `lock` (on m) held: admits the next item and returns its number, or returns nothing
  /// (overflow::reject, `window` items in flight); with overflow::block waits for room. Throws
  /// stream_closed after close(), cancel() or a failure.
  std::optional<std::uint64_t> admit(std::unique_lock<std::mutex>& lock) {
    if (closed || stopped) throw closed_error();
    auto const room = [&] { return inflight < static_cast<std::uint64_t>(window) || stopped; };
    if (!room()) {
      if (when_full == overflow::reject) return std::nullopt;
      push_cv.wait(lock, room);
      if (stopped) throw closed_error();
    }
    ++inflight;
    return next_id++;
  }

  /// With the lock held: an item was popped; room for the producer.
  void delivered_one() {
    ++delivered;
    --inflight;
    push_cv.notify_one();
  }

  /// Items admitted so far, and delivered (taking the lock).
  std::uint64_t pushed() const {
    std::lock_guard<std::mutex> lock(m);
    return next_id;
  }
  std::uint64_t delivered_count() const {
    std::lock_guard<std::mutex> lock(m);
    return delivered;
  }

  /// With the lock held: the first failure stops the stream.
  void fail(std::exception_ptr e) {
    if (!error) error = std::move(e);
    stopped = true;
  }

  /// What push and pop throw once the stream is closed or stopped.
  stream_closed closed_error() const {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (std::exception const& e) {
        return stream_closed(std::string("pipesched: the stream stopped: ") + failure_prefix + e.what());
      } catch (...) {
        return stream_closed("pipesched: the stream stopped: a stage failed");
      }
    }
    return stream_closed(closed && !stopped ? "pipesched: push after close()" : "pipesched: the stream was cancelled");
  }
};

} // namespace detail

/// Whether Functor can be a stage functor of a stream executor (host or CUDA): it has
/// `forward(Step const&, io const&)` accepting a runtime_step (a template, or the type itself).
template <class Functor>
inline constexpr bool stream_stage_functor = requires(Functor& f, runtime_step const& s, io const& x) { f.forward(s, x); };

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
  static_assert(stream_stage_functor<Functor>,
                "pipesched: stream_executor: the stage functor has no member `template <class Step> void "
                "forward(Step const&, pipesched::io const&)` accepting a pipesched::runtime_step, which every stage calls");

public:
  stream_executor(std::vector<Functor>& functors, stream_options const& o)
      : gate_(o.output_bytes.size(), functors.size(), o.window, o.when_full, "a stage failed: "), functors_(&functors),
        stages_(static_cast<int>(o.output_bytes.size())), window_(o.window), options_(o) {
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
    std::unique_lock<std::mutex> lock(gate_.m);
    std::optional<std::uint64_t> const admitted = gate_.admit(lock);
    if (!admitted) return false;
    std::uint64_t const id = *admitted;
    lock.unlock();
    // the ring slot for this item is free: every earlier item in it was delivered
    std::size_t const slot = static_cast<std::size_t>(id % static_cast<std::uint64_t>(window_));
    if (in.bytes > 0) std::memcpy(in.slot(slot), data, in.bytes);
    pushed_at_[slot] = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> publish(gate_.m);
    in.ready = id + 1; // one producer: items arrive in order
    stage_cv_[0].notify_one();
    return true;
  }

  /// The next item in push order, when it has gone through every stage; waits for it.
  /// Returns nothing once the stream is closed and every item was delivered. Throws
  /// stream_closed after cancel() or a failure.
  std::optional<stream_item> pop() {
    ring& out = *rings_.back();
    std::unique_lock<std::mutex> lock(gate_.m);
    gate_.pop_cv.wait(lock, [&] { return gate_.stopped || out.ready > gate_.delivered || (gate_.closed && gate_.delivered == gate_.next_id); });
    if (gate_.stopped) throw gate_.closed_error();
    if (out.ready <= gate_.delivered) return std::nullopt; // closed and drained
    std::uint64_t const id = gate_.delivered;
    lock.unlock();
    std::size_t const slot = static_cast<std::size_t>(id % static_cast<std::uint64_t>(window_));
    stream_item item{id, std::vector<unsigned char>(out.bytes)};
    if (out.bytes > 0) std::memcpy(item.bytes.data(), out.slot(slot), out.bytes);
    latency_.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - pushed_at_[slot]).count());
    lock.lock();
    gate_.delivered_one();                      // room for the producer
    stage_cv_[stages_ - 1].notify_one();        // an output slot for the last stage
    return item;
  }

  /// No more items: push throws from now on; items in flight go on and can be popped.
  void close() {
    std::lock_guard<std::mutex> lock(gate_.m);
    gate_.closed = true;
    wake_all();
  }

  /// Closes the stream and waits until every pushed item has gone through every stage (pop
  /// them to make room: with a full window the last stage waits for the consumer). Rethrows
  /// a stage's exception.
  void finish() {
    close();
    std::unique_lock<std::mutex> lock(gate_.m);
    done_cv_.wait(lock, [&] { return gate_.stopped || rings_.back()->ready == gate_.next_id; });
    if (gate_.error) std::rethrow_exception(gate_.error);
  }

  /// Stops at once: items in flight are dropped, stages return, push/pop throw.
  void cancel() {
    std::lock_guard<std::mutex> lock(gate_.m);
    gate_.stopped = true;
    wake_all();
  }

  /// Items pushed so far, and delivered (popped).
  std::uint64_t pushed() const { return gate_.pushed(); }
  std::uint64_t delivered() const { return gate_.delivered_count(); }
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
    gate_.push_cv.notify_all();
    gate_.pop_cv.notify_all();
    done_cv_.notify_all();
    for (int s = 0; s < stages_; ++s) stage_cv_[s].notify_all();
  }

  void stage_loop(int s) {
    ring& in = *rings_[static_cast<std::size_t>(s)];
    ring& out = *rings_[static_cast<std::size_t>(s) + 1];
    Functor& f = (*functors_)[static_cast<std::size_t>(s)];
    std::uint64_t const w = static_cast<std::uint64_t>(window_);
    for (std::uint64_t id = 0;; ++id) {
      {
        std::unique_lock<std::mutex> lock(gate_.m);
        // go on when the input is there and the output slot is free (the item `window`
        // before this one has left the next stage — for the last stage: was popped), or stop
        // when nothing more can come (closed, and the producer or the stage before is done)
        auto const upstream_done = [&] { return gate_.closed && (s == 0 ? gate_.next_id <= id : done_[static_cast<std::size_t>(s) - 1]); };
        auto const go = [&] {
          if (gate_.stopped) return true;
          bool const input = in.ready > id;
          std::uint64_t const freed = s + 1 == stages_ ? gate_.delivered : rings_[static_cast<std::size_t>(s) + 1]->taken;
          return (input && id < freed + w) || (!input && upstream_done());
        };
        // a few yielding polls first: waking a sleeping thread costs tens of µs
        for (int k = 0; k < 32 && !go(); ++k) {
          lock.unlock();
          std::this_thread::yield();
          lock.lock();
        }
        stage_cv_[s].wait(lock, go);
        if (gate_.stopped) return;
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
        if constexpr (stream_stage_functor<Functor>) f.forward(st, x); // (else: reported above, once)
      } catch (...) {
        std::lock_guard<std::mutex> lock(gate_.m);
        gate_.fail(std::current_exception());
        wake_all();
        return;
      }
      std::lock_guard<std::mutex> lock(gate_.m);
      in.taken = id + 1;
      out.ready = id + 1;
      if (s > 0) stage_cv_[s - 1].notify_one(); // a free output slot for the stage before
      if (s + 1 < stages_) stage_cv_[s + 1].notify_one();
      else {
        gate_.pop_cv.notify_one();
        done_cv_.notify_all();
      }
    }
  }

  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  detail::stream_gate gate_; ///< the mutex, admission, delivery and stop state
  std::vector<Functor>* functors_;
  int stages_;
  int window_;
  stream_options options_;
  std::vector<std::unique_ptr<ring>> rings_;
  std::vector<std::chrono::steady_clock::time_point> pushed_at_;
  std::vector<double> latency_;
  std::vector<bool> done_; ///< per stage: finished after close (guarded by gate_.m)
  std::vector<std::thread> threads_;
  // who waits for what: the producer for room (gate_.push_cv), the consumer for the next result
  // (gate_.pop_cv), stage s for its input and its output slot (stage_cv_[s]), finish() for the end
  // (done_cv_); each state change wakes only those it concerns
  std::condition_variable done_cv_;
  std::unique_ptr<std::condition_variable[]> stage_cv_;
};

} // namespace pipesched::host
