// gpu.runtime_executor_mlp's training (see runtime_executor_mlp.cu), shared by its parts: part k
// (runtime_executor_mlp/part_<k>.cu, its own translation unit) trains the schedules at the indices i of
// the list with i % parts == k (plan_test::for_each_type_in_part); those slices partition the
// indices, and main calls part_0 .. part_3 once each, so every schedule is trained
// exactly once.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_mlp.cuh"
#include "gpu_test.cuh"

#include "../cpu/plan_support.hpp"
#include "pipesched/cuda/executor.cuh"
#include "pipesched/host/executor.hpp"

namespace runtime_executor_mlp_test {

using gpu_test::expect;
using gpu_test::loss_message;
using gpu_test::rel;

constexpr double tolerance = 1e-10;

template <class S> void train() {
  constexpr int steps = 3;
  gpu_mlp::host_training<S> host(12);
  gpu_mlp::model compiled(host.model), runtime(host.model); // the same initial weights and data
  pipesched::cuda::executor<S> cx({.slot_bytes = compiled.boundary_bytes()});
  pipesched::cuda::runtime_executor rx(pipesched::runtime_schedule(pipesched::thaw(S::lowered)),
                                       {.slot_bytes = runtime.boundary_bytes()}, S::parameters.cost);
  std::vector<gpu_mlp::stage_functor> cf(S::ranks, gpu_mlp::stage_functor{&compiled});
  std::vector<gpu_mlp::stage_functor> rf(S::ranks, gpu_mlp::stage_functor{&runtime});
  std::string const name = plan_test::label<S>();
  for (int step = 0; step < steps; ++step) {
    double const want = host.step();
    cx.run(cf);
    double const got_compiled = compiled.apply_all(nullptr);
    rx.run(rf);
    double const got_runtime = runtime.apply_all(nullptr);
    expect(got_runtime == got_compiled,
           loss_message(name, step, got_runtime, "compile-time executor", got_compiled) + " (run-time executor)");
    expect(rel(got_runtime, want) <= tolerance, loss_message(name, step, got_runtime, "host", want));
  }
  expect(gpu_mlp::parameters(runtime) == gpu_mlp::parameters(compiled), name + ": the two executors' weights differ");
  double const dr = gpu_mlp::max_relative_difference(runtime, host.model);
  expect(dr <= tolerance, name + ": weights differ by " + std::to_string(dr));
  std::printf("  %-22s run-time executor equals the compile-time one; within %.1e of the host (largest %.2e)\n",
              name.c_str(), tolerance, dr);
}

/// The schedules trained, and into how many parts (translation units) they are split.
using schedules = plan_test::training_schedules<4, 8>;
inline constexpr std::size_t parts = 4;

/// Trains part Part's slice of the schedules.
template <std::size_t Part> void run_part() {
  plan_test::for_each_type_in_part<Part, parts>(schedules{}, []<class S>(S*) { train<S>(); });
}

// Defined in runtime_executor_mlp/part_<k>.cu.
void part_0();
void part_1();
void part_2();
void part_3();

} // namespace runtime_executor_mlp_test
