// pipesched: the persistent kernel's protocol — which counter each rank's block group waits
// for before each action, which it releases after it, and the block partition — as data
// computed from the lowered table at compile time, plus the code that runs one rank's list
// over it, generic over an environment (atomics, block synchronisation, clock).
//
// No CUDA header: the persistent executor (persistent.cuh) instantiates `run_rank_block`
// with a device environment (cuda::atomic_ref, __syncthreads, %globaltimer); the CPU tests
// instantiate the very same code with host threads and std::atomic_ref, so what they prove
// about the protocol is what runs in the kernel.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "pipesched/core/action.hpp"
#include "pipesched/core/config.hpp"
#include "pipesched/core/params.hpp"
#include "pipesched/pipeline/cost.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/plan/action_record.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/functors.hpp"
#include "pipesched/plan/runtime_plan.hpp"
#include "pipesched/plan/stage_functor.hpp"
#include "pipesched/plan/step.hpp"

// The unrolled list is inlined into the kernel; the waits, barriers and failure records it
// calls stay out of line (one copy each: spin loops gain nothing from inlining, and a kernel
// with hundreds of inlined copies takes ptxas minutes).
#if defined(__CUDACC__)
#define PIPESCHED_PERSISTENT_NOINLINE __noinline__
#define PIPESCHED_PERSISTENT_INLINE __forceinline__
#define PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE _Pragma("nv_exec_check_disable")
#else
#define PIPESCHED_PERSISTENT_NOINLINE __attribute__((noinline))
#define PIPESCHED_PERSISTENT_INLINE PIPESCHED_FORCEINLINE
#define PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
#endif

namespace pipesched::cuda {

// ---------------------------------------------------------------------------------------
// The protocol as data

/// What a rank's block group does around one action of its list, besides the action.
///
/// Each rank r owns slots_r boundary slots; slot k of rank r is global slot
/// slot_base[r] + k. Every global slot g has two monotonic counters: `filled[g]`, raised by
/// the sender after it has copied a boundary into g (a push: the SEND's group copies from
/// its own slot into the receiver's), and `freed[g]`, raised by the owner after the last
/// access of each boundary g held. In iteration n (the waiter's epoch, counted in device
/// memory) a wait for the c-th event of an iteration waits for `counter >= n * per_iteration
/// + c` — never `==`, so a peer that has already gone further never stalls a waiter, and the
/// counters stay valid across iterations and graph replays without a reset.
///
/// Every rank has its own state words (persistent_context::states; one array shared by all
/// ranks on one GPU, one per device with several GPUs), and a counter lives where its waiter
/// reads it: `filled[g]` in the state of g's owner (the sender raises it through a peer
/// pointer), `freed[g]` in the state of every rank that pushes into g (the owner raises each
/// copy; `pushers[g]`), the abort flag in every rank's state (the first failure sets them
/// all). So every wait polls local memory, and every write to another rank is a release.
struct hand_off {
  /// SEND: the receiver's global slot the boundary is copied into (-1: not a SEND).
  std::int32_t push_slot;
  /// SEND: before copying, wait for freed[push_slot] >= n * occupancies[push_slot] + this
  /// (every earlier boundary of the receiving slot in this iteration has had its last access).
  std::uint32_t push_after_frees;
  /// RECV: the rank's own global slot it waits on (-1: not a RECV).
  std::int32_t pull_slot;
  /// RECV: wait for filled[pull_slot] >= n * fills[pull_slot] + this (this boundary pushed).
  std::uint32_t pull_after_fills;
  /// Global slots whose boundary has its last access here: freed[g] += 1 after the action.
  std::int32_t frees[3];
};

/// Why a schedule's table cannot run as a persistent kernel (none: it can).
enum class persistent_problem : std::uint8_t {
  none,
  unmatched_transfer,  ///< a SEND without its RECV (or the pairs disagree on what they move)
  write_over_own_read, ///< an action writes the slot whose boundary it reads last
  read_before_write,   ///< an action reads a slot that holds nothing
};

namespace detail {

/// The hand-offs of every action of a lowered table (offsets as the table's), the per-slot
/// counts per iteration, and the matching of sends to receives: computed once per schedule.
template <std::size_t Actions, std::size_t Ranks, std::size_t Slots> struct persistent_tables {
  hand_off at[Actions > 0 ? Actions : 1] = {};
  std::uint32_t slot_base[Ranks + 1] = {};
  std::uint32_t occupancies[Slots > 0 ? Slots : 1] = {}; ///< boundaries slot g holds per iteration
  std::uint32_t fills[Slots > 0 ? Slots : 1] = {};       ///< of which pushed by a sender
  std::uint64_t pushers[Slots > 0 ? Slots : 1] = {};     ///< bit q: rank q pushes into slot g
  persistent_problem problem = persistent_problem::none;
  int problem_rank = -1;
  int problem_index = -1;
};

template <class Table> constexpr std::size_t total_slots_of(Table const& t) {
  std::size_t n = 0;
  for (int r = 0; r < t.ranks; ++r) n += t.slot_count[r];
  return n;
}

/// The protocol of lowered table t (see hand_off) into `out` (persistent_tables, or
/// runtime_persistent_tables: the same members), whose arrays hold `actions` and `slots`
/// entries; `offset` gives each rank's first action in the flat order, `last` and
/// `recv_ordinal` are scratch of `slots` and `actions` entries. Sends and receives between
/// one ordered pair of ranks match in their lists' order (the rendezvous order the table was
/// verified in); each match must move the same boundary (direction, micro-batch, stages).
/// One body for compile-time types and run-time tables.
template <class Table, class Offsets, class Out, class Last, class Ordinal>
constexpr void derive_persistent_into(Table const& t, Offsets const& offset, Out& out, Last& last, Ordinal& recv_ordinal,
                                      std::size_t actions, std::size_t slots) {
  int const p = t.ranks;
  auto fail = [&](persistent_problem why, int r, int i) {
    if (out.problem == persistent_problem::none) {
      out.problem = why;
      out.problem_rank = r;
      out.problem_index = i;
    }
  };
  for (int r = 0; r < p; ++r) out.slot_base[r + 1] = out.slot_base[r] + t.slot_count[r];
  for (std::size_t k = 0; k < actions; ++k) {
    out.at[k] = hand_off{-1, 0, -1, 0, {-1, -1, -1}};
    recv_ordinal[k] = 0;
  }
  // per global slot: index of the last access of its current boundary (-1: empty), and
  // per RECV action (by flat index) the occupancy ordinal of the boundary it receives
  for (std::size_t g = 0; g < slots; ++g) last[g] = -1;
  auto add_free = [&](std::size_t flat, std::int32_t g) {
    hand_off& h = out.at[flat];
    for (int f = 0; f < 3; ++f)
      if (h.frees[f] < 0 || h.frees[f] == g) {
        h.frees[f] = g;
        return;
      }
  };
  for (int r = 0; r < p; ++r) {
    std::size_t const base = offset[r];
    std::size_t const n = t.size(static_cast<std::size_t>(r));
    for (std::size_t i = 0; i < n; ++i) {
      action const& a = t.at(static_cast<std::size_t>(r), i);
      std::size_t const flat = base + i;
      for (int f = 0; f < 2; ++f) {
        std::uint16_t const k = f == 0 ? a.in : a.aux;
        if (k == no_slot) continue;
        std::int32_t const g = static_cast<std::int32_t>(out.slot_base[r] + k);
        if (last[g] < 0) fail(persistent_problem::read_before_write, r, static_cast<int>(i));
        last[g] = static_cast<std::int32_t>(flat);
      }
      if (a.out != no_slot) {
        std::int32_t const g = static_cast<std::int32_t>(out.slot_base[r] + a.out);
        if (last[g] >= 0) {
          if (static_cast<std::size_t>(last[g]) == flat) fail(persistent_problem::write_over_own_read, r, static_cast<int>(i));
          add_free(static_cast<std::size_t>(last[g]), g);
        }
        if (is_recv(a.kind)) {
          recv_ordinal[flat] = out.occupancies[g];
          out.at[flat].pull_slot = g;
          out.at[flat].pull_after_fills = ++out.fills[g];
        }
        ++out.occupancies[g];
        last[g] = static_cast<std::int32_t>(flat);
      }
    }
    for (std::uint32_t k = 0; k < static_cast<std::uint32_t>(t.slot_count[r]); ++k) {
      std::int32_t const g = static_cast<std::int32_t>(out.slot_base[r] + k);
      if (last[g] >= 0) add_free(static_cast<std::size_t>(last[g]), g);
      last[g] = -1;
    }
  }
  // match sends to receives per ordered pair of ranks, in list order
  for (int q = 0; q < p; ++q)
    for (int r = 0; r < p; ++r) {
      if (q == r) continue;
      std::size_t const nq = t.size(static_cast<std::size_t>(q)), nr = t.size(static_cast<std::size_t>(r));
      std::size_t j = 0;
      for (std::size_t i = 0; i < nq; ++i) {
        action const& s = t.at(static_cast<std::size_t>(q), i);
        if (!is_send(s.kind) || s.peer != r) continue;
        while (j < nr && !(is_recv(t.at(static_cast<std::size_t>(r), j).kind) && t.at(static_cast<std::size_t>(r), j).peer == q)) ++j;
        if (j == nr) {
          fail(persistent_problem::unmatched_transfer, q, static_cast<int>(i));
          break;
        }
        action const& v = t.at(static_cast<std::size_t>(r), j);
        bool const same = s.mb == v.mb && ((s.kind == op::send_act) == (v.kind == op::recv_act)) &&
                          (s.kind == op::send_act ? t.next_stage(s.mb, s.stage) == v.stage
                                                  : t.prev_stage(s.mb, s.stage) == v.stage);
        if (!same || v.out == no_slot) fail(persistent_problem::unmatched_transfer, q, static_cast<int>(i));
        std::size_t const rflat = offset[r] + j;
        out.at[offset[q] + i].push_slot = out.at[rflat].pull_slot;
        out.at[offset[q] + i].push_after_frees = recv_ordinal[rflat];
        if (out.at[rflat].pull_slot >= 0) out.pushers[out.at[rflat].pull_slot] |= std::uint64_t{1} << q;
        ++j;
      }
      for (; j < nr; ++j) {
        action const& v = t.at(static_cast<std::size_t>(r), j);
        if (is_recv(v.kind) && v.peer == q) fail(persistent_problem::unmatched_transfer, r, static_cast<int>(j));
      }
    }
}

/// Rank r's busy time per iteration of lowered table t under cost model c: the sum of its
/// passes' durations (the simulator's, sim_costs::duration).
template <class Table> constexpr double busy_time(Table const& t, int r, cost_model const& c) {
  sim_costs const costs{c};
  double sum = 0;
  for (std::size_t i = 0; i < t.size(static_cast<std::size_t>(r)); ++i) {
    action const& a = t.at(static_cast<std::size_t>(r), i);
    sum += costs.duration(a.kind, a.stage);
  }
  return sum;
}

/// The protocol of a compile-time lowered table, in arrays of its sizes.
template <std::size_t Actions, std::size_t Ranks, std::size_t Slots, class Table>
constexpr persistent_tables<Actions, Ranks, Slots> derive_persistent(Table const& t) {
  persistent_tables<Actions, Ranks, Slots> out{};
  std::int32_t last[Slots > 0 ? Slots : 1] = {};
  std::uint32_t recv_ordinal[Actions > 0 ? Actions : 1] = {};
  derive_persistent_into(t, t.offset, out, last, recv_ordinal, Actions, Slots);
  return out;
}

} // namespace detail

/// The persistent protocol of schedule S (see hand_off): per action what to wait for and
/// what to release, per slot its counts per iteration, and per rank its pass costs (the
/// default weights of the block partition).
template <schedule_type S> struct persistent_protocol {
  static_assert(pipesched::detail::checked<S>); // a schedule that fails verification stops the build here
  static_assert(S::ranks <= 64, "pipesched: persistent kernel: at most 64 ranks (a slot's pushers are a 64-bit mask)");
  static constexpr int ranks = S::ranks;
  static constexpr std::size_t actions = S::lowered.offset[S::rank_count];
  static constexpr std::size_t slots = detail::total_slots_of(S::lowered);
  static constexpr auto tables = detail::derive_persistent<actions, S::rank_count, slots>(S::lowered);
  static constexpr bool valid = S::valid && tables.problem == persistent_problem::none;
  static_assert(!S::valid || tables.problem != persistent_problem::unmatched_transfer,
                "pipesched: persistent kernel: a SEND of this schedule has no matching RECV in the peer's list order");
  static_assert(!S::valid || tables.problem != persistent_problem::write_over_own_read,
                "pipesched: persistent kernel: an action writes the slot whose boundary it reads last");
  static_assert(!S::valid || tables.problem != persistent_problem::read_before_write,
                "pipesched: persistent kernel: an action reads a slot that holds no boundary");

  /// The hand-off of action I of rank R, as a constant (device code reads it this way).
  template <int R, std::size_t I> static constexpr hand_off at = tables.at[S::lowered.offset[R] + I];
  static constexpr std::uint32_t slot_base(int r) { return tables.slot_base[r]; }

  /// Rank r's busy time per iteration under S's cost model (the simulator's pass costs).
  static constexpr double rank_cost(int r) { return detail::busy_time(S::lowered, r, S::parameters.cost); }
};

// ---------------------------------------------------------------------------------------
// The protocol of a schedule chosen at run time

/// One action of a run-time table as a block of the persistent kernel reads it from device
/// memory: the step the functor gets, its hand-off, and what the compile-time kernel folds
/// into constants (global slots, boundary keys, per-iteration counts, pushers of its frees).
struct persistent_action {
  runtime_step step{};
  hand_off h{-1, 0, -1, 0, {-1, -1, -1}};
  std::int32_t slot[3] = {-1, -1, -1}; ///< global slots of in, out, aux (-1: none)
  std::int32_t key[3] = {-1, -1, -1};  ///< the boundary (boundary_key) each holds (-1: none)
  std::uint64_t pushers[3] = {};       ///< per entry of h.frees: the ranks pushing into it (bit q)
  std::uint64_t per = 0;  ///< RECV: fills of its slot per iteration; SEND: boundaries of the receiver's slot
  std::uint64_t what = 0; ///< action_record bits (names the action in failures)
  std::int32_t receiver = -1;   ///< SEND: the rank pushed to
  std::int32_t opens_pair = 0;  ///< 1: a forward opening an overlapped pair with the next action
};

/// persistent_tables of a run-time table (the same members, as vectors).
struct runtime_persistent_tables {
  std::vector<hand_off> at;
  std::vector<std::uint32_t> slot_base, occupancies, fills;
  std::vector<std::uint64_t> pushers;
  persistent_problem problem = persistent_problem::none;
  int problem_rank = -1;
  int problem_index = -1;
};

/// The persistent protocol of a schedule known only at run time (runtime_schedule: from
/// make_schedule, skip paths, CSV), derived by the same code as persistent_protocol<S>:
/// every action as a persistent_action, rank r's at [offset[r], offset[r + 1]). A table the
/// protocol cannot run throws std::invalid_argument naming the rank and action.
class runtime_persistent_program {
public:
  explicit runtime_persistent_program(runtime_schedule const& s, cost_model const& costs = {})
      : ranks(s.ranks), stages(s.stages) {
    if (ranks > 64)
      throw std::invalid_argument("pipesched: persistent kernel: at most 64 ranks (a slot's pushers are a 64-bit mask), "
                                  "this schedule has " + std::to_string(ranks));
    std::size_t const p = static_cast<std::size_t>(ranks);
    offset.assign(p + 1, 0);
    for (std::size_t r = 0; r < p; ++r) offset[r + 1] = offset[r] + s.size(r);
    std::size_t total_slots = 0;
    for (std::size_t r = 0; r < p; ++r) total_slots += static_cast<std::size_t>(s.slot_count[r]);
    std::size_t const n = offset[p];
    tables.at.assign(n, hand_off{});
    tables.slot_base.assign(p + 1, 0);
    tables.occupancies.assign(total_slots, 0);
    tables.fills.assign(total_slots, 0);
    tables.pushers.assign(total_slots, 0);
    std::vector<std::int32_t> last(total_slots, -1);
    std::vector<std::uint32_t> recv_ordinal(n, 0);
    detail::derive_persistent_into(s, offset, tables, last, recv_ordinal, n, total_slots);
    if (tables.problem != persistent_problem::none) {
      char const* why = tables.problem == persistent_problem::unmatched_transfer
                            ? "a SEND has no matching RECV in the peer's list order"
                        : tables.problem == persistent_problem::write_over_own_read
                            ? "an action writes the slot whose boundary it reads last"
                            : "an action reads a slot that holds no boundary";
      action const& a = s.at(static_cast<std::size_t>(tables.problem_rank), static_cast<std::size_t>(tables.problem_index));
      throw std::invalid_argument("pipesched: persistent kernel: rank " + std::to_string(tables.problem_rank) +
                                  ", action " + std::to_string(tables.problem_index) + " (" +
                                  describe(action_record::of(a)) + "): " + why);
    }
    actions.resize(n);
    for (int r = 0; r < ranks; ++r) rank_cost_.push_back(detail::busy_time(s, r, costs));
    for (int r = 0; r < ranks; ++r) {
      std::vector<runtime_step> const& steps = s.steps(r);
      for (std::size_t i = 0; i < steps.size(); ++i) {
        action const& a = s.at(static_cast<std::size_t>(r), i);
        persistent_action& x = actions[offset[static_cast<std::size_t>(r)] + i];
        x.step = steps[i];
        x.h = tables.at[offset[static_cast<std::size_t>(r)] + i];
        int const local[3] = {steps[i].in, steps[i].out, steps[i].aux};
        field const fields[3] = {field::in, field::out, field::aux};
        for (int k = 0; k < 3; ++k) {
          x.slot[k] = local[k] < 0 ? -1 : static_cast<std::int32_t>(tables.slot_base[static_cast<std::size_t>(r)]) + local[k];
          x.key[k] = boundary_key(s.lowered(), a, fields[k]);
          x.pushers[k] = x.h.frees[k] >= 0 ? tables.pushers[static_cast<std::size_t>(x.h.frees[k])] : 0;
        }
        if (x.h.pull_slot >= 0) x.per = tables.fills[static_cast<std::size_t>(x.h.pull_slot)];
        if (x.h.push_slot >= 0) x.per = tables.occupancies[static_cast<std::size_t>(x.h.push_slot)];
        x.what = action_record::of(steps[i]).bits;
        x.receiver = is_send(a.kind) ? a.peer : -1;
        // as the stream program: a pair's second half is a compute action (a hand-made table
        // with a transfer there runs the forward alone)
        bool const compute_next = i + 1 < steps.size() && is_compute(s.at(static_cast<std::size_t>(r), i + 1).kind);
        x.opens_pair = overlaps_next(a) && compute_next ? 1 : 0;
        uses_[static_cast<int>(a.kind)] = true;
      }
    }
  }

  int ranks = 0;
  int stages = 0;
  std::vector<std::size_t> offset;           ///< rank r's actions: [offset[r], offset[r + 1])
  std::vector<persistent_action> actions;    ///< every rank's, rank after rank
  runtime_persistent_tables tables;

  std::size_t slots() const { return tables.occupancies.size(); }
  std::uint32_t slot_base(int r) const { return tables.slot_base[static_cast<std::size_t>(r)]; }
  std::size_t size(int r) const { return offset[static_cast<std::size_t>(r) + 1] - offset[static_cast<std::size_t>(r)]; }
  persistent_action const& at(int r, std::size_t i) const { return actions[offset[static_cast<std::size_t>(r)] + i]; }
  /// Whether some action of the table is a pass of kind k.
  bool uses(op k) const { return uses_[static_cast<int>(k)]; }
  /// Rank r's busy time per iteration under `costs` (as persistent_protocol<S>::rank_cost).
  double rank_cost(int r) const { return rank_cost_[static_cast<std::size_t>(r)]; }

private:
  std::vector<double> rank_cost_; ///< per rank, detail::busy_time under the given costs
  bool uses_[op_count] = {};
};

// ---------------------------------------------------------------------------------------
// Device functors, one per rank

/// How the device functors of Ranks ranks lie in one buffer: F for every rank, one after the
/// other; or `std::tuple<F0, F1, ...>`, one type per rank, each at an offset aligned for it
/// (the buffer itself aligned for all, as device allocations are). Each type must be
/// trivially copyable: the executor copies their bytes to device memory.
template <class F, int Ranks> struct functor_pack {
  template <int R> using type = F;
  PIPESCHED_HD static constexpr std::size_t offset(int r) { return static_cast<std::size_t>(r) * sizeof(F); }
  static constexpr std::size_t bytes = static_cast<std::size_t>(Ranks) * sizeof(F);
  static constexpr bool copyable = std::is_trivially_copyable_v<F>;
};

namespace detail {
/// Offsets of the types Fs... laid out one after the other, each aligned; the last entry is
/// the end.
template <std::size_t N> struct offset_table {
  std::size_t at[N + 1] = {};
};
template <class... Fs> constexpr offset_table<sizeof...(Fs)> make_tuple_offsets() {
  std::size_t const sizes[] = {sizeof(Fs)...};
  std::size_t const aligns[] = {alignof(Fs)...};
  offset_table<sizeof...(Fs)> t{};
  std::size_t o = 0;
  for (std::size_t r = 0; r < sizeof...(Fs); ++r) {
    o = (o + aligns[r] - 1) / aligns[r] * aligns[r];
    t.at[r] = o;
    o += sizes[r];
  }
  t.at[sizeof...(Fs)] = o;
  return t;
}
template <class... Fs> inline constexpr offset_table<sizeof...(Fs)> tuple_offsets = make_tuple_offsets<Fs...>();
} // namespace detail

template <class... Fs, int Ranks> struct functor_pack<std::tuple<Fs...>, Ranks> {
  static_assert(sizeof...(Fs) == static_cast<std::size_t>(Ranks),
                "pipesched: persistent kernel: a tuple of device functor types needs exactly one type per rank");
  template <int R> using type = std::tuple_element_t<static_cast<std::size_t>(R), std::tuple<Fs...>>;
  PIPESCHED_HD static constexpr std::size_t offset(int r) {
    return detail::tuple_offsets<Fs...>.at[r];
  }
  static constexpr std::size_t bytes = detail::tuple_offsets<Fs...>.at[sizeof...(Fs)];
  static constexpr bool copyable = (std::is_trivially_copyable_v<Fs> && ...);
};

/// Copies rank R's functor of `fs` (a container of F, or a tuple of the per-rank types) to
/// its place in `out` (functor_pack<F, Ranks>::bytes bytes), for every rank.
template <class F, int Ranks, class Fs> void pack_functors(Fs const& fs, unsigned char* out) {
  using pack = functor_pack<F, Ranks>;
  static_assert(pack::copyable, "pipesched: persistent kernel: every device functor is copied to device memory, so it "
                                "must be trivially copyable (hold pointers to your device buffers, not containers)");
  pipesched::detail::check_functor_count<Ranks>(fs);
  [&]<int... R>(std::integer_sequence<int, R...>) {
    static_assert((std::is_same_v<std::remove_cvref_t<decltype(pipesched::detail::functor_of<R>(fs))>,
                                  typename pack::template type<R>> && ...),
                  "pipesched: persistent kernel: run() got functors of other types than the executor's");
    ((void)std::memcpy(out + pack::offset(R), &pipesched::detail::functor_of<R>(fs),
                       sizeof(typename pack::template type<R>)),
     ...);
  }(std::make_integer_sequence<int, Ranks>{});
}

/// The functor of rank R in a packed buffer.
template <class F, int Ranks, int R>
PIPESCHED_PERSISTENT_INLINE PIPESCHED_HD typename functor_pack<F, Ranks>::template type<R>& functor_in(unsigned char* p) {
  constexpr std::size_t off = functor_pack<F, Ranks>::offset(R);
  return *reinterpret_cast<typename functor_pack<F, Ranks>::template type<R>*>(p + off);
}

// ---------------------------------------------------------------------------------------
// Block groups

/// Shares `total` blocks among ranks in proportion to `weights` (one per rank; all zero or
/// empty: equally), every rank at least one block, the sum exactly `total` (largest
/// remainders, ties to the lower rank). Throws std::invalid_argument when total < ranks.
inline std::vector<int> share_blocks(int total, int ranks, std::vector<double> const& weights) {
  if (ranks <= 0) throw std::invalid_argument("pipesched: share_blocks: no ranks");
  if (total < ranks)
    throw std::invalid_argument("pipesched: persistent kernel: " + std::to_string(ranks) + " ranks need at least " +
                                std::to_string(ranks) + " resident blocks (one per block group), only " +
                                std::to_string(total) + " fit on the device");
  if (!weights.empty() && weights.size() != static_cast<std::size_t>(ranks))
    throw std::invalid_argument("pipesched: persistent kernel: " + std::to_string(weights.size()) +
                                " rank weights for " + std::to_string(ranks) + " ranks: give one per rank");
  double sum = 0;
  for (double w : weights) {
    if (!(w >= 0)) throw std::invalid_argument("pipesched: persistent kernel: a rank weight is negative or NaN");
    sum += w;
  }
  std::vector<int> out(static_cast<std::size_t>(ranks), 1);
  int const spare = total - ranks; // one block each first, the rest by weight
  std::vector<double> exact(static_cast<std::size_t>(ranks));
  int given = 0;
  for (int r = 0; r < ranks; ++r) {
    double const w = sum > 0 ? weights[static_cast<std::size_t>(r)] / sum : 1.0 / ranks;
    exact[static_cast<std::size_t>(r)] = w * spare;
    int const whole = static_cast<int>(exact[static_cast<std::size_t>(r)]);
    out[static_cast<std::size_t>(r)] += whole;
    exact[static_cast<std::size_t>(r)] -= whole;
    given += whole;
  }
  for (; given < spare; ++given) {
    int best = 0;
    for (int r = 1; r < ranks; ++r)
      if (exact[static_cast<std::size_t>(r)] > exact[static_cast<std::size_t>(best)]) best = r;
    ++out[static_cast<std::size_t>(best)];
    exact[static_cast<std::size_t>(best)] = -1;
  }
  return out;
}

/// Checks a user's block counts per rank: one per rank, each >= 1, the sum within the
/// resident blocks. Throws std::invalid_argument naming the problem.
inline void check_block_groups(std::vector<int> const& groups, int ranks, int resident) {
  if (groups.size() != static_cast<std::size_t>(ranks))
    throw std::invalid_argument("pipesched: persistent kernel: " + std::to_string(groups.size()) +
                                " block counts for " + std::to_string(ranks) + " ranks: give one per rank");
  long sum = 0;
  for (std::size_t r = 0; r < groups.size(); ++r) {
    if (groups[r] < 1)
      throw std::invalid_argument("pipesched: persistent kernel: rank " + std::to_string(r) +
                                  " is given no block: every rank's group needs at least one");
    sum += groups[r];
  }
  if (sum > resident)
    throw std::invalid_argument("pipesched: persistent kernel: the block groups need " + std::to_string(sum) +
                                " blocks, only " + std::to_string(resident) +
                                " can be resident at once (a cooperative launch needs every block resident)");
}

// ---------------------------------------------------------------------------------------
// The state in memory

/// Why an iteration stopped (the first failure wins; recorded in the state).
enum class persistent_failure_kind : std::uint64_t {
  none = 0,
  functor = 1,  ///< a stage functor's member returned false
  deadline = 2, ///< a wait passed its deadline
};

/// The words of a persistent executor's state (arrays of 64-bit words in device memory,
/// zeroed once; one for every rank on one GPU, one per rank with several GPUs, each with
/// this layout, each word used where hand_off says): the abort flag, the first failure (in
/// rank 0's array), per rank its epoch and its group barrier, per global slot its two
/// counters. Counters sit a cache line apart.
struct persistent_layout {
  int ranks = 0;
  int slots = 0;
  static constexpr int stride = 16; ///< words between two counters (128 bytes)
  static constexpr int abort_word = 0;
  static constexpr int failure_kind = 1;   ///< persistent_failure_kind (the word taken first)
  static constexpr int failure_rank = 2;
  static constexpr int failure_action = 3; ///< action_record bits
  static constexpr int failure_detail = 4; ///< deadline: the counter index waited on
  static constexpr int failure_target = 5; ///< deadline: the value waited for
  static constexpr int failure_seen = 6;   ///< deadline: the value seen last
  PIPESCHED_HD constexpr std::size_t epoch(int r) const { return static_cast<std::size_t>(stride * (1 + r)); }
  PIPESCHED_HD constexpr std::size_t barrier(int r) const { return static_cast<std::size_t>(stride * (1 + ranks + r)); }
  PIPESCHED_HD constexpr std::size_t filled(int g) const { return static_cast<std::size_t>(stride * (1 + 2 * ranks + g)); }
  PIPESCHED_HD constexpr std::size_t freed(int g) const {
    return static_cast<std::size_t>(stride * (1 + 2 * ranks + slots + g));
  }
  /// Where rank r stopped when an iteration was aborted (in rank 0's state, as the failure
  /// record; written only on that path): stop_taken is 1 once recorded, then the action
  /// (action_record bits; ~0: the barrier after its list), the word waited on, the value
  /// waited for and the value seen last. No record: the rank finished its list, or it is the
  /// rank whose functor failed.
  PIPESCHED_HD constexpr std::size_t stopped(int r) const {
    return static_cast<std::size_t>(stride * (1 + 2 * ranks + 2 * slots + r));
  }
  static constexpr int stop_taken = 0;
  static constexpr int stop_action = 1;
  static constexpr int stop_word = 2;
  static constexpr int stop_target = 3;
  static constexpr int stop_seen = 4;
  PIPESCHED_HD constexpr std::size_t words() const { return static_cast<std::size_t>(stride * (1 + 3 * ranks + 2 * slots)); }
  /// What counter word w is, in words: "slot 3 filled", "rank 1's group barrier".
  std::string name(std::size_t w) const {
    std::size_t const i = w / stride;
    if (i >= 1 && i < 1 + static_cast<std::size_t>(ranks)) return "rank " + std::to_string(i - 1) + "'s epoch";
    if (i < 1 + 2 * static_cast<std::size_t>(ranks)) return "rank " + std::to_string(i - 1 - ranks) + "'s group barrier";
    std::size_t const g = i - 1 - 2 * static_cast<std::size_t>(ranks);
    if (g < static_cast<std::size_t>(slots)) return "global slot " + std::to_string(g) + " filled";
    if (g < 2 * static_cast<std::size_t>(slots)) return "global slot " + std::to_string(g - static_cast<std::size_t>(slots)) + " freed";
    return "rank " + std::to_string(g - 2 * static_cast<std::size_t>(slots)) + "'s stop record";
  }
};

/// The message of the failure recorded in `state` (words of a persistent_layout), or "".
inline std::string describe_persistent_failure(persistent_layout const& l, std::uint64_t const* state) {
  auto const kind = static_cast<persistent_failure_kind>(state[persistent_layout::failure_kind]);
  if (kind == persistent_failure_kind::none) return {};
  int const rank = static_cast<int>(state[persistent_layout::failure_rank]);
  action_record const a{state[persistent_layout::failure_action]};
  std::string what = "pipesched: persistent kernel: rank " + std::to_string(rank) + " (" +
                     (a.empty() ? std::string("at the end of its list") : describe(a)) + ")";
  if (kind == persistent_failure_kind::functor) what += ": the stage functor reported a failure";
  else
    what += ": a wait passed its deadline (" + l.name(state[persistent_layout::failure_detail]) + ": needed " +
            std::to_string(state[persistent_layout::failure_target]) + ", saw " +
            std::to_string(state[persistent_layout::failure_seen]) + ")";
  // where every other rank stopped (its first wait it found unmet after the abort)
  std::string finished, stops;
  for (int r = 0; r < l.ranks; ++r) {
    if (r == rank) continue;
    std::uint64_t const* const s = state + l.stopped(r);
    if (s[persistent_layout::stop_taken] == 0) {
      finished += (finished.empty() ? "" : ", ") + std::to_string(r);
      continue;
    }
    action_record const at{s[persistent_layout::stop_action]};
    stops += "; rank " + std::to_string(r) + " stopped at " +
             (at.empty() ? std::string("the barrier after its list") : describe(at)) +
             ", waiting for " + l.name(s[persistent_layout::stop_word]) + " (needed " +
             std::to_string(s[persistent_layout::stop_target]) + ", saw " + std::to_string(s[persistent_layout::stop_seen]) +
             ")";
  }
  if (!finished.empty()) stops += "; finished their lists: rank" + std::string(finished.find(',') == std::string::npos ? " " : "s ") + finished;
  return what + stops;
}

// ---------------------------------------------------------------------------------------
// Running one rank's list in one block

/// What every block of a launch knows: every rank's state and slots as addressed from this
/// device (peer pointers for other devices' memory), the boundary byte table, the deadline of
/// one wait.
struct persistent_context {
  std::uint64_t* const* states = nullptr; ///< per rank its state words (all equal on one GPU)
  persistent_layout layout{};
  view const* slots = nullptr;        ///< total_slots views (global slot order)
  std::size_t const* bytes = nullptr; ///< 2S entries, boundary_key order
  std::uint64_t wait_ns = 0;          ///< a wait longer than this fails the iteration
};

/// The handle a device functor gets: its block group (the blocks running its rank), the
/// block's place in it, and a group-wide barrier.
///
/// An environment (Env) provides, per block: `leader()` (thread 0 of the block),
/// `block_sync()`, `block_any(bool)`, `thread()` and `threads()` (in the block),
/// `load_acquire(w)`, `load_relaxed(w)`, `add_release(w, v)`, `add_acq_rel(w, v)`,
/// `take(w, v)` (compare-exchange from 0), `store_release(w, v)`, `now_ns()`,
/// `backoff(spins)`, and `copy(dst, src, bytes, part, parts)` (part `part` of `parts`
/// equal shares of a copy).
template <class Env> struct basic_group {
  Env* env;
  persistent_context const* ctx;
  int rank;       ///< the rank this group runs
  int block;      ///< this block's index in the group
  int blocks;     ///< blocks in the group
  std::uint64_t what = ~std::uint64_t{0}; ///< the action in progress (action_record bits), for failures

  PIPESCHED_HD int block_rank() const { return block; }
  PIPESCHED_HD int num_blocks() const { return blocks; }
  /// This thread's index in the group, and the group's threads.
  PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
  PIPESCHED_HD int thread_rank() const { return block * env->threads() + env->thread(); }
  PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
  PIPESCHED_HD int num_threads() const { return blocks * env->threads(); }
  /// Waits until every thread of the group has arrived (memory before it is visible after
  /// it, group-wide). False when the iteration was aborted meanwhile: return at once.
  PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
  PIPESCHED_HD bool sync() const;
};

namespace detail {

/// Raises the abort flag of every rank (each polls its own; storing 1 twice is harmless, so
/// ranks sharing one array need no care).
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class Env> PIPESCHED_PERSISTENT_INLINE PIPESCHED_HD void abort_all(Env& env, persistent_context const& c) {
  for (int q = 0; q < c.layout.ranks; ++q) env.store_release(c.states[q] + persistent_layout::abort_word, 1);
}

/// Records where rank `rank` stopped after an abort, in rank 0's state (the first block of the
/// rank to stop wins; the host reads it after the kernel has ended). Inlined into
/// wait_at_least, its only caller, which stays out of line (tests/ptx: the kernel calls no
/// other function).
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class Env>
PIPESCHED_PERSISTENT_INLINE PIPESCHED_HD void record_stop(Env& env, persistent_context const& c, int rank, std::uint64_t what,
                                                          std::size_t w, std::uint64_t target, std::uint64_t seen) {
  std::uint64_t* const stop = c.states[0] + c.layout.stopped(rank);
  if (env.take(stop + persistent_layout::stop_taken, 1)) {
    stop[persistent_layout::stop_action] = what;
    stop[persistent_layout::stop_word] = w;
    stop[persistent_layout::stop_target] = target;
    stop[persistent_layout::stop_seen] = seen;
  }
}

/// The leader of a block of rank `rank` waits until word w of the rank's own state reaches
/// `target` (acquire), or the rank's abort flag is set, or the wait passes the deadline (then
/// it records the failure in rank 0's state and aborts every rank); the block follows. True
/// when the value was reached.
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class Env>
PIPESCHED_PERSISTENT_NOINLINE PIPESCHED_HD bool wait_at_least(Env& env, persistent_context const& c, std::size_t w,
                                                            std::uint64_t target, int rank, std::uint64_t what) {
  bool failed = false;
  if (env.leader()) {
    std::uint64_t* const s = c.states[rank];
    std::uint64_t* const record = c.states[0];
    std::uint64_t const start = env.now_ns();
    for (unsigned spin = 0;; ++spin) {
      std::uint64_t const v = env.load_acquire(s + w);
      if (v >= target) break;
      if (env.load_relaxed(s + persistent_layout::abort_word) != 0) {
        record_stop(env, c, rank, what, w, target, v); // another rank failed: where this one stopped
        failed = true;
        break;
      }
      if ((spin & 63u) == 63u && env.now_ns() - start > c.wait_ns) {
        if (env.take(record + persistent_layout::failure_kind,
                     static_cast<std::uint64_t>(persistent_failure_kind::deadline))) {
          record[persistent_layout::failure_rank] = static_cast<std::uint64_t>(rank);
          record[persistent_layout::failure_action] = what;
          record[persistent_layout::failure_detail] = w;
          record[persistent_layout::failure_target] = target;
          record[persistent_layout::failure_seen] = v;
        }
        record_stop(env, c, rank, what, w, target, v); // (a second deadline at once: named as a stop)
        abort_all(env, c);
        failed = true;
        break;
      }
      env.backoff(spin);
    }
  }
  return !env.block_any(failed);
}

/// Records a functor failure in rank 0's state (the first failure wins) and aborts every rank.
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class Env>
PIPESCHED_PERSISTENT_NOINLINE PIPESCHED_HD void record_functor_failure(Env& env, persistent_context const& c, int rank, std::uint64_t what) {
  std::uint64_t* const record = c.states[0];
  if (env.take(record + persistent_layout::failure_kind, static_cast<std::uint64_t>(persistent_failure_kind::functor))) {
    record[persistent_layout::failure_rank] = static_cast<std::uint64_t>(rank);
    record[persistent_layout::failure_action] = what;
  }
  abort_all(env, c);
}

/// Raises freed[g] in the state of every rank that pushes into g (bit q of `pushers`), once
/// per distinct array (ranks sharing one array share the counter).
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class Env>
PIPESCHED_PERSISTENT_NOINLINE PIPESCHED_HD void release_freed(Env& env, persistent_context const& c, int g,
                                                            std::uint64_t pushers) {
  std::size_t const w = c.layout.freed(g);
  for (int q = 0; q < c.layout.ranks; ++q) {
    if (((pushers >> q) & 1u) == 0) continue;
    bool seen = false;
    for (int e = 0; e < q; ++e) seen = seen || (((pushers >> e) & 1u) != 0 && c.states[e] == c.states[q]);
    if (!seen) env.add_release(c.states[q] + w, 1);
  }
}

/// The group barrier: each block's leader takes a ticket t and waits for the counter to
/// reach (t / blocks + 1) * blocks. Every completed barrier adds exactly `blocks`, so the
/// counter is a multiple of it between barriers and launches: monotonic, nothing to reset
/// (the executor resets the whole state after an aborted iteration, or when the partition
/// changes).
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class Env> PIPESCHED_PERSISTENT_NOINLINE PIPESCHED_HD bool group_sync(basic_group<Env> const& g, std::uint64_t what) {
  Env& env = *g.env;
  env.block_sync(); // the block's work before the barrier is done
  if (g.blocks == 1) return true;
  std::size_t const w = g.ctx->layout.barrier(g.rank);
  std::uint64_t target = 0;
  if (env.leader()) {
    std::uint64_t const ticket = env.add_acq_rel(g.ctx->states[g.rank] + w, 1);
    target = (ticket / static_cast<std::uint64_t>(g.blocks) + 1) * static_cast<std::uint64_t>(g.blocks);
  }
  return wait_at_least(env, *g.ctx, w, target, g.rank, what);
}

} // namespace detail

PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class Env> PIPESCHED_HD bool basic_group<Env>::sync() const {
  return detail::group_sync(*this, what);
}

/// Which boundary (boundary_key) field F of rank R's action I holds, as a constant.
template <class S, int R, std::size_t I, field F>
inline constexpr int persistent_key = boundary_key(S::lowered, action_of<S, R, I>, F);

/// The view of field Slot (a slot index of rank R, -1: none) holding boundary Key.
template <class S, int R, int Slot, int Key>
PIPESCHED_PERSISTENT_INLINE PIPESCHED_HD view persistent_view(persistent_context const& c) {
  if constexpr (Slot < 0 || Key < 0) return view{};
  else {
    constexpr std::uint32_t g = persistent_protocol<S>::tables.slot_base[R] + static_cast<std::uint32_t>(Slot);
    return view{c.slots[g].data, c.bytes[Key]};
  }
}

/// Calls the functor's member for pass St::kind; false when it reported a failure (a member
/// returning bool returned false in some thread of the block).
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class St, class F, class G>
PIPESCHED_PERSISTENT_INLINE PIPESCHED_HD bool call_pass(F& f, io const& x, G const& g) {
  if constexpr (St::kind == op::forward) {
    if constexpr (requires { { f.forward(St{}, x, g) } -> std::same_as<bool>; }) return f.forward(St{}, x, g);
    else return f.forward(St{}, x, g), true;
  } else if constexpr (St::kind == op::backward) {
    if constexpr (requires { { f.backward(St{}, x, g) } -> std::same_as<bool>; }) return f.backward(St{}, x, g);
    else return f.backward(St{}, x, g), true;
  } else if constexpr (St::kind == op::backward_input) {
    if constexpr (requires { { f.backward_input(St{}, x, g) } -> std::same_as<bool>; })
      return f.backward_input(St{}, x, g);
    else return f.backward_input(St{}, x, g), true;
  } else {
    if constexpr (requires { { f.backward_weight(St{}, x, g) } -> std::same_as<bool>; })
      return f.backward_weight(St{}, x, g);
    else return f.backward_weight(St{}, x, g), true;
  }
}

/// Whether action I of rank R opens an overlapped pair (DualPipe, DualPipe-V: a forward and
/// the backward right after it) that device functor F runs as one call of its optional
/// member `forward_backward(StepF, StepB, io const& f, io const& b, Group const&)`;
/// without that member the pair runs as its two halves, one after the other.
template <class S, int R, std::size_t I, class F, class Group> constexpr bool fused_pair() {
  if constexpr (I + 1 >= S::lowered.size(R) || !overlaps_next(action_of<S, R, I>)) return false;
  // (a nested test: action I + 1 exists here) as the stream program, the second half of a
  // pair is a compute action
  else if constexpr (!is_compute(action_of<S, R, I + 1>.kind)) return false;
  else
    return requires(F& f, io const& x, Group const& g) {
      f.forward_backward(step_of<S, R, I>{}, step_of<S, R, I + 1>{}, x, x, g);
    };
}

/// Calls F's forward_backward for the pair opened by action I of rank R; false when it
/// reported a failure.
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class Sf, class Sb, class F, class G>
PIPESCHED_PERSISTENT_INLINE PIPESCHED_HD bool call_pair(F& f, io const& xf, io const& xb, G const& g) {
  if constexpr (requires { { f.forward_backward(Sf{}, Sb{}, xf, xb, g) } -> std::same_as<bool>; })
    return f.forward_backward(Sf{}, Sb{}, xf, xb, g);
  else return f.forward_backward(Sf{}, Sb{}, xf, xb, g), true;
}

/// Whether F's member for pass K takes (Step, io const&, Group const&) for a step of S
/// (true when S has no pass of that kind).
template <class S, class F, class Group, op K> constexpr bool device_member_ok() {
  if constexpr (!pipesched::detail::uses<S, K, -1>()) return true;
  else {
    using st = pipesched::detail::sample_step<S, K, -1>;
    if constexpr (K == op::forward) return requires(F& f, io const& x, Group const& g) { f.forward(st{}, x, g); };
    else if constexpr (K == op::backward) return requires(F& f, io const& x, Group const& g) { f.backward(st{}, x, g); };
    else if constexpr (K == op::backward_input)
      return requires(F& f, io const& x, Group const& g) { f.backward_input(st{}, x, g); };
    else return requires(F& f, io const& x, Group const& g) { f.backward_weight(st{}, x, g); };
  }
}

/// The one report of a device functor's first missing member (the schedule is named in the
/// instantiation line); `value` says whether F has every member S calls.
template <class S, class F, class Group> struct device_functor_check {
  static constexpr bool f = device_member_ok<S, F, Group, op::forward>();
  static constexpr bool b = device_member_ok<S, F, Group, op::backward>();
  static constexpr bool i = device_member_ok<S, F, Group, op::backward_input>();
  static constexpr bool w = device_member_ok<S, F, Group, op::backward_weight>();
  static_assert(f, "pipesched: persistent kernel: the device functor has no member `template <class Step> __device__ "
                   "void forward(Step, pipesched::io const&, pipesched::cuda::device_group const&)`, which every "
                   "schedule calls");
  static_assert(!f || b, "pipesched: persistent kernel: the device functor has no member `template <class Step> "
                         "__device__ void backward(Step, pipesched::io const&, pipesched::cuda::device_group const&)`, "
                         "the fused backward this schedule calls");
  static_assert(!f || !b || (i && w),
                "pipesched: persistent kernel: the device functor needs members `backward_input` and "
                "`backward_weight` (Step, pipesched::io const&, pipesched::cuda::device_group const&): this "
                "schedule splits the backward pass into I and W");
  static constexpr bool value = f && b && i && w;
  /// True whatever F holds: naming it fires the one report above (for static_assert).
  static constexpr bool reported = true;
};

namespace detail {

/// Action I of rank R in one block of its group: the waits, the action (a pass, or the
/// block's share of a push), the group barrier, the releases. False: the iteration was
/// aborted (by this block or another); the block stops.
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class S, int R, std::size_t I, class Env, class F>
PIPESCHED_PERSISTENT_INLINE PIPESCHED_HD bool persistent_step(basic_group<Env> const& g0, F& f, std::uint64_t epoch) {
  using P = persistent_protocol<S>;
  using st = step_of<S, R, I>;
  constexpr hand_off h = P::template at<R, I>;
  constexpr std::uint64_t what = action_record::of(st{}).bits;
  basic_group<Env> g{g0.env, g0.ctx, g0.rank, g0.block, g0.blocks, what}; // names this action in failures
  Env& env = *g.env;
  persistent_context const& c = *g.ctx;
  if constexpr (is_recv(st::kind)) {
    // the boundary was pushed into our slot: wait for its fill, then it is ours
    constexpr std::uint64_t per = P::tables.fills[h.pull_slot];
    if (!wait_at_least(env, c, c.layout.filled(h.pull_slot), epoch * per + h.pull_after_fills, R, what)) return false;
    if constexpr (h.frees[0] >= 0) { // (a boundary nothing reads: its slot is free at once)
      if (!group_sync(g, what)) return false;
    }
  } else if constexpr (is_send(st::kind)) {
    // push: wait until the receiving slot's earlier boundaries are done with (our copy of its
    // freed counter), copy our share into the receiver's slot, raise its filled counter
    constexpr std::uint64_t per = P::tables.occupancies[h.push_slot];
    constexpr int receiver = S::lowered.at(R, I).peer;
    if (!wait_at_least(env, c, c.layout.freed(h.push_slot), epoch * per + h.push_after_frees, R, what)) return false;
    view const src = persistent_view<S, R, st::in, persistent_key<S, R, I, field::in>>(c);
    env.copy(c.slots[h.push_slot].data, src.data, src.bytes, g.block, g.blocks);
    if (!group_sync(g, what)) return false;
    if (g.block == 0 && env.leader()) env.add_release(c.states[receiver] + c.layout.filled(h.push_slot), 1);
  } else if constexpr (I > 0 && fused_pair<S, R, (I > 0 ? I - 1 : 0), F, basic_group<Env>>()) {
    // the backward half of a pair that forward_backward ran at I - 1: only its releases
  } else {
    io const x{persistent_view<S, R, st::in, persistent_key<S, R, I, field::in>>(c),
               persistent_view<S, R, st::out, persistent_key<S, R, I, field::out>>(c),
               persistent_view<S, R, st::aux, persistent_key<S, R, I, field::aux>>(c), nullptr, R};
    bool ok = true;
    if constexpr (fused_pair<S, R, I, F, basic_group<Env>>()) {
      using sb = step_of<S, R, I + 1>;
      io const xb{persistent_view<S, R, sb::in, persistent_key<S, R, I + 1, field::in>>(c),
                  persistent_view<S, R, sb::out, persistent_key<S, R, I + 1, field::out>>(c),
                  persistent_view<S, R, sb::aux, persistent_key<S, R, I + 1, field::aux>>(c), nullptr, R};
      ok = call_pair<st, sb>(f, x, xb, g);
    } else {
      ok = call_pass<st>(f, x, g);
    }
    if (env.block_any(!ok)) {
      if (env.leader()) record_functor_failure(env, c, R, what);
      return false;
    }
    if (!group_sync(g, what)) return false;
  }
  if (g.block == 0 && env.leader()) {
    // the frees' copies, one per rank pushing into the slot (a slot nobody pushes into has no
    // waiter on its frees: nothing to raise); constants, so device code reads no table
    constexpr std::uint64_t m0 = h.frees[0] >= 0 ? P::tables.pushers[h.frees[0]] : 0;
    constexpr std::uint64_t m1 = h.frees[1] >= 0 ? P::tables.pushers[h.frees[1]] : 0;
    constexpr std::uint64_t m2 = h.frees[2] >= 0 ? P::tables.pushers[h.frees[2]] : 0;
    if constexpr (m0 != 0) release_freed(env, c, h.frees[0], m0);
    if constexpr (m1 != 0) release_freed(env, c, h.frees[1], m1);
    if constexpr (m2 != 0) release_freed(env, c, h.frees[2], m2);
  }
  return true;
}

/// Actions I... in order, stopping at the first that returns false.
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class S, int R, class Env, class F, std::size_t... I>
PIPESCHED_PERSISTENT_INLINE PIPESCHED_HD bool persistent_steps(basic_group<Env> const& g, F& f, std::uint64_t epoch,
                                                               std::index_sequence<I...>) {
  return (persistent_step<S, R, I>(g, f, epoch) && ...);
}

} // namespace detail

/// One block of rank R's group runs the rank's whole list once (one iteration): the list
/// unrolled at compile time into straight-line steps (no loop, no switch), stopping at the
/// first abort. At the end the group's first block raises the rank's epoch. Returns false
/// when the iteration was aborted.
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class S, int R, class Env, class F>
PIPESCHED_HD bool run_rank_block(Env& env, persistent_context const& c, F& f, int block, int blocks) {
  static_assert(persistent_protocol<S>::valid || !S::valid);
  if constexpr (!device_functor_check<S, F, basic_group<Env>>::value) {
    return false; // reported above, once
  } else {
  std::uint64_t* const s = c.states[R];
  // the previous launch on this device ended before this one started, so a plain read sees
  // its epoch
  std::uint64_t const epoch = env.load_relaxed(s + c.layout.epoch(R));
  basic_group<Env> const g{&env, &c, R, block, blocks};
  if (!detail::persistent_steps<S, R>(g, f, epoch, std::make_index_sequence<S::lowered.size(R)>{})) return false;
  // every block has read the epoch before the last barrier: only then may it move on
  if (!detail::group_sync(g, ~std::uint64_t{0})) return false;
  if (block == 0 && env.leader()) env.add_release(s + c.layout.epoch(R), 1);
  return true;
  }
}

// ---------------------------------------------------------------------------------------
// Running one rank's run-time list in one block

/// Which members device functor F has for run-time steps (a runtime_step, the views and the
/// group), and whether it has forward_backward for them.
template <class F, class Group> struct runtime_device_members {
  static constexpr bool f = requires(F& x, io const& v, Group const& g) { x.forward(runtime_step{}, v, g); };
  static constexpr bool b = requires(F& x, io const& v, Group const& g) { x.backward(runtime_step{}, v, g); };
  static constexpr bool i = requires(F& x, io const& v, Group const& g) { x.backward_input(runtime_step{}, v, g); };
  static constexpr bool w = requires(F& x, io const& v, Group const& g) { x.backward_weight(runtime_step{}, v, g); };
  static constexpr bool pair =
      requires(F& x, io const& v, Group const& g) { x.forward_backward(runtime_step{}, runtime_step{}, v, v, g); };
};

/// Throws std::invalid_argument unless device functor F has, for a runtime_step, every
/// member program p calls (checked before an executor launches anything).
template <class F, class Group> void check_runtime_device_functor(runtime_persistent_program const& p) {
  using m = runtime_device_members<F, Group>;
  auto need = [&](op k, bool has, char const* name) {
    if (p.uses(k) && !has)
      throw std::invalid_argument(std::string("pipesched: persistent kernel: the device functor has no member "
                                              "`template <class Step> __device__ void ") +
                                  name + "(Step, pipesched::io const&, pipesched::cuda::device_group const&)` "
                                         "accepting a pipesched::runtime_step, which this run-time schedule calls");
  };
  need(op::forward, m::f, "forward");
  need(op::backward, m::b, "backward");
  need(op::backward_input, m::i, "backward_input");
  need(op::backward_weight, m::w, "backward_weight");
}

namespace detail {

/// The view of entry k (0 in, 1 out, 2 aux) of a run-time action.
PIPESCHED_PERSISTENT_INLINE PIPESCHED_HD view runtime_view(persistent_context const& c, persistent_action const& a, int k) {
  if (a.slot[k] < 0 || a.key[k] < 0) return view{};
  return view{c.slots[a.slot[k]].data, c.bytes[a.key[k]]};
}

/// Calls the functor's member for run-time step s's pass; false when it reported a failure.
/// (A member the table calls and F lacks was refused on the host before the launch.)
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class F, class G>
PIPESCHED_PERSISTENT_INLINE PIPESCHED_HD bool call_runtime_pass(F& f, runtime_step const& s, io const& x, G const& g) {
  using m = runtime_device_members<F, G>;
  switch (s.kind) {
  case op::forward:
    if constexpr (m::f) {
      if constexpr (requires { { f.forward(s, x, g) } -> std::same_as<bool>; }) return f.forward(s, x, g);
      else return f.forward(s, x, g), true;
    }
    break;
  case op::backward:
    if constexpr (m::b) {
      if constexpr (requires { { f.backward(s, x, g) } -> std::same_as<bool>; }) return f.backward(s, x, g);
      else return f.backward(s, x, g), true;
    }
    break;
  case op::backward_input:
    if constexpr (m::i) {
      if constexpr (requires { { f.backward_input(s, x, g) } -> std::same_as<bool>; }) return f.backward_input(s, x, g);
      else return f.backward_input(s, x, g), true;
    }
    break;
  case op::backward_weight:
    if constexpr (m::w) {
      if constexpr (requires { { f.backward_weight(s, x, g) } -> std::same_as<bool>; }) return f.backward_weight(s, x, g);
      else return f.backward_weight(s, x, g), true;
    }
    break;
  default: break;
  }
  return false; // unreachable: refused on the host
}

/// Action a of a run-time list in one block of its group, as persistent_step does for a
/// compile-time one (the same waits, copies, barriers and releases, read from `a` rather than
/// folded into constants). `next`: the action after it (null: none); `fused` is set when the
/// functor ran a and next as one overlapped pair, and tells the next call to do only its
/// releases.
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class Env, class F>
PIPESCHED_PERSISTENT_INLINE PIPESCHED_HD bool persistent_runtime_step(basic_group<Env> const& g0, F& f, std::uint64_t epoch,
                                                                      persistent_action const& a,
                                                                      persistent_action const* next, bool& fused) {
  basic_group<Env> g{g0.env, g0.ctx, g0.rank, g0.block, g0.blocks, a.what};
  Env& env = *g.env;
  persistent_context const& c = *g.ctx;
  op const k = a.step.kind;
  if (is_recv(k)) {
    if (!wait_at_least(env, c, c.layout.filled(a.h.pull_slot), epoch * a.per + a.h.pull_after_fills, g.rank, a.what))
      return false;
    if (a.h.frees[0] >= 0 && !group_sync(g, a.what)) return false;
  } else if (is_send(k)) {
    if (!wait_at_least(env, c, c.layout.freed(a.h.push_slot), epoch * a.per + a.h.push_after_frees, g.rank, a.what))
      return false;
    view const src = runtime_view(c, a, 0);
    env.copy(c.slots[a.h.push_slot].data, src.data, src.bytes, g.block, g.blocks);
    if (!group_sync(g, a.what)) return false;
    if (g.block == 0 && env.leader()) env.add_release(c.states[a.receiver] + c.layout.filled(a.h.push_slot), 1);
  } else if (fused) {
    fused = false; // the backward half of the pair forward_backward ran: only its releases
  } else {
    io const x{runtime_view(c, a, 0), runtime_view(c, a, 1), runtime_view(c, a, 2), nullptr, g.rank};
    bool ok = true;
    if constexpr (runtime_device_members<F, basic_group<Env>>::pair) {
      if (a.opens_pair != 0 && next != nullptr) {
        io const xb{runtime_view(c, *next, 0), runtime_view(c, *next, 1), runtime_view(c, *next, 2), nullptr, g.rank};
        if constexpr (requires { { f.forward_backward(a.step, next->step, x, xb, g) } -> std::same_as<bool>; })
          ok = f.forward_backward(a.step, next->step, x, xb, g);
        else f.forward_backward(a.step, next->step, x, xb, g);
        fused = true;
      } else {
        ok = call_runtime_pass(f, a.step, x, g);
      }
    } else {
      ok = call_runtime_pass(f, a.step, x, g);
    }
    if (env.block_any(!ok)) {
      if (env.leader()) record_functor_failure(env, c, g.rank, a.what);
      return false;
    }
    if (!group_sync(g, a.what)) return false;
  }
  if (g.block == 0 && env.leader())
    for (int e = 0; e < 3; ++e)
      if (a.h.frees[e] >= 0 && a.pushers[e] != 0) release_freed(env, c, a.h.frees[e], a.pushers[e]);
  return true;
}

} // namespace detail

/// One block of rank `rank`'s group runs the rank's run-time list (`n` actions at `list`, in
/// memory the block reads) once, as run_rank_block does for a compile-time list: the same
/// protocol, a loop over the actions instead of straight-line code. Returns false when the
/// iteration was aborted.
PIPESCHED_PERSISTENT_EXEC_CHECK_DISABLE
template <class Env, class F>
PIPESCHED_HD bool run_rank_block_runtime(Env& env, persistent_context const& c, F& f, int rank,
                                         persistent_action const* list, std::size_t n, int block, int blocks) {
  std::uint64_t* const s = c.states[rank];
  std::uint64_t const epoch = env.load_relaxed(s + c.layout.epoch(rank));
  basic_group<Env> const g{&env, &c, rank, block, blocks};
  bool fused = false;
  for (std::size_t i = 0; i < n; ++i)
    if (!detail::persistent_runtime_step(g, f, epoch, list[i], i + 1 < n ? list + i + 1 : nullptr, fused)) return false;
  if (!detail::group_sync(g, ~std::uint64_t{0})) return false;
  if (block == 0 && env.leader()) env.add_release(s + c.layout.epoch(rank), 1);
  return true;
}

} // namespace pipesched::cuda
