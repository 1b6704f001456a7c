// The host executor's interface: functors given as a vector or as a tuple of different
// types per rank, the one-shot host::run, the buffer plan it allocates, and a run-time
// rank mapped to the compile-time plan.
#include <doctest/doctest.h>

#include <tuple>
#include <vector>

#include "pipesched/host/executor.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

struct first_rank : plan_test::checking_functor {};
struct second_rank : plan_test::checking_functor {};

} // namespace

TEST_CASE("host.executor.tuple_functors.1f1b.p2.m4") {
  using S = one_f_one_b<stages<2>, microbatches<4>>;
  std::tuple<first_rank, second_rank> fs;
  host::executor<S> ex(host::options{plan_test::stamp_bytes, std::chrono::seconds(20)});
  ex.run(fs);
  CHECK(std::get<0>(fs).calls == 8);
  CHECK(std::get<1>(fs).calls == 8);
  CHECK(std::get<0>(fs).mismatches == 0);
  CHECK(std::get<1>(fs).mismatches == 0);
}

TEST_CASE("host.executor.run_once.zb_h1.p3.m5") {
  using S = zb_h1<stages<3>, microbatches<5>>;
  std::vector<plan_test::checking_functor> fs(3);
  host::run<S>(fs, host::options{plan_test::stamp_bytes, std::chrono::seconds(20)});
  for (auto const& f : fs) {
    CHECK(f.calls == 15); // F, I and W of 5 micro-batches
    CHECK(f.mismatches == 0);
  }
}

TEST_CASE("host.executor.buffers.interleaved.p4.m8") {
  using S = interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>;
  host::executor<S> ex(host::options{100, std::chrono::seconds(20)});
  table const t = S::make();
  for (int r = 0; r < 4; ++r) {
    auto const& b = ex.buffers(r);
    REQUIRE(b.slots() == t.slot_count[static_cast<std::size_t>(r)]);
    for (int k = 0; k < b.slots(); ++k) {
      CHECK(b[k].bytes == 100);
      CHECK(reinterpret_cast<std::uintptr_t>(b[k].data) % slot_alignment == 0);
      if (k > 0) CHECK(static_cast<unsigned char*>(b[k].data) - static_cast<unsigned char*>(b[k - 1].data) == 256);
    }
  }
}

TEST_CASE("host.executor.many_iterations.v_min.p4.m6") {
  using S = v_min<stages<4>, microbatches<6>>;
  host::executor<S> ex(host::options{plan_test::stamp_bytes, std::chrono::seconds(20)});
  for (int i = 0; i < 50; ++i) {
    std::vector<plan_test::checking_functor> fs(4);
    ex.run(fs);
    for (auto const& f : fs) CHECK(f.mismatches == 0);
  }
}

TEST_CASE("host.executor.with_rank") {
  int seen = -1;
  host::detail::with_rank<5>(3, [&](auto r) { seen = decltype(r)::value; });
  CHECK(seen == 3);
}
