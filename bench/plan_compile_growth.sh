#!/usr/bin/env bash
# How a compiled plan's build cost grows with the micro-batch count, and what one rank per
# translation unit buys: 1F1B at p = 8, m = 32 ... 512, g++ -O2, functors that call an
# external function per pass (nothing optimised away).
#
#   bash bench/plan_compile_growth.sh [m...]        (default: 32 64 128 256 512)
#
# Prints a Markdown table: actions of all ranks; one TU with all 8 ranks (user seconds, peak
# memory, .text bytes); one TU per rank (the slowest unit, and all units together).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
include="${here}/../include"
cxx="${CXX:-g++}"
flags="${CXXFLAGS:--O2}"
p=8
ms=("$@")
((${#ms[@]})) || ms=(32 64 128 256 512)
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

measure() { # file -> "user_seconds max_kb text_bytes"
  /usr/bin/time -o "${work}/time.txt" -f '%U %M' "${cxx}" -std=c++20 ${flags} -I"${include}" -c "$1" -o "${work}/out.o" \
    2>"${work}/stderr.txt" || { cat "${work}/stderr.txt" >&2; return 1; }
  local text
  text=$(size -A "${work}/out.o" | awk '$1 ~ /^\.text/ {s += $2} END {print s + 0}')
  echo "$(tail -1 "${work}/time.txt") ${text}"
}

functor='struct stage {
  template <class St> void forward(St, pipesched::io const& x) { ext(St::stage, St::mb, x.out.data); }
  template <class St> void backward(St, pipesched::io const& x) { ext(St::stage, St::mb, x.out.data); }
  template <class St> void send(St, pipesched::io const& x) { ext(St::stage, St::mb, x.in.data); }
  template <class St> void recv(St, pipesched::io const& x) { ext(St::stage, St::mb, x.out.data); }
};'

echo "| m | actions | all ranks in one TU: s | peak MiB | .text KiB | one rank per TU: slowest s | all units s |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for m in "${ms[@]}"; do
  {
    echo '#include <pipesched/plan/plan.hpp>'
    echo '#include <pipesched/schedules/one_f_one_b.hpp>'
    echo 'void ext(int, int, void*);'
    echo "using S = pipesched::one_f_one_b<pipesched::ranks<${p}>, pipesched::microbatches<${m}>>;"
    echo "${functor}"
  } >"${work}/common.hpp"
  {
    echo '#include "common.hpp"'
    echo 'void run_all(stage& f, pipesched::view const* const* v) {'
    for ((r = 0; r < p; ++r)); do echo "  pipesched::plan<S, ${r}>::run(f, f, v[${r}]);"; done
    echo '}'
  } >"${work}/all.cpp"
  read -r all_s all_kb all_text < <(measure "${work}/all.cpp")
  slowest=0
  total=0
  for ((r = 0; r < p; ++r)); do
    printf '#include "common.hpp"\nvoid run_%d(stage& f, pipesched::view const* v) { pipesched::plan<S, %d>::run(f, f, v); }\n' \
      "${r}" "${r}" >"${work}/rank${r}.cpp"
    read -r s _ _ < <(measure "${work}/rank${r}.cpp")
    total=$(awk -v a="${total}" -v b="${s}" 'BEGIN {print a + b}')
    slowest=$(awk -v a="${slowest}" -v b="${s}" 'BEGIN {print (b > a) ? b : a}')
  done
  actions=$((p * m * 2 + (p - 1) * m * 4))
  printf '| %d | %d | %s | %d | %d | %s | %s |\n' "${m}" "${actions}" "${all_s}" $((all_kb / 1024)) $((all_text / 1024)) \
    "${slowest}" "${total}"
done
