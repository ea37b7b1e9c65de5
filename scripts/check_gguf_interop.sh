#!/usr/bin/env bash
# CTest `interop` check: lorazip's GGUF dequantization equals the gguf Python package's on the
# real SmolLM2-135M-Instruct Q4_1 file. Skips (exit 77) when the file or the package is absent.
# Usage: bash scripts/check_gguf_interop.sh DUMP_PROGRAM
#   LORAZIP_GGUF_PYTHON  a python with `gguf` and numpy (default: ../venv-gguf/bin/python beside the repo)
#   LORAZIP_CACHE        where scripts/fetch_smollm2.sh put the file (default: ~/.cache/lorazip)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: bash scripts/check_gguf_interop.sh DUMP_PROGRAM (build/bin/gguf_dequant_dump; or run ctest -R gguf_interop_dequant)" >&2
  exit 2
fi
DUMP="$1"
PY="${LORAZIP_GGUF_PYTHON:-../venv-gguf/bin/python}"
FILE="${LORAZIP_CACHE:-$HOME/.cache/lorazip}/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -x "$PY" ]; then echo "SKIP: no python at $PY (set LORAZIP_GGUF_PYTHON to one with the gguf package)"; exit 77; fi
if [ ! -f "$FILE" ]; then echo "SKIP: $FILE not found (run scripts/fetch_smollm2.sh)"; exit 77; fi
exec "$PY" scripts/check_gguf_interop.py "$DUMP" "$FILE"
