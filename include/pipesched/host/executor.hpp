// pipesched: the host backend — one thread per rank, in-process channels.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "pipesched/host/buffers.hpp"
#include "pipesched/host/channel.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/functors.hpp"
#include "pipesched/plan/plan.hpp"
#include "pipesched/plan/runtime_plan.hpp"

namespace pipesched::host {

/// Settings of a host executor.
struct options {
  /// Bytes of every boundary, unless `boundaries` gives them per stage.
  std::size_t slot_bytes = 0;
  /// The longest a transfer may block before the run fails with timeout_error: the
  /// backstop against a hang, not a way to stop a functor that never returns.
  std::chrono::nanoseconds timeout = std::chrono::seconds(60);
  /// Bytes per stage boundary (activation each stage sends forward and its gradient); when
  /// given, each slot is sized for the largest boundary it ever holds and each transfer
  /// moves its boundary's own size.
  boundary_sizes boundaries{};
  /// Sends of at most this many bytes are copied into the channel and complete at once;
  /// larger ones wait for their receive (rendezvous). 0: every send is a rendezvous.
  std::size_t eager_bytes = std::size_t{64} << 10;
  /// How a blocked transfer waits before its thread sleeps (to be woken by its peer): first
  /// `spin` polls with a pause instruction, then `yields` polls that give the core away.
  /// Yielding polls are the default: they cost little where cores are idle and hand the core
  /// to the rank being waited for where ranks outnumber cores; a sleep and a wake-up cost
  /// several microseconds, and pure spinning starves the peer on a shared or virtual core
  /// (bench/bench_executor.cpp, docs/PERFORMANCE.md).
  int spin = 0;
  int yields = 64;
};

namespace detail {

/// Test hook: called before each rank's thread starts (to simulate a failed start).
inline void (*before_thread_start)(int rank) = nullptr;

/// One rank's record of its current action, on a cache line of its own (each rank's thread
/// writes it before every action).
struct alignas(64) current_action {
  action_record action{};
};

} // namespace detail

namespace detail {

/// The schedule of a host executor given as a type: each rank runs plan<S, r>.
template <schedule_type S> struct static_source {
  static_assert(pipesched::detail::checked<S>); // a schedule that fails verification stops the build here
  static constexpr int rank_count() { return S::ranks; }
  static constexpr int stage_count() { return S::stages; }
  static constexpr auto const& lowered() { return S::lowered; }
  static constexpr int slots(int r) { return buffer_plan<S>::slots(r); }
  template <class Fs> static void check(Fs const& fs) { pipesched::detail::check_functor_count<S::ranks>(fs); }
  template <class Fs, class T, class V> static void run_rank(int rank, Fs& fs, T& transport, V const& views) {
    pipesched::detail::with_rank<S::ranks>(rank, [&](auto rc) {
      constexpr int R = decltype(rc)::value;
      plan<S, R>::run(pipesched::detail::functor_of<R>(fs), transport, views);
    });
  }
};

/// The schedule of a host executor known at run time: each rank runs its list through
/// runtime_schedule::run (a loop and a switch per action, the functor called with a
/// runtime_step).
struct runtime_source {
  runtime_schedule schedule;
  int rank_count() const { return schedule.ranks; }
  int stage_count() const { return schedule.stages; }
  runtime_schedule const& lowered() const { return schedule; }
  int slots(int r) const { return schedule.slots(r); }
  template <class Fs> void check(Fs const& fs) const {
    static_assert(requires { fs.size(); fs[0]; },
                  "pipesched: a runtime_executor takes its stage functors as an indexable range (one per rank)");
    pipesched::detail::check_functor_count<-1>(fs, schedule.ranks);
    schedule.check_functor<std::remove_cvref_t<decltype(fs[0])>>();
  }
  template <class Fs, class T, class V> void run_rank(int rank, Fs& fs, T& transport, V const& views) const {
    schedule.run(rank, fs[static_cast<std::size_t>(rank)], transport, views);
  }
};

} // namespace detail

/// Runs a schedule on p threads of this process, one per rank: `executor<S>` for a schedule
/// type (compiled plans), `runtime_executor` for a table chosen at run time. The constructor
/// allocates every rank's boundary buffers (each slot sized for the largest boundary it
/// holds), the channels and the threads; `run` executes one iteration and allocates nothing.
///
/// `run(functors)` takes rank r's stage functor as functors[r] (an array, vector, span) or,
/// for a schedule type, std::get<r>(functors) (a tuple, for different types per rank);
/// their number must be the rank count. When a functor or a transfer throws, the stop flag is raised, every blocked
/// transfer gives up, all threads finish the iteration, and the first exception is rethrown
/// from `run` as it was thrown (`last_failure()` names its rank and action); the executor
/// can run again afterwards. `run` may be called from several threads: the calls are
/// serialised, one iteration at a time.
template <class Source> class basic_executor {
public:
  basic_executor(Source source, options const& o)
      : source_(std::move(source)), ranks_(source_.rank_count()), options_(o),
        bytes_(boundary_byte_table(source_.stage_count(), o.boundaries, o.slot_bytes)), mesh_(ranks_),
        current_(static_cast<std::size_t>(ranks_)) {
    buffers_.reserve(static_cast<std::size_t>(ranks_));
    for (int r = 0; r < ranks_; ++r)
      buffers_.emplace_back(slot_capacities(source_.lowered(), r, source_.slots(r), bytes_.data()));
    reserve_channels();
    spin_ = o.spin;
    yields_ = o.yields;
    start_threads();
  }
  basic_executor(basic_executor const&) = delete;
  basic_executor& operator=(basic_executor const&) = delete;
  ~basic_executor() { stop_threads(); }

  /// One iteration: every rank runs its plan once; returns when all have finished.
  template <class Functors> void run(Functors& functors) {
    source_.check(functors);
    std::lock_guard<std::mutex> serial(run_mutex_);
    mesh_.reset();
    for (auto& c : current_) c.action = action_record{};
    {
      std::lock_guard<std::mutex> lock(m_);
      job_ = &job<Functors>;
      context_ = static_cast<void*>(&functors);
      error_ = nullptr;
      failure_ = failure_site{};
      pending_ = ranks_;
      ++generation_;
    }
    go_.notify_all();
    std::unique_lock<std::mutex> lock(m_);
    done_.wait(lock, [&] { return pending_ == 0; });
    if (error_) {
      std::exception_ptr e = error_;
      error_ = nullptr;
      std::rethrow_exception(e);
    }
  }

  /// Rank r's boundary buffers (for inspection and tests).
  boundary_buffers const& buffers(int r) const { return buffers_[static_cast<std::size_t>(r)]; }
  /// Bytes of every boundary (2S entries, boundary_key order).
  std::vector<std::size_t> const& boundary_bytes() const { return bytes_; }
  options const& settings() const { return options_; }
  Source const& source() const { return source_; }
  /// Where the last failed run failed (rank -1 after a run that succeeded).
  failure_site last_failure() const {
    std::lock_guard<std::mutex> lock(m_);
    return failure_;
  }

  /// The schedule's ranks.
  int rank_count() const { return ranks_; }

private:
  using job_fn = void (*)(basic_executor&, void*, int);

  /// Staging for eager sends: each channel as large as the largest boundary it carries,
  /// up to options.eager_bytes.
  void reserve_channels() {
    auto const& t = source_.lowered();
    std::vector<std::size_t> largest(static_cast<std::size_t>(ranks_ * ranks_), 0);
    for (int r = 0; r < ranks_; ++r)
      for (std::size_t i = 0; i < t.size(static_cast<std::size_t>(r)); ++i) {
        action const& a = t.at(static_cast<std::size_t>(r), i);
        if (!is_send(a.kind)) continue;
        std::size_t& l = largest[static_cast<std::size_t>(r * ranks_ + a.peer)];
        std::size_t const b = bytes_[static_cast<std::size_t>(boundary_key(t, a, field::in))];
        l = b > l ? b : l;
      }
    for (int from = 0; from < ranks_; ++from)
      for (int to = 0; to < ranks_; ++to) {
        std::size_t const l = largest[static_cast<std::size_t>(from * ranks_ + to)];
        mesh_.between(from, to).reserve_eager(l <= options_.eager_bytes ? l : 0);
      }
  }

  template <class Functors> static void job(basic_executor& self, void* context, int rank) {
    Functors& fs = *static_cast<Functors*>(context);
    std::size_t const r = static_cast<std::size_t>(rank);
    channel_transport transport(self.mesh_, rank,
                                wait_policy{&self.mesh_.stop(), self.options_.timeout, self.spin_, self.yields_},
                                &self.current_[r].action);
    boundary_views const views{self.buffers_[r].views(), self.bytes_.data()};
    self.source_.run_rank(rank, fs, transport, views);
  }

  void start_threads() {
    threads_.reserve(static_cast<std::size_t>(ranks_));
    try {
      for (int r = 0; r < ranks_; ++r) {
        if (detail::before_thread_start) detail::before_thread_start(r);
        threads_.emplace_back([this, r] { worker(r); });
      }
    } catch (...) {
      stop_threads(); // join what started, then report the failure to the caller
      throw;
    }
  }

  void stop_threads() {
    {
      std::lock_guard<std::mutex> lock(m_);
      shutdown_ = true;
    }
    go_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  void worker(int rank) {
    std::size_t seen = 0;
    for (;;) {
      job_fn fn = nullptr;
      void* context = nullptr;
      {
        std::unique_lock<std::mutex> lock(m_);
        go_.wait(lock, [&] { return shutdown_ || generation_ != seen; });
        if (shutdown_) return;
        seen = generation_;
        fn = job_;
        context = context_;
      }
      try {
        fn(*this, context, rank);
      } catch (cancelled const&) {
        // another rank failed first; its exception is the one reported
      } catch (...) {
        fail(rank, std::current_exception());
      }
      {
        std::lock_guard<std::mutex> lock(m_);
        --pending_;
      }
      done_.notify_all();
    }
  }

  void fail(int rank, std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (!error_) {
        error_ = e;
        failure_ = failure_site{rank, current_[static_cast<std::size_t>(rank)].action};
      }
    }
    mesh_.request_stop();
  }

  Source source_;
  int ranks_ = 0;
  options options_;
  std::vector<std::size_t> bytes_;
  channel_mesh mesh_;
  std::vector<boundary_buffers> buffers_;
  std::vector<detail::current_action> current_;
  int spin_ = 0;
  int yields_ = 0;
  std::vector<std::thread> threads_;
  std::mutex run_mutex_;
  mutable std::mutex m_;
  std::condition_variable go_, done_;
  job_fn job_ = nullptr;
  void* context_ = nullptr;
  std::exception_ptr error_;
  failure_site failure_{};
  int pending_ = 0;
  std::size_t generation_ = 0;
  bool shutdown_ = false;
};

/// Runs schedule type S on host threads (one per rank): its plans are compiled, unrolled.
template <schedule_type S> class executor : public basic_executor<detail::static_source<S>> {
public:
  static constexpr int ranks = S::ranks;
  explicit executor(options const& o) : basic_executor<detail::static_source<S>>(detail::static_source<S>{}, o) {}
};

/// Runs a schedule chosen at run time on host threads: a runtime_schedule (verified when it
/// was made), with the same stage functors as compiled plans as long as they read the step's
/// fields through the step argument (see runtime_step).
class runtime_executor : public basic_executor<detail::runtime_source> {
public:
  runtime_executor(runtime_schedule s, options const& o)
      : basic_executor<detail::runtime_source>(detail::runtime_source{std::move(s)}, o) {}
  runtime_schedule const& schedule() const { return source().schedule; }
};

/// Runs one iteration of S on host threads: builds an executor and calls run once.
template <schedule_type S, class Functors> void run(Functors& functors, options const& o) {
  executor<S> ex(o);
  ex.run(functors);
}

} // namespace pipesched::host
