// save_gguf_lora (see gguf_lora.h): PEFT tensors renamed with the one HF -> GGUF table in
// model/gguf_llama.h, lora_b of q/k permuted like the base weights llama.cpp adds them to.
#include "adapters/gguf_lora.h"

#include <torch/torch.h>

#include <stdexcept>

#include "model/gguf.h"
#include "model/gguf_llama.h"

namespace lorazip {

void save_gguf_lora(const LoraAdapter& adapter, const LlamaConfig& base, const std::string& path, const std::string& name) {
  const std::vector<std::string> modules = adapter.modules();
  if (modules.empty()) throw std::invalid_argument("save_gguf_lora: the adapter has no modules");
  const auto sd = adapter.state_dict();
  // One alpha for the file: the first module's scaling * r.
  const double alpha = adapter.scaling(modules[0]) * static_cast<double>(adapter.rank(modules[0]));
  GgufWriter w;
  w.add("general.architecture", GgufValue::of_string("llama"));
  w.add("general.type", GgufValue::of_string("adapter"));
  if (!name.empty()) w.add("general.name", GgufValue::of_string(name));
  w.add("adapter.type", GgufValue::of_string("lora"));
  w.add("adapter.lora.alpha", GgufValue::of_f32(static_cast<float>(alpha)));
  torch::NoGradGuard no_grad;
  for (const std::string& mod : modules) {
    const std::string g = gguf_module_name(mod);
    if (g.empty()) throw std::invalid_argument("save_gguf_lora: module '" + mod + "' has no llama.cpp tensor name");
    torch::Tensor a = sd.at(peft_key(mod, "lora_A")).detach().to(torch::kCPU, torch::kFloat).contiguous();  // (R, in)
    torch::Tensor b = sd.at(peft_key(mod, "lora_B")).detach().to(torch::kCPU, torch::kFloat).contiguous();  // (out, R)
    const double r = static_cast<double>(a.size(0));
    const double ratio = adapter.scaling(mod) * r / alpha;
    if (ratio != 1.0) b = (b * ratio).contiguous();
    const int64_t heads = qk_permute_heads(mod + ".weight", base);
    if (heads > 0) {
      torch::Tensor p = torch::empty_like(b);
      permute_qk_rows(b.data_ptr<float>(), p.data_ptr<float>(), b.size(0), static_cast<size_t>(b.size(1)) * sizeof(float), heads, true);
      b = p;
    }
    w.add_f32_tensor(g + ".weight.lora_a", {a.size(1), a.size(0)}, a.data_ptr<float>());  // ne [in, R]
    w.add_f32_tensor(g + ".weight.lora_b", {b.size(1), b.size(0)}, b.data_ptr<float>());  // ne [R, out]
  }
  w.write(path);
}

}  // namespace lorazip
