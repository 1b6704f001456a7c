// gpu.executor_mlp's training (see executor_mlp.cu), shared by its parts: part k
// (executor_mlp/part_<k>.cu, its own translation unit) trains the schedules at the indices i of
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

namespace executor_mlp_test {

using gpu_test::expect;
using gpu_test::loss_message;
using gpu_test::rel;

constexpr double tolerance = 1e-10;

template <class S> void train() {
  constexpr int steps = 3;
  gpu_mlp::host_training<S> host(12);
  gpu_mlp::model gpu(host.model); // the same initial weights and data
  pipesched::cuda::executor<S> gx({.slot_bytes = gpu.boundary_bytes()});
  std::vector<gpu_mlp::stage_functor> gf(S::ranks, gpu_mlp::stage_functor{&gpu});
  std::string const name = plan_test::label<S>();
  for (int step = 0; step < steps; ++step) {
    double const want = host.step();
    gx.run(gf);
    double const got = gpu.apply_all(nullptr);
    expect(rel(got, want) <= tolerance, loss_message(name, step, got, "host", want));
  }
  double const d = gpu_mlp::max_relative_difference(gpu, host.model);
  expect(d <= tolerance, name + ": weights differ by " + std::to_string(d));
  std::printf("  %-22s loss and weights within %.1e of the host backend (largest %.2e)\n", name.c_str(), tolerance, d);
}

/// The schedules trained, and into how many parts (translation units) they are split.
using schedules = plan_test::training_schedules<4, 8>;
inline constexpr std::size_t parts = 4;

/// Trains part Part's slice of the schedules.
template <std::size_t Part> void run_part() {
  plan_test::for_each_type_in_part<Part, parts>(schedules{}, []<class S>(S*) { train<S>(); });
}

// Defined in executor_mlp/part_<k>.cu.
void part_0();
void part_1();
void part_2();
void part_3();

} // namespace executor_mlp_test
