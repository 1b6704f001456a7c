// 05: a forward-only pipeline over an endless stream of inputs — the shape of stream-batched
// iterative generators (StreamDiffusion's denoising steps of successive frames) and of
// serving. Each of S stages runs one "denoising" step on a 32x32 frame (a 3x3 smoothing pulled
// toward by a step-dependent amount); frames are pushed by a producer thread, at most `window`
// in flight (push waits when the pipeline is full), and popped in order. Every output is
// checked against the same steps run one after another; the program prints the throughput
// and the p50 and p99 latency from push to pop, and exits 1 on any difference.
//
//   example_05_streaming [frames=400] [stages=4] [window=4]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <pipesched/host/stream.hpp>

using namespace pipesched;

namespace {

constexpr int side = 32, pixels = side * side;

/// One denoising step: x <- x + a_s * (blur(x) - x), a_s shrinking with the step.
void denoise_step(int step, float const* in, float* out) {
  float const a = 0.5f / static_cast<float>(1 + step);
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x) {
      float sum = 0;
      int n = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          int const yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= side || xx < 0 || xx >= side) continue;
          sum += in[yy * side + xx];
          ++n;
        }
      float const v = in[y * side + x];
      out[y * side + x] = v + a * (sum / static_cast<float>(n) - v);
    }
}

/// The stage functor: step s of the loop (the same functor a forward-only plan would call).
struct denoiser {
  template <class Step> void forward(Step const& s, io const& x) { denoise_step(s.stage, x.in.as<float>(), x.out.as<float>()); }
};

std::vector<float> frame(std::uint64_t id) {
  std::vector<float> f(pixels);
  unsigned s = static_cast<unsigned>(id) * 2654435761u + 1;
  for (auto& v : f) v = static_cast<float>((s = s * 1664525u + 1013904223u) >> 8) / 16777216.f;
  return f;
}

} // namespace

int main(int argc, char** argv) {
  int const frames = argc > 1 ? std::atoi(argv[1]) : 400;
  int const stages = argc > 2 ? std::atoi(argv[2]) : 4;
  int const window = argc > 3 ? std::atoi(argv[3]) : 4;
  if (frames < 1 || stages < 1 || window < 1) {
    std::fprintf(stderr, "usage: example_05_streaming [frames] [stages] [window]\n");
    return 2;
  }
  std::vector<denoiser> steps(static_cast<std::size_t>(stages));
  host::stream_options o;
  o.input_bytes = pixels * sizeof(float);
  o.output_bytes.assign(static_cast<std::size_t>(stages), pixels * sizeof(float));
  o.window = window;
  host::stream_executor<denoiser> pipeline(steps, o);

  auto const start = std::chrono::steady_clock::now();
  std::thread camera([&] {
    for (int id = 0; id < frames; ++id) {
      std::vector<float> const f = frame(static_cast<std::uint64_t>(id));
      pipeline.push(f.data()); // waits while `window` frames are in flight
    }
    pipeline.close();
  });
  int wrong = 0, count = 0;
  std::vector<float> a(pixels), b(pixels);
  while (auto item = pipeline.pop()) {
    // the reference: the same steps on the same frame, one after another
    a = frame(item->id);
    for (int s = 0; s < stages; ++s) {
      denoise_step(s, a.data(), b.data());
      a.swap(b);
    }
    if (std::memcmp(a.data(), item->bytes.data(), pixels * sizeof(float)) != 0 || item->id != static_cast<std::uint64_t>(count))
      ++wrong;
    ++count;
  }
  camera.join();
  pipeline.finish();
  double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> lat = pipeline.latencies();
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) { return lat[std::min(lat.size() - 1, static_cast<std::size_t>(q * static_cast<double>(lat.size())))]; };
  std::printf("%d frames through %d stages (window %d): %.0f frames/s, latency p50 %.0f us, p99 %.0f us; %d outputs "
              "differ from the sequential steps: %s\n",
              count, stages, window, count / seconds, pct(0.5), pct(0.99), wrong, wrong == 0 && count == frames ? "OK" : "FAILED");
  return wrong == 0 && count == frames ? 0 : 1;
}
