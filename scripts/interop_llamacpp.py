#!/usr/bin/env python3
"""Compares the coding engine's next-token log-probabilities (engine_logprobs) with llama.cpp's
(through PyPI's llama-cpp-python) on the same token ids: the first TOKENS tokens (after BOS, as
the codec codes them) of the first DOCS documents of each domain of ../shared/data/llm-text, on
SmolLM2's Q4_1 GGUF; then the same with a random-but-nonzero LoRA adapter exported by
`lorazip export` (adapter_model.gguf, loaded by llama.cpp with lora_scale 1.0), comparing the
adapter's change of the log-probabilities on both sides. Run by scripts/interop_llamacpp.sh.

Usage: interop_llamacpp.py GGUF TOOL LORAZIP DATA_DIR WORK_DIR [--docs N] [--lora-docs M] [--tokens T]
Exit status: 0 when every check below holds, 1 otherwise, 77 when llama_cpp/numpy cannot be imported.
Checks (why these bounds: docs/gguf.md, "Interop with llama.cpp"):
  base:    |mean bits/token (lorazip) / mean bits/token (llama.cpp) - 1| < 1 %, and the mean abs
           difference of the actual token's log-probability < 0.1 nats;
  F32:     llama.cpp on an F32 copy of the weights: mean abs difference < 5e-3 nats, max < 0.1;
  adapter: correlation of the per-token deltas (adapter - base) > 0.99, and their mean abs
           difference < 10 % of the mean abs delta.
"""
import argparse
import json
import math
import os
import subprocess
import sys

try:
    import numpy as np
    import llama_cpp
except ImportError as e:  # the CTest reports this as skipped
    print("skipped: numpy/llama_cpp not importable (%s); pip install llama-cpp-python in $LORAZIP_PYTHON's env" % e)
    sys.exit(77)

LN2 = math.log(2.0)


def first_documents(data_dir, per_domain):
    """[(domain, text)]: the first per_domain records of each domain, files in name order."""
    out = []
    for domain in sorted(os.listdir(data_dir)):
        d = os.path.join(data_dir, domain)
        if not os.path.isdir(d):
            continue
        n = 0
        for name in sorted(f for f in os.listdir(d) if f.endswith(".jsonl")):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                for line in f:
                    if n >= per_domain:
                        break
                    line = line.strip()
                    if line:
                        out.append((domain, json.loads(line)["text"]))
                        n += 1
    return out


def engine(tool, base, adapter, texts, tokens, work, tag):
    """engine_logprobs over texts -> list of {"ids", "logprobs", "bits"}."""
    in_path, out_path = os.path.join(work, tag + "-in.jsonl"), os.path.join(work, tag + "-engine.jsonl")
    with open(in_path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    cmd = [tool, "-m", base, "--max-tokens", str(tokens)] + (["-a", adapter] if adapter else []) + [in_path, out_path]
    subprocess.run(cmd, check=True)
    with open(out_path) as f:
        return [json.loads(line) for line in f]


def llama_logprobs(gguf_path, id_lists, lora=None):
    """llama.cpp's ln p(ids[i+1] | ids[..i]) for each id list (ids[0] is BOS), from scores of eval()."""
    n_ctx = max(len(ids) for ids in id_lists) + 8
    kw = dict(model_path=gguf_path, n_ctx=n_ctx, n_batch=n_ctx, logits_all=True, verbose=False,
              n_threads=int(os.environ.get("LORAZIP_LLAMA_THREADS", "2")))
    if lora:
        kw.update(lora_path=lora, lora_scale=1.0)
    llm = llama_cpp.Llama(**kw)
    out = []
    for ids in id_lists:
        llm.reset()
        llm.eval(ids)
        s = np.asarray(llm.scores[:len(ids)], dtype=np.float64)
        m = s.max(axis=1, keepdims=True)
        ls = s - m - np.log(np.exp(s - m).sum(axis=1, keepdims=True))
        out.append(ls[np.arange(len(ids) - 1), np.asarray(ids[1:])])
    return out, llm


def f32_copy(src, dst):
    """Writes dst: src with every tensor dequantized to F32 by the gguf package (the values lorazip
    loads: scripts/check_gguf_interop.sh finds them equal), metadata unchanged. llama.cpp runs F32
    weights without quantizing activations, so this isolates the Q8_1 activation rounding."""
    import gguf
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, reader.fields["general.architecture"].contents())
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), field.types[0], sub_type=sub)
    for t in reader.tensors:
        writer.add_tensor(t.name, np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    ap = argparse.ArgumentParser()
    for a in ("gguf", "tool", "lorazip", "data", "work"):
        ap.add_argument(a)
    ap.add_argument("--docs", type=int, default=20, help="documents per domain for the base comparison")
    ap.add_argument("--lora-docs", type=int, default=4, help="documents per domain for the adapter comparison")
    ap.add_argument("--f32-docs", type=int, default=2, help="documents per domain also run on an F32 copy in llama.cpp (0: none)")
    ap.add_argument("--tokens", type=int, default=256, help="tokens per document after BOS")
    ap.add_argument("--b-std", type=float, default=0.2, help="std of the random adapter's B (0.02 is lost in llama.cpp's Q8_1 noise)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    print("llama-cpp-python %s, %s; first %d tokens of %d documents per domain (adapter: %d)"
          % (llama_cpp.__version__, os.path.basename(args.gguf), args.tokens, args.docs, args.lora_docs))
    ok = True

    # --- base
    docs, ours = [], []
    if args.docs > 0:
        docs = first_documents(args.data, args.docs)
        ours = engine(args.tool, args.gguf, None, [t for _, t in docs], args.tokens, args.work, "base")
        theirs, llm = llama_logprobs(args.gguf, [r["ids"] for r in ours])
        same_ids = sum(llm.tokenize(t.encode("utf-8"), add_bos=False, special=False)[:args.tokens] == r["ids"][1:]
                       for (_, t), r in zip(docs, ours))
        del llm
        print("token ids: llama.cpp's tokenizer gives lorazip's ids on %d of %d documents (both sides score lorazip's)"
              % (same_ids, len(docs)))
        print("%-9s %5s %7s %11s %11s %10s %10s %10s" % ("domain", "docs", "tokens", "bits/tok L", "bits/tok C",
                                                        "rel diff", "mean|dlp|", "max|dlp|"))
        rows = {}
        for (domain, _), r, lp in zip(docs, ours, theirs):
            d = rows.setdefault(domain, {"docs": 0, "ours_lp": [], "ours_bits": [], "theirs_lp": []})
            d["docs"] += 1
            d["ours_lp"] += r["logprobs"]
            d["ours_bits"] += r["bits"]
            d["theirs_lp"] += list(lp)
        rows["all"] = {k: ([x for v in rows.values() for x in v[k]] if k != "docs" else sum(v["docs"] for v in rows.values()))
                       for k in ("docs", "ours_lp", "ours_bits", "theirs_lp")}
        for domain, d in rows.items():
            a, b = np.asarray(d["ours_lp"]), np.asarray(d["theirs_lp"])
            bits_l, bits_c = float(np.mean(d["ours_bits"])), float(np.mean(-b / LN2))
            diff = np.abs(a - b)
            print("%-9s %5d %7d %11.4f %11.4f %9.3f%% %10.4f %10.4f" % (domain, d["docs"], len(a), bits_l, bits_c,
                                                                       100 * (bits_l / bits_c - 1), diff.mean(), diff.max()))
        # llama.cpp on an F32 copy of the same weights: no activation quantization left.
        if args.f32_docs > 0:
            f32 = os.path.join(args.work, "base-f32.gguf")
            if not os.path.exists(f32):
                f32_copy(args.gguf, f32 + ".tmp")
                os.replace(f32 + ".tmp", f32)
            seen = {}
            sel = [r for (dm, _), r in zip(docs, ours) if seen.setdefault(dm, []).append(1) or len(seen[dm]) <= args.f32_docs]
            f32_theirs, llm = llama_logprobs(f32, [r["ids"] for r in sel])
            del llm
            a = np.concatenate([np.asarray(r["logprobs"]) for r in sel])
            b = np.concatenate(f32_theirs)
            print("llama.cpp on the F32 copy (%d documents, %d tokens): mean |dlp| %.2e, max %.2e nats; bits/token %.4f vs %.4f"
                  % (len(sel), len(a), np.abs(a - b).mean(), np.abs(a - b).max(), float(np.mean(-a / LN2)), float(np.mean(-b / LN2))))
            if np.abs(a - b).mean() >= 5e-3 or np.abs(a - b).max() >= 0.1:
                print("FAIL: with F32 weights llama.cpp should agree to < 5e-3 nats mean abs, < 0.1 on every token")
                ok = False
        a, b = np.asarray(rows["all"]["ours_lp"]), np.asarray(rows["all"]["theirs_lp"])
        rel = float(np.mean(rows["all"]["ours_bits"])) / float(np.mean(-b / LN2)) - 1
        if abs(rel) >= 0.01 or np.abs(a - b).mean() >= 0.1:
            print("FAIL: base log-probabilities differ beyond the tolerance (1 % of bits/token, 0.1 nats mean abs)")
            ok = False

    # --- adapter: random B, exported by lorazip export, loaded by llama.cpp
    if args.lora_docs > 0:
        peft = os.path.join(args.work, "random-adapter")
        exported = os.path.join(args.work, "random-adapter-export")
        subprocess.run([args.tool, "-m", args.gguf, "--make-adapter", peft, "--b-std", str(args.b_std)], check=True)
        subprocess.run([args.lorazip, "export", "-m", args.gguf, "-a", peft, "-o", exported, "-f"], check=True)
        ldocs = first_documents(args.data, args.lora_docs)
        by_text = {t: r for (_, t), r in zip(docs, ours)}
        base_ours = [by_text[t] for _, t in ldocs] if all(t in by_text for _, t in ldocs) else \
            engine(args.tool, args.gguf, None, [t for _, t in ldocs], args.tokens, args.work, "lora-base")
        lora_ours = engine(args.tool, args.gguf, exported, [t for _, t in ldocs], args.tokens, args.work, "lora")
        ids = [r["ids"] for r in base_ours]
        base_theirs, llm = llama_logprobs(args.gguf, ids)
        del llm
        lora_theirs, llm = llama_logprobs(args.gguf, ids, lora=os.path.join(exported, "adapter_model.gguf"))
        del llm
        d_ours = np.concatenate([np.asarray(l["logprobs"]) - np.asarray(b["logprobs"]) for l, b in zip(lora_ours, base_ours)])
        d_theirs = np.concatenate([l - b for l, b in zip(lora_theirs, base_theirs)])
        corr = float(np.corrcoef(d_ours, d_theirs)[0, 1])
        mad = float(np.abs(d_ours - d_theirs).mean())
        mag = float(np.abs(d_ours).mean())
        bits = lambda rs: float(np.mean([x for r in rs for x in r["bits"]]))
        lbits = lambda lps: float(np.mean(-np.concatenate(lps) / LN2))
        print("adapter (r 8, all 7 projections, B ~ N(0, %g^2)) on %d documents, %d tokens:" % (args.b_std, len(ldocs), len(d_ours)))
        print("  bits/token base -> adapter: lorazip %.4f -> %.4f, llama.cpp %.4f -> %.4f"
              % (bits(base_ours), bits(lora_ours), lbits(base_theirs), lbits(lora_theirs)))
        print("  delta log-prob (adapter - base): mean |delta| lorazip %.4f, llama.cpp %.4f nats; correlation %.5f; "
              "mean |delta_lorazip - delta_llama.cpp| %.4f nats (%.2f %% of mean |delta|), max %.4f"
              % (mag, float(np.abs(d_theirs).mean()), corr, mad, 100 * mad / mag, float(np.abs(d_ours - d_theirs).max())))
        if not (corr > 0.99 and mad < 0.1 * mag):
            print("FAIL: the adapter's effect differs between lorazip and llama.cpp (need correlation > 0.99, "
                  "mean abs difference < 10 % of mean |delta|)")
            ok = False
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
