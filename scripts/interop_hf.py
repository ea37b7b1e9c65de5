#!/usr/bin/env python3
"""What lorazip writes, loaded by the Hugging Face stack of the Python running this script
(transformers + peft + torch), from a folder other than the one it was written in. Run by
scripts/interop_hf.sh once per stack (an old and a current one); results in docs/formats.md,
"Interop with transformers and PEFT".

Usage: interop_hf.py JOB LORAZIP DUMP_IDS TEXTS_DIR ELSEWHERE [--domain D]
  JOB        a lorazip work dir (base/, adapters/D/) with exports beside them made by interop_hf.sh:
             JOB/export-peft (lorazip export) and JOB/export-merged (export --merged). Without base/
             (a GGUF base: transformers takes Hugging Face directories) only the merged export is
             checked: its loading, tokenizer and bits
  LORAZIP    the lorazip binary; DUMP_IDS: bpe_dump_ids (lorazip's token ids of a text)
  TEXTS_DIR  *.txt files to tokenize and code; ELSEWHERE: an empty folder to copy the adapter into
Checks, each printed with its figures; exit 1 when one fails, 77 when the stack cannot be imported:
  load:      base, merged export: no missing, unexpected or mismatched tensor, float32;
             adapter: the PEFT model's LoRA tensors are exactly adapter_model.safetensors'
  merged:    the merged export equals PEFT's merge_and_unload() (max abs difference printed, < 1e-6)
  tokenizer: AutoTokenizer (fast and slow) gives BOS + lorazip's ids on every text
  elsewhere: AutoPeftModelForCausalLM.from_pretrained(a copy of the adapter in another folder,
             run from yet another working directory) loads the base by adapter_config.json alone
  bits:      ideal code length of every text, base / base + adapter (PEFT) / merged, with lorazip's
             chunks (chunk = context - 1 positions, later chunks read a quarter chunk of the one
             before), against `lorazip compress -v`: relative difference < 1e-4 over all texts and
             per text (--per-text sets the latter: lorazip's arithmetic keeps keys and values as
             halves, which moves a short text's bits under a 135M model by up to a few 1e-4)
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import torch
    import transformers
    import peft
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
except ImportError as e:
    print("skipped: the Hugging Face stack is not importable here (%s)" % e)
    sys.exit(77)

LN2 = math.log(2.0)
TOLERANCE = 1e-4
failures = []


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures.append(what)


def load_model(path):
    model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True)
    model.eval()
    return model, info


def report_loading(name, model, info):
    bad = {k: sorted(info.get(k) or []) for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")}
    check(not any(bad.values()) and model.dtype == torch.float32,
          "%s loads: %s, dtype %s" % (name, ", ".join("%s %s" % (k, v or "none") for k, v in bad.items()), model.dtype))


def plan_chunks(n_tokens, chunk, context):
    out, start = [], 0
    while start < n_tokens:
        ctx = 0 if start == 0 else context
        n = min(chunk - ctx, n_tokens - start)
        out.append((start, n, ctx))
        start += n
    return out


@torch.no_grad()
def ideal_bits(model, bos, ids, max_positions):
    chunk = max_positions - 1
    total = 0.0
    for start, n, ctx in plan_chunks(len(ids), chunk, chunk // 4):
        inp = [bos] + ids[start - ctx:start + n - 1]
        logits = model(input_ids=torch.tensor([inp])).logits[0].double()
        logp = torch.log_softmax(logits[ctx:ctx + n], dim=-1)
        target = torch.tensor(ids[start:start + n])
        total -= logp.gather(1, target[:, None]).sum().item() / LN2
    return total


def lorazip_ids(dump_ids, tokenizer_file, texts, work):
    inp, out = os.path.join(work, "ids-in.jsonl"), os.path.join(work, "ids-out.jsonl")
    with open(inp, "w") as f:
        for t in texts:
            f.write(json.dumps({"hex": t.encode("utf-8").hex()}) + "\n")
    subprocess.run([dump_ids, "--native", tokenizer_file, inp, out], check=True, stderr=subprocess.DEVNULL)
    with open(out) as f:
        return [json.loads(line)["ids"] for line in f]


def lorazip_bits(lorazip, model_dir, adapter, files, work):
    """`lorazip compress -v` on every file: {file: ideal bits} from its report lines."""
    out_dir = tempfile.mkdtemp(dir=work)
    cmd = [lorazip, "-t", "2", "compress", "-v", "-f", "-m", model_dir]
    if adapter:
        cmd += ["-a", adapter]
    copies = []
    for p in files:
        copies.append(os.path.join(out_dir, os.path.basename(p)))
        shutil.copyfile(p, copies[-1])
    r = subprocess.run(cmd + copies, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("lorazip compress failed: " + r.stderr)
    bits = {}
    for line in r.stderr.splitlines():
        m = re.match(r"(.*): \d+ bytes, \d+ tokens.* ideal ([0-9.]+) bits", line)
        if m:
            bits[os.path.basename(m.group(1))] = float(m.group(2))
    return [bits[os.path.basename(p)] for p in files]


def compare_bits(name, ours, theirs, per_text):
    worst = max(abs(a / b - 1.0) for a, b in zip(theirs, ours))
    total = abs(sum(theirs) / sum(ours) - 1.0)
    if os.environ.get("INTEROP_HF_DEBUG"):
        print("\n".join("    lorazip %.2f transformers %.3f: %.2e" % (b, a, a / b - 1) for a, b in zip(theirs, ours)))
    check(worst < per_text and total < TOLERANCE,
          "%s: bits of %d texts, %.2f (transformers) vs %.2f (lorazip): relative difference %.2e in all (bound %g), "
          "%.2e at worst for one text (bound %g)" % (name, len(ours), sum(theirs), sum(ours), total, TOLERANCE, worst, per_text))


def main():
    ap = argparse.ArgumentParser()
    for a in ("job", "lorazip", "dump_ids", "texts_dir", "elsewhere"):
        ap.add_argument(a)
    ap.add_argument("--domain", default="math")
    ap.add_argument("--per-text", type=float, default=TOLERANCE,
                    help="bound on one text's relative difference of bits (default 1e-4)")
    a = ap.parse_args()
    base_dir = os.path.join(a.job, "base")
    adapter_dir = os.path.join(a.job, "adapters", a.domain)
    peft_dir = os.path.join(a.job, "export-peft")
    merged_dir = os.path.join(a.job, "export-merged")
    files = sorted(os.path.join(a.texts_dir, f) for f in os.listdir(a.texts_dir) if f.endswith(".txt"))
    texts = [open(p, encoding="utf-8").read() for p in files]
    work = tempfile.mkdtemp(prefix="interop-hf-")
    print("stack: python %s, torch %s, transformers %s, peft %s; %d texts"
          % (sys.version.split()[0], torch.__version__, transformers.__version__, peft.__version__, len(texts)))
    torch.manual_seed(0)
    torch.set_num_threads(2)

    # Tokenizer: BOS + lorazip's ids, from both classes, on the base directory (a GGUF job has only
    # the merged export as a Hugging Face directory).
    hf_base = os.path.isdir(base_dir)
    tok_dir = base_dir if hf_base else merged_dir
    tok_file = next(os.path.join(tok_dir, f) for f in ("tokenizer.model", "tokenizer.json")
                    if os.path.exists(os.path.join(tok_dir, f)))
    ours = lorazip_ids(a.dump_ids, tok_file, texts, work)
    bos = json.load(open(os.path.join(tok_dir, "config.json")))["bos_token_id"]
    for fast in (True, False):
        if not fast and tok_file.endswith(".json"):
            continue  # a tokenizer.json has no slow class
        tok = AutoTokenizer.from_pretrained(tok_dir, use_fast=fast)
        same = sum(tok(t)["input_ids"] == [bos] + ids for t, ids in zip(texts, ours))
        check(same == len(texts), "AutoTokenizer (%s, %s) gives BOS + lorazip's ids on %d of %d texts"
              % (type(tok).__name__, os.path.basename(tok_file), same, len(texts)))

    pm = None
    if hf_base:
        base, info = load_model(base_dir)
        report_loading("base", base, info)
        max_pos = base.config.max_position_embeddings
        ref_base = lorazip_bits(a.lorazip, base_dir, None, files, work)
        compare_bits("base", ref_base, [ideal_bits(base, bos, ids, max_pos) for ids in ours], a.per_text)
        del base

        # The adapter copied to another folder and loaded from a third working directory.
        copy = os.path.join(a.elsewhere, "adapter-" + a.domain)
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(peft_dir, copy)
        here = os.getcwd()
        os.chdir(tempfile.mkdtemp(dir=work))
        try:
            from peft import AutoPeftModelForCausalLM, get_peft_model_state_dict
            with open(os.path.join(copy, "adapter_config.json")) as f:
                base_name = json.load(f)["base_model_name_or_path"]
            pm = AutoPeftModelForCausalLM.from_pretrained(copy)
            pm.eval()
            check(True, "AutoPeftModelForCausalLM loads the adapter from %s (base_model_name_or_path %s)" % (copy, base_name))
        except Exception as e:  # noqa: BLE001 -- reported as the check's failure
            check(False, "AutoPeftModelForCausalLM from another folder: %s: %s" % (type(e).__name__, e))
        finally:
            os.chdir(here)
        if pm is not None:
            stored = load_file(os.path.join(copy, "adapter_model.safetensors"))
            loaded = get_peft_model_state_dict(pm)
            missing = sorted(set(stored) - set(loaded))
            unexpected = sorted(set(loaded) - set(stored))
            differ = sorted(k for k in set(stored) & set(loaded) if not torch.equal(stored[k], loaded[k].to(stored[k].dtype)))
            check(not missing and not unexpected and not differ,
                  "adapter tensors: %d in the file, %d loaded; not loaded %s, unexpected %s, different %s"
                  % (len(stored), len(loaded), missing or "none", unexpected or "none", differ or "none"))
            ref_adapter = lorazip_bits(a.lorazip, base_dir, adapter_dir, files, work)
            compare_bits("base + adapter (PEFT)", ref_adapter, [ideal_bits(pm, bos, ids, max_pos) for ids in ours], a.per_text)

    merged, info = load_model(merged_dir)
    report_loading("merged export", merged, info)
    if pm is not None:
        theirs = pm.merge_and_unload().state_dict()
        mine = merged.state_dict()
        keys = sorted(k for k in mine if "rotary" not in k)
        worst = max((mine[k] - theirs[k]).abs().max().item() for k in keys)
        check(set(keys) <= set(theirs) and worst < 1e-6,
              "merged export vs PEFT merge_and_unload(): %d tensors, max abs difference %.3g" % (len(keys), worst))
        del pm
    ref_merged = lorazip_bits(a.lorazip, merged_dir, None, files, work)
    max_pos = merged.config.max_position_embeddings
    compare_bits("merged export", ref_merged, [ideal_bits(merged, bos, ids, max_pos) for ids in ours], a.per_text)

    shutil.rmtree(work, ignore_errors=True)
    print("%d of the checks failed" % len(failures) if failures else "all checks pass")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
