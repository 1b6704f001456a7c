# ctest: the pipesched tool's behaviour on good and bad input.
#   cmake -DTOOL=path/to/pipesched -DWORK=scratch/dir -P tools/check_tool.cmake
# Each case: the arguments, the exit code expected, and a regex its output must match.
# A crash shows as an exit code that is not the one expected.
# Exit codes: documented convention (docs/02_analysis.md, "The pipesched tool": "Bad arguments
# exit 2 with a message, a table that fails verification exits 1"; 0 otherwise).
# Every expected number names its source: "reference" (shared/reference/schedules.md, section
# named), "closed form" (derived next to it) or "independent" (read off the test's own input).
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

# Runs the tool, which must exit 0 and print one valid JSON document (CMake's own parser)
# in which member `key` has the JSON text `want`.
function(expect_json key want)
  execute_process(COMMAND "${TOOL}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  string(JOIN " " args ${ARGN})
  if(NOT rc EQUAL 0)
    message(SEND_ERROR "pipesched ${args}: exit ${rc}\n${out}${err}")
    return()
  endif()
  string(JSON type ERROR_VARIABLE bad TYPE "${out}" "${key}")
  if(bad)
    message(SEND_ERROR "pipesched ${args}: not valid JSON with member ${key} (${bad})\n${out}")
    return()
  endif()
  string(JSON got GET "${out}" "${key}")
  if(type STREQUAL "NULL")
    set(got null)
  endif()
  if(NOT got STREQUAL want)
    message(SEND_ERROR "pipesched ${args}: ${key} is ${got}, expected ${want}\n${out}")
  endif()
endfunction()

# help for every command
foreach(cmd show compare export import)
  expect(0 "usage: pipesched ${cmd}" ${cmd} --help)
endforeach()
expect(0 "commands:" --help)

# the numbers of the reference cases, through the tool
# reference: schedules.md, Cases (c = 0), row 1F1B 1,1,1: makespan 33, memory "4 (ranks 4 3 2 1)"
expect(0 "\"makespan\":33,.*\"peak_memory\":\\[4,3,2,1\\],.*\"verified\":true" show --schedule 1f1b --stages 4
       --microbatches 8 --json)
# reference: schedules.md, Cases (c = 0), row ZB-V: makespan 51, span 48
expect(0 "\"makespan\":51,\"max_rank_span\":48" show --schedule zb-v --stages 4 --microbatches 8 --json)
# reference: schedules.md, Cases (c = 0), row "1F1B, c = 0.5": 41
expect(0 "\"makespan\":41" show --schedule 1f1b --stages 4 --microbatches 8 --costs 1,1,1,0.5 --json)
expect(0 "\"schedule\":\"v-min\"" compare --stages 4 --microbatches 8 --json)
# reference: schedules.md, memories at p = 8: V-Half ⌊(p+2)/2⌋ = 5 and V-Min ⌊(p+4)/3⌋ = 4 fit 6
# units; 1F1B, ZB-H1, ZB-V (p = 8), ZB-H2 (2p−1 to 2p), interleaved (rank 0 p + (p−1)/v) and GPipe
# (m) do not. Of the two, V-Half is the faster ("V-shape family": about half of 1F1B's bubble
# against V-Min's two thirds, and V-Min "degrades when F, B, W differ", as here)
expect(0 "^v-half" compare --stages 8 --microbatches 24 --costs 1,2,1 --memory-budget 6 --best)
# closed form: the reference's 1F1B rule (schedules.md, 1F1B) for rank 0 by hand: warm-up
# min(p−1, m) = 3 forwards, then the pairs (F3, B0), (F4, B1), ...
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
# JSON has no infinity: a makespan that overflows is written null (and the output parses)
# closed form: 1F1B's (m+p−1)(F+B+W) = 3 × 3e308 (reference formula, schedules.md, 1F1B) is
# beyond the largest double, about 1.8e308, so the makespan is infinite
expect_json(makespan null show --schedule 1f1b --stages 2 --microbatches 2 --costs 1e308,1e308,1e308 --json)
# reference: schedules.md, Cases (c = 0), row 1F1B 1,1,1: makespan 33
expect_json(makespan 33 show --schedule 1f1b --stages 4 --microbatches 8 --json)
# slot reuse (fixed slots, as on a GPU) and one extra slot per rank: regression values of the
# simulator (tests/cpu/analysis_slot_reuse.cpp has the same case)
expect_json(slot_reuse_makespan 85 show --schedule 1f1b --stages 4 --microbatches 16 --costs 1,1,1,0.5 --json)
expect_json(slot_reuse_makespan 71 show --schedule 1f1b --stages 4 --microbatches 16 --costs 1,1,1,0.5
            --extra-slots 1 --json)
expect(2 "extra-slots must be between 0 and 64" show --schedule 1f1b --stages 4 --microbatches 8 --extra-slots 65)
expect(0 "makespan inf" show --schedule 1f1b --stages 2 --microbatches 2 --costs 1e308,1e308,1e308)
expect(2 "unknown option --frobnicate" compare --stages 4 --microbatches 8 --frobnicate)
expect(2 "holds one chunk per rank" show --schedule 1f1b --stages 4 --microbatches 8 --chunks 2)
expect(2 "unknown --format" export --schedule 1f1b --stages 4 --microbatches 8 --format png)
expect(2 "unknown command" frobnicate)
# reference: the least memory of any schedule at p = 8 is V-Min's ⌊(p+4)/3⌋ = 4 units (schedules.md,
# "V-shape family"), above the budget of 1
expect(1 "no schedule fits" compare --stages 8 --microbatches 24 --memory-budget 1 --best)

# bad files: exit non-zero with a message naming the row and cell, never a crash
file(WRITE "${WORK}/bad_cell.csv" "0F0,0F1,0B0,0B1\n1F0,1X0\n")
expect(1 "rank 1, position 1" import "${WORK}/bad_cell.csv") # independent: row 1, cell 1 is 1X0
file(WRITE "${WORK}/cyclic.csv" "0F0,0B0,0F1,0B1\n1F1,1F0,1B0,1B1\n")
expect(1 "wait on each other in a cycle|cycle" import "${WORK}/cyclic.csv")
string(ASCII 1 2 200 255 7 nul)
file(WRITE "${WORK}/garbage.csv" "${nul}${nul},,3F,,99999999999999999999F1\n")
expect(1 "pipesched import" import "${WORK}/garbage.csv")
expect(2 "cannot open" import "${WORK}/does_not_exist.csv")
