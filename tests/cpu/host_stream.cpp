// The streaming executor: a forward-only pipeline over an input stream. Every item comes out
// in push order equal to running the stages on it one after another; at most `window` items
// are in flight (reject mode refuses the next, block mode waits); close() drains, cancel()
// drops and unblocks everyone; a stage that throws stops the stream, push and pop report it
// and finish() rethrows it.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "pipesched/host/stream.hpp"
#include "support/stream_items.hpp"

using namespace pipesched;

namespace {

using stream_items::input_of;
using stream_items::sequential;
using stream_items::width;

/// Stage s maps each of the item's doubles x with stream_items::stage_map; stage
/// `fail_stage` throws at the `fail_at`-th item it sees.
struct affine {
  int calls = 0, fail_stage = -1, fail_at = -1;
  template <class St> void forward(St const& s, io const& x) {
    if (s.stage == fail_stage && calls == fail_at) throw std::runtime_error("stage failure");
    ++calls;
    double const* in = x.in.as<double>();
    double* out = x.out.as<double>();
    for (int k = 0; k < width; ++k) out[k] = stream_items::stage_map(in[k], s.stage);
  }
};

host::stream_options options(int stages, int window, host::overflow o = host::overflow::block) {
  return stream_items::options<host::stream_options>(stages, window, o);
}

} // namespace

TEST_CASE("stream.items_in_order_equal_sequential") {
  for (int stages : {1, 3, 5})
    for (int window : {1, 2, 4}) {
      CAPTURE(stages);
      CAPTURE(window);
      std::vector<affine> fs(static_cast<std::size_t>(stages));
      host::stream_executor<affine> ex(fs, options(stages, window));
      constexpr std::uint64_t n = 300;
      stream_items::popped const out = stream_items::push_and_pop(ex, n, stages);
      ex.finish();
      CHECK(out.wrong == 0);
      CHECK(out.items == n);
      CHECK(ex.latencies().size() == n);
      for (auto const& f : fs) CHECK(f.calls == static_cast<int>(n));
    }
}

TEST_CASE("stream.reject_when_window_full") {
  // nobody pops: exactly `window` items get in, the next push is refused, nothing is lost;
  // after popping one, one more gets in
  std::vector<affine> fs(3);
  host::stream_executor<affine> ex(fs, options(3, 4, host::overflow::reject));
  auto const v = input_of(0);
  int accepted = 0;
  for (int k = 0; k < 10; ++k) accepted += ex.push(v.data()) ? 1 : 0;
  CHECK(accepted == 4);
  auto first = ex.pop();
  REQUIRE(first);
  CHECK(first->id == 0);
  CHECK(ex.push(v.data()));
  CHECK_FALSE(ex.push(v.data()));
  ex.close();
  int rest = 0;
  while (ex.pop()) ++rest;
  CHECK(rest == 4);
  ex.finish();
}

TEST_CASE("stream.block_when_window_full") {
  // block mode: the (window+1)-th push waits until the consumer pops
  std::vector<affine> fs(2);
  host::stream_executor<affine> ex(fs, options(2, 2));
  auto const v = input_of(0);
  ex.push(v.data());
  ex.push(v.data());
  std::atomic<bool> third{false};
  std::thread producer([&] {
    ex.push(v.data());
    third = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(third.load());
  REQUIRE(ex.pop());
  producer.join();
  CHECK(third.load());
  ex.close();
  int rest = 0;
  while (ex.pop()) ++rest;
  CHECK(rest == 2);
}

TEST_CASE("stream.cancel_drops_and_unblocks") {
  std::vector<affine> fs(3);
  host::stream_executor<affine> ex(fs, options(3, 2));
  auto const v = input_of(0);
  ex.push(v.data());
  ex.push(v.data());
  std::atomic<int> outcome{0};
  std::thread producer([&] {
    try {
      ex.push(v.data()); // blocks: the window is full and nobody pops
      outcome = 1;
    } catch (host::stream_closed const&) {
      outcome = 2;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ex.cancel();
  producer.join();
  CHECK(outcome.load() == 2);
  CHECK_THROWS_AS(ex.pop(), host::stream_closed);
  CHECK_THROWS_AS(ex.push(v.data()), host::stream_closed);
}

TEST_CASE("stream.stage_failure") {
  // stage 1 throws at its 5th item: the stream stops, pop reports it, finish rethrows
  std::vector<affine> fs(3);
  fs[1].fail_stage = 1;
  fs[1].fail_at = 4;
  host::stream_executor<affine> ex(fs, options(3, 8));
  std::thread producer([&] {
    try {
      for (std::uint64_t id = 0; id < 100; ++id) {
        auto const v = input_of(id);
        ex.push(v.data());
      }
    } catch (host::stream_closed const&) {
    }
  });
  int popped = 0;
  std::string what;
  try {
    while (ex.pop()) ++popped;
  } catch (host::stream_closed const& e) {
    what = e.what();
  }
  producer.join();
  CHECK(popped <= 4);
  CHECK(what == "pipesched: the stream stopped: a stage failed: stage failure");
  CHECK_THROWS_WITH_AS(ex.finish(), "stage failure", std::runtime_error);
}

TEST_CASE("stream.bad_options") {
  std::vector<affine> fs(2);
  CHECK_THROWS_AS(host::stream_executor<affine>(fs, options(3, 2)), std::invalid_argument);
  CHECK_THROWS_AS(host::stream_executor<affine>(fs, options(2, 0)), std::invalid_argument);
}
