// pipesched: the MPI transport and executor — one process per rank.
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

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pipesched/core/action.hpp"
#include "pipesched/host/buffers.hpp"
#include "pipesched/host/channel.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/functors.hpp"
#include "pipesched/plan/plan.hpp"
#include "pipesched/plan/runtime_plan.hpp"

#define PIPESCHED_HAS_MPI 1

namespace pipesched::mpi {

/// An MPI call failed, a message was not the one the receiver expected, or the executor
/// was used after a failure.
struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A transfer waited longer than the executor's timeout. Every other rank is told and
/// stops with remote_failure.
struct timeout_error : error {
  using error::error;
};

/// Another rank failed (a functor threw, a transfer failed or timed out there): this rank
/// stopped its iteration. Names the failing rank and the action it failed in.
struct remote_failure : error {
  int failed_rank = -1;
  pipesched::action_record failed_action{};
  remote_failure(std::string const& what, int rank, pipesched::action_record a)
      : error(what), failed_rank(rank), failed_action(a) {}
};

/// Settings of an MPI executor.
struct options {
  /// Bytes of every boundary, unless `boundaries` gives them per stage.
  std::size_t slot_bytes = 0;
  /// MPI_Issend instead of MPI_Isend: a send completes only once its receive has started
  /// (rendezvous whatever the message size).
  bool synchronous = false;
  /// The longest a transfer may wait. When it passes, the rank throws timeout_error and
  /// tells every other rank, which stop with remote_failure: no rank waits forever.
  std::chrono::nanoseconds timeout = std::chrono::seconds(60);
  /// Bytes per stage boundary (see host::options::boundaries).
  boundary_sizes boundaries{};
};

namespace detail {

/// What a failing rank tells the others (a fixed-size message on the executor's own
/// communicator, with the tag reserved for it).
struct notice {
  std::int32_t rank = -1;
  std::uint64_t action = ~std::uint64_t{0};
  char what[240] = {};
};

/// Turns an MPI return code into an exception.
inline void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int n = 0;
  MPI_Error_string(rc, text, &n);
  throw error(std::string("pipesched: ") + call + " failed: " + text);
}

} // namespace detail

/// The transport of one process over the executor's own communicator. Every boundary is a
/// non-blocking send or receive whose tag encodes its full identity (direction, sending
/// stage, micro-batch; the receiver also checks the chunk through the stage) and the
/// receive names that exact tag; while it waits the rank polls for the failure notices of
/// other ranks, for a message from the same peer that arrived out of order (a mismatch,
/// reported at once) and for its deadline.
class transport {
public:
  transport(MPI_Comm comm, int rank, int stages, int microbatches, options const& o, pipesched::action_record* current)
      : comm_(comm), rank_(rank), stages_(stages), synchronous_(o.synchronous), timeout_(o.timeout),
        current_(current) {
    void* value = nullptr;
    int flag = 0;
    MPI_Comm_get_attr(comm, MPI_TAG_UB, &value, &flag);
    int const ub = flag ? *static_cast<int*>(value) : 32767;
    abort_tag_ = ub;
    tag_space_ = ub; // data tags are 0 .. ub-1
    exact_ = 2.0 * stages * microbatches <= static_cast<double>(tag_space_);
  }

  template <class Step> void on_action(Step s) { *current_ = pipesched::action_record::of(s); }

  // The per-step members only read the step's constants and call one shared function: the
  // transfer's code (MPI calls, waits, error messages) exists once per program, not once per
  // action of every rank's unrolled plan (bench/compile_executors.sh: the MPI unit's .text
  // shrank from 2.8x to about the host executor's).
  template <class Step> void send(Step s, io const& x) { send_to(s.peer, identity_of(s), x); }
  template <class Step> void recv(Step s, io const& x) { receive_from(s.peer, identity_of(s), x); }

  void send_to(int peer, boundary_identity const& id, io const& x) {
    int const tag = tag_of(id);
    MPI_Request req = MPI_REQUEST_NULL;
    int const n = count(x.in.bytes);
    detail::check(synchronous_ ? MPI_Issend(x.in.data, n, MPI_BYTE, peer, tag, comm_, &req)
                               : MPI_Isend(x.in.data, n, MPI_BYTE, peer, tag, comm_, &req),
                  "MPI_Isend");
    wait(req, peer, -1, id, "send");
  }

  void receive_from(int peer, boundary_identity const& expect, io const& x) {
    int const tag = tag_of(expect);
    MPI_Request req = MPI_REQUEST_NULL;
    detail::check(MPI_Irecv(x.out.data, count(x.out.bytes), MPI_BYTE, peer, tag, comm_, &req), "MPI_Irecv");
    MPI_Status st = wait(req, peer, tag, expect, "receive");
    int n = 0;
    MPI_Get_count(&st, MPI_BYTE, &n);
    if (static_cast<std::size_t>(n) != x.out.bytes)
      throw error("pipesched: rank " + std::to_string(rank_) + " received the " + pipesched::describe(expect) + " with " +
                  std::to_string(n) + " bytes, its own size is " + std::to_string(x.out.bytes) +
                  ": give both ends the same boundary sizes");
  }

  /// Tells every other rank that this one failed (non-blocking; completed by finish_notices).
  void notify_failure(int ranks, std::string const& what) {
    notice_.rank = rank_;
    notice_.action = current_->bits;
    std::size_t const n = what.size() < sizeof(notice_.what) - 1 ? what.size() : sizeof(notice_.what) - 1;
    std::memcpy(notice_.what, what.data(), n);
    notice_.what[n] = '\0';
    for (int q = 0; q < ranks; ++q) {
      if (q == rank_) continue;
      MPI_Request req = MPI_REQUEST_NULL;
      if (MPI_Isend(&notice_, sizeof(notice_), MPI_BYTE, q, abort_tag_, comm_, &req) == MPI_SUCCESS)
        notices_.push_back(req);
    }
  }

  /// Waits (at most `limit`) for the notices to leave; the rest are abandoned.
  void finish_notices(std::chrono::nanoseconds limit) {
    auto const end = std::chrono::steady_clock::now() + limit;
    for (MPI_Request& req : notices_) {
      int done = 0;
      while (!done && std::chrono::steady_clock::now() < end) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done) std::this_thread::yield();
      }
      if (!done) MPI_Request_free(&req);
    }
    notices_.clear();
  }

  /// The tag of a boundary: its identity when every identity of the schedule fits below the
  /// implementation's tag bound (always for Open MPI), else the identity modulo that bound.
  int tag_of(boundary_identity const& b) const {
    std::uint64_t const id = static_cast<std::uint64_t>(b.direction) +
                             2 * (static_cast<std::uint64_t>(b.from_stage) +
                                  static_cast<std::uint64_t>(stages_) * static_cast<std::uint64_t>(b.mb));
    return static_cast<int>(id % static_cast<std::uint64_t>(tag_space_));
  }

private:
  std::string describe_tag(int tag) const {
    if (!exact_) return "the boundary with tag " + std::to_string(tag);
    int const id = tag / 2;
    return "the " + std::string(tag % 2 == 0 ? "activation" : "gradient") + " of micro-batch " +
           std::to_string(id / stages_) + " from stage " + std::to_string(id % stages_);
  }

  static int count(std::size_t bytes) {
    if (bytes > static_cast<std::size_t>(2147483647)) throw error("pipesched: a boundary is larger than 2 GiB");
    return static_cast<int>(bytes);
  }

  /// Abandons a transfer that will not complete.
  static void give_up(MPI_Request& req, bool is_recv) {
    if (is_recv) {
      MPI_Cancel(&req);
      MPI_Wait(&req, MPI_STATUS_IGNORE);
    } else {
      MPI_Request_free(&req); // a send cannot be taken back: let it complete or not
    }
  }

  /// Polls until `req` completes: meanwhile checks for failure notices, for an out-of-order
  /// message from `peer` (receives: `tag` >= 0) and for the deadline.
  MPI_Status wait(MPI_Request& req, int peer, int tag, boundary_identity const& id, const char* what) {
    MPI_Status st{};
    int done = 0;
    auto const start = std::chrono::steady_clock::now();
    try {
      for (unsigned poll = 0;; ++poll) {
        detail::check(MPI_Test(&req, &done, &st), "MPI_Test");
        if (done) return st;
        // give the core away between polls (ranks often outnumber cores), as MPI's own
        // blocking calls do when oversubscribed
        if (poll >= 4) std::this_thread::yield();
        if (poll % 16 != 15) continue;
        check_notices();
        if (tag >= 0) check_order(req, peer, tag, id, st);
        if (req == MPI_REQUEST_NULL) return st; // completed during the order check
        if (poll % 256 == 255 && std::chrono::steady_clock::now() - start > timeout_)
          throw timeout_error("pipesched: rank " + std::to_string(rank_) + " waited longer than the timeout in its " +
                              what + " of the " + pipesched::describe(id) + " (rank " + std::to_string(peer) + ", " +
                              pipesched::describe(*current_) + ")");
      }
    } catch (...) {
      if (req != MPI_REQUEST_NULL) give_up(req, tag >= 0);
      throw;
    }
  }

  void check_notices() {
    int flag = 0;
    MPI_Status st{};
    MPI_Iprobe(MPI_ANY_SOURCE, abort_tag_, comm_, &flag, &st);
    if (!flag) return;
    detail::notice n{};
    MPI_Recv(&n, sizeof(n), MPI_BYTE, st.MPI_SOURCE, abort_tag_, comm_, MPI_STATUS_IGNORE);
    pipesched::action_record const a{n.action};
    n.what[sizeof(n.what) - 1] = '\0';
    throw remote_failure("pipesched: rank " + std::to_string(n.rank) + " failed (" + pipesched::describe(a) +
                             "): " + n.what + "; rank " + std::to_string(rank_) + " stopped (" +
                             pipesched::describe(*current_) + ")",
                         n.rank, a);
  }

  /// Messages from one peer arrive in the order they were sent. If a message with another
  /// tag from `peer` is waiting while ours has not arrived, the peer sent it first: the two
  /// ranks disagree on the order (an imported table that both ends do not share, say).
  void check_order(MPI_Request& req, int peer, int tag, boundary_identity const& id, MPI_Status& st) {
    int flag = 0;
    MPI_Status probe{};
    MPI_Iprobe(peer, MPI_ANY_TAG, comm_, &flag, &probe);
    if (!flag || probe.MPI_TAG == tag || probe.MPI_TAG == abort_tag_) return;
    int done = 0;
    detail::check(MPI_Test(&req, &done, &st), "MPI_Test");
    if (done) return; // ours had arrived first after all
    throw error("pipesched: rank " + std::to_string(rank_) + " expected the " + pipesched::describe(id) + " from rank " +
                std::to_string(peer) + ", which sent " + describe_tag(probe.MPI_TAG) +
                " first: the two ranks run different tables");
  }

  MPI_Comm comm_;
  int rank_;
  int stages_;
  bool synchronous_;
  std::chrono::nanoseconds timeout_;
  pipesched::action_record* current_;
  int abort_tag_ = 32767;
  int tag_space_ = 32767;
  bool exact_ = true;
  detail::notice notice_{};
  std::vector<MPI_Request> notices_;
};

namespace detail {

/// The schedule of an MPI executor given as a type: the rank runs plan<S, rank>.
template <schedule_type S> struct static_source {
  static_assert(pipesched::detail::checked<S>); // a schedule that fails verification stops the build here
  static constexpr int rank_count() { return S::ranks; }
  static constexpr int stage_count() { return S::stages; }
  static constexpr int microbatch_count() { return S::microbatches; }
  static constexpr auto const& lowered() { return S::lowered; }
  static constexpr int slots(int r) { return buffer_plan<S>::slots(r); }
  template <class F> static void check(F const&) {}
  template <class F, class T, class V> static void run_rank(int rank, F& f, T& transport, V const& views) {
    pipesched::detail::with_rank<S::ranks>(
        rank, [&](auto rc) { plan<S, decltype(rc)::value>::run(f, transport, views); });
  }
};

/// The schedule of an MPI executor known at run time (every process must build the same).
struct runtime_source {
  runtime_schedule schedule;
  int rank_count() const { return schedule.ranks; }
  int stage_count() const { return schedule.stages; }
  int microbatch_count() const { return schedule.microbatches; }
  runtime_schedule const& lowered() const { return schedule; }
  int slots(int r) const { return schedule.slots(r); }
  template <class F> void check(F const&) const { schedule.check_functor<F>(); }
  template <class F, class T, class V> void run_rank(int rank, F& f, T& transport, V const& views) const {
    schedule.run(rank, f, transport, views);
  }
};

} // namespace detail

/// Runs this process's rank of a schedule: `executor<S>` for a schedule type (compiled
/// plans), `runtime_executor` for a table chosen at run time (every process must build the
/// same one; a wrong order between two ranks is reported at once, see transport). Its rank in
/// `comm` is its pipeline rank; `comm` must have exactly as many processes as the schedule
/// has ranks, and every one of them constructs the executor (collectively: the constructor
/// duplicates `comm`, so the executor's messages never mix with the user's own, whatever
/// their tags). The constructor allocates the rank's boundary buffers; `run(functor)`
/// executes one iteration of this rank and allocates nothing.
///
/// Failures never leave a rank blocked: when a functor throws on one rank, or a transfer
/// fails or waits longer than options.timeout, that rank tells every other one, each of
/// which ends its iteration with remote_failure naming the failing rank and action, while
/// the failing rank rethrows its own exception. An executor that failed cannot run again
/// (run throws): the ranks no longer agree on what was sent.
template <class Source> class basic_executor {
public:
  basic_executor(Source source, MPI_Comm comm, options const& o) : source_(std::move(source)), options_(o) {
    int size = 0;
    MPI_Comm_size(comm, &size);
    int const ranks = source_.rank_count();
    if (size != ranks)
      throw error("pipesched: the schedule has " + std::to_string(ranks) + " ranks, the communicator " +
                  std::to_string(size) + " processes");
    bytes_ = boundary_byte_table(source_.stage_count(), o.boundaries, o.slot_bytes);
    detail::check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    buffers_ = host::boundary_buffers(slot_capacities(source_.lowered(), rank_, source_.slots(rank_), bytes_.data()));
    transport_ =
        std::make_unique<transport>(comm_, rank_, source_.stage_count(), source_.microbatch_count(), o, &current_);
  }
  basic_executor(basic_executor const&) = delete;
  basic_executor& operator=(basic_executor const&) = delete;
  ~basic_executor() {
    if (transport_) transport_->finish_notices(std::chrono::seconds(1));
    // Freeing a communicator other ranks may still block on is not safe after a failure.
    if (!failed_ && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  int rank() const { return rank_; }
  host::boundary_buffers const& buffers() const { return buffers_; }
  /// The executor's own communicator (a duplicate of the one it was given).
  MPI_Comm communicator() const { return comm_; }
  /// The tag this executor gives a boundary (for tests: users never need it).
  int tag_of(boundary_identity const& b) const { return transport_->tag_of(b); }
  Source const& source() const { return source_; }

  /// One iteration of this process's rank.
  template <class Functor> void run(Functor& functor) {
    if (failed_)
      throw error("pipesched: this MPI executor stopped after a failure in an earlier run; the ranks no longer "
                  "agree on what was sent: end the job or build new executors on every rank");
    source_.check(functor);
    current_ = pipesched::action_record{};
    int const ranks = source_.rank_count();
    try {
      source_.run_rank(rank_, functor, *transport_, boundary_views{buffers_.views(), bytes_.data()});
    } catch (remote_failure const&) {
      failed_ = true;
      throw;
    } catch (std::exception const& e) {
      failed_ = true;
      transport_->notify_failure(ranks, e.what());
      throw;
    } catch (...) {
      failed_ = true;
      transport_->notify_failure(ranks, "an exception not derived from std::exception");
      throw;
    }
  }

private:
  Source source_;
  options options_;
  std::vector<std::size_t> bytes_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  host::boundary_buffers buffers_;
  pipesched::action_record current_{};
  std::unique_ptr<transport> transport_;
  bool failed_ = false;
};

/// This process's rank of schedule type S on MPI.
template <schedule_type S> class executor : public basic_executor<detail::static_source<S>> {
public:
  executor(MPI_Comm comm, options const& o) : basic_executor<detail::static_source<S>>(detail::static_source<S>{}, comm, o) {}
};

/// This process's rank of a schedule chosen at run time, on MPI (every process passes the
/// same schedule).
class runtime_executor : public basic_executor<detail::runtime_source> {
public:
  runtime_executor(runtime_schedule s, MPI_Comm comm, options const& o)
      : basic_executor<detail::runtime_source>(detail::runtime_source{std::move(s)}, comm, o) {}
};

} // namespace pipesched::mpi

#else
#define PIPESCHED_HAS_MPI 0
#endif
