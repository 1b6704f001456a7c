// pipesched: the CUDA streams executor on the CUDA runtime (see basic_executor.hpp).
#pragma once

#include "pipesched/cuda/basic_executor.hpp"
#include "pipesched/cuda/runtime.cuh"

namespace pipesched::cuda {

/// Runs schedule S on CUDA streams: one GPU with every rank (options::devices empty), or one
/// rank per GPU of this process (options::devices). See basic_executor.
template <schedule_type S> using executor = basic_executor<S, cuda_runtime>;

} // namespace pipesched::cuda
