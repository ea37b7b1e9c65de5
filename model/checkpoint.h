// Hugging Face Llama directories: config.json + model.safetensors (or shards with
// model.safetensors.index.json) + tokenizer.model. Fingerprints identify models.
#pragma once
#include <map>
#include <string>

#include "model/llama.h"
#include "model/llama_tensors.h"
#include "model/safetensors.h"

namespace lorazip {

// Loads config.json and the weights (F32/F16/BF16 -> float32) into a new model. Every expected
// tensor must be present with its exact shape; an unexpected tensor is an error (except
// rotary_emb.inv_freq, which is ignored); errors name the file and tensor.
LlamaForCausalLM load_hf_model(const std::string& dir);

// Writes config.json + model.safetensors (F32, metadata format=pt), and the tokenizer when
// `tokenizer_model_bytes` is non-empty (as tokenizer.model, or tokenizer.json for a BPE one, with
// tokenizer_config.json and special_tokens_map.json from hf_tokenizer_files), as one atomic
// directory replace. `max_shard_bytes` > 0
// writes shards model-0000K-of-0000N.safetensors plus model.safetensors.index.json.
void save_hf_model(LlamaForCausalLM& model, const std::string& dir, const std::string& tokenizer_model_bytes,
                   int64_t max_shard_bytes = 0);

// SHA-256 over (name, dtype, shape, bytes) of every tensor, in name order; float32 contiguous CPU
// (float32_fingerprint of model/llama_tensors.h: the same value for the tensors it loaded from).
std::string model_fingerprint(LlamaForCausalLM& model);

// Conversions between torch tensors and RawTensor (float32 / float16 / bfloat16).
RawTensor to_raw(const torch::Tensor& t);
torch::Tensor from_raw(const RawTensor& r, const std::string& name);  // -> float32 CPU tensor

}  // namespace lorazip
