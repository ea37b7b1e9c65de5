#!/usr/bin/env bash
# The coding-only build's own test suites: configures BUILD/coding-only without libtorch
# (-DLORAZIP_WITH_TORCH=OFF) with its tests, builds them, and runs every test that configuration
# has (the range coder, quantizer, container, compact files, archives, classical codecs, the
# coding engine with its golden hashes on each x86-64 level and aarch64, GGUF and safetensors
# readers, tokenizers, generation and the lossy protocols' parsers, k-means, the peer runner),
# leaving out the labels slow and interop as the default run does. CI runs it after the README's
# test command (.ci/run); about 6 minutes on 2 cores from scratch, mostly building.
# Usage: bash scripts/coding_only_tests.sh [build-dir=build] [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build}"
shift || true
OUT="$BUILD_DIR/coding-only"
cmake -S . -B "$OUT" -DLORAZIP_WITH_TORCH=OFF -DLORAZIP_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$OUT" -j"$(nproc)"
if ldd "$OUT/bin/lorazip" | grep -E "libtorch|libc10|openblas|hdf5"; then echo "FAIL: the coding-only lorazip links the libraries above"; exit 1; fi
export OMP_NUM_THREADS=1
ctest --test-dir "$OUT" -LE "slow|interop" -j "$(nproc)" --timeout 900 --output-on-failure "$@"
