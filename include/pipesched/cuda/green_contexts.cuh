// pipesched: SM partitions with green contexts — one partition of a GPU's SMs per stage,
// each with a non-blocking stream whose kernels run only on that partition's SMs.
//
// The driver calls (CUDA >= 12.5 driver) are loaded through cudaGetDriverEntryPointByVersion,
// so users need not link -lcuda; cuda.h is read for its types only. Partitions keep one
// stage's kernels off another's SMs; they do not guarantee that stages run concurrently,
// and L2 and memory bandwidth stay shared (see docs/04_cuda.md).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "pipesched/cuda/sm_partition.hpp"

namespace pipesched::cuda {

namespace detail {

/// The driver entry points green contexts need, loaded once per process.
struct green_driver {
  CUresult(CUDAAPI* get_error_string)(CUresult, char const**) = nullptr;
  CUresult(CUDAAPI* device_get)(CUdevice*, int) = nullptr;
  CUresult(CUDAAPI* device_resource)(CUdevice, CUdevResource*, CUdevResourceType) = nullptr;
  CUresult(CUDAAPI* split_by_count)(CUdevResource*, unsigned*, CUdevResource const*, CUdevResource*, unsigned,
                                    unsigned) = nullptr;
  CUresult(CUDAAPI* generate_desc)(CUdevResourceDesc*, CUdevResource*, unsigned) = nullptr;
  CUresult(CUDAAPI* context_create)(CUgreenCtx*, CUdevResourceDesc, CUdevice, unsigned) = nullptr;
  CUresult(CUDAAPI* context_destroy)(CUgreenCtx) = nullptr;
  CUresult(CUDAAPI* stream_create)(CUstream*, CUgreenCtx, unsigned, int) = nullptr;
  CUresult(CUDAAPI* stream_destroy)(CUstream) = nullptr;
  CUresult(CUDAAPI* context_from_green)(CUcontext*, CUgreenCtx) = nullptr;
  CUresult(CUDAAPI* push_current)(CUcontext) = nullptr;
  CUresult(CUDAAPI* pop_current)(CUcontext*) = nullptr;

  template <class F> static void load(F& f, char const* symbol) {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    cudaError_t const e = cudaGetDriverEntryPointByVersion(symbol, &p, 12050, cudaEnableDefault, &q);
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || p == nullptr) {
      (void)cudaGetLastError();
      throw std::runtime_error(std::string("pipesched: the CUDA driver has no ") + symbol +
                               " (SM partitions need green contexts, driver 12.5 or newer): leave sm_per_stage at 0");
    }
    f = reinterpret_cast<F>(p);
  }
  static green_driver const& get() {
    static green_driver const d = [] {
      green_driver g;
      load(g.get_error_string, "cuGetErrorString");
      load(g.device_get, "cuDeviceGet");
      load(g.device_resource, "cuDeviceGetDevResource");
      load(g.split_by_count, "cuDevSmResourceSplitByCount");
      load(g.generate_desc, "cuDevResourceGenerateDesc");
      load(g.context_create, "cuGreenCtxCreate");
      load(g.context_destroy, "cuGreenCtxDestroy");
      load(g.stream_create, "cuGreenCtxStreamCreate");
      load(g.stream_destroy, "cuStreamDestroy");
      load(g.context_from_green, "cuCtxFromGreenCtx");
      load(g.push_current, "cuCtxPushCurrent");
      load(g.pop_current, "cuCtxPopCurrent");
      return g;
    }();
    return d;
  }
  void check(CUresult r, char const* call) const {
    if (r == CUDA_SUCCESS) return;
    char const* s = nullptr;
    if (get_error_string == nullptr || get_error_string(r, &s) != CUDA_SUCCESS || s == nullptr) s = "unknown error";
    throw std::runtime_error(std::string("pipesched: ") + call + " failed: " + s);
  }
};

} // namespace detail

/// `count` disjoint partitions of device `device`'s SMs, `sm_per_partition` each (0: the
/// largest equal partitions the driver makes; a request is rounded up to the device's
/// granularity),
/// each a green context with one non-blocking stream. Throws std::invalid_argument (does
/// not fit, with what to change) or std::runtime_error (a driver call, named). The streams
/// are ordinary cudaStream_t for kernels, copies, events and capture.
class sm_partitions {
public:
  sm_partitions(int device, int count, unsigned sm_per_partition) : device_(device) {
    detail::green_driver const& d = detail::green_driver::get();
    cudaError_t const e = cudaSetDevice(device) == cudaSuccess ? cudaFree(nullptr) : cudaGetLastError();
    if (e != cudaSuccess)
      throw std::runtime_error(std::string("pipesched: cudaSetDevice for SM partitions failed: ") + cudaGetErrorString(e));
    CUdevice dev = 0;
    d.check(d.device_get(&dev, device), "cuDeviceGet");
    CUdevResource all{};
    d.check(d.device_resource(dev, &all, CU_DEV_RESOURCE_TYPE_SM), "cuDeviceGetDevResource");
    facts_ = sm_facts{all.sm.smCount, all.sm.minSmPartitionSize, all.sm.smCoscheduledAlignment};
    plan_ = plan_sm_partitions(facts_, count, sm_per_partition);
    std::vector<CUdevResource> parts(static_cast<std::size_t>(count));
    unsigned made = 0;
    CUdevResource rest{};
    // The driver may make fewer groups than sm_count / size suggests (co-scheduling and
    // cluster constraints of the GPU's topology, see cuDevSmResourceSplitByCount): asked for
    // the largest that fit (0), step the size down by the granularity until `count` fit.
    unsigned const step = facts_.alignment == 0 ? 1 : facts_.alignment;
    for (;;) {
      made = static_cast<unsigned>(count);
      CUresult const r = d.split_by_count(parts.data(), &made, &all, &rest, 0, plan_.per_stage);
      bool const smaller = sm_per_partition == 0 && plan_.per_stage >= facts_.min_partition + step &&
                           plan_.per_stage > step;
      if ((r == CUDA_SUCCESS && made >= static_cast<unsigned>(count)) || !smaller) {
        d.check(r, "cuDevSmResourceSplitByCount");
        break;
      }
      plan_.per_stage -= step;
      plan_.left = facts_.sm_count - plan_.per_stage * static_cast<unsigned>(count);
    }
    if (made < static_cast<unsigned>(count))
      throw std::invalid_argument("pipesched: the driver made " + std::to_string(made) + " SM partitions of " +
                                  std::to_string(plan_.per_stage) + " SMs, not " + std::to_string(count) +
                                  ": ask for fewer SMs per stage");
    try {
      for (CUdevResource& part : parts) {
        CUdevResourceDesc desc{};
        d.check(d.generate_desc(&desc, &part, 1), "cuDevResourceGenerateDesc");
        CUgreenCtx ctx{};
        d.check(d.context_create(&ctx, desc, dev, CU_GREEN_CTX_DEFAULT_STREAM), "cuGreenCtxCreate");
        contexts_.push_back(ctx);
        CUstream s{};
        d.check(d.stream_create(&s, ctx, CU_STREAM_NON_BLOCKING, 0), "cuGreenCtxStreamCreate");
        streams_.push_back(s);
        sms_.push_back(part.sm.smCount);
      }
    } catch (...) {
      release();
      throw;
    }
  }
  sm_partitions(sm_partitions const&) = delete;
  sm_partitions& operator=(sm_partitions const&) = delete;
  ~sm_partitions() { release(); }

  int count() const { return static_cast<int>(streams_.size()); }
  int device() const { return device_; }
  /// Partition i's stream (kernels launched on it run on its SMs only).
  cudaStream_t stream(int i) const { return streams_[static_cast<std::size_t>(i)]; }
  /// A further non-blocking stream in partition i's green context (made as the partition's
  /// first stream is), owned by this object and destroyed with it: e.g. a capture stream, so
  /// that a graph captured on it runs its kernels on the partition's SMs.
  cudaStream_t add_stream(int i) {
    detail::green_driver const& d = detail::green_driver::get();
    CUstream s{};
    d.check(d.stream_create(&s, contexts_[static_cast<std::size_t>(i)], CU_STREAM_NON_BLOCKING, 0),
            "cuGreenCtxStreamCreate");
    extra_streams_.push_back(s);
    return s;
  }
  /// SMs of partition i, as the driver made it.
  unsigned sms(int i) const { return sms_[static_cast<std::size_t>(i)]; }
  sm_facts const& facts() const { return facts_; }
  sm_plan const& plan() const { return plan_; }

  /// Calls f() with partition i's context current (then restores the caller's): what f
  /// creates with the runtime (events to record on the partition's stream) belongs to it.
  template <class F> decltype(auto) in_context(int i, F&& f) const {
    detail::green_driver const& d = detail::green_driver::get();
    CUcontext c{};
    d.check(d.context_from_green(&c, contexts_[static_cast<std::size_t>(i)]), "cuCtxFromGreenCtx");
    d.check(d.push_current(c), "cuCtxPushCurrent");
    struct pop {
      detail::green_driver const& d;
      ~pop() {
        CUcontext old{};
        (void)d.pop_current(&old);
      }
    } restore{d};
    return f();
  }

private:
  void release() noexcept {
    detail::green_driver const& d = detail::green_driver::get();
    for (std::vector<CUstream>* v : {&extra_streams_, &streams_})
      for (CUstream s : *v) {
        (void)cudaStreamSynchronize(s);
        (void)d.stream_destroy(s);
      }
    for (CUgreenCtx c : contexts_) (void)d.context_destroy(c);
    extra_streams_.clear();
    streams_.clear();
    contexts_.clear();
    (void)cudaGetLastError();
  }

  int device_ = 0;
  sm_facts facts_{};
  sm_plan plan_{};
  std::vector<CUgreenCtx> contexts_;
  std::vector<CUstream> streams_;
  std::vector<CUstream> extra_streams_; ///< add_stream()'s, in any partition
  std::vector<unsigned> sms_;
};

} // namespace pipesched::cuda
