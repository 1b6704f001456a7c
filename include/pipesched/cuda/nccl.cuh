// pipesched: one process per GPU — the per-process executor bound to CUDA and NCCL, a
// non-blocking communicator, and the bootstraps that give a process a ready executor
// (shared file, or an id you distribute yourself; over MPI: nccl_mpi.cuh).
//
// Link pipesched::nccl (CMake: find_package(pipesched COMPONENTS nccl)).
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "pipesched/cuda/basic_nccl_executor.hpp"
#include "pipesched/cuda/basic_nccl_runtime_executor.hpp"
#include "pipesched/cuda/launch.hpp"
#include "pipesched/cuda/runtime.cuh"

namespace pipesched::cuda {

/// cuda_runtime plus the queries the NCCL executor polls with.
struct nccl_cuda_runtime : cuda_runtime {
  static constexpr status not_ready = cudaErrorNotReady;
  static status stream_query(stream_t s) { return cudaStreamQuery(s); }
  static status event_query(event_t e) { return cudaEventQuery(e); }
};

namespace detail {

/// The orderly end of a non-blocking communicator: finalize (polled, at most `limit`), then
/// destroy; one that reports an error or does not finalize in time is aborted instead (never
/// hang). On a non-blocking communicator ncclCommFinalize returns ncclInProgress and sets
/// the state to it until the communicator is quiescent (nccl.h): that is the orderly path.
inline void finalize_or_abort(ncclComm_t c, std::chrono::milliseconds limit = std::chrono::seconds(30)) noexcept {
  ncclResult_t const f = ncclCommFinalize(c);
  bool done = f == ncclSuccess || f == ncclInProgress;
  auto const until = std::chrono::steady_clock::now() + limit;
  for (ncclResult_t state = ncclInProgress; done;) {
    if (ncclCommGetAsyncError(c, &state) != ncclSuccess || (state != ncclSuccess && state != ncclInProgress))
      done = false;
    else if (state == ncclSuccess) break;
    else if (std::chrono::steady_clock::now() > until) done = false;
    else std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (done) (void)ncclCommDestroy(c);
  else (void)ncclCommAbort(c);
}

} // namespace detail

static_assert(split_no_color == NCCL_SPLIT_NOCOLOR, "edge_rounds.hpp's colour for \"no communicator\" is NCCL's");

/// The communicator policy of basic_nccl_executor bound to NCCL: byte-wise point-to-point.
struct nccl_comm {
  using status = ncclResult_t;
  using comm_t = ncclComm_t;
  static constexpr status success = ncclSuccess;
  static constexpr status in_progress = ncclInProgress;
  static char const* error_string(status e) { return ncclGetErrorString(e); }
  static bool is_remote(status e) { return e == ncclRemoteError; }
  static status group_start() { return ncclGroupStart(); }
  static status group_end() { return ncclGroupEnd(); }
  static status send(void const* buf, std::size_t n, int peer, comm_t c, cudaStream_t s) {
    return ncclSend(buf, n, ncclUint8, peer, c, s);
  }
  static status recv(void* buf, std::size_t n, int peer, comm_t c, cudaStream_t s) {
    return ncclRecv(buf, n, ncclUint8, peer, c, s);
  }
  static status async_error(comm_t c, status* state) { return ncclCommGetAsyncError(c, state); }
  static status abort(comm_t c) { return ncclCommAbort(c); }
  static constexpr int no_color = NCCL_SPLIT_NOCOLOR;
  /// Starts a split of `parent` with a non-blocking config. NCCL writes `*child` only when
  /// the parent's split completes (NVIDIA/nccl#1472), from its own thread: the executor
  /// polls the parent, then reads the handle atomically and polls the new communicator.
  static status split(comm_t parent, int color, int key, comm_t* child) {
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    *child = nullptr;
    return ncclCommSplit(parent, color, key, child, &config);
  }
  static void release(comm_t c) { detail::finalize_or_abort(c); }
};

/// Rank `rank`'s executor of schedule S, one process per GPU, over an NCCL communicator.
template <schedule_type S> using nccl_executor = basic_nccl_executor<S, nccl_cuda_runtime, nccl_comm>;
/// Rank `rank`'s executor of a runtime_schedule (chosen at run time), one process per GPU.
using nccl_runtime_executor = basic_nccl_runtime_executor<nccl_cuda_runtime, nccl_comm>;

namespace detail {

[[noreturn]] inline void throw_nccl(char const* call, ncclResult_t e, int rank) {
  throw std::runtime_error(std::string("pipesched: ") + call + " failed on rank " + std::to_string(rank) + ": " +
                           ncclGetErrorString(e) + " (set NCCL_DEBUG=WARN for NCCL's own account)");
}

/// Polls a non-blocking communicator until it leaves ncclInProgress, or `deadline` passes
/// (then aborts it and throws).
inline void wait_ready(ncclComm_t c, int rank, char const* what, std::chrono::milliseconds deadline) {
  auto const until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    ncclResult_t state = ncclSuccess;
    ncclResult_t const e = ncclCommGetAsyncError(c, &state);
    if (e != ncclSuccess) {
      (void)ncclCommAbort(c);
      throw_nccl("ncclCommGetAsyncError", e, rank);
    }
    if (state == ncclSuccess) return;
    if (state != ncclInProgress) {
      (void)ncclCommAbort(c);
      throw_nccl(what, state, rank);
    }
    if (std::chrono::steady_clock::now() > until) {
      (void)ncclCommAbort(c);
      throw std::runtime_error(std::string("pipesched: ") + what + " did not finish within " +
                               std::to_string(deadline.count()) + " ms on rank " + std::to_string(rank) +
                               ": are all ranks started, with the same id, and can they reach each other?");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

} // namespace detail

/// Picks this process's GPU: its local rank (one process per GPU). Throws naming the local
/// rank when the node has fewer GPUs (NCCL refuses two ranks on one GPU).
inline int select_local_device(launch_info const& who) {
  int n = 0;
  cudaError_t const e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    throw std::runtime_error(std::string("pipesched: cudaGetDeviceCount failed on rank ") + std::to_string(who.rank) +
                             ": " + cudaGetErrorString(e));
  }
  if (who.local_rank >= n)
    throw std::runtime_error("pipesched: rank " + std::to_string(who.rank) + " has local rank " +
                             std::to_string(who.local_rank) + " but its node has " + std::to_string(n) +
                             " GPU(s): start at most one process per GPU on each node");
  if (cudaSetDevice(who.local_rank) != cudaSuccess) {
    (void)cudaGetLastError();
    throw std::runtime_error("pipesched: cudaSetDevice(" + std::to_string(who.local_rank) + ") failed on rank " +
                             std::to_string(who.rank));
  }
  return who.local_rank;
}

/// A non-blocking NCCL communicator of `world` ranks (config.blocking = 0), initialised
/// within `deadline`. The caller owns it.
inline ncclComm_t make_nonblocking_comm(ncclUniqueId const& id, int world, int rank, std::chrono::milliseconds deadline) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t c = nullptr;
  ncclResult_t const e = ncclCommInitRankConfig(&c, world, id, rank, &config);
  if (e != ncclSuccess && e != ncclInProgress) {
    if (c) (void)ncclCommAbort(c);
    detail::throw_nccl("ncclCommInitRankConfig", e, rank);
  }
  detail::wait_ready(c, rank, "ncclCommInitRankConfig", deadline);
  return c;
}

namespace detail {

/// What nccl_process and nccl_runtime_process share: the GPU of the local rank, a
/// non-blocking communicator, the executor `Executor` that `make(comm)` returns, and the end
/// (the communicator destroyed in order, or aborted already after a failure).
template <class Executor> class nccl_process_base {
public:
  using executor_type = Executor;

  nccl_process_base(nccl_process_base&&) = default;
  nccl_process_base& operator=(nccl_process_base&&) = delete;
  ~nccl_process_base() {
    if (!executor_) return;
    bool const failed = executor_->failed();
    executor_.reset();
    // an orderly end: finalize (polled, bounded), then destroy, else abort (never hang)
    if (comm_ && !failed) detail::finalize_or_abort(comm_);
  }

  /// One iteration of this rank (see basic_nccl_executor::run).
  template <class Functor> void run(Functor& functor, cudaStream_t origin = nullptr) { executor_->run(functor, origin); }
  /// This rank's iteration as a CUDA graph on per-edge communicators (see
  /// basic_nccl_executor::capture and replay); collective, like run().
  template <class Functor> void capture(Functor& functor) { executor_->capture(functor); }
  void replay(cudaStream_t origin = nullptr) { executor_->replay(origin); }
  executor_type& executor() { return *executor_; }
  launch_info const& who() const { return who_; }
  int rank() const { return who_.rank; }
  int device() const { return device_; }
  ncclComm_t comm() const { return comm_; }

protected:
  /// `ranks`: the schedule's, which `who.world_size` must equal. `options.deadline` also
  /// bounds the communicator's set-up.
  template <class Make>
  nccl_process_base(int ranks, launch_info const& who, ncclUniqueId const& id, nccl_options options,
                    std::unique_ptr<failure_board> board, Make&& make)
      : who_(who), board_(std::move(board)) {
    if (who.world_size != ranks)
      throw std::invalid_argument("pipesched: the run has " + std::to_string(who.world_size) +
                                  " processes but the schedule " + std::to_string(ranks) +
                                  " ranks: start one process per rank");
    device_ = select_local_device(who);
    comm_ = make_nonblocking_comm(id, who.world_size, who.rank, options.deadline);
    if (!options.board) options.board = board_.get();
    try {
      executor_ = make(comm_, options);
    } catch (...) {
      comm_ = nullptr; // the executor's constructor aborted it
      throw;
    }
  }

private:
  launch_info who_;
  std::unique_ptr<failure_board> board_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
  std::unique_ptr<executor_type> executor_;
};

} // namespace detail

/// One process of a multi-process run, ready to go: its GPU selected (the local rank), a
/// non-blocking communicator, and the executor of its rank. Made by nccl_from_file,
/// nccl_from_id, or nccl_from_mpi (nccl_mpi.cuh). The communicator is destroyed with it —
/// or, after a failure, was aborted already.
template <schedule_type S> class nccl_process : public detail::nccl_process_base<nccl_executor<S>> {
public:
  /// `who.world_size` must equal the schedule's ranks. `options.deadline` also bounds the
  /// communicator's set-up.
  nccl_process(launch_info const& who, ncclUniqueId const& id, nccl_options options,
               std::unique_ptr<failure_board> board = nullptr)
      : detail::nccl_process_base<nccl_executor<S>>(
            S::ranks, who, id, options, std::move(board), [&](ncclComm_t c, nccl_options const& o) {
              return std::make_unique<nccl_executor<S>>(c, who.rank, o);
            }) {}
};

/// The same for a schedule chosen at run time (a runtime_schedule; every process must give
/// the same table and costs): its executor is an nccl_runtime_executor.
class nccl_runtime_process : public detail::nccl_process_base<nccl_runtime_executor> {
public:
  nccl_runtime_process(launch_info const& who, ncclUniqueId const& id, runtime_schedule schedule, nccl_options options,
                       cost_model const& costs = {}, std::unique_ptr<failure_board> board = nullptr)
      : detail::nccl_process_base<nccl_runtime_executor>(
            schedule.ranks, who, id, options, std::move(board), [&](ncclComm_t c, nccl_options const& o) {
              return std::make_unique<nccl_runtime_executor>(c, who.rank, std::move(schedule), o, costs);
            }) {}
};

/// A ready process from an id distributed by the caller (rank 0: ncclGetUniqueId).
template <schedule_type S>
nccl_process<S> nccl_from_id(launch_info const& who, ncclUniqueId const& id, nccl_options const& options = {}) {
  return nccl_process<S>(who, id, options);
}

/// The same for a schedule chosen at run time (every process gives the same table).
inline nccl_runtime_process nccl_from_id(launch_info const& who, ncclUniqueId const& id, runtime_schedule schedule,
                                         nccl_options const& options = {}, cost_model const& costs = {}) {
  return nccl_runtime_process(who, id, std::move(schedule), options, costs);
}

namespace detail {

/// The failure board of nccl_from_file (unless options.board is given) and the id through
/// the shared file `id_path`.
inline std::unique_ptr<failure_board> id_from_file(std::string const& id_path, nccl_options const& options,
                                                   launch_info const& who, ncclUniqueId* id) {
  std::unique_ptr<failure_board> board;
  if (!options.board) {
    auto b = std::make_unique<file_failure_board>(id_path + ".failures");
    if (who.rank == 0) b->clear(); // before the id exists, so no rank of this run has posted yet
    board = std::move(b);
  }
  if (who.rank == 0) {
    ncclResult_t const e = ncclGetUniqueId(id);
    if (e != ncclSuccess) detail::throw_nccl("ncclGetUniqueId", e, 0);
  }
  exchange_id_file(id_path, who.rank, id, sizeof *id, options.deadline);
  return board;
}

} // namespace detail

/// A ready process for launchers without MPI: who it is from the launch variables
/// (launch_from_environment), the NCCL id through the shared file `id_path` (rank 0 writes
/// it, the others wait up to options.deadline), and a failure board in the folder
/// `id_path + ".failures"` unless options.board is given. Use a path per job (put the job
/// id in it: a previous run's file would be taken).
template <schedule_type S>
nccl_process<S> nccl_from_file(std::string const& id_path, nccl_options const& options = {},
                               launch_info const& who = launch_from_environment()) {
  ncclUniqueId id{};
  std::unique_ptr<failure_board> board = detail::id_from_file(id_path, options, who, &id);
  return nccl_process<S>(who, id, options, std::move(board));
}

/// The same for a schedule chosen at run time (every process gives the same table).
inline nccl_runtime_process nccl_from_file(std::string const& id_path, runtime_schedule schedule,
                                           nccl_options const& options = {},
                                           launch_info const& who = launch_from_environment(),
                                           cost_model const& costs = {}) {
  ncclUniqueId id{};
  std::unique_ptr<failure_board> board = detail::id_from_file(id_path, options, who, &id);
  return nccl_runtime_process(who, id, std::move(schedule), options, costs, std::move(board));
}

} // namespace pipesched::cuda
