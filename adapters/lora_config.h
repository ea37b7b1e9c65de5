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
  bool use_rslora = false;     // PEFT's rank-stabilised scaling; only set by adapter_config.json
  uint64_t seed = 0;           // initialisation of the A matrices (B starts at zero)

  double scaling() const;
  // Throws std::invalid_argument naming the field ("lora.r must be >= 1, got 0").
  void validate(const std::string& source) const;

  // The `lora:` section (the caller passes m.sub("lora")); strict: calls m.finish().
  // Keys: r, alpha, dropout, targets (list or space-separated string), seed.
  static LoraConfig from_yaml(YamlMap& m, const std::string& base_dir);
  nlohmann::json to_json() const;  // the resolved config, as recorded in lorazip.json
};

}  // namespace lorazip
