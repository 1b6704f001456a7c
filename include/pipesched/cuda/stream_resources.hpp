// pipesched: what every CUDA streams executor of one process owns and does apart from issuing
// its program — devices and peer access, per-rank streams, the program's events, the fork and
// join events, boundary slots (one device block per rank), capture into a graph and replay,
// release, and CUDA errors raised as cuda::error naming rank and action.
//
// `basic_executor<S, Runtime>` (a schedule type: its ops expanded at compile time) and
// `basic_runtime_executor<Runtime>` (a run-time table: its ops in a loop) derive from
// `detail::stream_resources<Runtime>` and differ only in how they issue one iteration.
// Written against a runtime policy (see basic_executor.hpp); includes no CUDA header.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/plan/action_record.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/buffer_plan.hpp"

namespace pipesched::cuda {

/// A CUDA call failed: names the rank and the action (pass, stage, micro-batch) it was issued
/// for, and CUDA's error string.
struct error : std::runtime_error {
  int code = 0; ///< the runtime's error code (cudaError_t)
  failure_site site{};
  error(std::string const& what, int c, failure_site s) : std::runtime_error(what), code(c), site(s) {}
};

/// Settings of a CUDA executor.
struct options {
  /// Bytes of every boundary, unless `boundaries` gives them per stage.
  std::size_t slot_bytes = 0;
  /// Bytes per stage boundary (see host::options::boundaries).
  boundary_sizes boundaries{};
  /// The device of each rank (one entry per rank); empty: every rank on the current device
  /// (the one-GPU mode: p stages side by side on one card, each with its own streams).
  std::vector<int> devices{};
  /// run() and replay() return when the iteration is done (and report its errors); false:
  /// they return once it is issued, ordered after the work already on the origin stream and
  /// before what follows it.
  bool synchronize = true;
  /// SM partitions (green contexts; the CUDA driver 12.5 or newer): each rank's compute
  /// stream runs its kernels on a partition of its GPU's SMs of its own — the ranks on one
  /// device get disjoint, equal partitions of `sm_per_stage` SMs (0: the largest equal ones
  /// that fit; a size is rounded up to the device's granularity). A request that does not
  /// fit is refused with the size that would. Copies stay on the communication streams.
  bool sm_partitions = false;
  unsigned sm_per_stage = 0;
  /// A profiler range (NVTX) around each pass's functor call, named in PyTorch's action
  /// syntax with the rank ("2F3 r1"), so that Nsight Systems shows which kernels each action
  /// launched. The ranges are on the issuing host thread; a replayed graph has none.
  bool nvtx = false;
};

namespace detail {

/// A profiler range (the runtime policy's range_push / range_pop) for one scope, when `on`.
template <class Runtime> class range_scope {
public:
  range_scope(bool on, char const* name) : on_(on) {
    if (on_) Runtime::range_push(name);
  }
  ~range_scope() {
    if (on_) Runtime::range_pop();
  }
  range_scope(range_scope const&) = delete;
  range_scope& operator=(range_scope const&) = delete;

private:
  bool on_;
};

/// A runtime policy's SM partitions (`partitions_t`, make_partitions, partition_stream,
/// partition_stream_create, partition_event_create, destroy_partitions), where it has them.
template <class Runtime> struct partitions_of {
  static constexpr bool has = false;
  using type = void*;
};
template <class Runtime>
  requires requires { typename Runtime::partitions_t; }
struct partitions_of<Runtime> {
  static constexpr bool has = true;
  using type = typename Runtime::partitions_t;
};

/// Waits for the memsets that zeroed an executor's device memory, before any boundary is
/// written: cudaMemset runs on each device's legacy default stream, which the executors'
/// non-blocking streams do not wait for, so every device with memory set — not just the
/// current one — is synchronised, once. Owner i (a rank, a stage) is on `devices[i]` and set
/// memory where `has_memory(i)`; `synchronize(device, i)` makes the device current and waits
/// for it, reporting a failure as the caller does (owner i naming the site).
template <class HasMemory, class Synchronize>
void wait_for_memsets(std::vector<int> const& devices, HasMemory&& has_memory, Synchronize&& synchronize) {
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (!has_memory(i)) continue;
    bool seen = false;
    for (std::size_t q = 0; q < i && !seen; ++q) seen = has_memory(q) && devices[q] == devices[i];
    if (!seen) synchronize(devices[i], static_cast<int>(i));
  }
}

/// The SM partitions of a streams executor (options::sm_partitions) whose owners (ranks,
/// stages) sit on devices: one partition set per device in use (in order of first use), a
/// partition per owner on that device (in owner order). It owns the sets and every stream in
/// them; until make(), no owner has a partition.
template <class Runtime> class partition_sets {
public:
  using stream_t = typename Runtime::stream_t;
  using event_t = typename Runtime::event_t;
  using status = typename Runtime::status;

  /// Makes a set per device for the owners on `devices`: make_set(device, count, first owner,
  /// handle*) makes one (Runtime::make_partitions) and reports a failure as its caller does.
  /// On a throw, the sets made so far stay here for release().
  template <class MakeSet> void make(std::vector<int> const& devices, MakeSet&& make_set) {
    if constexpr (partitions_of<Runtime>::has) {
      owner_.assign(devices.size(), {-1, -1});
      std::vector<int> used;
      for (int d : devices)
        if (std::find(used.begin(), used.end(), d) == used.end()) used.push_back(d);
      for (int d : used) {
        std::vector<std::size_t> on;
        for (std::size_t i = 0; i < devices.size(); ++i)
          if (devices[i] == d) on.push_back(i);
        typename Runtime::partitions_t h{};
        make_set(d, static_cast<int>(on.size()), static_cast<int>(on[0]), &h);
        sets_.push_back(h);
        for (std::size_t k = 0; k < on.size(); ++k) owner_[on[k]] = {static_cast<int>(sets_.size() - 1), static_cast<int>(k)};
      }
    }
  }
  /// Whether `owner` runs on a partition of its own.
  bool has(int owner) const { return static_cast<std::size_t>(owner) < owner_.size() && owner_[static_cast<std::size_t>(owner)].first >= 0; }
  /// The partition's stream of an owner that has one.
  stream_t stream(int owner) const {
    if constexpr (partitions_of<Runtime>::has) {
      auto const [set, index] = owner_[static_cast<std::size_t>(owner)];
      return Runtime::partition_stream(sets_[static_cast<std::size_t>(set)], index);
    } else {
      return stream_t{};
    }
  }
  /// An event to record on the owner's stream: in its partition's context when it has one (an
  /// event and the stream that records it must share a context), else an ordinary one. With
  /// `blocking` it is made with cudaEventBlockingSync: a host thread waiting for it sleeps
  /// instead of spinning (the policy's event_create_blocking, partition_event_create_blocking).
  status make_event(int owner, event_t* e, bool blocking = false) const {
    if constexpr (partitions_of<Runtime>::has)
      if (has(owner)) {
        auto const [set, index] = owner_[static_cast<std::size_t>(owner)];
        auto const p = sets_[static_cast<std::size_t>(set)];
        return blocking ? Runtime::partition_event_create_blocking(p, index, e) : Runtime::partition_event_create(p, index, e);
      }
    return blocking ? Runtime::event_create_blocking(e) : Runtime::event_create(e);
  }
  /// A further stream for the owner: in its partition (owned by the set) when it has one, so
  /// that a graph captured on it runs there; else an ordinary one (the caller destroys it).
  status make_stream(int owner, stream_t* st) const {
    if constexpr (partitions_of<Runtime>::has)
      if (has(owner)) {
        auto const [set, index] = owner_[static_cast<std::size_t>(owner)];
        return Runtime::partition_stream_create(sets_[static_cast<std::size_t>(set)], index, st);
      }
    return Runtime::stream_create(st);
  }
  /// Destroys every set and the streams in them.
  void release() noexcept {
    if constexpr (partitions_of<Runtime>::has)
      for (auto h : sets_) Runtime::destroy_partitions(h);
    sets_.clear();
    owner_.clear();
  }

private:
  std::vector<typename partitions_of<Runtime>::type> sets_;
  std::vector<std::pair<int, int>> owner_; ///< per owner: its set and index ({-1, -1}: none)
};

template <class Runtime> [[noreturn]] void throw_cuda(typename Runtime::status e, char const* call, failure_site const& site) {
  std::string what = std::string("pipesched: ") + call + " failed";
  if (site.rank >= 0) what += " on rank " + std::to_string(site.rank) + " (" + describe(site.action) + ")";
  what += ": ";
  what += Runtime::error_string(e);
  throw error(what, static_cast<int>(e), site);
}

/// The resources of a streams executor and everything it does around the ops it issues. A
/// derived executor constructs it (devices checked, nothing allocated), calls setup() with its
/// stream program and slot sizes, and issues each iteration through run_iteration() or
/// capture_iteration() with a callable that issues the program's ops using issue_wait,
/// issue_record, issue_exec and issue_copy. Calls are serialised by one mutex.
template <class Runtime> class stream_resources {
public:
  using stream_t = typename Runtime::stream_t;
  using event_t = typename Runtime::event_t;
  using graph_exec_t = typename Runtime::graph_exec_t;
  using status = typename Runtime::status;

  stream_resources(stream_resources const&) = delete;
  stream_resources& operator=(stream_resources const&) = delete;

  /// Launches the captured iteration on `stream` (null: the legacy default stream).
  void replay(stream_t stream = nullptr) {
    if (!graph_exec_) throw std::logic_error("pipesched: replay() before capture()");
    std::lock_guard<std::mutex> lock(mutex_);
    current_device_ = -1; // the caller may have made another device current since the last call
    set_device(home_);
    check(Runtime::graph_launch(graph_exec_, stream), "cudaGraphLaunch");
    if (options_.synchronize) check(Runtime::stream_synchronize(stream), "cudaStreamSynchronize");
  }

  bool captured() const { return graph_exec_ != nullptr; }
  /// Rank r's boundary slots (device addresses and capacities).
  view const* slots(int r) const { return views_[static_cast<std::size_t>(r)].data(); }
  int slot_count(int r) const { return static_cast<int>(views_[static_cast<std::size_t>(r)].size()); }
  int device(int r) const { return devices_[static_cast<std::size_t>(r)]; }
  stream_t compute_stream(int r) const { return streams_[static_cast<std::size_t>(2 * r)]; }
  stream_t comm_stream(int r) const { return streams_[static_cast<std::size_t>(2 * r + 1)]; }
  /// Whether rank r's compute stream runs on an SM partition of its own (options::sm_partitions).
  bool partitioned(int r) const { return partitions_.has(r); }
  /// Bytes of every boundary (2S entries, boundary_key order).
  std::vector<std::size_t> const& boundary_bytes() const { return bytes_; }
  /// Where the last failure happened (rank -1: none).
  failure_site last_failure() const { return failure_; }
  options const& settings() const { return options_; }

protected:
  /// Checks the devices against the rank count; allocates nothing (setup() does).
  stream_resources(options const& o, int ranks, int stages)
      : options_(o), bytes_(boundary_byte_table(stages, o.boundaries, o.slot_bytes)), ranks_(ranks),
        stream_count_(2 * static_cast<std::size_t>(ranks)) {
    int current = 0;
    check(Runtime::get_device(&current), "cudaGetDevice");
    if (!o.devices.empty() && o.devices.size() != static_cast<std::size_t>(ranks))
      throw std::invalid_argument("pipesched: cuda::options::devices has " + std::to_string(o.devices.size()) +
                                  " entries, the schedule " + std::to_string(ranks) + " ranks: give one per rank");
    devices_.assign(static_cast<std::size_t>(ranks), current);
    if (!o.devices.empty()) devices_ = o.devices;
    home_ = devices_[0];
  }
  ~stream_resources() { release(); }

  /// Makes streams, events and slots: one event per (event, recording stream) that `prog`
  /// records, on that stream's device; rank r's slots of `slot_bytes[r]` bytes in one block
  /// on its device. Releases what it made when it fails.
  void setup(stream_program const& prog, std::vector<std::vector<std::size_t>> const& slot_bytes) {
    try {
      make(prog, slot_bytes);
    } catch (...) {
      release();
      throw;
    }
  }

  /// One iteration issued by `issue()` after the work on `origin`, for run().
  template <class Issue> void run_iteration(Issue&& issue, stream_t origin) {
    std::lock_guard<std::mutex> lock(mutex_);
    failure_ = failure_site{};
    issue_iteration(issue, origin);
    if (options_.synchronize) check(Runtime::stream_synchronize(origin), "cudaStreamSynchronize");
  }

  /// One iteration issued by `issue()` recorded into a graph (on the executor's own capture
  /// stream), for capture(); capturing again replaces the graph.
  template <class Issue> void capture_iteration(Issue&& issue) {
    std::lock_guard<std::mutex> lock(mutex_);
    failure_ = failure_site{};
    drop_graph();
    current_device_ = -1; // as in replay()
    set_device(home_);
    check(Runtime::begin_capture(capture_stream_), "cudaStreamBeginCapture");
    typename Runtime::graph_t graph{};
    try {
      issue_iteration(issue, capture_stream_);
    } catch (...) {
      // unchecked: a pending error must not skip ending the capture (the stream would stay
      // in capture mode, the executor unusable)
      (void)Runtime::set_device(home_);
      current_device_ = -1;
      (void)Runtime::end_capture(capture_stream_, &graph);
      if (graph) (void)Runtime::graph_destroy(graph);
      (void)Runtime::get_last_error();
      throw;
    }
    set_device(home_);
    check(Runtime::end_capture(capture_stream_, &graph), "cudaStreamEndCapture");
    status const e = Runtime::graph_instantiate(&graph_exec_, graph);
    (void)Runtime::graph_destroy(graph);
    if (e != Runtime::success) {
      graph_exec_ = nullptr;
      check(e, "cudaGraphInstantiate");
    }
  }

  /// A wait op: on the event of the stream that issued its latest record (op.peer_action,
  /// checked by verification).
  void issue_wait(stream_op const& o) {
    set_device(devices_[o.stream / 2u]);
    check(Runtime::stream_wait_event(streams_[o.stream], events_[o.event * stream_count_ + o.peer_action]),
          "cudaStreamWaitEvent");
  }
  /// A record op.
  void issue_record(stream_op const& o) {
    set_device(devices_[o.stream / 2u]);
    check(Runtime::event_record(events_[o.event * stream_count_ + o.stream], streams_[o.stream]), "cudaEventRecord");
  }
  /// An exec op of rank r: `call(current, views, stream)` runs the pass (setting `current` to
  /// the action it runs); a throw records rank and action and passes on; a launch error of
  /// the pass's kernels raises cuda::error (asynchronous errors surface at the end).
  template <class Call> void issue_exec(int r, action_record a, Call&& call) {
    std::size_t const rr = static_cast<std::size_t>(r);
    set_device(devices_[rr]);
    action_record current{};
    try {
      range_scope<Runtime> range(options_.nvtx, options_.nvtx ? label_of(a, r).text : "");
      call(current, boundary_views{views_[rr].data(), bytes_.data()}, streams_[2 * rr]);
    } catch (...) {
      failure_ = failure_site{r, current};
      throw;
    }
    check_at(Runtime::get_last_error(), "a kernel launch of the stage functor", r, current);
  }
  /// A copy op: `bytes` of slot `src_slot` of rank q into slot `dst_slot` of rank r, on r's
  /// communication stream (a peer copy between devices); `a` names the receive.
  void issue_copy(int r, std::size_t dst_slot, int q, std::size_t src_slot, std::size_t bytes, action_record a) {
    if (bytes == 0) return;
    std::size_t const rr = static_cast<std::size_t>(r), qq = static_cast<std::size_t>(q);
    void* const dst = views_[rr][dst_slot].data;
    void const* const src = views_[qq][src_slot].data;
    int const dr = devices_[rr], dq = devices_[qq];
    set_device(dr);
    stream_t const stream = streams_[2 * rr + 1];
    status const e = dr == dq ? Runtime::memcpy_async(dst, src, bytes, stream)
                              : Runtime::memcpy_peer_async(dst, dr, src, dq, bytes, stream);
    check_at(e, dr == dq ? "cudaMemcpyAsync" : "cudaMemcpyPeerAsync", r, a);
  }

  void check(status e, char const* call) const {
    if (e != Runtime::success) {
      (void)Runtime::get_last_error(); // clear a non-sticky error, so the executor can go on
      detail::throw_cuda<Runtime>(e, call, failure_);
    }
  }
  void check_at(status e, char const* call, int rank, action_record a) {
    if (e != Runtime::success) {
      failure_ = failure_site{rank, a};
      check(e, call);
    }
  }

  options options_;
  std::vector<std::size_t> bytes_;

private:
  void set_device(int d) {
    if (d == current_device_) return;
    check(Runtime::set_device(d), "cudaSetDevice");
    current_device_ = d;
  }

  void make(stream_program const& prog, std::vector<std::vector<std::size_t>> const& slot_bytes) {
    check(Runtime::get_device(&current_device_), "cudaGetDevice");
    // peer access both ways between every two devices in use, where the hardware allows it
    for (int a : devices_)
      for (int b : devices_) {
        if (a == b) continue;
        int can = 0;
        check(Runtime::can_access_peer(&can, a, b), "cudaDeviceCanAccessPeer");
        if (!can) continue;
        set_device(a);
        check(Runtime::enable_peer_access(b), "cudaDeviceEnablePeerAccess");
      }
    streams_.assign(stream_count_, nullptr);
    joins_.assign(stream_count_, nullptr);
    owned_.assign(stream_count_, true);
    if (options_.sm_partitions) make_partitions();
    for (std::size_t s = 0; s < stream_count_; ++s) {
      set_device(devices_[s / 2]);
      if (owned_[s]) check(Runtime::stream_create(&streams_[s]), "cudaStreamCreateWithFlags");
      make_event(s, &joins_[s]);
    }
    set_device(home_);
    check(Runtime::stream_create(&capture_stream_), "cudaStreamCreateWithFlags");
    check(Runtime::event_create(&fork_), "cudaEventCreateWithFlags");
    // one event per (event, recording stream) the program records, on that stream's device
    events_.assign(static_cast<std::size_t>(prog.events()) * stream_count_, nullptr);
    for (stream_op const& op : prog.ops) {
      if (op.kind != stream_op_kind::record) continue;
      event_t& e = events_[op.event * stream_count_ + op.stream];
      if (e) continue;
      set_device(devices_[op.stream / 2u]);
      make_event(op.stream, &e);
    }
    // boundary slots: one block per rank on its device, each slot sized for its largest boundary
    blocks_.assign(static_cast<std::size_t>(ranks_), nullptr);
    views_.assign(static_cast<std::size_t>(ranks_), {});
    for (std::size_t r = 0; r < static_cast<std::size_t>(ranks_); ++r) {
      std::vector<std::size_t> const& sizes = slot_bytes[r];
      std::size_t const n = block_bytes(sizes);
      auto& v = views_[r];
      v.assign(sizes.size(), view{});
      if (n == 0) continue;
      set_device(devices_[r]);
      check(Runtime::malloc(&blocks_[r], n), "cudaMalloc");
      check(Runtime::memset(blocks_[r], 0, n), "cudaMemset");
      carve_slots(blocks_[r], sizes, v.data());
      for (std::size_t k = 0; k < sizes.size(); ++k)
        if (sizes[k] == 0) v[k].data = nullptr;
    }
    // the slots' memsets, on every device with slots (see wait_for_memsets)
    wait_for_memsets(
        devices_, [&](std::size_t r) { return blocks_[r] != nullptr; },
        [&](int d, int) {
          set_device(d);
          check(Runtime::device_synchronize(), "cudaDeviceSynchronize");
        });
  }

  /// One partition set per device in use (in order of first use), each with a partition per
  /// rank on that device (in rank order); those ranks' compute streams are the partitions'.
  void make_partitions() {
    if constexpr (!partitions_of<Runtime>::has) {
      throw std::invalid_argument("pipesched: options::sm_partitions: this runtime policy has no SM partitions");
    } else {
      partitions_.make(devices_, [&](int d, int count, int, auto* h) {
        set_device(d);
        check(Runtime::make_partitions(h, d, count, options_.sm_per_stage), "SM partitions");
        current_device_ = -1; // making partitions may change the current device
      });
      for (int r = 0; r < ranks_; ++r)
        if (partitions_.has(r)) {
          streams_[2 * static_cast<std::size_t>(r)] = partitions_.stream(r);
          owned_[2 * static_cast<std::size_t>(r)] = false;
        }
    }
  }

  /// An event recorded on stream s: made in the partition's context when s is a partition's
  /// stream (an event and the stream that records it must share a context).
  void make_event(std::size_t s, event_t* e) {
    // only a compute stream (s even) is a partition's
    check(s % 2 == 0 ? partitions_.make_event(static_cast<int>(s / 2), e) : Runtime::event_create(e),
          "cudaEventCreateWithFlags");
  }

  void drop_graph() {
    if (graph_exec_) (void)Runtime::graph_exec_destroy(graph_exec_);
    graph_exec_ = nullptr;
  }

  void release() noexcept {
    drop_graph();
    for (std::size_t s = 0; s < streams_.size(); ++s)
      if (streams_[s]) {
        (void)Runtime::set_device(devices_[s / 2]);
        (void)Runtime::stream_synchronize(streams_[s]);
      }
    for (event_t e : events_)
      if (e) (void)Runtime::event_destroy(e);
    for (event_t e : joins_)
      if (e) (void)Runtime::event_destroy(e);
    if (fork_) (void)Runtime::event_destroy(fork_);
    for (std::size_t s = 0; s < streams_.size(); ++s)
      if (streams_[s] && owned_[s]) (void)Runtime::stream_destroy(streams_[s]); // partitions own theirs
    partitions_.release();
    if (capture_stream_) (void)Runtime::stream_destroy(capture_stream_);
    for (std::size_t r = 0; r < blocks_.size(); ++r)
      if (blocks_[r]) {
        (void)Runtime::set_device(devices_[r]);
        (void)Runtime::free(blocks_[r]);
      }
    events_.clear();
    joins_.clear();
    streams_.clear();
    owned_.clear();
    blocks_.clear();
    fork_ = event_t{};
    capture_stream_ = stream_t{};
    current_device_ = -1;
    (void)Runtime::get_last_error();
  }

  /// Fork from `origin`, the program, join into `origin`. On an exception: join what was
  /// issued (the streams drain: a wait on an event this iteration never recorded waits for
  /// nothing), wait for it outside a capture, rethrow.
  template <class Issue> void issue_iteration(Issue& issue, stream_t origin) {
    current_device_ = -1; // the caller may have made another device current since the last call
    set_device(home_);
    check(Runtime::event_record(fork_, origin), "cudaEventRecord");
    for (std::size_t s = 0; s < stream_count_; ++s) {
      set_device(devices_[s / 2]);
      check(Runtime::stream_wait_event(streams_[s], fork_), "cudaStreamWaitEvent");
    }
    try {
      issue();
    } catch (...) {
      join(origin, true);
      if (!Runtime::is_capturing(origin)) (void)Runtime::stream_synchronize(origin);
      (void)Runtime::get_last_error();
      throw;
    }
    join(origin, false);
  }

  void join(stream_t origin, bool quiet) {
    for (std::size_t s = 0; s < stream_count_; ++s) {
      set_device(devices_[s / 2]);
      status const e = Runtime::event_record(joins_[s], streams_[s]);
      if (!quiet) check(e, "cudaEventRecord");
    }
    set_device(home_);
    for (std::size_t s = 0; s < stream_count_; ++s) {
      status const e = Runtime::stream_wait_event(origin, joins_[s]);
      if (!quiet) check(e, "cudaStreamWaitEvent");
    }
  }

  std::vector<int> devices_;
  int home_ = 0;
  int current_device_ = -1;
  int ranks_ = 0;
  std::size_t stream_count_ = 0;
  std::vector<stream_t> streams_;
  std::vector<bool> owned_; ///< per stream: made (and destroyed) by the executor, not a partition's
  partition_sets<Runtime> partitions_; ///< options::sm_partitions: one set per device, a partition per rank
  std::vector<event_t> events_;
  std::vector<event_t> joins_;
  event_t fork_{};
  stream_t capture_stream_{};
  graph_exec_t graph_exec_{};
  std::vector<void*> blocks_;
  std::vector<std::vector<view>> views_;
  failure_site failure_{};
  std::mutex mutex_;
};

} // namespace detail

} // namespace pipesched::cuda
