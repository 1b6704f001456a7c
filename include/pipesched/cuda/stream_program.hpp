// pipesched: the stream program — what a CUDA executor issues, derived from a lowered table
// and proven race-free and hang-free by a happens-before model of CUDA's own semantics.
//
// Plain constexpr C++ (no CUDA header): the same code runs inside the compiler for schedule
// types, at run time for run-time tables, and in CPU tests that feed it broken programs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pipesched/core/action.hpp"
#include "pipesched/core/diagnostic.hpp"
#include "pipesched/core/params.hpp"
#include "pipesched/core/static_table.hpp"
#include "pipesched/core/table.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/core/vec.hpp"

namespace pipesched::cuda {

/// How boundaries cross between ranks.
enum class transfer_mode : std::uint8_t {
  /// One copy per boundary, issued on the receiver's communication stream once the data is
  /// written and the receiving slot is free (device-to-device or peer copies, one process).
  copy,
  /// A send on the sender's communication stream and a receive on the receiver's, which
  /// complete together (NCCL point-to-point): each rank's transfers in its list order.
  rendezvous,
};

/// What one entry of a stream program does.
enum class stream_op_kind : std::uint8_t {
  exec,   ///< run compute action `action` of rank `rank` (the stage functor's pass)
  copy,   ///< copy mode: the boundary of SEND `peer_action` (on the sender) into RECV `action` of `rank`
  send,   ///< rendezvous mode: SEND `action` of `rank`
  recv,   ///< rendezvous mode: RECV `action` of `rank`
  record, ///< cudaEventRecord(event, stream)
  wait,   ///< cudaStreamWaitEvent(stream, event)
};

/// One entry of a stream program. Streams are numbered 2r (rank r's compute stream) and
/// 2r + 1 (its communication stream); events r's `written[k]` and `released[k]` of slot k
/// are event_base[r] + k and event_base[r] + slots + k.
struct stream_op {
  stream_op_kind kind;
  std::uint16_t stream;
  std::uint16_t rank;
  std::uint16_t event;
  std::uint32_t action;
  std::uint32_t peer_action;
  friend constexpr bool operator==(stream_op const&, stream_op const&) = default;
};

inline constexpr std::uint16_t no_event = 0xffff;

constexpr stream_op make_stream_op(stream_op_kind k, int stream, int rank, int event = no_event, std::uint32_t a = 0,
                                   std::uint32_t peer_a = 0) {
  return stream_op{k, static_cast<std::uint16_t>(stream), static_cast<std::uint16_t>(rank),
                   static_cast<std::uint16_t>(event), a, peer_a};
}

constexpr int compute_stream(int rank) { return 2 * rank; }
constexpr int comm_stream(int rank) { return 2 * rank + 1; }

/// A stream program: every op in the one order a single host thread issues them (the global
/// issue order across ranks), plus the event numbering.
struct stream_program {
  int ranks = 0;
  transfer_mode mode = transfer_mode::copy;
  vec<int> event_base; ///< ranks + 1 entries; rank r's events are [event_base[r], event_base[r+1])
  vec<stream_op> ops;
  diagnostic error{};
  constexpr bool ok() const { return error.ok(); }
  constexpr int streams() const { return 2 * ranks; }
  constexpr int events() const { return event_base.empty() ? 0 : event_base.back(); }
};

namespace detail {

/// A lowered table's lists as the stream program reads them: pointers into a `table` or a
/// frozen `static_table` (no copy: copying a large table costs more of the compiler's
/// constexpr budget than deriving its program).
struct lowered_view {
  int ranks = 0;
  vec<action const*> list;   ///< per rank: its actions
  vec<std::size_t> length;   ///< per rank: how many
  vec<int> slots;            ///< per rank: buffer slots
  std::size_t total = 0;
};

constexpr lowered_view view_of(table const& t) {
  lowered_view v{};
  v.ranks = t.ranks;
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  v.list.assign(p, nullptr);
  v.length.assign(p, 0);
  v.slots.assign(p, 0);
  for (std::size_t r = 0; r < p; ++r) {
    v.list[r] = t.lists[r].data();
    v.length[r] = t.lists[r].size();
    v.slots[r] = r < t.slot_count.size() ? t.slot_count[r] : 0;
    v.total += v.length[r];
  }
  return v;
}

template <std::size_t R, std::size_t S, std::size_t N, std::size_t L>
constexpr lowered_view view_of(static_table<R, S, N, L> const& st) {
  lowered_view v{};
  v.ranks = st.ranks;
  std::size_t const p = static_cast<std::size_t>(st.ranks);
  v.list.assign(p, nullptr);
  v.length.assign(p, 0);
  v.slots.assign(p, 0);
  for (std::size_t r = 0; r < p; ++r) {
    v.list[r] = st.actions + st.offset[r];
    v.length[r] = st.offset[r + 1] - st.offset[r];
    v.slots[r] = st.slot_count[r];
    v.total += v.length[r];
  }
  return v;
}

} // namespace detail

namespace detail {

/// The slot field f of action a (no_slot when unused).
constexpr std::uint16_t slot_of(action const& a, int f) { return f == 0 ? a.in : (f == 1 ? a.aux : a.out); }

/// Where the program touches slot fields of each action: per rank and action, what to wait
/// for before it and what to record after it. Bits: 1 wait written[in], 2 wait
/// written[aux], 4 wait released[out], 8 record written[out], 16 record released[in],
/// 32 record released[aux].
enum : std::uint8_t {
  wait_written_in = 1,
  wait_written_aux = 2,
  wait_released_out = 4,
  record_written_out = 8,
  record_released_in = 16,
  record_released_aux = 32,
};

/// What the program does around one action: its event bits, and for each wait the stream
/// that records the event it waits for (the content's writer stream for `written`, the
/// stream of the previous content's reads for `released`; -1: none), by field in, aux, out.
/// An executor keeps one event per (event, recording stream) and waits on that one, so the
/// stream must be the one that issued the event's latest record — which check_stream_order
/// and verify_stream_program check.
struct action_events {
  std::uint8_t bits = 0;
  std::int16_t source[3] = {-1, -1, -1};
};

/// The stream on which action i of rank r touches its slots: compute passes on the
/// rank's compute stream; a RECV on the rank's communication stream; a SEND on the
/// receiver's communication stream (copy mode: the copy runs there) or its own (rendezvous).
constexpr int access_stream(action const& a, int r, transfer_mode mode) {
  if (is_compute(a.kind)) return compute_stream(r);
  if (is_recv(a.kind) || mode == transfer_mode::rendezvous) return comm_stream(r);
  return comm_stream(a.peer);
}

/// The events each action needs (see the bits above), from the slots' contents in list
/// order: a read on another stream than its content's writer waits for `written` (once per
/// stream: later reads there follow in stream order); a write whose slot's previous
/// contents were read on another stream waits for `released`, recorded after the last of
/// those reads. Each content is read on one stream in the tables lowering makes; a table
/// whose contents are read on two other streams is refused (program_malformed).
constexpr diagnostic event_flags(lowered_view const& t, transfer_mode mode, vec<vec<action_events>>& flags) {
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  flags.assign(p, vec<action_events>{});
  // per slot: the current boundary's writer stream and action, the one stream its reads are
  // on (-1: none yet), and its last read there (action and field)
  vec<std::int32_t> state;
  for (std::size_t r = 0; r < p; ++r) {
    action const* const list = t.list[r];
    std::size_t const len = t.length[r];
    flags[r].assign(len, action_events{});
    action_events* const fl = flags[r].data();
    std::size_t const nslots = static_cast<std::size_t>(t.slots[r]);
    state.assign(nslots * 5, -1);
    std::int32_t* const st = state.data();
    int const rank = static_cast<int>(r);
    for (std::size_t i = 0; i < len; ++i) {
      action const& a = list[i];
      int const s = is_compute(a.kind) ? 2 * rank
                                       : ((is_recv(a.kind) || mode == transfer_mode::rendezvous) ? 2 * rank + 1
                                                                                                 : 2 * a.peer + 1);
      for (int f = 0; f < 2; ++f) { // reads: in, aux
        std::uint16_t const k = f == 0 ? a.in : a.aux;
        if (k == no_slot) continue;
        if (k >= nslots)
          return {errc::program_malformed, rank, static_cast<int>(i), a.stage, a.mb, "slot out of range"};
        std::int32_t* const c = st + 5 * k; // writer stream, writer, read stream, last reader, last field
        if (c[1] < 0)
          return {errc::program_unordered_read, rank, static_cast<int>(i), a.stage, a.mb, "reads a slot nothing wrote"};
        if (c[2] >= 0 && c[2] != s)
          return {errc::program_malformed, rank, static_cast<int>(i), a.stage, a.mb, "a boundary read on two streams"};
        if (c[2] < 0 && s != c[0]) {
          fl[i].bits |= f == 0 ? wait_written_in : wait_written_aux;
          fl[i].source[f] = static_cast<std::int16_t>(c[0]);
          fl[c[1]].bits |= record_written_out;
        }
        c[2] = s;
        c[3] = static_cast<std::int32_t>(i);
        c[4] = f;
      }
      std::uint16_t const k = a.out;
      if (k == no_slot) continue;
      if (k >= nslots) return {errc::program_malformed, rank, static_cast<int>(i), a.stage, a.mb, "slot out of range"};
      std::int32_t* const c = st + 5 * k;
      if (c[1] >= 0) {
        if (c[2] < 0)
          return {errc::program_malformed, rank, static_cast<int>(i), a.stage, a.mb,
                  "a boundary overwritten before anything read it"};
        if (c[2] != s) {
          fl[i].bits |= wait_released_out;
          fl[i].source[2] = static_cast<std::int16_t>(c[2]);
          fl[c[3]].bits |= c[4] == 0 ? record_released_in : record_released_aux;
        }
      }
      c[0] = s;
      c[1] = static_cast<std::int32_t>(i);
      c[2] = c[3] = c[4] = -1;
    }
  }
  return {};
}

/// Cost of an action for the issue order's clocks (transfers: the link latency).
constexpr double issue_cost(action const& a, cost_model const& c) {
  switch (a.kind) {
  case op::forward: return c.f;
  case op::backward: return c.b + c.w;
  case op::backward_input: return c.b;
  case op::backward_weight: return c.w;
  default: return c.c;
  }
}

/// One unit of the issue order: a compute action (rank, index), or a transfer pair (the
/// receiving rank, its RECV's index, the sender's SEND index), packed into 64 bits
/// (rank 16 bits, index 24, send index 24) so that large orders stay cheap in the compiler.
constexpr std::uint64_t make_unit(std::size_t rank, std::size_t index, std::size_t send_index = 0) {
  return static_cast<std::uint64_t>(rank) | (static_cast<std::uint64_t>(index) << 16) |
         (static_cast<std::uint64_t>(send_index) << 40);
}
constexpr std::size_t unit_rank(std::uint64_t u) { return static_cast<std::size_t>(u & 0xffff); }
constexpr std::size_t unit_index(std::uint64_t u) { return static_cast<std::size_t>((u >> 16) & 0xffffff); }
constexpr std::size_t unit_send_index(std::uint64_t u) { return static_cast<std::size_t>(u >> 40); }

/// Units of a lowered table: its compute passes plus one per transfer pair.
constexpr std::size_t unit_count(lowered_view const& t) {
  std::size_t n = 0;
  for (std::size_t r = 0; r < static_cast<std::size_t>(t.ranks); ++r)
    for (std::size_t i = 0; i < t.length[r]; ++i) n += is_send(t.list[r][i].kind) ? 0 : 1;
  return n;
}

/// The issue order: a rendezvous execution of the lowered lists in which the rank that runs
/// next is the one whose clock (the sum of its passes' costs, a transfer pair moving both
/// clocks to the later one) is smallest — the order the work runs in, so that no stream
/// starves while the issuing thread works on another rank's far future; a rank runs on while
/// its clock stays within one pass (F + B + W) of the next. Every rank's actions appear in
/// its list order; a transfer pair is one unit.
constexpr diagnostic issue_units(lowered_view const& t, cost_model const& costs, vec<std::uint64_t>& units) {
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  vec<std::size_t> ptr_v(p, 0);
  vec<double> clock_v(p, 0.0);
  action const* const* const lp = t.list.data();
  std::size_t const* const ln = t.length.data();
  std::size_t* const ptr = ptr_v.data();
  double* const clock = clock_v.data();
  units.resize(t.total);
  std::uint64_t* const out = units.data();
  std::size_t nout = 0;
  // whether rank r's head can be issued now (a transfer needs its partner at its head); kept
  // up to date as ranks advance, so a scan reads p flags
  vec<char> ready_v(p, 0);
  char* const rd = ready_v.data();
  auto refresh = [&](std::size_t r) {
    bool ok = false;
    if (ptr[r] < ln[r]) {
      action const& a = lp[r][ptr[r]];
      if (a.kind <= op::backward_weight) ok = true;
      else if (a.peer < p && ptr[a.peer] < ln[a.peer]) {
        action const& b = lp[a.peer][ptr[a.peer]];
        ok = b.peer == r && (is_send(a.kind) ? is_recv(b.kind) : is_send(b.kind));
      }
    }
    rd[r] = ok ? 1 : 0;
  };
  auto refresh_around = [&](std::size_t r) {
    refresh(r);
    if (ptr[r] < ln[r] && lp[r][ptr[r]].kind > op::backward_weight && lp[r][ptr[r]].peer < p)
      refresh(lp[r][ptr[r]].peer);
  };
  for (std::size_t r = 0; r < p; ++r) refresh(r);
  double const quantum = costs.f + costs.b + costs.w;
  std::size_t remaining = t.total;
  while (remaining > 0) {
    std::size_t best = p;
    double next = 0; // the smallest clock of the other ready ranks
    bool have_next = false;
    for (std::size_t r = 0; r < p; ++r) {
      if (!rd[r]) continue;
      if (best == p || clock[r] < clock[best]) {
        if (best != p && (!have_next || clock[best] < next)) {
          next = clock[best];
          have_next = true;
        }
        best = r;
      } else if (!have_next || clock[r] < next) {
        next = clock[r];
        have_next = true;
      }
    }
    if (best == p) {
      for (std::size_t r = 0; r < p; ++r)
        if (ptr[r] < ln[r]) {
          action const& a = lp[r][ptr[r]];
          return {errc::transfer_deadlock, static_cast<int>(r), static_cast<int>(ptr[r]), a.stage, a.mb,
                  "the transfers cannot be issued in any order"};
        }
    }
    do {
      std::size_t const i = ptr[best];
      action const& a = lp[best][i];
      if (a.kind <= op::backward_weight) {
        out[nout++] = make_unit(best, i);
        clock[best] += issue_cost(a, costs);
        ++ptr[best];
        --remaining;
        refresh_around(best);
        continue;
      }
      std::size_t const q = a.peer;
      std::size_t const j = ptr[q];
      bool const sending = is_send(a.kind);
      out[nout++] = sending ? make_unit(q, j, i) : make_unit(best, i, j);
      double const done = (clock[best] > clock[q] ? clock[best] : clock[q]) + issue_cost(a, costs);
      clock[best] = clock[q] = done;
      ++ptr[best];
      ++ptr[q];
      remaining -= 2;
      refresh_around(q);
      refresh_around(best);
    } while (rd[best] && (!have_next || clock[best] <= next + quantum));
  }
  units.resize(nout);
  return {};
}

/// Calls emit(op) for the stream ops of one unit: its waits, its op (an exec, a copy, or a
/// send and its receive side by side), its records. `flags(r, i)` gives action i of rank r's
/// action_events (event_flags); events: written[k] = base[r] + k, released[k] = base[r] +
/// slots_r + k. A wait op carries the stream whose record it waits for in peer_action.
template <class Flags, class Emit>
constexpr void expand_unit(lowered_view const& t, transfer_mode mode, int const* base, Flags const& flags,
                           std::uint64_t u, Emit&& emit) {
  using k = stream_op_kind;
  // a wait carries, in peer_action, the stream that records the event it waits for
  auto waits = [&](std::size_t r, std::size_t i, int s) {
    action_events const e = flags(r, i);
    std::uint8_t const f = e.bits;
    if (!(f & (wait_written_in | wait_written_aux | wait_released_out))) return;
    action const& a = t.list[r][i];
    std::uint16_t const st = static_cast<std::uint16_t>(s), rk = static_cast<std::uint16_t>(r);
    int const b = base[r], half = (base[r + 1] - base[r]) / 2;
    auto src = [&](int f_) { return static_cast<std::uint32_t>(e.source[f_]); };
    if (f & wait_written_in) emit(stream_op{k::wait, st, rk, static_cast<std::uint16_t>(b + a.in), 0, src(0)});
    if (f & wait_written_aux) emit(stream_op{k::wait, st, rk, static_cast<std::uint16_t>(b + a.aux), 0, src(1)});
    if (f & wait_released_out)
      emit(stream_op{k::wait, st, rk, static_cast<std::uint16_t>(b + half + a.out), 0, src(2)});
  };
  auto records = [&](std::size_t r, std::size_t i, int s) {
    std::uint8_t const f = flags(r, i).bits;
    if (!(f & (record_written_out | record_released_in | record_released_aux))) return;
    action const& a = t.list[r][i];
    std::uint16_t const st = static_cast<std::uint16_t>(s), rk = static_cast<std::uint16_t>(r);
    int const b = base[r], half = (base[r + 1] - base[r]) / 2;
    if (f & record_written_out) emit(stream_op{k::record, st, rk, static_cast<std::uint16_t>(b + a.out), 0, 0});
    if (f & record_released_in) emit(stream_op{k::record, st, rk, static_cast<std::uint16_t>(b + half + a.in), 0, 0});
    if (f & record_released_aux)
      emit(stream_op{k::record, st, rk, static_cast<std::uint16_t>(b + half + a.aux), 0, 0});
  };
  std::size_t const r = unit_rank(u), i = unit_index(u);
  action const& a = t.list[r][i];
  if (is_compute(a.kind)) {
    int const s = compute_stream(static_cast<int>(r));
    // An overlapped pair (a forward flagged overlap_next and the B or I after it) is one
    // stretch of the compute stream: both halves' waits, the two execs, both halves' records
    // — so an executor may run it as one call of the functor's forward_backward at the
    // forward's exec. (Lowering put the receives of both halves before the pair and its sends
    // after, so the backward half's waits have their records issued before the pair.)
    bool const opens = overlaps_next(a) && i + 1 < t.length[r] && is_compute(t.list[r][i + 1].kind);
    bool const closes = i > 0 && overlaps_next(t.list[r][i - 1]) && is_compute(t.list[r][i - 1].kind);
    if (!closes) waits(r, i, s);
    if (opens) waits(r, i + 1, s);
    emit(stream_op{k::exec, static_cast<std::uint16_t>(s), static_cast<std::uint16_t>(r), no_event,
                   static_cast<std::uint32_t>(i), 0});
    if (closes) records(r, i - 1, s);
    if (!opens) records(r, i, s);
    return;
  }
  // a transfer pair: RECV i of rank r, SEND si of rank q
  std::size_t const q = a.peer, si = unit_send_index(u);
  int const rs = comm_stream(static_cast<int>(r)), qs = comm_stream(static_cast<int>(q));
  if (mode == transfer_mode::copy) {
    waits(q, si, rs);
    waits(r, i, rs);
    emit(stream_op{k::copy, static_cast<std::uint16_t>(rs), static_cast<std::uint16_t>(r), no_event,
                   static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(si)});
    records(r, i, rs);
    records(q, si, rs);
  } else {
    // both sides' waits, then the send and its receive side by side (so that issuing in
    // order is itself a rendezvous execution), then the records
    waits(q, si, qs);
    waits(r, i, rs);
    emit(stream_op{k::send, static_cast<std::uint16_t>(qs), static_cast<std::uint16_t>(q), no_event,
                   static_cast<std::uint32_t>(si), 0});
    emit(stream_op{k::recv, static_cast<std::uint16_t>(rs), static_cast<std::uint16_t>(r), no_event,
                   static_cast<std::uint32_t>(i), 0});
    records(q, si, qs);
    records(r, i, rs);
  }
}

/// Events of each rank (2 per slot) as offsets: ranks + 1 entries.
constexpr vec<int> event_bases(lowered_view const& t) {
  vec<int> base(static_cast<std::size_t>(t.ranks) + 1, 0);
  for (std::size_t r = 0; r < static_cast<std::size_t>(t.ranks); ++r) base[r + 1] = base[r] + 2 * t.slots[r];
  return base;
}

} // namespace detail

/// Derives the stream program of a lowered table (buffer slots assigned).
///
/// Issue order (detail::issue_units): one host thread issues every rank's work, in the
/// order of a rendezvous execution that follows the ranks' clocks under `costs`.
///
/// Per rank: compute passes on its compute stream in list order; transfers on
/// communication streams (copy mode: each boundary's copy on the receiver's, issued at the
/// sweep point of its send, when the data is produced; rendezvous mode: sends and receives
/// on their own rank's, in list order). Events (detail::event_flags): a boundary slot is
/// written only after its previous contents' last read (the send included) is done; the
/// first reader on another stream than the writer waits for the write just before it reads
/// (not at the receive's place); nothing else is synchronised.
constexpr stream_program derive_stream_program(detail::lowered_view const& t, transfer_mode mode = transfer_mode::copy,
                                               cost_model const& costs = {}) {
  stream_program prog{};
  prog.ranks = t.ranks;
  prog.mode = mode;
  vec<vec<detail::action_events>> flags;
  if (auto d = detail::event_flags(t, mode, flags)) {
    prog.error = d;
    return prog;
  }
  vec<std::uint64_t> units;
  if (auto d = detail::issue_units(t, costs, units)) {
    prog.error = d;
    return prog;
  }
  prog.event_base = detail::event_bases(t);
  prog.ops.reserve(t.total * 3);
  auto fl = [&](std::size_t r, std::size_t i) { return flags[r][i]; };
  for (std::uint64_t u : units)
    detail::expand_unit(t, mode, prog.event_base.data(), fl, u, [&](stream_op const& o) { prog.ops.push_back(o); });
  return prog;
}

/// The same for a run-time table (lowered, slots assigned).
constexpr stream_program derive_stream_program(table const& t, transfer_mode mode = transfer_mode::copy,
                                               cost_model const& costs = {}) {
  if (!t.ok() || !t.lowered) {
    stream_program prog{};
    prog.ranks = t.ranks;
    prog.mode = mode;
    prog.error = t.ok() ? diagnostic{errc::program_malformed, -1, -1, -1, -1, "the table has no transfers: lower it first"}
                        : t.error;
    return prog;
  }
  return derive_stream_program(detail::view_of(t), mode, costs);
}

/// Checks a stream program against CUDA's semantics, by running it in a model:
///
/// - each stream runs its ops in issue order;
/// - `record(e)` on a stream marks the point after the stream's earlier ops; a `wait(e)`
///   issued on a stream makes its later ops wait for the *latest record of e issued before
///   the wait* — a wait on an event that has not yet been recorded in issue order waits for
///   nothing (as cudaStreamWaitEvent does), and a later re-record does not count;
/// - a copy is one op on its stream; a send and its receive complete together (rendezvous
///   of the two communication streams).
///
/// Happens-before is tracked with a vector clock per stream. Then: every action of the
/// table runs exactly once, compute passes of a rank in its list order on its compute
/// stream; every read of a boundary slot happens after the write of the boundary it
/// expects (program_unordered_read); every write of a slot happens after every read of
/// the slot's previous contents, the send included (program_unordered_rewrite); and the
/// streams never wait on each other in a cycle (program_hang). The diagnostic names the
/// rank and the position of the action in its list.
constexpr diagnostic verify_stream_program(detail::lowered_view const& t, stream_program const& prog) {
  if (!prog.ok()) return prog.error;
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  if (prog.ranks != t.ranks || prog.event_base.size() != p + 1)
    return {errc::program_malformed, -1, -1, -1, -1, "the program is for another number of ranks"};
  std::size_t const ns = 2 * p;
  std::size_t const n = prog.ops.size();
  std::size_t const ne = static_cast<std::size_t>(prog.events());
  stream_op const* const ops = prog.ops.data();
  auto bad = [&](std::size_t g, const char* why) {
    stream_op const& o = ops[g];
    int const r = o.rank;
    bool const on_table = (o.kind == stream_op_kind::exec || o.kind == stream_op_kind::copy ||
                           o.kind == stream_op_kind::send || o.kind == stream_op_kind::recv) &&
                          static_cast<std::size_t>(r) < p && o.action < t.length[static_cast<std::size_t>(r)];
    action const a = on_table ? t.list[static_cast<std::size_t>(r)][o.action] : action{};
    return diagnostic{errc::program_malformed, r, on_table ? static_cast<int>(o.action) : -1,
                      on_table ? a.stage : -1, on_table ? a.mb : -1, why};
  };

  // 1. shape: every op names a valid stream, rank, event and action; every action of the
  //    table is run exactly once; a rank's compute passes on its compute stream in order.
  vec<vec<char>> seen(p);
  for (std::size_t r = 0; r < p; ++r) seen[r].assign(t.length[r], 0);
  vec<std::size_t> next_compute(p, 0);
  for (std::size_t g = 0; g < n; ++g) {
    stream_op const& o = ops[g];
    if (o.stream >= ns || o.rank >= p) return bad(g, "a stream or rank out of range");
    // rendezvous mode (one process per rank): a rank issues only ops of its own streams,
    // records only its own events and waits only on its own streams' records
    if (prog.mode == transfer_mode::rendezvous && o.stream / 2u != o.rank)
      return bad(g, "an op on another rank's stream (a rendezvous program keeps each rank on its own streams)");
    if (o.kind == stream_op_kind::record || o.kind == stream_op_kind::wait) {
      if (o.event >= ne) return bad(g, "an event out of range");
      if (o.kind == stream_op_kind::wait && o.peer_action >= ns) return bad(g, "a wait names a stream out of range");
      if (o.kind == stream_op_kind::wait && prog.mode == transfer_mode::rendezvous && o.peer_action / 2u != o.rank)
        return bad(g, "a wait on another rank's stream (a rendezvous program keeps each rank on its own streams)");
      continue;
    }
    std::size_t const r = o.rank;
    if (o.action >= t.length[r]) return bad(g, "an action out of range");
    action const& a = t.list[r][o.action];
    auto mark = [&](std::size_t rr, std::size_t i) {
      if (seen[rr][i]) return false;
      seen[rr][i] = 1;
      return true;
    };
    if (o.kind == stream_op_kind::exec) {
      if (!is_compute(a.kind)) return bad(g, "exec of a transfer");
      if (o.stream != compute_stream(static_cast<int>(r))) return bad(g, "a pass off its rank's compute stream");
      // the rank's compute passes in list order
      std::size_t k = next_compute[r];
      while (k < t.length[r] && !is_compute(t.list[r][k].kind)) ++k;
      if (k != o.action) return bad(g, "a rank's passes out of its list order");
      next_compute[r] = k + 1;
      if (!mark(r, o.action)) return bad(g, "an action run twice");
    } else if (o.kind == stream_op_kind::copy) {
      std::size_t const q = a.peer;
      if (!is_recv(a.kind) || q >= p || o.peer_action >= t.length[q]) return bad(g, "a copy without its receive");
      action const& sa = t.list[q][o.peer_action];
      if (!is_send(sa.kind) || sa.peer != r || sa.mb != a.mb ||
          (sa.kind == op::send_act) != (a.kind == op::recv_act))
        return bad(g, "a copy between a send and a receive of different boundaries");
      if (!mark(r, o.action) || !mark(q, o.peer_action)) return bad(g, "an action run twice");
    } else {
      if (o.kind == stream_op_kind::send ? !is_send(a.kind) : !is_recv(a.kind)) return bad(g, "send/recv of another action");
      if (!mark(r, o.action)) return bad(g, "an action run twice");
    }
  }
  for (std::size_t r = 0; r < p; ++r)
    for (std::size_t i = 0; i < t.length[r]; ++i)
      if (!seen[r][i]) {
        action const& a = t.list[r][i];
        return {errc::program_malformed, static_cast<int>(r), static_cast<int>(i), a.stage, a.mb,
                "an action the program never runs"};
      }

  // 2. the ops of each stream, and the record each wait refers to (the latest record of its
  //    event issued before it, or none)
  vec<vec<std::uint32_t>> stream_ops(ns);
  vec<std::int32_t> latest(ne, -1);
  vec<std::int32_t> refers(n, -1);
  vec<char> referenced(n, 0);
  for (std::size_t g = 0; g < n; ++g) {
    stream_op const& o = ops[g];
    stream_ops[o.stream].push_back(static_cast<std::uint32_t>(g));
    if (o.kind == stream_op_kind::record) latest[o.event] = static_cast<std::int32_t>(g);
    else if (o.kind == stream_op_kind::wait && latest[o.event] >= 0) {
      if (o.peer_action != ops[static_cast<std::size_t>(latest[o.event])].stream)
        return bad(g, "a wait names another stream than the one that issued its event's latest record");
      refers[g] = latest[o.event];
      referenced[static_cast<std::size_t>(latest[o.event])] = 1;
    }
  }
  // rendezvous partners: a send and the receive of the same boundary on its peer, paired in
  // order per (sender, receiver)
  vec<std::int32_t> partner(n, -1);
  {
    vec<vec<std::uint32_t>> pending(p * p); // sends from r to q not yet paired
    vec<std::size_t> head(p * p, 0);
    for (std::size_t g = 0; g < n; ++g)
      if (ops[g].kind == stream_op_kind::send) {
        action const& a = t.list[ops[g].rank][ops[g].action];
        pending[ops[g].rank * p + a.peer].push_back(static_cast<std::uint32_t>(g));
      }
    for (std::size_t g = 0; g < n; ++g) {
      if (ops[g].kind != stream_op_kind::recv) continue;
      action const& b = t.list[ops[g].rank][ops[g].action];
      std::size_t const key = static_cast<std::size_t>(b.peer) * p + ops[g].rank;
      if (b.peer >= p || head[key] >= pending[key].size()) return bad(g, "a receive without its send");
      std::size_t const sg = pending[key][head[key]++];
      action const& a = t.list[ops[sg].rank][ops[sg].action];
      if (a.mb != b.mb || (a.kind == op::send_act) != (b.kind == op::recv_act))
        return bad(g, "a receive paired with the send of another boundary");
      partner[g] = static_cast<std::int32_t>(sg);
      partner[sg] = static_cast<std::int32_t>(g);
    }
    for (std::size_t k = 0; k < p * p; ++k)
      if (head[k] < pending[k].size()) return bad(pending[k][head[k]], "a send without its receive");
  }

  // 3. what each access must be ordered with, from the table alone (list order defines
  //    which boundary each read expects and which boundary each write replaces): per slot
  //    contents, each with its writer op and its last reader op on each stream.
  vec<vec<std::uint32_t>> op_of(p); // per rank and action: the op that runs it
  for (std::size_t r = 0; r < p; ++r) op_of[r].assign(t.length[r], 0);
  vec<std::uint32_t> pos_in_stream(n, 0); // 1-based position of each op on its stream
  for (std::size_t s = 0; s < ns; ++s)
    for (std::size_t k = 0; k < stream_ops[s].size(); ++k) pos_in_stream[stream_ops[s][k]] = static_cast<std::uint32_t>(k + 1);
  for (std::size_t g = 0; g < n; ++g) {
    stream_op const& o = ops[g];
    if (o.kind == stream_op_kind::record || o.kind == stream_op_kind::wait) continue;
    op_of[o.rank][o.action] = static_cast<std::uint32_t>(g);
    if (o.kind == stream_op_kind::copy) op_of[t.list[o.rank][o.action].peer][o.peer_action] = static_cast<std::uint32_t>(g);
  }
  struct content {
    std::uint32_t writer = 0;              ///< op
    std::int32_t reader[2] = {-1, -1};     ///< last reader op on each of at most two streams
    std::uint32_t writer_rank = 0, writer_action = 0;
  };
  vec<content> contents;
  vec<vec<std::int32_t>> read_content(p);  // per rank, 2 per action (in, aux): content read
  vec<vec<std::int32_t>> prev_content(p);  // per rank, per action: content its write replaces
  {
    vec<std::int32_t> current;
    for (std::size_t r = 0; r < p; ++r) {
      action const* const list = t.list[r];
      read_content[r].assign(2 * t.length[r], -1);
      prev_content[r].assign(t.length[r], -1);
      current.assign(static_cast<std::size_t>(t.slots[r]), -1);
      for (std::size_t i = 0; i < t.length[r]; ++i) {
        action const& a = list[i];
        std::uint32_t const g = op_of[r][i];
        std::uint16_t const s = ops[g].stream;
        for (int f = 0; f < 2; ++f) {
          std::uint16_t const k = detail::slot_of(a, f);
          if (k == no_slot) continue;
          if (k >= current.size() || current[k] < 0)
            return {errc::program_unordered_read, static_cast<int>(r), static_cast<int>(i), a.stage, a.mb,
                    "reads a slot nothing wrote"};
          std::int32_t const c = current[k];
          read_content[r][2 * i + static_cast<std::size_t>(f)] = c;
          content& ct = contents[static_cast<std::size_t>(c)];
          int q = 0;
          while (q < 2 && ct.reader[q] >= 0 && ops[static_cast<std::size_t>(ct.reader[q])].stream != s) ++q;
          if (q == 2)
            return {errc::program_malformed, static_cast<int>(r), static_cast<int>(i), a.stage, a.mb,
                    "a boundary read on more than two streams"};
          if (ct.reader[q] < 0 || pos_in_stream[static_cast<std::size_t>(ct.reader[q])] < pos_in_stream[g])
            ct.reader[q] = static_cast<std::int32_t>(g);
        }
        if (a.out == no_slot) continue;
        if (a.out >= current.size())
          return {errc::program_malformed, static_cast<int>(r), static_cast<int>(i), a.stage, a.mb, "slot out of range"};
        prev_content[r][i] = current[a.out];
        content c{};
        c.writer = g;
        c.writer_rank = static_cast<std::uint32_t>(r);
        c.writer_action = static_cast<std::uint32_t>(i);
        current[a.out] = static_cast<std::int32_t>(contents.size());
        contents.push_back(c);
      }
    }
  }

  // 4. the model: streams advance through their ops; vector clocks (clock[s*ns + x]: how
  //    many ops of stream x happen before stream s's current point); record snapshots for
  //    waits. Op X happens before a point with clock vc iff vc[stream(X)] >= position of X,
  //    whether or not the model has run X yet — so each check below is exact whatever order
  //    the model runs the streams in.
  vec<std::uint32_t> clock_v(ns * ns, 0);
  std::uint32_t* const clock = clock_v.data();
  vec<std::int32_t> snap_of(n, -1);
  vec<std::uint32_t> snaps;
  vec<std::size_t> pos_v(ns, 0); // next op index within each stream
  std::size_t* const pos = pos_v.data();
  vec<char> done_v(n, 0);
  char* const done = done_v.data();
  auto before = [&](std::uint32_t x, std::uint32_t const* vc) { return vc[ops[x].stream] >= pos_in_stream[x]; };
  auto fail_at = [&](errc e, std::size_t r, std::size_t i, const char* why) {
    action const& a = t.list[r][i];
    return diagnostic{e, static_cast<int>(r), static_cast<int>(i), a.stage, a.mb, why};
  };
  // the reads (fields in, aux) and the write of action (r, i), run at a point with clock vc
  auto check_reads = [&](std::size_t r, std::size_t i, std::uint32_t const* vc, bool sending) -> diagnostic {
    for (std::size_t f = 0; f < 2; ++f) {
      std::int32_t const c = read_content[r][2 * i + f];
      if (c >= 0 && !before(contents[static_cast<std::size_t>(c)].writer, vc))
        return fail_at(errc::program_unordered_read, r, i,
                       sending ? "the transfer reads its boundary before it is written"
                               : (f == 0 ? "reads its input before its write is done"
                                         : "reads its saved input before its write is done"));
    }
    return {};
  };
  auto check_write = [&](std::size_t r, std::size_t i, std::uint32_t const* vc) -> diagnostic {
    std::int32_t const c = prev_content[r][i];
    if (c < 0) return {};
    content const& ct = contents[static_cast<std::size_t>(c)];
    if (!before(ct.writer, vc))
      return fail_at(errc::program_unordered_rewrite, r, i, "rewrites a slot before its previous write is done");
    for (int q = 0; q < 2; ++q)
      if (ct.reader[q] >= 0 && !before(static_cast<std::uint32_t>(ct.reader[q]), vc))
        return fail_at(errc::program_unordered_rewrite, r, i,
                       "rewrites a slot while its previous boundary may still be read or sent");
    return {};
  };
  auto accesses = [&](std::size_t g, std::uint32_t const* vc) -> diagnostic {
    stream_op const& o = ops[g];
    std::size_t const r = o.rank;
    if (o.kind == stream_op_kind::copy) {
      std::size_t const q = t.list[r][o.action].peer;
      if (auto d = check_reads(q, o.peer_action, vc, true)) return d;
      return check_write(r, o.action, vc);
    }
    if (auto d = check_reads(r, o.action, vc, o.kind == stream_op_kind::send)) return d;
    return check_write(r, o.action, vc);
  };

  std::size_t remaining = n;
  vec<std::uint32_t> work;
  for (std::size_t s = ns; s-- > 0;) work.push_back(static_cast<std::uint32_t>(s));
  vec<char> queued_v(ns, 1);
  char* const queued = queued_v.data();
  vec<std::uint32_t> merged(ns, 0);
  auto wake = [&](std::size_t s) {
    if (!queued[s]) {
      queued[s] = 1;
      work.push_back(static_cast<std::uint32_t>(s));
    }
  };
  // the record op each stream is blocked at a wait for (-1: none); woken when it runs
  vec<std::int32_t> blocked_on(ns, -1);
  while (!work.empty()) {
    std::size_t const s = work.back();
    work.pop_back();
    queued[s] = 0;
    std::uint32_t* const vc = clock + s * ns;
    while (pos[s] < stream_ops[s].size()) {
      std::size_t const g = stream_ops[s][pos[s]];
      stream_op const& o = ops[g];
      if (o.kind == stream_op_kind::wait) {
        std::int32_t const rec = refers[g];
        if (rec >= 0 && !done[rec]) {
          blocked_on[s] = rec;
          break;
        }
        blocked_on[s] = -1;
        if (rec >= 0) {
          std::uint32_t const* sv = snaps.data() + static_cast<std::size_t>(snap_of[static_cast<std::size_t>(rec)]) * ns;
          for (std::size_t x = 0; x < ns; ++x) vc[x] = vc[x] > sv[x] ? vc[x] : sv[x];
        }
      } else if (o.kind == stream_op_kind::send || o.kind == stream_op_kind::recv) {
        std::size_t const h = static_cast<std::size_t>(partner[g]);
        std::size_t const s2 = ops[h].stream;
        if (s2 == s) return bad(g, "a send and its receive on one stream");
        if (pos[s2] >= stream_ops[s2].size() || stream_ops[s2][pos[s2]] != h) {
          // the partner stream completes the pair when it reaches it; wake it if it is
          // waiting at its partner op already
          break;
        }
        std::uint32_t* const vc2 = clock + s2 * ns;
        for (std::size_t x = 0; x < ns; ++x) merged[x] = vc[x] > vc2[x] ? vc[x] : vc2[x];
        merged[s] += 1;
        merged[s2] += 1;
        // the pair's accesses: the send reads, the receive writes (the data moves between)
        if (auto d = accesses(g, merged.data())) return d;
        if (auto d = accesses(h, merged.data())) return d;
        for (std::size_t x = 0; x < ns; ++x) vc[x] = vc2[x] = merged[x];
        done[g] = done[h] = 1;
        ++pos[s];
        ++pos[s2];
        remaining -= 2;
        wake(s2);
        continue;
      }
      vc[s] += 1;
      if (o.kind == stream_op_kind::exec || o.kind == stream_op_kind::copy) {
        if (auto d = accesses(g, vc)) return d;
      } else if (o.kind == stream_op_kind::record && referenced[g]) {
        snap_of[g] = static_cast<std::int32_t>(snaps.size() / ns);
        for (std::size_t x = 0; x < ns; ++x) snaps.push_back(vc[x]);
        for (std::size_t x = 0; x < ns; ++x)
          if (blocked_on[x] == static_cast<std::int32_t>(g)) wake(x);
      }
      done[g] = 1;
      ++pos[s];
      --remaining;
    }
    // a stream stopped at a send/recv: its partner's stream may be waiting at the partner
    if (pos[s] < stream_ops[s].size()) {
      std::size_t const g = stream_ops[s][pos[s]];
      if (ops[g].kind == stream_op_kind::send || ops[g].kind == stream_op_kind::recv) {
        std::size_t const h = static_cast<std::size_t>(partner[g]);
        std::size_t const s2 = ops[h].stream;
        if (pos[s2] < stream_ops[s2].size() && stream_ops[s2][pos[s2]] == h) wake(s2);
      }
    }
  }
  if (remaining > 0) {
    for (std::size_t s = 0; s < ns; ++s)
      if (pos[s] < stream_ops[s].size()) {
        stream_op const& o = ops[stream_ops[s][pos[s]]];
        // name the table action the stuck stream is at (or the next one it would run)
        for (std::size_t k = pos[s]; k < stream_ops[s].size(); ++k) {
          stream_op const& x = ops[stream_ops[s][k]];
          if (x.kind == stream_op_kind::exec || x.kind == stream_op_kind::send || x.kind == stream_op_kind::recv ||
              x.kind == stream_op_kind::copy)
            return fail_at(errc::program_hang, x.rank, x.action,
                           o.kind == stream_op_kind::wait ? "a stream waits for an event recorded after a point it "
                                                            "blocks itself"
                                                          : "sends and receives wait on each other in a cycle");
        }
        return diagnostic{errc::program_hang, static_cast<int>(s / 2), -1, -1, -1, "a stream never finishes"};
      }
  }
  return {};
}

/// The same for a run-time table.
constexpr diagnostic verify_stream_program(table const& t, stream_program const& prog) {
  if (!t.ok()) return t.error;
  return verify_stream_program(detail::view_of(t), prog);
}

namespace detail {

/// The state of check_stream_order between ops, as pointers into storage the caller owns (a
/// run-time check keeps it in vecs; the compiler, in a struct of arrays frozen between
/// constant evaluations, so that a long program is checked in several evaluations).
struct order_state_ref {
  std::uint32_t* pos;        ///< per stream: ops issued so far
  std::uint32_t* known;      ///< [stream * streams + other]: the furthest op of `other` a wait ordered before it
  std::int32_t* rec_stream;  ///< per event: the stream of its latest record (-1: none)
  std::uint32_t* rec_pos;    ///< per event: that record's position
  std::size_t* next;         ///< per rank: the index of its next action
  std::int32_t* content;     ///< per slot (slot_base order), 6 entries: writer stream and position, readers
  std::size_t const* slot_base;
  bool* pending_send;        ///< rendezvous: the last op was a send
  stream_op* last_send;
  diagnostic* error;
};

/// One op of check_stream_order; false (and *error set) when the program fails.
constexpr bool check_op(lowered_view const& t, std::size_t ne, order_state_ref const& st, stream_op const& o) {
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  std::size_t const ns = 2 * p;
  std::uint32_t* const pos = st.pos;
  std::uint32_t* const known = st.known;
  auto fail = [&](errc e, std::size_t r, std::size_t i, const char* why) {
    action const& a = t.list[r][i];
    *st.error = diagnostic{e, static_cast<int>(r), static_cast<int>(i), a.stage, a.mb, why};
    return false;
  };
  auto ordered = [&](std::int32_t from_stream, std::int32_t from_pos, std::size_t s) {
    return from_stream == static_cast<std::int32_t>(s) ||
           known[s * ns + static_cast<std::size_t>(from_stream)] >= static_cast<std::uint32_t>(from_pos);
  };
  auto read = [&](std::size_t r, std::size_t i, std::uint16_t k, std::size_t s, const char* why) {
    if (k == no_slot) return true;
    if (k >= static_cast<std::size_t>(t.slots[r])) return fail(errc::program_malformed, r, i, "slot out of range");
    std::int32_t* const c = st.content + (st.slot_base[r] + k) * 6;
    if (c[0] < 0 || !ordered(c[0], c[1], s)) return fail(errc::program_unordered_read, r, i, why);
    std::int32_t const me = static_cast<std::int32_t>(s), at = static_cast<std::int32_t>(pos[s]);
    if (c[2] < 0 || c[2] == me) {
      c[2] = me;
      c[3] = at;
    } else if (c[4] < 0 || c[4] == me) {
      c[4] = me;
      c[5] = at;
    } else {
      return fail(errc::program_malformed, r, i, "a boundary read on more than two streams");
    }
    return true;
  };
  auto write = [&](std::size_t r, std::size_t i, std::uint16_t k, std::size_t s) {
    if (k == no_slot) return true;
    if (k >= static_cast<std::size_t>(t.slots[r])) return fail(errc::program_malformed, r, i, "slot out of range");
    std::int32_t* const c = st.content + (st.slot_base[r] + k) * 6;
    // with readers, the previous write is ordered before them (checked at each read), and
    // they before this write: only an unread boundary needs its writer checked directly
    if (c[0] >= 0 && c[2] < 0 && !ordered(c[0], c[1], s))
      return fail(errc::program_unordered_rewrite, r, i, "rewrites a slot before its previous write is done");
    if ((c[2] >= 0 && !ordered(c[2], c[3], s)) || (c[4] >= 0 && !ordered(c[4], c[5], s)))
      return fail(errc::program_unordered_rewrite, r, i,
                  "rewrites a slot while its previous boundary may still be read or sent");
    c[0] = static_cast<std::int32_t>(s);
    c[1] = static_cast<std::int32_t>(pos[s]);
    c[2] = c[3] = c[4] = c[5] = -1;
    return true;
  };
  auto in_order = [&](std::size_t r, std::size_t i) {
    if (r >= p || i >= t.length[r] || i != st.next[r]) return false;
    ++st.next[r];
    return true;
  };
  std::size_t const s = o.stream;
  if (s >= ns || o.rank >= p) {
    *st.error = {errc::program_malformed, -1, -1, -1, -1, "a stream or rank out of range"};
    return false;
  }
  if (*st.pending_send && o.kind != stream_op_kind::recv) {
    *st.error = {errc::program_hang, st.last_send->rank, static_cast<int>(st.last_send->action), -1, -1,
                 "a rendezvous send not issued right next to its receive"};
    return false;
  }
  ++pos[s];
  std::size_t const r = o.rank, i = o.action;
  switch (o.kind) {
  case stream_op_kind::record:
    if (o.event >= ne) break;
    st.rec_stream[o.event] = static_cast<std::int32_t>(s);
    st.rec_pos[o.event] = pos[s];
    return true;
  case stream_op_kind::wait:
    if (o.event >= ne) break;
    if (st.rec_stream[o.event] >= 0 && static_cast<std::int32_t>(o.peer_action) != st.rec_stream[o.event]) {
      *st.error = {errc::program_malformed, static_cast<int>(o.rank), -1, -1, -1,
                   "a wait names another stream than the one that issued its event's latest record"};
      return false;
    }
    if (st.rec_stream[o.event] >= 0) {
      std::uint32_t& kn = known[s * ns + static_cast<std::size_t>(st.rec_stream[o.event])];
      kn = kn > st.rec_pos[o.event] ? kn : st.rec_pos[o.event];
    }
    return true;
  case stream_op_kind::exec: {
    if (r >= p || i >= t.length[r]) break;
    if (!in_order(r, i) || !is_compute(t.list[r][i].kind) || s != 2 * r)
      return fail(errc::program_malformed, r, i, "a pass out of its rank's list order or off its compute stream");
    action const& a = t.list[r][i];
    return read(r, i, a.in, s, "reads its input before its write is done") &&
           read(r, i, a.aux, s, "reads its saved input before its write is done") && write(r, i, a.out, s);
  }
  case stream_op_kind::copy: {
    if (i >= t.length[r] || !is_recv(t.list[r][i].kind)) break;
    std::size_t const q = t.list[r][i].peer, si = o.peer_action;
    if (q >= p || si >= t.length[q] || !is_send(t.list[q][si].kind) || t.list[q][si].peer != r ||
        t.list[q][si].mb != t.list[r][i].mb || !in_order(r, i) || !in_order(q, si))
      return fail(errc::program_malformed, r, i, "a copy out of its ranks' list order or of another boundary");
    return read(q, si, t.list[q][si].in, s, "the transfer reads its boundary before it is written") &&
           write(r, i, t.list[r][i].out, s);
  }
  case stream_op_kind::send:
    if (i >= t.length[r]) break;
    if (!in_order(r, i) || !is_send(t.list[r][i].kind))
      return fail(errc::program_malformed, r, i, "a send out of its rank's list order");
    *st.pending_send = true;
    *st.last_send = o;
    return read(r, i, t.list[r][i].in, s, "the transfer reads its boundary before it is written");
  case stream_op_kind::recv: {
    if (i >= t.length[r]) break;
    if (!in_order(r, i) || !is_recv(t.list[r][i].kind))
      return fail(errc::program_malformed, r, i, "a receive out of its rank's list order");
    action const& b = t.list[r][i];
    stream_op const& ls = *st.last_send;
    if (!*st.pending_send || ls.rank != b.peer || t.list[ls.rank][ls.action].peer != r ||
        t.list[ls.rank][ls.action].mb != b.mb)
      return fail(errc::program_hang, r, i, "a rendezvous receive not issued right next to its send");
    *st.pending_send = false;
    return write(r, i, b.out, s);
  }
  }
  *st.error = {errc::program_malformed, static_cast<int>(o.rank), -1, -1, -1, "an op names no valid action or event"};
  return false;
}

/// The end of check_stream_order: every action run, no send left without its receive.
constexpr diagnostic check_finish(lowered_view const& t, order_state_ref const& st) {
  if (!st.error->ok()) return *st.error;
  if (*st.pending_send)
    return {errc::program_hang, st.last_send->rank, static_cast<int>(st.last_send->action), -1, -1,
            "a rendezvous send without its receive"};
  for (std::size_t r = 0; r < static_cast<std::size_t>(t.ranks); ++r)
    if (st.next[r] != t.length[r]) {
      action const& a = t.list[r][st.next[r]];
      return {errc::program_malformed, static_cast<int>(r), static_cast<int>(st.next[r]), a.stage, a.mb,
              "an action the program never runs"};
    }
  return {};
}

} // namespace detail

/// A stricter check than verify_stream_program, cheap enough for the compiler at every size
/// the schedule checks reach (one pass in issue order, constant work per op): every order
/// the boundaries need between two streams must be made by a single event — a wait on the
/// reader's (or rewriter's) stream, issued before it, that refers to a record on the other
/// stream issued after the access it orders (the latest record of the event at the wait's
/// issue, as CUDA resolves it). Such a chain is a happens-before path, so a program this
/// accepts the full model accepts too; derived programs are ordered this way by
/// construction. Also: each rank's actions are issued in its list order, each exactly once,
/// and each rendezvous send is issued right next to its receive (so the issue order itself
/// is an execution in which every pair meets: no hang).
///
/// `for_each_op(visit)` calls `visit(stream_op const&)` for every op in issue order and stops
/// when it returns false.
template <class ForEachOp>
constexpr diagnostic check_stream_order(detail::lowered_view const& t, vec<int> const& event_base,
                                        ForEachOp&& for_each_op) {
  std::size_t const p = static_cast<std::size_t>(t.ranks);
  std::size_t const ns = 2 * p;
  if (event_base.size() != p + 1) return {errc::program_malformed, -1, -1, -1, -1, "event numbering of another table"};
  std::size_t const ne = static_cast<std::size_t>(event_base[p]);
  vec<std::uint32_t> pos(ns, 0), known(ns * ns, 0), rec_pos(ne, 0);
  vec<std::int32_t> rec_stream(ne, -1);
  vec<std::size_t> next(p, 0), slot_base(p + 1, 0);
  for (std::size_t r = 0; r < p; ++r) slot_base[r + 1] = slot_base[r] + static_cast<std::size_t>(t.slots[r]);
  vec<std::int32_t> content(slot_base[p] * 6, -1);
  bool pending_send = false;
  stream_op last_send{};
  diagnostic error{};
  detail::order_state_ref const st{pos.data(),  known.data(),     rec_stream.data(), rec_pos.data(), next.data(),
                                   content.data(), slot_base.data(), &pending_send,     &last_send,     &error};
  for_each_op([&](stream_op const& o) { return detail::check_op(t, ne, st, o); });
  return detail::check_finish(t, st);
}

/// check_stream_order of a whole stream program.
constexpr diagnostic check_stream_order(table const& t, stream_program const& prog) {
  if (!t.ok()) return t.error;
  if (!prog.ok()) return prog.error;
  if (prog.ranks != t.ranks) return {errc::program_malformed, -1, -1, -1, -1, "the program is for another table"};
  return check_stream_order(detail::view_of(t), prog.event_base, [&](auto&& visit) {
    for (stream_op const& o : prog.ops)
      if (!visit(o)) return;
  });
}

// ---------------------------------------------------------------------------------------
// Compile time: a schedule type's stream program, frozen into arrays and verified.

/// A schedule's issue order frozen into arrays: R ranks, N actions (their event bits), U
/// units (detail::make_unit), and the event numbering.
template <std::size_t R, std::size_t N, std::size_t U> struct static_issue {
  diagnostic error{};
  int event_base[R + 1] = {};
  detail::action_events flags[N > 0 ? N : 1] = {};
  std::uint64_t units[U > 0 ? U : 1] = {};
  static constexpr std::size_t size = U;
  constexpr bool ok() const { return error.ok(); }
};

namespace detail {

/// Event bits of every action of S's lowered table, flat (S::lowered's order).
template <std::size_t N, class S> constexpr static_issue<S::rank_count, N, 0> freeze_flags(transfer_mode mode) {
  static_issue<S::rank_count, N, 0> st{};
  if constexpr (S::valid) {
    lowered_view const t = view_of(S::lowered);
    vec<vec<action_events>> fl;
    st.error = event_flags(t, mode, fl);
    if (!st.ok()) return st;
    std::size_t k = 0;
    for (std::size_t r = 0; r < S::rank_count; ++r) {
      action_events const* const f = fl[r].data();
      for (std::size_t i = 0; i < t.length[r]; ++i) st.flags[k++] = f[i];
    }
    vec<int> const base = event_bases(t);
    for (std::size_t r = 0; r <= S::rank_count; ++r) st.event_base[r] = base[r];
  }
  return st;
}

/// S's issue order, with the flags of `flagged`.
template <std::size_t U, class S, class Flags>
constexpr static_issue<S::rank_count, S::lowered.capacity, U> freeze_issue(Flags const& flagged) {
  static_issue<S::rank_count, S::lowered.capacity, U> st{};
  st.error = flagged.error;
  for (std::size_t r = 0; r <= S::rank_count; ++r) st.event_base[r] = flagged.event_base[r];
  for (std::size_t k = 0; k < S::lowered.capacity; ++k) st.flags[k] = flagged.flags[k];
  if constexpr (S::valid) {
    if (!st.ok()) return st;
    vec<std::uint64_t> units;
    st.error = issue_units(view_of(S::lowered), S::parameters.cost, units);
    if (!st.ok()) return st;
    if (units.size() != U) {
      st.error = diagnostic{errc::program_malformed, -1, -1, -1, -1, "the issue order's size changed"};
      return st;
    }
    std::uint64_t const* const u = units.data();
    for (std::size_t k = 0; k < U; ++k) st.units[k] = u[k];
  }
  return st;
}

/// check_stream_order's state frozen between constant evaluations (P ranks, E events,
/// L slots in all).
template <std::size_t P, std::size_t E, std::size_t L> struct frozen_order_state {
  diagnostic error{};
  std::size_t units_done = 0;
  bool pending_send = false;
  stream_op last_send{};
  std::uint32_t pos[2 * P] = {};
  std::uint32_t known[4 * P * P] = {};
  std::int32_t rec_stream[E > 0 ? E : 1] = {};
  std::uint32_t rec_pos[E > 0 ? E : 1] = {};
  std::size_t next[P] = {};
  std::size_t slot_base[P + 1] = {};
  std::int32_t content[L > 0 ? 6 * L : 1] = {};

  constexpr order_state_ref ref() {
    return order_state_ref{pos, known, rec_stream, rec_pos, next, content, slot_base, &pending_send, &last_send, &error};
  }
};

/// Units checked per constant evaluation: each evaluation gets the compiler's whole budget.
inline constexpr std::size_t units_per_check = 4096;

template <class S, class State> constexpr State initial_order_state() {
  State st{};
  if constexpr (S::valid) {
    for (std::size_t e = 0; e < sizeof(st.rec_stream) / sizeof(st.rec_stream[0]); ++e) st.rec_stream[e] = -1;
    for (std::size_t k = 0; k < sizeof(st.content) / sizeof(st.content[0]); ++k) st.content[k] = -1;
    for (std::size_t r = 0; r < S::rank_count; ++r) st.slot_base[r + 1] = st.slot_base[r] + S::lowered.slot_count[r];
  }
  return st;
}

/// Checks units [from, to) of issue order `is` (expanded into ops), continuing from `st`.
template <class S, class Issue, class State>
constexpr State check_units(State st, Issue const& is, transfer_mode mode, std::size_t from, std::size_t to) {
  if constexpr (S::valid) {
    if (!st.error.ok()) return st;
    if (!is.ok()) {
      st.error = is.error;
      return st;
    }
    lowered_view const t = view_of(S::lowered);
    std::size_t const ne = static_cast<std::size_t>(is.event_base[S::rank_count]);
    order_state_ref const ref = st.ref();
    auto flags = [&](std::size_t r, std::size_t i) { return is.flags[S::lowered.offset[r] + i]; };
    bool go = true;
    for (std::size_t k = from; k < to && go; ++k)
      expand_unit(t, mode, is.event_base, flags, is.units[k], [&](stream_op const& o) {
        if (go) go = check_op(t, ne, ref, o);
      });
    st.units_done = to;
    if (go && to == Issue::size) st.error = check_finish(t, ref);
  }
  return st;
}

} // namespace detail


/// The stream program of schedule S in transfer mode Mode, derived and checked by the
/// compiler. `issue` holds the issue order (units) and every action's event bits, from
/// which `for_each_op` (and a CUDA executor, at compile time) expands the ops; naming
/// `valid` (every CUDA executor does) stops the build with the check's sentence when it
/// fails. Each step is its own constant evaluation: the event bits, the issue order, the
/// check (check_stream_order, which implies the full happens-before model).
template <schedule_type S, transfer_mode Mode = transfer_mode::copy> struct stream_program_of {
  static_assert(pipesched::detail::checked<S>);
  using schedule = S;
  static constexpr transfer_mode mode = Mode;
  static constexpr std::size_t units = [] {
    if constexpr (!S::valid) return std::size_t{0};
    else return detail::unit_count(detail::view_of(S::lowered));
  }();
  static constexpr auto flags = detail::freeze_flags<S::lowered.capacity, S>(Mode);
  static constexpr auto issue = detail::freeze_issue<units, S>(flags);

private:
  using order_state =
      detail::frozen_order_state<S::rank_count, static_cast<std::size_t>(flags.event_base[S::rank_count]),
                                 [] {
                                   std::size_t n = 0;
                                   for (std::size_t r = 0; r < S::rank_count; ++r) n += S::lowered.slot_count[r];
                                   return n;
                                 }()>;
  static constexpr std::size_t chunks = (units + detail::units_per_check - 1) / detail::units_per_check;
  template <std::size_t K> static constexpr order_state advance() {
    if constexpr (K == 0) return detail::initial_order_state<S, order_state>();
    else
      return detail::check_units<S>(checked_to<K - 1>, issue, Mode, (K - 1) * detail::units_per_check,
                                    K * detail::units_per_check < units ? K * detail::units_per_check : units);
  }
  /// The check's state after K chunks of units, each chunk its own constant evaluation.
  template <std::size_t K> static constexpr order_state checked_to = advance<K>();

public:
  static constexpr diagnostic verdict = [] {
    if constexpr (!S::valid) return diagnostic{};
    else if constexpr (chunks == 0) return detail::check_units<S>(checked_to<0>, issue, Mode, 0, 0).error;
    else return checked_to<chunks>.error;
  }();
  static constexpr bool valid =
      pipesched::detail::report<verdict.code, verdict.rank, verdict.position, verdict.stage, verdict.mb>();

  /// The whole program at run time (for tests, tools and the full model).
  static constexpr stream_program make() {
    stream_program prog{};
    prog.ranks = S::ranks;
    prog.mode = Mode;
    prog.error = issue.error;
    if (!issue.ok()) return prog;
    detail::lowered_view const t = detail::view_of(S::lowered);
    prog.event_base.resize(S::rank_count + 1);
    for (std::size_t r = 0; r <= S::rank_count; ++r) prog.event_base[r] = issue.event_base[r];
    auto flags_of = [](std::size_t r, std::size_t i) { return issue.flags[S::lowered.offset[r] + i]; };
    for (std::size_t k = 0; k < units; ++k)
      detail::expand_unit(t, Mode, issue.event_base, flags_of, issue.units[k],
                          [&](stream_op const& o) { prog.ops.push_back(o); });
    return prog;
  }
};

} // namespace pipesched::cuda
