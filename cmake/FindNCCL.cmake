# FindNCCL
# --------
#
# Finds the NVIDIA Collective Communications Library.
#
# Search order: the NCCL_ROOT variable or environment variable (also NCCL_HOME), the CUDA
# toolkit (CUDAToolkit_ROOT / the toolkit found by find_package(CUDAToolkit), CUDA_HOME,
# CUDA_PATH, /usr/local/cuda), then the system paths.
#
# Result variables:
#   NCCL_FOUND, NCCL_INCLUDE_DIRS, NCCL_LIBRARIES, NCCL_VERSION
#
# Cache variables:
#   NCCL_INCLUDE_DIR, NCCL_LIBRARY
#
# Imported target:
#   NCCL::NCCL   the shared library (set NCCL_USE_STATIC=ON for libnccl_static.a)

set(_nccl_hints)
foreach(_v IN ITEMS NCCL_ROOT NCCL_HOME)
  if(DEFINED ${_v})
    list(APPEND _nccl_hints "${${_v}}")
  endif()
  if(DEFINED ENV{${_v}})
    list(APPEND _nccl_hints "$ENV{${_v}}")
  endif()
endforeach()
set(_nccl_cuda_hints)
if(CUDAToolkit_LIBRARY_ROOT)
  list(APPEND _nccl_cuda_hints "${CUDAToolkit_LIBRARY_ROOT}")
endif()
if(CUDAToolkit_TARGET_DIR)
  list(APPEND _nccl_cuda_hints "${CUDAToolkit_TARGET_DIR}")
endif()
if(CUDAToolkit_ROOT)
  list(APPEND _nccl_cuda_hints "${CUDAToolkit_ROOT}")
endif()
foreach(_v IN ITEMS CUDAToolkit_ROOT CUDA_HOME CUDA_PATH)
  if(DEFINED ENV{${_v}})
    list(APPEND _nccl_cuda_hints "$ENV{${_v}}")
  endif()
endforeach()
list(APPEND _nccl_cuda_hints /usr/local/cuda)

find_path(
  NCCL_INCLUDE_DIR
  NAMES nccl.h
  HINTS ${_nccl_hints} ${CUDAToolkit_INCLUDE_DIRS} ${_nccl_cuda_hints}
  PATH_SUFFIXES include)

if(NCCL_USE_STATIC)
  set(_nccl_names nccl_static)
else()
  # libnccl.so.2: the pip wheel nvidia-nccl-cu* ships no unversioned libnccl.so
  set(_nccl_names nccl libnccl.so.2)
endif()
find_library(
  NCCL_LIBRARY
  NAMES ${_nccl_names}
  HINTS ${_nccl_hints} ${CUDAToolkit_LIBRARY_DIR} ${_nccl_cuda_hints}
  PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu targets/x86_64-linux/lib targets/sbsa-linux/lib)

if(NCCL_INCLUDE_DIR AND EXISTS "${NCCL_INCLUDE_DIR}/nccl.h")
  file(STRINGS "${NCCL_INCLUDE_DIR}/nccl.h" _nccl_version_lines REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) +[0-9]+")
  foreach(_part IN ITEMS MAJOR MINOR PATCH)
    string(REGEX MATCH "NCCL_${_part} +([0-9]+)" _m "${_nccl_version_lines}")
    set(NCCL_VERSION_${_part} "${CMAKE_MATCH_1}")
  endforeach()
  if(NOT NCCL_VERSION_MAJOR STREQUAL "")
    set(NCCL_VERSION "${NCCL_VERSION_MAJOR}.${NCCL_VERSION_MINOR}.${NCCL_VERSION_PATCH}")
  endif()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(
  NCCL
  REQUIRED_VARS NCCL_LIBRARY NCCL_INCLUDE_DIR
  VERSION_VAR NCCL_VERSION)

if(NCCL_FOUND)
  set(NCCL_INCLUDE_DIRS "${NCCL_INCLUDE_DIR}")
  set(NCCL_LIBRARIES "${NCCL_LIBRARY}")
  if(NOT TARGET NCCL::NCCL)
    add_library(NCCL::NCCL UNKNOWN IMPORTED)
    set_target_properties(NCCL::NCCL PROPERTIES IMPORTED_LOCATION "${NCCL_LIBRARY}" INTERFACE_INCLUDE_DIRECTORIES
                                                                                     "${NCCL_INCLUDE_DIR}")
    # nccl.h includes cuda_runtime.h.
    if(TARGET CUDA::cudart)
      set_property(TARGET NCCL::NCCL APPEND PROPERTY INTERFACE_LINK_LIBRARIES CUDA::cudart)
    endif()
  endif()
endif()

mark_as_advanced(NCCL_INCLUDE_DIR NCCL_LIBRARY)
unset(_nccl_hints)
unset(_nccl_cuda_hints)
unset(_nccl_names)
unset(_nccl_version_lines)
