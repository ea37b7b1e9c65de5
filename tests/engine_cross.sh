#!/bin/sh
# The engine on another architecture: cross-compiles the torch-free engine and engine_hash for
# aarch64 (static), lints its objects, and runs it under qemu-aarch64; its hashes must equal the
# committed one (the same check every x86-64 build makes). With qemu-x86_64 present it also runs
# the baseline x86-64 build on an emulated Nehalem (SSE only: the sse2 and scalar paths).
# Exit 77 (skip) when g++-aarch64-linux-gnu or qemu-user is missing (scripts/setup.sh installs both).
#   engine_cross.sh SOURCE_DIR WORK_DIR [X86_64_BASELINE_BINARY]
set -eu
src=$1 work=$2 x86=${3:-}
cxx=aarch64-linux-gnu-g++
if ! command -v "$cxx" >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1; then
  echo "SKIP: $cxx or qemu-aarch64 not found (install g++-aarch64-linux-gnu and qemu-user, see scripts/setup.sh)"
  exit 77
fi
mkdir -p "$work"
bin="$work/engine_hash_aarch64"
# Rebuild only when an engine source, engine_hash.cpp or this script is newer than the binary.
fresh=1
[ -f "$bin" ] || fresh=0
for f in "$src"/codec/engine/* "$src/tests/engine_hash.cpp" "$src/tests/kernels_w16_generic.cpp" "$src/tests/engine_cross.sh" "$src/tests/engine_lint.sh"; do
  [ "$fresh" -eq 1 ] && [ "$f" -nt "$bin" ] && fresh=0
done
flags="-std=c++17 -O2 -ffp-contract=off -fno-math-errno -I$src"
if [ "$fresh" -eq 0 ]; then
objs=""
for f in "$src"/codec/engine/*.cpp; do
  o="$work/$(basename "$f" .cpp).o"
  $cxx $flags -c "$f" -o "$o"
  objs="$objs $o"
done
sh "$src/tests/engine_lint.sh" aarch64-linux-gnu-objdump aarch64-linux-gnu-nm $objs
$cxx $flags -static -pthread $objs "$src/tests/engine_hash.cpp" "$src/tests/kernels_w16_generic.cpp" -o "$bin"
else
  echo "engine_hash_aarch64 is up to date"
fi
echo "== aarch64 (qemu-aarch64)"
qemu-aarch64 "$bin" --quick
if [ -n "$x86" ] && command -v qemu-x86_64 >/dev/null 2>&1; then
  echo "== x86-64 baseline on an emulated Nehalem (qemu-x86_64 -cpu Nehalem)"
  qemu-x86_64 -cpu Nehalem "$x86" --quick
fi
