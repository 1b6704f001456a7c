#!/usr/bin/env bash
# Compile time a user feels (issue 15, item 6): one translation unit that runs N schedule
# configurations, built four ways, each with -O2:
#   table    only the schedules' lowered tables (S::valid): generation, lowering, verification
#   host     host::executor<S>::run for each (compiled plans, every rank's unrolled list)
#   host-thick  the same with a functor whose work (a small dense layer) sits in its member
#            templates, compiled once per step type
#   mpi      mpi::executor<S>::run for each (the same plans over MPI)
#   runtime  host::runtime_executor over make_schedule(...) for each (one plan for all)
# The functor forwards every pass to one external function through runtime_of(step), the
# thin-functor pattern of docs/03; nothing is optimised away.
#
#   bash bench/compile_executors.sh            (CXX, CXXFLAGS, P, M as in plan_compile_cost.sh)
#
# Prints a Markdown table: user seconds, peak resident memory of the compiler, .text size.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
include="${here}/../include"
cxx="${CXX:-g++}"
flags="${CXXFLAGS:--O2}"
p="${P:-4}"
m="${M:-8}"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
mpi_flags=$(mpicxx --showme:compile 2>/dev/null || true)

# type | registry name | chunks
schedules=(
  "gpipe<ranks<P>, microbatches<M>>|gpipe|0"
  "one_f_one_b<ranks<P>, microbatches<M>>|1f1b|0"
  "interleaved_1f1b<ranks<P>, microbatches<M>, chunks<2>>|interleaved|2"
  "zb_h1<ranks<P>, microbatches<M>>|zb-h1|0"
  "zb_h2<ranks<P>, microbatches<M>>|zb-h2|0"
  "zb_v<ranks<P>, microbatches<M>>|zb-v|0"
)

write_tu() { # kind file
  local kind=$1 file=$2 i=0 entry type name v
  {
    echo '#include <pipesched/pipesched.hpp>'
    [[ $kind == mpi ]] && echo '#include <pipesched/host/mpi.hpp>'
    echo '#include <vector>'
    echo 'using namespace pipesched;'
    echo 'void pass(runtime_step const&, io const&);'
    echo 'struct thin {'
    echo '  template <class Step> void forward(Step s, io const& x) { pass(runtime_of(s), x); }'
    echo '  template <class Step> void backward(Step s, io const& x) { pass(runtime_of(s), x); }'
    echo '  template <class Step> void backward_input(Step s, io const& x) { pass(runtime_of(s), x); }'
    echo '  template <class Step> void backward_weight(Step s, io const& x) { pass(runtime_of(s), x); }'
    echo '};'
    # thick: the same work written inside the member templates (a small dense layer per pass),
    # so it is compiled once per step type
    echo 'struct thick {'
    echo '  double w[16][16]{}, a[64][16]{};'
    echo '  template <class Step> void layer(Step, io const& x) {'
    echo '    double* out = static_cast<double*>(x.out.data); double const* in = static_cast<double const*>(x.in.data);'
    echo '    if (!out || !in) return;'
    echo '    for (int i = 0; i < 16; ++i) { double t = 0; for (int k = 0; k < 16; ++k) t += w[i][k] * in[k]; out[i] = t > 0 ? t : 0; a[Step::mb % 64][i] = out[i]; }'
    echo '  }'
    echo '  template <class Step> void forward(Step s, io const& x) { layer(s, x); }'
    echo '  template <class Step> void backward(Step s, io const& x) { layer(s, x); }'
    echo '  template <class Step> void backward_input(Step s, io const& x) { layer(s, x); }'
    echo '  template <class Step> void backward_weight(Step s, io const& x) { layer(s, x); }'
    echo '};'
    for entry in "${schedules[@]}"; do
      IFS='|' read -r type name v <<< "$entry"
      type=${type//P/$p}
      type=${type//M/$m}
      echo "using S$i = $type;"
      case $kind in
      table) echo "bool ok$i() { return S$i::valid; }" ;;
      host) echo "void run$i(std::vector<thin>& f) { host::executor<S$i> ex({.slot_bytes = 64}); ex.run(f); }" ;;
      host-thick) echo "void run$i(std::vector<thick>& f) { host::executor<S$i> ex({.slot_bytes = 128}); ex.run(f); }" ;;
      mpi) echo "void run$i(thin& f) { mpi::executor<S$i> ex(MPI_COMM_WORLD, {.slot_bytes = 64}); ex.run(f); }" ;;
      runtime)
        echo "void run$i(std::vector<thin>& f) {"
        echo "  host::runtime_executor ex(runtime_schedule(make_schedule(\"$name\", params{.p = $p, .m = $m, .v = $v})), {.slot_bytes = 64});"
        echo "  ex.run(f);"
        echo "}"
        ;;
      esac
      i=$((i + 1))
    done
  } > "$file"
}

echo "p = $p, m = $m, ${#schedules[@]} schedules in one unit, $cxx $flags"
echo
echo "| unit | user s | peak MB | .text KB |"
echo "|---|---|---|---|"
for kind in table host host-thick mpi runtime; do
  [[ $kind == mpi && -z $mpi_flags ]] && continue
  write_tu "$kind" "$work/$kind.cpp"
  extra=""
  [[ $kind == mpi ]] && extra=$mpi_flags
  # shellcheck disable=SC2086
  /usr/bin/time -o "$work/time.txt" -f '%U %M' "$cxx" -std=c++20 $flags -I"$include" $extra -c "$work/$kind.cpp" \
    -o "$work/$kind.o"
  read -r user kb < "$work/time.txt"
  text=$(size -A "$work/$kind.o" | awk '$1 ~ /^\.text/ {s += $2} END {print int(s / 1024)}')
  echo "| $kind | $user | $((kb / 1024)) | $text |"
done
