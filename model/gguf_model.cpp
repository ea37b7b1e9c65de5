// load_gguf_model / save_gguf_model (see gguf_model.h): the name table and the q/k permutation
// come from gguf_llama.h, the dequantization from gguf.h, so this file only moves tensors.
#include "model/gguf_model.h"

#include <cstring>
#include <map>
#include <stdexcept>

#include "codec/engine/blocks.h"
#include "model/gguf_llama.h"
#include "model/gguf_quant.h"
#include "model/llama_tensors.h"

namespace lorazip {
LlamaForCausalLM load_gguf_model(const GgufFile& f) {
  const StoredLlama stored = read_gguf_llama(f);  // every tensor checked against the llama.* metadata
  LlamaForCausalLM model(stored.config);
  torch::NoGradGuard no_grad;
  for (auto& kv : model->named_parameters(true)) {
    const std::vector<float> v = stored_as_float32(stored.tensors.at(kv.key()));  // q/k back in HF's row order
    std::memcpy(kv.value().data_ptr<float>(), v.data(), v.size() * sizeof(float));
  }
  return model;
}

LlamaForCausalLM load_gguf_model(const std::string& path) { return load_gguf_model(GgufFile::open(path)); }

void save_gguf_model(LlamaForCausalLM& model, const std::string& path, uint32_t weight_type) {
  engine::WeightKind kind;
  if (!engine::kind_from_ggml(weight_type, &kind))
    throw std::invalid_argument("save_gguf_model: weight type must be one of " + ggml_dequantizable_types() + ", got " +
                                ggml_type_label(weight_type));
  const LlamaConfig& cfg = model->config();
  GgufWriter w;
  add_llama_metadata(w, cfg);
  w.add("general.type", GgufValue::of_string("model"));
  for (auto& kv : model->named_parameters(true)) {
    const std::string name = gguf_tensor_name(kv.key());
    if (name.empty()) throw std::logic_error("save_gguf_model: no GGUF name for parameter '" + kv.key() + "'");
    torch::Tensor t = kv.value().detach().to(torch::kCPU, torch::kFloat).contiguous();
    const int64_t heads = qk_permute_heads(kv.key(), cfg);
    if (heads > 0) {
      torch::Tensor p = torch::empty_like(t);
      const int64_t rows = t.size(0);
      permute_qk_rows(t.data_ptr<float>(), p.data_ptr<float>(), rows, static_cast<size_t>(t.numel() / rows) * sizeof(float), heads, true);
      t = p;
    }
    const std::vector<int64_t> ne(t.sizes().rbegin(), t.sizes().rend());
    if (t.dim() != 2) {
      w.add_f32_tensor(name, ne, t.data_ptr<float>());
      continue;
    }
    try {
      add_quantized_tensor(w, name, ne, kind, t.data_ptr<float>());
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("save_gguf_model: ") + e.what() +
                                  " (choose a weight type whose block divides every row length, e.g. Q8_0 or F16)");
    }
  }
  w.write(path);
}

}  // namespace lorazip
