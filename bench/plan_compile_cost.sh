#!/usr/bin/env bash
# Compile time and object size of the plans of every rank, p = 8, m = 64 (v = 2 where the
# schedule has chunks), one translation unit per schedule, against a baseline that only
# builds the schedule's lowered table. The functors call an external function per pass so
# nothing is optimised away; the numbers are the plans' own cost.
#
#   bash bench/plan_compile_cost.sh [schedule...]     (default: every schedule found)
#   CXX=g++ CXXFLAGS="-O2" P=8 M=64 bash bench/plan_compile_cost.sh
#
# Prints a Markdown table: user seconds of the baseline and of the plans, the difference,
# the .text size of the plans' object and the number of actions of all ranks.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
include="${here}/../include"
cxx="${CXX:-g++}"
flags="${CXXFLAGS:--O2}"
p="${P:-8}"
m="${M:-64}"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# name | header | type (P and M are substituted)
catalog=(
  "gpipe|gpipe.hpp|gpipe<ranks<P>, microbatches<M>>"
  "1f1b|one_f_one_b.hpp|one_f_one_b<ranks<P>, microbatches<M>>"
  "interleaved|interleaved.hpp|interleaved_1f1b<ranks<P>, microbatches<M>, chunks<2>>"
  "zb-h1|zero_bubble.hpp|zb_h1<ranks<P>, microbatches<M>>"
  "zb-h2|zero_bubble.hpp|zb_h2<ranks<P>, microbatches<M>>"
  "zb-v|zb_v.hpp|zb_v<ranks<P>, microbatches<M>>"
  "v-half|v_shape.hpp|v_half<ranks<P>, microbatches<M>>"
  "v-min|v_shape.hpp|v_min<ranks<P>, microbatches<M>>"
)

want=("$@")
user_seconds() { # command... -> user CPU seconds
  /usr/bin/time -o "${work}/time.txt" -f '%U' "$@" >/dev/null 2>"${work}/stderr.txt" || {
    cat "${work}/stderr.txt" >&2
    return 1
  }
  tail -1 "${work}/time.txt"
}

echo "| schedule | actions (all ranks) | baseline s | with plans s | plans s | plans .text bytes | bytes/action |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for entry in "${catalog[@]}"; do
  IFS='|' read -r name header type <<<"${entry}"
  if ((${#want[@]})) && [[ ! " ${want[*]} " == *" ${name} "* ]]; then continue; fi
  [[ -f "${include}/pipesched/schedules/${header}" ]] || continue
  type="${type//<P>/<${p}>}"
  type="${type//<M>/<${m}>}"
  cat >"${work}/common.hpp" <<EOF
#include <pipesched/schedules/${header}>
#include <pipesched/plan/plan.hpp>
using namespace pipesched;
using S = ${type};
EOF
  cat >"${work}/base.cpp" <<EOF
#include "common.hpp"
static_assert(S::valid);
extern const unsigned long actions = [] { unsigned long n = 0; for (int r = 0; r < S::ranks; ++r) n += S::lowered.size(r); return n; }();
EOF
  cat >"${work}/plans.cpp" <<EOF
#include "common.hpp"
#include <utility>
extern "C" void payload(int kind, int stage, int mb, void const* in, void const* out, void const* aux);
struct functor {
  template <class St> static void call(io const& x) { payload(int(St::kind), St::stage, St::mb, x.in.data, x.out.data, x.aux.data); }
  template <class St> void forward(St, io const& x) { call<St>(x); }
  template <class St> void backward(St, io const& x) { call<St>(x); }
  template <class St> void backward_input(St, io const& x) { call<St>(x); }
  template <class St> void backward_weight(St, io const& x) { call<St>(x); }
};
struct transport {
  template <class St> void send(St, io const& x) { payload(int(St::kind), St::stage, St::peer, x.in.data, nullptr, nullptr); }
  template <class St> void recv(St, io const& x) { payload(int(St::kind), St::stage, St::peer, nullptr, x.out.data, nullptr); }
};
void run_rank(int rank, functor& f, transport& t, view const* slots) {
  [&]<int... R>(std::integer_sequence<int, R...>) {
    (void)((rank == R ? (plan<S, R>::run(f, t, slots), true) : false) || ...);
  }(std::make_integer_sequence<int, S::ranks>{});
}
EOF
  tb="$(user_seconds "${cxx}" -std=c++20 ${flags} -I"${include}" -I"${work}" -c "${work}/base.cpp" -o "${work}/base.o")"
  tp="$(user_seconds "${cxx}" -std=c++20 ${flags} -I"${include}" -I"${work}" -c "${work}/plans.cpp" -o "${work}/plans.o")"
  if [[ ! -s "${work}/plans.o" ]]; then
    echo "| ${name} | (failed to compile) | | | | | |"
    continue
  fi
  # the number of actions, read back from the baseline object's constant
  cat >"${work}/count.cpp" <<EOF
#include <cstdio>
extern const unsigned long actions;
int main() { std::printf("%lu", actions); }
EOF
  "${cxx}" -std=c++20 "${work}/count.cpp" "${work}/base.o" -o "${work}/count"
  n="$("${work}/count")"
  text="$(size -A "${work}/plans.o" | awk '$1 ~ /^\.text/ { s += $2 } END { print s }')"
  awk -v name="${name}" -v n="${n}" -v tb="${tb}" -v tp="${tp}" -v text="${text}" 'BEGIN {
    printf "| %s | %d | %.2f | %.2f | %.2f | %d | %.1f |\n", name, n, tb, tp, tp - tb, text, text / n }'
done
echo
echo "compiler: $("${cxx}" --version | head -1), flags: -std=c++20 ${flags}, p = ${p}, m = ${m}"
