#!/usr/bin/env bash
# Runs the default test suite (every CTest label but `slow`). Usage: bash scripts/test.sh [build-dir] [ctest args...]
# The long checks run with: ctest --test-dir build -L slow
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build}"
shift || true
# Two tests at a time, each on one intra-op thread, so the two cores are not oversubscribed.
# Tests that check thread-count independence set their thread counts themselves.
export OMP_NUM_THREADS=1
# --timeout: a test without a TIMEOUT of its own fails after 15 minutes instead of holding the run.
ctest --test-dir "$BUILD_DIR" -LE slow -j "$(nproc)" --timeout 900 --output-on-failure "$@"
