#!/usr/bin/env bash
# The coding-only build (-DLORAZIP_WITH_TORCH=OFF): what a user deploys to read files. Builds it in
# BUILD/coding-only (no tests), checks that the program links no libtorch, and that it and the full
# build's program read each other's files and write the same bytes: compress (full and compact
# containers), decompress, test, info, and an archive of files and a conversation archive; and that
# generate, qa, rewrite and frontier are there (their help; generate's refusal of a non-GGUF base).
# Usage: bash scripts/coding_only_check.sh [build-dir=build]   (CTest: coding_only_build, label build)
# Exit 77 (skipped) when ../shared's TinyStories model is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="$(cd "${1:-build}" && pwd)"
FULL="$BUILD_DIR/bin/lorazip"
OUT="$BUILD_DIR/coding-only"
MODEL="../shared/models/tinystories-260k-hf"
[ -x "$FULL" ] || { echo "no $FULL: build the full program first"; exit 1; }
[ -d "$MODEL" ] || { echo "skipped: $MODEL not found (../shared is absent)"; exit 77; }
cmake -S . -B "$OUT" -DLORAZIP_WITH_TORCH=OFF -DLORAZIP_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$OUT" --target lorazip -j"$(nproc)" >/dev/null
ONLY="$OUT/bin/lorazip"
if ldd "$ONLY" | grep -E "libtorch|libc10|openblas|hdf5"; then echo "FAIL: the coding-only lorazip links the libraries above"; exit 1; fi
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
cp docs/architecture.md "$W/a.md"
head -c 3000 data/samples/math.jsonl > "$W/b.txt"
head -c 2000 /dev/urandom > "$W/noise.bin"   # stored as it is
mkdir -p "$W/tree/sub" && cp "$W/a.md" "$W/tree/" && cp "$W/b.txt" "$W/tree/sub/"
printf '{"prompt": "Tell me a story.", "text": "Once upon a time there was a cat.", "id": 1}\n{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]}\n' > "$W/chats.jsonl"
fail=0
for f in a.md b.txt noise.bin; do
  for fmt in full compact; do
    "$FULL" -q compress -m "$MODEL" --format "$fmt" -c "$W/$f" > "$W/$f.full.lz"
    "$ONLY" -q compress -m "$MODEL" --format "$fmt" -c "$W/$f" > "$W/$f.only.lz"
    cmp -s "$W/$f.full.lz" "$W/$f.only.lz" || { echo "FAIL: $f ($fmt): the two programs wrote different bytes"; fail=1; }
    "$ONLY" -q decompress -m "$MODEL" -c "$W/$f.full.lz" | cmp -s - "$W/$f" || { echo "FAIL: $f ($fmt): coding-only did not decode the full build's file"; fail=1; }
    "$FULL" -q decompress -m "$MODEL" -c "$W/$f.only.lz" | cmp -s - "$W/$f" || { echo "FAIL: $f ($fmt): the full build did not decode coding-only's file"; fail=1; }
    "$ONLY" -q test -m "$MODEL" "$W/$f.full.lz" || { echo "FAIL: $f ($fmt): coding-only test"; fail=1; }
    "$ONLY" info "$W/$f.full.lz" >/dev/null || { echo "FAIL: $f ($fmt): coding-only info"; fail=1; }
  done
done
"$ONLY" -q archive create "$W/t.lza" "$W/tree" -m "$MODEL"
"$FULL" -q archive extract "$W/t.lza" -m "$MODEL" -C "$W/out"
diff -r "$W/tree" "$W/out" >/dev/null || { echo "FAIL: an archive the coding-only program wrote did not extract with the full one"; fail=1; }
"$FULL" -q archive create "$W/c.lza" --jsonl --conversations "$W/chats.jsonl" -m "$MODEL"
"$ONLY" -q archive extract "$W/c.lza" -m "$MODEL" -o "$W/chats.back.jsonl"
cmp -s "$W/chats.jsonl" "$W/chats.back.jsonl" || { echo "FAIL: coding-only did not give the conversation archive's JSONL back"; fail=1; }
# The lossy protocols and generation run here too: their help, and the refusal of a base that is
# not a GGUF chat model (TinyStories is a Hugging Face directory without a chat template).
for sub in generate qa rewrite frontier; do
  "$ONLY" "$sub" --help >/dev/null || { echo "FAIL: coding-only '$sub --help'"; fail=1; }
done
out="$("$ONLY" generate -m "$MODEL" --prompt hi 2>&1 || true)"
case "$out" in *"is not a GGUF file"*) ;; *) echo "FAIL: generate on a non-GGUF base said: $out"; fail=1 ;; esac
out="$("$ONLY" train 2>&1 || true)"
case "$out" in *"not in this build"*) ;; *) echo "FAIL: 'train' in the coding-only build said: $out"; fail=1 ;; esac
[ "$fail" = 0 ] && echo "coding-only lorazip ($(du -h "$ONLY" | cut -f1), no libtorch): same bytes as the full build on 3 files x 2 formats, archives both ways; generate, qa, rewrite, frontier present"
exit "$fail"
