// pipesched: the MPI transport and executor — one process per rank, blocking MPI_Send/Recv.
//
// Needs <mpi.h> (link pipesched::mpi, or build with mpicxx). Without it this header
// declares nothing, so that it can be included (and checked) everywhere.
#pragma once

#if __has_include(<mpi.h>)
// The C API only: Open MPI's and MPICH's deprecated C++ bindings are not needed.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#include "pipesched/core/action.hpp"
#include "pipesched/core/schedule.hpp"
#include "pipesched/host/buffers.hpp"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/plan.hpp"

#define PIPESCHED_HAS_MPI 1

namespace pipesched::mpi {

/// An MPI call failed, or a message was not the one the receiver expected.
struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// MPI tag of a boundary: the direction and the micro-batch (the receiver checks both).
template <class Step> constexpr int tag_of() {
  constexpr bool act = Step::kind == op::send_act || Step::kind == op::recv_act;
  return (act ? 0 : 1) + 2 * (Step::mb % 16000);
}

/// The transport of one process: each SEND is a blocking MPI_Send (or MPI_Ssend, which
/// completes only when the receive has started: rendezvous whatever the message size)
/// to the peer's process, each RECV a blocking MPI_Recv, issued in the lowered order.
class transport {
public:
  explicit transport(MPI_Comm comm, bool synchronous = false) : comm_(comm), synchronous_(synchronous) {}

  template <class Step> void send(Step, io const& x) {
    int const rc = synchronous_ ? MPI_Ssend(x.in.data, count(x.in.bytes), MPI_BYTE, Step::peer, tag_of<Step>(), comm_)
                                : MPI_Send(x.in.data, count(x.in.bytes), MPI_BYTE, Step::peer, tag_of<Step>(), comm_);
    check(rc, "MPI_Send");
  }
  template <class Step> void recv(Step, io const& x) {
    MPI_Status st;
    check(MPI_Recv(x.out.data, count(x.out.bytes), MPI_BYTE, Step::peer, MPI_ANY_TAG, comm_, &st), "MPI_Recv");
    if (st.MPI_TAG != tag_of<Step>())
      throw error("pipesched: rank received another boundary than it expected (tag " + std::to_string(st.MPI_TAG) +
                  ", expected " + std::to_string(tag_of<Step>()) + ")");
    int n = 0;
    MPI_Get_count(&st, MPI_BYTE, &n);
    if (static_cast<std::size_t>(n) != x.out.bytes)
      throw error("pipesched: a message has " + std::to_string(n) + " bytes, the slot " + std::to_string(x.out.bytes));
  }

private:
  static int count(std::size_t bytes) {
    if (bytes > static_cast<std::size_t>(2147483647)) throw error("pipesched: a boundary is larger than 2 GiB");
    return static_cast<int>(bytes);
  }
  static void check(int rc, const char* what) {
    if (rc != MPI_SUCCESS) throw error(std::string("pipesched: ") + what + " failed");
  }
  MPI_Comm comm_;
  bool synchronous_;
};

/// Settings of an MPI executor.
struct options {
  std::size_t slot_bytes = 0; ///< bytes of every boundary slot
  bool synchronous = false;   ///< MPI_Ssend instead of MPI_Send
};

/// Runs this process's rank of schedule S: its rank in `comm` is its pipeline rank, and
/// `comm` must have exactly S::ranks processes. The constructor allocates the rank's
/// boundary buffers; `run(functor)` executes one iteration of plan<S, rank> with blocking
/// MPI transfers and allocates nothing. An exception leaves the other processes blocked:
/// catch it and call MPI_Abort, as MPI offers no other way to stop them.
template <schedule_type S> class executor {
public:
  executor(MPI_Comm comm, options const& o) : comm_(comm), transport_(comm, o.synchronous) {
    int size = 0;
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &size);
    if (size != S::ranks)
      throw error("pipesched: the schedule has " + std::to_string(S::ranks) + " ranks, the communicator " +
                  std::to_string(size) + " processes");
    buffers_ = host::boundary_buffers(buffer_plan<S>::slots(rank_), o.slot_bytes);
  }

  int rank() const { return rank_; }
  host::boundary_buffers const& buffers() const { return buffers_; }

  /// One iteration of this process's rank.
  template <class Functor> void run(Functor& functor) {
    [&]<int... R>(std::integer_sequence<int, R...>) {
      (void)((rank_ == R ? (plan<S, R>::run(functor, transport_, buffers_.views()), true) : false) || ...);
    }
    (std::make_integer_sequence<int, S::ranks>{});
  }

private:
  MPI_Comm comm_;
  int rank_ = 0;
  transport transport_;
  host::boundary_buffers buffers_;
};

} // namespace pipesched::mpi

#else
#define PIPESCHED_HAS_MPI 0
#endif
