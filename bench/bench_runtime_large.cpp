// A schedule chosen at run time at a size no compiler should unroll: p = 64 ranks, m = 1024
// micro-batches, on host threads with trivial stages (each pass touches its views' first
// bytes; boundaries of 64 bytes). Times, for 1F1B and ZB-H1:
//   build     make_schedule (generate and lower)
//   check     runtime_schedule (verify, per-action steps and boundary keys)
//   executor  host::runtime_executor (buffers, channels, 64 threads)
//   iteration one run(functors)
//
//   build/default/bench/bench_runtime_large [p=64] [m=1024]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <pipesched/host/executor.hpp>
#include <pipesched/schedules/registry.hpp>

namespace {

using namespace pipesched;
using clock_type = std::chrono::steady_clock;

struct trivial {
  unsigned sum = 0;
  void touch(io const& x) {
    if (x.in) sum += *x.in.as<unsigned char>();
    if (x.out) *x.out.as<unsigned char>() = static_cast<unsigned char>(sum);
  }
  template <class St> void forward(St const&, io const& x) { touch(x); }
  template <class St> void backward(St const&, io const& x) { touch(x); }
  template <class St> void backward_input(St const&, io const& x) { touch(x); }
  template <class St> void backward_weight(St const&, io const& x) { touch(x); }
};

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

} // namespace

int main(int argc, char** argv) {
  int const p = argc > 1 ? std::atoi(argv[1]) : 64;
  int const m = argc > 2 ? std::atoi(argv[2]) : 1024;
  std::printf("%-8s %5s %5s %9s %9s %9s %9s %11s %12s\n", "schedule", "p", "m", "actions", "build s", "check s",
              "executor s", "iteration s", "us/action");
  for (char const* name : {"1f1b", "zb-h1"}) {
    auto t0 = clock_type::now();
    table t = make_schedule(name, params{p, m});
    double const build = seconds_since(t0);
    if (!t.ok()) {
      std::printf("%s: %s\n", name, to_string(t.error).c_str());
      return 1;
    }
    std::size_t const actions = t.total_actions();
    t0 = clock_type::now();
    runtime_schedule sched(std::move(t));
    double const check = seconds_since(t0);
    t0 = clock_type::now();
    host::runtime_executor ex(sched, {.slot_bytes = 64});
    double const make = seconds_since(t0);
    std::vector<trivial> fs(static_cast<std::size_t>(p));
    t0 = clock_type::now();
    ex.run(fs);
    double const run = seconds_since(t0);
    std::printf("%-8s %5d %5d %9zu %9.3f %9.3f %9.3f %11.3f %12.3f\n", name, p, m, actions, build, check, make, run,
                run * 1e6 / static_cast<double>(actions));
  }
  return 0;
}
