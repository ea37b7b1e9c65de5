// Routing a prompt to its cluster on the coding engine (router.h); the router file's parser is
// router.cpp, which the fuzzer builds alone.
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster/kmeans.h"
#include "cluster/router.h"
#include "model/tokenizer.h"

namespace lorazip {

int64_t PromptRouter::route(const engine::Model& model, const Tokenizer& tok, std::string_view prompt) const {
  if (model.config().hidden_size != dim_)
    throw std::runtime_error("the router's centroids have " + std::to_string(dim_) + " dimensions, the model " +
                             std::to_string(model.config().hidden_size) + " (another base model?)");
  if (embed_.layer > model.config().num_hidden_layers)
    throw std::runtime_error("the router embeds after " + std::to_string(embed_.layer) + " blocks; the model has " +
                             std::to_string(model.config().num_hidden_layers));
  std::vector<double> e = embed_tokens(model, tok.encode(prompt), tok.bos_id(), embed_);
  return nearest_centroid(e.data(), centroids_, k_, dim_);
}

}  // namespace lorazip
