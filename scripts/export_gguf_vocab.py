#!/usr/bin/env python3
"""Exports a GGUF file's byte-level BPE vocabulary (tokenizer.ggml.*) to a plain JSON file for
lorazip's tokenizer tests and the llama.cpp interop check. Test tooling only: lorazip's own GGUF
reader is model/gguf.cpp; this uses PyPI's `gguf` package as an independent reader.

Usage: python3 scripts/export_gguf_vocab.py MODEL.gguf OUT.json
Output: {"tokens": [...], "types": [...], "merges": [...], "bos": id|-1, "eos": id|-1,
         "add_bos": bool, "pre": "...", "model": "gpt2"}
"""
import json
import os
import sys

import gguf


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    reader = gguf.GGUFReader(sys.argv[1])

    def get(key, default=None):
        field = reader.fields.get(key)
        return default if field is None else field.contents()

    model = get("tokenizer.ggml.model")
    if model != "gpt2":
        sys.exit("%s: tokenizer.ggml.model is %r, not gpt2 (byte-level BPE)" % (sys.argv[1], model))
    out = {
        "model": model,
        "tokens": get("tokenizer.ggml.tokens"),
        "types": [int(t) for t in get("tokenizer.ggml.token_type")],
        "merges": get("tokenizer.ggml.merges", []),
        "bos": int(get("tokenizer.ggml.bos_token_id", -1)),
        "eos": int(get("tokenizer.ggml.eos_token_id", -1)),
        "add_bos": bool(get("tokenizer.ggml.add_bos_token", False)),
        "pre": get("tokenizer.ggml.pre", "default"),
    }
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
    os.replace(tmp, sys.argv[2])
    print("%s: %d tokens, %d merges, pre %s" % (sys.argv[2], len(out["tokens"]), len(out["merges"]), out["pre"]))


if __name__ == "__main__":
    main()
