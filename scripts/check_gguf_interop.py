#!/usr/bin/env python3
"""lorazip's GGUF dequantization against the `gguf` Python package (llama.cpp's gguf-py) on a
real file: every tensor, value by value; prints the largest absolute difference per type and fails
unless it is 0 everywhere. Also checks that the tensor names, types and shapes agree.

Usage: check_gguf_interop.py DUMP_PROGRAM FILE.gguf
Exit 0 = equal, 1 = a difference, 77 = skipped (the gguf package or the file is absent).
"""
import subprocess
import sys
from collections import defaultdict

SKIP = 77


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    dump, path = sys.argv[1], sys.argv[2]
    try:
        import numpy as np
        import gguf
        from gguf.quants import dequantize
        from importlib.metadata import version
    except ImportError as e:
        print(f"SKIP: the gguf Python package is not importable here ({e}); "
              "make a venv with `pip install gguf numpy` and set LORAZIP_GGUF_PYTHON", file=sys.stderr)
        return SKIP
    try:
        reader = gguf.GGUFReader(path)
    except FileNotFoundError:
        print(f"SKIP: {path} not found (bash scripts/fetch_smollm2.sh fetches it)", file=sys.stderr)
        return SKIP

    proc = subprocess.Popen([dump, path], stdout=subprocess.PIPE)
    worst = defaultdict(float)
    count = defaultdict(int)
    values = 0
    ok = True
    for t in reader.tensors:
        ref = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        n = int(np.prod([int(x) for x in t.shape]))
        if ref.size != n:
            print(f"{t.name}: gguf-py gives {ref.size} values, the shape says {n}", file=sys.stderr)
            ok = False
        raw = proc.stdout.read(4 * n)
        if len(raw) != 4 * n:
            print(f"{t.name}: the dump ended early ({len(raw)} of {4 * n} bytes)", file=sys.stderr)
            ok = False
            break
        ours = np.frombuffer(raw, dtype="<f4")
        diff = float(np.max(np.abs(ours.astype(np.float64) - ref.astype(np.float64)))) if n else 0.0
        if np.isnan(diff) or not np.array_equal(np.isnan(ours), np.isnan(ref)):
            diff = float("inf")
        kind = t.tensor_type.name
        worst[kind] = max(worst[kind], diff)
        count[kind] += 1
        values += n
        if diff != 0.0:
            ok = False
            print(f"{t.name} ({kind}): max abs diff {diff}", file=sys.stderr)
    rest = proc.stdout.read()
    rc = proc.wait()
    if rc != 0 or rest:
        print(f"dump program exited {rc} with {len(rest)} unexpected trailing bytes", file=sys.stderr)
        ok = False
    for kind in sorted(worst):
        print(f"{kind}: {count[kind]} tensors, max abs diff {worst[kind]}")
    print(f"{len(reader.tensors)} tensors, {values} values: {'EQUAL' if ok else 'DIFFERENT'} (gguf {version('gguf')})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
