#!/usr/bin/env bash
# What lorazip writes, loaded by Hugging Face's transformers + PEFT as it is, on an old and a current
# stack (scripts/interop_hf.py says what is checked; results in docs/formats.md, "Interop with
# transformers and PEFT").
# Usage: bash scripts/interop_hf.sh [--make] [build-dir=build]
#   --make  create the stacks' venvs where missing (PyPI; the current stack's torch wheel pulls in
#           its CUDA libraries, about 3 GB, although everything here runs on the CPU)
# The stacks, each a venv under ${LORAZIP_CACHE:-~/.cache/lorazip}:
#   venv-hf-old: Debian's python3-torch 1.13 (system site-packages) + transformers 4.39.3 + peft 0.10.0
#   venv-hf-new: torch 2.15.0 + transformers 5.25.0 + peft 0.22.0 from PyPI
# The jobs: tests/e2e/tiny.yaml's pipeline (a lorazip-trained base, SentencePiece tokenizer) with
# its math adapter exported as PEFT and merged; and, where scripts/fetch_smollm2.sh gives the GGUF,
# a one-step adapter on SmolLM2-135M-Instruct exported merged (byte-level BPE tokenizer.json).
# Exit 0 when every check on every stack passes, 1 when one fails, 77 when no stack can be had.
set -euo pipefail
cd "$(dirname "$0")/.."
MAKE=0
if [ "${1:-}" = "--make" ]; then MAKE=1; shift; fi
BUILD_DIR="$(cd "${1:-build}" && pwd)"
CACHE="${LORAZIP_CACHE:-$HOME/.cache/lorazip}"
LZ="$BUILD_DIR/bin/lorazip"
DUMP="$BUILD_DIR/bin/bpe_dump_ids"
for t in "$LZ" "$DUMP"; do
  [ -x "$t" ] || { echo "no $t: build the targets lorazip and bpe_dump_ids first"; exit 1; }
done

IMPORTS="import torch, transformers, peft, safetensors, sentencepiece, google.protobuf"
usable() { [ -x "$1/bin/python" ] && "$1/bin/python" -c "$IMPORTS" 2>/dev/null; }
make_old() {
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch" 2>/dev/null || {
    echo "[interop-hf] the old stack needs Debian's python3-torch (apt-get install python3-torch)"; return 1; }
  /usr/bin/python3 -m venv --system-site-packages "$1"
  "$1/bin/pip" install -q "transformers==4.39.3" "huggingface_hub<0.26" "tokenizers<0.19" sentencepiece protobuf \
    safetensors psutil pyyaml packaging tqdm
  # --no-deps: their torch requirement would replace Debian's 1.13.0a0 (a pre-release to pip).
  "$1/bin/pip" install -q --no-deps "peft==0.10.0" "accelerate==0.28.0"
}
make_new() {
  python3 -m venv "$1"
  "$1/bin/pip" install -q "torch==2.15.0" "transformers==5.25.0" "peft==0.22.0" sentencepiece protobuf safetensors
}
STACKS=()
for s in old new; do
  v="$CACHE/venv-hf-$s"
  if ! usable "$v" && [ $MAKE = 1 ]; then
    echo "[interop-hf] creating $v"
    rm -rf "$v"
    "make_$s" "$v" || echo "[interop-hf] could not create $v"
  fi
  if usable "$v"; then STACKS+=("$v"); else echo "[interop-hf] no usable $v (run with --make to create it)"; fi
done
[ ${#STACKS[@]} -gt 0 ] || { echo "skipped: no transformers + peft stack"; exit 77; }

WORK="$BUILD_DIR/interop-hf"
rm -rf "$WORK"
mkdir -p "$WORK/texts" "$WORK/elsewhere"
# The texts: two documents of each domain of ../shared/data/llm-text, else of the embedded samples.
DATA=../shared/data/llm-text
[ -d "$DATA" ] || DATA=data/samples
"${STACKS[0]}/bin/python" - "$DATA" "$WORK/texts" <<'EOF'
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
for entry in sorted(os.listdir(src)):
    path = os.path.join(src, entry)
    files = [path] if entry.endswith(".jsonl") else sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".jsonl")) if os.path.isdir(path) else []
    if not files:
        continue
    with open(files[0], encoding="utf-8") as f:
        for i, line in zip(range(2), f):
            with open(os.path.join(out, "%s-%d.txt" % (entry.replace(".jsonl", ""), i)), "w", encoding="utf-8") as g:
                g.write(json.loads(line)["text"])
EOF
echo "[interop-hf] texts: $(ls "$WORK/texts" | wc -l) from $DATA"

# Job 1: the tiny pipeline (about 10 s), its math adapter exported as PEFT and merged.
TINY="$WORK/tiny"
"$LZ" -q run tests/e2e/tiny.yaml --work-dir "$TINY" > /dev/null
"$LZ" -q export -m "$TINY/base" -a "$TINY/adapters/math" -o "$TINY/export-peft"
"$LZ" -q export --merged -m "$TINY/base" -a "$TINY/adapters/math" -o "$TINY/export-merged"

# Job 2: SmolLM2's GGUF with a one-step adapter, exported merged (skipped without the GGUF).
SMOL=""
if GGUF="$(bash scripts/fetch_smollm2.sh 2>/dev/null)"; then
  SMOL="$WORK/smollm2"
  mkdir -p "$SMOL"
  MATH="$(cd "$DATA" && pwd)/math"
  [ -d "$MATH" ] || MATH="$MATH.jsonl"
  cat > "$SMOL/job.yaml" <<EOF
work_dir: .
threads: 2
data:
  inputs:
    - {domain: math, path: $MATH, max_docs: 8}
  split: {val: 0.25, test: 0.25, seed: 1}
base_model: $GGUF
lora: {r: 2, alpha: 4, dropout: 0.0, targets: [q_proj, v_proj]}
train: {steps: 1, batch_size: 1, seq_len: 32, lr: 1.0e-3, min_lr: 1.0e-4, warmup_steps: 0, eval_every: 0, eval_docs: 1, checkpoint_every: 0, seed: 1}
adapters: [math]
EOF
  "$LZ" -q prepare "$SMOL/job.yaml" > /dev/null
  "$LZ" -q train "$SMOL/job.yaml" -d math
  "$LZ" -q export --merged -m "$GGUF" -a "$SMOL/adapters/math" -o "$SMOL/export-merged"
else
  echo "[interop-hf] SmolLM2's GGUF cannot be had (offline?): its merged export is not checked"
fi

status=0
for v in "${STACKS[@]}"; do
  echo "== $(basename "$v"): lorazip-trained base (tests/e2e/tiny.yaml), math adapter"
  "$v/bin/python" scripts/interop_hf.py "$TINY" "$LZ" "$DUMP" "$WORK/texts" "$WORK/elsewhere" 2>> "$WORK/stderr.log" || status=1
  if [ -n "$SMOL" ]; then
    # Per text 1e-3: the half key/value cache of lorazip's arithmetic moves a short text's bits
    # under a 135M model by a few 1e-4 (all texts together stay under 1e-4).
    echo "== $(basename "$v"): SmolLM2-135M-Instruct with a one-step adapter, merged"
    "$v/bin/python" scripts/interop_hf.py "$SMOL" "$LZ" "$DUMP" "$WORK/texts" "$WORK/elsewhere" --per-text 1e-3 \
      2>> "$WORK/stderr.log" || status=1
  fi
done
[ $status = 0 ] && echo "interop_hf: every check passes on ${#STACKS[@]} stack(s)" ||
  echo "interop_hf: some check failed (the Python side's warnings and tracebacks: $WORK/stderr.log)"
exit $status
