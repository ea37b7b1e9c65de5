// engine::Config from the model's LlamaConfig (model/config.h). Separate from engine.h so that the
// engine itself builds without model/'s JSON and YAML dependencies (the aarch64 cross build).
#pragma once
#include "codec/engine/engine.h"
#include "model/config.h"

namespace lorazip::engine {

inline Config config_from(const LlamaConfig& c) {
  Config e;
  e.vocab_size = c.vocab_size;
  e.hidden_size = c.hidden_size;
  e.intermediate_size = c.intermediate_size;
  e.num_hidden_layers = c.num_hidden_layers;
  e.num_attention_heads = c.num_attention_heads;
  e.num_key_value_heads = c.num_key_value_heads;
  e.head_dim = c.resolved_head_dim();
  e.max_position_embeddings = c.max_position_embeddings;
  e.rms_norm_eps = c.rms_norm_eps;
  e.rope_theta = c.rope_theta;
  e.tie_word_embeddings = c.tie_word_embeddings;
  e.attention_bias = c.attention_bias;
  e.mlp_bias = c.mlp_bias;
  e.bos_token_id = c.bos_token_id;
  return e;
}

}  // namespace lorazip::engine
