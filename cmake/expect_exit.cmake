# cmake -DEXIT=<code> -DREGEX=<regex> -DCOMMAND=<program;args...> -P expect_exit.cmake
# Passes when the program exits with EXIT and its output (stdout and stderr) matches REGEX.
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
if(NOT "${rc}" STREQUAL "${EXIT}")
  message(FATAL_ERROR "exit ${rc}, expected ${EXIT}\n${out}${err}")
endif()
if(NOT "${out}${err}" MATCHES "${REGEX}")
  message(FATAL_ERROR "output does not match '${REGEX}'\n${out}${err}")
endif()
