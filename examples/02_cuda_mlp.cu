// pipesched on one GPU: an MLP whose stage functors call cuBLAS for their GEMMs and their own
// kernels for bias, tanh and a softmax cross-entropy head, trained with a pipeline schedule of
// 4 stages (each its own CUDA streams on the one card). CUB sums the micro-batches' losses and
// the gradient norm, deterministically. The same model is trained as a single stage; the
// losses and weights must agree. The model and the schedule (one `using` line) are in
// cuda_mlp_model.cuh, which examples/03_nccl_mlp.cu shares.
//
//   build/default/examples/example_02_cuda_mlp        (exit 77: no GPU)
#include "cuda_mlp_model.cuh"

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: nothing to run\n");
    return 77;
  }
  try {
    constexpr int steps = 5;
    model piped(schedule::lowered.stages), whole(1);
    float norm_p = 0, norm_w = 0;
    std::vector<float> const lp = train<schedule>(piped, steps, &norm_p);
    std::vector<float> const lw = train<single>(whole, steps, &norm_w);
    double worst_loss = 0, worst_weight = 0;
    for (int s = 0; s < steps; ++s) {
      std::printf("step %d  loss %.6f  (single stage %.6f)\n", s, lp[static_cast<std::size_t>(s)], lw[static_cast<std::size_t>(s)]);
      worst_loss = std::fmax(worst_loss, std::fabs(lp[static_cast<std::size_t>(s)] - lw[static_cast<std::size_t>(s)]) /
                                             std::fabs(lw[static_cast<std::size_t>(s)]));
    }
    std::vector<float> const wp = weights(piped), ww = weights(whole);
    for (std::size_t i = 0; i < wp.size(); ++i)
      worst_weight = std::fmax(worst_weight, std::fabs(wp[i] - ww[i]) / std::fmax(std::fabs(ww[i]), 1e-3f));
    std::printf("%s on %d ranks: norm of layer 0's micro-batch weight gradients %.6f (single stage %.6f)\n",
                schedule::name, stages, norm_p, norm_w);
    // float32, the same GEMMs and kernels per (stage, micro-batch), gradients summed in
    // micro-batch order: equal up to cuBLAS choosing kernels by stream
    bool const same = worst_loss <= 1e-5 && worst_weight <= 1e-5;
    std::printf("largest relative difference to the single-stage run: loss %.2e, weights %.2e: %s\n", worst_loss,
                worst_weight, same ? "OK" : "FAILED");
    return same ? 0 : 1;
  } catch (std::exception const& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
}
