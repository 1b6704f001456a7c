// np: 6
// Skip paths (each micro-batch visits its own stages, in an order of its own) on the MPI
// backend, one process per rank: skip schedule types on mpi::executor (cost-aware and
// rotation routes, given routes with swapped stages under a memory cap) and a skip table made
// at run time on mpi::runtime_executor, each with MPI_Isend and with MPI_Issend. Every
// boundary a pass reads is the one its route's neighbour wrote this iteration (salted stamps,
// the expected stage taken from the table's routes) and every process runs its passes in its
// list order.
#include <cstdio>
#include <string>
#include <vector>

#include "../cpu/plan_support.hpp"
#include "pipesched/host/mpi.hpp"
#include "pipesched/schedules/skip_paths.hpp"
#include "mpi_main.hpp"

namespace {

using namespace pipesched;

using mpi_test::expect;
using mpi_test::failures;

/// Two iterations of `ex` on this process's rank with a route checker over `routes`; the
/// passes it ran against `list` (its compute actions in list order).
template <class Executor, class Routes>
void check_rank(Executor& ex, Routes const& routes, std::vector<action> const& list, std::string const& name) {
  for (int it = 0; it < 2; ++it) {
    plan_test::route_checker<Routes> f;
    f.routes = &routes;
    f.salt = 100 + it;
    ex.run(f);
    expect(f.mismatches == 0, name + " iteration " + std::to_string(it) + ": " + f.first_problem);
    bool in_order = f.calls == static_cast<int>(list.size());
    for (std::size_t k = 0; in_order && k < list.size(); ++k) in_order = f.order[k] == list[k];
    expect(in_order, name + " iteration " + std::to_string(it) + ": passes not in list order");
  }
}

template <class S> void compile_time(int rank, bool synchronous) {
  mpi::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.synchronous = synchronous;
  mpi::executor<S> ex(MPI_COMM_WORLD, o);
  std::vector<action> list;
  for (std::size_t i = 0; i < S::lowered.size(static_cast<std::size_t>(rank)); ++i) {
    action const a = S::lowered.at(static_cast<std::size_t>(rank), i);
    if (is_compute(a.kind)) list.push_back(make_action(a.kind, a.stage, a.mb, a.chunk));
  }
  check_rank(ex, S::lowered, list, plan_test::label<S>() + (synchronous ? " (Ssend)" : " (Send)"));
  MPI_Barrier(MPI_COMM_WORLD);
}

void run_time(int rank, bool synchronous) {
  skip_config c;
  c.stages = 6;
  c.keep = 4;
  c.microbatches = 10;
  c.memory = 2;
  runtime_schedule const sched(make_skip(c), sim_costs{c.costs});
  mpi::options o;
  o.slot_bytes = plan_test::stamp_bytes;
  o.synchronous = synchronous;
  mpi::runtime_executor ex(sched, MPI_COMM_WORLD, o);
  std::vector<action> list;
  for (action const& a : sched.lowered().lists[static_cast<std::size_t>(rank)])
    if (is_compute(a.kind)) list.push_back(make_action(a.kind, a.stage, a.mb, a.chunk));
  check_rank(ex, sched.lowered(), list, std::string("make_skip s6 k4 m10 memory 2") + (synchronous ? " (Ssend)" : " (Send)"));
  MPI_Barrier(MPI_COMM_WORLD);
}

using set_swaps6 = path_set<6, path<0, 2, 1, 5>, path<0, 4, 3, 5>, path<0, 1, 3, 5>, path<0, 3, 2, 5>, path<0, 2, 4, 5>,
                            path<0, 1, 4, 5>>;

} // namespace

int main(int argc, char** argv) {
  return mpi_test::run(argc, argv, "mpi.skip_paths", 6, [](int rank, int size, std::string& summary) {
    for (bool synchronous : {false, true}) {
      compile_time<skip_paths<4, stages<6>, microbatches<8>>>(rank, synchronous);
      compile_time<schedule<skip_paths_family<4, 0, path_layout::last, path_method::rotation>, stages<6>,
                            microbatches<4>>>(rank, synchronous);
      compile_time<schedule<given_paths_family<set_swaps6, path_layout::last, 2>, stages<6>, microbatches<6>>>(
          rank, synchronous);
      run_time(rank, synchronous);
    }
    summary = "4 skip schedules x 2 transports on " + std::to_string(size) + " processes";
    return failures;
  });
}
