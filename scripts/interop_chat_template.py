#!/usr/bin/env python3
"""The context conditioned coding reads (`lorazip compress --context-file`, --template auto) against
the GGUF's own chat template: llama-cpp-python renders the GGUF's tokenizer.chat_template (Jinja,
its Jinja2ChatFormatter) for one user message with the generation prompt, and llama.cpp tokenizes
the text with special tokens parsed; lorazip's ids come from `bpe_dump_ids --context auto`.
Run by scripts/interop_chat_template.sh; the result is in docs/codec.md ("Conditioned coding").

Usage: interop_chat_template.py GGUF DUMP_IDS DATA_DIR WORK_DIR [--prompts N]
Prompts: the first N prompts of each domain of DATA_DIR (*.jsonl records with "prompt"), and edge
cases. Conversations (what `archive create --conversations` codes each turn given): for each of
those records, the context of its user turn, of its response after it, and of a next user turn
after both; a conversation that opens with a system turn; and one of 20 turns. Each is compared
with the Jinja rendering of the turns before it plus the next turn's opening (the rendered text
of the conversation with that turn, cut where its content starts). A prompt holding a marker's text ("<|im_start|>", "<|im_end|>") is rendered by lorazip as
plain bytes (a prompt never smuggles in a control token), where the Jinja text parsed by llama.cpp
turns it into the marker; those prompts are compared with llama.cpp tokenizing the prompt's part
without parsing special tokens. Exit 0 when every prompt gives the same ids, 1 otherwise, 77 when
llama_cpp cannot be imported.
"""
import argparse
import json
import os
import subprocess
import sys

try:
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
except ImportError as e:
    print("skipped: llama_cpp not importable (%s)" % e)
    sys.exit(77)


def records_of(data_dir, per_domain):
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
                    j = json.loads(line)
                    p, t = j.get("prompt"), j.get("text")
                    if isinstance(p, str) and p and isinstance(t, str):
                        out.append((p, t))
                        n += 1
    return out


def main():
    ap = argparse.ArgumentParser()
    for a in ("gguf", "dump_ids", "data_dir", "work"):
        ap.add_argument(a)
    ap.add_argument("--prompts", type=int, default=20)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    records = records_of(a.data_dir, a.prompts)
    prompts = [p for p, _ in records]
    prompts += ["", "Hi", " leading space", "line one\nline two\n\n", "unicode: \u00e9\u4e2d\U0001f600", "tab\there"]
    marker_prompts = ["say <|im_end|> then stop", "<|im_start|>system\nnot a real turn"]
    prompts += marker_prompts

    llm = llama_cpp.Llama(model_path=a.gguf, vocab_only=True, verbose=False)
    template = llm.metadata["tokenizer.chat_template"]
    fmt = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="<|im_start|>",
                              add_generation_prompt=True)
    inp, out = os.path.join(a.work, "prompts.jsonl"), os.path.join(a.work, "ids.jsonl")
    with open(inp, "w") as f:
        for p in prompts:
            f.write(json.dumps({"hex": p.encode("utf-8").hex()}) + "\n")
    subprocess.run([a.dump_ids, "--context", "auto", a.gguf, inp, out], check=True, stderr=subprocess.DEVNULL)
    with open(out) as f:
        ours = [json.loads(line) for line in f]

    same = 0
    for p, mine in zip(prompts, ours):
        text = fmt(messages=[{"role": "user", "content": p}]).prompt
        if p in marker_prompts:
            # The prompt's bytes as text: split the rendered string around it.
            head, tail = text.split(p, 1)
            ref = (llm.tokenize(head.encode(), add_bos=False, special=True) + llm.tokenize(p.encode(), add_bos=False, special=False)
                   + llm.tokenize(tail.encode(), add_bos=False, special=True))
        else:
            ref = llm.tokenize(text.encode(), add_bos=False, special=True)
        if ref == mine["ids"]:
            same += 1
        else:
            print("  differ: prompt %r\n    llama.cpp %s\n    lorazip   %s" % (p[:60], ref[:40], mine["ids"][:40]))
    print("llama-cpp-python %s, %s: lorazip's context (%s) equals the GGUF template's rendering on %d of %d prompts"
          % (llama_cpp.__version__, os.path.basename(a.gguf), ours[0]["template"] if ours else "?", same, len(prompts)))

    # Conversations: (turns before, role of the next turn).
    cases = []
    for p, t in records:
        cases += [([], "user"), ([("user", p)], "assistant"), ([("user", p), ("assistant", t)], "user")]
    cases.append(([("system", "Answer in one word."), ("user", "Capital of France?")], "assistant"))
    cases.append(([], "system"))
    long = [("user" if k % 2 == 0 else "assistant", "turn %d: %s" % (k, "x" * (k % 5))) for k in range(19)]
    cases.append((long, "assistant"))
    cases = [c for c in cases if not any("<|im_" in text for _, text in c[0])]
    conv_in, conv_out = os.path.join(a.work, "turns.jsonl"), os.path.join(a.work, "turn_ids.jsonl")
    with open(conv_in, "w") as f:
        for before, role in cases:
            f.write(json.dumps({"turns": [{"role": r, "hex": x.encode("utf-8").hex()} for r, x in before], "role": role, "hex": ""}) + "\n")
    subprocess.run([a.dump_ids, "--context", "auto", a.gguf, conv_in, conv_out], check=True, stderr=subprocess.DEVNULL)
    with open(conv_out) as f:
        conv_ours = [json.loads(line) for line in f]
    conv_fmt = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="<|im_start|>", add_generation_prompt=False)
    sentinel = "\u2063SENTINEL\u2063"
    conv_same = 0
    for (before, role), mine in zip(cases, conv_ours):
        msgs = [{"role": r, "content": x} for r, x in before] + [{"role": role, "content": sentinel}]
        text = conv_fmt(messages=msgs).prompt.split(sentinel, 1)[0]
        ref = llm.tokenize(text.encode(), add_bos=False, special=True)
        if ref == mine["ids"]:
            conv_same += 1
        else:
            print("  differ: %d turns then %s\n    llama.cpp %s\n    lorazip   %s" % (len(before), role, ref[-40:], mine["ids"][-40:]))
    print("conversations: lorazip's context of the next turn equals the GGUF template's rendering on %d of %d turns"
          % (conv_same, len(cases)))
    return 0 if same == len(prompts) and conv_same == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
