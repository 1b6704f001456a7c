// np: 3
// Failures never hang, across processes: under mpiexec with 3 processes (one GPU each),
// the middle rank's stage functor throws at the forward of micro-batch 2. Rank 1 must end
// with its functor's exception; ranks 0 and 2 with cuda::transport_error naming rank 1 as
// the failing rank and the edge they were on — all within the deadline (20 s). Each process
// checks its own outcome; none may hang (ctest's timeout would say so). Skipped (77) when
// the node has fewer GPUs than processes.
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "nccl_mpi_test.cuh"

#include "pipesched/schedules/one_f_one_b.hpp"

using namespace pipesched;

namespace {
struct throwing : nccl_test::stamping {
  bool armed = false;
  template <class St> void forward(St s, io const& x) {
    if (armed && St::mb == 2) throw std::runtime_error("injected failure");
    nccl_test::stamping::forward(s, x);
  }
};
} // namespace

int main(int argc, char** argv) {
  nccl_test::mpi_start const run = nccl_test::start_mpi(&argc, &argv);
  if (!run.enough_gpus) {
    MPI_Finalize();
    return nccl_test_skipped;
  }
  int const rank = run.rank;
  using S = one_f_one_b<stages<3>, microbatches<6>>;
  bool ok = false;
  auto const t0 = std::chrono::steady_clock::now();
  std::string what = "(no exception)";
  try {
    cuda::nccl_options o;
    o.slot_bytes = 4096;
    o.deadline = std::chrono::seconds(20);
    auto p = cuda::nccl_from_mpi<S>(o);
    int* bad = nullptr;
    cudaMalloc(&bad, sizeof(int));
    throwing f;
    f.bad = bad;
    f.salt = 1;
    p.run(f); // one good iteration first
    f.armed = rank == 1;
    f.salt = 2;
    p.run(f);
  } catch (cuda::transport_error const& e) {
    what = e.what();
    ok = rank != 1 && e.failed_rank == 1 && (e.edge_from == rank || e.edge_to == rank);
  } catch (std::exception const& e) {
    what = e.what();
    ok = rank == 1 && what == "injected failure";
  }
  double const s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ok = ok && s < 20.0 + 5.0;
  std::printf("rank %d after %.2f s: %s: %s\n", rank, s, ok ? "as expected" : "WRONG", what.c_str());
  std::fflush(stdout);
  // no collective after a failure: each process reports alone
  MPI_Finalize();
  return ok ? 0 : 1;
}
