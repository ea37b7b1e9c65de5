// A PEFT LoRA adapter directory read without libtorch: adapter_config.json (by PEFT's rules),
// adapter_model.safetensors (every tensor checked against the base's projections) and lorazip's
// own lorazip.json. One reader checks everything and returns the pairs where the file's bytes
// hold them (read_peft_adapter_view): the coding engine packs its side path from those bytes, the
// one copy of the weights. read_peft_adapter converts that result to float32 values (export,
// training's LoraAdapter::load, arithmetic version 1), so every path accepts and refuses the same
// directories with the same messages.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "adapters/lora_config.h"
#include "codec/engine/engine.h"
#include "model/config.h"

namespace lorazip {

// lorazip.json: what an adapter was trained for and how well it did. Fields that are unknown
// (a foreign PEFT adapter has no lorazip.json) stay empty / NaN.
struct AdapterInfo {
  std::string domain;
  std::string base_model_name_or_path;  // copied into adapter_config.json
  std::string base_fingerprint;         // model_fingerprint() of the base the adapter was trained on
  std::string tokenizer_sha256;         // SHA-256 of the tokenizer.model bytes
  std::string adapter_fingerprint;      // tensors_fingerprint() of the adapter's tensors (set by save)
  double train_bits_per_token = std::numeric_limits<double>::quiet_NaN();
  double val_bits_per_token = std::numeric_limits<double>::quiet_NaN();
  double val_bits_per_byte = std::numeric_limits<double>::quiet_NaN();
  double base_val_bits_per_token = std::numeric_limits<double>::quiet_NaN();  // same docs, no adapter
  int64_t steps = 0;                    // optimizer steps of the saved (best) adapter
  nlohmann::json config;                // the resolved lora + train config used

  nlohmann::json to_json() const;
  static AdapterInfo from_json(const nlohmann::json& j, const std::string& source);
  // lorazip.json of an adapter directory (std::runtime_error when absent or malformed).
  static AdapterInfo read(const std::string& dir);
};

// A projection of the base: HF module path ("model.layers.0.self_attn.q_proj"), in and out features.
struct Projection {
  std::string name;
  int64_t in = 0, out = 0;
};
// Every projection of a Llama of config `c`, in model order (layer by layer: q, k, v, o, gate, up, down).
std::vector<Projection> llama_projections(const LlamaConfig& c);

// One targeted projection's LoRA pair, without its values: what training's modules and the
// torch-free ones share.
struct LoraModuleShape {
  std::string name;  // HF module path
  int64_t r = 0;
  double alpha = 0;
  double scaling = 0;  // alpha / r, or alpha / sqrt(r) with use_rslora
  int64_t in = 0, out = 0;
};

struct PeftModule : LoraModuleShape {
  std::vector<float> a, b;  // A [r, in], B [out, r], row-major float32
};

struct PeftAdapterFiles {
  std::string dir;
  LoraConfig config;            // r, alpha, dropout, use_rslora, and the targets' suffixes found
  std::vector<PeftModule> modules;  // in the base's projection order
  bool has_info = false;
  AdapterInfo info;             // lorazip.json, when present
  std::string fingerprint;      // tensors_fingerprint of the A / B tensors as float32 (LoraAdapter::fingerprint)
  std::string domain() const;   // lorazip.json's domain, else the directory's name
};

// A targeted projection's pair as the file stores it: A [r, in] and B [out, r], row-major, kind
// F32, F16 or BF16 (an F64 tensor is rounded to F32 once, as to_float32 rounds it), pointing into
// the PeftAdapterView that holds it (possibly unaligned: read the bytes with memcpy).
struct PeftModuleView : LoraModuleShape {
  engine::StoredTensor a, b;
};

// An adapter directory read and checked, its pairs left in the file's bytes. The buffers are
// shared: a copy's pairs point into the same bytes, which live as long as any copy.
struct PeftAdapterView {
  std::string dir;
  LoraConfig config;                    // as PeftAdapterFiles::config
  std::vector<PeftModuleView> modules;  // in the base's projection order
  bool has_info = false;
  AdapterInfo info;                     // lorazip.json, when present
  std::string fingerprint;              // as PeftAdapterFiles::fingerprint (float32_fingerprint of the pairs)
  // adapter_model.safetensors, read once: the modules' F32, F16 and BF16 tensors point into it.
  std::shared_ptr<const std::string> file;
  // F64 tensors rounded to float32 (empty unless the file holds F64 pairs).
  std::shared_ptr<const std::vector<std::vector<float>>> rounded;
  std::string domain() const;           // lorazip.json's domain, else the directory's name
  // The pairs for engine::Adapter (pointing into this view, which must outlive their use).
  std::vector<engine::StoredLoraRef> lora() const;
};

// Reads and checks an adapter directory against `projections`. With `base_matches` given, an
// adapter whose lorazip.json names a base it rejects is refused (the message names both,
// `base_fingerprint` standing for the given base). std::runtime_error naming the file and tensor
// for everything wrong. When lorazip.json has an adapter_fingerprint, the tensors must match it.
PeftAdapterView read_peft_adapter_view(const std::string& dir, const std::vector<Projection>& projections,
                                       const std::function<bool(const std::string&)>& base_matches = nullptr,
                                       const std::string& base_fingerprint = "");
// The same directory with every pair converted to float32 values (exactly: F16 and BF16 widened,
// F64 rounded); the same checks and messages.
PeftAdapterFiles read_peft_adapter(const std::string& dir, const std::vector<Projection>& projections,
                                   const std::function<bool(const std::string&)>& base_matches = nullptr,
                                   const std::string& base_fingerprint = "");
// A view's pairs as float32 values (what read_peft_adapter returns for its directory).
PeftAdapterFiles peft_adapter_floats(const PeftAdapterView& view);

// PEFT key of a module's tensor: peft_key("model.layers.0.mlp.up_proj", "lora_B")
//   == "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight".
std::string peft_key(const std::string& module, const std::string& which);

// Writes a PEFT adapter directory atomically (replacing `dir`): adapter_config.json (for `cfg`,
// with rank_pattern / alpha_pattern for modules whose r or alpha differ from it),
// adapter_model.safetensors (every module's A and B as F32 under PEFT's keys, metadata format=pt)
// and lorazip.json (`info` with adapter_fingerprint and config.lora filled in). Torch-free: what
// training's LoraAdapter::save and `lorazip export` both write.
void write_peft_adapter(const std::string& dir, const LoraConfig& cfg, const std::vector<PeftModule>& modules, AdapterInfo info);
// The number of LoRA parameters (every A and B element).
int64_t peft_parameter_count(const std::vector<PeftModule>& modules);

// The minimal adapter_config.json lorazip writes (docs/formats.md, "PEFT adapter"), for `cfg` and a base
// name: only keys that every PEFT from 0.10 on accepts, each left out at PEFT's default.
nlohmann::json peft_adapter_config(const LoraConfig& cfg, const std::string& base_model_name_or_path);

}  // namespace lorazip
