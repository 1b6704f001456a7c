// The streaming executor against the simulator's steady state: S stages whose pass spins a
// set time c, items pushed as fast as the window allows (a producer and a consumer thread).
//   - throughput (items/s) against the forward-only schedule's steady state: one item per c
//     (the busiest stage), or, with more stage threads than cores, cores / (S c);
//   - latency p50 and p99 (push to pop) against the fill time S c, the latency of one item
//     alone in the pipeline — also measured (an item pushed into an idle pipeline).
//
//   build/default/bench/bench_stream [pass_us=100] [items=2000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <pipesched/host/stream.hpp>
#include <pipesched/pipeline/simulate.hpp>
#include <pipesched/schedules/forward_only.hpp>
#include <pipesched/schedules/registry.hpp>

#include "support/timed_stage.hpp"

namespace {

using namespace pipesched;

struct spinning {
  double us = 100;
  template <class St> void forward(St const&, io const& x) {
    bench_support::spin_for(us);
    *x.out.as<unsigned char>() = *x.in.as<unsigned char>();
  }
};

double pct(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

} // namespace

int main(int argc, char** argv) {
  double const c = argc > 1 ? std::atof(argv[1]) : 100.0;
  int const items = argc > 2 ? std::atoi(argv[2]) : 2000;
  unsigned const cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("# pass %.0f us; %u cores\n", c, cores);
  std::printf("%6s %6s %12s %12s %7s %10s %10s %10s %12s\n", "stages", "window", "items/s", "predicted", "ratio",
              "p50 us", "p99 us", "fill us", "single us");
  for (int S : {2, 4})
    for (int window : {S, 2 * S}) {
      std::vector<spinning> fs(static_cast<std::size_t>(S), spinning{c});
      host::stream_options o;
      o.input_bytes = 64;
      o.output_bytes.assign(static_cast<std::size_t>(S), 64);
      o.window = window;
      // one item alone: the fill time
      double single = 0;
      {
        host::stream_executor<spinning> ex(fs, o);
        unsigned char in[64] = {};
        ex.push(in);
        (void)ex.pop();
        single = ex.latencies().front();
        ex.close();
      }
      host::stream_executor<spinning> ex(fs, o);
      auto const start = std::chrono::steady_clock::now();
      std::thread producer([&] {
        unsigned char in[64] = {};
        for (int k = 0; k < items; ++k) ex.push(in);
        ex.close();
      });
      while (ex.pop()) {
      }
      producer.join();
      double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      // the simulator's steady state: forward-only over S stages, cost c per pass (µs)
      table const t = make_schedule("forward-only", params{S, items});
      double const makespan_us = simulate(t, sim_costs{cost_model{c, 0, 0, 0}}).makespan;
      double const ideal = static_cast<double>(items) / (makespan_us * 1e-6);
      // with more stage threads than cores, the cores are the bottleneck
      double const predicted = std::min(ideal, static_cast<double>(cores) / (S * c * 1e-6));
      double const rate = items / seconds;
      std::printf("%6d %6d %12.0f %12.0f %7.3f %10.0f %10.0f %10.0f %12.0f\n", S, window, rate, predicted, rate / predicted,
                  pct(ex.latencies(), 0.5), pct(ex.latencies(), 0.99), S * c, single);
    }
  return 0;
}
