#!/usr/bin/env bash
# Builds lorazip against the CUDA libtorch inside PyPI's torch wheel, into build-cuda/ (the default
# build/ stays on Debian's CPU-only libtorch-dev). Fetches the wheel (and the three CUDA libraries
# libtorch_cuda needs that the CUDA toolkit lacks) with pip into a cache outside the repository.
# Usage: scripts/build_cuda.sh [cmake --build arguments, e.g. --target lorazip]   (docs/training.md, 'CUDA')
set -euo pipefail

TORCH_VERSION=${LORAZIP_TORCH_VERSION:-2.15.0}
CACHE=${LORAZIP_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lorazip}
VENV=${LORAZIP_CUDA_VENV:-$CACHE/venv}        # only pip runs from it
BUILD=${LORAZIP_CUDA_BUILD:-build-cuda}
JOBS=${JOBS:-2}
# The wheel pins these (its METADATA); libtorch_cuda.so needs their libraries and the CUDA toolkit
# (nvcc, cuBLAS, cuDNN, NCCL) does not ship them, or ships an older NCCL than the wheel calls
# (ncclCommGrow, ncclPutSignal, ... are missing from the toolkit's libnccl.so.2).
EXTRA_WHEELS=(nvidia-cusparselt-cu13==0.8.1 nvidia-nvshmem-cu13==3.7.2 nvidia-cufile nvidia-nccl-cu13==2.30.7)

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHEELS=$CACHE/wheels
TORCH_ROOT=$CACHE/torch-$TORCH_VERSION     # unpacked: torch/{include,lib,share}
NVLIB=$TORCH_ROOT/nvidia-lib                # the extra wheels' .so files

if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "build_cuda.sh: no CUDA toolkit (nvcc) found; TorchConfig needs it to configure" >&2
  exit 1
fi
export PATH=$PATH:/usr/local/cuda/bin

mkdir -p "$WHEELS"
if [ ! -x "$VENV/bin/pip" ]; then python3 -m venv "$VENV"; fi
shopt -s nullglob
wheel=("$WHEELS"/torch-"$TORCH_VERSION"-*.whl)
if [ ${#wheel[@]} -eq 0 ]; then
  nice -n 19 "$VENV/bin/pip" download --no-deps -d "$WHEELS" "torch==$TORCH_VERSION"
  wheel=("$WHEELS"/torch-"$TORCH_VERSION"-*.whl)
fi
for w in nvidia_cusparselt_cu13 nvidia_nvshmem_cu13 nvidia_cufile nvidia_nccl_cu13; do
  have=("$WHEELS"/"$w"-*.whl)   # nullglob: empty when the wheel is not there yet
  if [ ${#have[@]} -eq 0 ]; then
    nice -n 19 "$VENV/bin/pip" download --no-deps -d "$WHEELS" "${EXTRA_WHEELS[@]}"
    break
  fi
done

if [ ! -f "$TORCH_ROOT/torch/share/cmake/Torch/TorchConfig.cmake" ]; then
  mkdir -p "$TORCH_ROOT"
  nice -n 19 unzip -q -o "${wheel[0]}" 'torch/lib/*' 'torch/include/*' 'torch/share/*' 'torch/version.py' -d "$TORCH_ROOT"
fi
if [ ! -e "$NVLIB/libnccl.so.2" ]; then
  tmp=$(mktemp -d)
  for w in "$WHEELS"/nvidia_cusparselt_cu13-*.whl "$WHEELS"/nvidia_nvshmem_cu13-*.whl "$WHEELS"/nvidia_cufile-*.whl \
           "$WHEELS"/nvidia_nccl_cu13-*.whl; do
    nice -n 19 unzip -q -o "$w" 'nvidia/*' -d "$tmp"
  done
  mkdir -p "$NVLIB"
  find "$tmp" -name '*.so*' -exec cp -P {} "$NVLIB"/ \;
  rm -rf "$tmp"
fi
grep -h "__version__\|^cuda" "$TORCH_ROOT/torch/version.py"

# DT_RPATH (not RUNPATH) so that libtorch_cuda.so's own dependencies are found in NVLIB too.
LINK="-Wl,--disable-new-dtags -Wl,-rpath,$NVLIB -Wl,-rpath-link,$NVLIB"
cd "$ROOT"
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
nice -n 19 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
  -DLORAZIP_TORCH_DIR="$TORCH_ROOT/torch" -DLORAZIP_CUDA=ON \
  -DCMAKE_EXE_LINKER_FLAGS="$LINK" -DCMAKE_SHARED_LINKER_FLAGS="$LINK"
nice -n 19 cmake --build "$BUILD" -j"$JOBS" "$@"
