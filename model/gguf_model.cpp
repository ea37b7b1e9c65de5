// load_gguf_model / save_gguf_model (see gguf_model.h): the name table and the q/k permutation
// come from gguf_llama.h, the dequantization from gguf.h, so this file only moves tensors.
#include "model/gguf_model.h"

#include <cstring>
#include <map>
#include <stdexcept>

#include "codec/engine/blocks.h"
#include "model/gguf_llama.h"
#include "model/gguf_quant.h"

namespace lorazip {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The HF keys and shapes a model of config `c` has (LlamaForCausalLM's named_parameters), known
// before any weight is allocated.
std::map<std::string, std::vector<int64_t>> expected_tensors(const LlamaConfig& c) {
  const int64_t hd = c.resolved_head_dim(), hq = c.num_attention_heads * hd, hkv = c.num_key_value_heads * hd;
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  std::map<std::string, std::vector<int64_t>> e;
  e["model.embed_tokens.weight"] = {c.vocab_size, h};
  e["model.norm.weight"] = {h};
  if (!c.tie_word_embeddings) e["lm_head.weight"] = {c.vocab_size, h};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    e[p + "input_layernorm.weight"] = {h};
    e[p + "post_attention_layernorm.weight"] = {h};
    e[p + "self_attn.q_proj.weight"] = {hq, h};
    e[p + "self_attn.k_proj.weight"] = {hkv, h};
    e[p + "self_attn.v_proj.weight"] = {hkv, h};
    e[p + "self_attn.o_proj.weight"] = {h, hq};
    e[p + "mlp.gate_proj.weight"] = {f, h};
    e[p + "mlp.up_proj.weight"] = {f, h};
    e[p + "mlp.down_proj.weight"] = {h, f};
    if (c.attention_bias) {
      e[p + "self_attn.q_proj.bias"] = {hq};
      e[p + "self_attn.k_proj.bias"] = {hkv};
      e[p + "self_attn.v_proj.bias"] = {hkv};
      e[p + "self_attn.o_proj.bias"] = {h};
    }
    if (c.mlp_bias) {
      e[p + "mlp.gate_proj.bias"] = {f};
      e[p + "mlp.up_proj.bias"] = {f};
      e[p + "mlp.down_proj.bias"] = {h};
    }
  }
  return e;
}

[[noreturn]] void refuse(const GgufFile& f, const std::string& msg) {
  throw std::runtime_error("GGUF file '" + f.name() + "': " + msg);
}

}  // namespace

LlamaForCausalLM load_gguf_model(const GgufFile& f) {
  const LlamaConfig cfg = llama_config_from_gguf(f);
  const auto expected = expected_tensors(cfg);
  for (const GgufTensorInfo& t : f.tensors()) {
    const std::string hf = hf_tensor_name(t.name);
    auto it = hf.empty() ? expected.end() : expected.find(hf);
    if (it == expected.end())
      refuse(f, "unexpected tensor '" + t.name + "' (not part of a Llama model with this file's llama.* metadata)");
    if (t.shape() != it->second)
      refuse(f, "tensor '" + t.name + "' has shape " + shape_str(t.shape()) + " but the llama.* metadata implies " +
                    shape_str(it->second) + " for " + hf);
    if (!ggml_can_dequantize(t.type))
      refuse(f, "tensor '" + t.name + "' has type " + ggml_type_label(t.type) +
                    ", which lorazip does not dequantize (supported: " + ggml_dequantizable_types() + ")");
  }
  for (const auto& e : expected)
    if (!f.find_tensor(gguf_tensor_name(e.first)))
      refuse(f, "tensor '" + gguf_tensor_name(e.first) + "' (" + e.first + ") is missing" +
                    (e.first == "lm_head.weight" ? "" : " (truncated conversion, or the metadata is for another model?)"));

  LlamaForCausalLM model(cfg);
  torch::NoGradGuard no_grad;
  for (auto& kv : model->named_parameters(true)) {
    torch::Tensor& p = kv.value();
    if (!expected.count(kv.key()))
      throw std::logic_error("load_gguf_model: parameter '" + kv.key() + "' is missing from the expected tensor list");
    const GgufTensorInfo& t = f.tensor(gguf_tensor_name(kv.key()));
    float* dst = p.data_ptr<float>();
    const int64_t heads = qk_permute_heads(kv.key(), cfg);
    if (heads == 0) {
      f.dequantize_into(t, dst);
    } else {
      // GGUF keeps llama.cpp's interleaved-pair row order; HF's rotate_half needs it undone.
      const std::vector<float> rows = f.dequantize(t);
      const int64_t n_rows = p.size(0);
      permute_qk_rows(rows.data(), dst, n_rows, static_cast<size_t>(p.numel() / n_rows) * sizeof(float), heads, false);
    }
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
