// A document's embedding for clustering and routing: the base model's own residual stream after
// a chosen number of decoder blocks, averaged over the document's first tokens and scaled to unit
// length. It runs on the coding engine (codec/engine/engine.h) and sums in double in position
// order, so the vector is the same bits on every machine and thread count: what lets the receiver
// of a file repeat a routing choice made from a prompt.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codec/engine/engine.h"

namespace lorazip {

struct EmbedOptions {
  int64_t layer = -1;        // decoder blocks run before pooling, 0..num_hidden_layers; -1 = half of them (rounded up)
  int64_t max_tokens = 128;  // tokens of the text pooled (after BOS), >= 1; also bounded by the model's context - 1
};

// `layer` as it applies to `cfg` (-1 -> half the blocks); std::invalid_argument when out of range.
int64_t resolve_embed_layer(const engine::Config& cfg, int64_t layer);

// BOS + ids[0 .. min(max_tokens, context - 1)) through the first `layer` blocks -> the mean of the
// hidden states at the text's positions (at BOS alone for an empty text), divided by its L2 norm:
// a vector of hidden_size doubles.
std::vector<double> embed_tokens(const engine::Model& model, const std::vector<int32_t>& ids, int32_t bos_id,
                                 const EmbedOptions& opt);

}  // namespace lorazip
