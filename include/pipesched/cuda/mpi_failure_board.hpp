// pipesched: a failure board over MPI — a failing rank sends its note to every other rank;
// the others look for one (MPI_Iprobe) while they wait. Needs <mpi.h> (pipesched::mpi);
// without it this header declares nothing.
#pragma once

#include "pipesched/cuda/launch.hpp"

#if __has_include(<mpi.h>)
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace pipesched::cuda {

/// A failure board on its own duplicate of an MPI communicator (made collectively by the
/// constructor, so its messages never meet the application's). post() sends the note to
/// every other rank without waiting (MPI_Isend: a failing rank must not block); poll()
/// receives what has arrived and returns the note of the lowest failed rank seen.
class mpi_failure_board final : public failure_board {
public:
  explicit mpi_failure_board(MPI_Comm world = MPI_COMM_WORLD) {
    MPI_Comm_dup(world, &comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  mpi_failure_board(mpi_failure_board const&) = delete;
  mpi_failure_board& operator=(mpi_failure_board const&) = delete;
  ~mpi_failure_board() override {
    // notes never received are cancelled, so that freeing the communicator does not wait
    for (MPI_Request& r : sends_) {
      int done = 0;
      MPI_Test(&r, &done, MPI_STATUS_IGNORE);
      if (!done) {
        MPI_Cancel(&r);
        MPI_Request_free(&r);
      }
    }
    MPI_Comm_free(&comm_);
  }

  void post(failure_note const& note) override {
    std::string const& text = texts_.emplace_back(std::to_string(note.rank) + "\n" + note.what);
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      sends_.emplace_back();
      MPI_Isend(text.data(), static_cast<int>(text.size()), MPI_CHAR, r, tag, comm_, &sends_.back());
    }
    take(note);
  }

  std::optional<failure_note> poll() override {
    for (;;) {
      int flag = 0;
      MPI_Status st;
      MPI_Iprobe(MPI_ANY_SOURCE, tag, comm_, &flag, &st);
      if (!flag) break;
      int n = 0;
      MPI_Get_count(&st, MPI_CHAR, &n);
      std::string buf(static_cast<std::size_t>(n), '\0');
      MPI_Recv(buf.data(), n, MPI_CHAR, st.MPI_SOURCE, tag, comm_, MPI_STATUS_IGNORE);
      std::size_t const nl = buf.find('\n');
      failure_note note;
      note.rank = st.MPI_SOURCE;
      if (nl != std::string::npos) note.what = buf.substr(nl + 1);
      take(note);
    }
    return best_;
  }

  static constexpr int tag = 0x7f11;

private:
  void take(failure_note const& n) {
    if (!best_ || n.rank < best_->rank) best_ = n;
  }
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::deque<std::string> texts_; ///< the notes being sent (alive until the board ends)
  std::vector<MPI_Request> sends_;
  std::optional<failure_note> best_;
};

} // namespace pipesched::cuda
#endif
