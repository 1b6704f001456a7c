// pipesched: the CUDA streams executor — a schedule's verified stream program issued by one
// host thread onto per-rank compute and communication streams, on one GPU (all ranks) or
// several GPUs of one process (one rank per GPU, peer copies); whole iterations as graphs.
//
// Written against a runtime policy (`Runtime`: streams, events, copies, graphs) and
// including no CUDA header: `cuda::executor<S>` (executor.cuh) binds it to the CUDA runtime;
// tests bind it to a host emulation of CUDA's stream semantics that runs every schedule on
// the CPU, with the streams' work interleaved at random.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/plan/action_record.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/functors.hpp"
#include "pipesched/plan/plan.hpp"
#include "pipesched/plan/stage_functor.hpp"

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
};

namespace detail {

template <class Runtime> [[noreturn]] void throw_cuda(typename Runtime::status e, char const* call, failure_site const& site) {
  std::string what = std::string("pipesched: ") + call + " failed";
  if (site.rank >= 0) what += " on rank " + std::to_string(site.rank) + " (" + describe(site.action) + ")";
  what += ": ";
  what += Runtime::error_string(e);
  throw error(what, static_cast<int>(e), site);
}

/// The ops of one unit of a schedule's issue order, at compile time (at most 8: 3 waits, an
/// exec or a copy, 3 records; a rendezvous pair has 2 ops).
struct unit_ops {
  stream_op op[10] = {};
  std::size_t n = 0;
};

template <class Program> constexpr unit_ops ops_of_unit(std::size_t k) {
  using S = typename Program::schedule;
  unit_ops u{};
  lowered_view const t = view_of(S::lowered);
  auto flags = [](std::size_t r, std::size_t i) { return Program::issue.flags[S::lowered.offset[r] + i]; };
  expand_unit(t, Program::mode, Program::issue.event_base, flags, Program::issue.units[k],
              [&](stream_op const& o) { u.op[u.n++] = o; });
  return u;
}

/// A transport for the compute passes a stream program runs through a plan: records the
/// action in progress (transfers are the executor's own copies, never the plan's).
struct pass_tracker {
  action_record* current;
  template <class Step> void on_action(Step s) { *current = action_record::of(s); }
  template <class Step> void send(Step, io const&) {}
  template <class Step> void recv(Step, io const&) {}
};

} // namespace detail

/// Runs schedule S with CUDA streams from one host thread (`cuda::executor<S>`, executor.cuh). Each rank has a compute stream,
/// on which its stage functor's passes launch their kernels (`io::stream`), and a
/// communication stream, on which the boundaries it receives are copied into its slots
/// (device-to-device on one GPU, `cudaMemcpyPeerAsync` between GPUs). What is issued, and in
/// which order, is `stream_program_of<S>` — derived and checked by the compiler (every read
/// of a boundary slot after its write, every rewrite after the last read and the copy of the
/// old boundary, no wait on an event not yet recorded, each rank's passes in list order).
/// No device-wide synchronisation inside an iteration; no allocation either: slots (device
/// memory, one block per rank, each slot sized for the largest boundary it holds), streams
/// and events are made by the constructor.
///
/// `run(functors, origin)` issues one iteration after the work on `origin` (the legacy
/// default stream when null) and orders `origin` after it; `capture(functors)` records one
/// iteration into a CUDA graph that `replay(stream)` launches (one launch per iteration; the
/// functors' kernels, with the pointers they had at capture). A CUDA error raises
/// cuda::error naming rank, action and CUDA's error string. A functor that throws stops the
/// issue: the executor lets the streams drain (waits never block on records not issued)
/// and rethrows; it can run again. Calls are serialised; use it from one thread at a time
/// per device context.
template <schedule_type S, class Runtime> class basic_executor {
  static_assert(pipesched::detail::checked<S>); // a schedule that fails verification stops the build here
  using stream_t = typename Runtime::stream_t;
  using event_t = typename Runtime::event_t;
  using graph_exec_t = typename Runtime::graph_exec_t;
  using status = typename Runtime::status;

public:
  using schedule = S;
  using program = stream_program_of<S, transfer_mode::copy>;
  static_assert(program::valid); // the stream program's check, with its sentence when it fails
  static constexpr int ranks = S::ranks;
  static constexpr std::size_t units = program::units;

  explicit basic_executor(options const& o) : options_(o), bytes_(boundary_byte_table(S::stages, o.boundaries, o.slot_bytes)) {
    int current = 0;
    check(Runtime::get_device(&current), "cudaGetDevice");
    if (!o.devices.empty() && o.devices.size() != static_cast<std::size_t>(ranks))
      throw std::invalid_argument("pipesched: cuda::options::devices has " + std::to_string(o.devices.size()) +
                                  " entries, the schedule " + std::to_string(ranks) + " ranks: give one per rank");
    devices_.assign(static_cast<std::size_t>(ranks), current);
    if (!o.devices.empty()) devices_ = o.devices;
    home_ = devices_[0];
    try {
      setup();
    } catch (...) {
      release();
      throw;
    }
  }
  basic_executor(basic_executor const&) = delete;
  basic_executor& operator=(basic_executor const&) = delete;
  ~basic_executor() { release(); }

  /// One iteration, ordered after the work on `origin` (null: the legacy default stream).
  template <class Functors> void run(Functors& functors, stream_t origin = nullptr) {
    pipesched::detail::check_functor_count<ranks>(functors);
    check_members<Functors>();
    std::lock_guard<std::mutex> lock(mutex_);
    failure_ = failure_site{};
    issue_iteration(functors, origin);
    if (options_.synchronize) check(Runtime::stream_synchronize(origin), "cudaStreamSynchronize");
  }

  /// Records one iteration into a graph (on the executor's own capture stream); replay()
  /// runs it. Capturing again replaces the graph.
  template <class Functors> void capture(Functors& functors) {
    pipesched::detail::check_functor_count<ranks>(functors);
    check_members<Functors>();
    std::lock_guard<std::mutex> lock(mutex_);
    failure_ = failure_site{};
    drop_graph();
    set_device(home_);
    check(Runtime::begin_capture(capture_stream_), "cudaStreamBeginCapture");
    typename Runtime::graph_t graph{};
    try {
      issue_iteration(functors, capture_stream_);
    } catch (...) {
      set_device(home_);
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

  /// Launches the captured iteration on `stream` (null: the legacy default stream).
  void replay(stream_t stream = nullptr) {
    if (!graph_exec_) throw std::logic_error("pipesched: replay() before capture()");
    std::lock_guard<std::mutex> lock(mutex_);
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
  /// Bytes of every boundary (2S entries, boundary_key order).
  std::vector<std::size_t> const& boundary_bytes() const { return bytes_; }
  /// Where the last failure happened (rank -1: none).
  failure_site last_failure() const { return failure_; }
  options const& settings() const { return options_; }

private:
  static constexpr std::size_t stream_count = 2 * S::rank_count;
  static constexpr std::size_t event_count = static_cast<std::size_t>(program::issue.event_base[S::rank_count]);
  template <std::size_t K> static constexpr detail::unit_ops unit_ops_at = detail::ops_of_unit<program>(K);

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

  template <class Functors> static constexpr void check_members() {
    [&]<int... R>(std::integer_sequence<int, R...>) {
      (void)(pipesched::detail::check_members<
                 S, R, std::remove_cvref_t<decltype(pipesched::detail::functor_of<R>(std::declval<Functors&>()))>>() &&
             ...);
    }(std::make_integer_sequence<int, ranks>{});
  }

  void set_device(int d) {
    if (d == current_device_) return;
    check(Runtime::set_device(d), "cudaSetDevice");
    current_device_ = d;
  }

  void setup() {
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
    streams_.assign(stream_count, nullptr);
    joins_.assign(stream_count, nullptr);
    for (std::size_t s = 0; s < stream_count; ++s) {
      set_device(devices_[s / 2]);
      check(Runtime::stream_create(&streams_[s]), "cudaStreamCreateWithFlags");
      check(Runtime::event_create(&joins_[s]), "cudaEventCreateWithFlags");
    }
    set_device(home_);
    check(Runtime::stream_create(&capture_stream_), "cudaStreamCreateWithFlags");
    check(Runtime::event_create(&fork_), "cudaEventCreateWithFlags");
    // one event per (event, recording stream) the program records, on that stream's device
    events_.assign(event_count * stream_count, nullptr);
    stream_program const prog = program::make();
    for (stream_op const& op : prog.ops) {
      if (op.kind != stream_op_kind::record) continue;
      event_t& e = events_[op.event * stream_count + op.stream];
      if (e) continue;
      set_device(devices_[op.stream / 2u]);
      check(Runtime::event_create(&e), "cudaEventCreateWithFlags");
    }
    // boundary slots: one block per rank on its device, each slot sized for its largest boundary
    blocks_.assign(static_cast<std::size_t>(ranks), nullptr);
    views_.assign(static_cast<std::size_t>(ranks), {});
    for (int r = 0; r < ranks; ++r) {
      std::vector<std::size_t> const sizes = buffer_plan<S>::slot_bytes(r, bytes_);
      std::size_t const n = block_bytes(sizes);
      auto& v = views_[static_cast<std::size_t>(r)];
      v.assign(sizes.size(), view{});
      if (n == 0) continue;
      set_device(devices_[static_cast<std::size_t>(r)]);
      check(Runtime::malloc(&blocks_[static_cast<std::size_t>(r)], n), "cudaMalloc");
      check(Runtime::memset(blocks_[static_cast<std::size_t>(r)], 0, n), "cudaMemset");
      carve_slots(blocks_[static_cast<std::size_t>(r)], sizes, v.data());
      for (std::size_t k = 0; k < sizes.size(); ++k)
        if (sizes[k] == 0) v[k].data = nullptr;
    }
    check(Runtime::device_synchronize(), "cudaDeviceSynchronize");
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
      if (streams_[s]) (void)Runtime::stream_destroy(streams_[s]);
    if (capture_stream_) (void)Runtime::stream_destroy(capture_stream_);
    for (std::size_t r = 0; r < blocks_.size(); ++r)
      if (blocks_[r]) {
        (void)Runtime::set_device(devices_[r]);
        (void)Runtime::free(blocks_[r]);
      }
    events_.clear();
    joins_.clear();
    streams_.clear();
    blocks_.clear();
    fork_ = event_t{};
    capture_stream_ = stream_t{};
    (void)Runtime::get_last_error();
  }

  /// Fork from `origin`, the program, join into `origin`. On an exception: join what was
  /// issued (the streams drain: a wait on an event this iteration never recorded waits for
  /// nothing), wait for it outside a capture, rethrow.
  template <class Functors> void issue_iteration(Functors& functors, stream_t origin) {
    set_device(home_);
    check(Runtime::event_record(fork_, origin), "cudaEventRecord");
    for (std::size_t s = 0; s < stream_count; ++s) {
      set_device(devices_[s / 2]);
      check(Runtime::stream_wait_event(streams_[s], fork_), "cudaStreamWaitEvent");
    }
    try {
      issue_blocks(functors, std::make_index_sequence<(units + block - 1) / block>{});
    } catch (...) {
      join(origin, true);
      if (!Runtime::is_capturing(origin)) (void)Runtime::stream_synchronize(origin);
      (void)Runtime::get_last_error();
      throw;
    }
    join(origin, false);
  }

  void join(stream_t origin, bool quiet) {
    for (std::size_t s = 0; s < stream_count; ++s) {
      set_device(devices_[s / 2]);
      status const e = Runtime::event_record(joins_[s], streams_[s]);
      if (!quiet) check(e, "cudaEventRecord");
    }
    set_device(home_);
    for (std::size_t s = 0; s < stream_count; ++s) {
      status const e = Runtime::stream_wait_event(origin, joins_[s]);
      if (!quiet) check(e, "cudaStreamWaitEvent");
    }
  }

  // Units are issued in blocks of 64, one function each (as plans are): the compiler's cost
  // stays linear in the program's length.
  static constexpr std::size_t block = 64;
  template <class Functors, std::size_t... B> void issue_blocks(Functors& fs, std::index_sequence<B...>) {
    (issue_block<B>(fs), ...);
  }
  template <std::size_t B, class Functors> __attribute__((noinline)) void issue_block(Functors& fs) {
    constexpr std::size_t first = B * block;
    constexpr std::size_t count = first + block <= units ? block : units - first;
    [&]<std::size_t... K>(std::index_sequence<K...>) { (issue_unit<first + K>(fs), ...); }(
        std::make_index_sequence<count>{});
  }
  template <std::size_t K, class Functors> void issue_unit(Functors& fs) {
    [&]<std::size_t... J>(std::index_sequence<J...>) { (issue_op<K, J>(fs), ...); }(
        std::make_index_sequence<unit_ops_at<K>.n>{});
  }

  template <std::size_t K, std::size_t J, class Functors> void issue_op(Functors& fs) {
    constexpr stream_op o = unit_ops_at<K>.op[J];
    stream_t const stream = streams_[o.stream];
    if constexpr (o.kind == stream_op_kind::wait) {
      // the event of the stream that issued its latest record (checked by the compiler)
      set_device(devices_[o.stream / 2u]);
      check(Runtime::stream_wait_event(stream, events_[o.event * stream_count + o.peer_action]), "cudaStreamWaitEvent");
    } else if constexpr (o.kind == stream_op_kind::record) {
      set_device(devices_[o.stream / 2u]);
      check(Runtime::event_record(events_[o.event * stream_count + o.stream], stream), "cudaEventRecord");
    } else if constexpr (o.kind == stream_op_kind::exec) {
      constexpr int r = o.rank;
      constexpr std::size_t i = o.action;
      set_device(devices_[r]);
      action_record current{};
      detail::pass_tracker tracker{&current};
      try {
        plan<S, r>::template run_one<i>(pipesched::detail::functor_of<r>(fs), tracker,
                                        boundary_views{views_[r].data(), bytes_.data()}, stream);
      } catch (...) {
        failure_ = failure_site{r, current};
        throw;
      }
      // a launch error of the pass's kernels (asynchronous errors surface at the end)
      check_at(Runtime::get_last_error(), "a kernel launch of the stage functor", r, current);
    } else if constexpr (o.kind == stream_op_kind::copy) {
      constexpr int r = o.rank; // the receiver
      constexpr std::size_t i = o.action;
      constexpr action ra = S::lowered.at(r, i);
      constexpr int q = ra.peer;
      constexpr action sa = S::lowered.at(q, o.peer_action);
      constexpr int key = boundary_key(S::lowered, sa, field::in);
      std::size_t const bytes = bytes_[static_cast<std::size_t>(key)];
      if (bytes == 0) return;
      void* const dst = views_[r][ra.out].data;
      void const* const src = views_[q][sa.in].data;
      int const dr = devices_[r], dq = devices_[q];
      set_device(dr);
      status const e = dr == dq ? Runtime::memcpy_async(dst, src, bytes, stream)
                                : Runtime::memcpy_peer_async(dst, dr, src, dq, bytes, stream);
      check_at(e, dr == dq ? "cudaMemcpyAsync" : "cudaMemcpyPeerAsync", r, action_record::of(step_of<S, r, i>{}));
    }
  }

  options options_;
  std::vector<std::size_t> bytes_;
  std::vector<int> devices_;
  int home_ = 0;
  int current_device_ = -1;
  std::vector<stream_t> streams_;
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

} // namespace pipesched::cuda
