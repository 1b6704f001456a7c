#!/usr/bin/env bash
# scripts/gpu-check with a build-prebuilt/ folder, on a machine without a GPU: a fake
# nvidia-smi says there is one, and stand-in programs take the place of the GPU programs. Shows
# that gpu-check runs the carried programs through ctest at their built path, leaves out (and
# names) tests whose program is missing here (mpiexec), runs the NCCL tests after the
# benchmarks, runs only the parts and tests asked for (GPU_CHECK_PARTS, GPU_CHECK_TESTS), and
# builds instead when the programs were built for another card or lack a library here.
#   gpu_check_prebuilt.sh <source dir> <scratch dir>
set -euo pipefail
src="$1"
tmp="$2"
rm -rf "$tmp"
mkdir -p "$tmp/root/scripts" "$tmp/bin"
cp "$src/scripts/gpu-check" "$src/scripts/common.sh" "$tmp/root/scripts/"
export GIT_CEILING_DIRECTORIES="$tmp"
fail() { echo "FAILED: $*"; exit 1; }

# the fake card: its compute capability comes from $FAKE_CAP
cat > "$tmp/bin/nvidia-smi" <<'SH'
#!/bin/sh
case "$*" in
  -L) echo "GPU 0: Fake H200 (UUID: GPU-0)" ;;
  *compute_cap*) echo "${FAKE_CAP:-9.0}" ;;
  *name*) echo "Fake H200, 580.00, 143771 MiB" ;;
esac
SH
chmod +x "$tmp/bin/nvidia-smi"
export PATH="$tmp/bin:$PATH"

# the carried folder, as scripts/gpu-prebuild packs it (built at $built)
pre="$tmp/root/build-prebuilt"
built="$tmp/built-at"
mkdir -p "$pre/tests" "$pre/bench" "$pre/examples"
program() { printf '#!/bin/sh\n%s\n' "$2" > "$pre/$1"; chmod +x "$pre/$1"; }
program tests/test_gpu_ok "echo \"\$0\" >> '$tmp/ran'; echo gpu >> '$tmp/order'"
program tests/test_gpu_skip 'exit 77'
program tests/test_nccl_ok "echo nccl >> '$tmp/order'"
program examples/example_02_cuda_mlp 'echo "losses and weights agree"'
program bench/bench_cuda_schedules 'echo "summary cuda schedules"'
program bench/bench_gpu_persistent 'echo "summary persistent"'
program bench/bench_cuda_stream "echo 'summary stream'; echo bench >> '$tmp/order'"
printf 'subdirs("tests")\nsubdirs("bench")\nsubdirs("examples")\n' > "$pre/CTestTestfile.cmake"
cat > "$pre/tests/CTestTestfile.cmake" <<CT
add_test([=[gpu.ok]=] "$built/tests/test_gpu_ok")
set_tests_properties([=[gpu.ok]=] PROPERTIES LABELS "gpu" SKIP_RETURN_CODE "77")
add_test([=[gpu.skip]=] "$built/tests/test_gpu_skip")
set_tests_properties([=[gpu.skip]=] PROPERTIES LABELS "gpu" SKIP_RETURN_CODE "77")
add_test([=[nccl.needs_mpi]=] "$tmp/no-such-mpiexec" "-n" "2" "$built/tests/test_gpu_ok")
set_tests_properties([=[nccl.needs_mpi]=] PROPERTIES LABELS "gpu;nccl" SKIP_RETURN_CODE "77")
add_test([=[nccl.ok]=] "$built/tests/test_nccl_ok")
set_tests_properties([=[nccl.ok]=] PROPERTIES LABELS "gpu;nccl" SKIP_RETURN_CODE "77")
add_test([=[cpu.other]=] "/bin/false")
set_tests_properties([=[cpu.other]=] PROPERTIES LABELS "cpu")
CT
: > "$pre/bench/CTestTestfile.cmake"
: > "$pre/examples/CTestTestfile.cmake"
printf 'path=%s\ncompute_cap=9.0\ncommit=abc123\n' "$built" > "$pre/PREBUILT"

# 1. the carried programs run, from the path they were built at
OUT="$tmp/out1" bash "$tmp/root/scripts/gpu-check" > "$tmp/log1" 2>&1 || { rc=$?; cat "$tmp/log1"; fail "gpu-check exited $rc with build-prebuilt/"; }
grep -q "^build:     prebuilt at abc123, exit 0" "$tmp/log1" || fail "summary does not name the prebuilt commit"
grep -q "^not run:   nccl.needs_mpi$" "$tmp/log1" || fail "the test without its mpiexec is not named"
grep -q "^gpu tests: 100% tests passed, 0 tests failed out of 2 (exit 0)" "$tmp/log1" || fail "ctest did not run exactly the two runnable gpu tests"
grep -q "^skipped:   1 (gpu.skip )" "$tmp/log1" || fail "the skipped test is not named"
[[ "$(cat "$tmp/ran")" == "$built/tests/test_gpu_ok" ]] || fail "the program did not run once, at its built path"
[[ -L $built ]] || fail "the built path is not a link to build-prebuilt/"
grep -q "^stream:    summary stream (exit 0)" "$tmp/log1" || fail "benchmarks not run from build-prebuilt/"
grep -q "^nccl:      100% tests passed, 0 tests failed out of 1 (exit 0)" "$tmp/log1" || fail "the runnable nccl test did not run on its own"
[[ "$(tr '\n' ' ' < "$tmp/order")" == "gpu bench nccl " ]] || fail "not gpu tests, then benchmarks, then nccl tests: $(cat "$tmp/order")"

# 1b. a rerun of some parts and tests only
rm -f "$tmp/order"
GPU_CHECK_PARTS="tests nccl" GPU_CHECK_TESTS='skip|nccl' OUT="$tmp/out1b" bash "$tmp/root/scripts/gpu-check" > "$tmp/log1b" 2>&1 ||
  { rc=$?; cat "$tmp/log1b"; fail "gpu-check exited $rc for a rerun of some parts"; }
grep -q "^gpu tests: 100% tests passed, 0 tests failed out of 1 (exit 0)" "$tmp/log1b" || fail "GPU_CHECK_TESTS did not pick the one gpu test"
grep -q "^skipped:   1 (gpu.skip )" "$tmp/log1b" || fail "the picked test is not the skipped one"
grep -q "^example:   (not asked for) (exit 0)" "$tmp/log1b" || fail "the example ran, not asked for"
grep -q "^stream:    (not asked for) (exit 0)" "$tmp/log1b" || fail "a benchmark ran, not asked for"
[[ "$(tr '\n' ' ' < "$tmp/order")" == "nccl " ]] || fail "a rerun of tests and nccl ran: $(cat "$tmp/order")"

# 2. built for another card: gpu-check builds instead (this scratch tree has no CMakeLists,
#    so the build fails, and gpu-check says so)
FAKE_CAP=8.0 OUT="$tmp/out2" bash "$tmp/root/scripts/gpu-check" > "$tmp/log2" 2>&1 && fail "gpu-check passed with programs for another card"
grep -q "build-prebuilt/ is for compute capability 9.0, not 8.0: building here" "$tmp/log2" || { cat "$tmp/log2"; fail "no message for another card"; }
grep -q "^build:     exit [1-9]" "$tmp/log2" || fail "the failed build is not in the summary"

# 3. a program that lacks a library here: gpu-check builds instead and names it
if command -v cc >/dev/null 2>&1; then
  echo 'int pipesched_missing(void) { return 0; }' > "$tmp/lib.c"
  echo 'int pipesched_missing(void); int main(void) { return pipesched_missing(); }' > "$tmp/main.c"
  cc -shared -fPIC -o "$tmp/libpipeschedgone.so" "$tmp/lib.c"
  cc -o "$pre/tests/test_gpu_needs_lib" "$tmp/main.c" -L"$tmp" -lpipeschedgone
  rm "$tmp/libpipeschedgone.so"
  OUT="$tmp/out3" bash "$tmp/root/scripts/gpu-check" > "$tmp/log3" 2>&1 && fail "gpu-check passed with a program that cannot load"
  grep -q "lack libraries here (test_gpu_needs_lib: libpipeschedgone.so" "$tmp/log3" || { cat "$tmp/log3"; fail "the missing library is not named"; }
fi
echo "gpu-check with build-prebuilt/: OK"
