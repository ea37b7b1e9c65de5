// LoRA hyper-parameters: the `lora:` section of lorazip's YAML, and the subset of PEFT's
// adapter_config.json that decides the math (rank, alpha, targets, rsLoRA scaling). Torch-free.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lorazip {
class YamlMap;

struct LoraConfig {
  int64_t r = 8;               // rank R, >= 1
  double alpha = 16.0;         // lora_alpha; scaling = alpha / r (alpha / sqrt(r) with use_rslora)
  double dropout = 0.0;        // dropout on the side path's input during training, in [0, 1)
  // Projection names (suffixes of HF module paths) that get an adapter.
  std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  // Which decoder layers get adapters (PEFT's layers_to_transform): `layers` lists indices,
  // `top_layers` = k > 0 means the k layers nearest the output; neither set = every layer.
  // Training through the top k only back-propagates through those k layers.
  std::vector<int64_t> layers;
  int64_t top_layers = 0;
  bool use_rslora = false;     // PEFT's rank-stabilised scaling; only set by adapter_config.json
  uint64_t seed = 0;           // initialisation of the A matrices (B starts at zero)

  double scaling() const;
  // The layer indices that get adapters in a model of `num_layers` layers, ascending.
  // std::invalid_argument naming lora.layers for an index outside [0, num_layers) or k > num_layers.
  std::vector<int64_t> resolve_layers(int64_t num_layers) const;
  // Throws std::invalid_argument naming the field ("lora.r must be >= 1, got 0").
  void validate(const std::string& source) const;

  // The `lora:` section (the caller passes m.sub("lora")); strict: calls m.finish().
  // Keys: r, alpha, dropout, targets (list or space-separated string), layers ("all", "top K"
  // or a list of layer indices), seed.
  static LoraConfig from_yaml(YamlMap& m, const std::string& base_dir);
  nlohmann::json to_json() const;  // the resolved config, as recorded in lorazip.json
};

// The decoder layer of an HF module path: "model.layers.3.mlp.up_proj" -> 3; -1 when the path
// names no layer.
int64_t module_layer(const std::string& module);

}  // namespace lorazip
