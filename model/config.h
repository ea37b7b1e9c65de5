// Model size: from lorazip's YAML (configs/model-*.yaml, strict) or a Hugging Face config.json
// (lenient: unknown keys are tolerated). Torch-free.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace lorazip {
class YamlMap;

struct LlamaConfig {
  int64_t vocab_size = 4096;
  int64_t hidden_size = 256;
  int64_t intermediate_size = 688;
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 8;
  int64_t num_key_value_heads = 4;   // GQA when smaller than num_attention_heads
  int64_t head_dim = 0;              // 0 -> hidden_size / num_attention_heads
  int64_t max_position_embeddings = 512;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  int64_t bos_token_id = 1;          // -1 = none (null in config.json)
  int64_t eos_token_id = 2;          // -1 = none; a config.json list keeps its first id

  int64_t resolved_head_dim() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  // Throws std::invalid_argument naming the field for inconsistent sizes (heads not dividing, etc.).
  void validate(const std::string& source) const;

  // HF config.json. `source` names the file in errors. Errors on hidden_act != silu,
  // pretraining_tp != 1, unsupported rope_scaling / rope_parameters.rope_type; missing required
  // keys (vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
  // rms_norm_eps) are errors naming the key.
  static LlamaConfig from_hf_json(const nlohmann::json& j, const std::string& source);
  nlohmann::json to_hf_json() const;  // architectures, model_type, torch_dtype float32, all fields
  // Strict YAML (the keys are the HF names above).
  static LlamaConfig from_yaml(YamlMap& m);
  // Convenience: a whole YAML file (configs/model-*.yaml) whose top-level keys are the fields.
  static LlamaConfig from_yaml_file(const std::string& path);
  // Parameter count of the model these sizes describe (lm_head excluded when tied).
  int64_t num_parameters() const;
};

}  // namespace lorazip
