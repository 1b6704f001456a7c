// Test support shared by the persistent protocol's CPU tests (compile-time and run-time
// lists): the per-slot counts recounted from a lowered table, independently of
// derive_persistent, and the check of every counter after n iterations on host threads.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "pipesched/core/table.hpp"
#include "plan_mlp.hpp"
#include "plan_support.hpp"
#include "support/persistent_host.hpp"

namespace persistent_checks {

/// Per global slot, the boundaries it holds per iteration, how many of them a RECV brings,
/// its owner, and the ranks those RECVs come from (bit q), counted from the table.
struct slot_counts {
  std::vector<std::uint64_t> holds, recvs, senders;
  std::vector<int> owner;
};

inline slot_counts recount(pipesched::table const& t) {
  slot_counts c;
  for (int r = 0; r < t.ranks; ++r) {
    std::size_t const base = c.holds.size();
    std::size_t const n = base + static_cast<std::size_t>(t.slot_count[static_cast<std::size_t>(r)]);
    c.holds.resize(n, 0);
    c.recvs.resize(n, 0);
    c.senders.resize(n, 0);
    c.owner.resize(n, r);
    for (pipesched::action a : t.lists[static_cast<std::size_t>(r)]) {
      if (a.out == pipesched::no_slot) continue;
      ++c.holds[base + a.out];
      if (!pipesched::is_recv(a.kind)) continue;
      ++c.recvs[base + a.out];
      c.senders[base + a.out] |= std::uint64_t{1} << a.peer;
    }
  }
  return c;
}

/// After `iterations` iterations of a ranks-rank schedule whose counts are `want` (groups:
/// blocks per rank, empty: one each): every epoch is n where its rank's array is, every group
/// barrier a multiple of its group, filled[g] n times g's RECVs where g's owner waits on it,
/// freed[g] n times g's boundaries where each rank pushing into g waits on it, 0 elsewhere;
/// no block loaded from another rank's array.
inline void check_counters(emu_persistent::host_memory const& ex, slot_counts const& want, int ranks,
                           std::vector<int> const& groups, int iterations, std::string const& label) {
  bool const separate = ex.separate();
  auto const& l = ex.layout();
  std::uint64_t const n = static_cast<std::uint64_t>(iterations);
  for (int a = 0; a < (separate ? ranks : 1); ++a) { // the state arrays
    auto here = [&](int r) { return !separate || r == a; };
    for (int r = 0; r < ranks; ++r) {
      INFO(label, " array of rank ", a, ", rank ", r);
      CHECK(ex.word(l.epoch(r), a) == (here(r) ? n : 0));
      std::uint64_t const blocks = groups.empty() ? 1 : static_cast<std::uint64_t>(groups[static_cast<std::size_t>(r)]);
      CHECK(ex.word(l.barrier(r), a) % blocks == 0);
      if (!here(r)) CHECK(ex.word(l.barrier(r), a) == 0);
    }
    for (std::size_t g = 0; g < want.holds.size(); ++g) {
      INFO(label, " array of rank ", a, ", global slot ", g);
      bool const pushed_from_here = separate ? ((want.senders[g] >> a) & 1u) != 0 : want.senders[g] != 0;
      CHECK(ex.word(l.filled(static_cast<int>(g)), a) == (here(want.owner[g]) ? n * want.recvs[g] : 0));
      CHECK(ex.word(l.freed(static_cast<int>(g)), a) == (pushed_from_here ? n * want.holds[g] : 0));
    }
  }
  CHECK(ex.remote_loads() == 0);
}

/// A checking functor (plan_test::checking_functor, or route_checker for skip paths) as a
/// device functor: block 0 of the group stamps and checks (the others only share the push
/// copies that follow); a rank with slow_us sleeps in every pass. Takes compile-time steps
/// and runtime_steps alike (it reads the step through the object).
template <class Checker> struct checking_device_functor {
  Checker* c = nullptr;
  int slow_us = 0;
  template <class St> void forward(St s, pipesched::io const& x, emu_persistent::group const& g) { pass(s, x, g); }
  template <class St> void backward(St s, pipesched::io const& x, emu_persistent::group const& g) { pass(s, x, g); }
  template <class St> void backward_input(St s, pipesched::io const& x, emu_persistent::group const& g) { pass(s, x, g); }
  template <class St> void backward_weight(St s, pipesched::io const& x, emu_persistent::group const& g) { pass(s, x, g); }

private:
  template <class St> void pass(St s, pipesched::io const& x, emu_persistent::group const& g) {
    if (slow_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(slow_us));
    if (g.block_rank() != 0) return;
    if (s.kind == pipesched::op::forward) c->forward(s, x);
    else if (s.kind == pipesched::op::backward) c->backward(s, x);
    else if (s.kind == pipesched::op::backward_input) c->backward_input(s, x);
    else c->backward_weight(s, x);
  }
};

/// The checking functor with the optional forward_backward member: an overlapped pair
/// (DualPipe, DualPipe-V) arrives as one call, which runs its halves and counts the call.
template <class Checker> struct pairing_device_functor : checking_device_functor<Checker> {
  int* pairs = nullptr;
  template <class Sf, class Sb>
  void forward_backward(Sf sf, Sb sb, pipesched::io const& xf, pipesched::io const& xb, emu_persistent::group const& g) {
    if (g.block_rank() == 0) ++*pairs;
    this->forward(sf, xf, g);
    if (sb.kind == pipesched::op::backward) this->backward(sb, xb, g);
    else this->backward_input(sb, xb, g);
  }
};

/// The MLP's stage functor as a device functor: block 0 of the group runs the pass.
struct mlp_device_functor {
  mlp::stage_functor f;
  template <class St> void forward(St s, pipesched::io const& x, emu_persistent::group const& g) {
    if (g.block_rank() == 0) f.forward(s, x);
  }
  template <class St> void backward(St s, pipesched::io const& x, emu_persistent::group const& g) {
    if (g.block_rank() == 0) f.backward(s, x);
  }
  template <class St> void backward_input(St s, pipesched::io const& x, emu_persistent::group const& g) {
    if (g.block_rank() == 0) f.backward_input(s, x);
  }
  template <class St> void backward_weight(St s, pipesched::io const& x, emu_persistent::group const& g) {
    if (g.block_rank() == 0) f.backward_weight(s, x);
  }
};

template <class F> struct checker_of;
template <class C> struct checker_of<checking_device_functor<C>> {
  using type = C;
};
template <class C> struct checker_of<pairing_device_functor<C>> {
  using type = C;
};

/// Runs the lowered table t on `ex` (a host_persistent of its type, or a
/// host_persistent_runtime of it) `iterations` times with checking functors of type Functor
/// (routes: a skip table's routes for route_checker, else null): every boundary read is the
/// one written this iteration (salted stamps), every rank's passes in list order, with
/// forward_backward every overlapped pair one call; then every counter (check_counters).
template <class Functor, class Runner>
void run_checked_on(Runner& ex, pipesched::table const& t, std::string const& label, std::uint64_t seed,
                    std::vector<int> const& groups, int slow_rank, int iterations,
                    pipesched::table const* routes = nullptr) {
  using checker = typename checker_of<Functor>::type;
  constexpr bool pairing = requires(Functor f) { f.pairs; };
  int const ranks = t.ranks;
  std::vector<checker> cs(static_cast<std::size_t>(ranks));
  std::vector<int> pairs(static_cast<std::size_t>(ranks));
  std::vector<Functor> fs(static_cast<std::size_t>(ranks));
  int pair_calls = 0;
  for (int it = 0; it < iterations; ++it) {
    for (int r = 0; r < ranks; ++r) {
      std::size_t const k = static_cast<std::size_t>(r);
      cs[k] = checker{};
      cs[k].salt = static_cast<std::int32_t>(seed * 100 + static_cast<std::uint64_t>(it));
      if constexpr (requires { cs[k].routes = routes; }) cs[k].routes = routes;
      fs[k].c = &cs[k];
      fs[k].slow_us = r == slow_rank ? 300 : 0;
      pairs[k] = 0;
      if constexpr (pairing) fs[k].pairs = &pairs[k];
    }
    ex.run(fs);
    for (int r = 0; r < ranks; ++r) {
      checker const& f = cs[static_cast<std::size_t>(r)];
      INFO(label, " seed ", seed, " iteration ", it, " rank ", r, ": ", f.first_problem);
      CHECK(f.mismatches == 0);
      // with forward_backward every overlapped pair is one call; without, none is
      CHECK(pairs[static_cast<std::size_t>(r)] == (pairing ? plan_test::overlapped_pairs(t, r) : 0));
      pair_calls += pairs[static_cast<std::size_t>(r)];
      std::vector<pipesched::action> const want = plan_test::compute_list(t, r);
      REQUIRE(f.calls == static_cast<int>(want.size()));
      bool in_order = true;
      for (std::size_t k = 0; k < want.size() && k < checker::capacity; ++k) in_order = in_order && f.order[k] == want[k];
      CHECK(in_order);
    }
  }
  // the counters end at exactly n times their per-iteration counts: filled[g] where g's
  // owner waits on it, freed[g] where each rank pushing into g waits on it (none: 0)
  check_counters(ex, recount(t), ranks, groups, iterations, label);
  if constexpr (pairing) CHECK(pair_calls > 0); // the schedule has pairs: the member was called
}

} // namespace persistent_checks
