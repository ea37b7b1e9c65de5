// lorazip export: parses the command line into an ExportRequest and runs runtime/export.h's
// export_adapter (torch-free, so it runs in the front end and the coding-only build).
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "runtime/export.h"
#include "codec/lm_codec.h"
#include "common/log.h"

namespace lorazip {

struct ExportCommand {
  CLI::App* app = nullptr;
  ExportRequest r;
};

ExportCommand* add_export_command(CLI::App& app) {
  static ExportCommand c;
  c.app = app.add_subcommand("export", "export an adapter as a PEFT directory (with adapter_model.gguf for llama.cpp inside), or merged "
                                       "into the base as an HF Llama directory");
  c.app->add_option("-m,--model", c.r.base, "base model directory or .gguf file")->required();
  c.app->add_option("-a,--adapter", c.r.adapter, "adapter directory")->required();
  c.app->add_option("-o,--output", c.r.out, "output directory")->required();
  c.app->add_flag("--merged", c.r.merged, "write base + adapter merged into one HF Llama model (default: the PEFT adapter and its llama.cpp GGUF)");
  c.app->add_flag("-f,--force", c.r.force, "replace an existing output directory");
  c.app->add_option("--base-name", c.r.base_name,
                    "base_model_name_or_path written into adapter_config.json, e.g. a hub name such as "
                    "HuggingFaceTB/SmolLM2-135M-Instruct (default: the -m path made absolute, so the adapter loads from any folder)");
  return &c;
}

int run_export_command(ExportCommand* c, const GlobalOptions&) {
  if (!*c->app) return -1;
  const ExportResult res = export_adapter(c->r);
  if (!res.note.empty()) log_info("note: " + res.note);
  if (c->r.merged)
    log_info("wrote " + c->r.out + ": base " + short_fp(res.base_fingerprint) + " with adapter '" + res.domain + "' merged (fingerprint " +
             short_fp(res.written_fingerprint) + ")");
  else
    log_info("wrote PEFT adapter " + c->r.out + " (" + std::to_string(res.parameters) + " parameters) and its llama.cpp LoRA " + res.gguf_path);
  return 0;
}

}  // namespace lorazip
