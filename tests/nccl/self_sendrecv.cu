// NCCL on one GPU, one process: a one-rank non-blocking communicator (NCCL refuses two
// ranks on one GPU) doing grouped send/receive to itself through the library's NCCL policy
// (1 MiB, checked byte for byte); then the per-process executor on that communicator with
// a one-rank schedule (compute only: streams, events, the deadline poll) and nccl_from_id.
// Skipped (77) without a GPU.
#include <cstdio>
#include <cstring>
#include <vector>

#include "nccl_test.cuh"

#include "pipesched/cuda/nccl.cuh"
#include "pipesched/schedules/one_f_one_b.hpp"

using namespace pipesched;

int main() {
  if (nccl_test_devices() == 0) return nccl_test_skipped;
  int failures = 0;
  try {
    ncclUniqueId id{};
    if (ncclGetUniqueId(&id) != ncclSuccess) throw std::runtime_error("ncclGetUniqueId failed");
    ncclComm_t comm = cuda::make_nonblocking_comm(id, 1, 0, std::chrono::seconds(60));
    // grouped self send/receive through the policy, polled like the executor polls
    std::size_t const n = 1 << 20;
    std::vector<unsigned char> host(n), back(n, 0);
    for (std::size_t k = 0; k < n; ++k) host[k] = static_cast<unsigned char>((k * 13 + 5) & 0xff);
    void *src = nullptr, *dst = nullptr;
    cudaStream_t s = nullptr;
    if (cudaMalloc(&src, n) != cudaSuccess || cudaMalloc(&dst, n) != cudaSuccess ||
        cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess)
      throw std::runtime_error("allocation failed");
    // on s, ahead of the send: a cudaMemcpy from pageable memory may return before its DMA
    // is done, and it runs on the legacy stream, which the non-blocking s does not wait for
    if (cudaMemcpyAsync(src, host.data(), n, cudaMemcpyHostToDevice, s) != cudaSuccess)
      throw std::runtime_error("cudaMemcpyAsync failed");
    using C = cuda::nccl_comm;
    ncclResult_t e = C::group_start();
    if (e == ncclSuccess) e = C::send(src, n, 0, comm, s);
    if (e == ncclSuccess) e = C::recv(dst, n, 0, comm, s);
    ncclResult_t const end = C::group_end();
    if (e != ncclSuccess || (end != ncclSuccess && end != ncclInProgress))
      throw std::runtime_error(std::string("self send/recv: ") + ncclGetErrorString(e != ncclSuccess ? e : end));
    for (ncclResult_t state = ncclInProgress; state == ncclInProgress;) C::async_error(comm, &state);
    if (cudaStreamSynchronize(s) != cudaSuccess) throw std::runtime_error("cudaStreamSynchronize failed");
    cudaMemcpy(back.data(), dst, n, cudaMemcpyDeviceToHost);
    bool const same = std::memcmp(host.data(), back.data(), n) == 0;
    std::printf("self send/recv of %zu bytes: %s\n", n, same ? "OK" : "FAILED");
    failures += same ? 0 : 1;
    // the executor on the one-rank communicator: a one-stage schedule
    using S = one_f_one_b<stages<1>, microbatches<4>>;
    int* bad = nullptr;
    cudaMalloc(&bad, sizeof(int));
    cudaMemset(bad, 0, sizeof(int));
    {
      cuda::nccl_options o;
      o.slot_bytes = 256;
      o.deadline = std::chrono::seconds(30);
      cuda::nccl_executor<S> ex(comm, 0, o);
      nccl_test::stamping f{bad, 1};
      ex.run(f);
      f.salt = 2;
      ex.run(f);
      std::printf("executor on one rank: %zu groups, failed=%d\n", ex.groups_issued(), ex.failed() ? 1 : 0);
      failures += ex.failed() ? 1 : 0;
    }
    int h = 0;
    cudaMemcpy(&h, bad, sizeof(int), cudaMemcpyDeviceToHost);
    failures += h != 0;
    cudaFree(bad);
    cudaFree(src);
    cudaFree(dst);
    cudaStreamDestroy(s);
    ncclCommDestroy(comm);
    // the one-call bootstrap from an id, on one rank
    ncclUniqueId id2{};
    ncclGetUniqueId(&id2);
    cuda::launch_info who;
    who.source = "test";
    auto p = cuda::nccl_from_id<S>(who, id2, [] {
      cuda::nccl_options o;
      o.slot_bytes = 64;
      return o;
    }());
    std::printf("nccl_from_id: rank %d on device %d\n", p.rank(), p.device());
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  std::puts(failures ? "FAILED" : "OK");
  return failures ? 1 : 0;
}
