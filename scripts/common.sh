# Shared by scripts/demo and scripts/test (sourced, not run).
# Installs what a fresh Debian machine lacks, finds nvcc, configures and builds a preset.

# Debian packages the build needs; each is installed only when dpkg does not list it.
PIPESCHED_PACKAGES=(cmake g++ ninja-build doctest-dev nlohmann-json3-dev libcli11-dev libbenchmark-dev libopenmpi-dev openmpi-bin)

pipesched_log() { printf '[pipesched] %s\n' "$*" >&2; }

pipesched_ensure_packages() {
  local missing=() p
  for p in "${PIPESCHED_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
      missing+=("$p")
    fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    pipesched_log "missing packages: ${missing[*]} (no apt-get here: install them by hand)"
    return 1
  fi
  if [[ $(id -u) -ne 0 ]]; then
    pipesched_log "missing packages: ${missing[*]}"
    pipesched_log "run this script as root, or first: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    return 1
  fi
  pipesched_log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# nvcc is optional: the default preset turns the CUDA parts on when CMake finds it.
pipesched_find_cuda() {
  if [[ -z ${CUDACXX:-} ]] && ! command -v nvcc >/dev/null 2>&1; then
    local d
    for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
      if [[ -x $d/nvcc ]]; then
        export PATH="$d:$PATH"
        export CUDACXX="$d/nvcc"
        break
      fi
    done
  fi
  if command -v nvcc >/dev/null 2>&1 || [[ -n ${CUDACXX:-} ]]; then
    pipesched_log "nvcc: ${CUDACXX:-$(command -v nvcc)}"
  else
    pipesched_log "nvcc not found: building without the CUDA parts"
  fi
}

# True when a GPU is visible (nvidia-smi, or the driver's device nodes where it is missing).
pipesched_has_gpu() {
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L 2>/dev/null | grep -q '^GPU'
  else
    compgen -G '/dev/nvidia[0-9]*' >/dev/null
  fi
}

pipesched_jobs() { nproc 2>/dev/null || echo 2; }

# pipesched_build <preset> [cmake --build args...]
pipesched_build() {
  local preset=$1
  shift
  cmake --preset "$preset"
  cmake --build --preset "$preset" -j "$(pipesched_jobs)" "$@"
}

# pipesched_gpu_targets <build dir>: the targets scripts/gpu-check runs (tests/gpu/*.cu, and
# tests/nccl/*.cu where NCCL was found, the CUDA examples and the GPU benchmarks), whatever of
# them the configuration in <build dir> has, one a line
pipesched_gpu_targets() {
  cmake --build "$1" --target help 2>/dev/null | sed -n 's/^\([A-Za-z0-9_]*\):.*/\1/p' |
    grep -E '^(test_gpu_.*|test_nccl_.*|example_02_cuda_mlp|example_03_nccl_mlp|bench_cuda_schedules|bench_cuda_stream|bench_gpu_persistent|bench_nccl)$'
}

# Library folders a GPU machine may keep the CUDA runtime, cuBLAS and NCCL in (the toolkit's,
# and the pip wheels' of the python3 there), joined with ':'
pipesched_cuda_library_path() {
  local dirs=() d
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
    [[ -d $d ]] && dirs+=("$d")
  done
  while read -r d; do
    [[ -n $d && -d $d ]] && dirs+=("$d")
  done < <(python3 - 2>/dev/null <<'PY'
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib")) + glob.glob(os.path.join(r, "nvidia", "cu*", "lib"))):
        print(d)
PY
)
  local IFS=:
  echo "${dirs[*]}"
}
