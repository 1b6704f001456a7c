// 04: a schedule chosen on the command line — no recompiling per setting.
//
//   example_04_runtime_schedule --schedule NAME --ranks P --microbatches M [--chunks V]
//                               [--keep K] [--steps N]
//
// NAME is any registered schedule (gpipe 1f1b interleaved zb-h1 zb-h2 zb-v v-half v-min) or
// `skip` (SkipPipe paths: each micro-batch visits K of the P stages, one rank per stage).
// The table is built at run time (make_schedule / make_skip), lowered and verified
// (pipesched::runtime_schedule: a table that fails is refused with the verification's
// sentence), and run on host threads by pipesched::host::runtime_executor with an ordinary
// stage functor — the same kind of functor a compiled plan calls, written against the step's
// fields through its argument (s.mb, s.stage, s.has_in), so it accepts a runtime_step too.
// An MLP trains a few steps; the program exits 1 unless its losses and weights equal a
// sequential run of the same model to the last bit, and 2 (with the reason) on bad input.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <pipesched/host/executor.hpp>
#include <pipesched/schedules/registry.hpp>
#include <pipesched/schedules/skip_paths.hpp>

using namespace pipesched;

namespace {

constexpr int width = 6, classes = 3, samples = 4, per_stage = 2; // tanh layers per stage

/// An MLP split into S stages of `per_stage` tanh layers; the last stage adds a linear layer
/// to the classes and a softmax cross-entropy loss. A micro-batch goes through the stages of
/// its route (every stage in order, or its skip path). Every per-(micro-batch, layer) value is
/// kept; gradients are summed over micro-batches in micro-batch order when applied, so the
/// result does not depend on the order of the passes.
struct model {
  int S, m, L;
  std::vector<std::vector<int>> routes; // per micro-batch: its stages in order
  std::vector<double> w, b, x, in, z, a, dz, gw, gb, loss, dlogits;
  std::vector<int> y;
  model(int stages, int mbs, std::vector<std::vector<int>> r)
      : S(stages), m(mbs), L(stages * per_stage + 1), routes(std::move(r)), w(L * width * width), b(L * width),
        x(m * samples * width), in(m * L * samples * width), z(m * L * samples * width), a(m * L * samples * width),
        dz(m * L * samples * width), gw(m * L * width * width), gb(m * L * width), loss(m),
        dlogits(m * samples * width), y(m * samples) {
    unsigned s = 11;
    auto rnd = [&] { return (s = s * 1664525u + 1013904223u) / 4294967296.0 * 2 - 1; };
    for (auto& v : w) v = rnd() * 0.7;
    for (auto& v : b) v = rnd() * 0.1;
    for (auto& v : x) v = rnd();
    for (auto& v : y) v = static_cast<int>((s = s * 1664525u + 1013904223u) >> 20) % classes;
  }
  std::size_t at(int j, int l) const { return static_cast<std::size_t>((j * L + l) * samples * width); }
  int first(int s) const { return s * per_stage; }
  int last(int s) const { return s == S - 1 ? L : (s + 1) * per_stage; } // the last stage has the head
  bool head(int l) const { return l == L - 1; }

  // forward of stage s for micro-batch j from x0 (samples x width); writes the output to y0
  // unless the stage is the last (its output is the loss)
  void forward(int s, int j, double const* x0, double* y0) {
    double const* xi = x0;
    for (int l = first(s); l < last(s); ++l) {
      std::memcpy(&in[at(j, l)], xi, sizeof(double) * samples * width);
      int const out = head(l) ? classes : width;
      for (int n = 0; n < samples; ++n)
        for (int o = 0; o < out; ++o) {
          double acc = b[l * width + o];
          for (int i = 0; i < width; ++i) acc += w[(l * width + o) * width + i] * in[at(j, l) + n * width + i];
          z[at(j, l) + n * width + o] = acc;
          a[at(j, l) + n * width + o] = head(l) ? acc : std::tanh(acc);
        }
      xi = &a[at(j, l)];
    }
    if (s == S - 1) { // softmax cross-entropy over the first `classes` outputs
      double total = 0;
      for (int n = 0; n < samples; ++n) {
        double const* zz = &a[at(j, L - 1) + n * width];
        double mx = zz[0], sum = 0;
        for (int c = 1; c < classes; ++c) mx = std::fmax(mx, zz[c]);
        for (int c = 0; c < classes; ++c) sum += std::exp(zz[c] - mx);
        total += std::log(sum) + mx - zz[y[j * samples + n]];
        for (int c = 0; c < width; ++c)
          dlogits[(j * samples + n) * width + c] =
              c < classes ? (std::exp(zz[c] - mx) / sum - (c == y[j * samples + n])) / (samples * m) : 0;
      }
      loss[j] = total / samples;
    } else if (y0) {
      std::memcpy(y0, xi, sizeof(double) * samples * width);
    }
  }
  // backward of stage s for micro-batch j: from dy (or the loss gradient), weight gradients
  // (when `weights`) and the input gradient into dx (when `input` and dx)
  void backward(int s, int j, double const* dy, double* dx, bool input, bool weights) {
    double const* da = s == S - 1 ? &dlogits[static_cast<std::size_t>(j * samples * width)] : dy;
    std::vector<double> next(samples * width);
    for (int l = last(s) - 1; l >= first(s); --l) {
      double* d = &dz[at(j, l)];
      int const out = head(l) ? classes : width;
      if (input)
        for (int k = 0; k < samples * width; ++k) {
          double const av = a[at(j, l) + k];
          d[k] = (k % width) >= out ? 0 : (head(l) ? da[k] : da[k] * (1 - av * av));
        }
      if (weights)
        for (int o = 0; o < out; ++o) {
          double sb = 0;
          for (int n = 0; n < samples; ++n) sb += d[n * width + o];
          gb[(j * L + l) * width + o] = sb;
          for (int i = 0; i < width; ++i) {
            double sw = 0;
            for (int n = 0; n < samples; ++n) sw += d[n * width + o] * in[at(j, l) + n * width + i];
            gw[((j * L + l) * width + o) * width + i] = sw;
          }
        }
      if (!input) continue;
      double* target = l > first(s) ? next.data() : dx;
      if (target)
        for (int n = 0; n < samples; ++n)
          for (int i = 0; i < width; ++i) {
            double acc = 0;
            for (int o = 0; o < out; ++o) acc += d[n * width + o] * w[(l * width + o) * width + i];
            target[n * width + i] = acc;
          }
      da = target; // the next (lower) layer's output gradient; null only below the first layer of stage 0
    }
  }
  // the SGD step: each layer's gradients summed over the micro-batches that visited its stage,
  // in micro-batch order; returns the mean loss
  double apply() {
    for (int l = 0; l < L; ++l) {
      int const s = l == L - 1 ? S - 1 : l / per_stage;
      for (int k = 0; k < width * width; ++k) {
        double g = 0;
        for (int j = 0; j < m; ++j)
          if (visits(j, s)) g += gw[(j * L + l) * width * width + k];
        w[l * width * width + k] -= 0.1 * g;
      }
      for (int k = 0; k < width; ++k) {
        double g = 0;
        for (int j = 0; j < m; ++j)
          if (visits(j, s)) g += gb[(j * L + l) * width + k];
        b[l * width + k] -= 0.1 * g;
      }
    }
    double total = 0;
    for (double v : loss) total += v;
    return total / m;
  }
  bool visits(int j, int s) const {
    for (int t : routes[static_cast<std::size_t>(j)])
      if (t == s) return true;
    return false;
  }
  // the sequential reference: every micro-batch through its route, backward in reverse
  double reference_step(bool split) {
    std::vector<double> act(samples * width), nxt(samples * width), g(samples * width), gn(samples * width);
    for (int j = 0; j < m; ++j) {
      auto const& route = routes[static_cast<std::size_t>(j)];
      std::vector<std::vector<double>> inputs;
      std::memcpy(act.data(), &x[static_cast<std::size_t>(j * samples * width)], sizeof(double) * samples * width);
      for (int s : route) {
        inputs.push_back(act);
        forward(s, j, inputs.back().data(), nxt.data());
        act.swap(nxt);
      }
      for (std::size_t k = route.size(); k-- > 0;) {
        double* dx = k > 0 ? gn.data() : nullptr;
        if (split) {
          backward(route[k], j, g.data(), dx, true, false);
          backward(route[k], j, g.data(), dx, false, true);
        } else {
          backward(route[k], j, g.data(), dx, true, true);
        }
        g.swap(gn);
      }
    }
    return apply();
  }
};

/// The stage functor: reads its step through the argument, so compiled plans and run-time
/// schedules call the same code.
struct stage {
  model* net;
  template <class St> void forward(St const& s, io const& x) {
    double const* in = s.has_in ? x.in.as<double>() : &net->x[static_cast<std::size_t>(s.mb * samples * width)];
    net->forward(s.stage, s.mb, in, s.has_out ? x.out.as<double>() : nullptr);
  }
  template <class St> void backward(St const& s, io const& x) {
    net->backward(s.stage, s.mb, s.has_in ? x.in.as<double>() : nullptr, s.has_out ? x.out.as<double>() : nullptr,
                  true, true);
  }
  template <class St> void backward_input(St const& s, io const& x) {
    net->backward(s.stage, s.mb, s.has_in ? x.in.as<double>() : nullptr, s.has_out ? x.out.as<double>() : nullptr,
                  true, false);
  }
  template <class St> void backward_weight(St const& s, io const&) { net->backward(s.stage, s.mb, nullptr, nullptr, false, true); }
};

int usage(char const* why) {
  std::fprintf(stderr, "example_04_runtime_schedule: %s\nusage: example_04_runtime_schedule --schedule NAME --ranks P "
                       "--microbatches M [--chunks V] [--keep K] [--steps N]\n",
               why);
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::string name = "zb-v";
  int p = 4, m = 8, v = 0, keep = 0, steps = 3;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    if (i + 1 >= argc) return usage(("option " + a + " needs a value").c_str());
    char const* val = argv[++i];
    char* end = nullptr;
    long const n = std::strtol(val, &end, 10);
    bool const number = *val && end && *end == 0 && n >= 0 && n < 100000;
    if (a == "--schedule") name = val;
    else if (!number) return usage((a + " needs a number").c_str());
    else if (a == "--ranks" || a == "--stages") p = static_cast<int>(n);
    else if (a == "--microbatches") m = static_cast<int>(n);
    else if (a == "--chunks") v = static_cast<int>(n);
    else if (a == "--keep") keep = static_cast<int>(n);
    else if (a == "--steps") steps = static_cast<int>(n);
    else return usage(("unknown option " + a).c_str());
  }
  try {
    table t;
    if (name == "skip") {
      skip_config c;
      c.stages = p;
      c.keep = keep > 0 ? keep : (p > 2 ? p - 1 : p);
      c.microbatches = m;
      t = make_skip(c);
    } else {
      params pr{p, m, v};
      t = make_schedule(name, pr);
    }
    runtime_schedule const sched(t); // lowered and verified: schedule_error otherwise
    std::vector<std::vector<int>> routes;
    table const& l = sched.lowered();
    for (int j = 0; j < l.microbatches; ++j) {
      std::vector<int> r;
      for (int i = 0; i < l.route_length(j); ++i) r.push_back(l.route_at(j, i));
      routes.push_back(r);
    }
    if (l.forward_only) return usage("forward-only schedules do not train: pick a training schedule");
    model piped(l.stages, l.microbatches, routes), reference(l.stages, l.microbatches, routes);
    host::runtime_executor ex(sched, {.slot_bytes = sizeof(double) * samples * width});
    std::vector<stage> fs(static_cast<std::size_t>(sched.ranks), stage{&piped});
    bool same = true;
    for (int step = 0; step < steps; ++step) {
      double const want = reference.reference_step(l.split_backward);
      ex.run(fs);
      double const got = piped.apply();
      std::printf("step %d  loss %.9f  (sequential %.9f)\n", step, got, want);
      same = same && got == want;
    }
    same = same && piped.w == reference.w && piped.b == reference.b;
    std::printf("%s, %d ranks, %d stages, %d micro-batches: %s\n", name.c_str(), sched.ranks, sched.stages,
                sched.microbatches, same ? "weights equal the sequential run to the last bit" : "FAILED: weights differ");
    return same ? 0 : 1;
  } catch (schedule_error const& e) {
    return usage(e.what());
  } catch (std::invalid_argument const& e) {
    return usage(e.what());
  }
}
