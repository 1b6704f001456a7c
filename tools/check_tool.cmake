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
expect(0 "\"makespan\":33,.*\"peak_memory\":\\[4,3,2,1\\],.*\"verified\":true" show --schedule 1f1b --ranks 4
       --microbatches 8 --json)
# reference: schedules.md, Cases (c = 0), row ZB-V: makespan 51, span 48
expect(0 "\"makespan\":51,\"max_rank_span\":48" show --schedule zb-v --ranks 4 --microbatches 8 --json)
# reference: schedules.md, Cases (c = 0), row "1F1B, c = 0.5": 41
expect(0 "\"makespan\":41" show --schedule 1f1b --ranks 4 --microbatches 8 --costs 1,1,1,0.5 --json)
expect(0 "\"schedule\":\"v-min\"" compare --ranks 4 --microbatches 8 --json)
# reference: schedules.md, memories at p = 8: V-Half ⌊(p+2)/2⌋ = 5 and V-Min ⌊(p+4)/3⌋ = 4 fit 6
# units; 1F1B, ZB-H1, ZB-V (p = 8), ZB-H2 (2p−1 to 2p), interleaved (rank 0 p + (p−1)/v) and GPipe
# (m) do not. Of the two, V-Half is the faster ("V-shape family": about half of 1F1B's bubble
# against V-Min's two thirds, and V-Min "degrades when F, B, W differ", as here)
expect(0 "^v-half" compare --ranks 8 --microbatches 24 --costs 1,2,1 --memory-budget 6 --best)
# closed form: the reference's 1F1B rule (schedules.md, 1F1B) for rank 0 by hand: warm-up
# min(p−1, m) = 3 forwards, then the pairs (F3, B0), (F4, B1), ...
expect(0 "^0F0,0F1,0F2,0F3,0B0,0F4,0B1" export --schedule 1f1b --ranks 4 --microbatches 8 --format csv)
# reference: schedules.md, Looped BFS: p = 4, m = 8, v = 2, F = B = W = 1 per chunk: makespan 57,
# memory 8 (closed form: every rank runs all its forwards first, so 8 on every rank)
expect(0 "\"makespan\":57,.*\"peak_memory\":\\[8,8,8,8\\],.*\"verified\":true" show --schedule looped-bfs
       --ranks 4 --microbatches 8 --chunks 2 --json)
# reference: schedules.md, Interleaved zero bubble: p = 4, m = 8, v = 2: makespan 51, memory 4 on
# every rank; F, B, W = 1, 2, 1: 70
expect(0 "\"makespan\":51,.*\"peak_memory\":\\[4,4,4,4\\],.*\"verified\":true" show --schedule interleaved-zb
       --ranks 4 --microbatches 8 --chunks 2 --json)
expect(0 "\"makespan\":70," show --schedule interleaved-zb --ranks 4 --microbatches 8 --costs 1,2,1 --json)
# closed form: the reference's Looped BFS rule by hand, rank 0 (stages 0 and 4): forwards of
# micro-batches 0..7 on stage 0, then on stage 4, then stage 4's backwards 7..0
expect(0 "^0F0,0F1,0F2,0F3,0F4,0F5,0F6,0F7,4F0,4F1,4F2,4F3,4F4,4F5,4F6,4F7,4B7,4B6" export --schedule looped-bfs
       --ranks 4 --microbatches 8 --chunks 2 --format csv)
# closed form: the reference's Interleaved zero bubble rule by hand at p = 2, m = 4, v = 2
# (derived in tests/cpu/schedules_interleaved_zb.cpp, p2.m4.v2.order), rank 0
expect(0 "^0F0,0F1,2F0,2F1,2I0,2W0,0F2,2I1,2W1,0F3,0I0,0W0,2F2,0I1,0W1,2F3,2I2,2W2,2I3,2W3,0I2,0W2,0I3,0W3\n"
       export --schedule interleaved-zb --ranks 2 --microbatches 4 --format csv)
expect(0 "traceEvents" export --schedule zb-h1 --ranks 4 --microbatches 8 --format chrome --transfers)
expect(0 "<svg" export --schedule v-half --ranks 4 --microbatches 8 --format svg)

# export, import back, same metrics
execute_process(COMMAND "${TOOL}" export --schedule zb-h2 --ranks 4 --microbatches 8 --format csv --transfers
                OUTPUT_FILE "${WORK}/zb-h2.csv" RESULT_VARIABLE rc)
expect(0 "\"verified\":true" import "${WORK}/zb-h2.csv" --json)

# routes: PyTorch's format sends every micro-batch through every stage. DualPipe's CSV is
# refused with a hint, and read back with --routes ascending: it verifies and simulates to the
# makespan show gives for the generated table (the two runs compared, no number written here)
execute_process(COMMAND "${TOOL}" export --schedule dualpipe --ranks 4 --microbatches 8 --format csv --transfers
                OUTPUT_FILE "${WORK}/dualpipe.csv" RESULT_VARIABLE rc)
expect(1 "fewer F cells.*--routes ascending" import "${WORK}/dualpipe.csv")
# Imports FILE with the import arguments before SHOW and checks that its makespan, buffer
# slots and fixed-slot makespan are those `show SHOW... --json` gives (no number written here)
function(expect_import_as_show file)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "IMPORT;SHOW")
  execute_process(COMMAND "${TOOL}" import "${file}" ${arg_IMPORT} --json OUTPUT_VARIABLE imported RESULT_VARIABLE rc)
  execute_process(COMMAND "${TOOL}" show ${arg_SHOW} --json OUTPUT_VARIABLE shown)
  if(NOT rc EQUAL 0)
    message(SEND_ERROR "import ${file} ${arg_IMPORT}: exit ${rc}\n${imported}")
    return()
  endif()
  foreach(key verified makespan slots slot_reuse_makespan)
    string(JSON got ERROR_VARIABLE bad GET "${imported}" ${key})
    string(JSON want ERROR_VARIABLE bad2 GET "${shown}" ${key})
    if(bad OR bad2 OR NOT got STREQUAL want)
      message(SEND_ERROR "import ${file} ${arg_IMPORT}: ${key} is '${got}', show ${arg_SHOW} gives '${want}'\n${imported}")
    endif()
  endforeach()
endfunction()
expect_import_as_show("${WORK}/dualpipe.csv" IMPORT --routes ascending SHOW --schedule dualpipe --ranks 4 --microbatches 8)
# a compute-only CSV is lowered as show lowers: the same slots
execute_process(COMMAND "${TOOL}" export --schedule zb-v --ranks 4 --microbatches 8 --format csv
                OUTPUT_FILE "${WORK}/zb-v.csv")
expect_import_as_show("${WORK}/zb-v.csv" SHOW --schedule zb-v --ranks 4 --microbatches 8)
# skip paths, layout return, with transfers: the routes file that export writes reads the table
# back (independent: with K = 3 of 6 stages and 2 micro-batches at most 2 x 2 = 4 of the 5
# skippable stages are visited, so a rank runs nothing and its row is blank)
execute_process(COMMAND "${TOOL}" export --schedule skip --ranks 6 --keep 3 --microbatches 2 --layout return
                        --format csv --transfers OUTPUT_FILE "${WORK}/skip.csv")
execute_process(COMMAND "${TOOL}" export --schedule skip --ranks 6 --keep 3 --microbatches 2 --layout return
                        --format routes OUTPUT_FILE "${WORK}/skip.routes")
expect(0 "\"ranks\":6,.*\"verified\":true" import "${WORK}/skip.csv" --routes "${WORK}/skip.routes" --ranks 6 --json)
expect(1 "blank line between rows.*--routes" import "${WORK}/skip.csv")
file(WRITE "${WORK}/bad.routes" "0 1 6\n0 x\n")
expect(1 "--routes: line 2: .*stage numbers only" import "${WORK}/skip.csv" --routes "${WORK}/bad.routes")
expect(2 "--routes: cannot open" import "${WORK}/skip.csv" --routes "${WORK}/no.routes")
expect(2 "--ranks must be between" import "${WORK}/skip.csv" --routes ascending --ranks 0)

# bad arguments: exit 2 and a message
expect(2 "unknown schedule 'nope'" show --schedule nope --ranks 4 --microbatches 8)
expect(2 "--ranks needs an integer" show --schedule 1f1b --ranks four --microbatches 8)
expect(2 "--ranks must be between" show --schedule 1f1b --ranks 0 --microbatches 8)
expect(2 "--microbatches M is required" show --schedule 1f1b --ranks 4)
expect(2 "--costs takes F,B,W or F,B,W,C" show --schedule 1f1b --ranks 4 --microbatches 8 --costs 1,2)
expect(2 "non-negative number" show --schedule 1f1b --ranks 4 --microbatches 8 --costs 1,-2,1)
# JSON has no infinity: a makespan that overflows is written null (and the output parses)
# closed form: 1F1B's (m+p−1)(F+B+W) = 3 × 3e308 (reference formula, schedules.md, 1F1B) is
# beyond the largest double, about 1.8e308, so the makespan is infinite
expect_json(makespan null show --schedule 1f1b --ranks 2 --microbatches 2 --costs 1e308,1e308,1e308 --json)
# reference: schedules.md, Cases (c = 0), row 1F1B 1,1,1: makespan 33
expect_json(makespan 33 show --schedule 1f1b --ranks 4 --microbatches 8 --json)
# slot reuse (fixed slots, as on a GPU) and one extra slot per rank: regression values of the
# simulator (tests/cpu/analysis_slot_reuse.cpp has the same case)
expect_json(slot_reuse_makespan 85 show --schedule 1f1b --ranks 4 --microbatches 16 --costs 1,1,1,0.5 --json)
expect_json(slot_reuse_makespan 71 show --schedule 1f1b --ranks 4 --microbatches 16 --costs 1,1,1,0.5
            --extra-slots 1 --json)
expect(2 "extra-slots must be between 0 and 64" show --schedule 1f1b --ranks 4 --microbatches 8 --extra-slots 65)
expect(0 "makespan inf" show --schedule 1f1b --ranks 2 --microbatches 2 --costs 1e308,1e308,1e308)
expect(2 "unknown option --frobnicate" compare --ranks 4 --microbatches 8 --frobnicate)
expect(2 "holds one chunk per rank" show --schedule 1f1b --ranks 4 --microbatches 8 --chunks 2)
expect(2 "unknown --format" export --schedule 1f1b --ranks 4 --microbatches 8 --format png)
expect(2 "unknown command" frobnicate)
# reference: the least memory of any schedule at p = 8 is V-Min's ⌊(p+4)/3⌋ = 4 units (schedules.md,
# "V-shape family"), above the budget of 1
expect(1 "no schedule fits" compare --ranks 8 --microbatches 24 --memory-budget 1 --best)

# bad files: exit non-zero with a message naming the row and cell, never a crash
file(WRITE "${WORK}/bad_cell.csv" "0F0,0F1,0B0,0B1\n1F0,1X0\n")
expect(1 "rank 1, position 1" import "${WORK}/bad_cell.csv") # independent: row 1, cell 1 is 1X0
file(WRITE "${WORK}/cyclic.csv" "0F0,0B0,0F1,0B1\n1F1,1F0,1B0,1B1\n")
expect(1 "wait on each other in a cycle|cycle" import "${WORK}/cyclic.csv")
string(ASCII 1 2 200 255 7 nul)
file(WRITE "${WORK}/garbage.csv" "${nul}${nul},,3F,,99999999999999999999F1\n")
expect(1 "pipesched import" import "${WORK}/garbage.csv")
expect(2 "cannot open" import "${WORK}/does_not_exist.csv")

# ---- issue 15, item 5: the tool never surprises ----
# Runs the tool and fails when its output matches `regex` (what must not be printed).
function(expect_lacks code regex)
  execute_process(COMMAND "${TOOL}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  string(JOIN " " args ${ARGN})
  if(NOT "${rc}" STREQUAL "${code}")
    message(SEND_ERROR "pipesched ${args}: exit ${rc}, expected ${code}\n${out}${err}")
  elseif("${out}${err}" MATCHES "${regex}")
    message(SEND_ERROR "pipesched ${args}: output matches '${regex}', which it must not\n${out}${err}")
  endif()
endfunction()

# import of what is not a readable file: exit 2 with a message, as other bad arguments
expect(2 "is a directory" import "${WORK}")
if(EXISTS /proc/self/mem) # opens, but reading at offset 0 fails (EIO)
  expect(2 "cannot read '/proc/self/mem'" import /proc/self/mem)
endif()
expect(2 "cannot open" import "${WORK}/does_not_exist.csv")
expect(2 "import takes one FILE" import "${WORK}/zb-h2.csv" "${WORK}/zb-h2.csv")

# absurd sizes: refused at once with the limit stated (not bad_alloc after seconds)
expect(2 "too large: --ranks 4096 x 1 chunks x --microbatches 65535.*limit is 1048576" show --schedule 1f1b
       --ranks 4096 --microbatches 65535)
expect(2 "too large: --ranks 512 x 2 chunks x --microbatches 4096.*limit is 1048576" show --schedule zb-v
       --ranks 512 --microbatches 4096)
expect(2 "too large.*limit is 1048576" export --schedule interleaved --ranks 4096 --microbatches 65535 --format csv)
expect(2 "too large: compare --ranks 4096 x --microbatches 65535.*limit is 262144" compare --ranks 4096
       --microbatches 65535)
expect(2 "too large.*limits are 2048 and 65536" paths --ranks 4095 --keep 2 --microbatches 65535)
expect(2 "too large.*limits are 2048 and 65536" paths --ranks 64 --keep 32 --microbatches 32)
expect(2 "too large.*limits are 65536 and 8388608" paths --ranks 1024 --keep 512 --microbatches 1024 --search 0)
expect(2 "too large" export --schedule skip --ranks 4095 --keep 2 --microbatches 65535 --format csv)
# the order search (--order-search): bounded, skip only, within the local search's limits
expect(0 "makespan .*verified: yes" paths --ranks 8 --keep 6 --microbatches 16 --memory 6 --layout return --order-search 2)
expect(2 "--order-search must be between 0 and 100" paths --ranks 8 --keep 6 --microbatches 16 --order-search 101)
expect(2 "--order-search is for --schedule skip only" export --schedule 1f1b --ranks 4 --microbatches 8 --order-search 1)
expect(2 "too large.*limits are 2048 and 65536" paths --ranks 64 --keep 32 --microbatches 32 --search 0 --order-search 1)
expect(0 "ranks x chunks x micro-batches at most 1048576" --help)
# just inside the limits: accepted (regression values of the simulator: 1F1B's (m+p−1)·3 = 3·(1024+1023))
expect_json(makespan 6141 show --schedule 1f1b --ranks 1024 --microbatches 1024 --json)

# CSV import: a UTF-8 byte-order mark is accepted; a blank line between rows and an
# unterminated quote are named with their line
file(READ "${WORK}/zb-h2.csv" zbh2)
string(ASCII 239 187 191 bom)
file(WRITE "${WORK}/bom.csv" "${bom}${zbh2}")
expect(0 "\"verified\":true" import "${WORK}/bom.csv" --json)
file(WRITE "${WORK}/blank.csv" "0F0,0F1,0B0,0B1\n\n1F0,1F1,1B0,1B1\n\n")
expect(1 "line 2: blank line between rows" import "${WORK}/blank.csv")
file(WRITE "${WORK}/blank_crlf.csv" "0F0,0F1,0B0,0B1\r\n  \r\n1F0,1F1,1B0,1B1\r\n")
expect(1 "line 2: blank line between rows" import "${WORK}/blank_crlf.csv")
file(WRITE "${WORK}/quote.csv" "0F0,0F1,0B0,0B1\n1F0,\"1F1,1B0,1B1\n")
expect(1 "line 2, column 5: unterminated quote" import "${WORK}/quote.csv")
file(WRITE "${WORK}/quoted.csv" "\"0F0\",\"1F0\",\"1B0\",\"0B0\"\n")
expect(0 "verified: yes" import "${WORK}/quoted.csv") # independent: one row, two stages, balanced quotes
expect(1 "line 2, cell 2: .*rank 1, position 1" import "${WORK}/bad_cell.csv")

# --costs: any finite non-negative number (subnormal, leading +, bare fraction, exponent, blanks)
# closed form: 1F1B's (m+p−1)(F+B+W) = 11 × (0 + 1 + 0.5) = 16.5 (F = 4.9e-324 adds nothing)
expect_json(makespan 16.5 show --schedule 1f1b --ranks 4 --microbatches 8 --costs 4.9e-324,+1,.5 --json)
# closed form: 11 × (1e-400 → 0, + 1E0 + 0.5e0) = 16.5
expect_json(makespan 16.5 show --schedule 1f1b --ranks 4 --microbatches 8 "--costs= 1e-400, 1E0 ,0.5e0" --json)
foreach(bad inf nan 1e400 -0.5 0x 1,,1 "")
  expect(2 "--costs (needs a finite non-negative number|takes F,B,W)" show --schedule 1f1b --ranks 4
         --microbatches 8 "--costs=1,${bad},1")
endforeach()
expect(2 "--costs: F \\+ B \\+ W must be positive" show --schedule 1f1b --ranks 4 --microbatches 8 --costs 0,0,0)

# messages speak in flags, not C++ parameters
expect(2 "use --chunks 2 or drop it" show --schedule zb-v --ranks 4 --microbatches 8 --chunks 3)
expect_lacks(2 "chunks<|group_size<|stages<" show --schedule zb-v --ranks 4 --microbatches 8 --chunks 3)
expect(2 "drop --chunks, or use --schedule interleaved" show --schedule 1f1b --ranks 4 --microbatches 8 --chunks 2)
expect(2 "--group must be between 1 and --microbatches" show --schedule interleaved --ranks 4 --microbatches 8
       --group 9)
expect_lacks(2 "[a-z_]<[A-Z]" show --schedule interleaved --ranks 4 --microbatches 8 --group 9)

# compare --chunks: the interleaved families at the chunk counts given (closed form: 4 ranks x 4
# chunks = 16 model stages); a bad chunk count is a usage error
expect(0 "\"schedule\":\"interleaved\",\"ranks\":4,\"model_stages\":16," compare --ranks 4 --microbatches 8
       --chunks 2,4 --json)
expect(0 "\"schedule\":\"looped-bfs\",\"ranks\":4,\"model_stages\":12," compare --ranks 4 --microbatches 8
       --chunks 3 --json)
expect(2 "--chunks must be between 2 and 64" compare --ranks 4 --microbatches 8 --chunks 1)

# compare shows DualPipe (p, m even) with its two parameter copies, memory in the same unit as
# the other rows: p + 1 stage-activations (reference: schedules.md, DualPipe, "PP + 1"), and
# never picks it; it is left out when p is odd (closed form: DualPipe needs p and m even)
expect(0 "\"schedule\":\"dualpipe\",\"ranks\":4,[^}]*\"peak_memory\":\\[5,5,5,5\\][^}]*\"parameter_copies\":2}"
       compare --ranks 4 --microbatches 8 --json)
expect(0 "\"schedule\":\"zb-v\"[^}]*\"parameter_copies\":1}" compare --ranks 4 --microbatches 8 --json)
expect(0 "dualpipe  +2 .*\\(2x parameters; not chosen\\)" compare --ranks 4 --microbatches 8)
expect_lacks(0 "dualpipe " compare --ranks 3 --microbatches 8)
expect_lacks(0 "^dualpipe\n" compare --ranks 4 --microbatches 16 --costs 1,1,1,0,1 --best)

# docs/02_analysis.md: compare --json writes fits_budget only with --memory-budget
expect_lacks(0 "fits_budget" compare --ranks 4 --microbatches 8 --json)
expect(0 "\"fits_budget\":true" compare --ranks 4 --microbatches 8 --memory-budget 100 --json)

# a repeated flag is an error
expect(2 "--ranks given more than once" show --schedule 1f1b --ranks 4 --ranks 5 --microbatches 8)
# --stages is the former name of --ranks (docs/00_quickstart.md): it still works, it is the
# same option (given with --ranks: twice), and the JSON counts ranks and model stages apart
expect(0 "\"makespan\":33," show --schedule 1f1b --stages 4 --microbatches 8 --json)
expect(0 "^(zb-v|zb-h2|zb-h1|v-half|v-min|interleaved|interleaved-zb|looped-bfs|dualpipe-v|1f1b|gpipe)\n" compare --stages 4
       --microbatches 8 --best)
expect(2 "--ranks given more than once \\(--stages is its former name" show --schedule 1f1b --ranks 4 --stages 4
       --microbatches 8)
# closed form: interleaved with 2 chunks on 4 ranks has 4 x 2 = 8 model stages
expect(0 "\"ranks\":4,\"model_stages\":8,\"stages\":4," show --schedule interleaved --ranks 4 --microbatches 8
       --chunks 2 --json)
expect(2 "--json given more than once" compare --ranks 4 --microbatches 8 --json --json)
expect(2 "--costs given more than once" import "${WORK}/zb-h2.csv" --costs 1,1,1 --costs=2,2,2)

# an invalid import prints what is wrong and no metrics
expect_lacks(1 "makespan|peak memory|rank 0:|verified: NO" import "${WORK}/cyclic.csv")
expect_lacks(1 "\"makespan\"|\"peak_memory\"" import "${WORK}/cyclic.csv" --json)
expect(1 "^\\{\"verified\":false,\"error\":\"not a valid schedule: .*cycle" import "${WORK}/cyclic.csv" --json)

# the command line (CLI11): help, the = form, unknown and stray arguments, the docs' command lines
expect(0 "usage: pipesched paths" paths --help)
expect(0 "usage: pipesched list" list --help)
expect(0 "commands:" help)
expect(2 "commands:" )
# docs/02_analysis.md's comparison: zb-v is the fastest, with peak memory 8
expect(0 "^zb-v\n" compare --ranks=8 --microbatches=24 --costs=1,2,1 --best --memory-budget 8)
expect(2 "unknown option --frobnicate" show --schedule 1f1b --ranks 4 --microbatches 8 --frobnicate=3)
expect(2 "show takes no argument 'extra'" show --schedule 1f1b --ranks 4 --microbatches 8 extra)
expect(2 "unknown option --schedule" compare --schedule 1f1b --ranks 4 --microbatches 8)
expect(0 "^gpipe\t" list)
# docs/00_quickstart.md, docs/02_analysis.md, docs/04_cuda.md, docs/05_skip_paths.md
expect(0 "verified: yes" show --schedule 1f1b --ranks 4 --microbatches 8 --no-color)
# docs/02_analysis.md: "fastest: zb-v (makespan 103, peak memory 8)"
expect(0 "fastest: zb-v \\(makespan 103, peak memory 8\\)" compare --ranks 8 --microbatches 24 --costs 1,2,1)
expect(0 "makespan 85" show --schedule 1f1b --ranks 4 --microbatches 16 --costs 1,1,1,0.5 --no-color)
expect(0 "makespan 71" show --schedule 1f1b --ranks 4 --microbatches 16 --costs 1,1,1,0.5 --extra-slots 1 --no-color)
expect(0 "<svg" export --schedule skip --ranks 6 --keep 4 --microbatches 8 --format svg)
expect(0 "verified: yes" paths --ranks 6 --keep 4 --microbatches 8)
expect(0 "^0F0,0F1" export --schedule skip --ranks 6 --keep 4 --microbatches 8 --memory 3 --format csv)
# import draws what it reads (a table that verifies), as export draws what it builds
expect(0 "<svg.*<title>zb-h2.csv</title>" import "${WORK}/zb-h2.csv" --format svg)
expect(0 "<title>DualPipe read back</title>" import "${WORK}/dualpipe.csv" --routes ascending --format svg
       --title "DualPipe read back")
expect(0 "traceEvents" import "${WORK}/zb-h2.csv" --format chrome)
expect(0 "rank 0 F0" import "${WORK}/zb-h2.csv" --format text) # independent: ZB-H2's rank 0 starts with F0
expect(2 "unknown --format 'png'" import "${WORK}/zb-h2.csv" --format png)
expect(2 "--format and --json" import "${WORK}/zb-h2.csv" --format svg --json)
expect(2 "--title is for --format svg" import "${WORK}/zb-h2.csv" --title T)
expect_lacks(1 "<svg" import "${WORK}/cyclic.csv" --format svg)

