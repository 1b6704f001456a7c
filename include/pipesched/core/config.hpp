// pipesched: configuration macros shared by every header.
#pragma once

#define PIPESCHED_VERSION_MAJOR 0
#define PIPESCHED_VERSION_MINOR 1
#define PIPESCHED_VERSION_PATCH 0

// Functions that must be callable from host and device code. Core headers include no CUDA
// header; under nvcc the annotations make constexpr data and helpers usable in kernels
// without --expt-relaxed-constexpr.
#if defined(__CUDACC__)
#define PIPESCHED_HD __host__ __device__
#else
#define PIPESCHED_HD
#endif

#if defined(__CUDA_ARCH__)
#define PIPESCHED_DEVICE_PASS 1
#else
#define PIPESCHED_DEVICE_PASS 0
#endif

#define PIPESCHED_FORCEINLINE inline __attribute__((always_inline))
