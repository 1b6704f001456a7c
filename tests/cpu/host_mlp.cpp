// An MLP (12 or 16 layers, softmax cross-entropy head, float64) trained a few steps with
// every schedule on the host backend: per-step losses and final weights equal the plain
// sequential reference to the last bit (compared with ==), and every saved input read at B, I or W is the
// one seen at F.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "pipesched/host/executor.hpp"
#include "pipesched/schedules/dualpipe.hpp"
#include "pipesched/schedules/dualpipe_v.hpp"
#include "plan_mlp.hpp"
#include "plan_support.hpp"

using namespace pipesched;

namespace {

constexpr int steps = 3;

/// The MLP of `layers` layers split over S's stages.
template <class S> mlp::config config_of(int layers) {
  mlp::config c;
  c.layers = layers;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  return c;
}

/// Host executor options for a model: its boundary sizes, a 30 s backstop.
host::options options_for(mlp::model const& net) {
  host::options o;
  o.slot_bytes = net.boundary_bytes();
  o.timeout = std::chrono::seconds(30);
  return o;
}

template <class S> void train_and_compare(int layers) {
  mlp::config const c = config_of<S>(layers);
  mlp::model reference(c), piped(c);
  host::options const o = options_for(piped);
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

namespace {

using pair_functor = mlp::pair_functor<int>;
static_assert(has_forward_backward<pair_functor, runtime_step, runtime_step>);
static_assert(!has_forward_backward<mlp::stage_functor, runtime_step, runtime_step>);

static_assert(has_forward_backward<mlp::copies_of_model_stages<pair_functor>, runtime_step, runtime_step>);
static_assert(!has_forward_backward<mlp::copies_of_model_stages<mlp::stage_functor>, runtime_step, runtime_step>);

/// Trains with schedule S (a compile-time plan) and with the same table run at run time
/// (runtime_executor), once with the plain functor (pairs run as forward then backward) and
/// once with forward_backward; every run bit-exact to the reference. The model has
/// `model_stages` stages (0: S's table stages); with fewer, table stage s runs model stage
/// s mod model_stages (DualPipe).
template <class S, class Plain, class Fused> int train_pairs_with(int layers, int model_stages) {
  int const want_pairs = plan_test::overlapped_pairs(S::lowered);
  for (int variant = 0; variant < 4; ++variant) {
    bool const fused = variant % 2 == 1, at_run_time = variant >= 2;
    INFO(plan_test::label<S>(), fused ? " with forward_backward" : " forward then backward",
         at_run_time ? " (run time)" : " (plan)");
    mlp::config c = config_of<S>(layers);
    c.stages = model_stages;
    mlp::model reference(c), piped(c);
    host::options const o = options_for(piped);
    std::vector<int> pairs(static_cast<std::size_t>(S::ranks), 0);
    std::vector<Plain> plain(static_cast<std::size_t>(S::ranks));
    std::vector<Fused> with(static_cast<std::size_t>(S::ranks));
    for (std::size_t r = 0; r < with.size(); ++r) {
      plain[r].net = with[r].net = &piped;
      with[r].pairs = &pairs[r];
      if constexpr (requires { plain[r].model_stages; }) plain[r].model_stages = with[r].model_stages = model_stages;
    }
    host::executor<S> ex(o);
    host::runtime_executor rex(runtime_schedule(thaw(S::lowered)), o);
    for (int step = 0; step < steps; ++step) {
      double const want = reference.reference_step(S::lowered.split_backward);
      if (at_run_time) {
        if (fused) rex.run(with);
        else rex.run(plain);
      } else {
        if (fused) ex.run(with);
        else ex.run(plain);
      }
      double const got = piped.apply_all();
      CHECK(got == want); // to the last bit
    }
    CHECK(piped.stale_inputs() == 0);
    CHECK(mlp::max_relative_difference(piped, reference, 0, c.layers) == 0.0);
    int total = 0;
    for (int n : pairs) total += n;
    CHECK(total == (fused ? steps * want_pairs : 0));
  }
  return want_pairs;
}

/// S's table stages are the model's stages.
template <class S> int train_pairs(int layers) {
  return train_pairs_with<S, mlp::stage_functor, pair_functor>(layers, S::lowered.stages);
}

/// S's table stages are two copies of a model of half as many stages (DualPipe).
template <class S> int train_pairs_mirrored(int layers) {
  return train_pairs_with<S, mlp::copies_of_model_stages<mlp::stage_functor>,
                          mlp::copies_of_model_stages<pair_functor>>(layers, S::lowered.stages / 2);
}

} // namespace

TEST_CASE("host.mlp.dualpipe_v.pairs") {
  using namespace pipesched;
  // m >= 2p: phases 4 and 5 hold pairs
  SUBCASE("p2.m4") { CHECK(train_pairs<dualpipe_v<stages<2>, microbatches<4>>>(12) > 0); }
  SUBCASE("p4.m8") { CHECK(train_pairs<dualpipe_v<stages<4>, microbatches<8>>>(12) > 0); }
  SUBCASE("p4.m11") { CHECK(train_pairs<dualpipe_v<stages<4>, microbatches<11>>>(16) > 0); }
  SUBCASE("p3.m2") { train_pairs<dualpipe_v<stages<3>, microbatches<2>>>(12); }
}

TEST_CASE("host.mlp.dualpipe.pairs") {
  using namespace pipesched;
  // the model's p stages run twice, direction A on ranks 0..p-1 and B on p-1..0, sharing
  // weights; both directions' micro-batches train the same model as the sequential reference
  SUBCASE("p2.m2") { train_pairs_mirrored<dualpipe<stages<2>, microbatches<2>>>(12); }
  SUBCASE("p2.m6") { CHECK(train_pairs_mirrored<dualpipe<stages<2>, microbatches<6>>>(12) > 0); }
  SUBCASE("p4.m8") { CHECK(train_pairs_mirrored<dualpipe<stages<4>, microbatches<8>>>(12) > 0); }
  SUBCASE("p4.m14") { CHECK(train_pairs_mirrored<dualpipe<stages<4>, microbatches<14>>>(16) > 0); }
  SUBCASE("p6.m12") { CHECK(train_pairs_mirrored<dualpipe<stages<6>, microbatches<12>>>(12) > 0); }
}

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
