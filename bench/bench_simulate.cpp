// The simulators' speed on large tables: simulate() (compute passes, link latency on each
// dependency) and simulate_lowered() (transfers on per-rank communication streams).
// items_per_second: actions simulated per second (compute passes and transfers).
// The reference sizes of the analysis issue: p = 64, m = 1024, V-Half and interleaved (v = 2).
#include <benchmark/benchmark.h>

#include <string>

#include <pipesched/pipeline/simulate.hpp>
#include <pipesched/pipeline/simulate_lowered.hpp>
#include <pipesched/schedules/registry.hpp>

namespace {

pipesched::table const& lowered_table(std::string const& name, int p, int m) {
  static std::string key;
  static pipesched::table t;
  std::string k = name + "/" + std::to_string(p) + "/" + std::to_string(m);
  if (k != key) {
    t = pipesched::make_schedule(name, pipesched::params{p, m});
    key = k;
  }
  return t;
}

void run(benchmark::State& state, bool lowered, std::string const& name, int p, int m) {
  pipesched::table const& t = lowered_table(name, p, m);
  if (!t.ok()) {
    state.SkipWithError(pipesched::to_string(t.error).c_str());
    return;
  }
  pipesched::sim_costs costs{pipesched::cost_model{1, 2, 1, 0.1}};
  for (auto _ : state) {
    auto sim = lowered ? pipesched::simulate_lowered(t, costs) : pipesched::simulate(t, costs);
    benchmark::DoNotOptimize(sim.makespan);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(t.total_actions()));
  state.counters["actions"] = static_cast<double>(t.total_actions());
}

void simulate_schedule(benchmark::State& state, std::string const& name, int p, int m) { run(state, false, name, p, m); }
void simulate_lowered_schedule(benchmark::State& state, std::string const& name, int p, int m) {
  run(state, true, name, p, m);
}

} // namespace

BENCHMARK_CAPTURE(simulate_schedule, 1f1b_p8_m64, std::string("1f1b"), 8, 64)->Name("simulate/1f1b/p8/m64");
BENCHMARK_CAPTURE(simulate_schedule, v_half, std::string("v-half"), 64, 1024)
    ->Name("simulate/v-half/p64/m1024")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(simulate_schedule, interleaved, std::string("interleaved"), 64, 1024)
    ->Name("simulate/interleaved/p64/m1024")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(simulate_lowered_schedule, v_half_lowered, std::string("v-half"), 64, 1024)
    ->Name("simulate_lowered/v-half/p64/m1024")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(simulate_lowered_schedule, interleaved_lowered, std::string("interleaved"), 64, 1024)
    ->Name("simulate_lowered/interleaved/p64/m1024")
    ->Unit(benchmark::kMillisecond);
