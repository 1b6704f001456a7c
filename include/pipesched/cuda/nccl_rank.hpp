// pipesched: what the per-process (NCCL) executor of one rank owns and does apart from
// issuing its program — the communicator's polling, failures (abort, failure board,
// deadline), groups and their slot-conflict splitting, warm-up, the edge communicators and
// their split rounds, capture into a graph and replay, streams, events, slots, release.
//
// `basic_nccl_executor<S, Runtime, Comm>` (a schedule type: its rank's ops expanded at
// compile time) and `basic_nccl_runtime_executor<Runtime, Comm>` (a run-time table: its
// rank's ops in a loop) derive from `detail::nccl_rank<Runtime, Comm>` and differ only in
// how they issue one iteration. Written against the `Runtime` and `Comm` policies (see
// basic_nccl_executor.hpp); includes no CUDA or NCCL header.
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

#include "pipesched/cuda/edge_rounds.hpp"
#include "pipesched/cuda/launch.hpp"
#include "pipesched/cuda/stream_program.hpp"
#include "pipesched/cuda/stream_resources.hpp"
#include "pipesched/plan/action_record.hpp"
#include "pipesched/plan/boundary.hpp"
#include "pipesched/plan/buffer_plan.hpp"

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
  /// A profiler range (NVTX) around each pass's functor call, named "2F3 r1" (PyTorch's
  /// action syntax and the rank), as cuda::options::nvtx.
  bool nvtx = false;
};

/// This rank's iteration stopped because of communication: a communicator error, a peer
/// that failed (its note on the failure board names it), or the deadline. Names this rank,
/// the failing rank (-1: unknown), and the edge and boundary this rank was on.
struct transport_error : std::runtime_error {
  int rank = -1;        ///< this rank
  int failed_rank = -1; ///< the rank that failed first, from the failure board; -1: unknown
  int edge_from = -1;   ///< the edge this rank was on (sender, receiver); -1: none
  int edge_to = -1;
  int code = 0;           ///< the communicator's status (0: none, e.g. a deadline)
  bool timed_out = false; ///< the deadline passed
  transport_error(std::string const& what, int r, int failed, int from, int to, int c, bool t)
      : std::runtime_error(what), rank(r), failed_rank(failed), edge_from(from), edge_to(to), code(c), timed_out(t) {}
};

namespace detail {

/// One directed edge a rank warms up: sender, receiver and the largest boundary on it.
struct warm_edge {
  int from = 0, to = 0;
  std::size_t bytes = 0;
};

/// The resources of one rank of a multi-process run and everything it does around the ops it
/// issues. A derived executor constructs it (nothing allocated), calls construct() with its
/// stage count and a callable that checks its program and calls setup(); each iteration goes
/// through run_with() or capture_with() with a callable that issues this rank's ops using
/// op_wait, op_record, op_exec, op_send, op_recv and end_open_group.
template <class Runtime, class Comm> class nccl_rank {
public:
  using stream_t = typename Runtime::stream_t;
  using event_t = typename Runtime::event_t;
  using status = typename Runtime::status;
  using comm_t = typename Comm::comm_t;
  using comm_status = typename Comm::status;
  using graph_t = typename Runtime::graph_t;
  using graph_exec_t = typename Runtime::graph_exec_t;

  nccl_rank(nccl_rank const&) = delete;
  nccl_rank& operator=(nccl_rank const&) = delete;

  /// A send and a receive on every edge of this rank, each edge its own group, in one order
  /// every rank shares (so it cannot deadlock); waits for them. Called by the constructor
  /// unless nccl_options::warm_up is false.
  void warm_up() { warm_edges(false); }

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

protected:
  /// Holds the communicator; allocates nothing (construct() does).
  nccl_rank(comm_t comm, int rank, int ranks, nccl_options const& o)
      : options_(o), comm_(comm), rank_(rank), ranks_(ranks) {}
  ~nccl_rank() { release(); }

  /// The constructor's work: checks the rank and the options, the boundary byte table of
  /// `stages` stages, then `prepare()` (the derived executor's checks of its program, then
  /// setup()), the warm-up and the edge communicators, as the options say. When anything
  /// throws, it aborts the communicator (the other ranks may be waiting for this one's
  /// warm-up: they must not hang), releases what it made, and rethrows.
  template <class Prepare> void construct(int stages, Prepare&& prepare) {
    try {
      if (rank_ < 0 || rank_ >= ranks_)
        throw std::invalid_argument("pipesched: rank " + std::to_string(rank_) + " of a schedule of " +
                                    std::to_string(ranks_) + " ranks");
      if (options_.max_group_ops < 1)
        throw std::invalid_argument("pipesched: nccl_options::max_group_ops must be at least 1");
      bytes_ = boundary_byte_table(stages, options_.boundaries, options_.slot_bytes);
      prepare();
      if (options_.warm_up) warm_up();
      if (options_.edge_communicators) make_edge_comms();
    } catch (...) {
      abort_comm();
      release();
      throw;
    }
  }

  /// One iteration issued by `issue()` after the work on `origin`, waited for (run()).
  template <class Issue> void run_with(Issue&& issue, stream_t origin) {
    refuse_after_failure();
    failure_ = failure_site{rank_, {}};
    start_ = std::chrono::steady_clock::now();
    issue_iteration(issue, origin);
    wait_done(origin);
    ++iterations_;
  }

  /// One iteration issued by `issue()` recorded into a graph (capture()); see
  /// basic_nccl_executor::capture.
  template <class Issue> void capture_with(Issue&& issue) {
    refuse_after_failure();
    failure_ = failure_site{rank_, {}};
    if (!edges_made_) make_edge_comms();
    drop_graph();
    start_ = std::chrono::steady_clock::now();
    check(Runtime::begin_capture(capture_stream_), "cudaStreamBeginCapture");
    capturing_ = true;
    graph_t graph{};
    try {
      issue_iteration(issue, capture_stream_);
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

  // ---- the ops of this rank (a verified rendezvous program keeps a rank on its own two
  // streams: stream 2r its compute stream, 2r + 1 its communication stream) -------------
  stream_t local_stream(stream_op const& o) const {
    return o.stream == 2u * static_cast<unsigned>(rank_) ? compute_ : comm_stream_;
  }

  /// Ends the open group, if any (before an op on the compute stream: a wait there may be on
  /// a record the group still holds back).
  void end_open_group() {
    if (in_group_) end_group();
  }
  /// A wait op: on the event of the local stream that issued its latest record (peer_action).
  void op_wait(stream_op const& o) {
    std::size_t const src = o.peer_action - 2u * static_cast<unsigned>(rank_);
    check(Runtime::stream_wait_event(local_stream(o), events_[o.event * 2u + src]), "cudaStreamWaitEvent");
  }
  /// A record op; one after a transfer must follow its group's operations: held until the
  /// group ends.
  void op_record(stream_op const& o) {
    std::size_t const local = o.stream - 2u * static_cast<unsigned>(rank_);
    event_t const e = events_[o.event * 2u + local];
    if (local == 1 && in_group_) pending_records_.push_back(e);
    else check(Runtime::event_record(e, local_stream(o)), "cudaEventRecord");
  }
  /// An exec op of the action `a`: `call(current, views, stream)` runs the pass on the
  /// compute stream; a throw leaves a note, aborts the communicator and passes on.
  template <class Call> void op_exec(action_record a, Call&& call) {
    current_ = a;
    failure_.action = current_;
    try {
      range_scope<Runtime> range(options_.nvtx, options_.nvtx ? label_of(a, rank_).text : "");
      call(current_, boundary_views{views_.data(), bytes_.data()}, compute_);
    } catch (std::exception const& ex) {
      failure_ = failure_site{rank_, current_};
      fail_local(describe(current_) + " threw: " + ex.what());
      throw;
    } catch (...) {
      failure_ = failure_site{rank_, current_};
      fail_local(describe(current_) + " threw");
      throw;
    }
    check(Runtime::get_last_error(), "a kernel launch of the stage functor");
  }
  /// A send op: SEND `sa` of this rank, of the boundary `key` (boundary_key of its in); `a`
  /// names it. Nothing for a boundary of 0 bytes.
  void op_send(action const& sa, int key, action_record a) {
    std::size_t const bytes = key < 0 ? 0 : bytes_[static_cast<std::size_t>(key)];
    if (bytes == 0) return;
    // captured: on the edge's own communicator, where the receiver is rank 1 (0: self)
    comm_t const c = capturing_ ? edge_comm(rank_, sa.peer) : comm_;
    int const peer = capturing_ ? edge_peer(rank_, sa.peer, rank_) : sa.peer;
    add_to_group({rank_, sa.peer, a}, sa.in, false, c);
    check_comm(Comm::send(views_[sa.in].data, bytes, peer, c, comm_stream_), "ncclSend");
  }
  /// A recv op: RECV `ra` of this rank from rank q, of the boundary `key` (boundary_key of
  /// the matching send's in); `a` names it.
  void op_recv(action const& ra, int q, int key, action_record a) {
    std::size_t const bytes = key < 0 ? 0 : bytes_[static_cast<std::size_t>(key)];
    if (bytes == 0) return;
    comm_t const c = capturing_ ? edge_comm(q, rank_) : comm_;
    int const peer = capturing_ ? edge_peer(q, rank_, rank_) : q;
    add_to_group({q, rank_, a}, ra.out, true, c);
    check_comm(Comm::recv(views_[ra.out].data, bytes, peer, c, comm_stream_), "ncclRecv");
  }

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

  /// Aborts every communicator of the rank (the world's and the edges'), once; first closes
  /// an open group (NCCL's group depth is per thread: with it left open, the aborts and every
  /// later NCCL call of this thread, a new communicator's included, would wait in that group).
  void abort_comm() {
    if (in_group_) {
      in_group_ = false;
      (void)Comm::group_end();
    }
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
  /// Makes this rank's streams and events (those `prog` records on its streams, and one
  /// group-done event per transfer it issues), its slots of `slot_sizes` bytes in one block,
  /// and the list of every directed edge of lowered table `t` (a static_table or a
  /// runtime_schedule: size, at) with its largest boundary, in one order every rank shares.
  template <class Table> void setup(Table const& t, stream_program const& prog, std::vector<std::size_t> const& sizes) {
    check(Runtime::stream_create(&compute_), "cudaStreamCreateWithFlags");
    check(Runtime::stream_create(&comm_stream_), "cudaStreamCreateWithFlags");
    check(Runtime::stream_create(&capture_stream_), "cudaStreamCreateWithFlags");
    for (event_t& e : joins_) check(Runtime::event_create(&e), "cudaEventCreateWithFlags");
    check(Runtime::event_create(&fork_), "cudaEventCreateWithFlags");
    // the events this rank's part of the program records, one per (event, local stream);
    // the transfers it issues (for the group-done events)
    events_.assign(static_cast<std::size_t>(prog.events()) * 2, event_t{});
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
    std::size_t const n = block_bytes(sizes);
    views_.assign(sizes.size(), view{});
    slot_read_.assign(sizes.size(), 0);
    slot_written_.assign(sizes.size(), 0);
    if (n > 0) {
      check(Runtime::malloc(&block_, n), "cudaMalloc");
      check(Runtime::memset(block_, 0, n), "cudaMemset");
      // cudaMemset runs on the legacy default stream, which this rank's non-blocking streams
      // do not wait for: wait for it here, before any boundary is received or written
      check(Runtime::stream_synchronize(stream_t{}), "cudaStreamSynchronize (the slots' cudaMemset)");
      carve_slots(block_, sizes, views_.data());
      std::size_t best = 0;
      for (std::size_t k = 0; k < sizes.size(); ++k) {
        if (sizes[k] == 0) views_[k].data = nullptr;
        if (sizes[k] > best) best = sizes[k], largest_slot_ = views_[k].data;
      }
    }
    // every directed edge of the schedule with its largest boundary, in one shared order
    for (std::size_t r = 0; r < static_cast<std::size_t>(ranks_); ++r)
      for (std::size_t i = 0; i < t.size(r); ++i) {
        action const& a = t.at(r, i);
        if (!is_send(a.kind)) continue;
        std::size_t const b = bytes_[static_cast<std::size_t>(boundary_key(t, a, field::in))];
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
    edge_index_.assign(static_cast<std::size_t>(ranks_ * ranks_), -1);
    for (std::size_t k = 0; k < edges_.size(); ++k)
      edge_index_[static_cast<std::size_t>(edges_[k].from * ranks_ + edges_[k].to)] = static_cast<int>(k);
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
    edge_round_plan const plan = color_edge_rounds(edges_, ranks_);
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
    // the graph first: NCCL's finalize of an edge communicator waits until every graph that
    // captured operations on it is destroyed
    drop_graph();
    if (!failed_) {
      if (compute_) (void)Runtime::stream_synchronize(compute_);
      if (comm_stream_) (void)Runtime::stream_synchronize(comm_stream_);
      for (comm_t c : edge_comms_) // an orderly end (after a failure they were aborted)
        if (c) Comm::release(c);
    }
    edge_comms_.clear();
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
    joins_ = {};
    fork_ = event_t{};
    compute_ = comm_stream_ = capture_stream_ = stream_t{};
    block_ = nullptr;
    (void)Runtime::get_last_error();
  }
  // ---- one iteration ----------------------------------------------------------------
  /// Fork from `origin`, this rank's ops, the last group ended, join into `origin`.
  template <class Issue> void issue_iteration(Issue& issue, stream_t origin) {
    check(Runtime::event_record(fork_, origin), "cudaEventRecord");
    check(Runtime::stream_wait_event(compute_, fork_), "cudaStreamWaitEvent");
    check(Runtime::stream_wait_event(comm_stream_, fork_), "cudaStreamWaitEvent");
    issue();
    end_open_group();
    check(Runtime::event_record(joins_[0], compute_), "cudaEventRecord");
    check(Runtime::event_record(joins_[1], comm_stream_), "cudaEventRecord");
    check(Runtime::stream_wait_event(origin, joins_[0]), "cudaStreamWaitEvent");
    check(Runtime::stream_wait_event(origin, joins_[1]), "cudaStreamWaitEvent");
  }

  comm_t edge_comm(int from, int to) const {
    return edge_comms_[static_cast<std::size_t>(edge_index_[static_cast<std::size_t>(from * ranks_ + to)])];
  }

  /// Adds a send (reading `slot`) or a receive (writing it) to the open group, first ending
  /// the group when it is full or when one of its operations touches the same slot and one
  /// of the two writes it: the operations of a group progress concurrently, so a receive
  /// into the slot a send of the same group reads (a slot reused right after its send) must
  /// wait for the next group, which the stream orders after this one. In a capture, a group
  /// also ends where the communicator `c` changes: NCCL runs a group's operations on several
  /// communicators as one kernel per communicator, one after the other on the stream in an
  /// order of its own (the communicators' hashes), so a group over two edges could run a
  /// send that blocks before a receive its peer's send is waiting for.
  void add_to_group(edge_on const& e, std::uint16_t slot, bool write, comm_t c) {
    std::size_t const k = slot;
    if (in_group_ && (group_ops_ >= options_.max_group_ops || slot_written_[k] == group_serial_ ||
                      (write && slot_read_[k] == group_serial_) || (capturing_ && c != group_comm_)))
      end_group();
    if (!in_group_) {
      group_edge_ = e;
      group_comm_ = c;
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
  int ranks_;
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
  std::vector<int> edge_index_;    ///< [from * ranks_ + to]: the edge's index in edges_, -1: none
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
  comm_t group_comm_{}; ///< the communicator of the open group's operations (one per group in a capture)
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

} // namespace detail

} // namespace pipesched::cuda
