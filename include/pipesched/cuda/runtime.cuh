// pipesched: the CUDA runtime as the executors use it — streams, events, copies, graphs.
#pragma once

#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>

#include <cstddef>

#include "pipesched/cuda/green_contexts.cuh"

namespace pipesched::cuda {

/// The runtime policy of basic_executor bound to the CUDA runtime API: non-blocking streams,
/// events without timing, device-to-device and peer copies, stream capture in thread-local
/// mode (graphs), SM partitions per rank with green contexts; pinned host memory and copies to
/// and from it (the stream executor).
struct cuda_runtime {
  using status = cudaError_t;
  using stream_t = cudaStream_t;
  using event_t = cudaEvent_t;
  using graph_t = cudaGraph_t;
  using graph_exec_t = cudaGraphExec_t;
  static constexpr status success = cudaSuccess;

  static char const* error_string(status e) { return cudaGetErrorString(e); }
  /// A profiler range on the calling thread (options::nvtx): NVTX 3, header-only, a no-op
  /// costing a branch unless a tool such as Nsight Systems is attached.
  static void range_push(char const* name) { nvtxRangePushA(name); }
  static void range_pop() { nvtxRangePop(); }
  static status get_last_error() { return cudaGetLastError(); }
  static status get_device(int* d) { return cudaGetDevice(d); }
  static status set_device(int d) { return cudaSetDevice(d); }
  static status can_access_peer(int* can, int a, int b) { return cudaDeviceCanAccessPeer(can, a, b); }
  /// Enables access from the current device to `peer`; enabled already is no error.
  static status enable_peer_access(int peer) {
    status const e = cudaDeviceEnablePeerAccess(peer, 0);
    if (e == cudaErrorPeerAccessAlreadyEnabled) {
      (void)cudaGetLastError();
      return cudaSuccess;
    }
    return e;
  }
  static status stream_create(stream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamNonBlocking); }
  static status stream_destroy(stream_t s) { return cudaStreamDestroy(s); }
  static status stream_synchronize(stream_t s) { return cudaStreamSynchronize(s); }
  static status device_synchronize() { return cudaDeviceSynchronize(); }
  static status event_create(event_t* e) { return cudaEventCreateWithFlags(e, cudaEventDisableTiming); }
  /// An event whose cudaEventSynchronize blocks the host thread instead of spinning
  /// (cudaEventBlockingSync; the stream executor's stream_options::blocking_pop).
  static status event_create_blocking(event_t* e) {
    return cudaEventCreateWithFlags(e, cudaEventDisableTiming | cudaEventBlockingSync);
  }
  static status event_destroy(event_t e) { return cudaEventDestroy(e); }
  static status event_record(event_t e, stream_t s) { return cudaEventRecord(e, s); }
  static status stream_wait_event(stream_t s, event_t e) { return cudaStreamWaitEvent(s, e, 0); }
  static status malloc(void** p, std::size_t n) { return cudaMalloc(p, n); }
  static status free(void* p) { return cudaFree(p); }
  static status memset(void* p, int v, std::size_t n) { return cudaMemset(p, v, n); }
  static status memcpy_async(void* dst, void const* src, std::size_t n, stream_t s) {
    return cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, s);
  }
  // host memory (the stream executor's pinned rings) and the copies to and from it
  static status host_alloc(void** p, std::size_t n) { return cudaMallocHost(p, n); }
  static status host_free(void* p) { return cudaFreeHost(p); }
  static status memcpy_to_device_async(void* dst, void const* src, std::size_t n, stream_t s) {
    return cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s);
  }
  static status memcpy_to_host_async(void* dst, void const* src, std::size_t n, stream_t s) {
    return cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s);
  }
  static status event_synchronize(event_t e) { return cudaEventSynchronize(e); }
  static status memcpy_peer_async(void* dst, int dst_device, void const* src, int src_device, std::size_t n,
                                  stream_t s) {
    return cudaMemcpyPeerAsync(dst, dst_device, src, src_device, n, s);
  }
  static status begin_capture(stream_t s) { return cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal); }
  static status end_capture(stream_t s, graph_t* g) { return cudaStreamEndCapture(s, g); }
  static bool is_capturing(stream_t s) {
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    return cudaStreamIsCapturing(s, &st) == cudaSuccess && st != cudaStreamCaptureStatusNone;
  }
  static status graph_instantiate(graph_exec_t* x, graph_t g) { return cudaGraphInstantiate(x, g, 0); }
  static status graph_destroy(graph_t g) { return cudaGraphDestroy(g); }
  static status graph_exec_destroy(graph_exec_t x) { return cudaGraphExecDestroy(x); }
  static status graph_launch(graph_exec_t x, stream_t s) { return cudaGraphLaunch(x, s); }

  // SM partitions (options::sm_partitions): green contexts, see green_contexts.cuh
  using partitions_t = sm_partitions*;
  /// Throws what sm_partitions throws (a request that does not fit, a driver without them).
  static status make_partitions(partitions_t* p, int device, int count, unsigned sms) {
    *p = new sm_partitions(device, count, sms);
    return cudaSuccess;
  }
  static stream_t partition_stream(partitions_t p, int i) { return p->stream(i); }
  /// A further stream in partition i (a capture stream), destroyed by destroy_partitions.
  /// Throws what sm_partitions::add_stream throws (the driver call, named).
  static status partition_stream_create(partitions_t p, int i, stream_t* s) {
    *s = p->add_stream(i);
    return cudaSuccess;
  }
  static status partition_event_create(partitions_t p, int i, event_t* e) {
    return p->in_context(i, [&] { return cudaEventCreateWithFlags(e, cudaEventDisableTiming); });
  }
  static status partition_event_create_blocking(partitions_t p, int i, event_t* e) {
    return p->in_context(i, [&] { return cudaEventCreateWithFlags(e, cudaEventDisableTiming | cudaEventBlockingSync); });
  }
  static void destroy_partitions(partitions_t p) noexcept { delete p; }
};

} // namespace pipesched::cuda
