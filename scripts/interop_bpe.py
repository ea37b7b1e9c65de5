#!/usr/bin/env python3
"""Compares lorazip's byte-level BPE token ids with llama.cpp's (through PyPI's llama-cpp-python)
on every document of ../shared/data/llm-text and on edge cases. Run by scripts/interop.sh.

Usage: interop_bpe.py GGUF VOCAB_JSON DUMP_TOOL DATA_DIR WORK_DIR
Exit status: 0 when every input gives the same ids, or differs only where llama.cpp itself
loses bytes (its ids do not decode back to the input: invalid UTF-8 becomes U+FFFD, bytes with
no token are dropped); 1 on any other difference; 77 when llama_cpp cannot be imported.
"""
import json
import os
import subprocess
import sys

try:
    import llama_cpp
except ImportError as e:  # the CTest reports this as skipped
    print("skipped: llama_cpp is not importable (%s); pip install llama-cpp-python in $LORAZIP_PYTHON's env" % e)
    sys.exit(77)

EDGE_CASES = [
    b"", b" ", b"\n", b"\r\n", b"\x00", b"a\x00b", b" " * 1000, b"\n" * 500, b"\t" * 300 + b"x",
    b"   leading and trailing   ", b"\r\n\r\n  \r\n", "emoji 😀👍🏽 done 👨‍👩‍👧".encode(),
    "日本語のテキスト、中文 Ελληνικά русский العربية ١٢٣".encode(),
    b"I'm can't we'VE they'll 'S 'd''s", b"12345678901234567890 1.5e-10 -42",
    b"<|im_start|>user\nhi<|im_end|>\n<|endoftext|>", b"def f(x):\n\treturn x  # done\n\n\n",
    "\u2028\u3000\u00a0\u0085 mixed spaces\u200b".encode(),
    b"\xff\xfe invalid \x80 utf8 \xc3", b"\xed\xa0\x80 surrogate", b"\xc0\xaf overlong",
    b"control \x04\x06\x13 bytes", b"tab\tsep\x0bvt\x0c ff",
]


def documents(data_dir):
    """(domain, text bytes) for every record of every .jsonl under data_dir/<domain>/."""
    for domain in sorted(os.listdir(data_dir)):
        d = os.path.join(data_dir, domain)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith(".jsonl"):
                continue
            with open(os.path.join(d, name), encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if line:
                        yield domain, json.loads(line)["text"].encode("utf-8")


def main():
    gguf_path, vocab, tool, data_dir, work = sys.argv[1:6]
    inputs = [("edge", b) for b in EDGE_CASES] + list(documents(data_dir))
    os.makedirs(work, exist_ok=True)
    in_path, out_path = os.path.join(work, "inputs.jsonl"), os.path.join(work, "ids.jsonl")
    with open(in_path, "w") as f:
        for _, b in inputs:
            f.write(json.dumps({"hex": b.hex()}) + "\n")
    subprocess.run([tool, vocab, in_path, out_path], check=True)
    with open(out_path) as f:
        ours = [json.loads(line)["ids"] for line in f]
    assert len(ours) == len(inputs)

    llm = llama_cpp.Llama(model_path=gguf_path, vocab_only=True, verbose=False)
    stats = {}
    failures = []
    for (domain, b), mine in zip(inputs, ours):
        theirs = llm.tokenize(b, add_bos=False, special=False) if b else []
        s = stats.setdefault(domain, {"inputs": 0, "same": 0, "llama.cpp lossy": 0, "different": 0, "bytes": 0})
        s["inputs"] += 1
        s["bytes"] += len(b)
        if mine == theirs:
            s["same"] += 1
        elif llm.detokenize(theirs) != b:
            s["llama.cpp lossy"] += 1
        else:
            s["different"] += 1
            k = next((i for i, (x, y) in enumerate(zip(mine, theirs)) if x != y), min(len(mine), len(theirs)))
            failures.append((domain, b[:80], k, mine[max(0, k - 3):k + 5], theirs[max(0, k - 3):k + 5]))
    print("llama-cpp-python %s, %s" % (llama_cpp.__version__, os.path.basename(gguf_path)))
    print("%-10s %7s %9s %7s %16s %9s" % ("domain", "inputs", "bytes", "same", "llama.cpp lossy", "different"))
    for domain, s in stats.items():
        print("%-10s %7d %9d %7d %16d %9d" % (domain, s["inputs"], s["bytes"], s["same"], s["llama.cpp lossy"], s["different"]))
    for f in failures[:20]:
        print("DIFFERENT [%s] %r: first difference at token %d: lorazip %s, llama.cpp %s" % f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
