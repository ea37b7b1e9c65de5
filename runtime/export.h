// `lorazip export`: an adapter for deployment, on the engine's readers and writers. Either the PEFT directory
// (adapter_config.json, adapter_model.safetensors, lorazip.json) with the same adapter as a
// llama.cpp LoRA GGUF inside it (adapter_model.gguf), or the base with the adapter merged into its
// weights by the engine's one LoRA delta, as a Hugging Face Llama directory (write_merged_base).
#pragma once
#include <cstdint>
#include <string>

namespace lorazip {

struct ExportRequest {
  std::string base;       // base model: HF Llama directory or .gguf file
  std::string adapter;    // PEFT adapter directory made for that base
  std::string out;        // output directory
  bool merged = false;    // write base + adapter merged (a Hugging Face Llama) instead of the adapter
  bool force = false;     // replace an existing output directory
  std::string base_name;  // adapter_config.json's base_model_name_or_path (default: `base` made absolute)
};

struct ExportResult {
  std::string domain;
  std::string base_fingerprint;
  std::string written_fingerprint;  // merged: the new base's; else the adapter's
  int64_t parameters = 0;           // adapter: its LoRA parameters
  std::string gguf_path;            // adapter: the llama.cpp LoRA written beside the PEFT files
  std::string note;                 // advice for the user ("" when none)
};

// Writes what `r` asks for. std::invalid_argument when the output exists without `force`;
// std::runtime_error naming the file when the base or adapter cannot be read or do not fit.
ExportResult export_adapter(const ExportRequest& r);

}  // namespace lorazip
