// The Llama architecture in GGUF terms, torch-free: the model config read from (and written to)
// `llama.*` metadata, the one table that maps Hugging Face tensor names to llama.cpp's, and the
// row permutation llama.cpp's converter applies to attn_q / attn_k (and to a LoRA's lora_b).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/config.h"
#include "model/gguf.h"

namespace lorazip {

// LlamaConfig from a GGUF file's metadata and tensor shapes. Refuses (std::runtime_error naming
// the file and key) an architecture other than "llama", rope scaling, a partial rotary dimension,
// mixture-of-experts, and sizes that disagree (vocab from token_embd.weight vs llama.vocab_size
// vs tokenizer.ggml.tokens). tie_word_embeddings = no output.weight; bias flags from the presence
// of blk.N.*.bias tensors; bos/eos from tokenizer.ggml.{bos,eos}_token_id (-1 when absent).
LlamaConfig llama_config_from_gguf(const GgufFile& f);

// Writes general.architecture = "llama" and the llama.* keys for `cfg` (plus the bos/eos ids
// when set). The inverse of llama_config_from_gguf for the fields GGUF carries.
void add_llama_metadata(GgufWriter& w, const LlamaConfig& cfg);

// HF tensor key <-> GGUF tensor name ("model.layers.3.self_attn.q_proj.weight" <->
// "blk.3.attn_q.weight", "model.embed_tokens.weight" <-> "token_embd.weight", biases too).
// Returns "" for a name with no counterpart.
std::string gguf_tensor_name(const std::string& hf_key);
std::string hf_tensor_name(const std::string& gguf_name);
// Same for HF module paths without ".weight" ("model.layers.3.mlp.up_proj" -> "blk.3.ffn_up").
std::string gguf_module_name(const std::string& hf_module);

// How many heads an HF key's rows are permuted over in GGUF: num_attention_heads for q_proj
// (weight and bias), num_key_value_heads for k_proj, 0 for every other tensor.
int64_t qk_permute_heads(const std::string& hf_key, const LlamaConfig& cfg);

// Reorders the `rows` rows (each `row_bytes` long) of src into dst (distinct buffers). With
// n_heads heads of hd = rows / n_heads rows each, llama.cpp's order is
//   gguf_row[h*hd + 2i + t] = hf_row[h*hd + t*hd/2 + i]   (t in {0, 1}, i < hd/2).
// to_gguf = true applies it, false undoes it. std::invalid_argument when n_heads does not divide
// rows into heads of even size.
void permute_qk_rows(const void* src, void* dst, int64_t rows, size_t row_bytes, int64_t n_heads, bool to_gguf);

}  // namespace lorazip
