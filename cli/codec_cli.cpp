// Registration and dispatch of the coding subcommands (codec_cli.h).
#include "cli/codec_cli.h"
#include "cli/subcommands.h"

#include <cstdio>

#include <CLI/CLI.hpp>

namespace lorazip {

CLI::App* add_archive_subcommand(CLI::App& app, ArchiveCliOptions& o);  // cli/cmd_archive.cpp

namespace {

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

bool is_codec_command(const std::string& name) { return is_subcommand(name, /*front_end_only=*/true); }

void add_global_options(CLI::App& app, GlobalOptions& g) {
  app.add_option("-t,--threads", g.threads, "threads to use (0 = all cores; coding splits each step over them, so one "
                                             "file uses every core)")
      ->capture_default_str();
  app.add_flag("-q,--quiet", g.quiet, "quiet: no progress meter and no log lines (errors still print)");
}

void add_codec_commands(CLI::App& app, CodecCommands& c) {
  CodecCliOptions& co = c.codec;
  c.compress = app.add_subcommand("compress", "compress files losslessly with a base model and optionally an adapter");
  add_codec_options(c.compress, co);
  c.compress->add_option("--group", co.group_streams, "streams coded together per batch")->capture_default_str();
  c.compress->add_option("--chunk", co.chunk_tokens, "positions per stream, context included (0 = the model's context - 1)")->capture_default_str();
  c.compress->add_option("--context-tokens", co.context_tokens,
                         "tokens of the previous chunk each later chunk reads before coding (-1 = a quarter of the chunk; "
                         "0 = independent chunks, decoded in parallel; > 0 saves bits on long files, decoded chunk after chunk)")
      ->capture_default_str();
  auto add_routing_options = [&](CLI::App* cmd) {
    cmd->add_option("--router", co.router, "router.json from 'lorazip cluster': the adapter under -A is the one the prompt routes to "
                                           "(the file stores only the adapter set's identity)");
    cmd->add_option("--prompt-file", co.prompt_file, "the prompt of the (one) input, which routes it (with --router)");
  };
  add_routing_options(c.compress);
  auto add_context_options = [](CLI::App* cmd, CodecCliOptions& o) {
    cmd->add_option("--context-file", o.context_file,
                    "code each input given this prompt, which decoding must be given too (the file records only its "
                    "fingerprint): the response after its prompt costs fewer bits");
    cmd->add_option("--template", o.template_name,
                    "how --context-file's prompt is rendered: auto (the base's own chat template, e.g. a GGUF's ChatML with its "
                    "system message; plain without one), chatml, or plain (the prompt, then a blank line)")
        ->capture_default_str();
  };
  add_context_options(c.compress, co);
  c.compress->add_flag("--verify", co.verify, "decode each compressed file and compare it with the input before writing it (always done with --rm)");
  c.compress->add_option("--format", co.format, "compact (version 4: 11-12 bytes of overhead, stored when the model does not help) or "
                                                "full (version 2: every fingerprint in the file)")->capture_default_str();
  c.decompress = app.add_subcommand("decompress", "restore files compressed by lorazip, byte for byte (several files decode together)");
  add_codec_options(c.decompress, co);
  add_routing_options(c.decompress);
  add_context_options(c.decompress, co);
  CodecCliOptions& to = c.test_options;
  c.test = app.add_subcommand("test", "check compressed files: decode each and compare its checksum, write nothing (like gzip -t)");
  c.test->add_option("files", to.inputs, "compressed files")->required();
  c.test->add_option("-m,--model", to.model_dir, "base model the files were compressed with");
  c.test->add_option("-a,--adapter", to.adapter_dir, "adapter directory");
  c.test->add_option("-A,--adapters", to.adapters_dir, "directory of adapters: each file's adapter is found there");
  c.test->add_flag("-v,--verbose", to.verbose, "say OK for each good file");
  add_context_options(c.test, to);
  c.archive = add_archive_subcommand(app, c.archive_options);
  c.info = app.add_subcommand("info", "print the header of compressed files");
  c.info->add_option("files", c.info_files, "compressed files")->required();
}

int exit_code_of(const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "lorazip: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lorazip: %s\n", e.what());
    return 1;
  }
}

int run_codec_command(const CodecCommands& c, const GlobalOptions& g) {
  if (*c.compress) return cmd_compress(c.codec, g);
  if (*c.decompress) return cmd_decompress(c.codec, g);
  if (*c.info) return cmd_info(c.info_files);
  if (*c.test) return cmd_test(c.test_options, g);
  if (*c.archive) return cmd_archive(c.archive_options, g);
  return -1;
}

}  // namespace lorazip
