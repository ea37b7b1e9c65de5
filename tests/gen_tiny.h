// A tiny chat model for the generation and QA tests: a byte-level BPE vocabulary (256 byte tokens,
// then <|im_start|> and <|im_end|> as control tokens) and a 2-layer Llama whose weights come from
// an integer PRNG as multiples of 1/256 (the same floats everywhere). Its head favours digits,
// ' ', '\n', '.', '?' and <|im_end|>, so its replies contain numbers, numbered lines and end on
// their own: enough structure for the protocols' parsers without a trained model.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "codec/engine/engine.h"
#include "gen/chat.h"
#include "gen/qa.h"
#include "model/bpe_tokenizer.h"
#include "model/tokenizer.h"

namespace lorazip::test {

inline std::string gpt2_symbol(uint8_t b) {
  uint32_t cp = b;
  auto self = [](int x) { return (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE; };
  if (!self(b)) {
    uint32_t k = 0;
    for (int x = 0; x < b; ++x) k += !self(x);
    cp = 0x100 + k;
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

constexpr int32_t kImStart = 256, kImEnd = 257, kTinyVocab = 258;

inline std::vector<std::string> tiny_vocab() {
  std::vector<std::string> v;
  for (int b = 0; b < 256; ++b) v.push_back(gpt2_symbol(static_cast<uint8_t>(b)));
  v.push_back("<|im_start|>");
  v.push_back("<|im_end|>");
  return v;
}

inline std::shared_ptr<Tokenizer> tiny_tokenizer() {
  BpeDefinition d;
  d.tokens = tiny_vocab();
  d.types.assign(256, kBpeNormal);
  d.types.push_back(kBpeControl);
  d.types.push_back(kBpeControl);
  d.bos_id = kImStart;
  d.eos_id = kImEnd;
  return std::make_shared<Tokenizer>(Tokenizer::from_bpe(d, "tiny"));
}

struct TinyWeights {
  std::vector<std::vector<float>> store;
  engine::TensorMap map;
  engine::Config cfg;
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  engine::TensorRef add(std::vector<int64_t> shape, int span, float center) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = center + static_cast<float>(static_cast<int64_t>(next() % (2 * span + 1)) - span) / 256.0f;
    store.push_back(std::move(v));
    return engine::TensorRef{shape, store.back().data()};
  }
  explicit TinyWeights(uint64_t seed) : s(seed) {
    const int64_t V = kTinyVocab, C = 32, I = 64, D = 8;
    cfg.vocab_size = V;
    cfg.hidden_size = C;
    cfg.intermediate_size = I;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 4;
    cfg.num_key_value_heads = 2;
    cfg.head_dim = D;
    cfg.max_position_embeddings = 1024;
    cfg.bos_token_id = kImStart;
    store.reserve(64);
    map["model.embed_tokens.weight"] = add({V, C}, 256, 0);
    for (int i = 0; i < 2; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      map[p + "input_layernorm.weight"] = add({C}, 32, 1);
      map[p + "post_attention_layernorm.weight"] = add({C}, 32, 1);
      map[p + "self_attn.q_proj.weight"] = add({4 * D, C}, 96, 0);
      map[p + "self_attn.k_proj.weight"] = add({2 * D, C}, 96, 0);
      map[p + "self_attn.v_proj.weight"] = add({2 * D, C}, 96, 0);
      map[p + "self_attn.o_proj.weight"] = add({C, 4 * D}, 96, 0);
      map[p + "mlp.gate_proj.weight"] = add({I, C}, 96, 0);
      map[p + "mlp.up_proj.weight"] = add({I, C}, 96, 0);
      map[p + "mlp.down_proj.weight"] = add({C, I}, 64, 0);
    }
    map["model.norm.weight"] = add({C}, 32, 1);
    engine::TensorRef head = add({V, C}, 192, 0);
    // Favoured tokens keep their rows (x8); every other row is scaled down 16x, so their logits
    // stay near 0 while the favoured ones spread wide.
    std::vector<float>& h = store.back();
    auto favoured = [](int64_t v) {
      return (v >= '0' && v <= '9') || v == ' ' || v == '\n' || v == '.' || v == '?' || v == kImEnd;
    };
    for (int64_t v = 0; v < V; ++v)
      for (int64_t c = 0; c < C; ++c) h[static_cast<size_t>(v * C + c)] *= favoured(v) ? 8.0f : 0.0625f;
    map["lm_head.weight"] = head;
  }
};

inline std::shared_ptr<const engine::Model> tiny_model(uint64_t seed = 7) {
  TinyWeights w(seed);
  return std::make_shared<const engine::Model>(w.cfg, w.map);
}

inline gen::ChatModel tiny_chat_model(uint64_t seed = 7) {
  gen::ChatModel m;
  m.name = "tiny" + std::to_string(seed);
  m.model = tiny_model(seed);
  m.tokenizer = tiny_tokenizer();
  m.chat = gen::ChatTemplate(kImStart, kImEnd, "");
  return m;
}

}  // namespace lorazip::test
