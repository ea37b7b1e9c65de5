#!/usr/bin/env bash
# Two "hosts" on one machine: two network namespaces joined by a veth pair (10.231.7.1 and
# 10.231.7.2, inside them only), one torchrun per namespace with --nnodes 2, training the
# tests/tools/ddp_worker LoRA job across them over Gloo; then the same job in one process, and the
# per-step training and validation bits/token of both must agree to 1e-5 relative.
# Usage: tests/ddp_netns.sh BUILD_DIR. Exit 77 (skipped) without `ip netns` rights or torchrun.
set -euo pipefail
build=$(cd "$1" && pwd)
worker="$build/bin/ddp_worker"
command -v torchrun >/dev/null || { echo "skip: torchrun is not on PATH (Debian package python3-torch)"; exit 77; }
command -v ip >/dev/null || { echo "skip: no ip command (iproute2)"; exit 77; }
tag="lzddp$$"
ns0="${tag}a" ns1="${tag}b"
if ! ip netns add "$ns0" 2>/dev/null; then echo "skip: cannot create network namespaces (needs CAP_NET_ADMIN)"; exit 77; fi
work=$(mktemp -d)
cleanup() {
  ip netns del "$ns0" 2>/dev/null || true
  ip netns del "$ns1" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns1"
ip link add "${tag}0" type veth peer name "${tag}1"
ip link set "${tag}0" netns "$ns0"
ip link set "${tag}1" netns "$ns1"
ip -n "$ns0" addr add 10.231.7.1/24 dev "${tag}0"
ip -n "$ns1" addr add 10.231.7.2/24 dev "${tag}1"
for n in 0 1; do
  ns=$([ $n = 0 ] && echo "$ns0" || echo "$ns1")
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "${tag}$n" up
done

"$worker" lora "$work/one" "$work/run_one" > "$work/one.log" 2>&1 || { cat "$work/one.log"; exit 1; }
# Each "host" runs torchrun for its node; the store is served by node 0's agent at 10.231.7.1.
# GLOO_SOCKET_IFNAME makes Gloo use the veth (the namespace has no host name to resolve).
for n in 1 0; do
  ns=$([ $n = 0 ] && echo "$ns0" || echo "$ns1")
  ip netns exec "$ns" env GLOO_SOCKET_IFNAME="${tag}$n" torchrun --nnodes=2 --node_rank=$n --nproc_per_node=1 \
    --master_addr=10.231.7.1 --master_port=29531 --monitor_interval=1 --redirects=1 --tee=1 --log_dir="$work/logs$n" \
    --no_python "$worker" lora "$work/two" "$work/run_two" > "$work/node$n.log" 2>&1 &
  eval "pid$n=\$!"
done
status=0
wait "$pid0" || status=1
wait "$pid1" || status=1
if [ $status != 0 ]; then cat "$work/node0.log" "$work/node1.log"; echo "FAIL: a node failed"; exit 1; fi
python3 - "$work/run_one/metrics.jsonl" "$work/run_two/metrics.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
b = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
assert len(a) == len(b), f"{len(a)} vs {len(b)} metrics lines"
assert b[-1].get("world_size") == 2, "the two-node run's metrics do not say world_size 2"
for x, y in zip(a, b):
    for k in ("train_bits_per_token", "val_bits_per_token"):
        if x.get(k) is not None:
            assert abs(x[k] - y[k]) <= 1e-5 * abs(x[k]), f"step {x['step']} {k}: {x[k]} vs {y[k]}"
print(f"ok: two namespaces trained what one process trains ({len(a)} metrics lines agree to 1e-5)")
EOF
