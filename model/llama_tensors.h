// A Llama checkpoint's tensors as they are stored, torch-free: a GGUF file (memory-mapped, each
// tensor in its own quantized or float kind) or a Hugging Face directory (config.json +
// model.safetensors or shards, F32 / F16 / BF16), each checked tensor by tensor against the
// config (every expected tensor present once, with its shape and a usable type; nothing else).
// The coding engine packs them as they are (engine::Weights); libtorch's loaders dequantize them.
// Also the fingerprint that names a base: SHA-256 over its tensors as float32, in name order.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codec/engine/engine.h"
#include "model/config.h"
#include "model/gguf.h"
#include "model/safetensors.h"

namespace lorazip {

// The Hugging Face keys and shapes of a Llama of config `c` (LlamaForCausalLM's named_parameters).
std::map<std::string, std::vector<int64_t>> expected_llama_tensors(const LlamaConfig& c);

// A checkpoint's tensors under Hugging Face keys, pointing into storage this object keeps alive.
struct StoredLlama {
  std::string source;  // the file or directory, for messages
  LlamaConfig config;
  engine::StoredMap tensors;
  std::shared_ptr<const void> keep;  // the GGUF mapping or the safetensors files
};

// A llama GGUF file: config from llama.* metadata, then every tensor checked (name, shape, a kind
// the engine computes with); q/k rows keep llama.cpp's order (permute_heads set). Errors
// (std::runtime_error) name the file and the tensor.
StoredLlama read_gguf_llama(const GgufFile& f);
// The same, keeping `f` itself alive (no copy of its metadata).
StoredLlama read_gguf_llama(std::shared_ptr<const GgufFile> f);
// A Hugging Face Llama directory (config.json + model.safetensors, or shards with
// model.safetensors.index.json). rotary_emb.inv_freq tensors are ignored; a tied checkpoint may
// carry an exact copy of the embeddings as lm_head.weight. Errors (std::runtime_error) name the
// file and the tensor.
StoredLlama read_hf_llama(const std::string& dir);

// Writes a Hugging Face Llama directory: config.json, the tensors in the given order (one
// model.safetensors with metadata format=pt, or with `max_shard_bytes` > 0 shards
// model-0000K-of-0000N.safetensors filled greedily in that order, plus
// model.safetensors.index.json), and, when `tokenizer_model_bytes` is non-empty, the tokenizer (as
// tokenizer.model, or tokenizer.json for a byte-level BPE one, with tokenizer_config.json and
// special_tokens_map.json from hf_tokenizer_files). One atomic directory replace: `dir` is the old
// one or the whole new one, never half-written.
void write_hf_llama(const std::string& dir, const LlamaConfig& config, std::vector<std::pair<std::string, RawTensor>> tensors,
                    const std::string& tokenizer_model_bytes, int64_t max_shard_bytes = 0);

// Row-major float32 values of one stored tensor (q/k rows back in Hugging Face's order).
std::vector<float> stored_as_float32(const engine::StoredTensor& t);

// SHA-256 over (name, "F32", shape, float32 bytes) of every tensor in name order: the same value as
// model_fingerprint() of the model these tensors load into. Streams the conversion (no whole copy).
std::string float32_fingerprint(const engine::StoredMap& tensors);
// SHA-256 over a tag, then (name, kind, shape, row permutation, stored bytes) of every tensor in
// name order: the identity of block-quantized weights as stored, about five times cheaper than
// float32_fingerprint (the bytes a 4-bit file holds, not the floats they expand to).
std::string stored_fingerprint(const engine::StoredMap& tensors);
// The same, with each tensor's bytes read by `read(t, sink)`, which passes them to `sink` in pieces
// (a mapped file is read with pread instead of through the mapping, so hashing does not map it).
using TensorReader = std::function<void(const engine::StoredTensor&, const std::function<void(const uint8_t*, size_t)>&)>;
std::string stored_fingerprint(const engine::StoredMap& tensors, const TensorReader& read);
// Whether any matrix is block-quantized (such bases are named by stored_fingerprint).
bool has_quantized_matrix(const engine::StoredMap& tensors);
// SHA-256 over (name, dtype, shape, bytes) of every tensor, in name order (adapters); the same
// value for the tensors as copies or as views of a file's bytes.
std::string tensors_fingerprint(const std::map<std::string, RawTensor>& tensors);
std::string tensors_fingerprint(const std::map<std::string, TensorView>& tensors);

}  // namespace lorazip
