// pipesched: the persistent executor — one GPU, every rank of a schedule in one cooperative
// kernel per iteration. Each rank owns a group of blocks that runs the rank's whole lowered
// list unrolled (plan order, no loop or switch of the library's own), calling the user's
// __device__ stage functor members; boundaries move by pushes into the receiver's slots and
// acquire/release counters in global memory (persistent_protocol.hpp, proven on host threads
// in tests/cpu/cuda_persistent_protocol.cpp). No host involvement inside an iteration.
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

/// One block of the persistent kernel as the protocol sees it: libcu++ atomics at device
/// scope, __syncthreads, %globaltimer, __nanosleep back-off, a group-strided 16-byte copy.
struct device_env {
  using ref = ::cuda::atomic_ref<std::uint64_t, ::cuda::thread_scope_device>;
  __device__ bool leader() const { return threadIdx.x == 0; }
  __device__ void block_sync() const { __syncthreads(); }
  __device__ bool block_any(bool b) const { return __syncthreads_or(b ? 1 : 0) != 0; }
  __device__ int thread() const { return static_cast<int>(threadIdx.x); }
  __device__ int threads() const { return static_cast<int>(blockDim.x); }
  __device__ std::uint64_t load_acquire(std::uint64_t* w) const { return ref(*w).load(::cuda::memory_order_acquire); }
  __device__ std::uint64_t load_relaxed(std::uint64_t* w) const { return ref(*w).load(::cuda::memory_order_relaxed); }
  __device__ void add_release(std::uint64_t* w, std::uint64_t v) const { ref(*w).fetch_add(v, ::cuda::memory_order_release); }
  __device__ std::uint64_t add_acq_rel(std::uint64_t* w, std::uint64_t v) const {
    return ref(*w).fetch_add(v, ::cuda::memory_order_acq_rel);
  }
  __device__ bool take(std::uint64_t* w, std::uint64_t v) const {
    std::uint64_t expected = 0;
    return ref(*w).compare_exchange_strong(expected, v, ::cuda::memory_order_acq_rel);
  }
  __device__ void store_release(std::uint64_t* w, std::uint64_t v) const { ref(*w).store(v, ::cuda::memory_order_release); }
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
  /// Threads of every block.
  int threads_per_block = 256;
  /// Blocks of each rank's group (one entry per rank); empty: `total_blocks` shared out in
  /// proportion to `rank_weights`.
  std::vector<int> blocks{};
  /// Blocks of the launch when `blocks` is empty; 0: one per SM (at most every block that
  /// can be resident). Waiting blocks spin (with back-off), so more blocks than the stages
  /// can use only add traffic on the counters.
  int total_blocks = 0;
  /// The work of each rank (e.g. measured stage times); empty: the schedule's pass costs
  /// per rank (persistent_protocol<S>::rank_cost, the simulator's costs).
  std::vector<double> rank_weights{};
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

/// The block groups' first blocks (ranks + 1 entries), passed by value to the kernel.
template <std::size_t Ranks> struct group_starts {
  int first[Ranks + 1];
};

template <class S, class F, int... R>
__device__ void persistent_dispatch(persistent_context const& c, F* functors, int r, int block, int blocks,
                                    std::integer_sequence<int, R...>) {
  device_env env{};
  ((r == R ? (void)run_rank_block<S, R>(env, c, functors[R], block, blocks) : (void)0), ...);
}

/// The persistent kernel: block b runs the rank whose group holds it.
template <class S, class F>
__global__ void persistent_kernel(persistent_context c, F* functors, group_starts<S::rank_count> g) {
  int const b = static_cast<int>(blockIdx.x);
  int r = 0;
  while (r + 1 < S::ranks && b >= g.first[r + 1]) ++r;
  persistent_dispatch<S>(c, functors, r, b - g.first[r], g.first[r + 1] - g.first[r],
                         std::make_integer_sequence<int, S::ranks>{});
}

} // namespace detail

/// Runs schedule S on one GPU as one cooperative kernel per iteration: rank r's block group
/// runs plan order of rank r with device functors of type F (one per rank, trivially
/// copyable, copied to device memory at each run()). A functor has, for every pass the
/// schedule uses, `template <class Step> __device__ void forward(Step, pipesched::io const&,
/// pipesched::cuda::device_group const&)` (likewise backward, backward_input,
/// backward_weight), called by every thread of the group; returning bool (false: failure,
/// from any thread) is optional. See docs/04_cuda.md for what such a member may do.
template <schedule_type S, class F> class persistent_executor {
  static_assert(pipesched::detail::checked<S>); // a schedule that fails verification stops the build here
  static_assert(std::is_trivially_copyable_v<F>,
                "pipesched: persistent_executor: the device functor is copied to device memory, so it must be "
                "trivially copyable (hold pointers to your device buffers, not containers)");
  static_assert(device_functor_check<S, F, device_group>::reported); // a missing member: one message naming it

public:
  using schedule = S;
  using protocol = persistent_protocol<S>;
  static constexpr int ranks = S::ranks;

  explicit persistent_executor(persistent_options const& o)
      : options_(o), bytes_(boundary_byte_table(S::stages, o.boundaries, o.slot_bytes)) {
    layout_.ranks = ranks;
    layout_.slots = static_cast<int>(protocol::slots);
    try {
      setup();
    } catch (...) {
      release();
      throw;
    }
  }
  persistent_executor(persistent_executor const&) = delete;
  persistent_executor& operator=(persistent_executor const&) = delete;
  ~persistent_executor() { release(); }

  /// One iteration on `stream` (null: the legacy default stream): copies the functors, then
  /// one cooperative launch. With options::synchronize, waits and throws persistent_error
  /// when the iteration stopped (the state is then reset: the executor runs again).
  template <class Functors> void run(Functors const& functors, cudaStream_t stream = nullptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    upload(functors, stream);
    launch(stream);
    if (options_.synchronize) {
      check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
      check_failure();
    }
  }

  /// Records one iteration (the kernel) into a graph; replay() launches it. The kernel reads
  /// the functors from the executor's device copy: those of the last capture() or run().
  /// The counters stay valid across replays (monotonic epochs).
  template <class Functors> void capture(Functors const& functors) {
    std::lock_guard<std::mutex> lock(mutex_);
    upload(functors, capture_stream_);
    check(cudaStreamSynchronize(capture_stream_), "cudaStreamSynchronize");
    drop_graph();
    check(cudaStreamBeginCapture(capture_stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    cudaError_t const le = launch_raw(capture_stream_);
    cudaGraph_t graph{};
    cudaError_t const ee = cudaStreamEndCapture(capture_stream_, &graph);
    if (le != cudaSuccess || ee != cudaSuccess) {
      if (graph) (void)cudaGraphDestroy(graph);
      check(le != cudaSuccess ? le : ee, le != cudaSuccess ? "cudaLaunchKernelEx (captured)" : "cudaStreamEndCapture");
    }
    cudaError_t const ie = cudaGraphInstantiate(&graph_exec_, graph, 0);
    (void)cudaGraphDestroy(graph);
    if (ie != cudaSuccess) {
      graph_exec_ = nullptr;
      check(ie, "cudaGraphInstantiate");
    }
  }

  /// Launches the captured iteration on `stream`.
  void replay(cudaStream_t stream = nullptr) {
    if (!graph_exec_) throw std::logic_error("pipesched: replay() before capture()");
    std::lock_guard<std::mutex> lock(mutex_);
    check(cudaGraphLaunch(graph_exec_, stream), "cudaGraphLaunch");
    if (options_.synchronize) {
      check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
      check_failure();
    }
  }

  /// After a run with synchronize = false: waits for `stream` and throws the failure, if any.
  void finish(cudaStream_t stream = nullptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    check_failure();
  }

  /// Blocks of each rank's group; their sum is the launch's grid.
  std::vector<int> const& block_groups() const { return groups_; }
  int resident_blocks() const { return resident_; }
  /// Rank r's boundary slots (device addresses and capacities).
  view const* slots(int r) const { return host_views_.data() + protocol::slot_base(r); }
  int slot_count(int r) const { return static_cast<int>(protocol::slot_base(r + 1) - protocol::slot_base(r)); }
  std::vector<std::size_t> const& boundary_bytes() const { return bytes_; }
  /// The counters' words (copied from the device): for tests and hang reports.
  std::vector<std::uint64_t> state() const {
    std::vector<std::uint64_t> s(layout_.words());
    check(cudaMemcpy(s.data(), state_, s.size() * sizeof(std::uint64_t), cudaMemcpyDeviceToHost), "cudaMemcpy");
    return s;
  }
  persistent_layout const& layout() const { return layout_; }
  /// Where the last failure happened (rank -1: none).
  failure_site last_failure() const { return failure_; }

private:
  using kernel_t = void (*)(persistent_context, F*, detail::group_starts<S::rank_count>);
  static constexpr kernel_t kernel = &detail::persistent_kernel<S, F>;

  void check(cudaError_t e, char const* call) const {
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      pipesched::cuda::detail::throw_cuda<cuda_runtime>(e, call, failure_site{});
    }
  }

  void setup() {
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    int coop = 0, sms = 0, per_sm = 0;
    check(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev), "cudaDeviceGetAttribute");
    if (!coop) throw std::runtime_error("pipesched: persistent_executor: the device does not support cooperative launches");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, options_.threads_per_block, 0),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    resident_ = per_sm * sms;
    if (!options_.blocks.empty()) {
      check_block_groups(options_.blocks, ranks, resident_);
      groups_ = options_.blocks;
    } else {
      int const total = options_.total_blocks > 0 ? options_.total_blocks : (sms < resident_ ? sms : resident_);
      if (total > resident_)
        throw std::invalid_argument("pipesched: persistent_executor: total_blocks " + std::to_string(total) +
                                    " exceeds the " + std::to_string(resident_) + " blocks that can be resident");
      std::vector<double> w = options_.rank_weights;
      if (w.empty())
        for (int r = 0; r < ranks; ++r) w.push_back(protocol::rank_cost(r));
      groups_ = share_blocks(total, ranks, w);
    }
    starts_.first[0] = 0;
    for (int r = 0; r < ranks; ++r) starts_.first[r + 1] = starts_.first[r] + groups_[static_cast<std::size_t>(r)];
    grid_ = starts_.first[ranks];
    // slots of every rank in one block, global slot order, each sized for its largest boundary
    std::vector<std::size_t> sizes;
    for (int r = 0; r < ranks; ++r) {
      std::vector<std::size_t> const s = buffer_plan<S>::slot_bytes(r, bytes_);
      sizes.insert(sizes.end(), s.begin(), s.end());
    }
    host_views_.assign(sizes.size(), view{});
    std::size_t const n = block_bytes(sizes);
    if (n > 0) {
      check(cudaMalloc(&slots_block_, n), "cudaMalloc");
      check(cudaMemset(slots_block_, 0, n), "cudaMemset");
      carve_slots(slots_block_, sizes, host_views_.data());
    }
    check(cudaMalloc(&views_, (host_views_.empty() ? 1 : host_views_.size()) * sizeof(view)), "cudaMalloc");
    if (!host_views_.empty())
      check(cudaMemcpy(views_, host_views_.data(), host_views_.size() * sizeof(view), cudaMemcpyHostToDevice),
            "cudaMemcpy");
    check(cudaMalloc(&bytes_dev_, bytes_.size() * sizeof(std::size_t)), "cudaMalloc");
    check(cudaMemcpy(bytes_dev_, bytes_.data(), bytes_.size() * sizeof(std::size_t), cudaMemcpyHostToDevice),
          "cudaMemcpy");
    check(cudaMalloc(&state_, layout_.words() * sizeof(std::uint64_t)), "cudaMalloc");
    check(cudaMemset(state_, 0, layout_.words() * sizeof(std::uint64_t)), "cudaMemset");
    check(cudaMalloc(&functors_, static_cast<std::size_t>(ranks) * sizeof(F)), "cudaMalloc");
    check(cudaStreamCreateWithFlags(&capture_stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }

  void drop_graph() {
    if (graph_exec_) (void)cudaGraphExecDestroy(graph_exec_);
    graph_exec_ = nullptr;
  }

  void release() noexcept {
    drop_graph();
    if (capture_stream_) {
      (void)cudaStreamSynchronize(capture_stream_);
      (void)cudaStreamDestroy(capture_stream_);
    }
    for (void* p : {static_cast<void*>(slots_block_), static_cast<void*>(views_), static_cast<void*>(bytes_dev_),
                    static_cast<void*>(state_), static_cast<void*>(functors_)})
      if (p) (void)cudaFree(p);
    slots_block_ = nullptr;
    views_ = nullptr;
    bytes_dev_ = nullptr;
    state_ = nullptr;
    functors_ = nullptr;
    capture_stream_ = nullptr;
    (void)cudaGetLastError();
  }

  /// Copies the functors to device memory unless the copy there already holds the same
  /// bytes (a copy from pageable memory waits for the stream: skipping it keeps run() with
  /// synchronize = false asynchronous when the functors do not change).
  template <class Functors> void upload(Functors const& fs, cudaStream_t stream) {
    pipesched::detail::check_functor_count<ranks>(fs);
    std::vector<F> next(static_cast<std::size_t>(ranks));
    for (int r = 0; r < ranks; ++r) next[static_cast<std::size_t>(r)] = fs[static_cast<std::size_t>(r)];
    if (uploaded_ && std::memcmp(next.data(), staged_.data(), next.size() * sizeof(F)) == 0) return;
    staged_ = std::move(next);
    check(cudaMemcpyAsync(functors_, staged_.data(), staged_.size() * sizeof(F), cudaMemcpyHostToDevice, stream),
          "cudaMemcpyAsync");
    uploaded_ = true;
  }

  cudaError_t launch_raw(cudaStream_t stream) {
    persistent_context const c{state_, layout_, views_, bytes_dev_, options_.wait_timeout_ns};
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(static_cast<unsigned>(grid_));
    cfg.blockDim = dim3(static_cast<unsigned>(options_.threads_per_block));
    cfg.dynamicSmemBytes = 0;
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeCooperative;
    attr[0].val.cooperative = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    return cudaLaunchKernelEx(&cfg, kernel, c, functors_, starts_);
  }

  void launch(cudaStream_t stream) { check(launch_raw(stream), "cudaLaunchKernelEx (cooperative)"); }

  /// Reads the failure record; on a failure resets the whole state (counters, epochs,
  /// barriers, flag) and throws.
  void check_failure() {
    std::uint64_t rec[8] = {};
    check(cudaMemcpy(rec, state_, sizeof rec, cudaMemcpyDeviceToHost), "cudaMemcpy");
    if (rec[persistent_layout::failure_kind] == 0) return;
    std::vector<std::uint64_t> words(layout_.words(), 0);
    for (int i = 0; i < 8; ++i) words[static_cast<std::size_t>(i)] = rec[i];
    std::string const what = describe_persistent_failure(layout_, words.data());
    failure_ = failure_site{static_cast<int>(rec[persistent_layout::failure_rank]),
                            action_record{rec[persistent_layout::failure_action]}};
    check(cudaMemset(state_, 0, layout_.words() * sizeof(std::uint64_t)), "cudaMemset");
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    throw persistent_error(what, failure_, static_cast<persistent_failure_kind>(rec[persistent_layout::failure_kind]));
  }

  persistent_options options_;
  std::vector<std::size_t> bytes_;
  persistent_layout layout_{};
  std::vector<int> groups_;
  detail::group_starts<S::rank_count> starts_{};
  int grid_ = 0;
  int resident_ = 0;
  std::vector<view> host_views_;
  void* slots_block_ = nullptr;
  view* views_ = nullptr;
  std::size_t* bytes_dev_ = nullptr;
  std::uint64_t* state_ = nullptr;
  F* functors_ = nullptr;
  std::vector<F> staged_;
  bool uploaded_ = false;
  cudaStream_t capture_stream_{};
  cudaGraphExec_t graph_exec_{};
  failure_site failure_{};
  std::mutex mutex_;
};

} // namespace pipesched::cuda
