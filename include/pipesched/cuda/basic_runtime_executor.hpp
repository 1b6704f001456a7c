// pipesched: the CUDA streams executor for a schedule chosen at run time — a runtime_schedule's
// stream program, derived and checked when the executor is made, issued op by op in a loop
// onto the same streams, events and slots as basic_executor (detail::stream_resources).
//
// Written against a runtime policy and including no CUDA header: `cuda::runtime_executor`
// (executor.cuh) binds it to the CUDA runtime; tests bind it to the host emulation.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/cuda/stream_resources.hpp"
#include "pipesched/plan/action_record.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/functors.hpp"
#include "pipesched/plan/runtime_plan.hpp"

namespace pipesched::cuda {

namespace detail {

/// A transport for the passes a run-time stream program runs: records the action in
/// progress (transfers are the executor's own copies).
struct runtime_pass_tracker {
  action_record* current;
  void on_action(runtime_step const& s) { *current = action_record::of(s); }
  void send(runtime_step const&, io const&) {}
  void recv(runtime_step const&, io const&) {}
};

} // namespace detail

/// The copy-mode stream program of a run-time table, checked by the rules the compiler applies
/// to a schedule type's program: verify_stream_program (the happens-before model: every read
/// after its write, every rewrite after the last read and the copy of the old boundary, no
/// cycle) and check_stream_order (each order made by one event, waits on the stream that
/// issued the event's latest record, passes in list order). Throws schedule_error (a
/// std::invalid_argument) with the check's sentence when the table's program fails. `costs`
/// only steer the issue order (detail::issue_units).
inline stream_program checked_stream_program(table const& t, cost_model const& costs = {}) {
  stream_program prog = derive_stream_program(t, transfer_mode::copy, costs);
  diagnostic d = prog.error;
  if (!d) d = verify_stream_program(t, prog);
  if (!d) d = check_stream_order(t, prog);
  if (d) throw schedule_error(d);
  return prog;
}

/// Runs a runtime_schedule (the table host::runtime_executor takes) with CUDA streams from one
/// host thread: one GPU with every rank (options::devices empty) or one rank per GPU, the
/// same options, streams, events, slots, graphs and errors as basic_executor. The constructor
/// derives and checks the table's stream program (checked_stream_program: a table the checks
/// refuse throws schedule_error naming the reason, before anything is allocated) and makes
/// the resources. An iteration issues the program's ops in one loop: an exec op calls rank r's
/// functor (`functors[r]`, an indexable range) with the action's runtime_step, as
/// host::runtime_executor does; a copy op copies the sender's slot into the receiver's on the
/// receiver's communication stream; waits and records as the program says.
///
/// `run(functors, origin)`, `capture(functors)` / `replay(stream)`: as basic_executor. A
/// functor that throws stops the issue, the streams drain, the exception is rethrown (rank and
/// action in last_failure()) and the executor can run again.
template <class Runtime> class basic_runtime_executor : public detail::stream_resources<Runtime> {
  using base = detail::stream_resources<Runtime>;

public:
  using stream_t = typename Runtime::stream_t;

  basic_runtime_executor(runtime_schedule s, options const& o, cost_model const& costs = {})
      : base(o, s.ranks, s.stages), schedule_(std::move(s)), program_(checked_stream_program(schedule_.lowered(), costs)) {
    std::vector<std::vector<std::size_t>> sizes(static_cast<std::size_t>(schedule_.ranks));
    for (int r = 0; r < schedule_.ranks; ++r)
      sizes[static_cast<std::size_t>(r)] = slot_capacities(schedule_, r, schedule_.slots(r), this->bytes_.data());
    this->setup(program_, sizes);
  }

  /// One iteration, ordered after the work on `origin` (null: the legacy default stream).
  template <class Functors> void run(Functors& functors, stream_t origin = nullptr) {
    check_functors(functors);
    this->run_iteration([&] { issue_program(functors); }, origin);
  }

  /// Records one iteration into a graph (on the executor's own capture stream); replay()
  /// runs it. Capturing again replaces the graph.
  template <class Functors> void capture(Functors& functors) {
    check_functors(functors);
    this->capture_iteration([&] { issue_program(functors); });
  }

  runtime_schedule const& schedule() const { return schedule_; }
  /// The checked stream program this executor issues.
  stream_program const& program() const { return program_; }
  int ranks() const { return schedule_.ranks; }

private:
  template <class Fs> void check_functors(Fs const& fs) const {
    static_assert(requires { fs.size(); fs[0]; },
                  "pipesched: a cuda::runtime_executor takes its stage functors as an indexable range (one per rank)");
    pipesched::detail::check_functor_count<-1>(fs, schedule_.ranks);
    schedule_.check_functor<std::remove_cvref_t<decltype(fs[0])>>();
  }

  template <class Functors> void issue_program(Functors& fs) {
    table const& t = schedule_.lowered();
    for (stream_op const& o : program_.ops) {
      switch (o.kind) {
      case stream_op_kind::wait: this->issue_wait(o); break;
      case stream_op_kind::record: this->issue_record(o); break;
      case stream_op_kind::exec: {
        int const r = o.rank;
        this->issue_exec(r, action_record::of(schedule_.steps(r)[o.action]), [&](action_record& current,
                                                                              boundary_views const& views, stream_t stream) {
          detail::runtime_pass_tracker tracker{&current};
          schedule_.run_step(r, o.action, fs[static_cast<std::size_t>(r)], tracker, views, stream);
        });
        break;
      }
      case stream_op_kind::copy: {
        int const r = o.rank; // the receiver
        action const& ra = t.lists[o.rank][o.action];
        int const q = ra.peer;
        action const& sa = t.lists[static_cast<std::size_t>(q)][o.peer_action];
        int const key = boundary_key(t, sa, field::in);
        std::size_t const bytes = key < 0 ? 0 : this->bytes_[static_cast<std::size_t>(key)];
        this->issue_copy(r, ra.out, q, sa.in, bytes, action_record::of(schedule_.steps(r)[o.action]));
        break;
      }
      case stream_op_kind::send:
      case stream_op_kind::recv: break; // rendezvous ops: not in a copy-mode program
      }
    }
  }

  runtime_schedule schedule_;
  stream_program program_;
};

} // namespace pipesched::cuda
