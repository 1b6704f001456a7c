// pipesched: the per-process (NCCL) executor for a schedule chosen at run time — a
// runtime_schedule's rendezvous stream program, derived and checked when the executor is
// made, this rank's ops issued in a loop onto the same streams, events, slots, groups and
// communicators as basic_nccl_executor (detail::nccl_rank).
//
// Written against the `Runtime` and `Comm` policies and including no CUDA or NCCL header:
// `cuda::nccl_runtime_executor` (nccl.cuh) binds them to CUDA and NCCL; the CPU tests bind
// them to the host emulation (tests/support/emulated_nccl.hpp).
#pragma once

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pipesched/cuda/basic_runtime_executor.hpp"
#include "pipesched/cuda/nccl_rank.hpp"
#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/plan/action_record.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/runtime_plan.hpp"

namespace pipesched::cuda {

/// The rendezvous-mode stream program of a run-time table, checked by the rules the compiler
/// applies to a schedule type's (verify_stream_program, check_stream_order; see
/// checked_stream_program). Throws schedule_error with the check's sentence when it fails.
inline stream_program checked_rendezvous_program(table const& t, cost_model const& costs = {}) {
  stream_program prog = derive_stream_program(t, transfer_mode::rendezvous, costs);
  diagnostic d = prog.error;
  if (!d) d = verify_stream_program(t, prog);
  if (!d) d = check_stream_order(t, prog);
  if (d) throw schedule_error(d);
  return prog;
}

/// The executor of one rank of a runtime_schedule (the table host::runtime_executor takes)
/// whose ranks are separate processes (one GPU each): the same options, communicators,
/// groups, warm-up, failures, deadline, capture and replay as basic_nccl_executor.
///
/// The constructor derives the table's rendezvous stream program and checks it
/// (checked_rendezvous_program) before anything is allocated; a table the checks refuse
/// throws schedule_error naming the reason — and, as for every failure of the constructor,
/// aborts the communicator first, so the peers never hang. An iteration walks the program's
/// ops in the global issue order and issues this rank's: an op on its compute stream ends an
/// open group first (as the compile-time executor ends one before a compute unit); an exec
/// op calls the functor with the action's runtime_step (runtime_schedule::run_one, as
/// host::runtime_executor and cuda::runtime_executor do); sends and receives join the open
/// group (split on a slot conflict or at max_group_ops), waits and records as the program
/// says. Every rank must be given the same table (and costs).
template <class Runtime, class Comm> class basic_nccl_runtime_executor : public detail::nccl_rank<Runtime, Comm> {
  using base = detail::nccl_rank<Runtime, Comm>;

public:
  using stream_t = typename Runtime::stream_t;
  using comm_t = typename Comm::comm_t;

  /// `comm`: a communicator of s.ranks ranks in which this process is `rank` (non-blocking,
  /// see nccl.cuh); the executor does not own it. `costs` only steer the issue order (every
  /// rank must give the same).
  basic_nccl_runtime_executor(comm_t comm, int rank, runtime_schedule s, nccl_options const& o,
                              cost_model const& costs = {})
      : base(comm, rank, s.ranks, o), schedule_(std::move(s)) {
    this->construct(schedule_.stages, [&] {
      program_ = checked_rendezvous_program(schedule_.lowered(), costs);
      make();
    });
  }

  /// The same with a rendezvous program of the table given (e.g. derived once and kept, or
  /// made by a tool): checked as above (verify_stream_program, check_stream_order) before
  /// anything is allocated; one the checks refuse throws schedule_error with the sentence, a
  /// program of another mode or rank count std::invalid_argument (the communicator aborted
  /// either way). Every rank must be given the same program.
  basic_nccl_runtime_executor(comm_t comm, int rank, runtime_schedule s, stream_program prog, nccl_options const& o)
      : base(comm, rank, s.ranks, o), schedule_(std::move(s)) {
    this->construct(schedule_.stages, [&] {
      if (prog.mode != transfer_mode::rendezvous || prog.ranks != schedule_.ranks)
        throw std::invalid_argument("pipesched: basic_nccl_runtime_executor issues a rendezvous program of the "
                                    "schedule's " +
                                    std::to_string(schedule_.ranks) + " ranks");
      table const& t = schedule_.lowered();
      diagnostic d = prog.error;
      if (!d) d = verify_stream_program(t, prog);
      if (!d) d = check_stream_order(t, prog);
      if (d) throw schedule_error(d);
      program_ = std::move(prog);
      make();
    });
  }

  /// One iteration of this rank with `functor` (this rank's stage functor, called with
  /// runtime_steps), ordered after the work on `origin` (null: the legacy default stream);
  /// returns when it is done. A functor without a member the table calls is refused before
  /// anything is issued — as a failure of this rank (its note, the communicator aborted), so
  /// that the peers stop too.
  template <class Functor> void run(Functor& functor, stream_t origin = nullptr) {
    check_functor<Functor>();
    this->run_with([&] { issue_rank(functor); }, origin);
  }

  /// Records this rank's iteration into a graph, as basic_nccl_executor::capture (collective).
  template <class Functor> void capture(Functor& functor) {
    check_functor<Functor>();
    this->capture_with([&] { issue_rank(functor); });
  }

  runtime_schedule const& schedule() const { return schedule_; }
  /// The checked rendezvous stream program (all ranks' ops; this rank issues its own).
  stream_program const& program() const { return program_; }
  int ranks() const { return schedule_.ranks; }

private:
  void make() {
    this->setup(schedule_, program_,
                slot_capacities(schedule_, this->rank_, schedule_.slots(this->rank_), this->bytes_.data()));
  }

  template <class Functor> void check_functor() {
    this->refuse_after_failure();
    try {
      schedule_.check_functor<std::remove_cvref_t<Functor>>();
    } catch (std::exception const& e) {
      this->fail_local(e.what());
      throw;
    }
  }

  template <class Functor> void issue_rank(Functor& f) {
    table const& t = schedule_.lowered();
    int const r = this->rank_;
    unsigned const compute = 2u * static_cast<unsigned>(r);
    auto const& ops = program_.ops;
    for (std::size_t k = 0; k < ops.size(); ++k) {
      stream_op const& o = ops[k];
      if (o.rank != r) continue; // another rank's op (or the peer's side of a transfer)
      if (o.stream == compute) this->end_open_group();
      switch (o.kind) {
      case stream_op_kind::wait: this->op_wait(o); break;
      case stream_op_kind::record: this->op_record(o); break;
      case stream_op_kind::exec: {
        std::size_t const i = o.action;
        this->op_exec(action_record::of(schedule_.steps(r)[i]),
                      [&](action_record& current, boundary_views const& views, stream_t stream) {
                        detail::runtime_pass_tracker tracker{&current};
                        schedule_.run_step(r, i, f, tracker, views, stream);
                      });
        break;
      }
      case stream_op_kind::send: {
        action const& sa = t.lists[o.rank][o.action];
        this->op_send(sa, boundary_key(t, sa, field::in), action_record::of(schedule_.steps(r)[o.action]));
        break;
      }
      case stream_op_kind::recv: {
        // the program puts a receive right after its send (detail::expand_unit): the boundary
        // is the send's
        if (k == 0 || ops[k - 1].kind != stream_op_kind::send)
          throw std::logic_error("pipesched: a receive without its send before it in the stream program");
        stream_op const& so = ops[k - 1];
        action const& ra = t.lists[o.rank][o.action];
        action const& sa = t.lists[so.rank][so.action];
        this->op_recv(ra, ra.peer, boundary_key(t, sa, field::in), action_record::of(schedule_.steps(r)[o.action]));
        break;
      }
      case stream_op_kind::copy: break; // copy mode: not in a rendezvous program
      }
    }
  }

  runtime_schedule schedule_;
  stream_program program_;
};

} // namespace pipesched::cuda
