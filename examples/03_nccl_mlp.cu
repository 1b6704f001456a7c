// pipesched across processes: the MLP of examples/02_cuda_mlp.cu (its model, kernels and
// stage functor: cuda_mlp_model.cuh), one process per stage and GPU, boundaries moved by NCCL.
// Each process trains the pipeline's rank with cuda::nccl_from_mpi (the NCCL id over MPI,
// the GPU of its local rank) and, as the check, the same model as a single stage on its own
// GPU; every rank's layers and the last rank's losses must agree with the single-stage run.
//
//   mpirun -np 4 build/default/examples/example_03_nccl_mlp        (exit 77: fewer than 4 GPUs)
//   mpirun -np 8 -N 4 ... (two nodes: change `stages` in cuda_mlp_model.cuh to 8)   srun -n 4 --gpus-per-task 1 ...
#include <mpi.h>

// the model of the single-GPU example
#include "cuda_mlp_model.cuh"

#include <pipesched/cuda/nccl_mpi.cuh>

namespace {

/// Rank r's part of the pipelined training: returns the losses (meaningful on the last rank).
std::vector<float> train_rank(model& net, int steps, int rank) {
  pipesched::cuda::nccl_options o;
  o.slot_bytes = net.boundary_bytes();
  auto p = pipesched::cuda::nccl_from_mpi<schedule>(o);
  stage f{&net};
  ok(cublasCreate(&f.blas), "cublasCreate");
  float* sum = nullptr;
  ok(cudaMalloc(&sum, sizeof(float)), "cudaMalloc");
  int const n_loss = microbatches * samples;
  std::size_t temp_bytes = 0;
  ok(cub::DeviceReduce::Sum(nullptr, temp_bytes, net.loss, sum, n_loss), "cub");
  void* temp = nullptr;
  ok(cudaMalloc(&temp, temp_bytes), "cudaMalloc");
  std::vector<float> losses;
  for (int step = 0; step < steps; ++step) {
    p.run(f);
    // this rank's stage (one stage per rank in this schedule): its layers only
    for (int l = net.first(rank); l < net.last(rank); ++l) {
      sgd<<<grid(fan_out(l) * width), 256>>>(net.w[static_cast<std::size_t>(l)], net.gw[static_cast<std::size_t>(l)],
                                               fan_out(l) * width, microbatches);
      sgd<<<grid(fan_out(l)), 256>>>(net.b[static_cast<std::size_t>(l)], net.gb[static_cast<std::size_t>(l)], fan_out(l),
                                      microbatches);
    }
    std::size_t tb = temp_bytes;
    ok(cub::DeviceReduce::Sum(temp, tb, net.loss, sum, n_loss), "cub::DeviceReduce::Sum");
    float h = 0;
    ok(cudaMemcpy(&h, sum, sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
    losses.push_back(h / microbatches);
  }
  cublasDestroy(f.blas);
  cudaFree(temp);
  cudaFree(sum);
  return losses;
}

} // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  static_assert(schedule::lowered.stages == schedule::ranks, "this example runs one stage per rank");
  pipesched::cuda::launch_info const who = pipesched::cuda::launch_from_mpi();
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  int enough = size == schedule::ranks && devices > who.local_rank ? 1 : 0, all = 0;
  MPI_Allreduce(&enough, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all) {
    if (rank == 0)
      std::printf("needs %d processes with one GPU each (got %d processes, %d GPU(s) on this node): nothing to run\n",
                  schedule::ranks, size, devices);
    MPI_Finalize();
    return 77;
  }
  double worst[2] = {0, 0}; // loss, weights
  int failed = 0;
  try {
    ok(cudaSetDevice(who.local_rank), "cudaSetDevice");
    constexpr int steps = 5;
    model piped(schedule::lowered.stages), whole(1);
    float norm_w = 0;
    std::vector<float> const lp = train_rank(piped, steps, rank);
    std::vector<float> const lw = train<single>(whole, steps, &norm_w);
    if (rank == size - 1)
      for (int s = 0; s < steps; ++s) {
        std::printf("step %d  loss %.6f  (single stage %.6f)\n", s, lp[static_cast<std::size_t>(s)],
                    lw[static_cast<std::size_t>(s)]);
        worst[0] = std::fmax(worst[0], std::fabs(lp[static_cast<std::size_t>(s)] - lw[static_cast<std::size_t>(s)]) /
                                           std::fabs(lw[static_cast<std::size_t>(s)]));
      }
    for (int l = piped.first(rank); l < piped.last(rank); ++l) {
      std::size_t const n = static_cast<std::size_t>(fan_out(l) * width);
      std::vector<float> a(n), b(n);
      ok(cudaMemcpy(a.data(), piped.w[static_cast<std::size_t>(l)], n * sizeof(float), cudaMemcpyDeviceToHost), "copy");
      ok(cudaMemcpy(b.data(), whole.w[static_cast<std::size_t>(l)], n * sizeof(float), cudaMemcpyDeviceToHost), "copy");
      for (std::size_t i = 0; i < n; ++i)
        worst[1] = std::fmax(worst[1], std::fabs(a[i] - b[i]) / std::fmax(std::fabs(b[i]), 1e-3f));
    }
  } catch (std::exception const& e) {
    std::printf("rank %d FAILED: %s\n", rank, e.what());
    failed = 1;
  }
  double all_worst[2] = {0, 0};
  int any_failed = 0;
  MPI_Allreduce(worst, all_worst, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  bool const same = !any_failed && all_worst[0] <= 1e-5 && all_worst[1] <= 1e-5;
  if (rank == 0)
    std::printf("%s on %d processes over NCCL: largest relative difference to the single-stage run: loss %.2e, "
                "weights %.2e: %s\n",
                schedule::name, size, all_worst[0], all_worst[1], same ? "OK" : "FAILED");
  MPI_Finalize();
  return same ? 0 : 1;
}
