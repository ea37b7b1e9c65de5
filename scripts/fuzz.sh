#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs one for a given time.
# Usage: bash scripts/fuzz.sh [seconds=180] [build-dir=build-fuzz] [target=fuzz_container]
#   fuzz_container    bytes -> Container::parse -> range-decode every chunk (seeds: codec/fuzz/corpus/)
#   fuzz_compact      bytes -> CompactFile::parse (compact single files, versions 5, 4 and 3) -> serialize -> parse (seeds: make_fuzz_corpus)
#   fuzz_archive      bytes -> read_archive_layout (archive header, footer, zstd index; versions 2 and 1; conversation archives) -> member ranges, coded members expanded to compact files (turns also to version 5), the index rewritten and reread; find_archive_repair (the state it keeps must read); and as a JSONL line -> split/join, plain and conversation records (seeds: make_fuzz_corpus)
#   fuzz_range_coder  bytes -> arbitrary intervals -> encode -> decode, checked symbol by symbol
#   fuzz_tokenizer_json  bytes -> tokenizer.json reader -> BPE tokenizer -> round trips (seeds: model/fuzz/corpus/)
#   fuzz_router       bytes -> PromptRouter::parse, router.json of lorazip cluster (seeds: cluster/fuzz/corpus/)
#   fuzz_lossy_text   bytes -> chat template / QA code / answer parsers (gen/fuzz)
#   fuzz_lossy_results  bytes -> the rewrite / qa eval result files of lorazip frontier and qa table (seeds: gen/fuzz/corpus/)
#   fuzz_gguf         bytes -> GgufFile::parse -> every getter, dequantize, Llama config (seeds: make_gguf_seeds)
#   fuzz_gguf_blocks  4 bytes pick a weight kind and shape, the rest -> dequantize_row, block_codes, pack_matrix /
#                     unpack_row (same floats), quantize_row within its bound, GgufFile::parse + dequantize + pack (seeds: make_gguf_seeds)
#   fuzz_peft         bytes -> a PEFT adapter directory (adapter_config.json, lorazip.json, adapter_model.safetensors)
#                     -> read_peft_adapter_view against a small Llama (floats equal read_peft_adapter's; the engine adapter
#                     packed from the stored pairs gives the float path's logits); the safetensors bytes -> parse_safetensors_view
#                     and parse_safetensors (views inside the bytes, equal to the copies) -> float32 (seeds: make_peft_seeds)
# Inputs the fuzzer finds go to <build-dir>/<target>-corpus (the committed seeds are only read),
# crashes to <build-dir>/fuzz-artifacts/. The exit status is non-zero on a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-180}"
BUILD_DIR="${2:-build-fuzz}"
TARGET="${3:-fuzz_container}"
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLORAZIP_WITH_TORCH=OFF -DLORAZIP_BUILD_TESTS=OFF -DLORAZIP_FUZZ=ON >/dev/null
cmake --build "$BUILD_DIR" --target "$TARGET" -j"$(nproc)"
mkdir -p "$BUILD_DIR/$TARGET-corpus" "$BUILD_DIR/fuzz-artifacts"
SEEDS=()
if [[ "$TARGET" == fuzz_container ]]; then SEEDS=(codec/fuzz/corpus); fi
if [[ "$TARGET" == fuzz_compact || "$TARGET" == fuzz_archive ]]; then
  # Seeds: compact files and archives written by make_fuzz_corpus (plus the version-2 corpus).
  cmake --build "$BUILD_DIR" --target make_fuzz_corpus -j"$(nproc)"
  mkdir -p "$BUILD_DIR/seeds-v2" "$BUILD_DIR/seeds-new"
  "$BUILD_DIR/bin/make_fuzz_corpus" "$BUILD_DIR/seeds-v2" "$BUILD_DIR/seeds-new" >/dev/null
  SEEDS=("$BUILD_DIR/seeds-new" codec/fuzz/corpus)
fi
if [[ "$TARGET" == fuzz_tokenizer_json ]]; then SEEDS=(model/fuzz/corpus); fi
if [[ "$TARGET" == fuzz_router ]]; then SEEDS=(cluster/fuzz/corpus); fi
if [[ "$TARGET" == fuzz_lossy_results ]]; then SEEDS=(gen/fuzz/corpus); fi
if [[ "$TARGET" == fuzz_gguf ]]; then
  cmake --build "$BUILD_DIR" --target make_gguf_seeds -j"$(nproc)"
  mkdir -p "$BUILD_DIR/fuzz_gguf-seeds"
  "$BUILD_DIR/bin/make_gguf_seeds" "$BUILD_DIR/fuzz_gguf-seeds"
  SEEDS=("$BUILD_DIR/fuzz_gguf-seeds")
fi
if [[ "$TARGET" == fuzz_gguf_blocks ]]; then
  cmake --build "$BUILD_DIR" --target make_gguf_seeds -j"$(nproc)"
  mkdir -p "$BUILD_DIR/fuzz_gguf-seeds" "$BUILD_DIR/fuzz_gguf_blocks-seeds"
  "$BUILD_DIR/bin/make_gguf_seeds" "$BUILD_DIR/fuzz_gguf-seeds" "$BUILD_DIR/fuzz_gguf_blocks-seeds"
  SEEDS=("$BUILD_DIR/fuzz_gguf_blocks-seeds")
fi
if [[ "$TARGET" == fuzz_peft ]]; then
  cmake --build "$BUILD_DIR" --target make_peft_seeds -j"$(nproc)"
  mkdir -p "$BUILD_DIR/fuzz_peft-seeds"
  "$BUILD_DIR/bin/make_peft_seeds" "$BUILD_DIR/fuzz_peft-seeds"
  SEEDS=("$BUILD_DIR/fuzz_peft-seeds")
fi
"$BUILD_DIR/bin/$TARGET" "$BUILD_DIR/$TARGET-corpus" "${SEEDS[@]}" \
  -max_total_time="$SECONDS_TO_RUN" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$BUILD_DIR/fuzz-artifacts/" -print_final_stats=1
