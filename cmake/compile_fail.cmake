# cmake -DCOMPILER=<c++> -DSOURCE=<file.cpp> -DINCLUDE_DIR=<repo>/include [-DFLAGS=a;b] -P compile_fail.cmake
#
# A compile-failure test: SOURCE's first line is "// expect: <regex>" (CMake regex syntax);
# more "// expect:" lines right after it add regexes that must match too. The test passes
# only when compiling SOURCE FAILS and the compiler's output matches every regex; a file
# that compiles, or fails for another reason, fails the test. A line "// errors: N" among
# them requires exactly N lines with "error:" in the output (one mistake, one message).
foreach(v IN ITEMS COMPILER SOURCE INCLUDE_DIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "compile_fail.cmake: -D${v}=... is required")
  endif()
endforeach()

file(STRINGS "${SOURCE}" head LIMIT_COUNT 8)
set(expects)
set(error_count)
foreach(line IN LISTS head)
  if(line MATCHES "^[ \t]*//[ \t]*errors:[ \t]*([0-9]+)[ \t]*$")
    set(error_count "${CMAKE_MATCH_1}")
    continue()
  endif()
  if(NOT line MATCHES "^[ \t]*//[ \t]*expect:[ \t]*(.+)$")
    break()
  endif()
  string(STRIP "${CMAKE_MATCH_1}" e)
  list(APPEND expects "${e}")
endforeach()
if(NOT expects)
  list(GET head 0 first)
  message(FATAL_ERROR "${SOURCE}: the first line must be \"// expect: <regex>\", not \"${first}\"")
endif()

if(NOT DEFINED FLAGS)
  set(FLAGS -std=c++20)
endif()
# LC_ALL=C: plain ASCII quotes in the diagnostics; no colour escapes.
execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env LC_ALL=C "${COMPILER}" ${FLAGS} -fsyntax-only -fdiagnostics-color=never
          "-I${INCLUDE_DIR}" "${SOURCE}"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)

if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must fail with a message matching: ${expects}")
endif()
foreach(expect IN LISTS expects)
  if(NOT out MATCHES "${expect}")
    message(FATAL_ERROR "${SOURCE} failed to compile, but no message matches: ${expect}\n--- compiler output ---\n${out}")
  endif()
endforeach()
if(error_count)
  string(REGEX MATCHALL "error:" errors "${out}")
  list(LENGTH errors n)
  if(NOT n EQUAL error_count)
    message(FATAL_ERROR "${SOURCE}: ${n} errors, expected ${error_count}\n--- compiler output ---\n${out}")
  endif()
endif()
message(STATUS "${SOURCE}: failed to compile as expected (matched: ${expects})")
