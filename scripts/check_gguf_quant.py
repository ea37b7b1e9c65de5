#!/usr/bin/env python3
"""lorazip's quantized GGUF tensors against the `gguf` Python package (llama.cpp's gguf-py): reads
DIR/kinds.gguf (written by gguf_quant_dump) with gguf.GGUFReader, dequantizes every tensor with
gguf.quants.dequantize and compares it bit for bit with lorazip's dequantization in
DIR/<tensor>.f32. Prints one line per tensor (kind, values, max abs diff, identical) and fails
unless every tensor is identical and every engine kind is present.

Usage: check_gguf_quant.py DIR
Exit 0 = identical, 1 = a difference, 77 = skipped (gguf or numpy not importable).
"""
import os
import sys

SKIP = 77
KINDS = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"]


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = sys.argv[1]
    try:
        import numpy as np
        import gguf
        from gguf.quants import dequantize
        from importlib.metadata import version
    except ImportError as e:
        print(f"SKIP: gguf / numpy not importable ({e}); use a venv with `pip install gguf numpy`", file=sys.stderr)
        return SKIP

    reader = gguf.GGUFReader(os.path.join(d, "kinds.gguf"))
    ok = True
    seen = set()
    rows = []
    for t in reader.tensors:
        kind = t.tensor_type.name
        n = int(np.prod([int(x) for x in t.shape]))
        ref = np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(-1)
        ours = np.fromfile(os.path.join(d, t.name + ".f32"), dtype="<f4")
        if ref.size != n or ours.size != n:
            print(f"{t.name}: {n} values by the shape, gguf-py gives {ref.size}, lorazip {ours.size}", file=sys.stderr)
            ok = False
            continue
        identical = bool(np.array_equal(ours.view(np.uint32), ref.view(np.uint32)))
        finite = bool(np.all(np.isfinite(ours)) and np.all(np.isfinite(ref)))
        diff = float(np.max(np.abs(ours.astype(np.float64) - ref.astype(np.float64)))) if finite else float("inf")
        ok = ok and identical
        seen.add((t.name.split(".")[0], kind))
        rows.append((t.name, kind, n, diff, identical))
    print(f"{'tensor':<10} {'kind':<5} {'values':>7}  {'max abs diff':>12}  identical")
    for name, kind, n, diff, identical in rows:
        print(f"{name:<10} {kind:<5} {n:>7}  {diff:>12.6g}  {'yes' if identical else 'NO'}")
    missing = [k for k in KINDS if ("q", k) not in seen] + [f"raw.{k}" for k in KINDS[3:] if ("raw", k) not in seen]
    if missing:
        print(f"missing tensors: {', '.join(missing)}", file=sys.stderr)
        ok = False
    total = sum(r[2] for r in rows)
    print(f"{len(rows)} tensors, {total} values: {'IDENTICAL' if ok else 'DIFFERENT'} (gguf {version('gguf')}, numpy {np.__version__})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
