// End-to-end cost of the host-threads executor: one iteration of a schedule whose passes
// spin for a set time, p ranks on p threads of this process, boundaries of 4 KiB moved by
// the in-process channels.
//
//   BM_threads/<schedule>/p:<P>/pass_us:<T>/eager:<0|1>
//
// Counters: `us_per_action` is the iteration's wall time divided by the actions (compute
// passes and transfers) of all ranks; `ideal_us` is the simulator's makespan for the same
// pass times (transfers free) — or, where ranks outnumber cores, all ranks' busy time over
// the cores, whichever is longer — and `overhead_us_per_action` the difference per action.
// With pass_us 0 the iteration is all overhead. The same figure for MPI, one process per
// rank: bench/mpi/executor.cpp.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <pipesched/host/executor.hpp>
#include <pipesched/pipeline/simulate.hpp>
#include <pipesched/schedules/interleaved.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>

#include "support/timed_stage.hpp"

namespace {

using namespace pipesched;
using bench_support::timed_stage;

constexpr std::size_t boundary_bytes = 4096;

template <class S> void threads(benchmark::State& state) {
  double const pass_us = static_cast<double>(state.range(0));
  host::options o;
  o.slot_bytes = boundary_bytes;
  o.eager_bytes = state.range(1) ? boundary_bytes : 0;
  host::executor<S> ex(o);
  std::vector<timed_stage> fs(static_cast<std::size_t>(S::ranks));
  for (auto& f : fs) f.pass_us = pass_us;
  ex.run(fs); // warm-up
  auto const start = std::chrono::steady_clock::now();
  for (auto _ : state) ex.run(fs);
  double const us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
                    static_cast<double>(state.iterations());
  table const t = S::make();
  double const actions = static_cast<double>(t.total_actions());
  // ideal: the simulator's makespan with F = pass_us, fused B = 2 pass_us, free transfers,
  // or the busy time of all ranks shared out over the cores when ranks outnumber them
  simulation const sim = simulate(t, sim_costs{cost_model{pass_us, pass_us, pass_us, 0}});
  double busy = 0;
  for (double b : sim.busy) busy += b;
  unsigned const cores = std::max(1u, std::min(std::thread::hardware_concurrency(), unsigned(S::ranks)));
  double const ideal = std::max(sim.makespan, busy / cores);
  state.counters["us_per_action"] = us / actions;
  state.counters["ideal_us"] = ideal;
  state.counters["overhead_us_per_action"] = (us - ideal) / actions;
  state.counters["actions"] = actions;
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(actions));
  state.SetLabel(std::string(S::name) + " p" + std::to_string(S::ranks));
}

void args(benchmark::internal::Benchmark* b) {
  for (int pass_us : {0, 20})
    for (int eager : {0, 1}) b->Args({pass_us, eager});
  b->ArgNames({"pass_us", "eager"})->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(threads<one_f_one_b<ranks<2>, microbatches<32>>>)->Apply(args);
BENCHMARK(threads<one_f_one_b<ranks<4>, microbatches<32>>>)->Apply(args);
BENCHMARK(threads<interleaved_1f1b<ranks<4>, microbatches<32>, chunks<2>>>)->Apply(args);

} // namespace
