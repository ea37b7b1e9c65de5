// Llama-architecture GGUF files as lorazip models (libtorch): loading dequantizes every tensor to
// float32 and restores Hugging Face's q/k row order, so the result is the same LlamaForCausalLM a
// safetensors checkpoint gives; saving writes llama.cpp's names, row order and metadata.
#pragma once
#include <cstdint>
#include <string>

#include "model/gguf.h"
#include "model/llama.h"

namespace lorazip {

// Config from llama.* metadata (llama_config_from_gguf), then every tensor checked before any
// weight is allocated: each GGUF tensor must map to a parameter of that config with the same
// shape and a type lorazip dequantizes, and every parameter must be present. Errors
// (std::runtime_error) name the file and the tensor.
LlamaForCausalLM load_gguf_model(const GgufFile& f);
LlamaForCausalLM load_gguf_model(const std::string& path);

// Writes `model` as a llama GGUF: llama.* metadata, 2-D weights as `weight_type` (any type
// ggml_can_dequantize accepts: F32, F16, BF16, or quantized by gguf_quant.h's quantize_row),
// norms (and biases) as F32, q/k rows permuted to llama.cpp's order. No tokenizer metadata beyond
// the bos/eos ids. Atomic. std::invalid_argument for another type, or a weight whose row length is
// not whole blocks of the type (Q4_K, Q5_K, Q6_K need multiples of 256), naming the tensor.
void save_gguf_model(LlamaForCausalLM& model, const std::string& path, uint32_t weight_type = ggml_type::F32);

}  // namespace lorazip
