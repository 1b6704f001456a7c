# ctest: the pipesched tool's behaviour on good and bad input.
#   cmake -DTOOL=path/to/pipesched -DWORK=scratch/dir -P tools/check_tool.cmake
# Each case: the arguments, the exit code expected, and a regex its output must match.
# A crash shows as an exit code that is not the one expected.
cmake_minimum_required(VERSION 3.25)
file(MAKE_DIRECTORY "${WORK}")
set(failures 0)

function(expect code regex)
  execute_process(COMMAND "${TOOL}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  string(JOIN " " args ${ARGN})
  if(NOT "${rc}" STREQUAL "${code}")
    message(SEND_ERROR "pipesched ${args}: exit ${rc}, expected ${code}\n${out}${err}")
  elseif(NOT "${out}${err}" MATCHES "${regex}")
    message(SEND_ERROR "pipesched ${args}: output does not match '${regex}'\n${out}${err}")
  endif()
endfunction()

# help for every command
foreach(cmd show compare export import)
  expect(0 "usage: pipesched ${cmd}" ${cmd} --help)
endforeach()
expect(0 "commands:" --help)

# the numbers of the reference cases, through the tool
expect(0 "\"makespan\":33,.*\"peak_memory\":\\[4,3,2,1\\],.*\"verified\":true" show --schedule 1f1b --stages 4
       --microbatches 8 --json)
expect(0 "\"makespan\":51,\"max_rank_span\":48" show --schedule zb-v --stages 4 --microbatches 8 --json)
expect(0 "\"makespan\":41" show --schedule 1f1b --stages 4 --microbatches 8 --costs 1,1,1,0.5 --json)
expect(0 "\"schedule\":\"v-min\"" compare --stages 4 --microbatches 8 --json)
expect(0 "^v-half" compare --stages 8 --microbatches 24 --costs 1,2,1 --memory-budget 6 --best)
expect(0 "^0F0,0F1,0F2,0F3,0B0,0F4,0B1" export --schedule 1f1b --stages 4 --microbatches 8 --format csv)
expect(0 "traceEvents" export --schedule zb-h1 --stages 4 --microbatches 8 --format chrome --transfers)
expect(0 "<svg" export --schedule v-half --stages 4 --microbatches 8 --format svg)

# export, import back, same metrics
execute_process(COMMAND "${TOOL}" export --schedule zb-h2 --stages 4 --microbatches 8 --format csv --transfers
                OUTPUT_FILE "${WORK}/zb-h2.csv" RESULT_VARIABLE rc)
expect(0 "\"verified\":true" import "${WORK}/zb-h2.csv" --json)

# bad arguments: exit 2 and a message
expect(2 "unknown schedule 'nope'" show --schedule nope --stages 4 --microbatches 8)
expect(2 "--stages needs an integer" show --schedule 1f1b --stages four --microbatches 8)
expect(2 "--stages must be between" show --schedule 1f1b --stages 0 --microbatches 8)
expect(2 "--microbatches M is required" show --schedule 1f1b --stages 4)
expect(2 "--costs takes F,B,W or F,B,W,C" show --schedule 1f1b --stages 4 --microbatches 8 --costs 1,2)
expect(2 "non-negative number" show --schedule 1f1b --stages 4 --microbatches 8 --costs 1,-2,1)
expect(2 "unknown option --frobnicate" compare --stages 4 --microbatches 8 --frobnicate)
expect(2 "holds one chunk per rank" show --schedule 1f1b --stages 4 --microbatches 8 --chunks 2)
expect(2 "unknown --format" export --schedule 1f1b --stages 4 --microbatches 8 --format png)
expect(2 "unknown command" frobnicate)
expect(1 "no schedule fits" compare --stages 8 --microbatches 24 --memory-budget 1 --best)

# bad files: exit non-zero with a message naming the row and cell, never a crash
file(WRITE "${WORK}/bad_cell.csv" "0F0,0F1,0B0,0B1\n1F0,1X0\n")
expect(1 "rank 1, position 1" import "${WORK}/bad_cell.csv")
file(WRITE "${WORK}/cyclic.csv" "0F0,0B0,0F1,0B1\n1F1,1F0,1B0,1B1\n")
expect(1 "wait on each other in a cycle|cycle" import "${WORK}/cyclic.csv")
string(ASCII 1 2 200 255 7 nul)
file(WRITE "${WORK}/garbage.csv" "${nul}${nul},,3F,,99999999999999999999F1\n")
expect(1 "pipesched import" import "${WORK}/garbage.csv")
expect(2 "cannot open" import "${WORK}/does_not_exist.csv")
