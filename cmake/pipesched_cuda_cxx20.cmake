# Teaches CMake < 3.25.2 that nvcc >= 12 compiles C++20 (cuda_std_20, CUDA_STANDARD 20).
#
# CMake 3.25.0/3.25.1 (Debian 12's) knows no -std=c++20 for nvcc and stops at generate time
# with 'The compiler feature "cuda_std_20" is not known to CUDA compiler'. Include this
# file after enable_language(CUDA), in the directory that owns the CUDA targets or above.
# It does nothing on newer CMake, with other CUDA compilers, or when CUDA is not enabled.
get_property(_pipesched_langs GLOBAL PROPERTY ENABLED_LANGUAGES)
if("CUDA" IN_LIST _pipesched_langs
   AND CMAKE_CUDA_COMPILER_ID STREQUAL "NVIDIA"
   AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0
   AND NOT "cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_COMPILE_FEATURES "cuda_std_20")
  list(APPEND CMAKE_CUDA_COMPILE_FEATURES "cuda_std_20")
endif()
unset(_pipesched_langs)
