// 01: train a small MLP with a pipeline schedule on host threads.
//
// The schedule is one `using` line: change it to any other (gpipe, one_f_one_b,
// interleaved_1f1b<..., chunks<2>>, zb_h1, zb_h2, zb_v, v_half, v_min) and the same stage
// functor trains the same model. The library runs each rank's plan on its own thread,
// moves boundaries between ranks and owns their buffers; the functor owns the math.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <vector>

#include <pipesched/host/executor.hpp>
#include <pipesched/schedules/gpipe.hpp>
#include <pipesched/schedules/interleaved.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>
#include <pipesched/schedules/v_shape.hpp>
#include <pipesched/schedules/zb_v.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

using namespace pipesched;

using schedule_t = zb_h1<ranks<4>, microbatches<8>>; // <- pick the schedule here

constexpr int layers = 8, width = 8, classes = 4, samples = 16; // samples per micro-batch
constexpr int stages_n = schedule_t::lowered.stages, mbs = schedule_t::microbatches;

/// The model: `layers` tanh layers of width x width (the last one linear, its first
/// `classes` outputs are the logits), plus what each micro-batch keeps between passes.
struct model {
  std::vector<double> w, b;            // [layer][out][in], [layer][out]
  std::vector<double> x;               // [mb][sample][width] inputs
  std::vector<int> y;                  // [mb][sample] labels
  std::vector<double> act, dz, gw, gb; // [mb][layer][...] activations, deltas, gradients
  std::vector<double> loss, dlogits;   // [mb], [mb][sample][width]

  model()
      : w(layers * width * width), b(layers * width), x(mbs * samples * width), y(mbs * samples),
        act(mbs * (layers + 1) * samples * width), dz(mbs * layers * samples * width), gw(mbs * layers * width * width),
        gb(mbs * layers * width), loss(mbs), dlogits(mbs * samples * width) {
    unsigned s = 7;
    auto rnd = [&] { return (s = s * 1664525u + 1013904223u) / 4294967296.0 * 2 - 1; };
    for (auto& v : w) v = rnd() * 0.6;
    for (auto& v : b) v = rnd() * 0.1;
    for (auto& v : x) v = rnd();
    for (int i = 0; i < mbs * samples; ++i) { // the label: which quarter the first two inputs fall in
      double const* xi = &x[i * width];
      y[i] = (xi[0] > 0 ? 1 : 0) + (xi[1] > 0 ? 2 : 0);
    }
  }
  double* a(int mb, int l) { return &act[(mb * (layers + 1) + l) * samples * width]; } // input of layer l
  double* d(int mb, int l) { return &dz[(mb * layers + l) * samples * width]; }
  int first(int stage) const { return stage * layers / stages_n; }
  int last(int stage) const { return (stage + 1) * layers / stages_n; }
};

/// The stage functor. Step carries the pass, stage, chunk and micro-batch as constants;
/// io carries views of the boundary buffers (in, out, aux) the pass reads and writes.
struct mlp_stage {
  model* m;

  template <class Step> void forward(Step, io const& x) {
    double* in = m->a(Step::mb, m->first(Step::stage));
    if constexpr (Step::has_in) std::copy_n(x.in.as<double>(), samples * width, in); // else: the batch
    else std::copy_n(&m->x[Step::mb * samples * width], samples * width, in);
    for (int l = m->first(Step::stage); l < m->last(Step::stage); ++l)
      for (int s = 0; s < samples; ++s)
        for (int o = 0; o < width; ++o) {
          double z = m->b[l * width + o];
          for (int i = 0; i < width; ++i) z += m->w[(l * width + o) * width + i] * m->a(Step::mb, l)[s * width + i];
          m->a(Step::mb, l + 1)[s * width + o] = l == layers - 1 ? z : std::tanh(z);
        }
    double const* out = m->a(Step::mb, m->last(Step::stage));
    if constexpr (Step::has_out) std::copy_n(out, samples * width, x.out.as<double>());
    if constexpr (Step::last_stage) { // softmax cross-entropy over the first `classes` outputs
      double total = 0;
      for (int s = 0; s < samples; ++s) {
        double const* z = out + s * width;
        double mx = z[0], sum = 0;
        for (int c = 1; c < classes; ++c) mx = std::max(mx, z[c]);
        for (int c = 0; c < classes; ++c) sum += std::exp(z[c] - mx);
        total += std::log(sum) + mx - z[m->y[Step::mb * samples + s]];
        for (int c = 0; c < width; ++c)
          m->dlogits[(Step::mb * samples + s) * width + c] =
              c < classes ? (std::exp(z[c] - mx) / sum - (c == m->y[Step::mb * samples + s])) / (samples * mbs) : 0;
      }
      m->loss[Step::mb] = total / samples;
    }
  }

  // I: the deltas of every layer of the stage and the input gradient.
  template <class Step> void backward_input(Step, io const& x) {
    double const* grad = Step::has_in ? x.in.as<double>() : &m->dlogits[Step::mb * samples * width];
    std::array<double, samples * width> next; // on the stack: nothing is allocated during an iteration
    for (int l = m->last(Step::stage) - 1; l >= m->first(Step::stage); --l) {
      double const* out = m->a(Step::mb, l + 1);
      for (int k = 0; k < samples * width; ++k)
        m->d(Step::mb, l)[k] = l == layers - 1 ? grad[k] : grad[k] * (1 - out[k] * out[k]);
      for (int s = 0; s < samples; ++s)
        for (int i = 0; i < width; ++i) {
          double g = 0;
          for (int o = 0; o < width; ++o) g += m->d(Step::mb, l)[s * width + o] * m->w[(l * width + o) * width + i];
          next[s * width + i] = g;
        }
      grad = next.data();
      if (l == m->first(Step::stage) && Step::has_out) std::copy_n(next.data(), samples * width, x.out.as<double>());
    }
  }
  // W: the weight gradients of this micro-batch, from the deltas and the saved inputs.
  template <class Step> void backward_weight(Step, io const&) {
    for (int l = m->first(Step::stage); l < m->last(Step::stage); ++l)
      for (int o = 0; o < width; ++o) {
        double gbias = 0;
        for (int i = 0; i < width; ++i) {
          double g = 0;
          for (int s = 0; s < samples; ++s) g += m->d(Step::mb, l)[s * width + o] * m->a(Step::mb, l)[s * width + i];
          m->gw[((Step::mb * layers + l) * width + o) * width + i] = g;
        }
        for (int s = 0; s < samples; ++s) gbias += m->d(Step::mb, l)[s * width + o];
        m->gb[(Step::mb * layers + l) * width + o] = gbias;
      }
  }
  // B: the fused backward of schedules that do not split it.
  template <class Step> void backward(Step s, io const& x) {
    backward_input(s, x);
    backward_weight(s, x);
  }
};

int main() {
  model net;
  std::vector<mlp_stage> functors(schedule_t::ranks, mlp_stage{&net}); // functors[r] runs on rank r
  host::executor<schedule_t> pipeline({.slot_bytes = samples * width * sizeof(double)});
  std::printf("%s, p = %d, m = %d: %d boundary slots in all\n", schedule_t::name, schedule_t::ranks, mbs,
              buffer_plan<schedule_t>::total_slots);
  double first_loss = 0, loss = 0;
  for (int step = 0; step < 30; ++step) {
    pipeline.run(functors); // one iteration: every rank's plan on its own thread
    loss = 0;
    for (int j = 0; j < mbs; ++j) loss += net.loss[j] / mbs;
    for (std::size_t k = 0; k < net.w.size(); ++k) { // SGD on gradients summed in micro-batch order
      double g = 0;
      for (int j = 0; j < mbs; ++j) g += net.gw[j * net.w.size() + k];
      net.w[k] -= 0.5 * g;
    }
    for (std::size_t k = 0; k < net.b.size(); ++k) {
      double g = 0;
      for (int j = 0; j < mbs; ++j) g += net.gb[j * net.b.size() + k];
      net.b[k] -= 0.5 * g;
    }
    if (step == 0) first_loss = loss;
    if (step % 5 == 0 || step == 29) std::printf("step %2d  loss %.6f\n", step, loss);
  }
  bool const learned = loss < first_loss;
  std::printf("%s\n", learned ? "the loss went down" : "the loss did not go down");
  return learned ? 0 : 1;
}
