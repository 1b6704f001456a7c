// pipesched: the per-process executor of a multi-process run (one process per GPU): this
// rank's part of the schedule's verified stream program, with boundaries moved by
// point-to-point send/receive (NCCL's semantics: a send and its receive complete together).
//
// Written against two policies and including no CUDA or NCCL header: `Runtime` (streams,
// events, memory, queries — cuda_runtime's shape plus stream_query/event_query) and `Comm`
// (group start/end, send, recv, the communicator's asynchronous state, abort, split,
// release).
// `cuda::nccl_executor<S>` (nccl.cuh) binds them to CUDA and NCCL; the CPU tests bind them
// to a host emulation in which threads stand in for processes.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pipesched/cuda/basic_executor.hpp"
#include "pipesched/cuda/edge_rounds.hpp"
#include "pipesched/cuda/launch.hpp"
#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/plan/action_record.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/plan.hpp"
#include "pipesched/plan/stage_functor.hpp"

namespace pipesched::cuda {

/// Settings of a per-process (NCCL) executor.
struct nccl_options {
  /// Bytes of every boundary, unless `boundaries` gives them per stage.
  std::size_t slot_bytes = 0;
  /// Bytes per stage boundary (see host::options::boundaries); every rank must give the same.
  boundary_sizes boundaries{};
  /// How long one iteration (and the warm-up) may take before this rank gives up, aborts its
  /// communicator and throws transport_error.
  std::chrono::milliseconds deadline{std::chrono::seconds(120)};
  /// At most this many sends and receives in one ncclGroupStart/ncclGroupEnd; a longer run
  /// of transfers is issued as several groups in a row (NCCL advises against more than
  /// about 256 point-to-point operations in one group).
  int max_group_ops = 256;
  /// Send and receive once on every edge of this rank in the constructor, so that NCCL's
  /// lazy connection set-up (hundreds of ms) is not in the first iteration.
  bool warm_up = true;
  /// Make the communicators of capture() (one per directed edge, split from the world
  /// communicator, each warmed up) in the constructor; otherwise the first capture() makes
  /// them. Either way every rank must do the same (splitting is collective).
  bool edge_communicators = false;
  /// Where a failing rank leaves a note, so that the others' exceptions name it (optional:
  /// without it they name the edge they were waiting on and say the failing rank is unknown).
  failure_board* board = nullptr;
};

/// This rank's iteration stopped because of communication: a communicator error, a peer
/// that failed (its note on the failure board names it), or the deadline. Names this rank,
/// the failing rank (-1: unknown), and the edge and boundary this rank was on.
struct transport_error : std::runtime_error {
  int rank = -1;          ///< this rank
  int failed_rank = -1;   ///< the rank that failed first, from the failure board; -1: unknown
  int edge_from = -1;     ///< the edge this rank was on (sender, receiver); -1: none
  int edge_to = -1;
  int code = 0;           ///< the communicator's status (0: none, e.g. a deadline)
  bool timed_out = false; ///< the deadline passed
  transport_error(std::string const& what, int r, int failed, int from, int to, int c, bool t)
      : std::runtime_error(what), rank(r), failed_rank(failed), edge_from(from), edge_to(to), code(c), timed_out(t) {}
};

namespace detail {

/// The units of a stream program (rendezvous mode) that involve rank R, in the global issue
/// order: R's compute passes and every transfer R sends or receives.
template <class Program, int R> struct rank_units {
  using S = typename Program::schedule;
  static constexpr bool involves(std::uint64_t u) {
    std::size_t const r = unit_rank(u), i = unit_index(u);
    if (r == static_cast<std::size_t>(R)) return true;
    action const& a = S::lowered.at(r, i);
    return !is_compute(a.kind) && a.peer == R;
  }
  static constexpr std::size_t count = [] {
    std::size_t n = 0;
    for (std::size_t k = 0; k < Program::units; ++k) n += involves(Program::issue.units[k]) ? 1 : 0;
    return n;
  }();
  static constexpr std::array<std::size_t, count> list = [] {
    std::array<std::size_t, count> out{};
    std::size_t n = 0;
    for (std::size_t k = 0; k < Program::units; ++k)
      if (involves(Program::issue.units[k])) out[n++] = k;
    return out;
  }();
};

/// One directed edge a rank warms up: sender, receiver and the largest boundary on it.
struct warm_edge {
  int from = 0, to = 0;
  std::size_t bytes = 0;
};

} // namespace detail

/// The executor of one rank of a schedule whose ranks are separate processes (one GPU each).
///
/// What it issues is rank `rank`'s part of `stream_program_of<S, transfer_mode::rendezvous>`
/// — checked by the compiler like every stream program — in the program's global issue
/// order: the compute passes on the rank's compute stream, sends and receives on its
/// communication stream with the events the program places around them. A run of
/// consecutive transfers with no compute pass of this rank between them goes into one group
/// (at most `max_group_ops` operations; a longer run is issued as several groups in a row).
/// Any split of a rank's transfers into contiguous groups is safe: in the global order the
/// first transfer not yet done has every earlier item of both its ranks done, so both post
/// it (see docs/04_cuda.md).
///
/// Waiting never hangs: the communicator's asynchronous state is polled while the host
/// waits (for a group to be enqueued, for the iteration to finish), against a deadline per
/// iteration. On a communicator error, a peer's failure (seen as an error or as a note on
/// the failure board) or the deadline, the rank aborts its communicator and throws
/// transport_error naming the failing rank and the edge it was on; a functor that throws
/// leaves its note on the board, aborts the communicator and its exception propagates.
/// After a failure the executor refuses to run (make a new communicator and executor).
///
/// capture()/replay(): the rank's whole iteration as a CUDA graph, its transfers each on the
/// communicator of its directed edge (see edge_rounds.hpp and docs/04_cuda.md).
template <schedule_type S, class Runtime, class Comm> class basic_nccl_executor {
  static_assert(pipesched::detail::checked<S>);
  using stream_t = typename Runtime::stream_t;
  using event_t = typename Runtime::event_t;
  using status = typename Runtime::status;
  using comm_t = typename Comm::comm_t;
  using comm_status = typename Comm::status;
  using graph_t = typename Runtime::graph_t;
  using graph_exec_t = typename Runtime::graph_exec_t;

public:
  using schedule = S;
  using program = stream_program_of<S, transfer_mode::rendezvous>;
  static_assert(program::valid); // the rendezvous stream program's check, with its sentence when it fails
  static constexpr int ranks = S::ranks;

  /// `comm`: a communicator of S::ranks ranks in which this process is `rank` (made
  /// non-blocking, see nccl.cuh); the executor does not own it. Allocates this rank's
  /// boundary slots, streams and events on the current device, then warms up its edges.
  /// When the constructor throws, it has aborted the communicator (whatever the reason: the
  /// other ranks may be waiting for this one's warm-up).
  basic_nccl_executor(comm_t comm, int rank, nccl_options const& o)
      : options_(o), comm_(comm), rank_(rank) {
    try {
      if (rank < 0 || rank >= ranks)
        throw std::invalid_argument("pipesched: rank " + std::to_string(rank) + " of a schedule of " +
                                    std::to_string(ranks) + " ranks");
      if (o.max_group_ops < 1)
        throw std::invalid_argument("pipesched: nccl_options::max_group_ops must be at least 1");
      bytes_ = boundary_byte_table(S::stages, o.boundaries, o.slot_bytes);
      setup();
      if (o.warm_up) warm_up();
      if (o.edge_communicators) make_edge_comms();
    } catch (...) {
      abort_comm(); // the peers may be waiting for this rank's warm-up: they must not hang
      release();
      throw;
    }
  }
  basic_nccl_executor(basic_nccl_executor const&) = delete;
  basic_nccl_executor& operator=(basic_nccl_executor const&) = delete;
  ~basic_nccl_executor() { release(); }

  /// One iteration of this rank, with `functor` (this rank's stage functor), ordered after
  /// the work on `origin` (null: the legacy default stream); returns when it is done.
  template <class Functor> void run(Functor& functor, stream_t origin = nullptr) {
    refuse_after_failure();
    failure_ = failure_site{rank_, {}};
    start_ = std::chrono::steady_clock::now();
    pipesched::detail::with_rank<ranks>(rank_, [&](auto rc) {
      constexpr int R = decltype(rc)::value;
      (void)pipesched::detail::check_members<S, R, Functor>();
      issue_iteration<R>(functor, origin);
    });
    wait_done(origin);
    ++iterations_;
  }

  /// A send and a receive on every edge of this rank, each edge its own group, in one order
  /// every rank shares (so it cannot deadlock); waits for them. Called by the constructor
  /// unless nccl_options::warm_up is false.
  void warm_up() { warm_edges(false); }

  /// Records this rank's whole iteration with `functor` into a CUDA graph: its compute passes,
  /// and each send and receive on the communicator of its directed edge, with the program's
  /// events and groups — on the executor's capture stream, in thread-local mode, with no
  /// host synchronisation inside (nothing runs: the functor's kernels are recorded with the
  /// pointers they have now, so inputs must live in fixed buffers). The first capture makes
  /// the edge communicators (unless nccl_options::edge_communicators did) and warms each up.
  /// Collective: every rank captures, in the same order relative to its run() and replay()
  /// calls. Capturing again replaces the graph. On a failure it aborts every communicator of
  /// the rank, like run().
  template <class Functor> void capture(Functor& functor) {
    refuse_after_failure();
    failure_ = failure_site{rank_, {}};
    if (!edges_made_) make_edge_comms();
    drop_graph();
    start_ = std::chrono::steady_clock::now();
    check(Runtime::begin_capture(capture_stream_), "cudaStreamBeginCapture");
    capturing_ = true;
    graph_t graph{};
    try {
      pipesched::detail::with_rank<ranks>(rank_, [&](auto rc) {
        constexpr int R = decltype(rc)::value;
        (void)pipesched::detail::check_members<S, R, Functor>();
        issue_iteration<R>(functor, capture_stream_);
      });
    } catch (...) {
      capturing_ = false;
      group_count_ = 0;
      (void)Runtime::end_capture(capture_stream_, &graph);
      if (graph) (void)Runtime::graph_destroy(graph);
      (void)Runtime::get_last_error();
      abort_comm(); // (already done by whatever threw; the peers' replays must not hang)
      throw;
    }
    capturing_ = false;
    group_count_ = 0; // the group-done events of a capture are graph nodes, not queried
    check(Runtime::end_capture(capture_stream_, &graph), "cudaStreamEndCapture");
    status const e = Runtime::graph_instantiate(&graph_exec_, graph);
    (void)Runtime::graph_destroy(graph);
    if (e != Runtime::success) {
      graph_exec_ = graph_exec_t{};
      check(e, "cudaGraphInstantiate");
    }
    ++captures_;
  }

  /// Launches the captured iteration after the work on `origin` (null: the legacy default
  /// stream) and returns when it is done, polling every communicator of the rank, the failure
  /// board and the deadline as run() does.
  void replay(stream_t origin = nullptr) {
    refuse_after_failure();
    if (!graph_exec_) throw std::logic_error("pipesched: replay() before capture()");
    failure_ = failure_site{rank_, {}};
    start_ = std::chrono::steady_clock::now();
    replaying_ = true;
    check(Runtime::graph_launch(graph_exec_, origin), "cudaGraphLaunch");
    wait_done(origin);
    replaying_ = false;
    ++iterations_;
    ++replays_;
  }

  int rank() const { return rank_; }
  bool failed() const { return failed_; }
  /// Groups issued in total, and the most operations one of them had (tests, logs).
  std::size_t groups_issued() const { return groups_issued_; }
  int largest_group() const { return largest_group_; }
  std::size_t warm_up_groups() const { return warm_groups_; }
  /// Iterations run to the end (run() and replay()), replays among them, captures made.
  std::size_t iterations() const { return iterations_; }
  std::size_t replays() const { return replays_; }
  std::size_t captures() const { return captures_; }
  bool captured() const { return static_cast<bool>(graph_exec_); }
  /// The communicator of each edge of edges() this rank is on (null: not on it, or not made
  /// yet), and how many split rounds made them.
  std::vector<comm_t> const& edge_comms() const { return edge_comms_; }
  std::size_t split_rounds() const { return split_rounds_; }
  /// The edges this rank warms up (all ranks' edges, in the shared order).
  std::vector<detail::warm_edge> const& edges() const { return edges_; }
  /// Where the last failure of this rank happened (its rank and action).
  failure_site last_failure() const { return failure_; }
  view const* slots() const { return views_.data(); }
  int slot_count() const { return static_cast<int>(views_.size()); }
  stream_t compute_stream() const { return compute_; }
  stream_t comm_stream() const { return comm_stream_; }
  stream_t capture_stream() const { return capture_stream_; }
  std::vector<std::size_t> const& boundary_bytes() const { return bytes_; }

private:
  static constexpr std::size_t event_count = static_cast<std::size_t>(program::issue.event_base[S::rank_count]);
  template <std::size_t K> static constexpr detail::unit_ops unit_ops_at = detail::ops_of_unit<program>(K);

  struct edge_on {
    int from = -1, to = -1;
    action_record what{};
  };

  // ---- checks and failure -----------------------------------------------------------
  void check(status e, char const* call) {
    if (e == Runtime::success) return;
    (void)Runtime::get_last_error();
    fail_local(std::string(call) + " failed: " + Runtime::error_string(e));
    detail::throw_cuda<Runtime>(e, call, failure_);
  }
  /// A call inside a group (start, send, recv): "in progress" is no error there; the group's
  /// end is where the executor waits for the operations to be enqueued.
  void check_comm(comm_status e, char const* call) {
    if (e != Comm::success && e != Comm::in_progress) comm_failure(e, call);
  }
  [[noreturn]] void comm_failure(comm_status e, char const* call) {
    bool const remote = Comm::is_remote(e);
    std::string const why = std::string(call) + ": " + Comm::error_string(e);
    if (!remote) fail_local(why);
    stop(why, static_cast<int>(e), false);
  }

  /// This rank is where the failure started: leave a note for the others, abort.
  void fail_local(std::string const& what) {
    if (options_.board && !noted_) {
      noted_ = true;
      edge_on const e = where();
      std::string note = "rank " + std::to_string(rank_) + ": " + what;
      if (e.from >= 0) note += " (on the edge " + std::to_string(e.from) + "->" + std::to_string(e.to) + ")";
      try {
        options_.board->post(failure_note{rank_, note});
      } catch (...) {
      }
    }
    abort_comm();
  }

  void refuse_after_failure() const {
    if (failed_)
      throw std::logic_error("pipesched: this rank's communicator was aborted by an earlier failure: make a new "
                             "communicator and executor");
  }

  /// Aborts every communicator of the rank (the world's and the edges'), once.
  void abort_comm() {
    if (!failed_) {
      failed_ = true;
      (void)Comm::abort(comm_);
      for (comm_t c : edge_comms_)
        if (c) (void)Comm::abort(c);
    }
    in_group_ = false;
    pending_records_.clear();
  }

  /// The edge this rank is on: the edge whose communicator reported the error; the group
  /// being issued; in a replay nothing more (the graph's groups are not events the host can
  /// query); else the first group of this iteration that has not completed (its done event).
  edge_on where() const {
    if (comm_edge_ >= 0) {
      detail::warm_edge const& e = edges_[static_cast<std::size_t>(comm_edge_)];
      return {e.from, e.to, action_record{}};
    }
    if (in_group_ || capturing_) return group_edge_;
    if (replaying_) return {};
    for (std::size_t g = 0; g < group_count_; ++g)
      if (Runtime::event_query(group_done_[g]) != Runtime::success) return group_edges_[g];
    return group_edge_;
  }

  [[noreturn]] void stop(std::string const& why, int code, bool timed_out) {
    edge_on const e = where();
    std::optional<failure_note> note;
    if (options_.board) {
      try {
        note = options_.board->poll();
      } catch (...) {
      }
    }
    abort_comm();
    std::string what = "pipesched: rank " + std::to_string(rank_) + " stopped its iteration: " + why;
    if (e.from >= 0) {
      what += "; it was on the edge " + std::to_string(e.from) + "->" + std::to_string(e.to);
      if (!e.what.empty()) what += " (" + describe(e.what) + " of rank " + std::to_string(rank_) + ")";
    }
    int failed = -1;
    if (note) {
      failed = note->rank;
      what += "; rank " + std::to_string(note->rank) + " failed: " + note->what;
    } else if (!noted_) {
      what += "; the failing rank is unknown (" +
              std::string(options_.board ? "no rank left a note" : "no failure board given") + ")";
    } else {
      failed = rank_;
    }
    throw transport_error(what, rank_, failed, e.from, e.to, code, timed_out);
  }

  /// Between polls: the board (a peer failed), the deadline.
  void poll_outside() {
    if (options_.board) {
      std::optional<failure_note> n;
      try {
        n = options_.board->poll();
      } catch (...) {
      }
      if (n && n->rank != rank_) stop("a peer failed", 0, false);
    }
    auto const spent = std::chrono::steady_clock::now() - start_;
    if (spent > options_.deadline)
      stop("the deadline of " + std::to_string(options_.deadline.count()) + " ms passed", 0, true);
  }

  /// One communicator's asynchronous state (`edge`: its index in edges_, -1: the world's):
  /// false while in progress; an error stops the rank.
  bool poll_comm(comm_t c, int edge, char const* call) {
    comm_status st = Comm::success;
    comm_status const e = Comm::async_error(c, &st);
    if (e != Comm::success) {
      comm_edge_ = edge;
      comm_failure(e, "ncclCommGetAsyncError");
    }
    if (st == Comm::in_progress) return false;
    if (st != Comm::success) {
      comm_edge_ = edge;
      comm_failure(st, call);
    }
    return true;
  }
  /// Every communicator of the rank; false while one is in progress.
  bool comms_settled(char const* call) {
    bool settled = poll_comm(comm_, -1, call);
    for (std::size_t k = 0; k < edge_comms_.size(); ++k)
      if (edge_comms_[k]) settled = poll_comm(edge_comms_[k], static_cast<int>(k), call) && settled;
    return settled;
  }

  /// A group ended with "in progress" (non-blocking communicator): poll the communicators'
  /// state until the group is enqueued.
  void wait_enqueued(char const* call) {
    for (int spin = 0;; ++spin) {
      if (comms_settled(call)) return;
      poll_outside();
      if (spin > 1024) std::this_thread::sleep_for(std::chrono::microseconds(20));
      else if (spin > 64) std::this_thread::yield();
    }
  }

  /// The iteration is issued: wait for `origin`, polling the communicator and the board.
  void wait_done(stream_t origin) {
    for (int spin = 0;; ++spin) {
      status const q = Runtime::stream_query(origin);
      if (q == Runtime::success) break;
      if (q != Runtime::not_ready) check(q, "cudaStreamQuery");
      (void)comms_settled("an asynchronous NCCL operation");
      poll_outside();
      if (spin > 64) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    group_count_ = 0;
  }

  // ---- set-up -----------------------------------------------------------------------
  void setup() {
    check(Runtime::stream_create(&compute_), "cudaStreamCreateWithFlags");
    check(Runtime::stream_create(&comm_stream_), "cudaStreamCreateWithFlags");
    check(Runtime::stream_create(&capture_stream_), "cudaStreamCreateWithFlags");
    for (event_t& e : joins_) check(Runtime::event_create(&e), "cudaEventCreateWithFlags");
    check(Runtime::event_create(&fork_), "cudaEventCreateWithFlags");
    // the events this rank's part of the program records, one per (event, local stream);
    // the transfers it issues (for the group-done events)
    events_.assign(event_count * 2, event_t{});
    stream_program const prog = program::make();
    std::size_t records = 0, transfers = 0;
    for (stream_op const& op : prog.ops) {
      if (op.rank != rank_) continue;
      if (op.kind == stream_op_kind::send || op.kind == stream_op_kind::recv) ++transfers;
      if (op.kind != stream_op_kind::record) continue;
      ++records;
      event_t& e = events_[op.event * 2u + (op.stream - 2u * static_cast<unsigned>(rank_))];
      if (!e) check(Runtime::event_create(&e), "cudaEventCreateWithFlags");
    }
    pending_records_.reserve(records);
    group_done_.assign(transfers, event_t{});
    group_edges_.assign(transfers, edge_on{});
    for (event_t& e : group_done_) check(Runtime::event_create(&e), "cudaEventCreateWithFlags");
    // this rank's boundary slots: one block, each slot sized for its largest boundary
    std::vector<std::size_t> const sizes = buffer_plan<S>::slot_bytes(rank_, bytes_);
    std::size_t const n = block_bytes(sizes);
    views_.assign(sizes.size(), view{});
    slot_read_.assign(sizes.size(), 0);
    slot_written_.assign(sizes.size(), 0);
    if (n > 0) {
      check(Runtime::malloc(&block_, n), "cudaMalloc");
      check(Runtime::memset(block_, 0, n), "cudaMemset");
      carve_slots(block_, sizes, views_.data());
      std::size_t best = 0;
      for (std::size_t k = 0; k < sizes.size(); ++k) {
        if (sizes[k] == 0) views_[k].data = nullptr;
        if (sizes[k] > best) best = sizes[k], largest_slot_ = views_[k].data;
      }
    }
    // every directed edge of the schedule with its largest boundary, in one shared order
    for (std::size_t r = 0; r < S::rank_count; ++r)
      for (std::size_t i = 0; i < S::lowered.size(r); ++i) {
        action const& a = S::lowered.at(r, i);
        if (!is_send(a.kind)) continue;
        std::size_t const b = bytes_[static_cast<std::size_t>(boundary_key(S::lowered, a, field::in))];
        if (b == 0) continue;
        bool found = false;
        for (detail::warm_edge& e : edges_)
          if (e.from == static_cast<int>(r) && e.to == a.peer) found = true, e.bytes = e.bytes > b ? e.bytes : b;
        if (!found) edges_.push_back({static_cast<int>(r), a.peer, b});
      }
    for (std::size_t i = 1; i < edges_.size(); ++i) // insertion sort by (from, to)
      for (std::size_t j = i; j > 0 && (edges_[j].from < edges_[j - 1].from ||
                                        (edges_[j].from == edges_[j - 1].from && edges_[j].to < edges_[j - 1].to));
           --j)
        std::swap(edges_[j], edges_[j - 1]);
    edge_index_.assign(static_cast<std::size_t>(ranks * ranks), -1);
    for (std::size_t k = 0; k < edges_.size(); ++k)
      edge_index_[static_cast<std::size_t>(edges_[k].from * ranks + edges_[k].to)] = static_cast<int>(k);
  }

  /// Warm-up groups, one per edge of this rank in the shared order: on the world
  /// communicator, or on each edge's own.
  void warm_edges(bool on_edge_comms) {
    start_ = std::chrono::steady_clock::now();
    for (std::size_t k = 0; k < edges_.size(); ++k) {
      detail::warm_edge const& e = edges_[k];
      if (e.from != rank_ && e.to != rank_) continue;
      comm_t const c = on_edge_comms ? edge_comms_[k] : comm_;
      int const to = on_edge_comms ? edge_peer(e.from, e.to, rank_) : e.to;
      int const from = on_edge_comms ? edge_peer(e.from, e.to, rank_) : e.from;
      group_edge_ = {e.from, e.to, action_record{}};
      check_comm(Comm::group_start(), "ncclGroupStart");
      in_group_ = true;
      group_ops_ = e.from == e.to ? 2 : 1;
      if (e.from == rank_) check_comm(Comm::send(largest_slot_, e.bytes, to, c, comm_stream_), "ncclSend");
      if (e.to == rank_) check_comm(Comm::recv(largest_slot_, e.bytes, from, c, comm_stream_), "ncclRecv");
      end_group();
      ++warm_groups_;
    }
    wait_done(comm_stream_);
  }

  /// One communicator per directed edge: the edges coloured into rounds in which no rank is
  /// in two edges (edge_rounds.hpp), one split of the world communicator per round on every
  /// rank (colour: the edge's index; key: 0 sender, 1 receiver), each waited for (polling,
  /// with the board and the deadline) before the next; then each is warmed up.
  void make_edge_comms() {
    start_ = std::chrono::steady_clock::now();
    edge_round_plan const plan = color_edge_rounds(edges_, ranks);
    edge_comms_.assign(edges_.size(), comm_t{});
    for (std::size_t k = 0; k < plan.rounds.size(); ++k) {
      edge_split const sp = split_of(edges_, plan, k, rank_);
      split_handle_ = comm_t{};
      comm_status const e =
          Comm::split(comm_, sp.color == split_no_color ? Comm::no_color : sp.color, sp.key, &split_handle_);
      if (e != Comm::success && e != Comm::in_progress) comm_failure(e, "ncclCommSplit");
      // Done when the parent is no longer in progress and the new communicator (if this rank
      // has one) is ready. With a non-blocking parent NCCL writes the new handle only when
      // the parent's split completes, from its own thread (NVIDIA/nccl#1472): read atomically.
      std::atomic_ref<comm_t> const handle(split_handle_);
      for (int spin = 0;; ++spin) {
        bool const parent_done = poll_comm(comm_, -1, "ncclCommSplit");
        comm_t const c = handle.load(std::memory_order_acquire);
        if (c && sp.color != split_no_color) edge_comms_[static_cast<std::size_t>(sp.color)] = c; // aborted on a failure
        if (parent_done && sp.color != split_no_color && !c) {
          fail_local("ncclCommSplit completed without a communicator for this rank's edge");
          stop("ncclCommSplit completed without a communicator for this rank's edge", 0, false);
        }
        if (parent_done && (!c || poll_comm(c, sp.color, "ncclCommSplit"))) break;
        poll_outside();
        if (spin > 64) std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      ++split_rounds_;
    }
    edges_made_ = true;
    warm_edges(true);
  }

  void drop_graph() {
    if (graph_exec_) (void)Runtime::graph_exec_destroy(graph_exec_);
    graph_exec_ = graph_exec_t{};
  }

  void release() noexcept {
    if (!failed_) {
      if (compute_) (void)Runtime::stream_synchronize(compute_);
      if (comm_stream_) (void)Runtime::stream_synchronize(comm_stream_);
      for (comm_t c : edge_comms_) // an orderly end (after a failure they were aborted)
        if (c) Comm::release(c);
    }
    edge_comms_.clear();
    drop_graph();
    for (event_t e : events_)
      if (e) (void)Runtime::event_destroy(e);
    for (event_t e : group_done_)
      if (e) (void)Runtime::event_destroy(e);
    for (event_t e : joins_)
      if (e) (void)Runtime::event_destroy(e);
    if (fork_) (void)Runtime::event_destroy(fork_);
    if (compute_) (void)Runtime::stream_destroy(compute_);
    if (comm_stream_) (void)Runtime::stream_destroy(comm_stream_);
    if (capture_stream_) (void)Runtime::stream_destroy(capture_stream_);
    if (block_) (void)Runtime::free(block_);
    events_.clear();
    group_done_.clear();
    compute_ = comm_stream_ = capture_stream_ = stream_t{};
    block_ = nullptr;
    (void)Runtime::get_last_error();
  }

  // ---- one iteration ----------------------------------------------------------------
  template <int R, class Functor> void issue_iteration(Functor& f, stream_t origin) {
    check(Runtime::event_record(fork_, origin), "cudaEventRecord");
    check(Runtime::stream_wait_event(compute_, fork_), "cudaStreamWaitEvent");
    check(Runtime::stream_wait_event(comm_stream_, fork_), "cudaStreamWaitEvent");
    issue_blocks<R>(f, std::make_index_sequence<(detail::rank_units<program, R>::count + block - 1) / block>{});
    if (in_group_) end_group();
    check(Runtime::event_record(joins_[0], compute_), "cudaEventRecord");
    check(Runtime::event_record(joins_[1], comm_stream_), "cudaEventRecord");
    check(Runtime::stream_wait_event(origin, joins_[0]), "cudaStreamWaitEvent");
    check(Runtime::stream_wait_event(origin, joins_[1]), "cudaStreamWaitEvent");
  }

  static constexpr std::size_t block = 64;
  template <int R, class Functor, std::size_t... B> void issue_blocks(Functor& f, std::index_sequence<B...>) {
    (issue_block<R, B>(f), ...);
  }
  template <int R, std::size_t B, class Functor> __attribute__((noinline)) void issue_block(Functor& f) {
    using units = detail::rank_units<program, R>;
    constexpr std::size_t first = B * block;
    constexpr std::size_t count = first + block <= units::count ? block : units::count - first;
    [&]<std::size_t... K>(std::index_sequence<K...>) { (issue_unit<R, units::list[first + K]>(f), ...); }(
        std::make_index_sequence<count>{});
  }

  template <int R, std::size_t K, class Functor> void issue_unit(Functor& f) {
    constexpr std::uint64_t u = program::issue.units[K];
    constexpr bool compute = is_compute(S::lowered.at(detail::unit_rank(u), detail::unit_index(u)).kind);
    if constexpr (compute)
      if (in_group_) end_group();
    [&]<std::size_t... J>(std::index_sequence<J...>) { (issue_op<R, K, J>(f), ...); }(
        std::make_index_sequence<unit_ops_at<K>.n>{});
  }

  template <int R, std::size_t K, std::size_t J, class Functor> void issue_op(Functor& f) {
    constexpr stream_op o = unit_ops_at<K>.op[J];
    if constexpr (o.rank != R) {
      return; // the peer's side of a transfer
    } else {
      static_assert(o.stream / 2u == static_cast<unsigned>(R), "rendezvous programs keep a rank on its own streams");
      constexpr std::size_t local = o.stream - 2u * static_cast<unsigned>(R);
      stream_t const stream = local == 0 ? compute_ : comm_stream_;
      if constexpr (o.kind == stream_op_kind::wait) {
        static_assert(o.peer_action / 2u == static_cast<unsigned>(R));
        constexpr std::size_t src = o.peer_action - 2u * static_cast<unsigned>(R);
        check(Runtime::stream_wait_event(stream, events_[o.event * 2u + src]), "cudaStreamWaitEvent");
      } else if constexpr (o.kind == stream_op_kind::record) {
        event_t const e = events_[o.event * 2u + local];
        // a record after a transfer must follow its group's operations: held until the group ends
        if (local == 1 && in_group_) pending_records_.push_back(e);
        else check(Runtime::event_record(e, stream), "cudaEventRecord");
      } else if constexpr (o.kind == stream_op_kind::exec) {
        constexpr std::size_t i = o.action;
        current_ = action_record::of(step_of<S, R, i>{});
        failure_.action = current_;
        pass_tracker tracker{&current_};
        try {
          plan<S, R>::template run_one<i>(f, tracker, boundary_views{views_.data(), bytes_.data()}, stream);
        } catch (std::exception const& ex) {
          failure_ = failure_site{R, current_};
          fail_local(describe(current_) + " threw: " + ex.what());
          throw;
        } catch (...) {
          failure_ = failure_site{R, current_};
          fail_local(describe(current_) + " threw");
          throw;
        }
        check(Runtime::get_last_error(), "a kernel launch of the stage functor");
      } else if constexpr (o.kind == stream_op_kind::send) {
        constexpr std::size_t i = o.action;
        constexpr action sa = S::lowered.at(R, i);
        constexpr int key = boundary_key(S::lowered, sa, field::in);
        std::size_t const bytes = bytes_[static_cast<std::size_t>(key)];
        if (bytes == 0) return;
        add_to_group({R, sa.peer, action_record::of(step_of<S, R, i>{})}, sa.in, false);
        // captured: on the edge's own communicator, where the receiver is rank 1 (0: self)
        comm_t const c = capturing_ ? edge_comm(R, sa.peer) : comm_;
        int const peer = capturing_ ? edge_peer(R, sa.peer, R) : sa.peer;
        check_comm(Comm::send(views_[sa.in].data, bytes, peer, c, comm_stream_), "ncclSend");
      } else if constexpr (o.kind == stream_op_kind::recv) {
        constexpr std::size_t i = o.action;
        constexpr action ra = S::lowered.at(R, i);
        constexpr int q = ra.peer;
        constexpr action sa = S::lowered.at(q, detail::unit_send_index(program::issue.units[K]));
        constexpr int key = boundary_key(S::lowered, sa, field::in);
        std::size_t const bytes = bytes_[static_cast<std::size_t>(key)];
        if (bytes == 0) return;
        add_to_group({q, R, action_record::of(step_of<S, R, i>{})}, ra.out, true);
        comm_t const c = capturing_ ? edge_comm(q, R) : comm_;
        int const peer = capturing_ ? edge_peer(q, R, R) : q;
        check_comm(Comm::recv(views_[ra.out].data, bytes, peer, c, comm_stream_), "ncclRecv");
      }
    }
  }

  using pass_tracker = detail::pass_tracker;

  comm_t edge_comm(int from, int to) const {
    return edge_comms_[static_cast<std::size_t>(edge_index_[static_cast<std::size_t>(from * ranks + to)])];
  }

  /// Adds a send (reading `slot`) or a receive (writing it) to the open group, first ending
  /// the group when it is full or when one of its operations touches the same slot and one
  /// of the two writes it: the operations of a group progress concurrently, so a receive
  /// into the slot a send of the same group reads (a slot reused right after its send) must
  /// wait for the next group, which the stream orders after this one.
  void add_to_group(edge_on const& e, std::uint16_t slot, bool write) {
    std::size_t const k = slot;
    if (in_group_ && (group_ops_ >= options_.max_group_ops || slot_written_[k] == group_serial_ ||
                      (write && slot_read_[k] == group_serial_)))
      end_group();
    if (!in_group_) {
      group_edge_ = e;
      check_comm(Comm::group_start(), "ncclGroupStart");
      in_group_ = true;
      group_ops_ = 0;
      ++group_serial_;
    }
    (write ? slot_written_ : slot_read_)[k] = group_serial_;
    ++group_ops_;
  }

  /// ncclGroupEnd, wait until it is enqueued, then the records held back and the group's
  /// done event.
  void end_group() {
    comm_status const e = Comm::group_end();
    if (e != Comm::success && e != Comm::in_progress) comm_failure(e, "ncclGroupEnd");
    if (e == Comm::in_progress) wait_enqueued("ncclGroupEnd");
    in_group_ = false;
    ++groups_issued_;
    if (group_ops_ > largest_group_) largest_group_ = group_ops_;
    for (event_t ev : pending_records_) check(Runtime::event_record(ev, comm_stream_), "cudaEventRecord");
    pending_records_.clear();
    if (group_count_ < group_done_.size()) {
      group_edges_[group_count_] = group_edge_;
      check(Runtime::event_record(group_done_[group_count_], comm_stream_), "cudaEventRecord");
      ++group_count_;
    }
  }

  nccl_options options_;
  std::vector<std::size_t> bytes_;
  comm_t comm_;
  int rank_;
  stream_t compute_{};
  stream_t comm_stream_{};
  stream_t capture_stream_{};
  graph_exec_t graph_exec_{};
  event_t fork_{};
  std::array<event_t, 2> joins_{};
  std::vector<event_t> events_;
  std::vector<event_t> pending_records_;
  std::vector<event_t> group_done_;
  std::vector<edge_on> group_edges_;
  std::size_t group_count_ = 0;
  void* block_ = nullptr;
  void* largest_slot_ = nullptr;
  std::vector<view> views_;
  std::vector<detail::warm_edge> edges_;
  std::vector<int> edge_index_;    ///< [from * ranks + to]: the edge's index in edges_, -1: none
  std::vector<comm_t> edge_comms_; ///< per edge of edges_: its communicator (this rank's edges)
  bool edges_made_ = false;
  /// Where a split writes its new handle: a member, not a local, because NCCL's thread
  /// writes it when the split completes, which a failure may leave for after the call.
  comm_t split_handle_{};
  std::size_t split_rounds_ = 0;
  bool capturing_ = false;
  bool replaying_ = false;
  int comm_edge_ = -1; ///< the edge whose communicator reported the error (-1: the world's, or none)
  bool in_group_ = false;
  int group_ops_ = 0;
  std::uint64_t group_serial_ = 0;
  std::vector<std::uint64_t> slot_read_, slot_written_; ///< the group that last read / wrote each slot
  edge_on group_edge_{};
  action_record current_{};
  failure_site failure_{};
  bool failed_ = false;
  bool noted_ = false;
  std::chrono::steady_clock::time_point start_{};
  std::size_t groups_issued_ = 0;
  std::size_t warm_groups_ = 0;
  std::size_t iterations_ = 0;
  std::size_t replays_ = 0;
  std::size_t captures_ = 0;
  int largest_group_ = 0;
};

} // namespace pipesched::cuda
