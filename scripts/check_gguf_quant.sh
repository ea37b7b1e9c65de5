#!/usr/bin/env bash
# CTest `interop` check: a GGUF with a tensor of every engine weight kind, quantized by lorazip
# (gguf_quant_dump), dequantizes in the `gguf` Python package exactly as in lorazip, bit for bit.
# Usage: bash scripts/check_gguf_quant.sh DUMP_PROGRAM [--make-venv]
#   VENV           a venv with the packages gguf and numpy (default:
#                  ${LORAZIP_CACHE:-~/.cache/lorazip}/venv-gguf)
#   --make-venv    create the default venv when it is missing (python3 -m venv; pip install gguf numpy)
# Exit 0 = identical, 1 = a difference, 77 = skipped (no venv with gguf and numpy could be had).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ ! -x "$1" ]; then
  echo "usage: bash scripts/check_gguf_quant.sh DUMP_PROGRAM [--make-venv] (build/bin/gguf_quant_dump; or ctest -R gguf_interop_quant)" >&2
  exit 2
fi
DUMP="$1"
MAKE_VENV=0
[ "${2:-}" = "--make-venv" ] && MAKE_VENV=1
VENV="${VENV:-${LORAZIP_CACHE:-$HOME/.cache/lorazip}/venv-gguf}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  if [ "$MAKE_VENV" = 1 ]; then
    echo "creating $VENV (pip install gguf numpy)"
    mkdir -p "$(dirname "$VENV")"
    if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet gguf numpy; }; then
      echo "SKIP: could not create a venv with gguf and numpy at $VENV (offline, or no python3-venv?)"
      exit 77
    fi
  else
    echo "SKIP: no venv at $VENV (set VENV to a venv with gguf and numpy, or pass --make-venv to create it)"
    exit 77
  fi
fi
if ! "$PY" -c "import gguf, numpy" 2>/dev/null; then
  echo "SKIP: $PY cannot import gguf and numpy (pip install gguf numpy into $VENV)"
  exit 77
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lorazip-gguf-quant.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
"$DUMP" "$WORK"
"$PY" scripts/check_gguf_quant.py "$WORK"
