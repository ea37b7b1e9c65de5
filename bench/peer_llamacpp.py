#!/usr/bin/env python3
# lorazip's peers on the same GGUF and documents, in one process: llama.cpp's speed through PyPI's
# llama-cpp-python (prompt processing in one batch, token generation one token at a time) and, with
# --llama-zip, llama-zip compressing and decompressing every document end to end.
# Prints one JSON object on stdout (parsed by bench/peer.h); everything else goes to stderr.
#
#   PYTHON bench/peer_llamacpp.py GGUF THREADS [--repeat R] [--llama-zip DIR] FILE...
#
# PYTHON: a venv with llama-cpp-python 0.3.36, numpy, more_itertools and tqdm (scripts/peer_venv.sh
# prints one). DIR: a checkout of github.com/AlexBuz/llama-zip (the folder holding llama_zip.py).
# Field by field (times in seconds, wall clock, time.perf_counter; memory in MiB):
#   load_s        Llama(...) for the speed figures (the GGUF is mmapped: pages are read on first use)
#   pp_*          each document's tokens, BOS first, at most PP_MAX, evaluated as one batch
#   tg_*          each document's tokens, BOS first, at most TG_MAX, evaluated one at a time, the KV
#                 cache kept between them (teacher-forced: no sampling, no logits copied to Python)
#                 pp and tg follow one untimed warm-up (the first document's batch, one single token);
#                 each is the best of --repeat passes over every document (pp_s, tg_s: that pass)
#   doc_tokens    every document's whole token count, BOS included (not truncated)
#   peak_rss_llamacpp_mib / peak_rss_mib   ru_maxrss after the speed figures / at the end
#   omp_num_threads_inherited   OMP_NUM_THREADS as this process found it (null: unset); the
#                 script sets it to THREADS, since llama.cpp's OpenMP obeys it over n_threads
#   loadavg_1m_start / _end   the 1-minute load average before and after (the figures are noisy when
#                 other work shares the cores, and OpenMP's spinning threads suffer most from it)
#   llama_zip     null without --llama-zip; else its load, compress and decompress seconds over every
#                 file, each total counting one model load (as one run of its program would); it keeps
#                 its own n_ctx default, the model's training context, so its KV cache is larger;
#                 one pass, whatever --repeat says
import argparse
import functools
import json
import os
import resource
import sys
import time

PP_MAX = 512  # tokens of a document in the prompt-processing batch
TG_MAX = 256  # tokens of a document generated one at a time


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def measure_llamacpp(Llama, gguf, threads, docs, repeat):
    """Load time and pp / tg throughput of llama.cpp on `docs` (a list of bytes), each the best
    of `repeat` passes over every document."""
    t0 = time.perf_counter()
    llm = Llama(model_path=gguf, n_ctx=PP_MAX, n_batch=PP_MAX, n_ubatch=PP_MAX, n_gpu_layers=0,
                n_threads=threads, n_threads_batch=threads, verbose=False)
    load_s = time.perf_counter() - t0
    tokens = [llm.tokenize(d, add_bos=True) for d in docs]

    # Warm-up, untimed: one batch and one single-token step, so that neither figure carries the
    # first touch of the mmapped weights or the first graph allocation of its batch size.
    llm.reset()
    llm.eval(tokens[0][:PP_MAX])
    llm.reset()
    llm.eval(tokens[0][:1])

    pp_tokens = sum(min(len(t), PP_MAX) for t in tokens)
    tg_tokens = sum(min(len(t), TG_MAX) for t in tokens)
    pp_s = tg_s = float("inf")
    for _ in range(repeat):
        elapsed = 0.0
        for toks in tokens:
            llm.reset()  # the next eval drops the KV cache from position 0
            t0 = time.perf_counter()
            llm.eval(toks[:PP_MAX])
            elapsed += time.perf_counter() - t0
        pp_s = min(pp_s, elapsed)

        elapsed = 0.0
        for toks in tokens:
            llm.reset()
            t0 = time.perf_counter()
            for t in toks[:TG_MAX]:
                llm.eval([t])
            elapsed += time.perf_counter() - t0
        tg_s = min(tg_s, elapsed)
    llm.close()

    return {
        "n_ctx": PP_MAX, "pp_max": PP_MAX, "tg_max": TG_MAX, "repeat": repeat,
        "doc_tokens": sum(len(t) for t in tokens),
        "load_s": load_s,
        "pp_tokens": pp_tokens, "pp_s": pp_s, "pp_tok_s": pp_tokens / pp_s,
        "tg_tokens": tg_tokens, "tg_s": tg_s, "tg_tok_s": tg_tokens / tg_s,
    }


def measure_llama_zip(Llama, lz_dir, gguf, threads, docs):
    """llama-zip's LlamaZip.compress / decompress over every document, with its own loader."""
    if not os.path.isfile(os.path.join(lz_dir, "llama_zip.py")):
        raise SystemExit(f"--llama-zip {lz_dir}: no llama_zip.py there (clone github.com/AlexBuz/llama-zip)")
    sys.path.insert(0, lz_dir)
    import llama_zip

    # llama-zip's load_model leaves the thread counts at llama-cpp-python's defaults (half the cores
    # for generation, all for batches); its module-level `Llama` is swapped for one that sets both,
    # so its loader runs unchanged otherwise (n_ctx=0: the model's own context length).
    llama_zip.Llama = functools.partial(Llama, n_threads=threads, n_threads_batch=threads)

    t0 = time.perf_counter()
    lz = llama_zip.LlamaZip(gguf, verbose=False)
    load_s = time.perf_counter() - t0
    if lz.model.context_params.n_threads != threads or lz.model.context_params.n_threads_batch != threads:
        raise SystemExit("llama-zip's model did not take the thread count (has its load_model changed?)")

    compressed = []
    t0 = time.perf_counter()
    for d in docs:
        compressed.append(bytes(lz.compress(d)))
    compress_s = time.perf_counter() - t0

    exact = True
    t0 = time.perf_counter()
    for d, c in zip(docs, compressed):
        exact = exact and bytes(lz.decompress(c)) == d
    decompress_s = time.perf_counter() - t0

    # Symbols llama-zip codes: its tokens of the document (no BOS) and the EOS it appends.
    tokens = sum(len(lz.model.tokenize(llama_zip.bytes_to_utf8(d), add_bos=False)) + 1 for d in docs)
    result = {
        "threads": lz.model.context_params.n_threads, "n_ctx": lz.model.n_ctx(), "tokens": tokens,
        "load_s": load_s, "compress_s": load_s + compress_s, "decompress_s": load_s + decompress_s,
        "bytes_in": sum(len(d) for d in docs), "bytes_out": sum(len(c) for c in compressed),
        "round_trip_exact": exact,
    }
    lz.model.close()
    return result


def main():
    ap = argparse.ArgumentParser(description="llama.cpp and llama-zip beside lorazip; prints one JSON object")
    ap.add_argument("gguf")
    ap.add_argument("threads", type=int)
    ap.add_argument("--llama-zip", metavar="DIR", help="folder holding llama-zip's llama_zip.py")
    ap.add_argument("--repeat", type=int, default=1, metavar="R",
                    help="pp and tg: the best of R passes over every document (default 1)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error(f"THREADS must be at least 1, got {args.threads}")
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")

    # stdout carries the JSON alone: whatever llama.cpp or a package prints goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    docs = []
    for f in args.files:
        try:
            with open(f, "rb") as fh:
                docs.append(fh.read())
        except OSError as e:
            raise SystemExit(f"{f}: cannot read the document ({e.strerror})")
    if not os.path.isfile(args.gguf):
        raise SystemExit(f"{args.gguf}: no such GGUF file")

    # llama.cpp's OpenMP build runs no more threads than OMP_NUM_THREADS allows (measured: with
    # OMP_NUM_THREADS=1 inherited, n_threads=2 runs one thread). Test harnesses set it to 1 for
    # libtorch, so it is set to THREADS here, before libgomp loads and reads it.
    inherited_omp = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    limit = os.environ.get("OMP_THREAD_LIMIT")
    if limit is not None and limit.strip().isdigit() and int(limit) < args.threads:
        raise SystemExit(f"OMP_THREAD_LIMIT={limit} in the environment caps llama.cpp below "
                         f"THREADS={args.threads}; unset it")
    import llama_cpp
    from llama_cpp import Llama

    result = {
        "peer": "llama.cpp", "llama_cpp_python": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
        "model": os.path.basename(args.gguf), "threads": args.threads,
        "files": len(docs), "bytes": sum(len(d) for d in docs),
        "loadavg_1m_start": os.getloadavg()[0], "omp_num_threads_inherited": inherited_omp,
    }
    if "AMX" in result["system_info"]:
        print("peer_llamacpp: this llama-cpp-python was built with AMX, which crashed on a KVM guest "
              "(scripts/peer_venv.sh --make builds one without)", file=sys.stderr)
    result.update(measure_llamacpp(Llama, args.gguf, args.threads, docs, args.repeat))
    result["peak_rss_llamacpp_mib"] = peak_rss_mib()
    result["llama_zip"] = (measure_llama_zip(Llama, args.llama_zip, args.gguf, args.threads, docs)
                           if args.llama_zip else None)
    result["peak_rss_mib"] = peak_rss_mib()
    result["loadavg_1m_end"] = os.getloadavg()[0]
    out.write(json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
