// np: 4
// Schedules chosen at run time on MPI: every registered training schedule at p = 4, m = 8,
// built at run time by every process (make_schedule), runs through mpi::runtime_executor
// with the compiled tests' MLP stage functor; each process's layers and the per-step losses
// equal the sequential reference to the last bit (compared with ==).
#include <cstdio>
#include <exception>
#include <string>

#include "../cpu/plan_mlp.hpp"
#include "pipesched/host/mpi.hpp"
#include "pipesched/schedules/registry.hpp"

namespace {

using namespace pipesched;

int failures = 0;

void expect(bool ok, std::string const& what) {
  if (ok) return;
  ++failures;
  std::fprintf(stderr, "FAILED: %s\n", what.c_str());
}

void train(char const* name, int rank) {
  table const t = make_schedule(name, params{4, 8});
  runtime_schedule const sched(t);
  mlp::config c;
  c.layers = 12;
  c.microbatches = 8;
  c.stages = sched.stages;
  mlp::model reference(c), piped(c);
  mpi::options o;
  o.slot_bytes = piped.boundary_bytes();
  mpi::runtime_executor ex(sched, MPI_COMM_WORLD, o);
  mlp::stage_functor f{&piped};
  int const loss_rank = t.rank_of(t.stages - 1);
  for (int step = 0; step < 3; ++step) {
    double const want = reference.reference_step(t.split_backward);
    ex.run(f);
    for (int s = 0; s < t.stages; ++s)
      if (t.rank_of(s) == rank) piped.apply(piped.first_layer(s), piped.end_layer(s));
    double const got = piped.apply(0, 0);
    if (rank == loss_rank) expect(got == want, std::string(name) + " step " + std::to_string(step) + ": loss");
  }
  for (int s = 0; s < t.stages; ++s)
    if (t.rank_of(s) == rank)
      expect(mlp::max_relative_difference(piped, reference, piped.first_layer(s), piped.end_layer(s)) == 0.0,
             std::string(name) + ": stage " + std::to_string(s) + " weights");
  MPI_Barrier(MPI_COMM_WORLD);
}

} // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 4) {
    if (rank == 0) std::fprintf(stderr, "run with 4 processes\n");
    MPI_Finalize();
    return 1;
  }
  int schedules = 0;
  try {
    for (auto const& e : schedule_registry) {
      if (e.name == std::string_view("forward-only")) continue;
      // dualpipe's mirror stages are copies of the model's stages (shared weights), which the
      // test MLP, one set of weights per table stage, does not model
      if (e.name == std::string_view("dualpipe")) continue;
      train(std::string(e.name).c_str(), rank);
      ++schedules;
    }
  } catch (std::exception const& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) std::printf("mpi.runtime_mlp: %d schedules: %s\n", schedules, total == 0 ? "OK" : "FAILED");
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
