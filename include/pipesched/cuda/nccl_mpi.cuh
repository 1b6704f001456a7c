// pipesched: the MPI bootstrap of a multi-process NCCL run — rank 0 makes NCCL's unique id,
// MPI_Bcast gives it to every rank, each process takes the GPU of its local rank (the
// shared-memory split of the communicator), and failures travel over MPI as well.
//
// Needs MPI and NCCL (link pipesched::nccl and pipesched::mpi). Kept apart from nccl.cuh so
// that users without MPI never include <mpi.h>.
#pragma once

#include "pipesched/cuda/mpi_failure_board.hpp"
#include "pipesched/cuda/nccl.cuh"

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace pipesched::cuda {

/// Who this process is in `world`: its rank and size, and its local rank from
/// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) — the processes on its node.
inline launch_info launch_from_mpi(MPI_Comm world = MPI_COMM_WORLD) {
  launch_info who;
  who.source = "MPI";
  MPI_Comm_rank(world, &who.rank);
  MPI_Comm_size(world, &who.world_size);
  MPI_Comm local = MPI_COMM_NULL;
  if (MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, who.rank, MPI_INFO_NULL, &local) != MPI_SUCCESS)
    throw std::runtime_error("pipesched: MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) failed on rank " +
                             std::to_string(who.rank));
  MPI_Comm_rank(local, &who.local_rank);
  MPI_Comm_free(&local);
  return who;
}

namespace detail {

/// Rank 0's ncclGetUniqueId broadcast over `world` (its failure too, so that no rank waits
/// for an id that will not come); the MPI failure board unless options.board is given.
inline std::unique_ptr<failure_board> id_from_mpi(launch_info const& who, nccl_options const& options, MPI_Comm world,
                                                  ncclUniqueId* id) {
  std::unique_ptr<failure_board> board;
  if (!options.board) board = std::make_unique<mpi_failure_board>(world);
  ncclResult_t e = ncclSuccess;
  if (who.rank == 0) e = ncclGetUniqueId(id);
  int ok = e == ncclSuccess ? 1 : 0;
  MPI_Bcast(&ok, 1, MPI_INT, 0, world);
  if (!ok) throw std::runtime_error("pipesched: ncclGetUniqueId failed on rank 0");
  MPI_Bcast(id, static_cast<int>(sizeof *id), MPI_BYTE, 0, world);
  return board;
}

} // namespace detail

/// A ready process over MPI (collective over `world`, which MPI_Init made): rank 0's
/// ncclGetUniqueId broadcast with MPI_Bcast, the local rank's GPU, a non-blocking
/// communicator, an MPI failure board (unless options.board is given), the executor.
template <schedule_type S> nccl_process<S> nccl_from_mpi(nccl_options const& options = {}, MPI_Comm world = MPI_COMM_WORLD) {
  launch_info const who = launch_from_mpi(world);
  ncclUniqueId id{};
  std::unique_ptr<failure_board> board = detail::id_from_mpi(who, options, world, &id);
  return nccl_process<S>(who, id, options, std::move(board));
}

/// The same for a schedule chosen at run time (every process gives the same table and costs).
inline nccl_runtime_process nccl_from_mpi(runtime_schedule schedule, nccl_options const& options = {},
                                          MPI_Comm world = MPI_COMM_WORLD, cost_model const& costs = {}) {
  launch_info const who = launch_from_mpi(world);
  ncclUniqueId id{};
  std::unique_ptr<failure_board> board = detail::id_from_mpi(who, options, world, &id);
  return nccl_runtime_process(who, id, std::move(schedule), options, costs, std::move(board));
}

} // namespace pipesched::cuda
