# cmake -DNVCC=<nvcc> -DSOURCE=<file.cu> -DINCLUDE_DIR=<repo>/include -DOUT_DIR=<dir>
#       [-DARCH=90] [-DALLOWED=<regex>] [-DMIN_ENTRIES=<n>] -P check_ptx.cmake
#
# Compiles SOURCE with nvcc to an object (host and device code) and to PTX, then checks the
# PTX: at least MIN_ENTRIES kernels, and every `call` instruction names a function that
# matches ALLOWED (the user's own device functions) — so the plan's code was fully inlined.
foreach(v IN ITEMS NVCC SOURCE INCLUDE_DIR OUT_DIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_ptx.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT DEFINED ARCH)
  set(ARCH 90)
endif()
if(NOT DEFINED ALLOWED)
  set(ALLOWED "user_payload")
endif()
if(NOT DEFINED MIN_ENTRIES)
  set(MIN_ENTRIES 1)
endif()
get_filename_component(stem "${SOURCE}" NAME_WE)
set(ptx "${OUT_DIR}/${stem}.ptx")
set(obj "${OUT_DIR}/${stem}.o")
file(MAKE_DIRECTORY "${OUT_DIR}")

foreach(mode IN ITEMS object ptx)
  if(mode STREQUAL "object")
    set(args -c -o "${obj}")
  else()
    set(args -ptx -o "${ptx}")
  endif()
  execute_process(
    COMMAND "${NVCC}" -std=c++20 -O3 -arch=sm_${ARCH} "-I${INCLUDE_DIR}" ${args} "${SOURCE}"
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE out
    ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nvcc (${mode}) failed for ${SOURCE}:\n${out}")
  endif()
  if(out MATCHES "warning")
    message(FATAL_ERROR "nvcc (${mode}) warned for ${SOURCE}:\n${out}")
  endif()
endforeach()

file(READ "${ptx}" text)
string(REGEX REPLACE "//[^\n]*" "" text "${text}") # comments ("// callseq 0")
string(REGEX MATCHALL "\\.entry[ \t]+[A-Za-z0-9_$]+" entries "${text}")
list(LENGTH entries n_entries)
if(n_entries LESS MIN_ENTRIES)
  message(FATAL_ERROR "${ptx}: ${n_entries} kernels, expected at least ${MIN_ENTRIES}")
endif()

# call{.uni} [(ret),] target, (args);  -- the target may sit on the next line
string(REGEX MATCHALL "[ \t\n]call(\\.uni)?[ \t\r\n]+(\\([^)]*\\)[ \t\r\n]*,[ \t\r\n]*)?[^ \t\r\n,;(]+" calls
             "${text}")
set(bad)
set(n_calls 0)
foreach(c IN LISTS calls)
  math(EXPR n_calls "${n_calls} + 1")
  string(REGEX MATCH "[^ \t\r\n,;(]+$" target "${c}")
  if(NOT target MATCHES "${ALLOWED}")
    list(APPEND bad "${target}")
  endif()
endforeach()
if(bad)
  list(REMOVE_DUPLICATES bad)
  message(FATAL_ERROR "${ptx}: calls to functions other than the user's (${ALLOWED}): ${bad}")
endif()
message(STATUS "${ptx}: ${n_entries} kernels, ${n_calls} calls, all to ${ALLOWED}")
