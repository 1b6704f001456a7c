// pipesched: the CUDA streams executors on the CUDA runtime (see basic_executor.hpp and
// basic_runtime_executor.hpp), and the stream executor (basic_stream_executor.hpp).
#pragma once

#include "pipesched/cuda/basic_executor.hpp"
#include "pipesched/cuda/basic_runtime_executor.hpp"
#include "pipesched/cuda/basic_stream_executor.hpp"
#include "pipesched/cuda/runtime.cuh"

namespace pipesched::cuda {

/// Runs schedule S on CUDA streams: one GPU with every rank (options::devices empty), or one
/// rank per GPU of this process (options::devices). See basic_executor.
template <schedule_type S> using executor = basic_executor<S, cuda_runtime>;

/// Runs a schedule chosen at run time (a runtime_schedule) on CUDA streams, with the same
/// options; its stream program is checked when it is made. See basic_runtime_executor.
using runtime_executor = basic_runtime_executor<cuda_runtime>;

/// A forward-only pipeline over an endless input stream on CUDA streams (inference serving):
/// push items, pop results in order. See basic_stream_executor.
template <class Functor> using stream_executor = basic_stream_executor<Functor, cuda_runtime>;

} // namespace pipesched::cuda
