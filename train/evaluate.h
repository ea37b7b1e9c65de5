// Code length of documents under a libtorch model: what training validates with (the best step is
// kept by it). Not the codec's figure, which the coding engine computes with its own arithmetic,
// its chunk length and windowed chunks (codec/lm_codec.h, code_length_bits; docs/training.md).
//
// Convention: a document of n tokens is cut into chunks of at most
// (context - 1) tokens; each chunk is an independent sequence that starts with BOS at position 0,
// so its first token is predicted from BOS alone and token j of the chunk from BOS + tokens 0..j-1.
// The ideal code length of the document is the sum over its tokens of -log2 p(token), softmax in
// float32, summed in double. An empty document costs 0 bits. The model runs in eval mode (no
// dropout) without autograd; its train/eval mode is restored afterwards.
//
// Chunks of many documents are batched (sorted by length, right-padded, padded positions masked
// out of the sum): causal attention means padding never changes a real position, so results do
// not depend on batching beyond float noise (~1e-6 relative).
// Torch-free header.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/doc_sample.h"  // spread_indices, used with evaluate()

namespace lorazip {

class LlamaForCausalLM;
struct DocSet;

struct DocBits {
  double bits = 0;     // ideal code length of the document, in bits
  int64_t tokens = 0;  // tokens coded (= the document's token count)
};

struct EvalOptions {
  int64_t context = 0;          // positions per chunk incl. BOS; 0 = model's max_position_embeddings
  int64_t batch_tokens = 8192;  // padded positions per forward pass (memory ~ batch_tokens * vocab * 4 B)
  int64_t bos_id = -1;          // -1 = model config's bos_token_id
};

// Bits per document, in the order of `doc_indices` (all documents when empty).
std::vector<DocBits> document_bits(LlamaForCausalLM& model, const DocSet& docs, const EvalOptions& opt = {},
                                   const std::vector<size_t>& doc_indices = {});
// Same, for the common call with an explicit context and batch size.
std::vector<DocBits> document_bits(LlamaForCausalLM& model, const DocSet& docs, int64_t context,
                                   int64_t batch_tokens, const std::vector<size_t>& doc_indices = {});

// Sum of bits over sum of tokens (0 when there are no tokens).
double mean_bits_per_token(const std::vector<DocBits>& bits);

struct EvalSummary {
  double bits = 0;            // total ideal code length
  int64_t tokens = 0;
  uint64_t bytes = 0;         // original bytes of the documents evaluated
  size_t docs = 0;
  double bits_per_token() const { return tokens ? bits / static_cast<double>(tokens) : 0.0; }
  double bits_per_byte() const { return bytes ? bits / static_cast<double>(bytes) : 0.0; }
};

// Totals over documents `doc_indices` (all when empty) of `docs`, with their byte lengths.
EvalSummary evaluate(LlamaForCausalLM& model, const DocSet& docs, const EvalOptions& opt = {},
                     const std::vector<size_t>& doc_indices = {});

}  // namespace lorazip
