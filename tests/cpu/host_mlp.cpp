// An MLP (12 or 16 layers, softmax cross-entropy head, float64) trained a few steps with
// every schedule on the host backend: per-step losses and final weights equal the plain
// sequential reference to the last bit (compared with ==), and every saved input read at B, I or W is the
// one seen at F.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "pipesched/host/executor.hpp"
#include "plan_mlp.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

constexpr int steps = 3;

template <class S> void train_and_compare(int layers) {
  mlp::config c;
  c.layers = layers;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model reference(c), piped(c);
  host::options o;
  o.slot_bytes = piped.boundary_bytes();
  o.timeout = std::chrono::seconds(30);
  host::executor<S> ex(o);
  std::vector<mlp::stage_functor> fs(static_cast<std::size_t>(S::ranks), mlp::stage_functor{&piped});
  for (int step = 0; step < steps; ++step) {
    double const want = reference.reference_step(S::lowered.split_backward);
    ex.run(fs);
    double const got = piped.apply_all();
    INFO(plan_test::label<S>(), " step ", step, ": loss ", got, " reference ", want);
    CHECK(got == want); // to the last bit
  }
  CHECK(piped.stale_inputs() == 0);
  double const diff = mlp::max_relative_difference(piped, reference, 0, c.layers);
  INFO(plan_test::label<S>(), ": largest relative weight difference ", diff);
  CHECK(diff == 0.0); // to the last bit
}

template <int P, int M> void train_all(int layers) {
  plan_test::for_each_type(plan_test::training_schedules<P, M>{}, [&]<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) { train_and_compare<S>(layers); }
  });
}

} // namespace

TEST_CASE("host.mlp.p1.m3.l8") { train_all<1, 3>(8); }
TEST_CASE("host.mlp.p2.m5.l12") { train_all<2, 5>(12); }
TEST_CASE("host.mlp.p4.m8.l12") { train_all<4, 8>(12); }
TEST_CASE("host.mlp.p8.m12.l16") { train_all<8, 12>(16); }

TEST_CASE("mlp.split_backward_equals_fused") {
  // I then W computes bit for bit what the fused B computes.
  mlp::config c;
  c.layers = 12;
  c.stages = 4;
  mlp::model fused(c), split(c);
  for (int step = 0; step < steps; ++step) {
    double const a = fused.reference_step(false), b = split.reference_step(true);
    CHECK(a == b);
  }
  CHECK(mlp::max_relative_difference(fused, split, 0, c.layers) == 0.0);
}

TEST_CASE("mlp.loss_decreases") {
  mlp::config c;
  mlp::model net(c);
  double const first = net.reference_step(false);
  double last = first;
  for (int step = 0; step < 20; ++step) last = net.reference_step(false);
  CHECK(last < first);
}
