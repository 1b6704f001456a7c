// np: 4
// The MLP trained 3 steps with every schedule at p = 4 on the MPI backend, one process per
// rank, MPI_Isend/MPI_Irecv in the lowered order (and once more with MPI_Issend,
// which completes only at the matching receive): each process's own layers and, on the
// loss's rank, the per-step losses equal the sequential reference computed in-process to
// the last bit (compared with ==).
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>

#include "../cpu/plan_mlp.hpp"
#include "../cpu/plan_support.hpp"
#include "pipesched/host/mpi.hpp"
#include "mpi_main.hpp"

namespace {

using namespace pipesched;

using mpi_test::expect;
using mpi_test::failures;

template <class S> void train(int rank, bool synchronous) {
  constexpr int steps = 3;
  mlp::config c;
  c.layers = 12;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model reference(c), piped(c);
  mlp::stage_functor f{&piped};
  pipesched::mpi::options o;
  o.slot_bytes = piped.boundary_bytes();
  o.synchronous = synchronous;
  pipesched::mpi::executor<S> ex(MPI_COMM_WORLD, o);
  table const t = S::make();
  int const loss_rank = t.rank_of(t.stages - 1);
  std::string const name = plan_test::label<S>() + (synchronous ? " (Ssend)" : " (Send)");
  for (int step = 0; step < steps; ++step) {
    double const want = reference.reference_step(S::lowered.split_backward);
    ex.run(f);
    for (int s = 0; s < t.stages; ++s)
      if (t.rank_of(s) == rank) piped.apply(piped.first_layer(s), piped.end_layer(s));
    double const got = piped.apply(0, 0); // the loss only
    if (rank == loss_rank)
      expect(got == want, // to the last bit
             name + " step " + std::to_string(step) + ": loss " + std::to_string(got) + " vs " + std::to_string(want));
  }
  expect(piped.stale_inputs() == 0, name + ": a saved input changed before its backward");
  for (int s = 0; s < t.stages; ++s) {
    if (t.rank_of(s) != rank) continue;
    double const d = mlp::max_relative_difference(piped, reference, piped.first_layer(s), piped.end_layer(s));
    expect(d == 0.0, name + ": stage " + std::to_string(s) + " weights differ by " + std::to_string(d));
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

} // namespace

int main(int argc, char** argv) {
  return mpi_test::run(argc, argv, "mpi.plan_mlp", 4, [](int rank, int size, std::string& summary) {
    int schedules = 0;
    plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, [&]<class S>(S*) {
      train<S>(rank, false);
      train<S>(rank, true);
      ++schedules;
    });
    summary = std::to_string(schedules) + " schedules x 2 transports on " + std::to_string(size) + " processes";
    return failures;
  });
}
