#!/usr/bin/env bash
# The coding-only build (-DLORAZIP_WITH_TORCH=OFF): what a user deploys to read files. Builds it in
# BUILD/coding-only (the program only), checks that the program links no libtorch, and that it and the full
# build's program read each other's files and write the same bytes: compress (full and compact
# containers), decompress, test, info, and an archive of files and a conversation archive; and that
# generate, qa, rewrite and frontier are there (their help; generate's refusal of a non-GGUF base);
# and that export writes an adapter (PEFT + llama.cpp GGUF) and a merged base that codes files.
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
# Tests on in the configuration (scripts/coding_only_tests.sh builds and runs them in the same folder);
# only the program is built here.
cmake -S . -B "$OUT" -DLORAZIP_WITH_TORCH=OFF -DLORAZIP_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
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
# export without libtorch: a small PEFT adapter (q_proj and v_proj, r 2, seeded values) written
# here, exported as PEFT + GGUF and merged into the base; the merged base codes a file both ways.
python3 - "$MODEL/config.json" "$W/adapter" <<'PY'
import json, os, random, struct, sys
c = json.load(open(sys.argv[1])); out = sys.argv[2]; os.makedirs(out)
h, hd = c["hidden_size"], c["hidden_size"] // c["num_attention_heads"]
outs = {"q_proj": c["num_attention_heads"] * hd, "v_proj": c["num_key_value_heads"] * hd}
rng, r, tensors = random.Random(7), 2, {}
for l in range(c["num_hidden_layers"]):
    for p, o in outs.items():
        key = "base_model.model.model.layers.%d.self_attn.%s" % (l, p)
        tensors[key + ".lora_A.weight"] = ([r, h], [rng.uniform(-0.2, 0.2) for _ in range(r * h)])
        tensors[key + ".lora_B.weight"] = ([o, r], [rng.uniform(-0.2, 0.2) for _ in range(o * r)])
header, blob = {}, b""
for k in sorted(tensors):
    shape, vals = tensors[k]
    header[k] = {"dtype": "F32", "shape": shape, "data_offsets": [len(blob), len(blob) + 4 * len(vals)]}
    blob += struct.pack("<%df" % len(vals), *vals)
hb = json.dumps(header).encode()
open(out + "/adapter_model.safetensors", "wb").write(struct.pack("<Q", len(hb)) + hb + blob)
json.dump({"peft_type": "LORA", "r": r, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"]}, open(out + "/adapter_config.json", "w"))
PY
"$ONLY" -q export -m "$MODEL" -a "$W/adapter" -o "$W/peft"
for f in adapter_config.json adapter_model.safetensors lorazip.json adapter_model.gguf; do
  [ -s "$W/peft/$f" ] || { echo "FAIL: coding-only export wrote no $f"; fail=1; }
done
"$ONLY" -q export -m "$MODEL" -a "$W/peft" --merged -o "$W/merged"
"$ONLY" -q compress -m "$W/merged" -c "$W/b.txt" > "$W/b.merged.lz"
"$FULL" -q decompress -m "$W/merged" -c "$W/b.merged.lz" | cmp -s - "$W/b.txt" || { echo "FAIL: the coding-only merged export did not code a file"; fail=1; }
# The lossy protocols and generation run here too: their help, and the refusal of a base that is
# not a GGUF chat model (TinyStories is a Hugging Face directory without a chat template).
for sub in generate qa rewrite frontier; do
  "$ONLY" "$sub" --help >/dev/null || { echo "FAIL: coding-only '$sub --help'"; fail=1; }
done
out="$("$ONLY" generate -m "$MODEL" --prompt hi 2>&1 || true)"
case "$out" in *"is not a GGUF file"*) ;; *) echo "FAIL: generate on a non-GGUF base said: $out"; fail=1 ;; esac
out="$("$ONLY" train 2>&1 || true)"
case "$out" in *"not in this build"*) ;; *) echo "FAIL: 'train' in the coding-only build said: $out"; fail=1 ;; esac
[ "$fail" = 0 ] && echo "coding-only lorazip ($(du -h "$ONLY" | cut -f1), no libtorch): same bytes as the full build on 3 files x 2 formats, archives both ways; export (PEFT, GGUF, merged) works; generate, qa, rewrite, frontier present"
exit "$fail"
