#!/usr/bin/env bash
# Installs lorazip's build and run dependencies from Debian's packages (idempotent) and builds
# lorazip in Release mode into ./build. Usage: bash scripts/setup.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build}"

PACKAGES=(
  build-essential cmake pkg-config git
  libtorch-dev            # libtorch 1.13 (CPU); links the generic libblas.so.3
  libgloo-dev             # the Gloo headers that libtorch's c10d ProcessGroupGloo.hpp includes (data-parallel training)
  python3-torch           # torchrun (the same 1.13), which launches data-parallel lorazip; the ddp tests use it
  libopenblas0-openmp     # ...which this makes OpenBLAS (about 7x faster than the reference BLAS)
  libsentencepiece-dev
  libhdf5-dev
  libyaml-cpp-dev
  googletest libgtest-dev
  nlohmann-json3-dev libcli11-dev
  zlib1g-dev liblzma-dev libzstd-dev libbrotli-dev libxxhash-dev libssl-dev
  python3-h5py            # only for the test that reads the token store with h5py
  g++-aarch64-linux-gnu   # engine_cross_aarch64: the coding engine built for aarch64 ...
  qemu-user               # ... and run under qemu-aarch64 (and qemu-x86_64 -cpu Nehalem)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "[setup] all Debian packages present"
fi

JOBS="$(nproc)"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j "$JOBS"
echo "[setup] built: $BUILD_DIR/bin/lorazip"
