// gpu.persistent_mlp's training (see persistent_mlp.cu), shared by its parts: part k
// (persistent_mlp/part_<k>.cu, its own translation unit) trains the schedules at the indices i of
// the list with i % parts == k (plan_test::for_each_type_in_part); those slices partition the
// indices, and main calls part_0 .. part_4 once each, so every schedule is trained
// exactly once per block-group setting.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_test.cuh"
#include "persistent_mlp.cuh"

#include "../cpu/plan_support.hpp"
#include "pipesched/cuda/executor.cuh"
#include "pipesched/host/executor.hpp"

namespace persistent_mlp_test {

using gpu_test::expect;
using gpu_test::loss_message;
using gpu_test::rel;

constexpr double tolerance = 1e-10;

template <class S> void train(std::vector<int> const& blocks) {
  constexpr int steps = 3;
  gpu_mlp::host_training<S> host(12);
  gpu_mlp::model streams_model(host.model);
  pmlp::model persistent_model(host.model);
  pipesched::cuda::executor<S> sx({.slot_bytes = streams_model.boundary_bytes()});
  pipesched::cuda::persistent_options po;
  po.slot_bytes = persistent_model.boundary_bytes();
  po.blocks = blocks;
  po.threads_per_block = 128;
  pipesched::cuda::persistent_executor<S, pmlp::functor> px(po);
  std::vector<gpu_mlp::stage_functor> sf(S::ranks, gpu_mlp::stage_functor{&streams_model});
  std::vector<pmlp::functor> pf(S::ranks, pmlp::functor{persistent_model.device()});
  std::string const name = plan_test::label<S>() + (blocks.empty() ? " (blocks by cost)" : " (blocks by hand)");
  for (int step = 0; step < steps; ++step) {
    double const want = host.step();
    sx.run(sf);
    double const streams = streams_model.apply_all(nullptr);
    px.run(pf);
    double const got = persistent_model.apply_all(nullptr);
    expect(got == streams, loss_message(name, step, got, "streams executor", streams));
    expect(rel(got, want) <= tolerance, loss_message(name, step, got, "host", want));
  }
  std::vector<double> const p = persistent_model.parameters();
  double const d_streams = pmlp::max_relative_difference(p, pmlp::parameters(streams_model));
  double const d_host = pmlp::max_relative_difference(p, pmlp::parameters(host.model));
  expect(d_streams == 0, name + ": weights differ from the streams executor's by " + std::to_string(d_streams));
  expect(d_host <= tolerance, name + ": weights differ from the host backend's by " + std::to_string(d_host));
  std::string groups;
  for (int g : px.block_groups()) groups += std::to_string(g) + " ";
  std::printf("  %-34s groups [ %s] of %d resident; = streams, host within %.2e\n", name.c_str(), groups.c_str(),
              px.resident_blocks(), d_host);
}

/// The schedules trained, and into how many parts (translation units) they are split.
using schedules = pmlp::schedules<4, 8>;
inline constexpr std::size_t parts = 5; // one schedule each: two in one unit cost 0.55 of the unsplit one

/// Trains part Part's slice of the schedules.
template <std::size_t Part> void run_part() {
  plan_test::for_each_type_in_part<Part, parts>(schedules{}, []<class S>(S*) {
    train<S>({});
    train<S>({1, 3, 2, 2});
  });
}

// Defined in persistent_mlp/part_<k>.cu.
void part_0();
void part_1();
void part_2();
void part_3();
void part_4();

} // namespace persistent_mlp_test
