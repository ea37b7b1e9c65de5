// `lorazip cluster`: domains found by clustering instead of hand labels, as the paper does.
// Every document of a corpus (JSONL records with a prompt and a response field, or plain text
// files) is embedded with the base model itself (cluster/embed.h: its prompt, or its response)
// and the embeddings are clustered by k-means (cluster/kmeans.h). The result, in OUT_DIR:
//   cNN.jsonl         one per cluster: its records as {"prompt", "text"} (prepare's inputs, domain cNN)
//   assignments.jsonl one line per document: {"doc", "where", "label", "cluster"}
//   router.json       the centroids and how to embed, for routing by prompt (cluster/router.h)
//   clusters.json     sizes, and agreement with the inputs' own domain labels (purity, adjusted Rand index)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/embed.h"
#include "data/corpus.h"

namespace lorazip {

class YamlMap;
class Tokenizer;

struct ClusterConfig {
  int64_t k = 0;                       // clusters; 0 = no clustering (the inputs' domains are used as they are)
  int64_t seed = 1;                    // k-means++ seed
  int64_t restarts = 4;                // k-means++ seedings tried, the least inertia kept, >= 1
  int64_t max_iters = 100;             // Lloyd iterations per restart, >= 1
  std::string embed = "prompt";        // prompt | response: what is embedded (a record without a prompt: its response)
  std::string prompt_field = "prompt"; // JSONL field holding the prompt
  EmbedOptions embedding;              // layer (-1 = half the blocks), max_tokens
  std::string model;                   // model to embed with; "" = the job's base model

  // The `cluster:` section (strict); relative paths resolved against base_dir.
  static ClusterConfig from_yaml(YamlMap& m, const std::string& base_dir);
  void validate() const;  // std::invalid_argument naming the field
  nlohmann::json to_json() const;
};

struct ClusterRecord {
  std::string text;    // the response: the document that gets compressed
  std::string prompt;  // empty when has_prompt is false
  bool has_prompt = false;
  std::string where;   // file:line
  std::string label;   // the input's domain (a hand label, used only to measure agreement)
};

// The documents of the inputs with their prompts: JSONL (the input's text_field, and prompt_field
// when present and a string) or plain text (one document per file, no prompt). std::runtime_error
// naming file:line for malformed JSON or a missing text field; std::invalid_argument for
// `messages: true` inputs (no prompt/response pairs to cluster).
std::vector<ClusterRecord> read_cluster_records(const std::vector<InputSpec>& inputs, const std::string& prompt_field);

// "c03": the domain name of cluster `c` of `k` (two digits, or as many as k - 1 needs).
std::string cluster_name(int64_t c, int64_t k);

struct ClusterStats {
  int64_t docs = 0, k = 0, dim = 0, layer = 0, with_prompt = 0;
  std::vector<std::string> names;
  std::vector<int64_t> sizes;                     // [k]
  std::vector<std::string> labels;                // distinct hand labels, sorted
  std::vector<std::vector<int64_t>> by_label;     // [k][labels] documents
  double purity = 0, adjusted_rand_index = 0;     // against the hand labels
  double inertia = 0;
  double embed_s = 0, kmeans_s = 0;
  std::string out_dir;

  std::string to_markdown() const;
  nlohmann::json to_json() const;
};

// Embeds every record with `model` (its tokenizer `tok`), clusters, and writes OUT_DIR's files
// (atomically each). `base_fingerprint` is recorded in router.json. Returns the statistics.
ClusterStats cluster_corpus(const engine::Model& model, const Tokenizer& tok, const std::string& base_fingerprint,
                            const std::vector<InputSpec>& inputs, const ClusterConfig& cfg, const std::string& out_dir, int threads);

}  // namespace lorazip
