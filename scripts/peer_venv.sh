#!/usr/bin/env bash
# The Python venv of the peer benchmark (bench/peer_llamacpp.py): PyPI's llama-cpp-python 0.3.36
# with numpy, more_itertools and tqdm (llama-zip's imports). Prints the venv's python on stdout.
# Usage: bash scripts/peer_venv.sh [--make] [VENV]
#   VENV     default $LORAZIP_PEER_VENV, else ${LORAZIP_CACHE:-~/.cache/lorazip}/venv-llamacpp
#   --make   create or complete it when it is missing or lacks a package: this compiles llama.cpp
#            from source (about 10 minutes on 2 cores; CMAKE_BUILD_PARALLEL_LEVEL sets the jobs)
# Exit 0 = printed; 77 = no usable venv and no --make; 1 = --make failed.
#
# The build's instruction sets come from /proc/cpuinfo (GGML_NATIVE=OFF, each GGML_<ISA> set ON
# exactly when the CPU has it), with AMX always OFF: on a Sapphire Rapids KVM guest that lists the
# amx_* flags, a default (GGML_NATIVE) build of 0.3.36 crashed with SIGSEGV in
# ggml_backend_amx_mul_mat at the first prompt batch. AMX tiles also need the kernel to grant the
# process their state (arch_prctl), which a guest may not pass through; without AMX, llama.cpp runs
# on AVX-512 / AVX2 as lorazip's engine does, so the comparison loses nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="0.3.36"
MAKE=0
if [ "${1:-}" = "--make" ]; then MAKE=1; shift; fi
if [ $# -gt 1 ] || [[ "${1:-}" == -* ]]; then
  echo "usage: bash scripts/peer_venv.sh [--make] [VENV]" >&2
  exit 2
fi
VENV="${1:-${LORAZIP_PEER_VENV:-${LORAZIP_CACHE:-$HOME/.cache/lorazip}/venv-llamacpp}}"
PY="$VENV/bin/python"

# 0 = usable; 3 = llama-cpp-python $VERSION built with AMX (see above); else missing or incomplete.
check() {
  [ -x "$PY" ] || return 1
  "$PY" - "$VERSION" <<'EOF' 2>/dev/null
import sys
import llama_cpp, more_itertools, numpy, tqdm
if llama_cpp.__version__ != sys.argv[1]:
    sys.exit(1)
sys.exit(3 if b"AMX" in llama_cpp.llama_print_system_info() else 0)
EOF
}

STATE=0
check || STATE=$?
if [ "$STATE" = 0 ]; then echo "$PY"; exit 0; fi
if [ "$MAKE" = 0 ]; then
  if [ "$STATE" = 3 ]; then
    echo "the llama-cpp-python in $VENV was built with AMX, which crashes on some CPUs (see this script);" >&2
  else
    echo "no venv with llama-cpp-python $VERSION, numpy, more_itertools and tqdm at $VENV;" >&2
  fi
  echo "make one with: bash scripts/peer_venv.sh --make${1:+ $VENV} (compiles llama.cpp, about 10 minutes)" >&2
  exit 77
fi

# GGML_<option>=ON when every listed /proc/cpuinfo flag is there. ggml's GGML_AVX512 compiles with
# -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw, so it needs all five.
FLAGS=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has_all() { for f in "$@"; do [[ "$FLAGS" == *" $f "* ]] || return 1; done; }
CMAKE_ARGS="-DGGML_NATIVE=OFF"
while read -r option cpu_flags; do
  if has_all $cpu_flags; then CMAKE_ARGS+=" -DGGML_$option=ON"; else CMAKE_ARGS+=" -DGGML_$option=OFF"; fi
done <<'EOF'
SSE42 sse4_2
AVX avx
AVX2 avx2
BMI2 bmi2
FMA fma
F16C f16c
AVX_VNNI avx_vnni
AVX512 avx512f avx512cd avx512vl avx512dq avx512bw
AVX512_VBMI avx512vbmi
AVX512_VNNI avx512_vnni
AVX512_BF16 avx512_bf16
EOF
CMAKE_ARGS+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
export CMAKE_ARGS
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"

CREATED=0
if [ ! -x "$PY" ]; then
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" >&2 || { echo "python3 -m venv $VENV failed (is python3-venv installed?)" >&2; exit 1; }
  CREATED=1
fi
if [ "$STATE" = 3 ]; then "$PY" -m pip uninstall --yes llama-cpp-python >&2; fi
echo "[peer_venv] installing llama-cpp-python $VERSION into $VENV with CMAKE_ARGS=$CMAKE_ARGS" >&2
# --no-binary: a ready wheel from an index or a find-links folder would ignore CMAKE_ARGS.
# --no-cache-dir: pip caches a wheel built from the sdist under the sdist's name alone, so a wheel
# built earlier with other CMAKE_ARGS (e.g. the crashing native one) would be reused silently.
if ! "$PY" -m pip install --no-cache-dir --no-binary llama-cpp-python \
       "llama-cpp-python==$VERSION" numpy more_itertools tqdm >&2 || ! check; then
  echo "[peer_venv] installing into $VENV failed" >&2
  if [ "$CREATED" = 1 ]; then rm -rf "$VENV"; fi
  exit 1
fi
echo "$PY"
