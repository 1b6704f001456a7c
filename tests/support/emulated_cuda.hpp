// Test support: CUDA's stream semantics emulated on the host, as a runtime policy for
// pipesched::cuda::basic_executor, so that the CUDA executor runs on a machine without a GPU.
//
// Each stream is a FIFO of operations that run later, when the host synchronises: a
// scheduler repeatedly picks, at random (seeded), one stream whose first operation can run
// and runs it — so the streams' work interleaves in orders a GPU could produce. Semantics
// follow CUDA's:
//   - a stream runs its operations in issue order;
//   - cudaEventRecord(e, s) marks the point after s's earlier operations; each record is a
//     new version of e;
//   - cudaStreamWaitEvent(s, e) makes s's later operations wait for the version of e that
//     was the latest *when the wait was issued* (none: the wait waits for nothing);
//   - memory copies and "kernels" (host closures a test functor enqueues with launch()) are
//     operations of their stream;
//   - cudaMemset is asynchronous (it returns before the memory is set): an operation of the
//     current device's legacy default stream, which the executors' streams (non-blocking) do
//     not wait for; cudaDeviceSynchronize waits for the current device's streams only.
// A race the executor left open shows up as a boundary read before it was written, or
// overwritten before it was read, in some interleaving; a hang as streams that cannot go on
// (reported as an exception). Stream capture records the issued operations and replays them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipesched/cuda/sm_partition.hpp"
#include "pipesched/plan/step.hpp"
#include "support/emulated_runtime_basics.hpp"

namespace emu {

struct event_state {
  int partition = -1;                 ///< the SM partition whose context made it (-1: the device's)
  bool blocking = false;              ///< made with cudaEventBlockingSync (event_create_blocking)
  std::uint64_t issued = 0;           ///< versions recorded so far (in issue order)
  std::set<std::uint64_t> completed;  ///< versions whose record has run
};

struct operation {
  enum kind_t { work, record, wait } kind = work;
  std::function<void()> fn;
  event_state* event = nullptr;
  std::uint64_t version = 0; ///< record: the version it completes; wait: the version it needs (0: none)
};

} // namespace emu

/// The emulated stream (the library names CUstream_st only as an incomplete type).
struct CUstream_st {
  std::deque<emu::operation> queue;
  int device = 0;
  int partition = -1; ///< an SM partition's stream (its context), -1: the device's
};

namespace emu {

struct graph {
  struct entry {
    CUstream_st* stream; ///< nullptr: the capture's origin stream (replaced by the launch stream)
    operation op;
  };
  std::vector<entry> entries;
};

/// The emulator's state: every stream, the scheduler's random source, capture, devices and
/// injected failures.
struct state {
  std::vector<std::unique_ptr<CUstream_st>> streams;
  std::vector<CUstream_st> default_streams = std::vector<CUstream_st>(8); ///< each device's null stream
  std::vector<std::unique_ptr<event_state>> events;
  std::mt19937_64 rng{1};
  int device = 0;
  int devices = 8;
  // capture: the origin stream, and the operations issued while it lasts
  CUstream_st* capture_origin = nullptr;
  std::unique_ptr<graph> capturing;
  // failure injection: the n-th copy (1-based) fails; 0: none
  int fail_copy_at = 0;
  int copies = 0;
  int last_error = 0;
  // what ran
  std::uint64_t operations_run = 0;
  std::uint64_t copies_run = 0;
  std::uint64_t peer_copies = 0;
  std::uint64_t graph_launches = 0;
  // cudaEventSynchronize calls on events with and without cudaEventBlockingSync (the host
  // thread sleeps or spins there)
  std::uint64_t blocking_event_waits = 0;
  std::uint64_t spinning_event_waits = 0;
  // SM partitions made (partitioned_runtime): device, count and SMs asked for, alive or not
  struct partition_set {
    int device = 0, count = 0;
    unsigned sms = 0;       ///< asked for (0: the largest that fit)
    unsigned per_stage = 0; ///< what plan_sm_partitions made of it
    std::vector<CUstream_st*> streams; ///< partition i's stream
    std::vector<CUstream_st*> extra;   ///< partition_stream_create's, in any partition
    bool alive = true;
  };
  std::vector<std::unique_ptr<partition_set>> partition_sets;
  int next_partition = 0;
};

inline state& the() {
  static state s;
  return s;
}

/// Resets the emulator (between tests) and seeds its scheduler.
inline void reset(std::uint64_t seed) {
  state& s = the();
  s.rng.seed(seed);
  s.fail_copy_at = 0;
  s.copies = 0;
  s.last_error = 0;
  s.operations_run = s.copies_run = s.peer_copies = s.graph_launches = 0;
  s.blocking_event_waits = s.spinning_event_waits = 0;
  s.capture_origin = nullptr;
  s.capturing.reset();
  s.partition_sets.clear();
  for (CUstream_st& d : s.default_streams) d.queue.clear(); // work a failed test left (its memory is gone)
}

/// The stream itself, or for the null stream the current device's default stream.
inline CUstream_st* resolve(CUstream_st* s) {
  if (s) return s;
  state& st = the();
  CUstream_st* const d = &st.default_streams[static_cast<std::size_t>(st.device)];
  d->device = st.device;
  return d;
}

/// Issues an operation on stream s (or records it into the graph being captured).
inline void issue(CUstream_st* s, operation op) {
  state& st = the();
  if (st.capturing) {
    st.capturing->entries.push_back({s == st.capture_origin ? nullptr : s, std::move(op)});
    return;
  }
  resolve(s)->queue.push_back(std::move(op));
}

/// Enqueues a "kernel": `fn` runs when the stream reaches it.
inline void launch(CUstream_st* s, std::function<void()> fn) {
  operation op;
  op.kind = operation::work;
  op.fn = std::move(fn);
  issue(s, std::move(op));
}

inline bool runnable(operation const& op) {
  return op.kind != operation::wait || op.version == 0 || op.event->completed.count(op.version) > 0;
}

inline void run_one(CUstream_st* s) {
  operation op = std::move(s->queue.front());
  s->queue.pop_front();
  ++the().operations_run;
  if (op.kind == operation::work) op.fn();
  else if (op.kind == operation::record) op.event->completed.insert(op.version);
}

/// Runs operations, one stream head at a time picked at random, until `done()`; throws when
/// no stream can go on. With `only_device` >= 0, streams of other devices run only while none
/// of that device's can (nothing forces another device's work along, unless waited for).
template <class Done> void run_until(Done done, int only_device = -1) {
  state& st = the();
  std::vector<CUstream_st*> ready, preferred;
  while (!done()) {
    ready.clear();
    preferred.clear();
    bool pending = false;
    auto consider = [&](CUstream_st* s) {
      if (s->queue.empty()) return;
      pending = true;
      if (!runnable(s->queue.front())) return;
      ready.push_back(s);
      if (s->device == only_device) preferred.push_back(s);
    };
    for (CUstream_st& s : st.default_streams) consider(&s);
    for (auto& s : st.streams) consider(s.get());
    if (ready.empty()) {
      if (!pending) return;
      throw std::runtime_error("emulated CUDA: every stream with work waits on an event that never completes (a hang)");
    }
    std::vector<CUstream_st*> const& from = preferred.empty() ? ready : preferred;
    run_one(from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(st.rng)]);
  }
}

/// The runtime policy for pipesched::cuda::basic_executor.
struct runtime : emu_support::runtime_basics<graph> {
  using event_t = event_state*;
  static constexpr status copy_failed = 700;
  static constexpr status context_mismatch = 400; ///< cudaErrorInvalidResourceHandle

  static char const* error_string(status e) {
    return e == copy_failed        ? "emulated copy failure (injected)"
           : e == context_mismatch ? "event and stream of different contexts"
           : (e == 0 ? "no error" : "emulated error");
  }
  static status get_last_error() {
    status const e = the().last_error;
    the().last_error = 0;
    return e;
  }
  static status get_device(int* d) {
    *d = the().device;
    return success;
  }
  static status set_device(int d) {
    if (d < 0 || d >= the().devices) return 101;
    the().device = d;
    return success;
  }
  static status can_access_peer(int* can, int, int) {
    *can = 1;
    return success;
  }
  static status enable_peer_access(int) { return success; }
  static status stream_create(stream_t* s) {
    the().streams.push_back(std::make_unique<CUstream_st>());
    *s = the().streams.back().get();
    (*s)->device = the().device;
    return success;
  }
  static status stream_destroy(stream_t s) {
    auto& v = the().streams;
    for (std::size_t k = 0; k < v.size(); ++k)
      if (v[k].get() == s) {
        v.erase(v.begin() + static_cast<long>(k));
        break;
      }
    return success;
  }
  static status stream_synchronize(stream_t s) {
    CUstream_st* const r = resolve(s);
    run_until([r] { return r->queue.empty(); });
    return success;
  }
  /// Waits for the current device's streams (its default stream included), not the others'.
  static status device_synchronize() {
    state& st = the();
    int const d = st.device;
    CUstream_st const* const null_stream = resolve(nullptr);
    run_until(
        [&st, d, null_stream] {
          if (!null_stream->queue.empty()) return false;
          for (auto& s : st.streams)
            if (s->device == d && !s->queue.empty()) return false;
          return true;
        },
        d);
    return success;
  }
  static status event_create(event_t* e) {
    the().events.push_back(std::make_unique<event_state>());
    *e = the().events.back().get();
    return success;
  }
  static status event_create_blocking(event_t* e) {
    event_create(e);
    (*e)->blocking = true;
    return success;
  }
  static status event_destroy(event_t) { return success; }
  static status event_record(event_t e, stream_t s) {
    // as CUDA: the event and the stream recording it must belong to one context
    if (e->partition != resolve(s)->partition) return context_mismatch;
    operation op;
    op.kind = operation::record;
    op.event = e;
    op.version = ++e->issued;
    issue(s, std::move(op));
    return success;
  }
  static status stream_wait_event(stream_t s, event_t e) {
    operation op;
    op.kind = operation::wait;
    op.event = e;
    op.version = e->issued; // the latest record issued so far (0: none: waits for nothing)
    issue(s, std::move(op));
    return success;
  }
  static status malloc(void** p, std::size_t n) {
    *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
    return *p ? success : 2;
  }
  /// cudaMemset: returns at once; the memory is set when the current device's default stream
  /// runs it (CUDA: "asynchronous with respect to the host" for device memory, issued on the
  /// legacy stream, which cudaStreamNonBlocking streams do not synchronise with).
  static status memset(void* p, int v, std::size_t n) {
    operation op;
    op.kind = operation::work;
    op.fn = [p, v, n] { std::memset(p, v, n); };
    resolve(nullptr)->queue.push_back(std::move(op));
    return success;
  }
  static status copy(void* dst, void const* src, std::size_t n, stream_t s, bool peer) {
    state& st = the();
    if (st.fail_copy_at > 0 && ++st.copies == st.fail_copy_at) return copy_failed;
    launch(s, [dst, src, n, peer] {
      std::memcpy(dst, src, n);
      ++the().copies_run;
      if (peer) ++the().peer_copies;
    });
    return success;
  }
  static status memcpy_async(void* dst, void const* src, std::size_t n, stream_t s) {
    return copy(dst, src, n, s, false);
  }
  static status memcpy_peer_async(void* dst, int, void const* src, int, std::size_t n, stream_t s) {
    return copy(dst, src, n, s, true);
  }
  // host memory and copies to and from it (the stream executor): copies like the others
  static status host_alloc(void** p, std::size_t n) { return malloc(p, n); }
  static status host_free(void* p) { return free(p); }
  static status memcpy_to_device_async(void* dst, void const* src, std::size_t n, stream_t s) {
    return copy(dst, src, n, s, false);
  }
  static status memcpy_to_host_async(void* dst, void const* src, std::size_t n, stream_t s) {
    return copy(dst, src, n, s, false);
  }
  /// Runs streams until the event's latest record (at the time of the call) has run.
  static status event_synchronize(event_t e) {
    ++(e->blocking ? the().blocking_event_waits : the().spinning_event_waits);
    std::uint64_t const v = e->issued;
    if (v > 0) run_until([e, v] { return e->completed.count(v) > 0; });
    return success;
  }
  static status begin_capture(stream_t s) {
    the().capture_origin = s;
    the().capturing = std::make_unique<graph>();
    return success;
  }
  static status end_capture(stream_t, graph_t* g) {
    *g = the().capturing.release();
    the().capture_origin = nullptr;
    return success;
  }
  static bool is_capturing(stream_t) { return the().capturing != nullptr; }
  /// Re-issues the captured operations in their order (the origin's on `s`): the same
  /// dependencies the capture made, with every record a new version.
  static status graph_launch(graph_exec_t x, stream_t s) {
    ++the().graph_launches;
    // records and waits resolve against versions issued now, in the captured order
    for (auto const& entry : x->entries) {
      CUstream_st* const target = entry.stream ? entry.stream : s;
      operation const& op = entry.op;
      if (op.kind == operation::record) event_record(op.event, target);
      else if (op.kind == operation::wait) stream_wait_event(target, op.event);
      else launch(target, op.fn);
    }
    return success;
  }
};

/// The runtime with SM partitions (options::sm_partitions): each partition a stream of a
/// context of its own (events recorded on it must be made in it — event_record refuses
/// others); sizes planned as on a 132-SM GPU in partitions of multiples of 8 SMs.
struct partitioned_runtime : runtime {
  using partitions_t = state::partition_set*;
  static status make_partitions(partitions_t* p, int device, int count, unsigned sms) {
    // throws as the real one
    pipesched::cuda::sm_plan const plan = pipesched::cuda::plan_sm_partitions(pipesched::cuda::sm_facts{132, 8, 8}, count, sms);
    auto set = std::make_unique<state::partition_set>();
    set->per_stage = plan.per_stage;
    set->device = device;
    set->count = count;
    set->sms = sms;
    for (int i = 0; i < count; ++i) {
      stream_t s = nullptr;
      stream_create(&s);
      s->device = device;
      s->partition = the().next_partition++;
      set->streams.push_back(s);
    }
    *p = set.get();
    the().partition_sets.push_back(std::move(set));
    return success;
  }
  static stream_t partition_stream(partitions_t p, int i) { return p->streams[static_cast<std::size_t>(i)]; }
  /// A further stream in partition i (its context), destroyed with the set.
  static status partition_stream_create(partitions_t p, int i, stream_t* s) {
    stream_create(s);
    (*s)->device = p->device;
    (*s)->partition = p->streams[static_cast<std::size_t>(i)]->partition;
    p->extra.push_back(*s);
    return success;
  }
  static status partition_event_create(partitions_t p, int i, event_t* e) {
    event_create(e);
    (*e)->partition = p->streams[static_cast<std::size_t>(i)]->partition;
    return success;
  }
  static status partition_event_create_blocking(partitions_t p, int i, event_t* e) {
    partition_event_create(p, i, e);
    (*e)->blocking = true;
    return success;
  }
  static void destroy_partitions(partitions_t p) noexcept {
    for (stream_t s : p->streams) (void)stream_destroy(s);
    for (stream_t s : p->extra) (void)stream_destroy(s);
    p->streams.clear();
    p->extra.clear();
    p->alive = false;
  }
};

/// A stage functor that runs `F`'s members as "kernels" on the pass's stream: each member of
/// F is called when the stream reaches it, with the same step and views.
template <class F> struct deferred {
  F* f;
  template <class St> void forward(St s, pipesched::io const& x) {
    F* g = f;
    launch(x.stream, [g, s, x] { g->forward(s, x); });
  }
  template <class St> void backward(St s, pipesched::io const& x) {
    F* g = f;
    launch(x.stream, [g, s, x] { g->backward(s, x); });
  }
  template <class St> void backward_input(St s, pipesched::io const& x) {
    F* g = f;
    launch(x.stream, [g, s, x] { g->backward_input(s, x); });
  }
  template <class St> void backward_weight(St s, pipesched::io const& x) {
    F* g = f;
    launch(x.stream, [g, s, x] { g->backward_weight(s, x); });
  }
  /// An overlapped pair as one piece of stream work, when F runs pairs as one call.
  template <class SF, class SB>
    requires pipesched::has_forward_backward<F, SF, SB>
  void forward_backward(SF sf, SB sb, pipesched::io const& xf, pipesched::io const& xb) {
    F* g = f;
    launch(xf.stream, [g, sf, sb, xf, xb] { g->forward_backward(sf, sb, xf, xb); });
  }
};

} // namespace emu
