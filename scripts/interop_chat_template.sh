#!/usr/bin/env bash
# The context of conditioned coding (`lorazip compress --context-file`, --template auto) against
# SmolLM2-135M-Instruct's own chat template rendered by llama-cpp-python's Jinja formatter and
# tokenized by llama.cpp (scripts/interop_chat_template.py; result in docs/codec.md).
# Usage: bash scripts/interop_chat_template.sh [build-dir=build]
# Needs a Python with llama-cpp-python ($LORAZIP_PYTHON, else the peer venv of scripts/peer_venv.sh).
# Exit 77 (skipped) when it, the model or ../shared/data cannot be had; 1 on a difference.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="$(cd "${1:-build}" && pwd)"
PY="${LORAZIP_PYTHON:-}"
[ -n "$PY" ] || PY="$(bash scripts/peer_venv.sh 2>/dev/null)" || { echo "skipped: no Python with llama-cpp-python (LORAZIP_PYTHON, or bash scripts/peer_venv.sh --make)"; exit 77; }
"$PY" -c "import llama_cpp" 2>/dev/null || { echo "skipped: $PY cannot import llama_cpp"; exit 77; }
TOOL="$BUILD_DIR/bin/bpe_dump_ids"
[ -x "$TOOL" ] || { echo "no $TOOL: build the target bpe_dump_ids first"; exit 1; }
DATA="../shared/data/llm-text"
[ -d "$DATA" ] || { echo "skipped: $DATA not found"; exit 77; }
GGUF="$(bash scripts/fetch_smollm2.sh)" || { echo "skipped: could not fetch SmolLM2 (offline?)"; exit 77; }
exec "$PY" scripts/interop_chat_template.py "$GGUF" "$TOOL" "$DATA" "$BUILD_DIR/interop-chat-template"
