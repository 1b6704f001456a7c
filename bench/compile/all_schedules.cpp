// One translation unit that makes the compiler generate, lower and verify every schedule
// at p = PIPESCHED_P, m = PIPESCHED_M (default 8 and 32): measured by
// bench/schedules_compile_cost.sh.
#include <pipesched/schedules/forward_only.hpp>
#include <pipesched/schedules/gpipe.hpp>
#include <pipesched/schedules/interleaved.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>
#include <pipesched/schedules/v_shape.hpp>
#include <pipesched/schedules/zb_v.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

#ifndef PIPESCHED_P
#define PIPESCHED_P 8
#endif
#ifndef PIPESCHED_M
#define PIPESCHED_M 32
#endif

namespace ps = pipesched;
using p = ps::ranks<PIPESCHED_P>;
using m = ps::microbatches<PIPESCHED_M>;

static_assert(ps::gpipe<p, m>::valid);
static_assert(ps::one_f_one_b<p, m>::valid);
static_assert(ps::interleaved_1f1b<p, m, ps::chunks<2>>::valid);
static_assert(ps::zb_h1<p, m>::valid);
static_assert(ps::zb_h2<p, m>::valid);
static_assert(ps::zb_v<p, m>::valid);
static_assert(ps::v_half<p, m>::valid);
static_assert(ps::v_min<p, m>::valid);
static_assert(ps::forward_only<p, m>::valid);

int main() { return ps::one_f_one_b<p, m>::lowered.size(0) > 0 ? 0 : 1; }
