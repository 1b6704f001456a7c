// The C++ blocks of README.md and the CPU docs (00 to 03, 05, 06; docs/04 and docs/06's CUDA
// block are in tests/cuda_compile/docs_04_cuda.cu), compiled by g++ as a reader would paste
// them (ctest compile.docs_snippets builds this object; nothing runs). Each block sits
// between "// snippet <doc>" and "// end snippet"; the lines ending in "// (test)" are this
// file's scaffolding (a namespace per block, a function around its statements, the names it
// takes from an earlier block), and the others are the block's text, which
// scripts/check-snippets (ctest docs.snippets) compares with the doc line for line. Above the
// blocks: stand-ins for the reader's own code. The MPI block compiles when MPI is enabled.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <pipesched/analysis/render.hpp>
#include <pipesched/host/executor.hpp>
#include <pipesched/host/stream.hpp>
#include <pipesched/pipeline/simulate.hpp>
#include <pipesched/pipesched.hpp>
#include <pipesched/schedules/registry.hpp>
#include <pipesched/schedules/select.hpp>
#include <pipesched/schedules/zero_bubble.hpp>
#if PIPESCHED_DOCS_MPI
#include <pipesched/host/mpi.hpp>
#endif

// ---- the reader's own code, as the blocks use it ----
inline std::size_t bytes_per_boundary = 4096, boundary_bytes = 4096, bytes = 4096, frame_bytes = 1 << 16;
inline int steps = 3;
void optimizer_step();
inline std::size_t a0 = 1, a1 = 2, a2 = 3, a3 = 4, g0 = 1, g1 = 2, g2 = 3, g3 = 4;
inline pipesched::vec<double> link_latency;
float const* batch(int mb);
void run_layers(int stage, int mb, float const* in, float* out, pipesched::stream_handle stream);
unsigned char const* next_frame();
inline bool live = true;
void show(std::uint64_t id, std::vector<unsigned char> const& bytes);

// ---- the blocks, in the docs' order ----

// snippet README.md
namespace readme_1 { // (test)
#include <cstdio>
#include <pipesched/pipesched.hpp>

// 1F1B on 4 ranks with 8 micro-batches; every pass costs 1 unless costs<F, B, W, C> says otherwise.
using S = pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<8>>;
static_assert(S::valid); // generated, lowered and verified by the compiler

int main() {
  pipesched::table const t = S::make(); // the same table, at run time
  for (int r = 0; r < t.ranks; ++r) {
    std::printf("rank %d:", r);
    for (pipesched::action const& a : t.lists[r])
      if (pipesched::is_compute(a.kind)) std::printf(" %s%d", pipesched::op_name(a.kind), int(a.mb));
    std::printf("\n");
  }
  pipesched::simulation const sim = pipesched::simulate(t);
  std::printf("makespan %g, bubble %.1f%%\n", sim.makespan, 100 * sim.bubble_ratio); // 33, 27.3%
  return 0; // (test)
}
} // (test)
// end snippet

// snippet README.md
namespace readme_2 { // (test)
using readme_1::S;   // (test)
struct my_stage {
  template <class Step> void forward(Step, pipesched::io const& x);   // Step::stage, ::mb, ... are constants
  template <class Step> void backward(Step, pipesched::io const& x);  // x.in, x.out, x.aux: boundary views
};
void body(std::vector<my_stage>& functors) { // (test)
pipesched::host::executor<S> ex({.slot_bytes = bytes_per_boundary});
ex.run(functors);   // one my_stage per rank; an exception on any rank stops all and is rethrown
} // (test)
} // (test)
// end snippet

// snippet docs/00_quickstart.md
namespace quickstart_1 { // (test)
#include <cstdio>
#include <pipesched/pipesched.hpp>

using S = pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<8>>;

int main() {
  pipesched::simulation const sim = pipesched::simulate(S::make());
  std::printf("%s: makespan %g, bubble %.1f%%\n", S::name, sim.makespan, 100 * sim.bubble_ratio);
  return 0; // (test)
}
} // (test)
// end snippet

// snippet docs/01_schedules.md
namespace schedules_1 { // (test)
struct my_table {
  static constexpr std::string_view text = "0F0,0F1,0B0,0B1\n"   // rank 0
                                           "1F0,1B0,1F1,1B1";    // rank 1
};
using S = pipesched::custom<my_table>;   // parsed, lowered and verified by the compiler
static_assert(S::valid); // (test)
} // (test)
// end snippet

// snippet docs/02_analysis.md
namespace analysis_1 { // (test)
#include <pipesched/pipeline/simulate.hpp>

void body() { // (test)
pipesched::cost_model const costs{.f = 1, .b = 2, .w = 1, .c = 0.1}; // F, B (input grad), W, latency
pipesched::table t = pipesched::make_schedule("zb-v", pipesched::params{.p = 8, .m = 24, .cost = costs});
pipesched::simulation sim = pipesched::simulate(t, pipesched::sim_costs{costs});
// sim.makespan, sim.max_rank_span, sim.bubble_ratio, sim.busy[r], sim.idle[r],
// sim.peak_memory[r] (reference unit), sim.peak_bytes[r], sim.times[r][i] (start, end)
} // (test)
} // (test)
// end snippet

// snippet docs/02_analysis.md
namespace analysis_2 { // (test)
void body(pipesched::table const& t, pipesched::simulation const& sim) { // (test)
#include <pipesched/analysis/render.hpp>
std::string grid  = pipesched::render_text(t, sim, {.color = true, .width = 120});
std::string trace = pipesched::render_chrome_trace(t, sim);   // Perfetto / chrome://tracing
std::string svg   = pipesched::render_svg(t, sim, {.title = "zb-v, p = 8, m = 24"});
} // (test)
} // (test)
// end snippet

// snippet docs/02_analysis.md
namespace analysis_3 { // (test)
#include <pipesched/schedules/select.hpp>
using choice = pipesched::select_schedule<pipesched::ranks<8>, pipesched::microbatches<24>,
                                          pipesched::memory_budget<6.0>, pipesched::costs<1.0, 2.0, 1.0>>;
using S = choice::type;          // here: v_half<ranks<8>, microbatches<24>, costs<0.5, 1.0, 0.5>>
static_assert(choice::peak_memory <= 6.0);
// choice::name, choice::makespan, choice::chunks_per_rank
} // (test)
// end snippet

// snippet docs/03_plans.md
namespace plans_1 { // (test)
struct my_stage {
  template <class Step> void forward(Step, pipesched::io const&);         // every schedule
  template <class Step> void backward(Step, pipesched::io const&);        // fused B: gpipe, 1f1b, interleaved, looped-bfs
  template <class Step> void backward_input(Step, pipesched::io const&);  // I: zb-h1, zb-h2, zb-v, v-half, v-min, interleaved-zb
  template <class Step> void backward_weight(Step, pipesched::io const&); // W: the same
};
} // (test)
// end snippet

// snippet docs/03_plans.md
namespace plans_2 { // (test)
#include <pipesched/host/executor.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

using plans_1::my_stage; // (test)
using S = pipesched::zb_h1<pipesched::ranks<4>, pipesched::microbatches<8>>;

void body() { // (test)
std::vector<my_stage> functors(S::ranks, my_stage{/* your layers */});   // functors[r] runs rank r
pipesched::host::executor<S> pipeline({.slot_bytes = boundary_bytes, .timeout = std::chrono::seconds(60)});
for (int step = 0; step < steps; ++step) {
  pipeline.run(functors);   // one iteration: every rank's plan on its own thread
  optimizer_step();         // your code, between iterations
}
} // (test)
} // (test)
// end snippet

// snippet docs/03_plans.md
namespace plans_3 { // (test)
using plans_2::S;   // (test)
void body() {       // (test)
pipesched::host::options o;
o.boundaries.activation = {a0, a1, a2, a3};   // bytes of stage s's output activation (S entries)
o.boundaries.gradient   = {g0, g1, g2, g3};   // bytes of the gradient of that activation (or leave empty: same)
pipesched::host::executor<S> pipeline(o);
} // (test)
} // (test)
// end snippet

#if PIPESCHED_DOCS_MPI // (the MPI block)
// snippet docs/03_plans.md
namespace plans_4 {       // (test)
using plans_1::my_stage;  // (test)
using plans_2::S;         // (test)
void body() {             // (test)
pipesched::mpi::executor<S> ex(MPI_COMM_WORLD, {.slot_bytes = boundary_bytes});
my_stage f{/* your layers */};   // this process's rank: ex.rank()
ex.run(f);
} // (test)
} // (test)
// end snippet
#endif // (the MPI block)

// snippet docs/03_plans.md
namespace plans_5 {    // (test)
struct my_transport { // (test)
template <class Step> void send(Step, pipesched::io const&);  // send io.in to Step::peer
template <class Step> void recv(Step, pipesched::io const&);  // fill io.out from Step::peer
template <class Step> void on_action(Step);                   // optional: told of every action first
};                     // (test)
} // (test)
// end snippet

// snippet docs/05_skip_paths.md
namespace skip_1 {              // (test)
using namespace pipesched;      // (test)
static_assert(schedule<skip_paths_family<12>, stages<16>, microbatches<16>>::valid);
static_assert(schedule<skip_paths_family<12, 6>, stages<16>, microbatches<16>>::valid); // cap 6
static_assert(schedule<skip_paths_family<6>, stages<8>, microbatches<32>>::valid);
static_assert(schedule<skip_paths_family<6, 3>, stages<8>, microbatches<32>>::valid);   // cap 3
static_assert(schedule<skip_paths_family<12>, stages<16>, microbatches<32>>::valid);
static_assert(schedule<skip_paths_family<12, 6>, stages<16>, microbatches<32>>::valid); // cap 6
} // (test)
// end snippet

// snippet docs/05_skip_paths.md
namespace skip_2 { // (test)
void body() {      // (test)
pipesched::skip_config c{};
c.stages = 20; c.keep = 10; c.microbatches = 20; c.memory = 6;
c.costs = pipesched::sim_costs{pipesched::cost_model{0.1, 0.1, 0.05, 0}};
c.costs.latency = link_latency;  // S x S, row = sender (a pipesched::vec<double>)
pipesched::table t = pipesched::make_skip(c);           // compute table, t.paths filled
pipesched::table lw = pipesched::lower(t, pipesched::skip_sim_costs(c));
double full = pipesched::simulate(pipesched::make_skip(pipesched::full_pipeline(c)),
                                  pipesched::skip_sim_costs(c)).makespan;
(void)full; // (test)
} // (test)
} // (test)
// end snippet

// snippet docs/05_skip_paths.md
namespace skip_3 {         // (test)
using namespace pipesched; // (test)
using S1 = pipesched::skip_paths<4, ranks<6>, microbatches<8>>;   // K = 4, cost-aware
using S2 = pipesched::schedule<pipesched::skip_paths_family<3, /*memory*/ 2, path_layout::round_trip>,
                               ranks<5>, microbatches<6>>;
using set = pipesched::path_set<5, path<0, 2, 1, 4>, path<0, 3, 2, 4>, path<0, 1, 3, 4>>;
static_assert(pipesched::valid_paths<set>);                       // stops with the broken rule
using S3 = pipesched::skip_given<set, ranks<5>, microbatches<3>>;
static_assert(S1::valid && S2::valid && S3::valid); // (test)
} // (test)
// end snippet

// snippet docs/06_runtime_and_streaming.md
namespace runtime_1 { // (test)
#include <pipesched/host/executor.hpp>
#include <pipesched/schedules/registry.hpp>

using plans_1::my_stage;                                          // (test)
void body(std::string const& argv_schedule, int p, int m, int v) { // (test)
pipesched::table t = pipesched::make_schedule(argv_schedule, pipesched::params{p, m, v});
pipesched::runtime_schedule sched(t);     // lowers it if needed, verifies it: schedule_error otherwise
pipesched::host::runtime_executor ex(sched, {.slot_bytes = bytes});
std::vector<my_stage> stages(sched.ranks, my_stage{/* your layers */});
ex.run(stages);                           // one iteration, as host::executor<S>::run
} // (test)
} // (test)
// end snippet

// snippet docs/06_runtime_and_streaming.md
namespace runtime_2 { // (test)
struct my_stage {
  template <class Step> void forward(Step const& s, pipesched::io const& x) {
    float const* in = s.has_in ? x.in.as<float>() : batch(s.mb);   // works for both
    run_layers(s.stage, s.mb, in, x.out.as<float>(), x.stream);
  }
  // ...
};
} // (test)
// end snippet

// snippet docs/06_runtime_and_streaming.md
namespace runtime_4 { // (test)
#include <pipesched/host/stream.hpp>

struct my_step {                                                    // (test)
  template <class Step> void forward(Step const&, pipesched::io const&) {} // (test)
};                                                                  // (test)
void body(int S) {                                                  // (test)
std::vector<my_step> stages(S);                     // forward-only stage functors
pipesched::host::stream_options o;
o.input_bytes = frame_bytes;                        // what push() copies in
o.output_bytes.assign(S, frame_bytes);              // each stage's output (the last: what pop() returns)
o.window = 4;                                       // items in flight at most
o.when_full = pipesched::host::overflow::block;     // or ::reject: push returns false
pipesched::host::stream_executor<my_step> pipe(stages, o);

std::thread camera([&] { while (live) pipe.push(next_frame()); pipe.close(); });
while (auto item = pipe.pop()) show(item->id, item->bytes);   // in push order
pipe.finish();                                      // rethrows a stage's exception, if any
camera.join(); // (test)
} // (test)
} // (test)
// end snippet
