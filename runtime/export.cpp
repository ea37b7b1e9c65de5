// `lorazip export` (export.h), on the engine's loaders and writers.
#include "runtime/export.h"

#include <filesystem>
#include <stdexcept>

#include "adapters/gguf_lora.h"
#include "runtime/model_setup.h"
#include "common/fs.h"
#include "model/gguf.h"

namespace lorazip {

ExportResult export_adapter(const ExportRequest& r) {
  if (!r.force && std::filesystem::exists(r.out))
    throw std::invalid_argument("'" + r.out + "' already exists; use -f to replace it");
  const LoadedModel base = load_model(r.base);
  // Made for this base (by either of its names), read and checked by the PEFT reader (not packed
  // for the engine: export only writes it out).
  const PeftAdapterFiles files = read_peft_adapter(
      r.adapter, base.projections(), [&base](const std::string& fp) { return base.is_named_by(fp); }, base.fingerprint);
  ExportResult res;
  res.domain = files.domain();
  res.base_fingerprint = base.fingerprint;
  if (r.merged) {
    res.written_fingerprint = write_merged_base(base, files, r.out);
    return res;
  }
  AdapterInfo info = files.has_info ? files.info : AdapterInfo{};
  info.base_model_name_or_path = r.base_name.empty() ? absolute_path(r.base) : r.base_name;
  if (r.base_name.empty() && is_gguf_path(r.base))
    res.note = "the base is a GGUF file, which transformers' from_pretrained does not take as a model path; for "
               "AutoPeftModelForCausalLM, export again with --base-name naming the Hugging Face model it was converted from "
               "(SmolLM2-135M-Instruct's GGUF: HuggingFaceTB/SmolLM2-135M-Instruct)";
  info.base_fingerprint = base.fingerprint;
  info.tokenizer_sha256 = base.tokenizer->sha256();
  write_peft_adapter(r.out, files.config, files.modules, info);
  // The same adapter for llama.cpp (llama-cli --lora), inside the PEFT directory.
  res.gguf_path = r.out + "/adapter_model.gguf";
  save_gguf_lora(files.modules, base.config, res.gguf_path, info.domain);
  res.written_fingerprint = files.fingerprint;
  res.parameters = peft_parameter_count(files.modules);
  return res;
}

}  // namespace lorazip
