#!/usr/bin/env bash
# Compile time and peak compiler memory of one translation unit that generates, lowers and
# verifies every schedule type at compile time (bench/compile/all_schedules.cpp).
#   bench/schedules_compile_cost.sh [P M]      (default 8 32)
# Prints one line: wall seconds, peak resident memory of the compiler in MiB.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
p="${1:-8}" m="${2:-32}"
cxx="${CXX:-g++}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
/usr/bin/time -f "%e %M" -o "$tmp/time" "$cxx" -std=c++20 -O2 -I"$root/include" -DPIPESCHED_P="$p" -DPIPESCHED_M="$m" \
  -c "$root/bench/compile/all_schedules.cpp" -o "$tmp/all.o"
read -r secs kib < "$tmp/time"
printf 'all schedules, p = %s, m = %s, %s: %s s, %d MiB peak\n' "$p" "$m" "$("$cxx" --version | head -1)" "$secs" \
  "$((kib / 1024))"
