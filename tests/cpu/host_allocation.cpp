// The buffer plan is static: an executor allocates every boundary buffer when it is built,
// and an iteration allocates nothing — counted by replacing the global operator new.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "pipesched/host/executor.hpp"
#include "plan_mlp.hpp"
#include "plan_support.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
} // namespace

void* operator new(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc{};
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  std::size_t const al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc{};
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
// GCC pairs these replacements with malloc-family calls it cannot see through.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace pipesched;

namespace {

template <class S> void no_allocation_in_iterations() {
  mlp::config c;
  c.microbatches = S::microbatches;
  c.stages = S::lowered.stages;
  mlp::model net(c);
  host::options o;
  o.slot_bytes = net.boundary_bytes();
  o.timeout = std::chrono::seconds(30);
  host::executor<S> ex(o);
  std::vector<mlp::stage_functor> fs(static_cast<std::size_t>(S::ranks), mlp::stage_functor{&net});
  ex.run(fs); // the first iteration may touch lazily initialised runtime state
  net.apply_all();
  allocations = 0;
  counting = true;
  for (int step = 0; step < 3; ++step) ex.run(fs);
  counting = false;
  CHECK(allocations.load() == 0);
  for (int r = 0; r < S::ranks; ++r) CHECK(ex.buffers(r).slots() == buffer_plan<S>::slots(r));
}

} // namespace

TEST_CASE("host.allocation.p4.m8") {
  plan_test::for_each_type(plan_test::training_schedules<4, 8>{}, []<class S>(S*) {
    SUBCASE(plan_test::label<S>().c_str()) { no_allocation_in_iterations<S>(); }
  });
}

TEST_CASE("host.allocation.counter_works") {
  allocations = 0;
  counting = true;
  auto* v = new std::vector<int>(100);
  counting = false;
  delete v;
  CHECK(allocations.load() >= 2);
}
