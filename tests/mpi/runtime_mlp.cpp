// np: 4
// Schedules chosen at run time on MPI: every registered training schedule at p = 4, m = 8,
// built at run time by every process (make_schedule), runs through mpi::runtime_executor
// with the compiled tests' MLP stage functor; each process's layers and the per-step losses
// equal the sequential reference to the last bit (compared with ==). DualPipe included: its
// mirrored ranks exchange the gradients of the model stages they share (exchange_mirrored).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "../cpu/plan_mlp.hpp"
#include "pipesched/host/mpi.hpp"
#include "pipesched/schedules/registry.hpp"
#include "mpi_main.hpp"

namespace {

using namespace pipesched;

using mpi_test::expect;
using mpi_test::failures;

/// DualPipe on separate processes: rank r and its partner p-1-r hold the same two model
/// stages (r and p-1-r), each computing half of the micro-batches (direction A's stage s runs
/// on rank s, direction B's copy on rank p-1-s). Each sends the other the per-micro-batch
/// gradients it computed, so both hold every micro-batch's and sum them in micro-batch order
/// (the sum of the two copies' gradients, exactly as the sequential reference adds them).
/// The losses travel from the rank that computed each micro-batch's head to every rank.
void exchange_mirrored(mlp::model& net, table const& t, int rank) {
  int const p = t.ranks, m = t.microbatches, partner = p - 1 - rank;
  auto computed_on = [&](int stage, int mb) { return mb < m / 2 ? stage : p - 1 - stage; };
  int const held[2] = {std::min(rank, partner), std::max(rank, partner)}; // the same order on both
  for (int s : held)
    for (int l = net.first_layer(s); l < net.end_layer(s); ++l)
      for (int j = 0; j < m; ++j)
        for (std::vector<double>* g : {&net.weight_grad_of(j, l), &net.bias_grad_of(j, l)}) {
          int const count = static_cast<int>(g->size());
          if (computed_on(s, j) == rank)
            MPI_Send(g->data(), count, MPI_DOUBLE, partner, 7, MPI_COMM_WORLD);
          else
            MPI_Recv(g->data(), count, MPI_DOUBLE, partner, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
  for (int j = 0; j < m; ++j) MPI_Bcast(&net.loss_of(j), 1, MPI_DOUBLE, computed_on(p - 1, j), MPI_COMM_WORLD);
}

void train(char const* name, int rank) {
  table const t = make_schedule(name, params{4, 8});
  runtime_schedule const sched(t);
  // dualpipe's table stages p..2p-1 are copies of the model's stages 0..p-1
  bool const mirrored = std::string_view(name) == "dualpipe";
  int const model_stages = mirrored ? t.stages / 2 : t.stages;
  mlp::config c;
  c.layers = 12;
  c.microbatches = 8;
  c.stages = model_stages;
  mlp::model reference(c), piped(c);
  mpi::options o;
  o.slot_bytes = piped.boundary_bytes();
  mpi::runtime_executor ex(sched, MPI_COMM_WORLD, o);
  mlp::copies_of_model_stages<mlp::stage_functor> f;
  f.net = &piped;
  f.model_stages = model_stages;
  std::vector<int> held; // the model stages whose layers this process updates
  for (int s = 0; s < t.stages; ++s)
    if (t.rank_of(s) == rank && std::find(held.begin(), held.end(), s % model_stages) == held.end())
      held.push_back(s % model_stages);
  int const loss_rank = t.rank_of(t.stages - 1);
  for (int step = 0; step < 3; ++step) {
    double const want = reference.reference_step(t.split_backward);
    ex.run(f);
    if (mirrored) exchange_mirrored(piped, t, rank);
    for (int s : held) piped.apply(piped.first_layer(s), piped.end_layer(s));
    double const got = piped.apply(0, 0);
    if (mirrored || rank == loss_rank)
      expect(got == want, std::string(name) + " step " + std::to_string(step) + ": loss");
  }
  for (int s : held)
    expect(mlp::max_relative_difference(piped, reference, piped.first_layer(s), piped.end_layer(s)) == 0.0,
           std::string(name) + ": stage " + std::to_string(s) + " weights");
  MPI_Barrier(MPI_COMM_WORLD);
}

} // namespace

int main(int argc, char** argv) {
  return mpi_test::run(argc, argv, "mpi.runtime_mlp", 4, [](int rank, int, std::string& summary) {
    int schedules = 0;
    for (auto const& e : schedule_registry) {
      if (e.name == std::string_view("forward-only")) continue;
      train(std::string(e.name).c_str(), rank);
      ++schedules;
    }
    summary = std::to_string(schedules) + " schedules";
    return failures;
  });
}
