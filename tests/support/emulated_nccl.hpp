// Test support: NCCL's point-to-point semantics and an eager CUDA runtime emulated on the
// host, as the policies of pipesched::cuda::basic_nccl_executor, with threads standing in
// for the processes of a multi-process run.
//
// The runtime is eager: every stream operation runs when it is issued, on the issuing
// thread (kernels are host code, copies memcpy), so queries always report "done"; events
// and waits are counted, not modelled (the stream program's event logic is proven by the
// compiler and tested against the stream emulator in cuda_executor_emulated.cpp).
//
// The communicator follows NCCL's rules where they matter here:
//   - send/recv only inside ncclGroupStart/End (the executor always groups); ncclGroupEnd
//     posts the group's operations and returns "in progress", as a non-blocking
//     communicator does;
//   - ncclCommGetAsyncError moves data: per (sender, receiver) pair the posted sends and
//     receives match in their issue order (NCCL's per-peer order), a matched pair copies
//     the bytes (a size mismatch is an error), and the state stays "in progress" until every
//     operation of the rank's group has matched — the rendezvous;
//   - ncclCommAbort withdraws the rank's posted operations; a peer whose pending operation
//     waits on an aborted rank reads ncclRemoteError;
//   - a group of more than `max_group_ops` operations is refused (invalid usage), and
//     failures can be injected: the n-th ncclGroupEnd of a rank returns an internal error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

/// The emulated stream type (the library names CUstream_st only as an incomplete type).
struct CUstream_st {
  int id = 0;
};

namespace emu_nccl {

/// The eager CUDA runtime (see above).
struct runtime {
  using status = int;
  using stream_t = CUstream_st*;
  using event_t = int*;
  static constexpr status success = 0;
  static constexpr status not_ready = 600;
  static char const* error_string(status e) { return e == 0 ? "no error" : "emulated CUDA error"; }
  static status get_last_error() { return success; }
  static status stream_create(stream_t* s) {
    *s = new CUstream_st{};
    return success;
  }
  static status stream_destroy(stream_t s) {
    delete s;
    return success;
  }
  static status stream_synchronize(stream_t) { return success; }
  static status stream_query(stream_t) { return success; }
  static status event_create(event_t* e) {
    *e = new int(0);
    return success;
  }
  static status event_destroy(event_t e) {
    delete e;
    return success;
  }
  static status event_record(event_t e, stream_t) {
    ++*e;
    return success;
  }
  static status event_query(event_t) { return success; }
  static status stream_wait_event(stream_t, event_t) { return success; }
  static status malloc(void** p, std::size_t n) {
    *p = std::calloc(n, 1);
    return *p ? success : 2;
  }
  static status free(void* p) {
    std::free(p);
    return success;
  }
  static status memset(void* p, int v, std::size_t n) {
    std::memset(p, v, n);
    return success;
  }
};

struct op {
  bool send = false;
  int peer = 0;
  void* buffer = nullptr;
  std::size_t bytes = 0;
  bool done = false;
};

/// The processes of one run: the posted operations per (sender, receiver), who aborted,
/// counters.
struct world {
  explicit world(int n) : size(n), sends(static_cast<std::size_t>(n * n)), recvs(static_cast<std::size_t>(n * n)),
                          aborted(static_cast<std::size_t>(n), 0), bytes_moved(static_cast<std::size_t>(n * n), 0) {}
  int size;
  std::mutex mutex;
  std::vector<std::deque<op*>> sends; ///< [from * size + to]
  std::vector<std::deque<op*>> recvs; ///< [from * size + to]
  std::vector<char> aborted;
  std::vector<std::size_t> bytes_moved; ///< [from * size + to]
  int max_group_ops = 256;
  int largest_group = 0;
  int size_mismatches = 0;
};

struct comm {
  world* w = nullptr;
  int rank = 0;
  std::vector<std::unique_ptr<op>> inflight; ///< the group posted last (until it completes)
  int group_ends = 0;
  int fail_group_end_at = 0; ///< inject: this (1-based) ncclGroupEnd fails; 0: never
  bool error = false;        ///< a size mismatch was seen on one of its operations
};

/// The communicator policy.
struct nccl {
  using status = int;
  using comm_t = comm*;
  static constexpr status success = 0;
  static constexpr status internal_error = 3;
  static constexpr status invalid_usage = 5;
  static constexpr status remote_error = 6;
  static constexpr status in_progress = 7;
  static char const* error_string(status e) {
    switch (e) {
    case 0: return "no error";
    case 3: return "internal error (emulated)";
    case 5: return "invalid usage (emulated)";
    case 6: return "remote process exited or there was a network error (emulated)";
    case 7: return "operation in progress (emulated)";
    default: return "unknown (emulated)";
    }
  }
  static bool is_remote(status e) { return e == remote_error; }

  struct group_state {
    int depth = 0;
    comm* c = nullptr;
    std::vector<std::unique_ptr<op>> ops;
  };
  static group_state& group() {
    thread_local group_state g;
    return g;
  }

  static status group_start() {
    ++group().depth;
    return success;
  }
  static status add(bool send, void* buf, std::size_t n, int peer, comm* c) {
    group_state& g = group();
    if (g.depth == 0 || peer < 0 || peer >= c->w->size || (g.c && g.c != c)) return invalid_usage;
    g.c = c;
    g.ops.push_back(std::make_unique<op>(op{send, peer, buf, n, false}));
    return success;
  }
  static status send(void const* buf, std::size_t n, int peer, comm* c, CUstream_st*) {
    return add(true, const_cast<void*>(buf), n, peer, c);
  }
  static status recv(void* buf, std::size_t n, int peer, comm* c, CUstream_st*) { return add(false, buf, n, peer, c); }

  static status group_end() {
    group_state& g = group();
    if (g.depth == 0) return invalid_usage;
    if (--g.depth > 0) return success;
    comm* const c = g.c;
    g.c = nullptr;
    std::vector<std::unique_ptr<op>> ops = std::move(g.ops);
    g.ops.clear();
    if (!c || ops.empty()) return success;
    world& w = *c->w;
    std::lock_guard<std::mutex> lock(w.mutex);
    ++c->group_ends;
    if (c->fail_group_end_at == c->group_ends) return internal_error;
    int const n = static_cast<int>(ops.size());
    if (n > w.max_group_ops) return invalid_usage;
    if (n > w.largest_group) w.largest_group = n;
    if (!c->inflight.empty()) return invalid_usage; // the previous group was not waited for
    for (auto& o : ops) {
      std::size_t const key = o->send ? static_cast<std::size_t>(c->rank * w.size + o->peer)
                                      : static_cast<std::size_t>(o->peer * w.size + c->rank);
      (o->send ? w.sends : w.recvs)[key].push_back(o.get());
    }
    c->inflight = std::move(ops);
    return in_progress;
  }

  /// Matches what can be matched on the pairs of c's operations, then reports c's state.
  static status async_error(comm* c, status* state) {
    world& w = *c->w;
    std::lock_guard<std::mutex> lock(w.mutex);
    if (w.aborted[static_cast<std::size_t>(c->rank)]) {
      *state = invalid_usage;
      return success;
    }
    bool all = true, remote = false;
    for (auto& o : c->inflight) {
      if (o->done) continue;
      int const from = o->send ? c->rank : o->peer, to = o->send ? o->peer : c->rank;
      std::size_t const key = static_cast<std::size_t>(from * w.size + to);
      auto& s = w.sends[key];
      auto& r = w.recvs[key];
      while (!s.empty() && !r.empty()) {
        op* const a = s.front();
        op* const b = r.front();
        s.pop_front();
        r.pop_front();
        if (a->bytes != b->bytes) {
          ++w.size_mismatches;
          c->error = true;
        } else if (a->bytes > 0) {
          std::memcpy(b->buffer, a->buffer, a->bytes);
        }
        w.bytes_moved[key] += a->bytes;
        a->done = b->done = true;
      }
      if (!o->done) {
        all = false;
        if (w.aborted[static_cast<std::size_t>(o->peer)]) remote = true;
      }
    }
    if (c->error) *state = invalid_usage;
    else if (remote) *state = remote_error;
    else if (all) {
      c->inflight.clear();
      *state = success;
    } else *state = in_progress;
    return success;
  }

  static status abort(comm* c) {
    world& w = *c->w;
    std::lock_guard<std::mutex> lock(w.mutex);
    w.aborted[static_cast<std::size_t>(c->rank)] = 1;
    for (auto* queues : {&w.sends, &w.recvs})
      for (auto& q : *queues)
        for (auto it = q.begin(); it != q.end();) {
          bool mine = false;
          for (auto& o : c->inflight) mine = mine || o.get() == *it;
          it = mine ? q.erase(it) : it + 1;
        }
    c->inflight.clear();
    return success;
  }
};

} // namespace emu_nccl
