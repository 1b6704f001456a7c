// Test support: the persistent kernel's protocol on host threads. One thread per block of
// every rank's block group runs pipesched::cuda::run_rank_block — the code the kernel runs —
// with an environment of std::atomic_ref acquire/release operations on the same state
// layout, random yields and sleeps in its back-off and copies. A functor here is a device
// functor's shape on the host: members (Step, io const&, group const&).
//
// With settings::separate_memories each rank has its own state array, as each GPU has with
// several GPUs: what a rank writes into another's array is the peer path, and every load a
// block makes outside its own rank's array is counted (remote_loads): the protocol promises
// none (every wait polls local memory).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "pipesched/cuda/persistent_protocol.hpp"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/functors.hpp"

namespace emu_persistent {

/// The environment of one host thread standing for one block of one thread.
struct host_env {
  std::mt19937_64 rng{1};
  int jitter = 0; ///< 0: none; n: a random yield in 1 of n copies, short random sleeps in back-off
  /// Test of the tests: loads of words in [lie_from, lie_to) claim every target is reached
  /// (a consumer that does not wait), 0 0: none.
  std::size_t lie_from = 0, lie_to = 0;
  std::uint64_t* base = nullptr; ///< this rank's state array
  std::size_t words = 0;
  std::atomic<long>* remote_loads = nullptr; ///< counts loads outside [base, base + words)

  bool leader() const { return true; }
  void block_sync() const {}
  bool block_any(bool b) const { return b; }
  int thread() const { return 0; }
  int threads() const { return 1; }
  static std::atomic_ref<std::uint64_t> ref(std::uint64_t* w) { return std::atomic_ref<std::uint64_t>(*w); }
  void note(std::uint64_t const* w) const {
    if (remote_loads && (w < base || w >= base + words)) remote_loads->fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t load_acquire(std::uint64_t* w) const {
    note(w);
    if (w >= base + lie_from && w < base + lie_to) return ~std::uint64_t{0};
    return ref(w).load(std::memory_order_acquire);
  }
  std::uint64_t load_relaxed(std::uint64_t* w) const {
    note(w);
    return ref(w).load(std::memory_order_relaxed);
  }
  void add_release(std::uint64_t* w, std::uint64_t v) const { ref(w).fetch_add(v, std::memory_order_release); }
  std::uint64_t add_acq_rel(std::uint64_t* w, std::uint64_t v) const { return ref(w).fetch_add(v, std::memory_order_acq_rel); }
  bool take(std::uint64_t* w, std::uint64_t v) const {
    std::uint64_t expected = 0;
    return ref(w).compare_exchange_strong(expected, v, std::memory_order_acq_rel);
  }
  void store_release(std::uint64_t* w, std::uint64_t v) const { ref(w).store(v, std::memory_order_release); }
  std::uint64_t now_ns() const {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
  }
  void backoff(unsigned spin) {
    if (spin < 8) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(spin < 64 ? 2 : 50));
  }
  void copy(void* dst, void const* src, std::size_t bytes, int part, int parts) {
    std::size_t const lo = bytes * static_cast<std::size_t>(part) / static_cast<std::size_t>(parts);
    std::size_t const hi = bytes * static_cast<std::size_t>(part + 1) / static_cast<std::size_t>(parts);
    if (jitter > 0 && rng() % static_cast<unsigned>(jitter) == 0) std::this_thread::yield();
    if (hi > lo) std::memcpy(static_cast<unsigned char*>(dst) + lo, static_cast<unsigned char const*>(src) + lo, hi - lo);
  }
};

using group = pipesched::cuda::basic_group<host_env>;

/// Settings of a host run of the persistent protocol.
struct host_settings {
  std::size_t slot_bytes = 0;
  std::vector<int> groups{};            ///< blocks per rank; empty: one each
  std::uint64_t wait_ns = 5'000'000'000; ///< a wait's deadline
  int jitter = 8;
  std::uint64_t seed = 1;
  bool separate_memories = false; ///< one state array per rank (the several-GPU layout)
};

/// The persistent executor's host part over host memory and threads: slots of every rank in
/// global slot order, the state words (one array, or one per rank), block groups; launch()
/// starts one thread per block, joins them all, and throws std::runtime_error with the
/// recorded failure (then resets every state array, as the device executor does).
class host_memory {
public:
  using settings = host_settings;

  /// Word w of the state array rank r uses (with one array: the same for every rank).
  std::uint64_t word(std::size_t w, int r = 0) const { return state_ptrs_[static_cast<std::size_t>(r)][w]; }
  bool separate() const { return s_.separate_memories; }
  /// Loads a block made outside its own rank's state array (separate memories only).
  long remote_loads() const { return remote_loads_.load(); }
  pipesched::cuda::persistent_layout const& layout() const { return layout_; }
  std::uint64_t iterations() const { return iterations_; }

  /// Test of the tests: waits on words [from, to) never wait.
  std::size_t lie_from = 0, lie_to = 0;

protected:
  /// `slots[r]`: rank r's slot count.
  host_memory(settings s, int ranks, int stages, std::vector<int> const& slots) : s_(std::move(s)), ranks_(ranks) {
    layout_.ranks = ranks;
    int total = 0;
    for (int n : slots) total += n;
    layout_.slots = total;
    states_.assign(s_.separate_memories ? static_cast<std::size_t>(ranks) : 1,
                   std::vector<std::uint64_t>(layout_.words(), 0));
    for (int r = 0; r < ranks; ++r) state_ptrs_.push_back(memory(r).data());
    if (s_.groups.empty()) s_.groups.assign(static_cast<std::size_t>(ranks), 1);
    pipesched::cuda::check_block_groups(s_.groups, ranks, 1 << 20);
    bytes_.assign(2 * static_cast<std::size_t>(stages), s_.slot_bytes);
    for (int r = 0; r < ranks; ++r)
      for (int k = 0; k < slots[static_cast<std::size_t>(r)]; ++k) storage_.emplace_back(s_.slot_bytes, 0xcd);
    for (auto& b : storage_) views_.push_back(pipesched::view{b.data(), b.size()});
  }

  /// One iteration: body(env, ctx, r, block, blocks) on one thread per block of every rank.
  template <class Body> void launch(Body body) {
    pipesched::cuda::persistent_context const ctx{state_ptrs_.data(), layout_, views_.data(), bytes_.data(), s_.wait_ns};
    std::vector<std::thread> threads;
    std::uint64_t seed = s_.seed * 7919 + iterations_ * 104729;
    for (int r = 0; r < ranks_; ++r)
      for (int b = 0; b < s_.groups[static_cast<std::size_t>(r)]; ++b) {
        host_env env;
        env.rng.seed(seed++);
        env.jitter = s_.jitter;
        env.base = memory(r).data();
        env.words = layout_.words();
        env.remote_loads = s_.separate_memories ? &remote_loads_ : nullptr;
        env.lie_from = lie_from;
        env.lie_to = lie_to;
        int const blocks = s_.groups[static_cast<std::size_t>(r)];
        threads.emplace_back([body, ctx, env, r, b, blocks]() mutable { body(env, ctx, r, b, blocks); });
      }
    for (auto& t : threads) t.join();
    ++iterations_;
    std::string const failure = pipesched::cuda::describe_persistent_failure(layout_, states_[0].data());
    if (!failure.empty()) {
      for (auto& st : states_) std::fill(st.begin(), st.end(), 0); // the executor's reset after an abort
      throw std::runtime_error(failure);
    }
  }

private:
  std::vector<std::uint64_t>& memory(int r) { return states_[s_.separate_memories ? static_cast<std::size_t>(r) : 0]; }

  settings s_;
  int ranks_ = 0;
  pipesched::cuda::persistent_layout layout_{};
  std::vector<std::vector<std::uint64_t>> states_;
  std::vector<std::uint64_t*> state_ptrs_;
  std::atomic<long> remote_loads_{0};
  std::vector<std::size_t> bytes_;
  std::vector<std::vector<unsigned char>> storage_;
  std::vector<pipesched::view> views_;
  std::uint64_t iterations_ = 0;
};

/// Schedule type S on host threads: each block runs run_rank_block<S, R>.
template <class S> class host_persistent : public host_memory {
public:
  explicit host_persistent(settings s) : host_memory(std::move(s), S::ranks, S::stages, slot_counts()) {}

  /// One iteration; `fs` holds one functor per rank: a vector of one type, or a tuple of one
  /// type per rank. They are packed into one buffer as the device executor packs them
  /// (functor_pack), and each block thread of rank r calls rank r's functor there.
  template <class Fs> void run(Fs const& fs) {
    using F = typename functor_type<Fs>::type;
    std::vector<unsigned char> packed(pipesched::cuda::functor_pack<F, S::ranks>::bytes + 1);
    pipesched::cuda::pack_functors<F, S::ranks>(fs, packed.data());
    unsigned char* const buffer = packed.data();
    launch([buffer](host_env& env, pipesched::cuda::persistent_context const& ctx, int r, int b, int blocks) {
      pipesched::detail::with_rank<S::ranks>(r, [&](auto rank) {
        constexpr int R = decltype(rank)::value;
        auto& f = pipesched::cuda::functor_in<F, S::ranks, R>(buffer);
        (void)pipesched::cuda::run_rank_block<S, R>(env, ctx, f, b, blocks);
      });
    });
  }

private:
  static std::vector<int> slot_counts() {
    std::vector<int> n;
    for (int r = 0; r < S::ranks; ++r) n.push_back(pipesched::buffer_plan<S>::slots(r));
    return n;
  }
  template <class Fs> struct functor_type {
    using type = typename Fs::value_type;
  };
  template <class... Fs> struct functor_type<std::tuple<Fs...>> {
    using type = std::tuple<Fs...>;
  };
};

/// A run-time schedule on host threads: each block runs run_rank_block_runtime over the
/// program's actions (copied, as the device executor copies them to device memory).
class host_persistent_runtime : public host_memory {
public:
  host_persistent_runtime(pipesched::runtime_schedule const& s, settings st)
      : host_memory(std::move(st), s.ranks, s.stages, s.slot_count), program_(s), actions_(program_.actions) {}

  /// Test of the tests: changes the actions the blocks run (as if the device copy were wrong).
  template <class Fn> void mutate(Fn fn) {
    for (auto& a : actions_) fn(a);
  }

  /// One iteration with functor fs[r] for rank r (each block thread calls its rank's copy).
  template <class F> void run(std::vector<F> const& fs) {
    pipesched::cuda::check_runtime_device_functor<F, group>(program_);
    if (fs.size() != static_cast<std::size_t>(program_.ranks)) throw std::invalid_argument("one functor per rank");
    std::vector<F> copy = fs;
    F* const f = copy.data();
    auto const* const list = actions_.data();
    std::vector<std::size_t> const offset = program_.offset;
    launch([f, list, &offset](host_env& env, pipesched::cuda::persistent_context const& ctx, int r, int b, int blocks) {
      std::size_t const k = static_cast<std::size_t>(r);
      (void)pipesched::cuda::run_rank_block_runtime(env, ctx, f[k], r, list + offset[k], offset[k + 1] - offset[k], b,
                                                    blocks);
    });
  }
  pipesched::cuda::runtime_persistent_program const& program() const { return program_; }

private:
  pipesched::cuda::runtime_persistent_program program_;
  std::vector<pipesched::cuda::persistent_action> actions_; ///< what the blocks read
};

} // namespace emu_persistent
