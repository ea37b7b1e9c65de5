// lorazip: LLM-based lossless compression with per-domain LoRA adapters.
// main() parses the command line (CLI11), sets the thread count, runs one subcommand and turns
// errors into exit codes: 1 = error in the input or the environment, 2 = bad usage.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>

#include "cli/commands.h"
#include "common/log.h"
#include "model/llama.h"

using namespace lorazip;

namespace {

// Debian's OpenBLAS (0.3.21) does not recognise recent Xeon models (Sapphire Rapids) and falls
// back to its SSE3 "Prescott" kernels, 2-3x slower than the AVX-512 ones the CPU can run. The
// kernel is chosen when the library loads, so when the user has not set OPENBLAS_CORETYPE
// (LORAZIP_KEEP_BLAS=1 keeps OpenBLAS's own choice) lorazip names the kernel family the CPU
// supports and re-executes itself once. Compress and decompress on one machine therefore always
// run the same kernels.
void choose_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("LORAZIP_KEEP_BLAS")) return;
  const char* core = nullptr;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    core = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    core = "Haswell";
#endif
  if (!core) return;
  ::setenv("OPENBLAS_CORETYPE", core, 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then carry on with OpenBLAS's choice
}

void add_codec_options(CLI::App* c, CodecCliOptions& o) {
  c->add_option("files", o.inputs, "input files; none or '-' reads standard input and writes standard output");
  c->add_option("-m,--model", o.model_dir, "base model: a Hugging Face Llama directory (config.json, model.safetensors, tokenizer.model) or a llama .gguf file");
  c->add_option("-a,--adapter", o.adapter_dir, "adapter directory (PEFT layout) to code with");
  c->add_option("-A,--adapters", o.adapters_dir,
                "directory of adapters: compress picks, per file, the adapter (or none) with the fewest bits; "
                "decompress finds the adapter named in the file's header");
  c->add_option("-o,--output", o.output, "output file (one input only)");
  c->add_flag("-c,--stdout", o.to_stdout, "write to standard output, keep inputs");
  c->add_flag("-f,--force", o.force, "overwrite existing output files");
  c->add_flag("--rm", o.remove_input, "remove each input file after success (default: keep)");
  c->add_flag("-v,--verbose", o.verbose, "print a report per file: tokens, ideal and coded bits, overhead, bits/byte, ratio");
  c->add_option("-S,--suffix", o.suffix, "suffix of compressed files")->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  choose_blas_kernels(argv);
  CLI::App app{
      "lorazip: lossless compression of LLM-written text by arithmetic coding under a language model,\n"
      "with one LoRA adapter per domain.\n\n"
      "Pipeline: prepare -> pretrain -> train --domain D -> eval; compress / decompress with the result.\n"
      "'lorazip run' does all of it on configs/default.yaml (the embedded sample corpus)."};
  // At most one subcommand; none is reported after parsing, so that an unknown word or flag is
  // named ("The following arguments were not expected: ...") instead of "A subcommand is required".
  app.require_subcommand(0, 1);
  // Global options (-t, -q) are also accepted after the subcommand: `lorazip compress -t 2 FILE`.
  app.fallthrough();
  GlobalOptions g;
  app.add_option("-t,--threads", g.threads, "threads to use (0 = all cores)")->capture_default_str();
  app.add_flag("-q,--quiet", g.quiet, "no progress output");

  PipelineOptions p;
  CodecCliOptions co;
  std::vector<std::string> info_files;

  auto* prepare = app.add_subcommand("prepare", "corpus (JSONL/text per domain) -> WORK/data.h5 token store (+ WORK/tokenizer.model)");
  prepare->add_option("config", p.config, "YAML config with a data: section")->capture_default_str();
  prepare->add_option("-w,--work-dir", p.work_dir, "work directory (overrides the config's work_dir)");
  prepare->add_option("-i,--input", p.inputs, "DOMAIN=PATH (file or directory); repeatable; replaces the config's inputs");
  prepare->add_option("--tokenizer", p.tokenizer, "use this tokenizer.model instead of training one");
  prepare->add_option("--vocab-size", p.vocab_size, "vocabulary size of a trained tokenizer");

  auto* pretrain = app.add_subcommand("pretrain", "train a small base model on the prepared corpus -> WORK/base/ (HF Llama directory)");
  pretrain->add_option("config", p.config, "YAML config")->capture_default_str();
  pretrain->add_option("-w,--work-dir", p.work_dir, "work directory (overrides the config's work_dir)");
  pretrain->add_flag("--resume", p.resume, "continue from the last checkpoint");

  auto* train = app.add_subcommand("train", "train one LoRA adapter on a frozen base -> WORK/adapters/DOMAIN/ (PEFT directory)");
  train->add_option("config", p.config, "YAML config")->capture_default_str();
  train->add_option("-d,--domain", p.domain, "domain to train the adapter on")->required();
  train->add_option("-w,--work-dir", p.work_dir, "work directory (overrides the config's work_dir)");
  train->add_option("-m,--model", p.base_dir, "base model directory or .gguf file (default: the config's base_model, else WORK/base)");
  train->add_flag("--resume", p.resume, "continue from the last checkpoint");

  auto* eval = app.add_subcommand("eval", "bits/token per domain: base vs adapters vs classical compressors -> WORK/report.{md,json,csv,svg}");
  eval->add_option("config", p.config, "YAML config")->capture_default_str();
  eval->add_option("-w,--work-dir", p.work_dir, "work directory (overrides the config's work_dir)");
  eval->add_option("-m,--model", p.base_dir, "base model directory or .gguf file (default: the config's base_model, else WORK/base)");
  eval->add_option("-A,--adapters", p.adapters_dir, "adapters directory (default: WORK/adapters)");
  eval->add_option("-e,--extra", p.extra, "NAME=PATH: an extra evaluation corpus (JSONL/text), repeatable");
  eval->add_option("--sample-docs", p.sample_docs, "documents per domain to really compress (default from config)");

  auto* compress = app.add_subcommand("compress", "compress files losslessly with a base model and optionally an adapter");
  add_codec_options(compress, co);
  compress->add_option("--group", co.group_streams, "streams coded together per batch")->capture_default_str();
  compress->add_option("--chunk", co.chunk_tokens, "positions per stream, context included (0 = the model's context - 1)")->capture_default_str();
  compress->add_option("--context-tokens", co.context_tokens,
                       "tokens of the previous chunk each later chunk reads before coding (-1 = a quarter of the chunk; "
                       "0 = independent chunks, decoded in parallel; > 0 saves bits on long files, decoded chunk after chunk)")
      ->capture_default_str();
  auto* decompress = app.add_subcommand("decompress", "restore files compressed by lorazip, byte for byte");
  add_codec_options(decompress, co);
  auto* info = app.add_subcommand("info", "print the header of compressed files");
  info->add_option("files", info_files, "compressed files")->required();

  auto* exp = app.add_subcommand("export", "export an adapter as a PEFT directory (with adapter_model.gguf for llama.cpp inside), or merged into the base as an HF Llama directory");
  exp->add_option("-m,--model", p.base_dir, "base model directory or .gguf file")->required();
  exp->add_option("-a,--adapter", p.adapter_dir, "adapter directory")->required();
  exp->add_option("-o,--output", p.out_dir, "output directory")->required();
  exp->add_flag("--merged", p.merged, "write base + adapter merged into one HF Llama model (default: the PEFT adapter and its llama.cpp GGUF)");
  exp->add_flag("-f,--force", p.force, "replace an existing output directory");

  auto* run = app.add_subcommand("run", "the main job: prepare -> tokenizer -> pretrain -> adapters -> eval -> codec check, each stage cached");
  run->add_option("config", p.config, "YAML config")->capture_default_str();
  run->add_option("-w,--work-dir", p.work_dir, "work directory (overrides the config's work_dir)");
  run->add_flag("--force", p.force, "rerun every stage even when its inputs are unchanged");

  LossyCommands* lossy = add_lossy_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.get_subcommands().empty()) {
    std::fprintf(stderr, "lorazip: name a subcommand: prepare, pretrain, train, eval, compress, decompress, info, export, run, generate, qa, rewrite "
                         "(see lorazip --help)\n");
    return 2;
  }
  set_quiet(g.quiet);
  try {
    g.threads_given = app.get_option("--threads")->count() > 0;
    g.threads = set_torch_threads(g.threads);
    if (*prepare) return cmd_prepare(p, g);
    if (*pretrain) return cmd_pretrain(p, g);
    if (*train) return cmd_train(p, g);
    if (*eval) return cmd_eval(p, g);
    if (*compress) return cmd_compress(co, g);
    if (*decompress) return cmd_decompress(co, g);
    if (*info) return cmd_info(info_files);
    if (*exp) return cmd_export(p, g);
    if (*run) return cmd_run(p, g);
    if (int rc = run_lossy_command(lossy, g); rc >= 0) return rc;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "lorazip: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lorazip: %s\n", e.what());
    return 1;
  }
  return 0;
}
