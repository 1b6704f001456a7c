// Test support: checks both CUDA streams executors (the compile-time one and the run-time
// one) must pass on the emulated runtime, written once.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cpu/plan_support.hpp"
#include "support/emulated_cuda.hpp"

#include "pipesched/cuda/stream_resources.hpp"

namespace emu {

/// The 3rd copy of an iteration fails: cuda::error names the receiving rank, its RECV and
/// the runtime's error string; the streams drain; the next run is clean. `ex` runs 1F1B-like
/// tables whose first copies are activations, with `ranks` stamp-checking functors.
template <class Executor> void check_failing_copy(Executor& ex, int ranks) {
  using checker = plan_test::checking_functor;
  std::vector<checker> fs(static_cast<std::size_t>(ranks));
  std::vector<deferred<checker>> k;
  for (auto& f : fs) k.push_back({&f});
  the().fail_copy_at = 3;
  std::string what;
  try {
    ex.run(k);
  } catch (pipesched::cuda::error const& e) {
    what = e.what();
    CHECK(e.site.rank >= 0);
    CHECK(e.code == runtime::copy_failed);
    CHECK(pipesched::is_recv(e.site.action.kind()));
  }
  CHECK(what.find("pipesched: cudaMemcpyAsync failed on rank ") == 0);
  CHECK(what.find("RECV_F of stage") != std::string::npos);
  CHECK(what.find("emulated copy failure (injected)") != std::string::npos);
  for (auto const& s : the().streams) CHECK(s->queue.empty());
  the().fail_copy_at = 0;
  for (auto& f : fs) f = checker{}, f.salt = 99;
  ex.run(k);
  for (auto const& f : fs) CHECK(f.mismatches == 0);
}

} // namespace emu
