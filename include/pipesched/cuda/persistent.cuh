// pipesched: the persistent executor — one GPU, every rank of a schedule in one cooperative
// kernel per iteration; or several GPUs of this process (options::devices), one rank per GPU,
// each in its own cooperative kernel. Each rank owns a group of blocks that runs the rank's
// whole lowered list unrolled (plan order, no loop or switch of the library's own), calling
// the user's __device__ stage functor members; boundaries move by pushes into the receiver's
// slots (peer pointers across GPUs) and acquire/release counters in global memory
// (persistent_protocol.hpp, proven on host threads, with one state array and with one per
// rank, in tests/cpu/cuda_persistent_protocol.cpp). No host involvement inside an iteration.
//
// State (2026-12-01): builds with nvcc 13 for sm_90 + PTX; has NOT run on a GPU yet
// (tests/gpu/persistent_*.cu, bench/bench_gpu_persistent.cu are written for scripts/gpu-check).
#pragma once

#include <cuda/atomic>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pipesched/cuda/basic_executor.hpp"
#include "pipesched/cuda/persistent_protocol.hpp"
#include "pipesched/cuda/runtime.cuh"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/functors.hpp"

namespace pipesched::cuda {

/// One block of the persistent kernel as the protocol sees it: libcu++ atomics (device scope
/// on one GPU; system scope with several, where counters are raised through peer pointers),
/// __syncthreads, %globaltimer, __nanosleep back-off, a group-strided 16-byte copy.
struct device_env {
  using dev_ref = ::cuda::atomic_ref<std::uint64_t, ::cuda::thread_scope_device>;
  using sys_ref = ::cuda::atomic_ref<std::uint64_t, ::cuda::thread_scope_system>;
  bool system = false; ///< several GPUs: every counter operation at system scope
  __device__ bool leader() const { return threadIdx.x == 0; }
  __device__ void block_sync() const { __syncthreads(); }
  __device__ bool block_any(bool b) const { return __syncthreads_or(b ? 1 : 0) != 0; }
  __device__ int thread() const { return static_cast<int>(threadIdx.x); }
  __device__ int threads() const { return static_cast<int>(blockDim.x); }
  __device__ std::uint64_t load_acquire(std::uint64_t* w) const {
    return system ? sys_ref(*w).load(::cuda::memory_order_acquire) : dev_ref(*w).load(::cuda::memory_order_acquire);
  }
  __device__ std::uint64_t load_relaxed(std::uint64_t* w) const {
    return system ? sys_ref(*w).load(::cuda::memory_order_relaxed) : dev_ref(*w).load(::cuda::memory_order_relaxed);
  }
  __device__ void add_release(std::uint64_t* w, std::uint64_t v) const {
    if (system) sys_ref(*w).fetch_add(v, ::cuda::memory_order_release);
    else dev_ref(*w).fetch_add(v, ::cuda::memory_order_release);
  }
  __device__ std::uint64_t add_acq_rel(std::uint64_t* w, std::uint64_t v) const {
    return system ? sys_ref(*w).fetch_add(v, ::cuda::memory_order_acq_rel)
                  : dev_ref(*w).fetch_add(v, ::cuda::memory_order_acq_rel);
  }
  __device__ bool take(std::uint64_t* w, std::uint64_t v) const {
    std::uint64_t expected = 0;
    return system ? sys_ref(*w).compare_exchange_strong(expected, v, ::cuda::memory_order_acq_rel)
                  : dev_ref(*w).compare_exchange_strong(expected, v, ::cuda::memory_order_acq_rel);
  }
  __device__ void store_release(std::uint64_t* w, std::uint64_t v) const {
    if (system) sys_ref(*w).store(v, ::cuda::memory_order_release);
    else dev_ref(*w).store(v, ::cuda::memory_order_release);
  }
  __device__ std::uint64_t now_ns() const {
    std::uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
  }
  __device__ void backoff(unsigned spin) const { __nanosleep(spin < 32 ? 32u : (spin < 1024 ? 256u : 2048u)); }
  /// Part `part` of `parts` of a copy: every thread of the group copies 16-byte words with a
  /// stride of the group's threads (slots are 256-byte aligned), then the tail bytes.
  __device__ __noinline__ void copy(void* dst, void const* src, std::size_t bytes, int part, int parts) const {
    std::size_t const t = static_cast<std::size_t>(part) * blockDim.x + threadIdx.x;
    std::size_t const n = static_cast<std::size_t>(parts) * blockDim.x;
    std::size_t const words = bytes / 16;
    uint4* const d = static_cast<uint4*>(dst);
    uint4 const* const s = static_cast<uint4 const*>(src);
    for (std::size_t i = t; i < words; i += n) d[i] = s[i];
    for (std::size_t i = words * 16 + t; i < bytes; i += n)
      static_cast<unsigned char*>(dst)[i] = static_cast<unsigned char const*>(src)[i];
  }
};

/// What a device functor's members get besides the step and the views: its block group
/// (`block_rank()`, `num_blocks()`, `thread_rank()`, `num_threads()`, `sync()`).
using device_group = basic_group<device_env>;

/// Settings of a persistent executor.
struct persistent_options {
  /// Bytes of every boundary, unless `boundaries` gives them per stage.
  std::size_t slot_bytes = 0;
  boundary_sizes boundaries{};
  /// The device of each rank (one entry per rank, all different; peer access with native
  /// atomics both ways between every two): each runs its rank in its own cooperative kernel.
  /// Empty: every rank on the current device, in one kernel.
  std::vector<int> devices{};
  /// Threads of every block.
  int threads_per_block = 256;
  /// Blocks of each rank's group (one entry per rank); empty: `total_blocks` shared out in
  /// proportion to `rank_weights` (with `devices`: `total_blocks` for every rank).
  std::vector<int> blocks{};
  /// Blocks of the launch (of each device's launch with `devices`) when `blocks` is empty;
  /// 0: one per SM (at most every block that can be resident). Waiting blocks spin (with
  /// back-off), so more blocks than the stages can use only add traffic on the counters.
  int total_blocks = 0;
  /// The work of each rank (e.g. measured stage times); empty: the schedule's pass costs
  /// per rank (persistent_protocol<S>::rank_cost, the simulator's costs).
  std::vector<double> rank_weights{};
  /// Run-time tables only: the pass costs that weigh the default block partition
  /// (persistent_runtime_executor; a schedule type uses its own cost model).
  cost_model costs{};
  /// A wait longer than this ends the iteration with a deadline failure.
  std::uint64_t wait_timeout_ns = 2'000'000'000;
  /// run() and replay() wait for the iteration and report its failure.
  bool synchronize = true;
};

/// An iteration of the persistent kernel stopped: a functor reported a failure or a wait
/// passed its deadline. Names the rank and the action (pass, stage, micro-batch).
struct persistent_error : error {
  persistent_failure_kind kind;
  persistent_error(std::string const& what, failure_site s, persistent_failure_kind k)
      : error(what, 0, s), kind(k) {}
};

namespace detail {

/// The block groups' first blocks (ranks + 1 entries), passed by value to the kernel. With
/// several GPUs a device's launch gives all its blocks to its one rank R: first[k] = 0 for
/// k <= R, the grid for k > R.
template <std::size_t Ranks> struct group_starts {
  int first[Ranks + 1];
};

template <class S, class F, int... R>
__device__ void persistent_dispatch(persistent_context const& c, unsigned char* functors, int r, int block, int blocks,
                                    bool system, std::integer_sequence<int, R...>) {
  device_env env{system};
  ((r == R ? (void)run_rank_block<S, R>(env, c, functor_in<F, S::ranks, R>(functors), block, blocks) : (void)0), ...);
}

/// The persistent kernel: block b runs the rank whose group holds it; `functors` is the
/// packed buffer of functor_pack<F, ranks>.
template <class S, class F>
__global__ void persistent_kernel(persistent_context c, unsigned char* functors, group_starts<S::rank_count> g,
                                  bool system) {
  int const b = static_cast<int>(blockIdx.x);
  int r = 0;
  while (r + 1 < S::ranks && b >= g.first[r + 1]) ++r;
  persistent_dispatch<S, F>(c, functors, r, b - g.first[r], g.first[r + 1] - g.first[r], system,
                         std::make_integer_sequence<int, S::ranks>{});
}

/// A run-time program's lists as its kernel reads them: every rank's actions in device
/// memory, rank r's at [offset[r], offset[r + 1]).
struct runtime_lists {
  persistent_action const* actions = nullptr;
  std::uint32_t offset[65] = {};
  int ranks = 0;
};

/// The persistent kernel of a run-time program: block b runs the rank whose group holds it,
/// looping over the rank's actions (run_rank_block_runtime); `functors` holds one F per rank.
template <class F>
__global__ void persistent_runtime_kernel(persistent_context c, unsigned char* functors, group_starts<64> g,
                                          runtime_lists l, bool system) {
  int const b = static_cast<int>(blockIdx.x);
  int r = 0;
  while (r + 1 < l.ranks && b >= g.first[r + 1]) ++r;
  device_env env{system};
  F& f = *reinterpret_cast<F*>(functors + static_cast<std::size_t>(r) * sizeof(F));
  (void)run_rank_block_runtime(env, c, f, r, l.actions + l.offset[r], l.offset[r + 1] - l.offset[r], b - g.first[r],
                               g.first[r + 1] - g.first[r]);
}

/// What basic_persistent_executor runs for a schedule type: its kernel inlines each rank's
/// list; the protocol's tables are constants of the kernel.
template <class S, class F> struct static_persistent_program {
  using pack = functor_pack<F, S::ranks>;
  using protocol = persistent_protocol<S>;
  using starts = group_starts<S::rank_count>;
  static constexpr auto kernel = &persistent_kernel<S, F>;
  int ranks() const { return S::ranks; }
  int stages() const { return S::stages; }
  std::size_t slots() const { return protocol::slots; }
  std::uint32_t slot_base(int r) const { return protocol::slot_base(r); }
  double rank_cost(int r) const { return protocol::rank_cost(r); }
  std::vector<std::size_t> slot_bytes(int r, std::vector<std::size_t> const& bytes) const {
    return buffer_plan<S>::slot_bytes(r, bytes);
  }
  std::size_t functor_bytes() const { return pack::bytes; }
  template <class Fs> void pack_into(Fs const& fs, unsigned char* out) const { pack_functors<F, S::ranks>(fs, out); }
  void const* tables() const { return nullptr; }
  std::size_t table_bytes() const { return 0; }
  cudaError_t occupancy(int* per_sm, int threads) const {
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(per_sm, kernel, threads, 0);
  }
  cudaError_t launch(cudaLaunchConfig_t const& cfg, persistent_context const& c, unsigned char* functors,
                     starts const& g, bool system, void const*) const {
    return cudaLaunchKernelEx(&cfg, kernel, c, functors, g, system);
  }
};

/// What basic_persistent_executor runs for a schedule chosen at run time: the protocol's
/// actions copied to each device, one kernel for every table that loops over them.
template <class F> struct runtime_persistent_program_of {
  using starts = group_starts<64>;
  static constexpr auto kernel = &persistent_runtime_kernel<F>;
  runtime_schedule schedule;
  runtime_persistent_program proto;
  runtime_persistent_program_of(runtime_schedule const& s, cost_model const& costs) : schedule(s), proto(s, costs) {}
  int ranks() const { return proto.ranks; }
  int stages() const { return proto.stages; }
  std::size_t slots() const { return proto.slots(); }
  std::uint32_t slot_base(int r) const { return proto.slot_base(r); }
  double rank_cost(int r) const { return proto.rank_cost(r); }
  std::vector<std::size_t> slot_bytes(int r, std::vector<std::size_t> const& bytes) const {
    return slot_capacities(schedule, r, schedule.slots(r), bytes.data());
  }
  std::size_t functor_bytes() const { return static_cast<std::size_t>(ranks()) * sizeof(F); }
  template <class Fs> void pack_into(Fs const& fs, unsigned char* out) const {
    static_assert(std::is_same_v<std::remove_cvref_t<decltype(*std::begin(fs))>, F>,
                  "pipesched: persistent_runtime_executor: run() takes a range of the executor's functor type");
    std::size_t const n = static_cast<std::size_t>(std::end(fs) - std::begin(fs));
    if (n != static_cast<std::size_t>(ranks()))
      throw std::invalid_argument("pipesched: persistent_runtime_executor: " + std::to_string(n) + " functors for " +
                                  std::to_string(ranks()) + " ranks: give one per rank");
    std::size_t k = 0;
    for (F const& f : fs) std::memcpy(out + (k++) * sizeof(F), &f, sizeof(F));
  }
  void const* tables() const { return proto.actions.data(); }
  std::size_t table_bytes() const { return proto.actions.size() * sizeof(persistent_action); }
  cudaError_t occupancy(int* per_sm, int threads) const {
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(per_sm, kernel, threads, 0);
  }
  cudaError_t launch(cudaLaunchConfig_t const& cfg, persistent_context const& c, unsigned char* functors,
                     starts const& g, bool system, void const* tables) const {
    runtime_lists l{};
    l.actions = static_cast<persistent_action const*>(tables);
    l.ranks = ranks();
    for (int r = 0; r <= ranks(); ++r) l.offset[r] = static_cast<std::uint32_t>(proto.offset[static_cast<std::size_t>(r)]);
    return cudaLaunchKernelEx(&cfg, kernel, c, functors, g, l, system);
  }
};

/// Makes `device` current for a scope and restores the device current before.
struct device_scope {
  int before = 0;
  explicit device_scope(int device) {
    (void)cudaGetDevice(&before);
    (void)cudaSetDevice(device);
  }
  ~device_scope() { (void)cudaSetDevice(before); }
  device_scope(device_scope const&) = delete;
  device_scope& operator=(device_scope const&) = delete;
};

} // namespace detail

namespace detail {

/// The persistent executor's body, for a Program: static_persistent_program (a schedule
/// type) or runtime_persistent_program_of (a run-time table). See persistent_executor.
template <class Program> class basic_persistent_executor {
public:
  basic_persistent_executor(Program program, persistent_options const& o)
      : program_(std::move(program)), options_(o),
        bytes_(boundary_byte_table(program_.stages(), o.boundaries, o.slot_bytes)) {
    layout_.ranks = program_.ranks();
    layout_.slots = static_cast<int>(program_.slots());
    try {
      setup();
    } catch (...) {
      release();
      throw;
    }
  }
  basic_persistent_executor(basic_persistent_executor const&) = delete;
  basic_persistent_executor& operator=(basic_persistent_executor const&) = delete;
  ~basic_persistent_executor() { release(); }

  /// One iteration on `stream` (null: the legacy default stream; with options::devices the
  /// executor's own stream on each device, and `stream` must be null): copies the functors,
  /// then one cooperative launch per device. With options::synchronize, waits for every
  /// device and throws persistent_error when the iteration stopped (the state is then reset:
  /// the executor runs again).
  template <class Functors> void run(Functors const& functors, cudaStream_t stream = nullptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (multi() && stream != nullptr)
      throw std::invalid_argument("pipesched: persistent_executor: with options::devices every device runs on the "
                                  "executor's own stream: pass no stream to run()");
    stage(functors);
    if (!multi() && capturing(stream)) {
      // a capture may neither wait for the stream on the host nor copy from pageable memory
      // that the next changed functors free
      if (options_.synchronize)
        throw std::invalid_argument("pipesched: persistent_executor: run() on a stream being captured needs "
                                    "options.synchronize = false (call finish() after launching your graph)");
      if (!parts_[0].uploaded)
        throw std::invalid_argument("pipesched: persistent_executor: the functors changed: run() once outside "
                                    "your capture first (a capture cannot copy them from host memory)");
    }
    issue_iteration(stream, [&](part& d, cudaStream_t st) {
      upload(d, st);
      launch(d, st);
    });
  }

  /// Records one iteration into graphs; replay() launches them. One graph on one GPU; with
  /// options::devices one per device, each holding its rank's kernel (a graph's kernels run on
  /// one device here, and the ranks' kernels must all be resident at once: each device's graph
  /// is launched on its own stream, as run() launches the kernels). The kernels read the
  /// functors from the executor's device copies: those of the last capture() or run(). The
  /// counters stay valid across replays (monotonic epochs).
  template <class Functors> void capture(Functors const& functors) {
    std::lock_guard<std::mutex> lock(mutex_);
    stage(functors);
    for (part& d : parts_) {
      detail::device_scope const on(d.device); // a kernel is launched (and captured) with its stream's device current
      cudaStream_t const st = capture_stream_of(d);
      (void)after_last_launch(d, st); // a run() on another stream may still read the functors
      upload(d, st);
      check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
    }
    drop_graphs();
    for (part& d : parts_) {
      try {
        record_graph(d);
      } catch (...) {
        drop_graphs(); // all the devices' graphs or none
        throw;
      }
    }
  }

  /// Launches the captured iteration on `stream` (null: the legacy default stream; with
  /// options::devices each device's graph on the executor's own stream of that device, and
  /// `stream` must be null). Every device's graph is launched before any is waited for.
  void replay(cudaStream_t stream = nullptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!parts_[0].graph) throw std::logic_error("pipesched: replay() before capture()");
    if (multi() && stream != nullptr)
      throw std::invalid_argument("pipesched: persistent_executor: with options::devices every device replays on "
                                  "the executor's own stream: pass no stream to replay()");
    // null: each device's legacy stream, as in run()
    issue_iteration(stream, [&](part& d, cudaStream_t st) { check(cudaGraphLaunch(d.graph, st), "cudaGraphLaunch"); });
  }

  /// Whether capture() has recorded graphs (one per device with options::devices).
  bool captured() const { return parts_[0].graph != nullptr; }

  /// After a run with synchronize = false: waits for `stream` (every device's stream with
  /// options::devices) and throws the failure, if any.
  void finish(cudaStream_t stream = nullptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    wait_all(stream);
    check_failure();
  }

  /// Blocks of each rank's group (one GPU: their sum is the launch's grid).
  std::vector<int> const& block_groups() const { return groups_; }
  /// Blocks that can be resident at once (the least over the devices with several).
  int resident_blocks() const { return resident_; }
  /// The device rank r runs on.
  int device(int r) const { return parts_[part_of(r)].device; }
  /// Rank r's boundary slots (device addresses and capacities).
  view const* slots(int r) const { return host_views_.data() + program_.slot_base(r); }
  int slot_count(int r) const { return static_cast<int>(program_.slot_base(r + 1) - program_.slot_base(r)); }
  std::vector<std::size_t> const& boundary_bytes() const { return bytes_; }
  /// The counters' words of the state array rank r uses (copied from its device; on one GPU
  /// every rank uses the same array): for tests and hang reports.
  std::vector<std::uint64_t> state(int r = 0) const {
    std::vector<std::uint64_t> s(layout_.words());
    part const& d = parts_[part_of(r)];
    detail::device_scope const on(d.device);
    check(cudaMemcpy(s.data(), d.state, s.size() * sizeof(std::uint64_t), cudaMemcpyDeviceToHost), "cudaMemcpy");
    return s;
  }
  persistent_layout const& layout() const { return layout_; }
  /// Where the last failure happened (rank -1: none).
  failure_site last_failure() const { return failure_; }

protected:
  Program const& program() const { return program_; }

private:
  int ranks_() const { return program_.ranks(); }

  /// What lives on one device: its ranks' slots and state, the context's tables, the
  /// functors, its launch. One part on one GPU; one per rank with options::devices.
  struct part {
    int device = 0;
    int resident = 0;
    typename Program::starts starts{};
    int grid = 0;
    void* slots_block = nullptr;        ///< its ranks' slots
    std::uint64_t* state = nullptr;     ///< its state words
    std::uint64_t** states = nullptr;   ///< every rank's state words (context::states)
    view* views = nullptr;              ///< every global slot
    std::size_t* bytes = nullptr;
    unsigned char* functors = nullptr;  ///< every rank's, packed (functor_pack)
    void* tables = nullptr;             ///< the program's tables (a run-time program's actions)
    bool uploaded = false;              ///< `functors` holds staged_
    cudaStream_t stream{};              ///< with options::devices: the device's stream
    cudaStream_t capture_stream{};      ///< one GPU: the stream capture() records on
    cudaEvent_t launched{};             ///< recorded after its latest launch (run or replay)
    cudaGraphExec_t graph{};            ///< the captured iteration on this device
  };

  bool multi() const { return !options_.devices.empty(); }
  std::size_t part_of(int r) const { return multi() ? static_cast<std::size_t>(r) : 0; }
  cudaStream_t stream_of(part const& d, cudaStream_t user) const { return multi() ? d.stream : user; }
  /// The stream capture() records the part's kernel on: its own stream with several devices
  /// (idle between the executor's launches), a private one on one GPU.
  cudaStream_t capture_stream_of(part const& d) const { return multi() ? d.stream : d.capture_stream; }

  void check(cudaError_t e, char const* call) const {
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      pipesched::cuda::detail::throw_cuda<cuda_runtime>(e, call, failure_site{});
    }
  }

  /// The devices: checked, peer access (with native atomics) enabled both ways.
  void choose_devices() {
    int current = 0;
    check(cudaGetDevice(&current), "cudaGetDevice");
    if (!multi()) {
      parts_.assign(1, part{});
      parts_[0].device = current;
      return;
    }
    std::vector<int> const& ds = options_.devices;
    if (ds.size() != static_cast<std::size_t>(ranks_()))
      throw std::invalid_argument("pipesched: persistent_options::devices has " + std::to_string(ds.size()) +
                                  " entries for " + std::to_string(ranks_()) + " ranks: give one device per rank");
    int count = 0;
    check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
    for (std::size_t r = 0; r < ds.size(); ++r) {
      if (ds[r] < 0 || ds[r] >= count)
        throw std::invalid_argument("pipesched: persistent_options::devices: rank " + std::to_string(r) +
                                    " names device " + std::to_string(ds[r]) + ", but " + std::to_string(count) +
                                    " are visible");
      for (std::size_t q = 0; q < r; ++q)
        if (ds[q] == ds[r])
          throw std::invalid_argument("pipesched: persistent_options::devices: ranks " + std::to_string(q) + " and " +
                                      std::to_string(r) + " both name device " + std::to_string(ds[r]) +
                                      " (two cooperative kernels on one device need not be co-resident: one rank "
                                      "per device)");
    }
    for (int a : ds)
      for (int b : ds) {
        if (a == b) continue;
        int can = 0, atomics = 0;
        check(cudaDeviceCanAccessPeer(&can, a, b), "cudaDeviceCanAccessPeer");
        check(cudaDeviceGetP2PAttribute(&atomics, cudaDevP2PAttrNativeAtomicSupported, a, b),
              "cudaDeviceGetP2PAttribute");
        if (!can || !atomics)
          throw std::runtime_error("pipesched: persistent_executor: device " + std::to_string(a) + " cannot " +
                                   (can ? "do native atomics on" : "access") + " device " + std::to_string(b) +
                                   "'s memory: the persistent kernel needs peer access with native atomics "
                                   "(NVLink) between every two devices");
        detail::device_scope const on(a);
        cudaError_t const e = cudaDeviceEnablePeerAccess(b, 0);
        if (e == cudaErrorPeerAccessAlreadyEnabled) (void)cudaGetLastError();
        else check(e, "cudaDeviceEnablePeerAccess");
      }
    parts_.assign(ds.size(), part{});
    for (std::size_t r = 0; r < ds.size(); ++r) parts_[r].device = ds[r];
  }

  /// Resident blocks of each part, the block groups, each part's starts and grid.
  void partition() {
    std::vector<int> totals; // per part: the blocks of its launch when options::blocks is empty
    for (part& d : parts_) {
      detail::device_scope const on(d.device);
      int coop = 0, sms = 0, per_sm = 0;
      check(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, d.device), "cudaDeviceGetAttribute");
      if (!coop)
        throw std::runtime_error("pipesched: persistent_executor: device " + std::to_string(d.device) +
                                 " does not support cooperative launches");
      check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, d.device), "cudaDeviceGetAttribute");
      check(program_.occupancy(&per_sm, options_.threads_per_block), "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
      if (per_sm < 1)
        throw std::invalid_argument("pipesched: persistent_executor: no block of " +
                                    std::to_string(options_.threads_per_block) +
                                    " threads fits on a multiprocessor of device " + std::to_string(d.device) +
                                    " (the kernel's registers or shared memory): use fewer threads_per_block");
      d.resident = per_sm * sms;
      resident_ = totals.empty() || d.resident < resident_ ? d.resident : resident_;
      int const total = options_.total_blocks > 0 ? options_.total_blocks : (sms < d.resident ? sms : d.resident);
      if (options_.blocks.empty() && total > d.resident)
        throw std::invalid_argument("pipesched: persistent_executor: total_blocks " + std::to_string(total) +
                                    " exceeds the " + std::to_string(d.resident) + " blocks that can be resident" +
                                    (multi() ? " on device " + std::to_string(d.device) : std::string()));
      totals.push_back(total);
    }
    if (!multi()) {
      if (!options_.blocks.empty()) {
        check_block_groups(options_.blocks, ranks_(), resident_);
        groups_ = options_.blocks;
      } else {
        std::vector<double> w = options_.rank_weights;
        if (w.empty())
          for (int r = 0; r < ranks_(); ++r) w.push_back(program_.rank_cost(r));
        groups_ = share_blocks(totals[0], ranks_(), w);
      }
      part& d = parts_[0];
      d.starts.first[0] = 0;
      for (int r = 0; r < ranks_(); ++r) d.starts.first[r + 1] = d.starts.first[r] + groups_[static_cast<std::size_t>(r)];
      d.grid = d.starts.first[ranks_()];
      return;
    }
    // one rank per device: its group is the whole launch
    if (options_.blocks.empty()) groups_ = totals;
    else {
      if (options_.blocks.size() != static_cast<std::size_t>(ranks_()))
        throw std::invalid_argument("pipesched: persistent kernel: " + std::to_string(options_.blocks.size()) +
                                    " block counts for " + std::to_string(ranks_()) + " ranks: give one per rank");
      for (int r = 0; r < ranks_(); ++r) {
        int const b = options_.blocks[static_cast<std::size_t>(r)];
        part const& d = parts_[static_cast<std::size_t>(r)];
        if (b < 1 || b > d.resident)
          throw std::invalid_argument("pipesched: persistent kernel: rank " + std::to_string(r) + " is given " +
                                      std::to_string(b) + " blocks; device " + std::to_string(d.device) +
                                      " holds 1 to " + std::to_string(d.resident) + " resident");
      }
      groups_ = options_.blocks;
    }
    for (int r = 0; r < ranks_(); ++r) {
      part& d = parts_[static_cast<std::size_t>(r)];
      d.grid = groups_[static_cast<std::size_t>(r)];
      for (int k = 0; k <= ranks_(); ++k) d.starts.first[k] = k <= r ? 0 : d.grid;
    }
  }

  void setup() {
    choose_devices();
    partition();
    // each part's ranks' slots in one block of its device, each slot sized for its largest
    // boundary; global slot order across the parts
    host_views_.assign(program_.slots(), view{});
    for (part& d : parts_) {
      detail::device_scope const on(d.device);
      int const lo = multi() ? static_cast<int>(&d - parts_.data()) : 0, hi = multi() ? lo + 1 : ranks_();
      std::vector<std::size_t> sizes;
      for (int r = lo; r < hi; ++r) {
        std::vector<std::size_t> const sz = program_.slot_bytes(r, bytes_);
        sizes.insert(sizes.end(), sz.begin(), sz.end());
      }
      std::size_t const n = block_bytes(sizes);
      if (n > 0) {
        check(cudaMalloc(&d.slots_block, n), "cudaMalloc");
        check(cudaMemset(d.slots_block, 0, n), "cudaMemset");
        carve_slots(d.slots_block, sizes, host_views_.data() + program_.slot_base(lo));
      }
      check(cudaMalloc(&d.state, layout_.words() * sizeof(std::uint64_t)), "cudaMalloc");
      check(cudaMemset(d.state, 0, layout_.words() * sizeof(std::uint64_t)), "cudaMemset");
    }
    // every part's tables: the views, the byte table, every rank's state (peer pointers: with
    // peer access enabled, a device address is valid on every device)
    std::vector<std::uint64_t*> states(static_cast<std::size_t>(ranks_()));
    for (int r = 0; r < ranks_(); ++r) states[static_cast<std::size_t>(r)] = parts_[part_of(r)].state;
    for (part& d : parts_) {
      detail::device_scope const on(d.device);
      check(cudaMalloc(&d.views, (host_views_.empty() ? 1 : host_views_.size()) * sizeof(view)), "cudaMalloc");
      if (!host_views_.empty())
        check(cudaMemcpy(d.views, host_views_.data(), host_views_.size() * sizeof(view), cudaMemcpyHostToDevice),
              "cudaMemcpy");
      check(cudaMalloc(&d.bytes, bytes_.size() * sizeof(std::size_t)), "cudaMalloc");
      check(cudaMemcpy(d.bytes, bytes_.data(), bytes_.size() * sizeof(std::size_t), cudaMemcpyHostToDevice),
            "cudaMemcpy");
      check(cudaMalloc(&d.states, states.size() * sizeof(std::uint64_t*)), "cudaMalloc");
      check(cudaMemcpy(d.states, states.data(), states.size() * sizeof(std::uint64_t*), cudaMemcpyHostToDevice),
            "cudaMemcpy");
      check(cudaMalloc(&d.functors, program_.functor_bytes() > 0 ? program_.functor_bytes() : 1), "cudaMalloc");
      if (program_.table_bytes() > 0) {
        check(cudaMalloc(&d.tables, program_.table_bytes()), "cudaMalloc");
        check(cudaMemcpy(d.tables, program_.tables(), program_.table_bytes(), cudaMemcpyHostToDevice), "cudaMemcpy");
      }
      if (multi()) check(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
      else check(cudaStreamCreateWithFlags(&d.capture_stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
      check(cudaEventCreateWithFlags(&d.launched, cudaEventDisableTiming), "cudaEventCreateWithFlags");
      check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    }
  }

  void drop_graphs() noexcept {
    for (part& d : parts_) {
      if (d.graph) (void)cudaGraphExecDestroy(d.graph);
      d.graph = nullptr;
    }
  }

  /// Captures the part's kernel on its capture stream and instantiates it (d.graph).
  void record_graph(part& d) {
    detail::device_scope const on(d.device);
    cudaStream_t const st = capture_stream_of(d);
    check(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    cudaError_t const le = launch_raw(d, st);
    cudaGraph_t graph{};
    cudaError_t const ee = cudaStreamEndCapture(st, &graph);
    if (le != cudaSuccess || ee != cudaSuccess) {
      if (graph) (void)cudaGraphDestroy(graph);
      check(le != cudaSuccess ? le : ee, le != cudaSuccess ? "cudaLaunchKernelEx (captured)" : "cudaStreamEndCapture");
    }
    cudaError_t const ie = cudaGraphInstantiate(&d.graph, graph, 0);
    (void)cudaGraphDestroy(graph);
    if (ie != cudaSuccess) {
      d.graph = nullptr;
      check(ie, "cudaGraphInstantiate");
    }
  }

  void release() noexcept {
    for (part& d : parts_) { // the latest launch on any stream (a user's too) ends before its graph and memory go
      detail::device_scope const on(d.device);
      if (d.launched) (void)cudaEventSynchronize(d.launched);
    }
    drop_graphs();
    for (part& d : parts_) {
      detail::device_scope const on(d.device);
      cudaStream_t const streams[2] = {d.stream, d.capture_stream};
      for (cudaStream_t st : streams)
        if (st) {
          (void)cudaStreamSynchronize(st);
          (void)cudaStreamDestroy(st);
        }
      if (d.launched) (void)cudaEventDestroy(d.launched);
      void* const blocks[7] = {d.slots_block, d.state, d.states, d.views, d.bytes, d.functors, d.tables};
      for (void* p : blocks)
        if (p) (void)cudaFree(p);
      d = part{d.device};
    }
    (void)cudaGetLastError();
  }

  /// The functors as the next upload sends them; a part whose device copy holds other bytes
  /// is marked for upload.
  template <class Functors> void stage(Functors const& fs) {
    std::vector<unsigned char> next(program_.functor_bytes(), 0);
    program_.pack_into(fs, next.data());
    if (!staged_.empty() && next == staged_) return;
    staged_ = std::move(next);
    for (part& d : parts_) d.uploaded = false;
  }

  /// Copies the staged functors to the part's device unless its copy already holds them (a
  /// copy from pageable memory waits for the stream: skipping it keeps run() with
  /// synchronize = false asynchronous when the functors do not change).
  void upload(part& d, cudaStream_t stream) {
    if (d.uploaded) return;
    check(cudaMemcpyAsync(d.functors, staged_.data(), staged_.size(), cudaMemcpyHostToDevice, stream),
          "cudaMemcpyAsync");
    d.uploaded = true;
  }

  cudaError_t launch_raw(part const& d, cudaStream_t stream) {
    persistent_context const c{d.states, layout_, d.views, d.bytes, options_.wait_timeout_ns};
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(static_cast<unsigned>(d.grid));
    cfg.blockDim = dim3(static_cast<unsigned>(options_.threads_per_block));
    cfg.dynamicSmemBytes = 0;
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeCooperative;
    attr[0].val.cooperative = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    return program_.launch(cfg, c, d.functors, d.starts, multi(), d.tables);
  }

  void launch(part const& d, cudaStream_t stream) { check(launch_raw(d, stream), "cudaLaunchKernelEx (cooperative)"); }

  /// Two launches of the kernel on one device must not overlap: each starts from the epochs
  /// the one before left, and an upload must not overwrite the functors a running kernel
  /// reads. One stream orders them by itself; across streams (a run() with synchronize =
  /// false on one, then capture() or replay() on another) this event does: every launch
  /// waits for the part's latest one and records it anew. Not on a stream being captured by
  /// the caller: a capture may not wait on an event recorded outside it
  /// (cudaErrorStreamCaptureIsolation), so ordering the caller's graph is the caller's part.
  bool capturing(cudaStream_t stream) const {
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    check(cudaStreamIsCapturing(stream, &st), "cudaStreamIsCapturing");
    return st != cudaStreamCaptureStatusNone;
  }
  /// Returns whether the launch is ordered so (false: `stream` is being captured); pass that
  /// to mark_launch after the launch.
  bool after_last_launch(part const& d, cudaStream_t stream) {
    if (capturing(stream)) return false;
    check(cudaStreamWaitEvent(stream, d.launched, 0), "cudaStreamWaitEvent");
    return true;
  }
  void mark_launch(part const& d, cudaStream_t stream, bool ordered) {
    if (ordered) check(cudaEventRecord(d.launched, stream), "cudaEventRecord");
  }

  /// run() and replay(): `start(d, st)` issues device d's kernel (or graph) on its stream,
  /// for every device before any is waited for (the kernels wait on each other); a failure
  /// after the first is issued abandons the iteration. With options.synchronize, waits and
  /// reports the iteration's failure.
  template <class Start> void issue_iteration(cudaStream_t stream, Start&& start) {
    std::size_t issued = 0;
    try {
      for (part& d : parts_) {
        detail::device_scope const on(d.device);
        cudaStream_t const st = stream_of(d, stream);
        bool const ordered = after_last_launch(d, st);
        start(d, st);
        ++issued;
        mark_launch(d, st, ordered);
      }
    } catch (...) {
      if (issued > 0) abandon_iteration(stream);
      throw;
    }
    if (options_.synchronize) {
      wait_all(stream);
      check_failure();
    }
  }

  /// Waits for every part's stream and its latest launch, whatever stream that was on (every
  /// one even after an error, so no kernel outlives the call unwaited and check_failure()
  /// never resets the state under a running kernel), then reports the first error.
  void wait_all(cudaStream_t stream) {
    cudaError_t first = cudaSuccess;
    for (part& d : parts_) {
      detail::device_scope const on(d.device);
      cudaError_t const e = cudaStreamSynchronize(stream_of(d, stream));
      if (first == cudaSuccess) first = e;
      cudaError_t const l = cudaEventSynchronize(d.launched); // success at once when never recorded
      if (first == cudaSuccess) first = l;
    }
    check(first, "cudaStreamSynchronize");
  }

  /// After a launch failed with other devices' kernels already issued: those kernels wait for
  /// a peer that never started, so each ends at its deadline; wait for them and reset every
  /// state, so that the next iteration does not report this one's deadline in place of the
  /// launch error being thrown.
  void abandon_iteration(cudaStream_t stream) noexcept {
    for (part& d : parts_) {
      detail::device_scope const on(d.device);
      (void)cudaStreamSynchronize(stream_of(d, stream));
      (void)cudaEventSynchronize(d.launched);
    }
    reset_states(false);
    (void)cudaGetLastError();
  }

  /// Zeroes every part's state array (counters, epochs, barriers, flags) and waits for it.
  /// `checked`: throw on the first CUDA error (false on a path that is already throwing).
  void reset_states(bool checked) {
    for (part& d : parts_) {
      detail::device_scope const on(d.device);
      cudaError_t const set = cudaMemset(d.state, 0, layout_.words() * sizeof(std::uint64_t));
      cudaError_t const done = cudaDeviceSynchronize();
      if (!checked) continue;
      check(set, "cudaMemset");
      check(done, "cudaDeviceSynchronize");
    }
  }

  /// Reads the failure record (rank 0's state); on a failure resets every state array
  /// (counters, epochs, barriers, flags) and throws.
  void check_failure() {
    std::uint64_t rec[8] = {};
    {
      detail::device_scope const on(parts_[0].device);
      check(cudaMemcpy(rec, parts_[0].state, sizeof rec, cudaMemcpyDeviceToHost), "cudaMemcpy");
    }
    if (rec[persistent_layout::failure_kind] == 0) return;
    // the failure record and every rank's stop record (all in rank 0's state)
    std::vector<std::uint64_t> const words = state(0);
    std::string const what = describe_persistent_failure(layout_, words.data());
    failure_ = failure_site{static_cast<int>(rec[persistent_layout::failure_rank]),
                            action_record{rec[persistent_layout::failure_action]}};
    reset_states(true);
    throw persistent_error(what, failure_, static_cast<persistent_failure_kind>(rec[persistent_layout::failure_kind]));
  }

  Program program_;
  persistent_options options_;
  std::vector<std::size_t> bytes_;
  persistent_layout layout_{};
  std::vector<int> groups_;
  int resident_ = 0;
  std::vector<part> parts_;
  std::vector<view> host_views_;
  std::vector<unsigned char> staged_; ///< the functors' bytes of the last run() or capture()
  failure_site failure_{};
  std::mutex mutex_;
};

} // namespace detail

/// Runs schedule S as one cooperative kernel per iteration: on one GPU, rank r's block group
/// runs plan order of rank r; with options::devices, rank r runs alone in a kernel on device
/// devices[r], pushing boundaries into its peers' slots over peer pointers (counters at system
/// scope, each in the memory of the rank that waits on it; see hand_off). Device functors of
/// type F for every rank, or of per-rank types with F = std::tuple<F0, F1, ...> (trivially
/// copyable, copied to device memory at each run()). A functor has, for every pass the
/// schedule uses, `template <class Step> __device__ void
/// forward(Step, pipesched::io const&, pipesched::cuda::device_group const&)` (likewise
/// backward, backward_input, backward_weight), called by every thread of the group; returning
/// bool (false: failure, from any thread) is optional; so is `forward_backward(StepF, StepB,
/// io const&, io const&, device_group const&)`, which runs an overlapped pair (DualPipe,
/// DualPipe-V) in one call. See docs/04_cuda.md for what such a member may do.
template <schedule_type S, class F>
class persistent_executor : public detail::basic_persistent_executor<detail::static_persistent_program<S, F>> {
  static_assert(pipesched::detail::checked<S>); // a schedule that fails verification stops the build here
  using pack = functor_pack<F, S::ranks>;
  static_assert(pack::copyable,
                "pipesched: persistent_executor: the device functor is copied to device memory, so it must be "
                "trivially copyable (hold pointers to your device buffers, not containers)");
  // a missing member: one message naming it (each rank's type)
  static_assert([]<int... R>(std::integer_sequence<int, R...>) {
    return (device_functor_check<S, typename pack::template type<R>, device_group>::reported && ...);
  }(std::make_integer_sequence<int, S::ranks>{}));
  using base = detail::basic_persistent_executor<detail::static_persistent_program<S, F>>;

public:
  using schedule = S;
  using protocol = persistent_protocol<S>;
  static constexpr int ranks = S::ranks;

  explicit persistent_executor(persistent_options const& o) : base(detail::static_persistent_program<S, F>{}, o) {}
};

/// Runs a schedule chosen at run time (runtime_schedule: make_schedule, skip paths, CSV) as
/// one cooperative kernel per iteration, as persistent_executor runs a type — one GPU or
/// options::devices, graphs, failures, the same protocol — except that each rank's block
/// group loops over its actions in device memory (run_rank_block_runtime) instead of running
/// straight-line code: one kernel for every table, at the cost of reading each action's
/// record. One device functor type F for every rank (trivially copyable), whose members take
/// a pipesched::runtime_step: `__device__ void forward(pipesched::runtime_step, io const&,
/// device_group const&)` (or a template), likewise backward, backward_input, backward_weight
/// as the table calls them (a missing one throws std::invalid_argument naming it, before
/// anything is allocated); forward_backward(runtime_step, runtime_step, ...) optional.
/// run() takes a range of ranks functors (e.g. std::vector<F>). At most 64 ranks.
template <class F>
class persistent_runtime_executor : public detail::basic_persistent_executor<detail::runtime_persistent_program_of<F>> {
  static_assert(std::is_trivially_copyable_v<F>,
                "pipesched: persistent_runtime_executor: the device functor is copied to device memory, so it must "
                "be trivially copyable (hold pointers to your device buffers, not containers)");
  using program_type = detail::runtime_persistent_program_of<F>;
  using base = detail::basic_persistent_executor<program_type>;

  static program_type checked(runtime_schedule const& s, persistent_options const& o) {
    program_type p(s, o.costs);
    check_runtime_device_functor<F, device_group>(p.proto);
    return p;
  }

public:
  persistent_runtime_executor(runtime_schedule const& s, persistent_options const& o) : base(checked(s, o), o) {}

  int ranks() const { return this->program().ranks(); }
  /// The protocol the kernel runs (every action's hand-off, per-slot counts).
  runtime_persistent_program const& protocol() const { return this->program().proto; }
};

} // namespace pipesched::cuda
