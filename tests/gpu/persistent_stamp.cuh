// Test support: a device functor for pipesched::cuda::persistent_executor that fills every
// boundary it writes with a pattern naming its producer (what, stage, micro-batch, an
// iteration salt, the word's index), written by all threads of the group, and checks every
// boundary it reads against the pattern its producer must have written (straight routes:
// stage s reads stage s-1's activation and stage s+1's gradient). Counts passes per rank and
// mismatching words in device memory. Reads the step through the object: compile-time steps
// and runtime_steps alike. One rank can spin before each pass (a slow stage).
#pragma once

#include <cuda_runtime.h>

#include "pipesched/cuda/persistent.cuh"

namespace pstamp {

__device__ inline unsigned pattern(int what, int stage, int mb, int salt, unsigned i) {
  unsigned h = static_cast<unsigned>(what) * 0x9e3779b9u ^ static_cast<unsigned>(stage) * 0x85ebca6bu ^
               static_cast<unsigned>(mb) * 0xc2b2ae35u ^ static_cast<unsigned>(salt) * 0x27d4eb2fu;
  return h ^ (i * 0x165667b1u);
}

struct functor {
  int* mismatches = nullptr; ///< one counter
  int* calls = nullptr;      ///< one per rank
  int salt = 0;
  int slow_rank = -1;
  long long slow_ns = 0;     ///< the slow rank spins this long before each pass
  int fail_rank = -1;        ///< this rank's passes report a failure (-1: none)

  template <class St> __device__ bool forward(St s, pipesched::io const& x, pipesched::cuda::device_group const& g) {
    return pass(s, x, g);
  }
  template <class St> __device__ bool backward(St s, pipesched::io const& x, pipesched::cuda::device_group const& g) {
    return pass(s, x, g);
  }
  template <class St>
  __device__ bool backward_input(St s, pipesched::io const& x, pipesched::cuda::device_group const& g) {
    return pass(s, x, g);
  }
  template <class St>
  __device__ bool backward_weight(St s, pipesched::io const& x, pipesched::cuda::device_group const& g) {
    return pass(s, x, g);
  }

private:
  __device__ static unsigned long long now() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
  }
  __device__ void check(pipesched::view const& v, int what, int stage, int mb, pipesched::cuda::device_group const& g) const {
    unsigned const* p = v.as<unsigned>();
    int bad = 0;
    for (unsigned i = static_cast<unsigned>(g.thread_rank()); i < v.bytes / 4; i += static_cast<unsigned>(g.num_threads()))
      bad += p[i] != pattern(what, stage, mb, salt, i);
    if (bad) atomicAdd(mismatches, bad);
  }
  __device__ void put(pipesched::view const& v, int what, int stage, int mb, pipesched::cuda::device_group const& g) const {
    unsigned* p = v.as<unsigned>();
    for (unsigned i = static_cast<unsigned>(g.thread_rank()); i < v.bytes / 4; i += static_cast<unsigned>(g.num_threads()))
      p[i] = pattern(what, stage, mb, salt, i);
  }
  template <class St> __device__ bool pass(St const& s, pipesched::io const& x, pipesched::cuda::device_group const& g) const {
    if (x.rank == slow_rank) {
      unsigned long long const start = now();
      while (now() - start < static_cast<unsigned long long>(slow_ns)) {
      }
    }
    if (x.rank == fail_rank) return false;
    if (g.thread_rank() == 0) atomicAdd(calls + x.rank, 1);
    if (s.kind == pipesched::op::forward) {
      if (s.has_in) check(x.in, 1, s.stage - 1, s.mb, g);
      if (s.has_out) put(x.out, 1, s.stage, s.mb, g);
    } else {
      if (s.has_in) check(x.in, 2, s.stage + 1, s.mb, g);
      if (s.has_aux) check(x.aux, 1, s.stage - 1, s.mb, g);
      if (s.kind != pipesched::op::backward_weight && s.has_out) put(x.out, 2, s.stage, s.mb, g);
    }
    return true;
  }
};

} // namespace pstamp
