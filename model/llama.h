// The Llama-architecture decoder in libtorch. Module and parameter names are exactly the Hugging
// Face keys (model.embed_tokens.weight, model.layers.0.self_attn.q_proj.weight, ..., lm_head.weight),
// so named_parameters() is a checkpoint and loading one is an identity map.
//
// One forward path, forward(tokens): whole sequences at once, for training and its validation.
// Inference (coding, generation, routing, evaluation's coded figures) runs on the coding engine
// (codec/engine/), never here.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"

namespace lorazip {

// A bias-optional linear layer whose only registered parameters are "weight" (and "bias"), plus
// an optional low-rank side path that adapters/ attaches (LoRA). The side path's tensors are NOT
// registered parameters, so the model's state dict stays the HF key list.
//   y = x W^T + b                                     (no adapter)
//   y = x W^T + b + scaling * (dropout(x) A^T) B^T    (adapter attached)
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias);
  // (..., in) -> (..., out); dropout on the side path's input only in training mode.
  torch::Tensor forward(const torch::Tensor& x) { return apply(x, is_training()); }
  // The formula above, written once: forward() and the fused inference path both call it.
  torch::Tensor apply(const torch::Tensor& x, bool side_dropout);

  int64_t in_features, out_features;
  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined

  // LoRA side path (set by adapters/). lora_A [r, in], lora_B [out, r].
  torch::Tensor lora_A, lora_B;
  double lora_scaling = 0.0;
  double lora_dropout = 0.0;
};
TORCH_MODULE(Linear);

class RMSNormImpl;
class DecoderLayerImpl;

class LlamaForCausalLMImpl : public torch::nn::Module {
 public:
  explicit LlamaForCausalLMImpl(const LlamaConfig& cfg);

  // tokens [B, T] int64 -> logits [B, T, vocab] float32. Positions are 0..T-1.
  // forward(t) == torch::linear(forward_hidden(t), lm_head_weight()).
  torch::Tensor forward(const torch::Tensor& tokens);
  // tokens [B, T] -> the final-normed hidden states [B, T, hidden], what the LM head reads; with
  // linear_cross_entropy the [B, T, vocab] logits are never held at once (training).
  torch::Tensor forward_hidden(const torch::Tensor& tokens);
  // lm_head.weight [vocab, hidden], or model.embed_tokens.weight when tied.
  torch::Tensor lm_head_weight() const;

  const LlamaConfig& config() const { return cfg_; }

  // Every projection, by HF module path without ".weight": "model.layers.0.self_attn.q_proj", ...
  // (q,k,v,o,gate,up,down for every layer, in layer order). Used by adapters/.
  std::vector<std::pair<std::string, Linear>> projections() const;

  // Initialise weights like HF (normal(0, initializer_range), norms at 1) with a seeded generator.
  void init_weights(uint64_t seed, double std = 0.02);

 private:
  LlamaConfig cfg_;
  std::vector<std::pair<std::string, Linear>> projections_;
  // registered children: "model" (embed_tokens, layers, norm), "lm_head" unless tied
  struct Impl;
  std::shared_ptr<Impl> impl_;
};
TORCH_MODULE(LlamaForCausalLM);

// Summed next-token cross-entropy in nats of logits = hidden W^T, without the [N, V] logits, their
// log-softmax and their gradient existing at once: rows go through in chunks of `chunk_rows`, and
// when autograd will need them the gradients for hidden (and W, when it requires grad) are formed
// chunk by chunk in the forward pass (softmax - one-hot is known there), so backward only scales them.
// Equal to torch::nn::functional::cross_entropy(linear(hidden, W), targets, reduction sum,
// ignore_index) up to float rounding. hidden [N, C] float, W [V, C], targets [N] int64 in
// [0, V) or == ignore_index. Returns a 0-dim float tensor. std::invalid_argument on bad shapes.
// chunk_rows = 0 picks min(256, 4 Mi / V) rows (at least 16), so that a chunk's (rows, V) float
// tensors stay at 16 MiB or less, under glibc's largest mmap threshold (common/alloc.h): with
// SmolLM2's 49,152-piece vocabulary, 85 rows instead of 256 keep the chunks out of fresh mmaps.
torch::Tensor linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                                   int64_t ignore_index = -100, int64_t chunk_rows = 0);

// Set intra-op threads for this process (0 = all cores). Returns the number in force.
int set_torch_threads(int n);

}  // namespace lorazip
