#!/usr/bin/env bash
# bench/compare/run.sh: pipesched vs torch.distributed.pipelining, side by side (README.md).
#
#   bash bench/compare/run.sh            # from anywhere; WARMUP=20 ITERS=100 by default
#
# (a) makes bench/compare/.venv and installs PyTorch into it when missing (PyTorch is not a
#     dependency of pipesched: this benchmark only), (b) compiles the pipesched side with
#     mpicxx into bench/compare/_work/, (c) runs both sides, (d) prints one table.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV="$HERE/.venv"
WORK="$HERE/_work"
export WARMUP=${WARMUP:-20} ITERS=${ITERS:-100}
MPIRUN=(mpirun --allow-run-as-root --oversubscribe -np 4)
start=$(date +%s)

# (a) PyTorch in a virtual environment of its own.
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "== installing PyTorch (CPU wheel first) into $VENV"
  # numpy: torch.distributed needs it to exchange the stages' tensor shapes.
  "$VENV/bin/pip" install --quiet torch numpy --index-url https://download.pytorch.org/whl/cpu ||
    "$VENV/bin/pip" install --quiet torch numpy || true
  if ! "$VENV/bin/python" -c 'import torch, numpy' >/dev/null 2>&1; then
    echo "run.sh: PyTorch could not be installed into $VENV (pip's error is above)" >&2
    exit 1
  fi
fi
TORCH_VERSION=$("$VENV/bin/python" -W ignore -c 'import torch; print(torch.__version__)')

# (b) The pipesched side: one source, built for host threads and for MPI.
mkdir -p "$WORK"
rm -f "$WORK"/*.txt* "$WORK"/*.log "$WORK"/*.err "$WORK"/*.tmp
CXX=(mpicxx -std=c++20 -O2 -I"$REPO/include")
echo "== compiling the pipesched side (${CXX[*]})"
"${CXX[@]}" "$HERE/pipesched_bench.cpp" -o "$WORK/bench_threads"
"${CXX[@]}" -DBENCH_MPI "$HERE/pipesched_bench.cpp" -o "$WORK/bench_mpi"

# (c) Run both sides, one after the other. The machine may be shared: before each side wait
#     (at most QUIET_WAIT s) until other processes are idle, measure how much CPU they took
#     while it ran (busy time in /proc/stat minus this script's children's, from `times`),
#     run it again when that was more than 0.1 core (ATTEMPTS in all), keep the quietest
#     attempt, and let the table say when a side was disturbed.
QUIET_WAIT=${QUIET_WAIT:-180}
HZ=$(getconf CLK_TCK)
busy_s() { awk -v hz="$HZ" '/^cpu /{printf "%.3f", ($2+$3+$4+$7+$8)/hz}' /proc/stat; }
children_s() { # CHILDREN=user + system seconds of the children this shell has waited for
  times >"$WORK/times.tmp" # in this shell, not in a $(...) subshell, which has its own children
  CHILDREN=$(tail -n 1 "$WORK/times.tmp" |
    awk '{t=0; for(i=1;i<=2;i++){split($i,a,"m"); sub("s","",a[2]); t+=a[1]*60+a[2]} printf "%.3f", t}')
}
wait_quiet() { # until other processes take less than 0.1 core over one second (QUIET_WAIT s at most)
  local waited=0 b0 b1
  while [ "$waited" -lt "$QUIET_WAIT" ]; do
    b0=$(busy_s)
    sleep 1
    b1=$(busy_s)
    if awk -v a="$b0" -v b="$b1" 'BEGIN { exit !(b - a < 0.1) }'; then return 0; fi
    if [ "$waited" -eq 0 ]; then echo "   (other processes are using the CPU: waiting up to ${QUIET_WAIT} s)"; fi
    waited=$((waited + 1))
  done
}
: >"$WORK/load.txt"
ATTEMPTS=${ATTEMPTS:-3}
side() { # side NAME OUTFILE COMMAND...: run one side, keep its output, record the others' CPU;
  # when other processes took more than 0.1 core, run it again (ATTEMPTS in all) and keep
  # the quietest attempt.
  local name=$1 out=$2
  shift 2
  local k rc best_k=0 best_load=999 b0 c0 t0 b1 t1 load
  for ((k = 1; k <= ATTEMPTS; k++)); do
    wait_quiet
    rc=0
    children_s
    c0=$CHILDREN b0=$(busy_s) t0=$(date +%s.%N)
    "$@" >"$out.$k" 2>"$out.$k.log" || rc=$?
    b1=$(busy_s) t1=$(date +%s.%N)
    children_s
    load=$(awk -v b="$b0" -v B="$b1" -v c="$c0" -v C="$CHILDREN" -v t="$t0" -v T="$t1" 'BEGIN {
      f = (B - b) - (C - c); if (f < 0) f = 0; printf "%.2f %.1f", f / (T - t), T - t }')
    if [ "$rc" -ne 0 ]; then
      echo "   $name failed (exit $rc); the last lines of $out.$k.log:"
      tail -n 20 "$out.$k.log"
      break
    fi
    if [ "$rc" -eq 0 ] && awk -v a="${load% *}" -v b="$best_load" 'BEGIN { exit !(a < b) }'; then
      best_k=$k best_load=${load% *}
      printf 'LOAD {"side": "%s", "wall_s": %s, "other_cores": %s, "attempt": %d}\n' \
        "$name" "${load#* }" "${load% *}" "$k" >"$out.load"
    fi
    if [ "$rc" -eq 0 ] && awk -v a="${load% *}" 'BEGIN { exit !(a <= 0.1) }'; then break; fi
    if [ "$k" -lt "$ATTEMPTS" ]; then
      echo "   other processes took ${load% *} cores during $name: running it again"
    fi
  done
  if [ "$best_k" -eq 0 ]; then return 0; fi # it failed: no result, the table says so
  cp "$out.$best_k" "$out"
  cat "$out.load" >>"$WORK/load.txt"
  grep -E '^(RESULT|MICRO)' "$out" || true
}

echo "== one stage pass alone"
side "c++ micro" "$WORK/micro_cpp.txt" "$WORK/bench_threads" --micro
side "torch micro" "$WORK/micro_torch.txt" "$VENV/bin/python" -W ignore "$HERE/torch_pipe.py" --micro
echo "== pipesched, host threads"
side "pipesched threads" "$WORK/pipesched_threads.txt" "$WORK/bench_threads"
echo "== pipesched, MPI (${MPIRUN[*]})"
side "pipesched mpi" "$WORK/pipesched_mpi.txt" "${MPIRUN[@]}" "$WORK/bench_mpi"
echo "== torch.distributed.pipelining (torchrun --standalone --nproc-per-node 4, gloo)"
side "torch" "$WORK/torch.txt" "$VENV/bin/torchrun" --standalone --nproc-per-node 4 "$HERE/torch_pipe.py"

# (d) One table.
echo
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1);" \
  "torch $TORCH_VERSION; $(mpirun --version 2>/dev/null | head -n 1); WARMUP=$WARMUP ITERS=$ITERS"
status=0
python3 "$HERE/report.py" "$WORK"/micro_cpp.txt "$WORK"/micro_torch.txt "$WORK"/pipesched_threads.txt \
  "$WORK"/pipesched_mpi.txt "$WORK"/torch.txt "$WORK"/load.txt || status=$?
echo "run.sh took $(($(date +%s) - start)) s"
exit $status
