// docs/04_cuda.md's C++ blocks (and docs/06's CUDA one), compiled by nvcc as a reader would paste them (ctest
// cuda_compile.docs_04_cuda builds this object; nothing runs). Each block sits between
// "// snippet docs/04_cuda.md" and "// end snippet"; the lines ending in "// (test)" are
// this file's scaffolding (a namespace per block, a function around its statements, the
// names it takes from an earlier block), and the others are the block's text, which
// scripts/check-snippets (ctest docs.snippets) compares with the doc line for line. Above the
// blocks: stand-ins for the reader's own code (a model, kernels, sizes), declared the way the
// blocks use them. The MPI and NCCL blocks compile when both are enabled (CI has them).
#include <cublas_v2.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <pipesched/cuda/executor.cuh>
#include <pipesched/cuda/persistent.cuh>
#include <pipesched/pipesched.hpp>
#include <pipesched/schedules/registry.hpp>
#if PIPESCHED_DOCS_NCCL_MPI
#include <mpi.h>
#include <pipesched/cuda/nccl_mpi.cuh>
#endif

// ---- the reader's own code, as the blocks use it ----
struct my_model {
  float const* batch(int mb) const;
  void layers_forward(int stage, int mb, float const* x, float* y, cublasHandle_t blas, cudaStream_t stream);
};
inline my_model net;
inline std::size_t activation_bytes = std::size_t{1} << 20;
inline int steps = 3;
void optimizer_step();
void optimizer_step(int rank);
void copy_batch_into_fixed_buffers(int step);

__global__ void my_layer(float const* in, float* out, int stage) {
  if (threadIdx.x == 0 && in != nullptr) out[0] = in[0] + static_cast<float>(stage);
}
inline dim3 grid{1}, block{32};
inline std::size_t request_bytes = 4096, hidden_bytes = 8192, logits_bytes = 1024;

struct my_model_view { // device pointers, trivially copyable
  double const* inputs;
  int n;
  __device__ double const* batch(int mb) const { return inputs + static_cast<std::size_t>(mb) * n; }
};

// ---- the blocks, in the doc's order ----

// snippet docs/04_cuda.md
namespace doc_1 { // (test)
struct my_stage {
  my_model* net;                  // your parameters and per-micro-batch state
  cublasHandle_t blas = nullptr;  // one per rank (a handle is bound to one stream at a time)

  template <class Step> void forward(Step const& s, pipesched::io const& io) {
    cublasSetStream(blas, io.stream);
    float const* x = s.has_in ? io.in.as<float>() : net->batch(s.mb);
    net->layers_forward(s.stage, s.mb, x, io.out.as<float>(), blas, io.stream); // your code
  }
  template <class Step> void backward(Step const&, pipesched::io const&) { /* ... on io.stream */ }
  // zero-bubble schedules (ZB-H1 below) split the backward: input gradient, then weight gradient
  template <class Step> void backward_input(Step const&, pipesched::io const&) { /* ... */ }
  template <class Step> void backward_weight(Step const&, pipesched::io const&) { /* ... */ }
};

using S = pipesched::zb_h1<pipesched::ranks<4>, pipesched::microbatches<8>>;   // the one line to change
void body() { // (test)
pipesched::cuda::executor<S> pipeline({.slot_bytes = activation_bytes});
std::vector<my_stage> stages(S::ranks, my_stage{&net});
for (int step = 0; step < steps; ++step) {
  pipeline.run(stages);      // one iteration; returns when it is done (options::synchronize)
  optimizer_step();          // yours
}
} // (test)
} // (test)
// end snippet

// snippet docs/04_cuda.md
namespace doc_2 { // (test)
using doc_1::S;                      // (test)
inline std::size_t bytes = 1 << 20;  // (test)
void body() {                        // (test)
pipesched::cuda::options o;
o.slot_bytes = bytes;
o.sm_partitions = true;   // ranks on one device: disjoint, equal partitions
o.sm_per_stage = 32;      // SMs each; 0: the largest equal partitions that fit
pipesched::cuda::executor<S> ex(o);
} // (test)
} // (test)
// end snippet

// snippet docs/04_cuda.md
namespace doc_3 { // (test)
void body(pipesched::cuda::executor<doc_1::S>& pipeline, std::vector<doc_1::my_stage>& stages, // (test)
          cudaStream_t stream) {                                                             // (test)
pipeline.capture(stages);      // records one iteration (your kernels included) into a graph
for (int step = 0; step < steps; ++step) {
  pipeline.replay(stream);     // one cudaGraphLaunch per iteration
  optimizer_step();
}
} // (test)
} // (test)
// end snippet

// snippet docs/04_cuda.md
namespace doc_4 { // (test)
#include <pipesched/cuda/executor.cuh>
#include <pipesched/schedules/registry.hpp>

using doc_1::my_stage;                             // (test)
void body(std::string const& name, int p, int m) { // (test)
pipesched::runtime_schedule sched(pipesched::make_schedule(name, pipesched::params{p, m}));
pipesched::cuda::runtime_executor pipeline(sched, {.slot_bytes = activation_bytes});  // checks its stream program
std::vector<my_stage> stages(sched.ranks, my_stage{&net});
pipeline.run(stages);          // or capture(stages) once, then replay(stream)
} // (test)
} // (test)
// end snippet

// snippet docs/04_cuda.md
namespace doc_5 { // (test)
#include <pipesched/cuda/executor.cuh>

struct my_stage {                       // the stage functor of the host stream executor
  template <class Step> void forward(Step const& s, pipesched::io const& x) {
    my_layer<<<grid, block, 0, x.stream>>>(x.in.as<float>(), x.out.as<float>(), s.stage);
  }
};
void body() { // (test)
std::vector<my_stage> stages(4);
pipesched::cuda::stream_options o;
o.input_bytes = request_bytes;
o.output_bytes = {hidden_bytes, hidden_bytes, hidden_bytes, logits_bytes};
o.window = 8;                           // items in flight at most (rings of 8 slots)
pipesched::cuda::stream_executor<my_stage> pipeline(stages, o);
// producer thread:  pipeline.push(request);  ...  pipeline.close();
// consumer thread:  while (auto item = pipeline.pop()) use(item->id, item->bytes);
} // (test)
} // (test)
// end snippet

#if PIPESCHED_DOCS_NCCL_MPI // (the NCCL blocks)
// snippet docs/04_cuda.md
namespace doc_6 { // (test)
#include <pipesched/cuda/nccl_mpi.cuh>     // over MPI; without MPI: <pipesched/cuda/nccl.cuh>

using doc_1::my_stage;         // (test)
int body(int argc, char** argv) { // (test)
using S = pipesched::zb_h1<pipesched::ranks<8>, pipesched::microbatches<32>>;   // every process: the same S
MPI_Init(&argc, &argv);
pipesched::cuda::nccl_options o;
o.slot_bytes = activation_bytes;            // or o.boundaries (per stage), the same on every rank
o.deadline = std::chrono::seconds(60);      // per iteration: then this rank gives up (see below)
auto proc = pipesched::cuda::nccl_from_mpi<S>(o);    // id over MPI_Bcast, GPU = local rank
my_stage f{/* this rank's layers */};
for (int step = 0; step < steps; ++step) {
  proc.run(f);                              // this rank's part of one iteration; returns when done
  optimizer_step(proc.rank());
}
return 0; // (test)
} // (test)
} // (test)
// end snippet

// snippet docs/04_cuda.md
namespace doc_7 { // (test)
void body(std::string const& name, int p, int m, pipesched::cuda::nccl_options const& o, // (test)
          doc_1::my_stage& f) {                                                         // (test)
pipesched::runtime_schedule sched(pipesched::make_schedule(name, pipesched::params{p, m}));
auto proc = pipesched::cuda::nccl_from_mpi(sched, o);   // or nccl_from_file(path, sched, o), nccl_from_id(who, id, sched, o)
proc.run(f);                                           // f: called with runtime_steps
} // (test)
} // (test)
// end snippet

// snippet docs/04_cuda.md
namespace doc_8 { // (test)
using S = pipesched::zb_h1<pipesched::ranks<8>, pipesched::microbatches<32>>;   // (test)
void body(pipesched::cuda::nccl_options const& o, doc_1::my_stage& f) {        // (test)
auto proc = pipesched::cuda::nccl_from_mpi<S>(o);   // o.edge_communicators = true: split in here
proc.run(f);                 // eager warm-up iteration(s)
proc.capture(f);             // every rank: its whole iteration into one CUDA graph
for (int step = 0; step < steps; ++step) {
  copy_batch_into_fixed_buffers(step);
  proc.replay();             // one cudaGraphLaunch; returns when done, polling as run() does
  optimizer_step(proc.rank());
}
} // (test)
} // (test)
// end snippet
#endif // (the NCCL blocks)

// snippet docs/04_cuda.md
namespace doc_9 { // (test)
#include <pipesched/cuda/persistent.cuh>

struct my_stage {                 // trivially copyable: copied to device memory by run()
  my_model_view net;              // pointers to your device buffers
  template <class Step>
  __device__ void forward(Step, pipesched::io const& io, pipesched::cuda::device_group const& g) {
    double const* x = Step::has_in ? io.in.as<double>() : net.batch(Step::mb);
    for (int i = g.thread_rank(); i < net.n; i += g.num_threads()) { /* layer 1, your code */ }
    g.sync();                     // every block of the group: layer 1 done
    /* layer 2 ... */
  }
  template <class Step>
  __device__ void backward(Step, pipesched::io const&, pipesched::cuda::device_group const&) { /* ... */ }
};

using S = pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<8>>;
void body(my_model_view view, cudaStream_t stream) { // (test)
pipesched::cuda::persistent_executor<S, my_stage> pipeline({.slot_bytes = activation_bytes});
std::vector<my_stage> stages(S::ranks, my_stage{view});
pipeline.run(stages);             // one cooperative launch; throws persistent_error on a failure
pipeline.capture(stages);         // or: one graph, replayed (counters stay valid across replays)
pipeline.replay(stream);
} // (test)
} // (test)
// end snippet

// snippet docs/04_cuda.md
namespace doc_10 {                                             // (test)
using doc_9::my_stage;                                         // (test)
using doc_9::S;                                                // (test)
void body(std::vector<my_stage> const& stages) {               // (test)
pipesched::cuda::persistent_options o{.slot_bytes = activation_bytes};
o.devices = {0, 1, 2, 3};         // rank r on device r: one cooperative kernel per device
pipesched::cuda::persistent_executor<S, my_stage> pipeline(o);
pipeline.run(stages);             // launches every device's kernel, then waits for all
} // (test)
} // (test)
// end snippet

// snippet docs/04_cuda.md
namespace doc_11 { // (test)
struct my_runtime_stage {         // trivially copyable, as for persistent_executor
  my_model_view net;
  __device__ void forward(pipesched::runtime_step s, pipesched::io const& io, pipesched::cuda::device_group const& g) {
    double const* x = s.has_in ? io.in.as<double>() : net.batch(s.mb);
    for (int i = g.thread_rank(); i < net.n; i += g.num_threads()) { /* your code */ }
  }
  __device__ void backward(pipesched::runtime_step, pipesched::io const&, pipesched::cuda::device_group const&) {}
};

void body(char const* name, int p, int m, my_model_view view) { // (test)
pipesched::runtime_schedule sched(pipesched::make_schedule(name, pipesched::params{p, m}));
pipesched::cuda::persistent_runtime_executor<my_runtime_stage> pipeline(sched, {.slot_bytes = activation_bytes});
std::vector<my_runtime_stage> stages(sched.ranks, my_runtime_stage{view});
pipeline.run(stages);
} // (test)
} // (test)
// end snippet

// docs/06_runtime_and_streaming.md's CUDA block (its other blocks: tests/compile/docs_snippets.cpp)
// snippet docs/06_runtime_and_streaming.md
namespace doc06_3 {                                                                  // (test)
using doc_1::my_stage;                                                               // (test)
using doc_2::bytes;                                                                  // (test)
void body(std::string const& name, int p, int m, std::vector<my_stage>& stages) {    // (test)
pipesched::runtime_schedule sched(pipesched::make_schedule(name, pipesched::params{p, m}));
pipesched::cuda::runtime_executor ex(sched, {.slot_bytes = bytes});
ex.run(stages);                 // stages[r]: the same functor host::runtime_executor takes
} // (test)
} // (test)
// end snippet
