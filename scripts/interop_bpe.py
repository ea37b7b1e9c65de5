#!/usr/bin/env python3
"""Compares lorazip's byte-level BPE token ids with llama.cpp's (through PyPI's llama-cpp-python)
on every document of ../shared/data/llm-text, on edge cases and on seeded random Unicode text,
with SmolLM2's vocabulary under its own pre-tokenizer (smollm) and, through vocabulary-only copies
of the GGUF whose tokenizer.ggml.pre is rewritten, under gpt2 and llama-bpe too (the random and
edge inputs only). Run by scripts/interop.sh.

Usage: interop_bpe.py GGUF VOCAB_JSON DUMP_TOOL DATA_DIR WORK_DIR
Exit status: 0 when every input gives the same ids, or differs only where llama.cpp itself
loses bytes (its ids do not decode back to the input: invalid UTF-8 becomes U+FFFD, bytes with
no token are dropped); 1 on any other difference; 77 when llama_cpp cannot be imported.
"""
import json
import os
import random
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


def random_texts(n, seed=1):
    """Valid UTF-8 strings mixing ASCII words, digits, punctuation, many kinds of whitespace,
    contractions in both cases, non-Latin letters, marks, emoji and unassigned code points.
    Planes 4-11 are left out: their lead bytes 0xF1/0xF2 have no token in SmolLM2, where llama.cpp
    drops bytes and so cannot be compared with."""
    rng = random.Random(seed)
    pool = list(" \t\n\r\x0b\x0c'\"!?.,;:-_()[]{}<>|/\\#@$%^&*+=~`") + list("abcXYZsStTmMdDrReEvVlL0123456789")
    pool += ["\u00a0", "\u0085", "\u1680", "\u2000", "\u2009", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
             "\u200b", "\u00e9", "\u0301", "\u4e2d", "\u0663", "\u00bd", "\u2163", "\U0001F600", "\U0001F3FD",
             "\u200d", "\ufeff", "\U000E0001", "\u0378", "\U0010FFFF", "\ue000", "\u05d0", "\u0e01", "\u3042"]
    out = []
    for _ in range(n):
        k = rng.randrange(1, 60)
        s = "".join(rng.choice(pool) if rng.random() < 0.8 else chr(rng.choice(
            [rng.randrange(0x80, 0xD800), rng.randrange(0xE000, 0x40000), rng.randrange(0xC0000, 0x110000)])) for _ in range(k))
        out.append(s.encode("utf-8"))
    return out


def vocab_only_copy(src, dst, pre):
    """Writes a tensor-less copy of the GGUF src with tokenizer.ggml.pre = pre."""
    import gguf
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, reader.fields["general.architecture"].contents())
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        value = pre if name == "tokenizer.ggml.pre" else field.contents()
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, value, field.types[0], sub_type=sub)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()


def compare(tag, gguf_path, vocab, tool, inputs, work):
    """Encodes inputs with lorazip and llama.cpp; prints a table; returns the real differences."""
    in_path, out_path = os.path.join(work, tag + "-inputs.jsonl"), os.path.join(work, tag + "-ids.jsonl")
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
            failures.append((tag, domain, b[:80], k, mine[max(0, k - 3):k + 5], theirs[max(0, k - 3):k + 5]))
    print("== pre %s" % tag)
    print("%-10s %7s %9s %7s %16s %9s" % ("domain", "inputs", "bytes", "same", "llama.cpp lossy", "different"))
    for domain, s in stats.items():
        print("%-10s %7d %9d %7d %16d %9d" % (domain, s["inputs"], s["bytes"], s["same"], s["llama.cpp lossy"], s["different"]))
    return failures


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
    os.makedirs(work, exist_ok=True)
    small = [("edge", b) for b in EDGE_CASES] + [("random", b) for b in random_texts(3000)]
    print("llama-cpp-python %s, %s" % (llama_cpp.__version__, os.path.basename(gguf_path)))
    failures = compare("smollm", gguf_path, vocab, tool, small + list(documents(data_dir)), work)
    with open(vocab) as f:
        exported = json.load(f)
    for pre in ("gpt-2", "llama-bpe"):
        copy = os.path.join(work, "vocab-%s.gguf" % pre)
        vocab_only_copy(gguf_path, copy, pre)
        exported["pre"] = pre
        vpath = os.path.join(work, "vocab-%s.json" % pre)
        with open(vpath, "w", encoding="utf-8") as f:
            json.dump(exported, f, ensure_ascii=False)
        failures += compare(pre, copy, vpath, tool, small, work)
    for f in failures[:20]:
        print("DIFFERENT [%s/%s] %r: first difference at token %d: lorazip %s, llama.cpp %s" % f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
