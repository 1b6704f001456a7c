// The CUDA stream executor (a forward-only pipeline over an endless input stream on CUDA
// streams) on the CPU: pipesched::cuda::basic_stream_executor bound to the host emulation of
// CUDA's stream semantics (tests/support/emulated_cuda.hpp), whose scheduler interleaves the
// streams' work at random, with a producer and a consumer thread. Every item comes out in
// push order equal to running the stages on it one after another (the affine stages of
// tests/support/stream_items.hpp, computed without the executor); stages spread over devices
// copy peer to peer; with graphs each stage's slot is captured once and replayed; the check
// catches a pipeline that leaves out its waits; the rings' (asynchronous) memsets are done on
// every device before the first item; at most `window` items are in flight; close()
// drains, cancel() unblocks; a throwing stage or a failing copy stops the stream naming stage
// and item, and nothing hangs. With SM partitions (emu::partitioned_runtime) each stage runs
// on its partition's stream (captures on a second stream of it), its events are made in the
// partition's context, and the items are the same.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/emulated_cuda.hpp"
#include "support/stream_items.hpp"

#include "pipesched/cuda/basic_stream_executor.hpp"

using namespace pipesched;

namespace {

/// The emulator is one global state, not thread-safe: the producer's and the consumer's
/// calls (and the stage functors' launches) are serialised by one lock. pop()'s
/// event_synchronize runs the streams' work under it.
std::recursive_mutex& emu_lock() {
  static std::recursive_mutex m;
  return m;
}

struct locked_runtime : emu::runtime {
  using base = emu::runtime;
  template <class F> static auto guarded(F f) {
    std::lock_guard<std::recursive_mutex> g(emu_lock());
    return f();
  }
  static status get_last_error() { return guarded([] { return base::get_last_error(); }); }
  static status get_device(int* d) { return guarded([&] { return base::get_device(d); }); }
  static status set_device(int d) { return guarded([&] { return base::set_device(d); }); }
  static status can_access_peer(int* c, int a, int b) { return guarded([&] { return base::can_access_peer(c, a, b); }); }
  static status enable_peer_access(int p) { return guarded([&] { return base::enable_peer_access(p); }); }
  static status stream_create(stream_t* s) { return guarded([&] { return base::stream_create(s); }); }
  static status stream_destroy(stream_t s) { return guarded([&] { return base::stream_destroy(s); }); }
  static status stream_synchronize(stream_t s) { return guarded([&] { return base::stream_synchronize(s); }); }
  static status device_synchronize() { return guarded([] { return base::device_synchronize(); }); }
  static status event_create(event_t* e) { return guarded([&] { return base::event_create(e); }); }
  static status event_create_blocking(event_t* e) { return guarded([&] { return base::event_create_blocking(e); }); }
  static status event_destroy(event_t e) { return guarded([&] { return base::event_destroy(e); }); }
  static status event_record(event_t e, stream_t s) { return guarded([&] { return base::event_record(e, s); }); }
  static status stream_wait_event(stream_t s, event_t e) { return guarded([&] { return base::stream_wait_event(s, e); }); }
  static status event_synchronize(event_t e) { return guarded([&] { return base::event_synchronize(e); }); }
  static status malloc(void** p, std::size_t n) { return guarded([&] { return base::malloc(p, n); }); }
  static status free(void* p) { return guarded([&] { return base::free(p); }); }
  static status memset(void* p, int v, std::size_t n) { return guarded([&] { return base::memset(p, v, n); }); }
  static status host_alloc(void** p, std::size_t n) { return guarded([&] { return base::host_alloc(p, n); }); }
  static status host_free(void* p) { return guarded([&] { return base::host_free(p); }); }
  static status memcpy_peer_async(void* d, int dd, void const* s, int sd, std::size_t n, stream_t st) {
    return guarded([&] { return base::memcpy_peer_async(d, dd, s, sd, n, st); });
  }
  static status memcpy_to_device_async(void* d, void const* s, std::size_t n, stream_t st) {
    return guarded([&] { return base::memcpy_to_device_async(d, s, n, st); });
  }
  static status memcpy_to_host_async(void* d, void const* s, std::size_t n, stream_t st) {
    return guarded([&] { return base::memcpy_to_host_async(d, s, n, st); });
  }
};

/// A pipeline that leaves out its waits (a wait is issued as nothing): the test of the test.
struct no_wait_runtime : locked_runtime {
  static status stream_wait_event(stream_t, event_t) { return success; }
};

/// The emulator's SM partitions (emu::partitioned_runtime: each partition a context of its
/// own, event_record refuses an event of another context), locked like the rest. Counts the
/// partition streams the executor destroys itself (the partition sets own them: none).
struct locked_partitioned : locked_runtime {
  using parts = emu::partitioned_runtime;
  using partitions_t = parts::partitions_t;
  static inline int partition_streams_destroyed = 0;
  static status make_partitions(partitions_t* p, int device, int count, unsigned sms) {
    return guarded([&] { return parts::make_partitions(p, device, count, sms); });
  }
  static stream_t partition_stream(partitions_t p, int i) { return guarded([&] { return parts::partition_stream(p, i); }); }
  static status partition_stream_create(partitions_t p, int i, stream_t* s) {
    return guarded([&] { return parts::partition_stream_create(p, i, s); });
  }
  static status partition_event_create(partitions_t p, int i, event_t* e) {
    return guarded([&] { return parts::partition_event_create(p, i, e); });
  }
  static status partition_event_create_blocking(partitions_t p, int i, event_t* e) {
    return guarded([&] { return parts::partition_event_create_blocking(p, i, e); });
  }
  static void destroy_partitions(partitions_t p) noexcept { guarded([&] { parts::destroy_partitions(p); }); }
  static status stream_destroy(stream_t s) {
    if (s->partition >= 0) ++partition_streams_destroyed;
    return locked_runtime::stream_destroy(s);
  }
};

/// Partitions whose events are made in the device's context, not the partition's: the test
/// of the test (the emulator refuses to record them on a partition's stream).
struct wrong_context_runtime : locked_partitioned {
  static status partition_event_create(partitions_t, int, event_t* e) { return event_create(e); }
};

using stream_items::input_of;
using stream_items::sequential;
using stream_items::width;

/// The stages of stream_items as "kernels": stage s maps each double of the item with
/// stream_items::stage_map, run when the stage's stream reaches it. Counts its calls; throws
/// at its `fail_at`-th call when it is stage `fail_stage`; records what it was given.
struct affine {
  int calls = 0, fail_stage = -1, fail_at = -1;
  std::vector<runtime_step> steps;
  std::vector<io> ios;
  template <class St> void forward(St const& s, io const& x) {
    if (s.stage == fail_stage && calls == fail_at) throw std::runtime_error("stage failure");
    ++calls;
    steps.push_back(s);
    ios.push_back(x);
    int const st = s.stage;
    double const* in = x.in.as<double>();
    double* out = x.out.as<double>();
    std::lock_guard<std::recursive_mutex> g(emu_lock());
    emu::launch(x.stream, [in, out, st] {
      for (int k = 0; k < width; ++k) out[k] = stream_items::stage_map(in[k], st);
    });
  }
};

cuda::stream_options options(int stages, int window, cuda::overflow o = cuda::overflow::block) {
  return stream_items::options<cuda::stream_options>(stages, window, o);
}

template <class Runtime> using executor = cuda::basic_stream_executor<affine, Runtime>;

/// Pushes n items from a producer thread (then close()), pops them on this thread; returns
/// how many came out wrong (out of order, or not equal to the sequential stages), one more
/// when not all n came out.
template <class Runtime> int run_stream(executor<Runtime>& ex, std::uint64_t n, int stages) {
  stream_items::popped const out = stream_items::push_and_pop(ex, n, stages);
  return out.wrong + (out.items != n ? 1 : 0);
}

} // namespace

TEST_CASE("cuda_stream.items_in_order_equal_sequential") {
  for (int stages : {1, 3, 5})
    for (int window : {1, 2, 4})
      for (std::uint64_t seed : {1u, 2u, 3u}) {
        CAPTURE(stages);
        CAPTURE(window);
        CAPTURE(seed);
        emu::reset(seed);
        std::vector<affine> fs(static_cast<std::size_t>(stages));
        executor<locked_runtime> ex(fs, options(stages, window));
        constexpr std::uint64_t n = 120;
        CHECK(run_stream(ex, n, stages) == 0);
        CHECK(ex.delivered() == n);
        CHECK(ex.latencies().size() == n);
        // every item: one copy in, one out; nothing else copied on one device
        CHECK(emu::the().copies_run == 2 * n);
        CHECK(emu::the().peer_copies == 0);
        for (affine const& f : fs) CHECK(f.calls == static_cast<int>(n));
      }
}

TEST_CASE("cuda_stream.graphs_one_per_stage_and_slot") {
  // options::graphs: each stage's forward for each window slot is captured once (by the first
  // item in the slot) and replayed for every item: the functor is called `window` times per
  // stage, every item launches one graph per stage, and the items are the same
  for (int stages : {1, 3})
    for (int window : {1, 3})
      for (std::vector<int> devices : {std::vector<int>{}, std::vector<int>{0, 1, 1}}) {
        if (!devices.empty() && static_cast<int>(devices.size()) != stages) continue;
        CAPTURE(stages);
        CAPTURE(window);
        CAPTURE(devices.size());
        emu::reset(11);
        std::vector<affine> fs(static_cast<std::size_t>(stages));
        auto opt = options(stages, window);
        opt.graphs = true;
        opt.devices = devices;
        executor<locked_runtime> ex(fs, opt);
        constexpr std::uint64_t n = 40;
        CHECK(run_stream(ex, n, stages) == 0);
        for (affine const& f : fs) CHECK(f.calls == window);
        CHECK(ex.graphs_captured() == stages * window);
        CHECK(emu::the().graph_launches == static_cast<std::uint64_t>(stages) * n);
        // the functor was given the stage's capture stream, not the stage stream
        for (int s = 0; s < stages; ++s) CHECK(fs[static_cast<std::size_t>(s)].ios[0].stream != ex.stage_stream(s));
      }
}

TEST_CASE("cuda_stream.a_stage_that_throws_while_captured") {
  emu::reset(12);
  std::vector<affine> fs(2);
  fs[1].fail_stage = 1;
  fs[1].fail_at = 1; // stage 1's second capture (item 1, slot 1)
  auto opt = options(2, 2);
  opt.graphs = true;
  executor<locked_runtime> ex(fs, opt);
  auto const v = input_of(0);
  CHECK(ex.push(v.data()));
  CHECK_THROWS_WITH_AS(ex.push(v.data()), "stage failure", std::runtime_error);
  CHECK_FALSE(emu::the().capturing); // the capture was ended
  CHECK(ex.failed_stage() == 1);
  CHECK(ex.failed_item() == 1);
  CHECK_THROWS_AS(ex.pop(), cuda::stream_closed);
}

TEST_CASE("cuda_stream.steps_and_streams") {
  emu::reset(7);
  constexpr int stages = 3, window = 3;
  std::vector<affine> fs(stages);
  executor<locked_runtime> ex(fs, options(stages, window));
  constexpr std::uint64_t n = 10;
  CHECK(run_stream(ex, n, stages) == 0);
  for (int s = 0; s < stages; ++s) {
    affine const& f = fs[static_cast<std::size_t>(s)];
    REQUIRE(f.steps.size() == n);
    for (std::uint64_t id = 0; id < n; ++id) {
      runtime_step const& st = f.steps[id];
      io const& x = f.ios[id];
      CHECK(st.kind == op::forward);
      CHECK(st.stage == s);
      CHECK(st.mb == static_cast<int>(id % window));
      CHECK(st.in == st.mb);
      CHECK(st.out == st.mb);
      CHECK(st.stages == stages);
      CHECK(st.first_stage == (s == 0));
      CHECK(st.last_stage == (s == stages - 1));
      CHECK(x.stream == ex.stage_stream(s));
      CHECK(x.rank == s);
      CHECK(x.in.bytes == width * sizeof(double));
      CHECK(x.out.bytes == width * sizeof(double));
      if (s > 0) CHECK(x.in.data == fs[static_cast<std::size_t>(s) - 1].ios[id].out.data); // written in place
    }
  }
  // the stages' streams are distinct: they run side by side
  CHECK(ex.stage_stream(0) != ex.stage_stream(1));
  CHECK(ex.stage_stream(1) != ex.stage_stream(2));
}

TEST_CASE("cuda_stream.stages_on_several_devices_copy_peer_to_peer") {
  for (std::uint64_t seed : {1u, 5u, 9u}) {
    CAPTURE(seed);
    emu::reset(seed);
    constexpr int stages = 4;
    std::vector<affine> fs(stages);
    auto opt = options(stages, 3);
    opt.devices = {0, 1, 1, 2}; // two device changes: 0 -> 1 and 1 -> 2
    executor<locked_runtime> ex(fs, opt);
    constexpr std::uint64_t n = 60;
    CHECK(run_stream(ex, n, stages) == 0);
    CHECK(emu::the().peer_copies == 2 * n);
    CHECK(emu::the().copies_run == 4 * n);
    CHECK(ex.device(0) == 0);
    CHECK(ex.device(3) == 2);
  }
}

TEST_CASE("cuda_stream.the_callers_device_stays_current") {
  // stages on devices 0, 1, 1, 2: push() and finish() switch devices while they issue and
  // wait, and give the calling thread its own current device back (here 3, none of the
  // stages'); the constructor gives back the device current when it was made
  emu::reset(4);
  std::vector<affine> fs(4);
  auto opt = options(4, 3);
  opt.devices = {0, 1, 1, 2};
  REQUIRE(emu::runtime::set_device(3) == 0);
  executor<locked_runtime> ex(fs, opt);
  int d = -1;
  (void)emu::runtime::get_device(&d);
  CHECK(d == 3);
  std::vector<float> item(static_cast<std::size_t>(opt.input_bytes / sizeof(float)) + 1, 1.0f);
  REQUIRE(emu::runtime::set_device(5) == 0);
  CHECK(ex.push(item.data()));
  (void)emu::runtime::get_device(&d);
  CHECK(d == 5);
  ex.finish();
  (void)emu::runtime::get_device(&d);
  CHECK(d == 5);
  CHECK(ex.pop().has_value());
}

TEST_CASE("cuda_stream.ring_memsets_are_done_on_every_device_before_the_first_item") {
  // cudaMemset is asynchronous, on each device's legacy default stream, which the stages'
  // non-blocking streams do not wait for (emulated so): the constructor must wait for the
  // rings' memsets on every device, or one could zero an item's boundary after it is written
  emu::reset(3);
  std::vector<affine> fs(4);
  auto opt = options(4, 3);
  opt.devices = {0, 1, 1, 2};
  executor<locked_runtime> ex(fs, opt);
  for (CUstream_st const& s : emu::the().default_streams) CHECK(s.queue.empty());
  CHECK(run_stream(ex, 12, 4) == 0);
}

TEST_CASE("cuda_stream.the_check_catches_a_pipeline_without_waits") {
  // without its event waits a stage may read its input before the stage before wrote it:
  // some interleaving of the emulator shows a wrong item
  int wrong = 0;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    emu::reset(seed);
    std::vector<affine> fs(4);
    executor<no_wait_runtime> ex(fs, options(4, 4));
    wrong += run_stream(ex, 80, 4);
  }
  CHECK(wrong > 0);
}

TEST_CASE("cuda_stream.window_reject_and_block") {
  emu::reset(3);
  std::vector<affine> fs(2);
  executor<locked_runtime> ex(fs, options(2, 2, cuda::overflow::reject));
  auto const a = input_of(0), b = input_of(1), c = input_of(2);
  CHECK(ex.push(a.data()));
  CHECK(ex.push(b.data()));
  CHECK_FALSE(ex.push(c.data())); // two in flight: the window is full
  CHECK(ex.pushed() == 2);
  auto first = ex.pop();
  REQUIRE(first);
  CHECK(first->id == 0);
  CHECK(ex.push(c.data())); // room again: item 2
  ex.close();
  CHECK_THROWS_AS(ex.push(a.data()), cuda::stream_closed);
  std::uint64_t next = 1;
  while (auto item = ex.pop()) {
    std::vector<double> got(width);
    std::memcpy(got.data(), item->bytes.data(), item->bytes.size());
    CHECK(item->id == next);
    CHECK(got == sequential(next, 2));
    ++next;
  }
  CHECK(next == 3);

  // block mode: a push past the window waits until the consumer pops
  emu::reset(4);
  std::vector<affine> gs(2);
  executor<locked_runtime> bx(gs, options(2, 1));
  CHECK(bx.push(a.data()));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    bx.push(b.data());
    pushed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(pushed.load()); // waiting: item 0 is still in flight
  auto item = bx.pop();
  producer.join();
  CHECK(pushed.load());
  REQUIRE(item);
  CHECK(item->id == 0);
  auto second = bx.pop();
  REQUIRE(second);
  CHECK(second->id == 1);
  bx.finish();
}

TEST_CASE("cuda_stream.cancel_unblocks_producer_and_consumer") {
  emu::reset(5);
  std::vector<affine> fs(3);
  executor<locked_runtime> ex(fs, options(3, 1));
  auto const v = input_of(0);
  CHECK(ex.push(v.data()));
  std::atomic<int> closed{0};
  std::thread producer([&] {
    try {
      ex.push(v.data()); // blocks: the window of one is full
    } catch (cuda::stream_closed const&) {
      ++closed;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ex.cancel();
  producer.join();
  CHECK(closed.load() == 1);
  CHECK_THROWS_AS(ex.pop(), cuda::stream_closed);
  CHECK_THROWS_WITH_AS(ex.push(v.data()), doctest::Contains("cancelled"), cuda::stream_closed);
}

TEST_CASE("cuda_stream.a_throwing_stage_stops_the_stream") {
  emu::reset(6);
  constexpr int stages = 3;
  std::vector<affine> fs(stages);
  fs[2].fail_stage = 2;
  fs[2].fail_at = 5; // stage 2 throws at item 5
  executor<locked_runtime> ex(fs, options(stages, 8));
  for (std::uint64_t id = 0; id < 5; ++id) {
    auto const v = input_of(id);
    CHECK(ex.push(v.data()));
  }
  auto const v = input_of(5);
  CHECK_THROWS_WITH_AS(ex.push(v.data()), "stage failure", std::runtime_error); // the push that met it
  CHECK(ex.failed_stage() == 2);
  CHECK(ex.failed_item() == 5);
  CHECK_THROWS_WITH_AS(ex.push(v.data()), doctest::Contains("stage failure"), cuda::stream_closed);
  CHECK_THROWS_WITH_AS(ex.pop(), doctest::Contains("stage failure"), cuda::stream_closed);
  CHECK_THROWS_WITH_AS(ex.finish(), "stage failure", std::runtime_error);
  // the destructor lets the issued work (items 0-4 and item 5's stages 0 and 1) drain
}

TEST_CASE("cuda_stream.a_failing_copy_names_stage_and_item") {
  emu::reset(8);
  constexpr int stages = 2;
  std::vector<affine> fs(stages);
  executor<locked_runtime> ex(fs, options(stages, 4));
  // copies per item on one device: the input (stage 0), the output (stage 1); the 6th copy is
  // item 2's output copy
  emu::the().fail_copy_at = 6;
  for (std::uint64_t id = 0; id < 2; ++id) {
    auto const v = input_of(id);
    CHECK(ex.push(v.data()));
  }
  auto const v = input_of(2);
  try {
    ex.push(v.data());
    FAIL("push did not throw");
  } catch (cuda::error const& e) {
    CHECK(e.code == emu::runtime::copy_failed);
    CHECK(std::string(e.what()).find("at stage 1 for item 2") != std::string::npos);
    CHECK(std::string(e.what()).find("device to host") != std::string::npos);
  }
  CHECK(ex.failed_stage() == 1);
  CHECK(ex.failed_item() == 2);
  CHECK_THROWS_AS(ex.pop(), cuda::stream_closed);
  CHECK_THROWS_AS(ex.finish(), cuda::error);
}

TEST_CASE("cuda_stream.bad_options") {
  emu::reset(9);
  std::vector<affine> fs(2);
  auto opt = options(2, 2);
  opt.output_bytes.clear();
  CHECK_THROWS_WITH_AS(executor<locked_runtime>(fs, opt), doctest::Contains("one size per stage"), std::invalid_argument);
  opt = options(3, 2);
  CHECK_THROWS_WITH_AS(executor<locked_runtime>(fs, opt), doctest::Contains("3 stages got 2 stage functors"),
                       std::invalid_argument);
  opt = options(2, 0);
  CHECK_THROWS_WITH_AS(executor<locked_runtime>(fs, opt), doctest::Contains("window must be at least 1"),
                       std::invalid_argument);
  opt = options(2, 2);
  opt.devices = {0};
  CHECK_THROWS_WITH_AS(executor<locked_runtime>(fs, opt), doctest::Contains("give one per stage"),
                       std::invalid_argument);
  opt.devices = {0, 99}; // the emulator has 8 devices
  CHECK_THROWS_AS(executor<locked_runtime>(fs, opt), cuda::error);
  {
    executor<locked_runtime> ex(fs, options(2, 2));
    CHECK_THROWS_WITH_AS(ex.push(nullptr), doctest::Contains("null item"), std::invalid_argument);
    CHECK(ex.pushed() == 0); // nothing was admitted
  }
  // nothing was left behind: every stream made was destroyed
  CHECK(emu::the().streams.empty());
}

namespace {

/// An executor whose push and pop failures are caught and kept (the first one's message), so
/// that push_and_pop reports them as a check rather than ending the process from its producer
/// thread: a failed push stops the stream, pop then ends it.
template <class Ex> struct catching {
  Ex& ex;
  std::mutex m;
  std::string first;
  void note(std::exception const& e) {
    std::lock_guard<std::mutex> g(m);
    if (first.empty()) first = e.what();
  }
  bool push(void const* data) {
    try {
      return ex.push(data);
    } catch (std::exception const& e) {
      note(e);
      return false;
    }
  }
  void close() { ex.close(); }
  std::optional<cuda::stream_item> pop() {
    try {
      return ex.pop();
    } catch (std::exception const& e) {
      note(e);
      return std::nullopt;
    }
  }
};

/// The SM partitions' checks of one partitioned run (stages on `devices`, empty: one device):
/// a set per device in use in order of first use, a partition per stage on it in stage order,
/// each stage's forward on its partition's stream (with graphs: captured on another stream of
/// the same partition), the sizes planned as plan_sm_partitions plans them.
void check_partitioned(std::vector<int> devices, unsigned sm_per_stage, bool graphs,
                       std::vector<std::vector<int>> const& stages_of_set, std::vector<unsigned> const& per_stage) {
  int const stages = devices.empty() ? 4 : static_cast<int>(devices.size());
  constexpr int window = 3;
  constexpr std::uint64_t n = 60;
  std::vector<affine> fs(static_cast<std::size_t>(stages));
  auto opt = options(stages, window);
  opt.devices = devices;
  opt.graphs = graphs;
  opt.sm_partitions = true;
  opt.sm_per_stage = sm_per_stage;
  locked_partitioned::partition_streams_destroyed = 0;
  auto const& sets = emu::the().partition_sets;
  {
    executor<locked_partitioned> ex(fs, opt);
    REQUIRE(sets.size() == stages_of_set.size());
    for (std::size_t k = 0; k < sets.size(); ++k) {
      std::vector<int> const& on = stages_of_set[k];
      CHECK(sets[k]->device == ex.device(on[0]));
      CHECK(sets[k]->count == static_cast<int>(on.size()));
      CHECK(sets[k]->sms == sm_per_stage);
      CHECK(sets[k]->per_stage == per_stage[k]);
      CHECK(sets[k]->per_stage ==
            cuda::plan_sm_partitions(cuda::sm_facts{132, 8, 8}, static_cast<int>(on.size()), sm_per_stage).per_stage);
      for (std::size_t i = 0; i < on.size(); ++i) {
        CHECK(ex.partitioned(on[i]));
        CHECK(ex.stage_stream(on[i]) == sets[k]->streams[i]);
      }
    }
    catching<executor<locked_partitioned>> c{ex, {}, {}};
    stream_items::popped const out = stream_items::push_and_pop(c, n, stages);
    CHECK(c.first == ""); // e.g. an event recorded on a partition's stream from another context
    CHECK(out.items == n);
    CHECK(out.wrong == 0);
    for (int s = 0; s < stages; ++s) {
      CAPTURE(s);
      affine const& f = fs[static_cast<std::size_t>(s)];
      CHECK(f.calls == (graphs ? window : static_cast<int>(n)));
      int const partition = ex.stage_stream(s)->partition;
      CHECK(partition >= 0);
      for (int q = 0; q < s; ++q) CHECK(ex.stage_stream(q)->partition != partition); // disjoint
      REQUIRE_FALSE(f.ios.empty());
      for (io const& x : f.ios) {
        CHECK(x.stream->partition == partition);
        CHECK(x.stream->device == ex.device(s));
        CHECK((x.stream == ex.stage_stream(s)) == !graphs); // graphs: a capture stream of the partition
      }
    }
    if (graphs) CHECK(ex.graphs_captured() == stages * window);
  }
  for (auto const& set : sets) CHECK_FALSE(set->alive);        // released with the executor
  CHECK(locked_partitioned::partition_streams_destroyed == 0); // by the sets, not the executor
  CHECK(emu::the().streams.empty());                            // every stream destroyed
}

} // namespace

TEST_CASE("cuda_stream.sm_partitions_one_device") {
  for (bool graphs : {false, true})
    for (std::uint64_t seed : {1u, 2u}) {
      CAPTURE(graphs);
      CAPTURE(seed);
      emu::reset(seed);
      // 4 stages on the emulated 132-SM GPU (partitions of multiples of 8): the largest equal
      // partitions are 132 / 4 = 33 rounded down to 32 SMs
      check_partitioned({}, 0, graphs, {{0, 1, 2, 3}}, {32});
    }
}

TEST_CASE("cuda_stream.sm_partitions_two_devices") {
  for (bool graphs : {false, true}) {
    CAPTURE(graphs);
    emu::reset(graphs ? 4 : 3);
    // stages 0 and 3 on device 0, 1 and 2 on device 1: a set of two partitions on each,
    // device 0's first (first used); 20 SMs asked for, rounded up to 24 (a multiple of 8)
    check_partitioned({0, 1, 1, 0}, 20, graphs, {{0, 3}, {1, 2}}, {24, 24});
    CHECK(emu::the().peer_copies == 2 * 60); // 0 -> 1 and 1 -> 0 for every item
  }
}

TEST_CASE("cuda_stream.sm_partitions_events_in_the_partitions_context") {
  // events made in the device's context and recorded on a partition's stream are refused
  // (emulated as CUDA does): the first record, stage 0's of item 0, fails the push
  emu::reset(5);
  std::vector<affine> fs(3);
  auto opt = options(3, 2);
  opt.sm_partitions = true;
  executor<wrong_context_runtime> ex(fs, opt);
  auto const v = input_of(0);
  try {
    ex.push(v.data());
    FAIL("push did not throw");
  } catch (cuda::error const& e) {
    CHECK(e.code == emu::runtime::context_mismatch);
    CHECK(std::string(e.what()).find("cudaEventRecord failed at stage 0 for item 0") != std::string::npos);
  }
  CHECK(ex.failed_stage() == 0);
}

TEST_CASE("cuda_stream.sm_partitions_refusals") {
  emu::reset(6);
  std::vector<affine> fs(4);
  auto opt = options(4, 2);
  opt.sm_partitions = true;
  // a runtime policy without partitions refuses the option
  CHECK_THROWS_WITH_AS(executor<locked_runtime>(fs, opt), doctest::Contains("stream_options::sm_partitions"),
                       std::invalid_argument);
  CHECK(emu::the().streams.empty());
  // 4 x 40 SMs > 132: refused by the constructor (before any item), naming 132 / 4 = 33,
  // rounded down to a multiple of 8: 32
  opt.sm_per_stage = 40;
  CHECK_THROWS_WITH_AS(executor<locked_partitioned>(fs, opt), doctest::Contains("at most 32 SMs per stage"),
                       std::invalid_argument);
  CHECK(emu::the().partition_sets.empty());
  // on the second device: 1 x 48 fits device 0, 3 x 48 = 144 > 132 does not (at most
  // 132 / 3 = 44, rounded down: 40); device 0's set is released
  opt.sm_per_stage = 48;
  opt.devices = {0, 1, 1, 1};
  CHECK_THROWS_WITH_AS(executor<locked_partitioned>(fs, opt), doctest::Contains("at most 40 SMs per stage"),
                       std::invalid_argument);
  REQUIRE(emu::the().partition_sets.size() == 1);
  CHECK_FALSE(emu::the().partition_sets[0]->alive);
  for (affine const& f : fs) CHECK(f.calls == 0);
  CHECK(emu::the().streams.empty()); // nothing left behind
}

namespace {

/// Counts the stream synchronisations that find work still queued on their stream (the
/// thread would wait there, spinning by default).
template <class Base> struct sync_counting : Base {
  static inline int waited = 0, calls = 0;
  static typename Base::status stream_synchronize(typename Base::stream_t s) {
    return Base::guarded([&] {
      ++calls;
      if (!emu::resolve(s)->queue.empty()) ++waited;
      return emu::runtime::stream_synchronize(s);
    });
  }
};

} // namespace

TEST_CASE("cuda_stream.blocking_pop_waits_on_blocking_events") {
  // stream_options::blocking_pop: every wait of pop() is on an event made with
  // cudaEventBlockingSync (the thread sleeps, emulated as a count); without it, none is
  for (bool blocking : {false, true})
    for (bool partitioned : {false, true})
      for (bool graphs : {false, true}) {
        CAPTURE(blocking);
        CAPTURE(partitioned);
        CAPTURE(graphs);
        emu::reset(partitioned ? 21 : 22);
        constexpr int stages = 3;
        constexpr std::uint64_t n = 50;
        std::vector<affine> fs(stages);
        auto opt = options(stages, 3);
        opt.blocking_pop = blocking;
        opt.graphs = graphs;
        opt.sm_partitions = partitioned;
        stream_items::popped out;
        if (partitioned) {
          executor<locked_partitioned> ex(fs, opt);
          out = stream_items::push_and_pop(ex, n, stages);
        } else {
          executor<locked_runtime> ex(fs, opt);
          out = stream_items::push_and_pop(ex, n, stages);
        }
        CHECK(out.items == n);
        CHECK(out.wrong == 0);
        // one cudaEventSynchronize per item popped, and nothing else waits on an event
        CHECK(emu::the().blocking_event_waits == (blocking ? n : 0));
        CHECK(emu::the().spinning_event_waits == (blocking ? 0 : n));
      }
}

TEST_CASE("cuda_stream.blocking_pop_finish_sleeps_on_the_last_items_event") {
  // finish() with blocking_pop waits for the last item's event (blocking): it follows every
  // stage's work on every stream, so each stream synchronisation after it finds its stream
  // empty. Without the option finish() synchronises the streams, which then have work left
  // (the emulator runs nothing before someone waits).
  for (bool blocking : {false, true})
    for (std::vector<int> devices : {std::vector<int>{}, std::vector<int>{0, 1, 1, 2}}) {
      CAPTURE(blocking);
      CAPTURE(devices.size());
      emu::reset(23);
      using rt = sync_counting<locked_runtime>;
      rt::waited = rt::calls = 0;
      constexpr int stages = 4;
      constexpr std::uint64_t n = 6;
      std::vector<affine> fs(stages);
      auto opt = options(stages, static_cast<int>(n));
      opt.blocking_pop = blocking;
      opt.devices = devices;
      executor<rt> ex(fs, opt);
      for (std::uint64_t id = 0; id < n; ++id) {
        auto const v = input_of(id);
        REQUIRE(ex.push(v.data()));
      }
      ex.finish();
      CHECK(emu::the().blocking_event_waits == (blocking ? 1u : 0u));
      CHECK(rt::calls == stages);
      if (blocking) CHECK(rt::waited == 0);
      else CHECK(rt::waited > 0);
      for (std::uint64_t id = 0; id < n; ++id) {
        auto item = ex.pop();
        REQUIRE(item);
        std::vector<double> got(width);
        std::memcpy(got.data(), item->bytes.data(), width * sizeof(double));
        CHECK(got == sequential(id, stages));
      }
      CHECK_FALSE(ex.pop());
    }
}

TEST_CASE("cuda_stream.nvtx_ranges") {
  // stream_options::nvtx: a profiler range around each stage's functor call, on the pushing
  // thread, named "{stage}F{item} r{stage}" in push order (item by item, stage by stage);
  // with graphs only around the captures (the first item in each slot); none without it
  for (bool graphs : {false, true})
    for (bool on : {true, false}) {
      CAPTURE(graphs);
      CAPTURE(on);
      emu::reset(24);
      emu_support::clear_ranges();
      constexpr int stages = 3, window = 2;
      constexpr std::uint64_t n = 7;
      std::vector<affine> fs(stages);
      auto opt = options(stages, window);
      opt.graphs = graphs;
      opt.nvtx = on;
      executor<locked_runtime> ex(fs, opt);
      CHECK(run_stream(ex, n, stages) == 0);
      std::vector<std::string> want;
      if (on)
        for (std::uint64_t id = 0; id < (graphs ? static_cast<std::uint64_t>(window) : n); ++id)
          for (int s = 0; s < stages; ++s) {
            want.push_back("+" + std::to_string(s) + "F" + std::to_string(id) + " r" + std::to_string(s));
            want.push_back("-");
          }
      std::vector<std::string> got;
      for (auto const& e : emu_support::ranges()) got.push_back(e.text);
      CHECK(got == want);
      CHECK(emu_support::ranges_balanced());
    }
}
