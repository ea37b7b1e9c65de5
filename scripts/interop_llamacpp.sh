#!/usr/bin/env bash
# The coding engine's next-token log-probabilities vs llama.cpp's on SmolLM2-135M-Instruct's Q4_1
# GGUF, with the base alone and with a LoRA adapter exported by `lorazip export` as GGUF
# (scripts/interop_llamacpp.py; figures and tolerances in docs/gguf.md, "Interop with llama.cpp").
# Usage: bash scripts/interop_llamacpp.sh [build-dir=build] [interop_llamacpp.py options: --docs N ...]
# Needs a Python with PyPI's gguf, numpy and llama-cpp-python ($LORAZIP_PYTHON, else python3), e.g.
#   python3 -m venv ~/venv-lorazip && ~/venv-lorazip/bin/pip install gguf llama-cpp-python
#   LORAZIP_PYTHON=~/venv-lorazip/bin/python bash scripts/interop_llamacpp.sh build
# Exit 77 (skipped) when those packages, the model or the data cannot be had; 1 on a real difference.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="$(cd "${1:-build}" && pwd)"
shift || true
PY="${LORAZIP_PYTHON:-python3}"
if ! "$PY" -c "import gguf, numpy, llama_cpp" 2>/dev/null; then
  echo "skipped: $PY cannot import gguf, numpy and llama_cpp (set LORAZIP_PYTHON to a venv with them)"
  exit 77
fi
for t in engine_logprobs lorazip; do
  [ -x "$BUILD_DIR/bin/$t" ] || { echo "no $BUILD_DIR/bin/$t: build the targets engine_logprobs and lorazip first"; exit 1; }
done
DATA="../shared/data/llm-text"
[ -d "$DATA" ] || { echo "skipped: $DATA not found"; exit 77; }
GGUF="$(bash scripts/fetch_smollm2.sh)" || { echo "skipped: could not fetch SmolLM2 (offline?)"; exit 77; }
exec "$PY" scripts/interop_llamacpp.py "$GGUF" "$BUILD_DIR/bin/engine_logprobs" "$BUILD_DIR/bin/lorazip" "$DATA" \
  "$BUILD_DIR/interop-llamacpp" "$@"
