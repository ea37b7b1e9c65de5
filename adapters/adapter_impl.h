// LoraAdapter's insides, shared by adapter.cpp (the adapter on a model: create, attach, merge)
// and peft_io.cpp (its PEFT directory: save, load). Not a public header.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "adapters/adapter.h"
#include "model/llama.h"

namespace lorazip {

struct LoraAdapter::Impl {
  struct Module : LoraModuleShape {
    torch::Tensor A, B;    // [R, in], [out, R]
    Linear lin{nullptr};   // set while attached
  };
  LoraConfig cfg;
  std::vector<Module> mods;
  LlamaForCausalLM model{nullptr};  // set while attached

  const Module& find(const std::string& name) const {
    for (const auto& m : mods)
      if (m.name == name) return m;
    throw std::invalid_argument("LoRA adapter has no module '" + name + "'");
  }
};

namespace adapter_detail {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A list entry of target_modules matches a module path exactly or as a dotted suffix (PEFT).
inline bool suffix_match(const std::string& module, const std::string& target) {
  return module == target || ends_with(module, "." + target);
}

inline std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
inline std::string shape_str(const std::vector<int64_t>& s) { return shape_str(at::IntArrayRef(s)); }

}  // namespace adapter_detail
}  // namespace lorazip
