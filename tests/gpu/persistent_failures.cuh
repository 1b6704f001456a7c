// Test support: the persistent executor's failure scenarios, shared by the one-GPU test
// (persistent_errors.cu) and the several-GPU one (persistent_multi_gpu.cu), which run them
// with their own options (devices, blocks). Each ends an iteration with a failure, checks the
// persistent_error (kind, site, message) and then that the executor runs clean again. Checks
// go through gpu_test::expect, prefixed with the caller's label.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gpu_test.cuh"
#include "persistent_mlp.cuh"
#include "persistent_stamp.cuh"

namespace pfail {

/// The MLP's B of (stage, micro-batch) = (`fail_stage`, `fail_mb`) returns false in schedule S
/// (whose rank `fail_stage` holds stage `fail_stage`, as 1F1B's does): the error is a functor
/// failure at that rank whose message names `site`; afterwards 3 clean steps give the same
/// losses and weights, to the last bit, as 3 steps of a model that never failed (run by an
/// executor with `clean_options`).
template <class S>
void functor_failure(pipesched::cuda::persistent_options o, pipesched::cuda::persistent_options const& clean_options,
                     int fail_stage, int fail_mb, char const* site, std::string const& label) {
  using gpu_test::contains;
  using gpu_test::expect;
  mlp::model host(gpu_mlp::config_for<S>());
  pmlp::model failed(host), clean(host);
  o.slot_bytes = failed.boundary_bytes();
  pipesched::cuda::persistent_executor<S, pmlp::functor> px(o);
  pmlp::functor bad{failed.device()};
  bad.m.fail_stage = fail_stage;
  bad.m.fail_mb = fail_mb;
  std::vector<pmlp::functor> fs(S::ranks, bad);
  std::string message;
  try {
    px.run(fs);
  } catch (pipesched::cuda::persistent_error const& e) {
    message = e.what();
    expect(e.kind == pipesched::cuda::persistent_failure_kind::functor, "functor failure: kind");
    expect(e.site.rank == fail_stage, "functor failure: site rank");
  }
  std::printf("  %s: %s\n", label.c_str(), message.c_str());
  expect(contains(message, site), "functor failure: message names rank, pass, micro-batch");
  expect(contains(message, "reported a failure"), "functor failure: message says what happened");
  // rank 0 needs the failed B's gradient (1F1B: it runs B of every micro-batch after the ranks
  // above it), so it stopped in a wait, recorded through the stop records of rank 0's state
  expect(fail_stage == 0 || contains(message, "; rank 0 stopped at "), "functor failure: message says where rank 0 stopped");
  expect(px.last_failure().rank == fail_stage, "functor failure: last_failure");
  // usable again: 3 clean steps equal 3 steps of a model that never failed
  std::vector<pmlp::functor> good(S::ranks, pmlp::functor{failed.device()});
  std::vector<pmlp::functor> reference(S::ranks, pmlp::functor{clean.device()});
  pipesched::cuda::persistent_options ro = clean_options;
  ro.slot_bytes = clean.boundary_bytes();
  pipesched::cuda::persistent_executor<S, pmlp::functor> rx(ro);
  for (int step = 0; step < 3; ++step) {
    px.run(good);
    double const a = failed.apply_all(nullptr);
    rx.run(reference);
    double const b = clean.apply_all(nullptr);
    expect(a == b, "after a failure: step " + std::to_string(step) + " loss differs");
  }
  expect(pmlp::max_relative_difference(failed.parameters(), clean.parameters()) == 0,
         "after a failure: weights differ from a model that never failed");
}

/// GPipe, p = 2, m = 4: rank 0 spins 300 ms before each pass, waits have 20 ms (set here on
/// `o`), so rank 1's first receive gives up: a deadline failure naming that wait; the next
/// iteration (no spinning) is clean: every pass of both ranks runs (4 F + 4 B each), no
/// boundary mismatches.
inline void deadline(pipesched::cuda::persistent_options o, std::string const& label) {
  using gpu_test::contains;
  using gpu_test::expect;
  using S = pipesched::gpipe<pipesched::ranks<2>, pipesched::microbatches<4>>;
  o.slot_bytes = 1024;
  o.wait_timeout_ns = 20'000'000;
  pipesched::cuda::persistent_executor<S, pstamp::functor> px(o);
  gpu_test::device_ints c(3); // mismatches, then calls per rank
  std::vector<pstamp::functor> fs(S::ranks, pstamp::functor{c.get(), c.get() + 1, 7, 0, 300'000'000, -1});
  std::string message;
  try {
    px.run(fs);
  } catch (pipesched::cuda::persistent_error const& e) {
    message = e.what();
    expect(e.kind == pipesched::cuda::persistent_failure_kind::deadline, "deadline: kind");
  }
  std::printf("  %s: %s\n", label.c_str(), message.c_str());
  expect(contains(message, "rank 1 (RECV_F of stage 1, micro-batch 0)"), "deadline: message names the wait");
  expect(contains(message, "deadline"), "deadline: message says what happened");
  expect(contains(message, "; rank 0 stopped at "), "deadline: message says where rank 0 stopped after its spin");
  fs.assign(S::ranks, pstamp::functor{c.get(), c.get() + 1, 8, -1, 0, -1});
  c.zero();
  px.run(fs);
  std::vector<int> const h = c.read();
  expect(h[0] == 0 && h[1] == 8 && h[2] == 8, "deadline: the next iteration is clean");
}

} // namespace pfail
