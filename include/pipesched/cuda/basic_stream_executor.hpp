// pipesched: a forward-only pipeline over an endless input stream on CUDA streams — inference
// serving with the model's stages side by side on one GPU (or one stage per GPU of this
// process), fed item by item from the host. The host version is host/stream.hpp; this one has
// the same push/pop/close/finish/cancel interface and the same stage functors, with the
// functor's kernels launched on its stage's stream.
//
// No thread of its own: push() issues the item's whole path at once — its input copied into
// stage 0's ring, each stage's forward on the stage's stream after an event of the stage
// before, the last stage's output copied to pinned host memory and an event recorded — so the
// GPU runs stage s of an item while stage s+1 runs the item before (stream order keeps each
// stage's items in order). pop() waits for the item's event and returns its bytes.
//
// Written against a runtime policy (cuda_runtime plus host_alloc, host_free,
// memcpy_to_device_async, memcpy_to_host_async, event_synchronize; see runtime.cuh),
// so the whole of it is tested on the CPU against an emulated CUDA runtime.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipesched/cuda/stream_resources.hpp"
#include "pipesched/host/stream.hpp"
#include "pipesched/plan/action_record.hpp"
#include "pipesched/plan/step.hpp"

namespace pipesched::cuda {

using host::overflow;
using host::stream_closed;
using host::stream_item;

/// Settings of a CUDA stream executor.
struct stream_options {
  /// Bytes of the boundary after each stage (S entries: stage s's output; the last one is
  /// what pop() returns) and of each input item.
  std::vector<std::size_t> output_bytes{};
  std::size_t input_bytes = 0;
  /// Items in flight at most (between push and pop): every boundary is a ring of this many
  /// device buffers, allocated once (and the input and output each a ring of pinned host
  /// buffers); an item's micro-batch index (`Step::mb`) is its number modulo the window.
  int window = 4;
  overflow when_full = overflow::block;
  /// The device of each stage (S entries); empty: every stage on the current device. Where two
  /// neighbouring stages are on different devices, the boundary is copied peer to peer on
  /// the sending stage's stream (peer access is enabled both ways).
  std::vector<int> devices{};
  /// Each stage's forward for each window slot is captured once as a CUDA graph (by the first
  /// item in that slot) and replayed for every later item in it: one launch per stage and
  /// item, however many kernels the stage launches. The functor is then called `window` times
  /// per stage, not once per item, so what it launches must depend only on the step and the
  /// views (both fixed per slot) and on buffers of its own whose addresses do not change.
  bool graphs = false;
  /// SM partitions (green contexts; the CUDA driver 12.5 or newer), as cuda::options has them:
  /// the stages on one device get disjoint, equal partitions of its SMs, `sm_per_stage` each
  /// (0: the largest equal ones that fit; a size is rounded up to the device's granularity),
  /// and each stage's stream is its partition's, so its kernels run on those SMs only. A
  /// request that does not fit is refused by the constructor with the size that would. With
  /// `graphs` a stage is captured on a second stream of its partition (a graph captured
  /// elsewhere would run its kernels outside it).
  bool sm_partitions = false;
  unsigned sm_per_stage = 0;
  /// pop() and finish() wait in the operating system instead of spinning a CPU core: the
  /// events they wait for are made with cudaEventBlockingSync. By default a thread waiting in
  /// cudaEventSynchronize spins (with the device's default scheduling, while it has fewer
  /// active contexts than the machine has cores), which gives the lowest latency from a
  /// finished item to pop() but keeps the consumer's core busy however slow the stages are.
  /// Set this for a serving loop whose core has other work; the cost is the thread's wake-up
  /// latency per pop (bench_cuda_stream measures both). Only these events change: the
  /// device's scheduling flags (cudaSetDeviceFlags) are the caller's.
  bool blocking_pop = false;
  /// A profiler range (NVTX) around each stage's functor call (and capture), named
  /// "2F17 r2": stage 2's forward of item 17 (the item's number, not its window slot).
  bool nvtx = false;
};

/// A forward-only pipeline of S stages on CUDA streams, one stream per stage, fed by an
/// endless input stream. One producer push()es items (their bytes are copied to pinned memory,
/// then to the device), one consumer pop()s results in push order; at most `window` items are
/// in flight (push blocks, or rejects, when they are). Stage functors are the forward-only
/// ones of the host stream executor: `forward(Step const& s, io const& x)` with a runtime_step
/// (s.stage, s.mb = item number mod window, s.first_stage, s.last_stage) and x.in / x.out in
/// device memory, launching their kernels on x.stream (the stage's stream; x.rank = the stage).
/// The functor is called on the pushing thread, with the stage's device current.
///
/// Boundaries are rings of `window` device buffers allocated once; a stage writes its output
/// straight into the next stage's ring. A ring slot is rewritten only by an item `window`
/// later, which push() admits only after the earlier item was popped — when pop() has seen
/// the item's last event, every stage has read and written its slots.
///
/// With options::graphs each stage's forward for each window slot is captured once as a graph
/// (by the first item in the slot) and replayed for every later item in it. With
/// options::sm_partitions each stage's stream (and capture stream) is in an SM partition of
/// its own (the runtime policy's make_partitions etc., see stream_resources.hpp).
///
/// Failures: a functor that throws, or a CUDA call that fails, stops the pipeline — the call
/// that met it rethrows it (a CUDA failure as cuda::error naming the stage and the item);
/// push and pop throw stream_closed from then on; finish() rethrows it. An asynchronous error
/// (a kernel fault) surfaces in pop() or finish(). Work already issued drains; nothing hangs.
template <class Functor, class Runtime> class basic_stream_executor {
  static_assert(host::stream_stage_functor<Functor>,
                "pipesched: cuda::stream_executor: the stage functor has no member `template <class Step> void "
                "forward(Step const&, pipesched::io const&)` accepting a pipesched::runtime_step, which every stage "
                "calls (launching its kernels on io.stream)");

public:
  using stream_t = typename Runtime::stream_t;
  using event_t = typename Runtime::event_t;
  using status = typename Runtime::status;
  using graph_exec_t = typename Runtime::graph_exec_t;

  basic_stream_executor(std::vector<Functor>& functors, stream_options const& o)
      : gate_(o.output_bytes.size(), functors.size(), o.window, o.when_full, ""), functors_(&functors),
        stages_(static_cast<int>(o.output_bytes.size())), window_(o.window), options_(o) {
    if (!o.devices.empty() && o.devices.size() != static_cast<std::size_t>(stages_))
      throw std::invalid_argument("pipesched: stream_options::devices has " + std::to_string(o.devices.size()) +
                                  " entries for " + std::to_string(stages_) + " stages: give one per stage");
    check(Runtime::get_device(&home_), "cudaGetDevice", -1);
    devices_.assign(static_cast<std::size_t>(stages_), home_);
    if (!o.devices.empty()) devices_ = o.devices;
    if (o.sm_partitions && !detail::partitions_of<Runtime>::has)
      throw std::invalid_argument("pipesched: stream_options::sm_partitions: this runtime policy has no SM partitions");
    try {
      setup();
    } catch (...) {
      release();
      throw;
    }
  }
  basic_stream_executor(basic_stream_executor const&) = delete;
  basic_stream_executor& operator=(basic_stream_executor const&) = delete;
  /// Lets the work already issued finish, then frees everything (items not popped are dropped).
  ~basic_stream_executor() { release(); }

  /// Feeds one item (input_bytes of `data`, host memory) and issues its whole path; its number
  /// is the count of items pushed before it. Blocks while `window` items are in flight
  /// (overflow::block) or returns false (overflow::reject). Throws stream_closed after close(),
  /// cancel() or a failure; rethrows a failure it meets itself (see the class).
  bool push(void const* data) {
    if (data == nullptr && options_.input_bytes > 0)
      throw std::invalid_argument("pipesched: stream push of a null item (stream_options::input_bytes is " +
                                  std::to_string(options_.input_bytes) + ")");
    std::unique_lock<std::mutex> lock(gate_.m);
    std::optional<std::uint64_t> const admitted = gate_.admit(lock);
    if (!admitted) return false;
    std::uint64_t const id = *admitted;
    lock.unlock();
    // the ring slots of this item are free: the item `window` before it was popped, after its
    // last event — every stage had read and written them
    std::size_t const k = static_cast<std::size_t>(id % static_cast<std::uint64_t>(window_));
    pushed_at_[k] = std::chrono::steady_clock::now();
    int stage = 0; // the stage being issued, for a failure's record
    caller_device const keep; // stages on other devices: the caller's current device back at the end
    try {
      issue_item(id, k, data, stage);
    } catch (...) {
      fail(std::current_exception(), stage, id);
      throw;
    }
    lock.lock();
    issued_ = id + 1;
    gate_.pop_cv.notify_all();
    return true;
  }

  /// The next item in push order, when it has gone through every stage; waits for it.
  /// Returns nothing once the stream is closed and every item was delivered. Throws
  /// stream_closed after cancel() or a failure, cuda::error for an asynchronous one it meets.
  std::optional<stream_item> pop() {
    std::unique_lock<std::mutex> lock(gate_.m);
    gate_.pop_cv.wait(lock, [&] { return gate_.stopped || issued_ > gate_.delivered || (gate_.closed && gate_.delivered == gate_.next_id); });
    if (gate_.stopped) throw gate_.closed_error();
    if (issued_ <= gate_.delivered) return std::nullopt; // closed and drained
    std::uint64_t const id = gate_.delivered;
    lock.unlock();
    std::size_t const k = static_cast<std::size_t>(id % static_cast<std::uint64_t>(window_));
    stream_item item{id, std::vector<unsigned char>(out_bytes())};
    try {
      check(Runtime::event_synchronize(done_[k]), "cudaEventSynchronize", stages_ - 1, id);
    } catch (...) {
      fail(std::current_exception(), stages_ - 1, id);
      throw;
    }
    if (!item.bytes.empty()) std::memcpy(item.bytes.data(), host_out_[k], item.bytes.size());
    latency_.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - pushed_at_[k]).count());
    lock.lock();
    gate_.delivered_one();
    return item;
  }

  /// No more items: push throws from now on; items in flight go on and can be popped.
  void close() {
    std::lock_guard<std::mutex> lock(gate_.m);
    gate_.closed = true;
    gate_.push_cv.notify_all();
    gate_.pop_cv.notify_all();
  }

  /// Closes the stream and waits until every pushed item has gone through every stage (they
  /// can still be popped). Rethrows a failure.
  void finish() {
    close();
    std::uint64_t issued = 0;
    {
      // a push admitted before close() may still be issuing its item: wait for it
      std::unique_lock<std::mutex> lock(gate_.m);
      gate_.pop_cv.wait(lock, [&] { return gate_.stopped || issued_ == gate_.next_id; });
      if (gate_.error) std::rethrow_exception(gate_.error);
      issued = issued_; // no push can follow close()
    }
    int s = 0;
    caller_device const keep;
    try {
      // the last item's event follows every stage's work on every stream (each stage waits
      // for the one before it, and a stream runs its items in order): with blocking_pop the
      // thread sleeps there, and the stream synchronisations after it return at once
      if (options_.blocking_pop && issued > 0) {
        s = stages_ - 1;
        set_device(devices_[static_cast<std::size_t>(s)], s);
        std::size_t const k = static_cast<std::size_t>((issued - 1) % static_cast<std::uint64_t>(window_));
        check(Runtime::event_synchronize(done_[k]), "cudaEventSynchronize", s);
        s = 0;
      }
      for (; s < stages_; ++s) {
        set_device(devices_[static_cast<std::size_t>(s)], s);
        check(Runtime::stream_synchronize(streams_[static_cast<std::size_t>(s)]), "cudaStreamSynchronize", s);
      }
    } catch (...) {
      fail(std::current_exception(), s, no_item);
      throw;
    }
  }

  /// Stops at once: items in flight are dropped (their work on the GPU finishes), push/pop throw.
  void cancel() {
    std::lock_guard<std::mutex> lock(gate_.m);
    gate_.stopped = true;
    gate_.push_cv.notify_all();
    gate_.pop_cv.notify_all();
  }

  /// Items pushed so far, and delivered (popped).
  std::uint64_t pushed() const { return gate_.pushed(); }
  std::uint64_t delivered() const { return gate_.delivered_count(); }
  /// Latency (µs from push to the moment pop had the item) of every item popped so far.
  std::vector<double> const& latencies() const { return latency_; }
  int stages() const { return stages_; }
  int window() const { return window_; }
  int device(int s) const { return devices_[static_cast<std::size_t>(s)]; }
  stream_t stage_stream(int s) const { return streams_[static_cast<std::size_t>(s)]; }
  /// Whether stage s's stream is an SM partition's (options::sm_partitions).
  bool partitioned(int s) const { return partitions_.has(s); }
  /// With options::graphs: the graphs captured so far (at most stages × window).
  int graphs_captured() const { return graphs_captured_; }
  static constexpr std::uint64_t no_item = ~std::uint64_t{0};
  /// Where the failure that stopped the stream happened: the stage (-1: none) and the item
  /// (no_item: none, e.g. a failure met by finish()).
  int failed_stage() const {
    std::lock_guard<std::mutex> lock(gate_.m);
    return failed_stage_;
  }
  std::uint64_t failed_item() const {
    std::lock_guard<std::mutex> lock(gate_.m);
    return failed_item_;
  }

private:
  /// A boundary ring: `window` device slots of `bytes` each (stride 256 bytes), one block.
  struct ring {
    void* block = nullptr;
    std::size_t bytes = 0, stride = 0;
    int device = 0;
    unsigned char* slot(std::size_t k) const { return static_cast<unsigned char*>(block) + k * stride; }
  };

  std::size_t out_bytes() const { return options_.output_bytes.back(); }

  /// The profiler range's name of stage s's forward of item `id` ("2F17 r2": stage s is on
  /// its own site, numbered s).
  static action_label label(int s, std::uint64_t id) { return range_label(s, op::forward, id, s); }

  /// A failed call as cuda::error naming the call, the stage (its site's rank) and the item.
  static void check(status e, char const* call, int stage, std::uint64_t item = no_item) {
    if (e == Runtime::success) return;
    (void)Runtime::get_last_error();
    std::string what = std::string("pipesched: ") + call + " failed";
    if (stage >= 0) what += " at stage " + std::to_string(stage);
    if (item != no_item) what += " for item " + std::to_string(item);
    what += ": ";
    what += Runtime::error_string(e);
    throw error(what, static_cast<int>(e), failure_site{stage, action_record{}});
  }
  static void set_device(int d, int stage) { check(Runtime::set_device(d), "cudaSetDevice", stage); }
  /// The calling thread's current device, made current again when a call that switched to
  /// the stages' devices returns (a user's allocation after push() lands where it did before).
  struct caller_device {
    int device = -1;
    caller_device() {
      if (Runtime::get_device(&device) != Runtime::success) device = -1;
    }
    ~caller_device() {
      int now = -1;
      if (device >= 0 && Runtime::get_device(&now) == Runtime::success && now != device)
        (void)Runtime::set_device(device);
    }
    caller_device(caller_device const&) = delete;
    caller_device& operator=(caller_device const&) = delete;
  };

  void make_ring(ring& g, int device, std::size_t bytes, int stage) {
    g.device = device;
    g.bytes = bytes;
    g.stride = (bytes + 255) / 256 * 256;
    if (g.stride == 0) return;
    set_device(device, stage);
    check(Runtime::malloc(&g.block, g.stride * static_cast<std::size_t>(window_)), "cudaMalloc", stage);
    check(Runtime::memset(g.block, 0, g.stride * static_cast<std::size_t>(window_)), "cudaMemset", stage);
  }

  void setup() {
    std::size_t const S = static_cast<std::size_t>(stages_);
    // peer access between neighbours on different devices, both ways
    for (std::size_t s = 0; s + 1 < S; ++s) {
      int const a = devices_[s], b = devices_[s + 1];
      if (a == b) continue;
      int can_ab = 0, can_ba = 0;
      check(Runtime::can_access_peer(&can_ab, a, b), "cudaDeviceCanAccessPeer", static_cast<int>(s));
      check(Runtime::can_access_peer(&can_ba, b, a), "cudaDeviceCanAccessPeer", static_cast<int>(s));
      if (!can_ab || !can_ba)
        throw std::runtime_error("pipesched: stream executor: stages " + std::to_string(s) + " and " +
                                 std::to_string(s + 1) + " are on devices " + std::to_string(a) + " and " +
                                 std::to_string(b) + ", which cannot access each other's memory");
      set_device(a, static_cast<int>(s));
      check(Runtime::enable_peer_access(b), "cudaDeviceEnablePeerAccess", static_cast<int>(s));
      set_device(b, static_cast<int>(s + 1));
      check(Runtime::enable_peer_access(a), "cudaDeviceEnablePeerAccess", static_cast<int>(s + 1));
    }
    if (options_.sm_partitions) make_partitions();
    // rings: in_[s] is what stage s reads (on its device); out_[s] what it writes — the next
    // stage's in_ ring when both are on one device, else a ring of its own copied over
    in_.assign(S, ring{});
    out_.assign(S, ring{});
    own_out_.assign(S, false);
    make_ring(in_[0], devices_[0], options_.input_bytes, 0);
    for (std::size_t s = 0; s < S; ++s) {
      std::size_t const bytes = options_.output_bytes[s];
      if (s + 1 < S) {
        make_ring(in_[s + 1], devices_[s + 1], bytes, static_cast<int>(s + 1));
        if (devices_[s] == devices_[s + 1]) out_[s] = in_[s + 1];
        else {
          make_ring(out_[s], devices_[s], bytes, static_cast<int>(s));
          own_out_[s] = true;
        }
      } else {
        make_ring(out_[s], devices_[s], bytes, static_cast<int>(s));
        own_out_[s] = true;
      }
    }
    // a stream and an event per stage (the event: "this stage's output of the newest item is
    // written", waited on by the next stage right after it is recorded), an event per window
    // slot (the item's output is in pinned memory), pinned rings for the input and the output
    if (streams_.size() != S) streams_.assign(S, stream_t{}); // make_partitions filled in theirs
    stage_done_.assign(S, event_t{});
    if (options_.graphs) {
      capture_streams_.assign(S, stream_t{});
      graphs_.assign(S * static_cast<std::size_t>(window_), graph_exec_t{});
    }
    for (std::size_t s = 0; s < S; ++s) {
      int const si = static_cast<int>(s);
      set_device(devices_[s], si);
      if (!partitioned(si)) check(Runtime::stream_create(&streams_[s]), "cudaStreamCreateWithFlags", si);
      // in the stage's partition when it has one: a graph captured on a stream of the
      // ordinary context would run outside it
      if (options_.graphs) check(partitions_.make_stream(si, &capture_streams_[s]), "cudaStreamCreateWithFlags", si);
      make_event(si, &stage_done_[s]);
    }
    set_device(devices_[S - 1], stages_ - 1);
    done_.assign(static_cast<std::size_t>(window_), event_t{});
    for (event_t& e : done_) make_event(stages_ - 1, &e, options_.blocking_pop);
    std::size_t const in_stride = (options_.input_bytes + 255) / 256 * 256, out_stride = (out_bytes() + 255) / 256 * 256;
    std::size_t const host_bytes = (in_stride + out_stride) * static_cast<std::size_t>(window_);
    if (host_bytes > 0) check(Runtime::host_alloc(&host_block_, host_bytes), "cudaMallocHost", -1);
    host_in_.assign(static_cast<std::size_t>(window_), nullptr);
    host_out_.assign(static_cast<std::size_t>(window_), nullptr);
    for (std::size_t k = 0; k < static_cast<std::size_t>(window_); ++k) {
      unsigned char* const base = static_cast<unsigned char*>(host_block_);
      host_in_[k] = base ? base + k * in_stride : nullptr;
      host_out_[k] = base ? base + static_cast<std::size_t>(window_) * in_stride + k * out_stride : nullptr;
    }
    pushed_at_.assign(static_cast<std::size_t>(window_), {});
    // the rings' memsets, on every device in use, before any item (see wait_for_memsets)
    detail::wait_for_memsets(
        devices_, [](std::size_t) { return true; },
        [](int d, int s) {
          set_device(d, s);
          check(Runtime::device_synchronize(), "cudaDeviceSynchronize", s);
        });
    set_device(home_, -1);
  }

  /// One partition set per device in use (in order of first use), each with a partition per
  /// stage on that device (in stage order); those stages' streams are the partitions'.
  void make_partitions() {
    if constexpr (detail::partitions_of<Runtime>::has) {
      streams_.assign(static_cast<std::size_t>(stages_), stream_t{});
      partitions_.make(devices_, [&](int d, int count, int first, auto* h) {
        set_device(d, first);
        check(Runtime::make_partitions(h, d, count, options_.sm_per_stage), "SM partitions", first);
      });
      for (int s = 0; s < stages_; ++s)
        if (partitioned(s)) streams_[static_cast<std::size_t>(s)] = partitions_.stream(s);
    }
  }

  /// An event recorded on stage s's stream: in the stage's partition's context when it has one.
  void make_event(int s, event_t* e, bool blocking = false) {
    check(partitions_.make_event(s, e, blocking), "cudaEventCreateWithFlags", s);
  }

  /// Issues item `id` (window slot k): input to stage 0's ring, every stage's forward after the
  /// stage before, the output to pinned memory, the slot's event.
  void issue_item(std::uint64_t id, std::size_t k, void const* data, int& s) {
    if (options_.input_bytes > 0) std::memcpy(host_in_[k], data, options_.input_bytes);
    for (s = 0; s < stages_; ++s) {
      std::size_t const ss = static_cast<std::size_t>(s);
      stream_t const st = streams_[ss];
      if (s == 0 || devices_[ss] != devices_[ss - 1]) set_device(devices_[ss], s); // once per device change
      if (s == 0) {
        if (options_.input_bytes > 0)
          check(Runtime::memcpy_to_device_async(in_[0].slot(k), host_in_[k], options_.input_bytes, st),
                "cudaMemcpyAsync (input, host to device)", 0, id);
      } else {
        // the wait binds to the record just issued for this item (CUDA: a wait takes the
        // event's latest record at the time it is issued)
        check(Runtime::stream_wait_event(st, stage_done_[ss - 1]), "cudaStreamWaitEvent", s, id);
      }
      runtime_step step{};
      step.kind = op::forward;
      step.stage = s;
      step.mb = static_cast<int>(k);
      step.in = step.out = static_cast<int>(k);
      step.stages = stages_;
      step.has_in = step.has_out = true;
      step.first_stage = s == 0;
      step.last_stage = s + 1 == stages_;
      io const x{view{in_[ss].slot(k), in_[ss].bytes}, view{out_[ss].slot(k), out_[ss].bytes}, view{}, st, s};
      if (options_.graphs) {
        graph_exec_t& g = graphs_[ss * static_cast<std::size_t>(window_) + k];
        if (!g) {
          detail::range_scope<Runtime> range(options_.nvtx, options_.nvtx ? label(s, id).text : "");
          capture_stage(g, step, x, id);
        }
        check(Runtime::graph_launch(g, st), "cudaGraphLaunch", s, id);
      } else {
        {
          detail::range_scope<Runtime> range(options_.nvtx, options_.nvtx ? label(s, id).text : "");
          if constexpr (host::stream_stage_functor<Functor>) (*functors_)[ss].forward(step, x); // (else: reported once)
        }
        check(Runtime::get_last_error(), "a kernel launch of the stage's forward", s, id);
      }
      if (s + 1 < stages_) {
        if (own_out_[ss] && out_[ss].bytes > 0)
          check(Runtime::memcpy_peer_async(in_[ss + 1].slot(k), devices_[ss + 1], out_[ss].slot(k), devices_[ss],
                                           out_[ss].bytes, st),
                "cudaMemcpyPeerAsync", s, id);
        check(Runtime::event_record(stage_done_[ss], st), "cudaEventRecord", s, id);
      } else {
        if (out_bytes() > 0)
          check(Runtime::memcpy_to_host_async(host_out_[k], out_[ss].slot(k), out_bytes(), st),
                "cudaMemcpyAsync (output, device to host)", s, id);
        check(Runtime::event_record(done_[k], st), "cudaEventRecord", s, id);
      }
    }
  }

  /// Records stage x.rank's forward of `step` (one window slot) into `g`, on the stage's
  /// capture stream (thread-local mode: nothing runs).
  void capture_stage(graph_exec_t& g, runtime_step const& step, io x, std::uint64_t id) {
    int const s = x.rank;
    stream_t const cs = capture_streams_[static_cast<std::size_t>(s)];
    x.stream = cs;
    check(Runtime::begin_capture(cs), "cudaStreamBeginCapture", s, id);
    typename Runtime::graph_t graph{};
    try {
      if constexpr (host::stream_stage_functor<Functor>) (*functors_)[static_cast<std::size_t>(s)].forward(step, x);
      check(Runtime::get_last_error(), "a kernel launch of the stage's forward (captured)", s, id);
    } catch (...) {
      (void)Runtime::end_capture(cs, &graph);
      if (graph) (void)Runtime::graph_destroy(graph);
      (void)Runtime::get_last_error();
      throw;
    }
    check(Runtime::end_capture(cs, &graph), "cudaStreamEndCapture", s, id);
    status const e = Runtime::graph_instantiate(&g, graph);
    (void)Runtime::graph_destroy(graph);
    if (e != Runtime::success) {
      g = graph_exec_t{};
      check(e, "cudaGraphInstantiate", s, id);
    }
    ++graphs_captured_;
  }

  /// Stops the stream with its first failure (met at `stage`, for `item`).
  void fail(std::exception_ptr e, int stage, std::uint64_t item) {
    std::lock_guard<std::mutex> lock(gate_.m);
    if (!gate_.error) {
      failed_stage_ = stage;
      failed_item_ = item;
    }
    gate_.fail(e);
    gate_.push_cv.notify_all();
    gate_.pop_cv.notify_all();
  }

  /// Waits for the work issued (so that no kernel outlives its buffers), then frees everything.
  void release() noexcept {
    for (std::size_t s = 0; s < streams_.size(); ++s)
      if (streams_[s]) {
        (void)Runtime::set_device(devices_[s]);
        (void)Runtime::stream_synchronize(streams_[s]);
      }
    for (graph_exec_t g : graphs_)
      if (g) (void)Runtime::graph_exec_destroy(g);
    graphs_.clear();
    for (std::size_t s = 0; s < streams_.size(); ++s) {
      (void)Runtime::set_device(devices_[s]);
      bool const owned = !partitioned(static_cast<int>(s)); // partitions own theirs
      if (streams_[s] && owned) (void)Runtime::stream_destroy(streams_[s]);
      if (s < capture_streams_.size() && capture_streams_[s] && owned) (void)Runtime::stream_destroy(capture_streams_[s]);
      if (s < stage_done_.size() && stage_done_[s]) (void)Runtime::event_destroy(stage_done_[s]);
    }
    for (event_t e : done_)
      if (e) (void)Runtime::event_destroy(e);
    partitions_.release();
    auto free_ring = [](ring& g) {
      if (!g.block) return;
      (void)Runtime::set_device(g.device);
      (void)Runtime::free(g.block);
      g.block = nullptr;
    };
    for (ring& g : in_) free_ring(g);
    for (std::size_t s = 0; s < out_.size(); ++s)
      if (own_out_[s]) free_ring(out_[s]);
    if (host_block_) (void)Runtime::host_free(host_block_);
    host_block_ = nullptr;
    streams_.clear();
    capture_streams_.clear();
    stage_done_.clear();
    done_.clear();
    in_.clear();
    out_.clear();
    (void)Runtime::set_device(home_);
    (void)Runtime::get_last_error();
  }

  host::detail::stream_gate gate_; ///< the mutex, admission, delivery and stop state
  std::vector<Functor>* functors_;
  int stages_;
  int window_;
  stream_options options_;
  int home_ = 0;
  std::vector<int> devices_;
  std::vector<ring> in_, out_;
  std::vector<bool> own_out_;
  std::vector<stream_t> streams_, capture_streams_;
  detail::partition_sets<Runtime> partitions_; ///< options::sm_partitions: one set per device, a partition per stage
  std::vector<graph_exec_t> graphs_; ///< options::graphs: stage s, slot k at s * window + k
  int graphs_captured_ = 0;
  std::vector<event_t> stage_done_, done_;
  void* host_block_ = nullptr;
  std::vector<unsigned char*> host_in_, host_out_;
  std::vector<std::chrono::steady_clock::time_point> pushed_at_;
  std::vector<double> latency_;
  int failed_stage_ = -1;
  std::uint64_t failed_item_ = no_item;
  std::uint64_t issued_ = 0; // items whose path is issued (pop waits for these; guarded by gate_.m)
};

} // namespace pipesched::cuda
