// save_gguf_lora (see gguf_lora.h): PEFT tensors renamed with the one HF -> GGUF table in
// model/gguf_llama.h, lora_b of q/k permuted like the base weights llama.cpp adds them to.
#include "adapters/gguf_lora.h"

#include <stdexcept>

#include "model/gguf.h"
#include "model/gguf_llama.h"

namespace lorazip {

void save_gguf_lora(const std::vector<PeftModule>& modules, const LlamaConfig& base, const std::string& path, const std::string& name) {
  if (modules.empty()) throw std::invalid_argument("save_gguf_lora: the adapter has no modules");
  // One alpha for the file: the first module's scaling * r.
  const double alpha = modules[0].scaling * static_cast<double>(modules[0].r);
  GgufWriter w;
  w.add("general.architecture", GgufValue::of_string("llama"));
  w.add("general.type", GgufValue::of_string("adapter"));
  if (!name.empty()) w.add("general.name", GgufValue::of_string(name));
  w.add("adapter.type", GgufValue::of_string("lora"));
  w.add("adapter.lora.alpha", GgufValue::of_f32(static_cast<float>(alpha)));
  for (const PeftModule& m : modules) {
    const std::string g = gguf_module_name(m.name);
    if (g.empty()) throw std::invalid_argument("save_gguf_lora: module '" + m.name + "' has no llama.cpp tensor name");
    if (static_cast<int64_t>(m.a.size()) != m.r * m.in || static_cast<int64_t>(m.b.size()) != m.out * m.r)
      throw std::invalid_argument("save_gguf_lora: module '" + m.name + "' holds " + std::to_string(m.a.size()) + " A and " +
                                  std::to_string(m.b.size()) + " B values for its shape");
    std::vector<float> b = m.b;  // (out, R)
    const double ratio = m.scaling * static_cast<double>(m.r) / alpha;
    if (ratio != 1.0)
      for (float& v : b) v = static_cast<float>(static_cast<double>(v) * ratio);
    const int64_t heads = qk_permute_heads(m.name + ".weight", base);
    if (heads > 0) {
      std::vector<float> p(b.size());
      permute_qk_rows(b.data(), p.data(), m.out, static_cast<size_t>(m.r) * sizeof(float), heads, true);
      b.swap(p);
    }
    w.add_f32_tensor(g + ".weight.lora_a", {m.in, m.r}, m.a.data());  // ne [in, R]
    w.add_f32_tensor(g + ".weight.lora_b", {m.r, m.out}, b.data());   // ne [R, out]
  }
  w.write(path);
}

}  // namespace lorazip
