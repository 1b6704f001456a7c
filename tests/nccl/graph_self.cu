// NCCL point-to-point captured in a CUDA graph, on one GPU, one process: a one-rank
// non-blocking communicator split (through the library's NCCL policy, as the executor
// splits per-edge communicators) into a one-rank edge communicator; a grouped self
// send/receive of 1 MiB on it, eager, then captured (thread-local mode) and replayed: each
// replay delivers, byte for byte, what the source holds when it runs (the source is changed
// between replays, so a replay that did not run would be caught). Then the per-process
// executor's capture()/replay() with a one-rank schedule (compute only), its stamping
// kernels checking every boundary. Skipped (77) without a GPU.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "nccl_test.cuh"

#include "pipesched/cuda/nccl.cuh"
#include "pipesched/schedules/one_f_one_b.hpp"

using namespace pipesched;

namespace {

using C = cuda::nccl_comm;

void need(bool ok, char const* what) {
  if (!ok) throw std::runtime_error(what);
}

/// Polls a non-blocking communicator until it is no longer in progress (at most 60 s).
void settle(ncclComm_t c, char const* what) {
  auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (ncclResult_t state = ncclInProgress;;) {
    need(C::async_error(c, &state) == ncclSuccess, what);
    if (state == ncclSuccess) return;
    need(state == ncclInProgress, what);
    need(std::chrono::steady_clock::now() < until, what);
  }
}

/// One group: send `src` to rank 0 and receive it into `dst`, on `c`, on stream `s`.
void self_sendrecv(void const* src, void* dst, std::size_t n, ncclComm_t c, cudaStream_t s) {
  ncclResult_t e = C::group_start();
  if (e == ncclSuccess) e = C::send(src, n, 0, c, s);
  if (e == ncclSuccess) e = C::recv(dst, n, 0, c, s);
  ncclResult_t const end = C::group_end();
  need(e == ncclSuccess && (end == ncclSuccess || end == ncclInProgress), "self send/recv");
  settle(c, "ncclGroupEnd");
}

std::vector<unsigned char> pattern(std::size_t n, int salt) {
  std::vector<unsigned char> v(n);
  for (std::size_t k = 0; k < n; ++k) v[k] = static_cast<unsigned char>((k * 13 + 5 + static_cast<std::size_t>(salt) * 31) & 0xff);
  return v;
}

} // namespace

int main() {
  if (nccl_test_devices() == 0) return nccl_test_skipped;
  int failures = 0;
  try {
    ncclUniqueId id{};
    need(ncclGetUniqueId(&id) == ncclSuccess, "ncclGetUniqueId");
    ncclComm_t world = cuda::make_nonblocking_comm(id, 1, 0, std::chrono::seconds(60));
    ncclComm_t edge = nullptr;
    ncclResult_t const se = C::split(world, 0, 0, &edge);
    need(se == ncclSuccess || se == ncclInProgress, "ncclCommSplit");
    // a non-blocking parent: NCCL writes the new handle (from its own thread) only when the
    // parent's split completes (NVIDIA/nccl#1472)
    settle(world, "ncclCommSplit (the parent)");
    edge = std::atomic_ref<ncclComm_t>(edge).load(std::memory_order_acquire);
    need(edge != nullptr, "ncclCommSplit: no communicator after the parent completed");
    settle(edge, "ncclCommSplit");

    std::size_t const n = 1 << 20;
    void *src = nullptr, *dst = nullptr;
    cudaStream_t s = nullptr;
    need(cudaMalloc(&src, n) == cudaSuccess && cudaMalloc(&dst, n) == cudaSuccess &&
             cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess,
         "allocation");
    std::vector<unsigned char> back(n);
    auto check_dst = [&](std::vector<unsigned char> const& want, char const* what) {
      need(cudaStreamSynchronize(s) == cudaSuccess, "cudaStreamSynchronize");
      need(cudaMemcpy(back.data(), dst, n, cudaMemcpyDeviceToHost) == cudaSuccess, "cudaMemcpy");
      bool const same = std::memcmp(back.data(), want.data(), n) == 0;
      std::printf("%s: %s\n", what, same ? "OK" : "FAILED");
      failures += same ? 0 : 1;
    };
    // eager (also the warm-up before capture)
    std::vector<unsigned char> const a = pattern(n, 1), b = pattern(n, 2);
    // the source is written on s, ahead of the sends that read it: a cudaMemcpy from
    // pageable memory may return before its DMA is done, on the legacy stream, which the
    // non-blocking s does not wait for
    need(cudaMemcpyAsync(src, a.data(), n, cudaMemcpyHostToDevice, s) == cudaSuccess, "cudaMemcpyAsync");
    self_sendrecv(src, dst, n, edge, s);
    check_dst(a, "eager self send/recv on the split communicator");
    // captured, then replayed twice with the source changed in between
    need(cudaMemset(dst, 0, n) == cudaSuccess, "cudaMemset");
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    need(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess, "cudaStreamBeginCapture");
    self_sendrecv(src, dst, n, edge, s);
    need(cudaStreamEndCapture(s, &graph) == cudaSuccess, "cudaStreamEndCapture");
    need(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess, "cudaGraphInstantiate");
    need(cudaStreamSynchronize(s) == cudaSuccess, "cudaStreamSynchronize");
    need(cudaMemcpy(back.data(), dst, n, cudaMemcpyDeviceToHost) == cudaSuccess, "cudaMemcpy");
    bool nothing_ran = true;
    for (unsigned char x : back) nothing_ran = nothing_ran && x == 0;
    std::printf("capture ran nothing: %s\n", nothing_ran ? "OK" : "FAILED");
    failures += nothing_ran ? 0 : 1;
    need(cudaGraphLaunch(exec, s) == cudaSuccess, "cudaGraphLaunch");
    check_dst(a, "replay 1 equals eager");
    need(cudaMemcpyAsync(src, b.data(), n, cudaMemcpyHostToDevice, s) == cudaSuccess, "cudaMemcpyAsync");
    need(cudaGraphLaunch(exec, s) == cudaSuccess, "cudaGraphLaunch");
    check_dst(b, "replay 2 delivers the new source");
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    C::release(edge);

    // the executor: capture and replay of a one-rank schedule (compute only)
    using S = one_f_one_b<stages<1>, microbatches<4>>;
    int* bad = nullptr;
    need(cudaMalloc(&bad, sizeof(int)) == cudaSuccess && cudaMemset(bad, 0, sizeof(int)) == cudaSuccess, "cudaMalloc");
    {
      cuda::nccl_options o;
      o.slot_bytes = 256;
      o.deadline = std::chrono::seconds(30);
      cuda::nccl_executor<S> ex(world, 0, o);
      nccl_test::stamping f{bad, 1};
      ex.run(f);
      f.salt = 2;
      ex.capture(f);
      for (int k = 0; k < 3; ++k) ex.replay();
      std::printf("executor: %zu iterations, %zu replays, failed=%d\n", ex.iterations(), ex.replays(), ex.failed() ? 1 : 0);
      failures += ex.failed() || ex.replays() != 3 ? 1 : 0;
    }
    int h = 0;
    need(cudaMemcpy(&h, bad, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess, "cudaMemcpy");
    std::printf("executor boundaries wrong: %d\n", h);
    failures += h != 0;
    cudaFree(bad);
    cudaFree(src);
    cudaFree(dst);
    cudaStreamDestroy(s);
    cuda::detail::finalize_or_abort(world);
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::puts(failures ? "FAILED" : "OK");
  return failures ? 1 : 0;
}
