// Llama <-> GGUF: config from llama.* metadata, the HF <-> llama.cpp tensor name table, and the
// q/k row permutation (see gguf_llama.h and docs/gguf.md).
#include "model/gguf_llama.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <stdexcept>

namespace lorazip {
namespace {

// Per-layer modules: HF path under model.layers.N -> GGUF name under blk.N.
struct LayerName {
  const char* hf;
  const char* gguf;
};
const LayerName kLayer[] = {
    {"input_layernorm", "attn_norm"},        {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},          {"self_attn.o_proj", "attn_output"},
    {"post_attention_layernorm", "ffn_norm"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};
// Whole-model modules.
const LayerName kTop[] = {{"model.embed_tokens", "token_embd"}, {"model.norm", "output_norm"}, {"lm_head", "output"}};

// "prefix<digits>.rest" -> (digits, rest); false when `s` does not have that form.
bool split_layer(const std::string& s, const std::string& prefix, std::string& layer, std::string& rest) {
  if (s.compare(0, prefix.size(), prefix) != 0) return false;
  size_t i = prefix.size(), j = i;
  while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
  if (j == i || j >= s.size() || s[j] != '.' || (s[i] == '0' && j - i > 1)) return false;
  layer = s.substr(i, j - i);
  rest = s.substr(j + 1);
  return true;
}

// Module-level mapping in either direction.
std::string map_module(const std::string& name, bool to_gguf) {
  for (const auto& t : kTop)
    if (name == (to_gguf ? t.hf : t.gguf)) return to_gguf ? t.gguf : t.hf;
  std::string layer, rest;
  if (!split_layer(name, to_gguf ? "model.layers." : "blk.", layer, rest)) return "";
  for (const auto& l : kLayer)
    if (rest == (to_gguf ? l.hf : l.gguf)) return (to_gguf ? "blk." : "model.layers.") + layer + "." + (to_gguf ? l.gguf : l.hf);
  return "";
}

std::string map_tensor(const std::string& name, bool to_gguf) {
  for (const char* suffix : {".weight", ".bias"}) {
    const size_t n = std::strlen(suffix);
    if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0) {
      std::string m = map_module(name.substr(0, name.size() - n), to_gguf);
      return m.empty() ? "" : m + suffix;
    }
  }
  return "";
}

// The shortest decimal that reads back as the same float: an f32 1e-5 in the file becomes the
// double 1e-5 again (as config.json would say), not 9.99999974737875e-06.
double shortest_decimal(float f) {
  char buf[64];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) return std::strtod(buf, nullptr);
  }
  return static_cast<double>(f);
}

[[noreturn]] void refuse(const GgufFile& f, const std::string& msg) {
  throw std::runtime_error("GGUF file '" + f.name() + "': " + msg);
}

}  // namespace

std::string gguf_tensor_name(const std::string& hf_key) { return map_tensor(hf_key, true); }
std::string hf_tensor_name(const std::string& gguf_name) { return map_tensor(gguf_name, false); }
std::string gguf_module_name(const std::string& hf_module) { return map_module(hf_module, true); }

int64_t qk_permute_heads(const std::string& hf_key, const LlamaConfig& cfg) {
  static const std::regex q(R"(^model\.layers\.\d+\.self_attn\.q_proj\.(weight|bias)$)");
  static const std::regex k(R"(^model\.layers\.\d+\.self_attn\.k_proj\.(weight|bias)$)");
  if (std::regex_match(hf_key, q)) return cfg.num_attention_heads;
  if (std::regex_match(hf_key, k)) return cfg.num_key_value_heads;
  return 0;
}

void permute_qk_rows(const void* src_v, void* dst_v, int64_t rows, size_t row_bytes, int64_t n_heads, bool to_gguf) {
  if (n_heads <= 0 || rows % n_heads != 0 || (rows / n_heads) % 2 != 0)
    throw std::invalid_argument("permute_qk_rows: " + std::to_string(rows) + " rows do not split into " +
                                std::to_string(n_heads) + " heads of even size");
  const int64_t hd = rows / n_heads, half = hd / 2;
  const char* src = static_cast<const char*>(src_v);
  char* dst = static_cast<char*>(dst_v);
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t g = h * hd + 2 * i + t, f = h * hd + t * half + i;  // GGUF row, HF row
        const int64_t from = to_gguf ? f : g, to = to_gguf ? g : f;
        std::memcpy(dst + to * row_bytes, src + from * row_bytes, row_bytes);
      }
}

LlamaConfig llama_config_from_gguf(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama")
    refuse(f, "architecture '" + arch + "' is not supported (lorazip loads general.architecture = 'llama' models)");
  auto key = [](const char* k) { return std::string("llama.") + k; };
  LlamaConfig c;
  c.num_hidden_layers = f.get_u32(key("block_count"));
  c.hidden_size = f.get_u32(key("embedding_length"));
  c.intermediate_size = f.get_u32(key("feed_forward_length"));
  c.num_attention_heads = f.get_u32(key("attention.head_count"));
  c.num_key_value_heads = f.get_u32_or(key("attention.head_count_kv"), static_cast<uint32_t>(c.num_attention_heads));
  c.rms_norm_eps = shortest_decimal(f.get_f32(key("attention.layer_norm_rms_epsilon")));
  c.rope_theta = shortest_decimal(f.get_f32_or(key("rope.freq_base"), 10000.0f));
  c.max_position_embeddings = f.get_u32(key("context_length"));
  if (f.get_u32_or(key("expert_count"), 0) > 0) refuse(f, "mixture-of-experts Llama models (llama.expert_count > 0) are not supported");
  const std::string scaling = f.get_string_or(key("rope.scaling.type"), "none");
  if (scaling != "none") refuse(f, "rope scaling '" + scaling + "' (llama.rope.scaling.type) is not supported");
  if (f.has(key("rope.scale_linear")) && f.get_f32(key("rope.scale_linear")) != 1.0f)
    refuse(f, "rope scaling (llama.rope.scale_linear != 1) is not supported");
  if (f.find_tensor("rope_freqs.weight")) refuse(f, "per-frequency rope factors (tensor rope_freqs.weight, Llama 3.1 scaling) are not supported");
  if (f.has(key("attention.key_length"))) {
    const int64_t kl = f.get_u32(key("attention.key_length"));
    if (f.get_u32_or(key("attention.value_length"), static_cast<uint32_t>(kl)) != kl)
      refuse(f, "llama.attention.value_length differs from key_length (not a Llama layout lorazip supports)");
    if (c.num_attention_heads <= 0 || kl != c.hidden_size / c.num_attention_heads) c.head_dim = kl;
  }
  const int64_t hd = c.num_attention_heads > 0 ? c.resolved_head_dim() : 0;
  if (f.has(key("rope.dimension_count")) && f.get_u32(key("rope.dimension_count")) != hd)
    refuse(f, "llama.rope.dimension_count = " + std::to_string(f.get_u32(key("rope.dimension_count"))) +
                  " but the head size is " + std::to_string(hd) + " (partial rotary embeddings are not supported)");

  const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
  if (!emb) refuse(f, "tensor 'token_embd.weight' is missing");
  if (emb->ne.size() != 2 || emb->ne[0] != c.hidden_size)
    refuse(f, "tensor 'token_embd.weight' has ne [" + std::to_string(emb->ne[0]) + (emb->ne.size() > 1 ? ", " + std::to_string(emb->ne[1]) : "") +
                  "], expected [embedding_length = " + std::to_string(c.hidden_size) + ", vocab]");
  c.vocab_size = emb->ne[1];
  if (f.has(key("vocab_size")) && f.get_u32(key("vocab_size")) != c.vocab_size)
    refuse(f, "llama.vocab_size = " + std::to_string(f.get_u32(key("vocab_size"))) + " but token_embd.weight has " +
                  std::to_string(c.vocab_size) + " rows");
  if (f.has("tokenizer.ggml.tokens") && f.array_size("tokenizer.ggml.tokens") != static_cast<uint64_t>(c.vocab_size))
    refuse(f, "tokenizer.ggml.tokens has " + std::to_string(f.array_size("tokenizer.ggml.tokens")) +
                  " entries but token_embd.weight has " + std::to_string(c.vocab_size) + " rows");
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  c.attention_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.mlp_bias = f.find_tensor("blk.0.ffn_up.bias") != nullptr;
  c.bos_token_id = f.get_i64_or("tokenizer.ggml.bos_token_id", -1);
  c.eos_token_id = f.get_i64_or("tokenizer.ggml.eos_token_id", -1);
  try {
    c.validate("GGUF file '" + f.name() + "'");
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }
  return c;
}

void add_llama_metadata(GgufWriter& w, const LlamaConfig& c) {
  auto u32 = [](int64_t v) { return GgufValue::of_u32(static_cast<uint32_t>(v)); };
  w.add("general.architecture", GgufValue::of_string("llama"));
  w.add("llama.block_count", u32(c.num_hidden_layers));
  w.add("llama.context_length", u32(c.max_position_embeddings));
  w.add("llama.embedding_length", u32(c.hidden_size));
  w.add("llama.feed_forward_length", u32(c.intermediate_size));
  w.add("llama.attention.head_count", u32(c.num_attention_heads));
  w.add("llama.attention.head_count_kv", u32(c.num_key_value_heads));
  w.add("llama.rope.freq_base", GgufValue::of_f32(static_cast<float>(c.rope_theta)));
  w.add("llama.attention.layer_norm_rms_epsilon", GgufValue::of_f32(static_cast<float>(c.rms_norm_eps)));
  w.add("llama.vocab_size", u32(c.vocab_size));
  w.add("llama.rope.dimension_count", u32(c.resolved_head_dim()));
  if (c.resolved_head_dim() * c.num_attention_heads != c.hidden_size) {
    w.add("llama.attention.key_length", u32(c.resolved_head_dim()));
    w.add("llama.attention.value_length", u32(c.resolved_head_dim()));
  }
  if (c.bos_token_id >= 0) w.add("tokenizer.ggml.bos_token_id", u32(c.bos_token_id));
  if (c.eos_token_id >= 0) w.add("tokenizer.ggml.eos_token_id", u32(c.eos_token_id));
}

}  // namespace lorazip
