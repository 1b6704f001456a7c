// pipesched: the host backend — one thread per rank, in-process rendezvous channels.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "pipesched/core/schedule.hpp"
#include "pipesched/host/buffers.hpp"
#include "pipesched/host/channel.hpp"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/plan.hpp"

namespace pipesched::host {

/// Settings of a host executor.
struct options {
  /// Bytes of every boundary slot (the largest boundary any stage sends or receives).
  std::size_t slot_bytes = 0;
  /// The longest a transfer may block before the run fails with timeout_error: the
  /// backstop against a hang, not a way to stop a functor that never returns.
  std::chrono::nanoseconds timeout = std::chrono::seconds(60);
};

namespace detail {

/// Calls fn(std::integral_constant<int, R>{}) for the R equal to the run-time rank.
template <int Ranks, class Fn> void with_rank(int rank, Fn&& fn) {
  [&]<int... R>(std::integer_sequence<int, R...>) {
    (void)((rank == R ? (fn(std::integral_constant<int, R>{}), true) : false) || ...);
  }
  (std::make_integer_sequence<int, Ranks>{});
}

/// Rank R's functor: fs[R] when fs is indexable, std::get<R>(fs) for a tuple.
template <int R, class Fs> decltype(auto) functor_of(Fs& fs) {
  if constexpr (requires { fs[R]; }) return (fs[R]);
  else return (std::get<R>(fs));
}

} // namespace detail

/// Runs schedule S on p threads of this process, one per rank. The constructor allocates
/// every rank's boundary buffers (buffer_plan<S> slots of options.slot_bytes each), the
/// channels and the threads; `run` executes one iteration and allocates nothing.
///
/// `run(functors)` takes rank r's stage functor as functors[r] (an array, vector, span) or
/// std::get<r>(functors) (a tuple, for different types per rank). When a functor or a
/// transfer throws, the stop flag is raised, every blocked transfer gives up, all threads
/// finish the iteration, and the first exception is rethrown from `run`; the executor can
/// run again afterwards.
template <schedule_type S> class executor {
public:
  static constexpr int ranks = S::ranks;

  explicit executor(options const& o) : options_(o), mesh_(ranks) {
    buffers_.reserve(static_cast<std::size_t>(ranks));
    for (int r = 0; r < ranks; ++r) buffers_.emplace_back(buffer_plan<S>::slots(r), o.slot_bytes);
    threads_.reserve(static_cast<std::size_t>(ranks));
    for (int r = 0; r < ranks; ++r) threads_.emplace_back([this, r] { worker(r); });
  }
  executor(executor const&) = delete;
  executor& operator=(executor const&) = delete;
  ~executor() {
    {
      std::lock_guard<std::mutex> lock(m_);
      shutdown_ = true;
    }
    go_.notify_all();
    for (auto& t : threads_) t.join();
  }

  /// One iteration: every rank runs its plan once; returns when all have finished.
  template <class Functors> void run(Functors& functors) {
    mesh_.reset();
    {
      std::lock_guard<std::mutex> lock(m_);
      job_ = &job<Functors>;
      context_ = static_cast<void*>(&functors);
      error_ = nullptr;
      pending_ = ranks;
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
  options const& settings() const { return options_; }

private:
  using job_fn = void (*)(executor&, void*, int);

  template <class Functors> static void job(executor& self, void* context, int rank) {
    Functors& fs = *static_cast<Functors*>(context);
    detail::with_rank<ranks>(rank, [&](auto rc) {
      constexpr int R = decltype(rc)::value;
      channel_transport transport(self.mesh_, R, self.options_.timeout);
      plan<S, R>::run(detail::functor_of<R>(fs), transport, self.buffers_[R].views());
    });
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
        fail(std::current_exception());
      }
      {
        std::lock_guard<std::mutex> lock(m_);
        --pending_;
      }
      done_.notify_all();
    }
  }

  void fail(std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (!error_) error_ = e;
    }
    mesh_.request_stop();
  }

  options options_;
  channel_mesh mesh_;
  std::vector<boundary_buffers> buffers_;
  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable go_, done_;
  job_fn job_ = nullptr;
  void* context_ = nullptr;
  std::exception_ptr error_;
  int pending_ = 0;
  std::size_t generation_ = 0;
  bool shutdown_ = false;
};

/// Runs one iteration of S on host threads: builds an executor and calls run once.
template <schedule_type S, class Functors> void run(Functors& functors, options const& o) {
  executor<S> ex(o);
  ex.run(functors);
}

} // namespace pipesched::host
