// Mean-pooled, unit-length hidden states on the coding engine (see embed.h).
#include "cluster/embed.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace lorazip {

int64_t resolve_embed_layer(const engine::Config& cfg, int64_t layer) {
  if (layer == -1) return (cfg.num_hidden_layers + 1) / 2;
  if (layer < 0 || layer > cfg.num_hidden_layers)
    throw std::invalid_argument("embedding layer " + std::to_string(layer) + " is out of range: the model has " +
                                std::to_string(cfg.num_hidden_layers) + " blocks (give 0.." + std::to_string(cfg.num_hidden_layers) +
                                ", or -1 for half of them)");
  return layer;
}

std::vector<double> embed_tokens(const engine::Model& model, const std::vector<int32_t>& ids, int32_t bos_id,
                                 const EmbedOptions& opt) {
  const engine::Config& cfg = model.config();
  if (opt.max_tokens < 1) throw std::invalid_argument("embedding: max_tokens must be >= 1");
  if (bos_id < 0) throw std::invalid_argument("embedding: the tokenizer has no BOS token");
  const int64_t layer = resolve_embed_layer(cfg, opt.layer);
  const int64_t n = std::min<int64_t>({static_cast<int64_t>(ids.size()), opt.max_tokens, cfg.max_position_embeddings - 1});
  std::vector<int32_t> seq;
  seq.reserve(static_cast<size_t>(n + 1));
  seq.push_back(bos_id);
  seq.insert(seq.end(), ids.begin(), ids.begin() + n);
  const int64_t T = static_cast<int64_t>(seq.size()), C = cfg.hidden_size;
  std::vector<float> h(static_cast<size_t>(T * C));
  model.hidden_states(seq.data(), T, layer, h.data());  // (T) -> (T, C)
  // Mean over the text's positions (BOS only when there is no text), in position order.
  const int64_t first = T > 1 ? 1 : 0;
  std::vector<double> e(static_cast<size_t>(C), 0.0);
  for (int64_t t = first; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) e[static_cast<size_t>(c)] += static_cast<double>(h[static_cast<size_t>(t * C + c)]);
  double norm = 0;
  for (double& v : e) {
    v /= static_cast<double>(T - first);
    norm += v * v;
  }
  norm = std::sqrt(norm);
  if (norm > 0)
    for (double& v : e) v /= norm;
  return e;
}

}  // namespace lorazip
