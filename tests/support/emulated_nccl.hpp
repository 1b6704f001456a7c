// Test support: NCCL's point-to-point semantics and a CUDA runtime emulated on the host, as
// the policies of pipesched::cuda::basic_nccl_executor, with threads standing in for the
// processes of a multi-process run.
//
// The runtime keeps one FIFO of work per process (thread): an operation issued while nothing
// launched is pending runs at once, on the issuing thread (kernels are host closures a test
// functor enqueues with launch(), copies memcpy); events are counted, waits are no-ops (one
// FIFO is an order every stream program allows; the event logic is proven by the compiler and
// tested against the stream emulator in cuda_executor_emulated.cpp). Stream capture
// (thread-local, like cudaStreamCaptureModeThreadLocal) records the issued work and groups
// instead of running them; a graph launch queues them, and they run as the process queries
// its streams and events — a recorded group posts its operations and blocks the FIFO until
// they have matched, as an NCCL kernel blocks its stream. A kernel that returns an error
// makes it sticky (every later query reports it) and drops the rest of the FIFO.
//
// The communicator follows NCCL's rules where they matter here:
//   - send/recv only inside ncclGroupStart/End (the executor always groups); ncclGroupEnd
//     posts the group's operations and returns "in progress", as a non-blocking
//     communicator does (eager groups use one communicator; a captured one spanning several
//     runs as one group per communicator, in an order of the communicators, as NCCL runs
//     one kernel per communicator one after the other);
//   - ncclCommGetAsyncError moves data: per (sender, receiver) pair the posted sends and
//     receives match in their issue order (NCCL's per-peer order), a matched pair copies
//     the bytes (a size mismatch is an error), and the state stays "in progress" until every
//     operation of the rank's group has matched — the rendezvous;
//   - ncclCommSplit is collective over the parent: each rank's k-th split joins the k-th
//     split of every rank; the parent stays "in progress" until all have called it (a
//     parent rank that aborted first makes it a remote error), and only then is the new
//     communicator's handle written to the caller's pointer (as NCCL does with a
//     non-blocking parent, NVIDIA/nccl#1472); the new communicators (one per colour, ranks
//     ordered by key, then by parent rank) are then ready;
//   - ncclCommAbort withdraws the rank's posted operations; a peer whose pending operation
//     waits on an aborted rank reads ncclRemoteError;
//   - a group of more than `max_group_ops` operations is refused (invalid usage), and
//     failures can be injected: the n-th ncclGroupEnd of a rank returns an internal error.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pipesched/plan/step.hpp"
#include "support/emulated_runtime_basics.hpp"

/// The emulated stream type (the library names CUstream_st only as an incomplete type).
struct CUstream_st {
  int id = 0;
};

namespace emu_nccl {

/// Stream work: returns 0, or the error it raises (a kernel fault).
using work = std::function<int()>;
/// The error a faulting kernel raises (cudaErrorLaunchFailure's number).
inline constexpr int kernel_fault = 719;

struct comm;

/// One send or receive a group names (recorded by a capture as is).
struct op_desc {
  comm* c = nullptr;
  bool send = false;
  int peer = 0;
  void* buffer = nullptr;
  std::size_t bytes = 0;
};

/// A captured iteration: work items and groups (a group: `fn` empty), in issue order. An
/// instantiated graph (a copy) holds a reference to each communicator its groups use, as
/// NCCL's captured plans do: a communicator released while one is alive is counted (NCCL's
/// finalize would wait for the graph's destruction, forever when that comes later).
struct graph {
  struct entry {
    work fn;
    std::vector<op_desc> group;
  };
  std::vector<entry> entries;
  bool counted = false;

  graph() = default;
  graph(graph const& g);
  graph& operator=(graph const&) = delete;
  ~graph();
};

/// One process's (thread's) runtime state: the capture in progress, the launched work not
/// yet done (a step returns 0: done, -1: blocked, > 0: an error), the sticky error.
struct process {
  std::unique_ptr<graph> capturing;
  std::deque<work> pending;
  int sticky = 0;
  std::size_t graph_launches = 0;
};
inline process& proc() {
  thread_local process p;
  return p;
}

/// Runs launched work until it blocks on a group that has not matched, or ends.
inline void progress() {
  process& p = proc();
  while (!p.pending.empty()) {
    int const r = p.pending.front()();
    if (r < 0) return;
    p.pending.pop_front();
    if (r > 0) {
      p.sticky = r;
      p.pending.clear();
      return;
    }
  }
}

/// Issues work: recorded while capturing, queued behind launched work, else run now.
inline void issue(work fn) {
  process& p = proc();
  if (p.capturing) {
    p.capturing->entries.push_back({std::move(fn), {}});
    return;
  }
  if (!p.pending.empty()) {
    p.pending.push_back(std::move(fn));
    return;
  }
  int const r = fn();
  if (r > 0) p.sticky = r;
}

/// Enqueues a "kernel" on a stream (see above).
inline void launch(CUstream_st*, work fn) { issue(std::move(fn)); }

work group_runner(std::vector<op_desc> descs);

/// The CUDA runtime (see above).
struct runtime : emu_support::runtime_basics<graph> {
  using event_t = int*;
  static constexpr status not_ready = 600;
  static char const* error_string(status e) {
    return e == 0 ? "no error" : e == kernel_fault ? "unspecified launch failure (emulated)" : "emulated CUDA error";
  }
  static status get_last_error() { return success; }
  static status stream_create(stream_t* s) {
    *s = new CUstream_st{};
    return success;
  }
  static status stream_destroy(stream_t s) {
    delete s;
    return success;
  }
  /// Runs the launched work to its end (bounded: 20 s, then "not ready").
  static status stream_synchronize(stream_t) {
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      progress();
      if (proc().sticky) return proc().sticky;
      if (proc().pending.empty()) return success;
      if (std::chrono::steady_clock::now() > until) return not_ready;
      std::this_thread::yield();
    }
  }
  static status query() {
    progress();
    if (proc().sticky) return proc().sticky;
    return proc().pending.empty() ? success : not_ready;
  }
  static status stream_query(stream_t) { return query(); }
  static status event_create(event_t* e) {
    *e = new int(0);
    return success;
  }
  static status event_destroy(event_t e) {
    delete e;
    return success;
  }
  static status event_record(event_t e, stream_t) {
    issue([e] {
      ++*e;
      return 0;
    });
    return success;
  }
  static status event_query(event_t) { return query(); }
  static status stream_wait_event(stream_t, event_t) { return success; }
  static status malloc(void** p, std::size_t n) {
    *p = std::calloc(n, 1);
    return *p ? success : 2;
  }
  // graphs (capture is per thread: this process's work only)
  static status begin_capture(stream_t) {
    if (proc().capturing) return 900; // cudaErrorStreamCaptureUnsupported: already capturing
    proc().capturing = std::make_unique<graph>();
    return success;
  }
  static status end_capture(stream_t, graph_t* g) {
    *g = proc().capturing.release();
    return *g ? success : 901;
  }
  /// Queues the captured work (asynchronous, like cudaGraphLaunch), then runs what can run.
  static status graph_launch(graph_exec_t x, stream_t) {
    process& p = proc();
    ++p.graph_launches;
    for (graph::entry const& e : x->entries) p.pending.push_back(e.fn ? e.fn : group_runner(e.group));
    progress();
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

struct world;

/// One ncclCommSplit of a world: who called it with which colour and key, and the worlds it
/// made (one per colour, owned by the parent world).
struct split_record {
  explicit split_record(int n)
      : color(static_cast<std::size_t>(n), -1), key(static_cast<std::size_t>(n), 0), sub_rank(static_cast<std::size_t>(n), -1) {}
  std::vector<int> color, key;
  int arrived = 0;
  bool made = false;
  std::map<int, world*> worlds; ///< colour -> its world
  std::vector<int> sub_rank;    ///< each parent rank's rank in its new world
};

/// The processes of one run (or of one communicator made by a split): the posted operations
/// per (sender, receiver), who aborted, counters, and the splits made from it.
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
  /// NCCL's commHash stand-in: the same on every rank of the communicator, unrelated to the
  /// order of issue (a pseudo-random function of the split and the colour; 0 for the world)
  std::uint64_t hash = 0;
  std::deque<split_record> splits;
  std::vector<std::unique_ptr<world>> children;
  std::vector<std::unique_ptr<comm>> child_comms;
  /// Communicators of the worlds split from this one (recursively) released while an
  /// instantiated graph used them.
  int released_under_graph() const;
  /// Bytes moved on every world split from this one (recursively).
  std::size_t bytes_moved_by_children() {
    std::size_t n = 0;
    for (auto& c : children) {
      for (std::size_t b : c->bytes_moved) n += b;
      n += c->bytes_moved_by_children();
    }
    return n;
  }
};

struct comm {
  world* w = nullptr; ///< null: made by a split that is not done yet
  int rank = 0;
  std::vector<std::shared_ptr<op>> inflight; ///< posted operations (until they complete)
  int group_ends = 0;
  int fail_group_end_at = 0; ///< inject: this (1-based) ncclGroupEnd fails; 0: never
  bool error = false;        ///< a size mismatch was seen on one of its operations
  bool dead = false;         ///< aborted before its split was done
  bool released = false;     ///< ended in order (the executor's release)
  int graph_refs = 0;        ///< instantiated graphs alive that use it
  bool released_under_graph = false; ///< released while graph_refs > 0 (NCCL: a hang)
  // splits
  int splits = 0;          ///< splits this rank called on this communicator
  int waiting_split = -1;  ///< a split it called, not done yet
  comm** split_out = nullptr;  ///< where that split's new handle goes once it is done
  comm* split_child = nullptr; ///< that handle (null: called without colour)
  comm* parent = nullptr;  ///< made by a split: its parent, and which split
  int split_index = -1;
  int color = -1;
};

inline int world::released_under_graph() const {
  int n = 0;
  for (auto const& c : child_comms) n += c->released_under_graph ? 1 : 0;
  for (auto const& c : children) n += c->released_under_graph();
  return n;
}

inline graph::graph(graph const& g) : entries(g.entries), counted(true) {
  for (entry const& e : entries)
    for (op_desc const& d : e.group) ++d.c->graph_refs;
}
inline graph::~graph() {
  if (!counted) return;
  for (entry const& e : entries)
    for (op_desc const& d : e.group) --d.c->graph_refs;
}

/// The communicator policy.
struct nccl {
  using status = int;
  using comm_t = comm*;
  static constexpr status success = 0;
  static constexpr status internal_error = 3;
  static constexpr status invalid_usage = 5;
  static constexpr status remote_error = 6;
  static constexpr status in_progress = 7;
  static constexpr int no_color = -1;
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
    std::vector<op_desc> ops;
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
    if (g.depth == 0 || !c->w || peer < 0 || peer >= c->w->size) return invalid_usage;
    g.ops.push_back(op_desc{c, send, peer, buf, n});
    return success;
  }
  static status send(void const* buf, std::size_t n, int peer, comm* c, CUstream_st*) {
    return add(true, const_cast<void*>(buf), n, peer, c);
  }
  static status recv(void* buf, std::size_t n, int peer, comm* c, CUstream_st*) { return add(false, buf, n, peer, c); }

  /// Posts one operation on c (the caller holds c's world's mutex).
  static void post(comm* c, std::shared_ptr<op> const& o) {
    world& w = *c->w;
    std::erase_if(c->inflight, [](std::shared_ptr<op> const& x) { return x->done; });
    std::size_t const key = o->send ? static_cast<std::size_t>(c->rank * w.size + o->peer)
                                    : static_cast<std::size_t>(o->peer * w.size + c->rank);
    (o->send ? w.sends : w.recvs)[key].push_back(o.get());
    c->inflight.push_back(o);
  }

  static status group_end() {
    group_state& g = group();
    if (g.depth == 0) return invalid_usage;
    if (--g.depth > 0) return success;
    std::vector<op_desc> ops = std::move(g.ops);
    g.ops.clear();
    if (ops.empty()) return success;
    comm* const c = ops.front().c;
    world& w = *c->w;
    std::lock_guard<std::mutex> lock(w.mutex);
    ++c->group_ends;
    if (c->fail_group_end_at == c->group_ends) return internal_error;
    int const n = static_cast<int>(ops.size());
    if (n > w.max_group_ops) return invalid_usage;
    if (n > w.largest_group) w.largest_group = n;
    if (proc().capturing) { // recorded: posted when the graph runs
      // NCCL runs a captured group's operations on several communicators as one kernel per
      // communicator, one after the other on the stream, in the order of the communicators'
      // hashes, not of issue: each waits until its own operations have matched
      std::vector<world*> order;
      for (op_desc const& d : ops)
        if (std::find(order.begin(), order.end(), d.c->w) == order.end()) order.push_back(d.c->w);
      std::stable_sort(order.begin(), order.end(), [](world* a, world* b) { return a->hash < b->hash; });
      for (world* x : order) {
        std::vector<op_desc> part;
        for (op_desc const& d : ops)
          if (d.c->w == x) part.push_back(d);
        proc().capturing->entries.push_back({work{}, std::move(part)});
      }
      return success;
    }
    for (op_desc const& d : ops)
      if (d.c != c) return invalid_usage; // (eager groups of the executor use one communicator)
    for (auto const& x : c->inflight)
      if (!x->done) return invalid_usage; // the previous group was not waited for
    for (op_desc const& d : ops) post(c, std::make_shared<op>(op{d.send, d.peer, d.buffer, d.bytes, false}));
    return in_progress;
  }

  /// Matches what can be matched on the pairs of c's operations (the caller holds the
  /// mutex); true when all of them are done.
  static bool match(comm* c, bool* remote) {
    world& w = *c->w;
    bool all = true;
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
        if (w.aborted[static_cast<std::size_t>(o->peer)]) *remote = true;
      }
    }
    return all;
  }

  /// A split's state: -1 not every rank has called it (remote error when a parent rank
  /// aborted meanwhile), else done (the new worlds made).
  static status split_state(comm* parent, int k) {
    world& w = *parent->w;
    std::lock_guard<std::mutex> lock(w.mutex);
    split_record& rec = w.splits[static_cast<std::size_t>(k)];
    if (rec.arrived < w.size) {
      for (char a : w.aborted)
        if (a) return remote_error;
      return in_progress;
    }
    if (!rec.made) {
      rec.made = true;
      std::map<int, std::vector<int>> members; // colour -> parent ranks, by (key, rank)
      for (int r = 0; r < w.size; ++r)
        if (rec.color[static_cast<std::size_t>(r)] != no_color) members[rec.color[static_cast<std::size_t>(r)]].push_back(r);
      for (auto& [color, m] : members) {
        std::stable_sort(m.begin(), m.end(), [&](int a, int b) { return rec.key[static_cast<std::size_t>(a)] < rec.key[static_cast<std::size_t>(b)]; });
        w.children.push_back(std::make_unique<world>(static_cast<int>(m.size())));
        w.children.back()->max_group_ops = w.max_group_ops;
        std::uint64_t z = (static_cast<std::uint64_t>(k) << 20) + static_cast<std::uint64_t>(color) + 1;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        w.children.back()->hash = z ^ (z >> 31);
        rec.worlds[color] = w.children.back().get();
        for (std::size_t i = 0; i < m.size(); ++i) rec.sub_rank[static_cast<std::size_t>(m[i])] = static_cast<int>(i);
      }
    }
    return success;
  }

  static status split(comm* parent, int color, int key, comm** out) {
    *out = nullptr;
    if (!parent->w) return invalid_usage;
    world& w = *parent->w;
    std::lock_guard<std::mutex> lock(w.mutex);
    if (w.aborted[static_cast<std::size_t>(parent->rank)]) return invalid_usage;
    int const k = parent->splits++;
    while (static_cast<int>(w.splits.size()) <= k) w.splits.emplace_back(w.size);
    split_record& rec = w.splits[static_cast<std::size_t>(k)];
    rec.color[static_cast<std::size_t>(parent->rank)] = color;
    rec.key[static_cast<std::size_t>(parent->rank)] = key;
    ++rec.arrived;
    parent->waiting_split = k;
    parent->split_out = out;
    parent->split_child = nullptr;
    if (color == no_color) return in_progress;
    w.child_comms.push_back(std::make_unique<comm>());
    comm* const c = w.child_comms.back().get();
    c->parent = parent;
    c->split_index = k;
    c->color = color;
    parent->split_child = c; // handed out when the parent's split is done
    return in_progress;
  }

  /// Completes a pending split (of c, or of c's parent), then matches and reports c's state.
  static status async_error(comm* c, status* state) {
    if (c->dead) {
      *state = invalid_usage;
      return success;
    }
    if (!c->w) { // made by a split: ready once every rank has called it
      status const s = split_state(c->parent, c->split_index);
      if (s != success) {
        *state = s;
        return success;
      }
      world& pw = *c->parent->w;
      std::lock_guard<std::mutex> lock(pw.mutex);
      split_record& rec = pw.splits[static_cast<std::size_t>(c->split_index)];
      c->w = rec.worlds.at(c->color);
      c->rank = rec.sub_rank[static_cast<std::size_t>(c->parent->rank)];
    }
    if (c->waiting_split >= 0) {
      status const s = split_state(c, c->waiting_split);
      if (s != success) {
        *state = s;
        return success;
      }
      c->waiting_split = -1;
      if (c->split_out) *c->split_out = c->split_child;
      c->split_out = nullptr;
      c->split_child = nullptr;
    }
    world& w = *c->w;
    std::lock_guard<std::mutex> lock(w.mutex);
    if (w.aborted[static_cast<std::size_t>(c->rank)]) {
      *state = invalid_usage;
      return success;
    }
    bool remote = false;
    bool const all = match(c, &remote);
    if (c->error) *state = invalid_usage;
    else if (remote) *state = remote_error;
    else if (all) {
      c->inflight.clear();
      *state = success;
    } else *state = in_progress;
    return success;
  }

  static status abort(comm* c) {
    if (!c->w) {
      c->dead = true;
      return success;
    }
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

  /// The orderly end of a communicator the executor made (NCCL: finalize, then destroy).
  static void release(comm* c) {
    c->released = true;
    if (c->graph_refs > 0) c->released_under_graph = true;
  }
};

/// A recorded group, run from a launched graph: posts its operations, then is done once all
/// have matched; an aborted communicator of its own ends it (NCCL's kernels exit on abort).
inline work group_runner(std::vector<op_desc> descs) {
  auto ops = std::make_shared<std::vector<std::pair<comm*, std::shared_ptr<op>>>>();
  return [descs = std::move(descs), ops]() -> int {
    if (ops->empty())
      for (op_desc const& d : descs) {
        if (!d.c->w) return 0;
        std::lock_guard<std::mutex> lock(d.c->w->mutex);
        if (d.c->w->aborted[static_cast<std::size_t>(d.c->rank)]) return 0;
        auto o = std::make_shared<op>(op{d.send, d.peer, d.buffer, d.bytes, false});
        nccl::post(d.c, o);
        ops->push_back({d.c, o});
      }
    bool all = true;
    for (auto& [c, o] : *ops) {
      std::lock_guard<std::mutex> lock(c->w->mutex);
      if (c->w->aborted[static_cast<std::size_t>(c->rank)]) return 0;
      bool remote = false;
      (void)nccl::match(c, &remote);
      all = all && o->done;
    }
    return all ? 0 : -1;
  };
}

/// A stage functor that launches each of F's passes on the pass's stream as a "kernel" (run
/// at once when nothing is pending, recorded by a capture and run again by each replay),
/// with the same step and views; F's own members do the work and their state is this
/// object's. (emulated_cuda.hpp's `emu::deferred` is the same for the stream emulator.)
template <class F> struct launched : F {
  template <class St> void forward(St const& s, pipesched::io const& x) {
    as_kernel(x, [this, s, x] { F::forward(s, x); });
  }
  template <class St> void backward(St const& s, pipesched::io const& x) {
    as_kernel(x, [this, s, x] { F::backward(s, x); });
  }
  template <class St> void backward_input(St const& s, pipesched::io const& x) {
    as_kernel(x, [this, s, x] { F::backward_input(s, x); });
  }
  template <class St> void backward_weight(St const& s, pipesched::io const& x) {
    as_kernel(x, [this, s, x] { F::backward_weight(s, x); });
  }
  /// An overlapped pair as one kernel, when F runs pairs as one call.
  template <class SF, class SB>
    requires pipesched::has_forward_backward<F, SF, SB>
  void forward_backward(SF const& sf, SB const& sb, pipesched::io const& xf, pipesched::io const& xb) {
    as_kernel(xf, [this, sf, sb, xf, xb] { F::forward_backward(sf, sb, xf, xb); });
  }

private:
  /// One pass, launched on its stream as a kernel that always succeeds (returns 0).
  template <class Pass> static void as_kernel(pipesched::io const& x, Pass pass) {
    launch(x.stream, [pass] {
      pass();
      return 0;
    });
  }
};

/// Runs body(rank, comm) on one thread per rank (threads as processes, each with its own
/// communicator of world w); returns each rank's exception (or null).
template <class Body> std::vector<std::exception_ptr> run_ranks(world& w, Body body) {
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(w.size));
  std::vector<comm> comms(static_cast<std::size_t>(w.size));
  for (int r = 0; r < w.size; ++r) {
    comms[static_cast<std::size_t>(r)].w = &w;
    comms[static_cast<std::size_t>(r)].rank = r;
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < w.size; ++r)
    threads.emplace_back([&, r] {
      try {
        body(r, comms[static_cast<std::size_t>(r)]);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

/// The message of a rank's exception, or "no exception" for a rank that ended normally.
/// A null pointer must not be rethrown (undefined: it crashes): tests pass this to
/// REQUIRE_MESSAGE(!e, message_of(e)), whose message doctest also builds when the check
/// passes and successes are shown (`-s`), and a crash in a check hangs doctest's reporter.
inline std::string message_of(std::exception_ptr const& e) {
  if (!e) return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (std::exception const& x) {
    return x.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

} // namespace emu_nccl
