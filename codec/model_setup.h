// Loading what the codec and eval need: a base model (an HF directory with its tokenizer.model,
// or a llama GGUF file), adapters (PEFT directories), and the identity a compressed file records.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codec/lm_codec.h"
#include "model/llama.h"
#include "model/tokenizer.h"

namespace lorazip {

class LoraAdapter;

struct LoadedBase {
  std::string dir;
  LlamaForCausalLM model{nullptr};
  std::unique_ptr<Tokenizer> tokenizer;
  std::string fingerprint;  // model_fingerprint of the unmodified base
};

// `dir` is a Hugging Face Llama directory (config.json, weights, tokenizer.model or tokenizer.json)
// or a llama GGUF file (a path ending in .gguf, or any file starting with the GGUF magic; tokenizer
// from its metadata). std::runtime_error naming the path when something is missing or malformed.
LoadedBase load_base(const std::string& dir);

struct AdapterEntry {
  std::string dir;
  std::string domain;
  std::string fingerprint;
};

// Every adapter directory directly under `adapters_dir` (those with adapter_config.json), sorted by name.
std::vector<AdapterEntry> list_adapters(const std::string& adapters_dir);
AdapterEntry describe_adapter(const std::string& dir);

// The coding engine for `model`: its parameters (as float32) copied into the engine's panels, with
// `adapter`'s LoRA pairs (nullptr: none) merged by the engine in its fixed order, so the merged
// weights are the same bits on every machine. `model` is left untouched.
std::shared_ptr<const engine::Model> engine_model(LlamaForCausalLM& model, const LoraAdapter* adapter = nullptr);

// The base with an adapter merged into its weights by libtorch (for `lorazip export --merged`; the
// codec merges with engine_model instead), as a separate model; the base is left untouched.
LlamaForCausalLM merged_model(LoadedBase& base, const std::string& adapter_dir, AdapterEntry* entry_out);
LlamaForCausalLM clone_model(LlamaForCausalLM& model);

CodecIdentity identity_for(const LoadedBase& base, const AdapterEntry* adapter);

// LM codecs over one base, one per adapter directory ("" = the base alone), each built on first
// use (engine_model with the adapter) and kept for the next file.
class CodecSet {
 public:
  explicit CodecSet(LoadedBase& base) : base_(base) {}
  LmCodec& get(const std::string& adapter_dir);
  LoadedBase& base() const { return base_; }

 private:
  LoadedBase& base_;
  std::map<std::string, std::unique_ptr<LmCodec>> codecs_;
};

}  // namespace lorazip
