// bench/compare: the pipesched side of the PyTorch comparison (see README.md).
//
// Every stage is one linear layer y = x W^T + b (64 -> 64, like nn.Linear(64, 64)) on a
// micro-batch of 8 rows, in plain C++ loops on float; the last stage computes an MSE loss
// (mean over the micro-batch, like F.mse_loss) and scales its gradient by 1/m (like
// PyTorch's scale_grads=True). Each step is forward + backward of all m micro-batches;
// weight and bias gradients accumulate into one buffer per stage, as .grad does in PyTorch.
//
// Built twice by run.sh:
//   (no macro)    host::executor, one thread per rank, one process   ./bench_threads
//                 ./bench_threads --micro: the F+B time of one stage pass alone
//   -DBENCH_MPI   mpi::executor, one process per rank              mpirun -np 4 ./bench_mpi
//
// Prints one line per schedule and m:
//   RESULT {"runtime": ..., "schedule": ..., "m": ..., "actions": ..., "step_ms": ..., "check": "OK"}
// where step_ms is the median over timed iterations (after warm-up) of the wall time of one
// step (the slowest rank's, for MPI), and check compares the weight and bias gradients of one
// step with a sequential computation of the same model.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <pipesched/pipesched.hpp>
#ifdef BENCH_MPI
#include <pipesched/host/mpi.hpp>
#endif

namespace {

constexpr int P = 4;      // ranks
constexpr int width = 64; // features in and out of every stage
constexpr int rows = 8;   // rows per micro-batch
constexpr int n = rows * width;
constexpr std::size_t boundary_bytes = n * sizeof(float);

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// ---- the math: one 64x64 linear layer (weights [out][in], as nn.Linear stores them) -------

[[gnu::noinline]] void linear_forward(float const* __restrict x, float const* __restrict w, float const* __restrict b,
                                      float* __restrict y) {
  for (int s = 0; s < rows; ++s)
    for (int o = 0; o < width; ++o) {
      float z = b[o];
      for (int i = 0; i < width; ++i) z += w[o * width + i] * x[s * width + i];
      y[s * width + o] = z;
    }
}

// dx = dy W (skipped when dx is null: the first stage has no input gradient, as in PyTorch),
// gw += dy^T x, gb += column sums of dy.
[[gnu::noinline]] void linear_backward(float const* __restrict x, float const* __restrict dy, float const* __restrict w,
                                       float* __restrict dx, float* __restrict gw, float* __restrict gb) {
  if (dx)
    for (int s = 0; s < rows; ++s) {
      float* d = dx + s * width;
      std::fill(d, d + width, 0.0f);
      for (int o = 0; o < width; ++o) {
        float const g = dy[s * width + o];
        float const* wo = w + o * width;
        for (int i = 0; i < width; ++i) d[i] += g * wo[i];
      }
    }
  for (int s = 0; s < rows; ++s)
    for (int o = 0; o < width; ++o) {
      float const g = dy[s * width + o];
      gb[o] += g;
      float* go = gw + o * width;
      float const* xs = x + s * width;
      for (int i = 0; i < width; ++i) go[i] += g * xs[i];
    }
}

// MSE (mean over the micro-batch) and its gradient, scaled by 1/m.
[[gnu::noinline]] float mse_loss(float const* y, float const* t, float* dy, int m) {
  float loss = 0;
  float const scale = 2.0f / (n * m);
  for (int k = 0; k < n; ++k) {
    float const d = y[k] - t[k];
    loss += d * d;
    dy[k] = scale * d;
  }
  return loss / n;
}

// ---- the model: S stages of one layer each, the batch and per-micro-batch state ------------

struct model {
  int stages, m;
  std::vector<float> w, b, gw, gb; // [stage][out][in], [stage][out]
  std::vector<float> x, t;         // [mb][rows][width]: input batch and target
  std::vector<float> dlast;        // [mb][rows][width]: the loss gradient of the last stage
  std::vector<float> loss;         // [mb]

  model(int S, int M)
      : stages(S), m(M), w(S * width * width), b(S * width), gw(w.size()), gb(b.size()), x(M * n), t(M * n),
        dlast(M * n), loss(M) {
    unsigned s = 12345;
    auto rnd = [&] { return (s = s * 1664525u + 1013904223u) / 4294967296.0f * 2 - 1; };
    float const bound = 1.0f / std::sqrt(float(width)); // nn.Linear's init range
    for (auto& v : w) v = rnd() * bound;
    for (auto& v : b) v = rnd() * bound;
    for (auto& v : x) v = rnd();
    for (auto& v : t) v = rnd();
  }
  float* W(int s) { return &w[s * width * width]; }
  float* B(int s) { return &b[s * width]; }
  float* GW(int s) { return &gw[s * width * width]; }
  float* GB(int s) { return &gb[s * width]; }
  void zero_grad(int first, int step) { // stages first, first+step, ...
    for (int s = first; s < stages; s += step) {
      std::fill_n(GW(s), width * width, 0.0f);
      std::fill_n(GB(s), width, 0.0f);
    }
  }
};

// Run-time bodies of the passes (the functor forwards its constants here).
void forward_pass(model& md, int stage, int mb, float const* in, float* out) {
  if (!in) in = &md.x[mb * n]; // the first stage reads the batch
  if (out) {
    linear_forward(in, md.W(stage), md.B(stage), out);
  } else { // the last stage: the loss
    float y[n];
    linear_forward(in, md.W(stage), md.B(stage), y);
    md.loss[mb] = mse_loss(y, &md.t[mb * n], &md.dlast[mb * n], md.m);
  }
}
void backward_pass(model& md, int stage, int mb, float const* grad, float const* saved_in, float* dx) {
  if (!grad) grad = &md.dlast[mb * n];
  if (!saved_in) saved_in = &md.x[mb * n];
  linear_backward(saved_in, grad, md.W(stage), dx, md.GW(stage), md.GB(stage));
}

/// The stage functor: one per rank; the rank's stages are picked by Step::stage.
struct linear_stage {
  model* md;
  template <class Step> void forward(Step, pipesched::io const& x) {
    float const* in = nullptr;
    float* out = nullptr;
    if constexpr (Step::has_in) in = x.in.template as<float>();
    if constexpr (Step::has_out) out = x.out.template as<float>();
    forward_pass(*md, Step::stage, Step::mb, in, out);
  }
  template <class Step> void backward(Step, pipesched::io const& x) {
    float const* grad = nullptr;
    float const* saved = nullptr;
    float* dx = nullptr;
    if constexpr (Step::has_in) grad = x.in.template as<float>();
    if constexpr (Step::has_aux) saved = x.aux.template as<float>();
    if constexpr (Step::has_out) dx = x.out.template as<float>();
    backward_pass(*md, Step::stage, Step::mb, grad, saved, dx);
  }
};

// ---- the check: the same step, sequentially ------------------------------------------------

struct reference {
  std::vector<float> gw, gb;
  double loss = 0;
};

reference sequential(model const& md0) {
  model md = md0;
  md.zero_grad(0, 1);
  int const S = md.stages;
  std::vector<float> act((S + 1) * n), g(n), dx(n);
  double loss = 0;
  for (int mb = 0; mb < md.m; ++mb) {
    std::copy_n(&md.x[mb * n], n, act.data());
    for (int s = 0; s < S; ++s) linear_forward(&act[s * n], md.W(s), md.B(s), &act[(s + 1) * n]);
    loss += mse_loss(&act[S * n], &md.t[mb * n], g.data(), md.m) / md.m;
    for (int s = S - 1; s >= 0; --s) {
      linear_backward(&act[s * n], g.data(), md.W(s), s > 0 ? dx.data() : nullptr, md.GW(s), md.GB(s));
      std::swap(g, dx);
    }
  }
  return {md.gw, md.gb, loss};
}

// Largest |a - b| over stages first, first+step, ..., relative to the largest |b|.
double rel_diff(model const& md, reference const& ref, int first, int step) {
  double diff = 0, scale = 1e-30;
  auto cmp = [&](std::vector<float> const& a, std::vector<float> const& b, int per) {
    for (int s = first; s < md.stages; s += step)
      for (int k = s * per; k < (s + 1) * per; ++k) {
        diff = std::max(diff, std::fabs(double(a[k]) - double(b[k])));
        scale = std::max(scale, std::fabs(double(b[k])));
      }
  };
  cmp(md.gw, ref.gw, width * width);
  cmp(md.gb, ref.gb, width);
  return diff / scale;
}

std::size_t count_actions(pipesched::table const& t) {
  std::size_t k = 0;
  for (int r = 0; r < t.ranks; ++r) k += t.lists[r].size();
  return k;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t const h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class S> void bench(const char* label, int warmup, int iters) {
  using clock_ms = double;
  pipesched::table const t = S::make();
  int const stages = t.stages, m = t.microbatches;
  model md(stages, m);
  reference const ref = sequential(md);
  std::vector<double> times;
  times.reserve(iters);
  double diff = 0;
#ifdef BENCH_MPI
  pipesched::mpi::executor<S> ex(MPI_COMM_WORLD, {.slot_bytes = boundary_bytes});
  int const rank = ex.rank();
  linear_stage f{&md};
  for (int it = -1; it < warmup + iters; ++it) {
    MPI_Barrier(MPI_COMM_WORLD);
    clock_ms const t0 = now_ms();
    md.zero_grad(rank, P);
    ex.run(f);
    double dt = now_ms() - t0, slowest = 0;
    MPI_Reduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (it == -1) { // the first step is the correctness check
      double const mine = rel_diff(md, ref, rank, P);
      MPI_Reduce(&mine, &diff, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    } else if (it >= warmup) {
      times.push_back(slowest);
    }
  }
  if (rank != 0) return;
  const char* runtime = "pipesched-mpi";
#else
  pipesched::host::executor<S> ex({.slot_bytes = boundary_bytes});
  std::vector<linear_stage> fs(S::ranks, linear_stage{&md});
  for (int it = -1; it < warmup + iters; ++it) {
    clock_ms const t0 = now_ms();
    md.zero_grad(0, 1);
    ex.run(fs);
    double const dt = now_ms() - t0;
    if (it == -1) diff = rel_diff(md, ref, 0, 1);
    else if (it >= warmup) times.push_back(dt);
  }
  const char* runtime = "pipesched-threads";
#endif
  bool const ok = diff <= 1e-5;
  std::printf("RESULT {\"runtime\": \"%s\", \"schedule\": \"%s\", \"m\": %d, \"stages\": %d, \"actions\": %zu, "
              "\"step_ms\": %.6f, \"min_ms\": %.6f, \"iters\": %d, \"check\": \"%s\", \"grad_rel_diff\": %.3g}\n",
              runtime, label, m, stages, count_actions(t), median(times), *std::min_element(times.begin(), times.end()),
              iters, ok ? "OK" : "FAILED", diff);
  std::fflush(stdout);
}

// F+B of one stage pass alone (the 64x64 layer on 8 rows, with the input gradient).
void micro(int reps) {
  model md(1, 1);
  std::vector<float> y(n), dx(n), dy(md.x.begin(), md.x.end());
  std::vector<double> per_pass;
  for (int block = 0; block < 25; ++block) {
    double const t0 = now_ms();
    for (int k = 0; k < reps; ++k) {
      linear_forward(md.x.data(), md.W(0), md.B(0), y.data());
      linear_backward(md.x.data(), dy.data(), md.W(0), dx.data(), md.GW(0), md.GB(0));
    }
    double const dt = now_ms() - t0;
    if (block >= 5) per_pass.push_back(dt * 1000.0 / reps); // µs
  }
  volatile float sink = md.gw[7] + y[3] + dx[5];
  (void)sink;
  std::printf("MICRO {\"runtime\": \"c++ loops (-O2)\", \"fb_us\": %.4f}\n", median(per_pass));
}

} // namespace

int main(int argc, char** argv) {
#ifdef BENCH_MPI
  MPI_Init(&argc, &argv);
#endif
  int const warmup = env_int("WARMUP", 20), iters = env_int("ITERS", 100);
  if (argc > 1 && std::string(argv[1]) == "--micro") {
    micro(2000);
    return 0;
  }
  using namespace pipesched;
  try {
    bench<one_f_one_b<ranks<P>, microbatches<8>>>("1F1B", warmup, iters);
    bench<one_f_one_b<ranks<P>, microbatches<32>>>("1F1B", warmup, iters);
    bench<gpipe<ranks<P>, microbatches<8>>>("GPipe", warmup, iters);
    bench<gpipe<ranks<P>, microbatches<32>>>("GPipe", warmup, iters);
    bench<interleaved_1f1b<ranks<P>, microbatches<8>, chunks<2>>>("Interleaved1F1B", warmup, iters);
    bench<interleaved_1f1b<ranks<P>, microbatches<32>, chunks<2>>>("Interleaved1F1B", warmup, iters);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
#ifdef BENCH_MPI
    MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    return 1;
  }
#ifdef BENCH_MPI
  MPI_Finalize();
#endif
  return 0;
}
