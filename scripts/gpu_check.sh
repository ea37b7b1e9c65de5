#!/usr/bin/env bash
# The GPU check of a CUDA build (scripts/build_cuda.sh), for a machine with an NVIDIA GPU: pretrains
# the end-to-end toy job (tests/e2e/tiny.yaml) for a few steps, and trains a LoRA adapter on the
# CPU-pretrained base, once with --device cpu and once with --device cuda from the same data and
# seeds, then compares the per-step training loss and prints tokens/s. Exit status 1 when a step's
# loss differs by more than TOL bits/token. Optional: two ranks over NCCL when 2 GPUs and torchrun exist.
# Usage: scripts/gpu_check.sh   (env: LORAZIP_BIN, STEPS=20, TOL=0.02, KEEP=1 keeps the work directory)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${LORAZIP_BIN:-$ROOT/build-cuda/bin/lorazip}
STEPS=${STEPS:-20}
# fp32 on both devices (libtorch leaves TF32 matmuls off); the sums run in another order on the GPU,
# and AdamW carries the differences on, so later steps drift a little: 0.02 bits/token over 20 steps.
TOL=${TOL:-0.02}
[ -x "$BIN" ] || { echo "gpu_check: no $BIN; build it with scripts/build_cuda.sh" >&2; exit 1; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

W=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$W"' EXIT
# The toy job with absolute sample paths, STEPS pretraining steps and no intermediate checkpoints.
sed -e "s|\.\./\.\./data/samples|$ROOT/data/samples|" \
    -e "0,/^  steps: 120/s//  steps: $STEPS/" \
    -e "s|^  checkpoint_every: 20|  checkpoint_every: 0|" \
    "$ROOT/tests/e2e/tiny.yaml" > "$W/job.yaml"

run() { echo "+ lorazip $*" >&2; /usr/bin/time -f "  %e s wall" "$BIN" -q "$@"; }
run prepare "$W/job.yaml" -w "$W/cpu"
mkdir -p "$W/cuda" && cp "$W/cpu/data.h5" "$W/cpu/tokenizer.model" "$W/cuda/"
for dev in cpu cuda; do
  run pretrain "$W/job.yaml" -w "$W/$dev" --device "$dev"
  run train "$W/job.yaml" -w "$W/$dev" -d math -m "$W/cpu/base" --device "$dev"
done

python3 - "$W" "$TOL" <<'EOF'
import json, statistics, sys
w, tol = sys.argv[1], float(sys.argv[2])
bad = 0
for run in ("pretrain", "adapter-math"):
    rows = {}
    for dev in ("cpu", "cuda"):
        with open(f"{w}/{dev}/runs/{run}/metrics.jsonl") as f:
            rows[dev] = [j for j in map(json.loads, f) if "train_bits_per_token" in j]
    worst = 0.0
    for a, b in zip(rows["cpu"], rows["cuda"]):
        d = abs(a["train_bits_per_token"] - b["train_bits_per_token"])
        worst = max(worst, d)
        if d > tol:
            bad += 1
            print(f"{run} step {a['step']}: cpu {a['train_bits_per_token']:.5f} cuda {b['train_bits_per_token']:.5f} bits/token (diff {d:.5f} > {tol})")
    tps = {dev: statistics.median(r["tokens_per_s"] for r in rows[dev][1:] or rows[dev]) for dev in rows}
    print(f"{run}: {len(rows['cpu'])} steps, largest loss difference {worst:.5f} bits/token (tolerance {tol}); "
          f"median tokens/s cpu {tps['cpu']:.0f}, cuda {tps['cuda']:.0f}")
sys.exit(1 if bad else 0)
EOF

# Data parallelism over NCCL: two ranks, one GPU each, the same global batch.
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l || echo 0)
if [ "$ngpu" -ge 2 ] && command -v torchrun >/dev/null; then
  mkdir -p "$W/nccl" && cp "$W/cpu/data.h5" "$W/cpu/tokenizer.model" "$W/nccl/"
  run_dp() { echo "+ torchrun --nproc_per_node=2 --no-python lorazip $*" >&2; torchrun --nproc_per_node=2 --no-python "$BIN" -q "$@"; }
  run_dp pretrain "$W/job.yaml" -w "$W/nccl" --device cuda
  python3 - "$W" "$TOL" <<'EOF'
import json, sys
w, tol = sys.argv[1], float(sys.argv[2])
load = lambda d: [j["train_bits_per_token"] for j in map(json.loads, open(f"{w}/{d}/runs/pretrain/metrics.jsonl")) if "train_bits_per_token" in j]
worst = max(abs(a - b) for a, b in zip(load("cuda"), load("nccl")))
print(f"NCCL, 2 ranks vs 1 GPU: largest loss difference {worst:.5f} bits/token (tolerance {tol})")
sys.exit(1 if worst > tol else 0)
EOF
else
  echo "NCCL check skipped: needs 2 GPUs and torchrun (found $ngpu GPU(s))"
fi
echo "gpu_check: OK"
