// LoRA adapters on lorazip's Llama: the low-rank side path of each targeted projection
// (y = x W^T + scaling * (dropout(x) A^T) B^T), for training, and the PEFT directory layout
// (adapter_config.json + adapter_model.safetensors) plus lorazip's own lorazip.json.
//
//   LoraAdapter a(model, cfg);           // fresh: A kaiming-uniform (seeded), B = 0 -> logits unchanged
//   a.attach(model);                     // the model's Linear modules now run the side path
//   ... train a.parameters() ...
//   a.save("work/adapters/code", info);  // PEFT directory, written atomically
//   LoraAdapter b = LoraAdapter::load("work/adapters/code", model);  // checked against the base
//
// This side path is lorazip's only libtorch LoRA arithmetic. Folding an adapter into weights
// (`lorazip export --merged`, arithmetic version 1) is the coding engine's one LoRA delta,
// engine::merge_lora, through write_merged_base (runtime/model_setup.h).
//
// Torch-light header: only at::Tensor is needed here.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "adapters/lora_config.h"
#include "adapters/peft_files.h"

namespace lorazip {

class LlamaForCausalLM;

class LoraAdapter {
 public:
  // A fresh adapter shaped for `model`: one (A, B) pair per projection whose HF module path ends
  // with ".<target>" for a target in cfg.targets. A [R, in] ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's
  // kaiming_uniform_(a=sqrt(5))) from a generator seeded with cfg.seed; B [out, R] = 0.
  // std::invalid_argument when cfg is invalid or a target matches no projection.
  LoraAdapter(LlamaForCausalLM& model, const LoraConfig& cfg);

  // Reads a PEFT directory. adapter_config.json is read leniently, by PEFT's rules (only
  // peft_type is required; r and lora_alpha default to 8; use_rslora; target_modules as a list
  // matched by suffix, a regex string, or "all-linear"; rank_pattern / alpha_pattern;
  // layers_to_transform). Every tensor is checked against `model`: a known projection, an A and
  // its B, shapes [r, in] / [out, r] with r as the config says. Errors (std::runtime_error) name
  // the file and tensor. When lorazip.json exists and `check_base` is true, its base fingerprint
  // must equal model_fingerprint(model).
  // The returned adapter is not attached.
  static LoraAdapter load(const std::string& dir, LlamaForCausalLM& model, bool check_base = true);
  // lorazip.json of an adapter directory (std::runtime_error when absent or malformed).
  static AdapterInfo read_info(const std::string& dir);

  // Writes the PEFT directory atomically (replacing `dir`): adapter_config.json,
  // adapter_model.safetensors (F32, metadata format=pt), lorazip.json (from `info`, with
  // adapter_fingerprint and config.lora filled in). An empty info.base_fingerprint is computed
  // from the attached model (std::logic_error when it is not attached).
  void save(const std::string& dir, AdapterInfo info) const;

  // Points each targeted Linear's side path at this adapter's tensors (shared storage, so training
  // the adapter's parameters trains the side path). Attaching to another model detaches first.
  // std::invalid_argument when the model's projection shapes differ from the adapter's.
  void attach(LlamaForCausalLM& model);
  // Clears the side path. No-op when not attached. Destroying an attached adapter does not detach
  // it: the model keeps running the side path (it shares the tensors).
  void detach();
  bool attached() const;

  // The adapter's tensors in module order: A0, B0, A1, B1, ... (requires_grad set by set_trainable).
  std::vector<at::Tensor> parameters() const;
  void set_trainable(bool trainable);
  // PEFT keys ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight") -> tensors.
  std::map<std::string, at::Tensor> state_dict() const;
  // Copies values (not storage) from a state dict with the same keys and shapes (std::invalid_argument otherwise).
  void load_state_dict(const std::map<std::string, at::Tensor>& sd);
  // tensors_fingerprint over state_dict() as float32.
  std::string fingerprint() const;
  // The modules as torch-free values (float32 copies of A and B), in module order: what
  // write_peft_adapter and save_gguf_lora take.
  std::vector<PeftModule> peft_modules() const;

  // HF module paths with an adapter, in model order ("model.layers.0.self_attn.q_proj", ...).
  std::vector<std::string> modules() const;
  int64_t rank(const std::string& module) const;
  double scaling(const std::string& module) const;
  const LoraConfig& config() const;
  int64_t num_parameters() const;

  LoraAdapter(LoraAdapter&&) noexcept;
  LoraAdapter& operator=(LoraAdapter&&) noexcept;
  ~LoraAdapter();

 private:
  LoraAdapter();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorazip
