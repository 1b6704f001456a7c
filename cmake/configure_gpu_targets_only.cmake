# cmake -DSOURCE=<repo> -DBINARY=<dir> -DGENERATOR=.. -DCXX_COMPILER=.. -DCUDA_COMPILER=..
#       -P configure_gpu_targets_only.cmake
# What scripts/gpu-check does on a machine without the test and benchmark libraries: the
# repository configured with PIPESCHED_GPU_TARGETS_ONLY=ON while doctest, nlohmann-json and
# Google Benchmark cannot be found must succeed and define the GPU tests and benchmarks.
foreach(v IN ITEMS SOURCE BINARY CUDA_COMPILER)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "configure_gpu_targets_only.cmake: -D${v}=... is required")
  endif()
endforeach()
set(args -S "${SOURCE}" -B "${BINARY}" --fresh -DCMAKE_BUILD_TYPE=Release -DPIPESCHED_ENABLE_CUDA=ON
    "-DCMAKE_CUDA_COMPILER=${CUDA_COMPILER}" -DCMAKE_CUDA_ARCHITECTURES=90 -DPIPESCHED_BUILD_TOOLS=OFF
    -DPIPESCHED_GPU_TARGETS_ONLY=ON -DCMAKE_DISABLE_FIND_PACKAGE_doctest=ON
    -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON)
if(GENERATOR)
  list(APPEND args -G "${GENERATOR}")
endif()
if(CXX_COMPILER)
  list(APPEND args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configure with PIPESCHED_GPU_TARGETS_ONLY failed (exit ${rc}):\n${out}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BINARY}" --target help OUTPUT_VARIABLE targets
                RESULT_VARIABLE rc)
foreach(t IN ITEMS test_gpu_executor_mlp test_gpu_persistent_mlp test_gpu_sm_partitions bench_cuda_schedules
                   bench_gpu_persistent example_02_cuda_mlp)
  if(NOT targets MATCHES "(^|\n)${t}:")
    message(FATAL_ERROR "the GPU-only configuration has no target ${t}")
  endif()
endforeach()
foreach(t IN ITEMS pipesched_doctest_main bench_simulate)
  if(targets MATCHES "(^|\n)${t}:")
    message(FATAL_ERROR "the GPU-only configuration still defines ${t}, which needs a test library")
  endif()
endforeach()
message(STATUS "GPU-only configuration: OK")
