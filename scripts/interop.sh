#!/usr/bin/env bash
# Token ids of lorazip's byte-level BPE vs llama.cpp's own tokenizer, on SmolLM2-135M-Instruct's
# vocabulary: every document of ../shared/data/llm-text plus edge cases (scripts/interop_bpe.py).
# Usage: bash scripts/interop.sh [build-dir=build]
# Needs a Python with PyPI's gguf and llama-cpp-python ($LORAZIP_PYTHON, else python3), e.g.
#   python3 -m venv ~/venv-lorazip && ~/venv-lorazip/bin/pip install gguf llama-cpp-python
#   LORAZIP_PYTHON=~/venv-lorazip/bin/python bash scripts/interop.sh
# Exit 77 (skipped) when those packages or the model cannot be had; 1 on a real difference.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="$(cd "${1:-build}" && pwd)"
PY="${LORAZIP_PYTHON:-python3}"
if ! "$PY" -c "import gguf, llama_cpp" 2>/dev/null; then
  echo "skipped: $PY cannot import gguf and llama_cpp (set LORAZIP_PYTHON to a venv with both)"
  exit 77
fi
TOOL="$BUILD_DIR/bin/bpe_dump_ids"
[ -x "$TOOL" ] || { echo "no $TOOL: build the target bpe_dump_ids first"; exit 1; }
DATA="../shared/data/llm-text"
[ -d "$DATA" ] || { echo "skipped: $DATA not found"; exit 77; }
GGUF="$(bash scripts/fetch_smollm2.sh)" || { echo "skipped: could not fetch SmolLM2 (offline?)"; exit 77; }
WORK="$BUILD_DIR/interop-bpe"
mkdir -p "$WORK"
VOCAB="$WORK/smollm2-vocab.json"
[ -f "$VOCAB" ] || "$PY" scripts/export_gguf_vocab.py "$GGUF" "$VOCAB"
"$PY" scripts/interop_bpe.py "$GGUF" "$VOCAB" "$TOOL" "$DATA" "$WORK"
