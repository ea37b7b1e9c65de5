// Routing by prompt: the adapter for a response is picked from its prompt alone (the paper's
// zero-bit choice). The router is `lorazip cluster`'s router.json: the centroids and how to embed
// (cluster/embed.h); a prompt goes to the cluster of its nearest centroid, and the adapter is the
// one named after that cluster. Sender and receiver both run it on the prompt, and the embedding
// is the same bits on every machine, so a file stores only the identity of the adapter set
// (router + adapters), never which adapter was used. Coding with it: AdapterSelector's "by
// prompt" kind (runtime/selector.h).
#pragma once
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/embed.h"

namespace lorazip {

class Tokenizer;

class PromptRouter {
 public:
  // Reads router.json. The file is treated as hostile: std::runtime_error naming `path` and the
  // field for malformed JSON, a wrong format name or version, sizes out of bounds (k in 1..65536,
  // dim in 1..65536, k x dim <= 2^26), a centroid of the wrong length or with a value that is not
  // finite, or a cluster name that cannot be an adapter directory.
  static PromptRouter parse(std::string_view bytes, const std::string& path);
  static PromptRouter load(const std::string& path);

  // std::runtime_error when the router was made with another base or tokenizer (naming both).
  void check_base(const std::string& base_fingerprint, const std::string& tokenizer_fingerprint) const;
  // The same, with `is_base(fp)` deciding whether the router's base fingerprint names the given
  // base (a base has two names, see runtime/model_setup.h); `base_fingerprint` is for the message.
  void check_base(const std::function<bool(const std::string&)>& is_base, const std::string& base_fingerprint,
                  const std::string& tokenizer_fingerprint) const;
  // Cluster index for `prompt` (embedded as at clustering time, then the nearest centroid).
  int64_t route(const engine::Model& model, const Tokenizer& tok, std::string_view prompt) const;

  int64_t k() const { return k_; }
  const std::string& name(int64_t c) const { return names_.at(static_cast<size_t>(c)); }
  const std::vector<std::string>& names() const { return names_; }
  const std::string& sha256() const { return sha256_; }  // of router.json's bytes

 private:
  int64_t k_ = 0, dim_ = 0;
  EmbedOptions embed_;
  std::string base_fp_, tok_fp_, sha256_;
  std::vector<std::string> names_;
  std::vector<double> centroids_;  // [k, dim]
};

// The identity a prompt-routed file records: SHA-256 over the router's bytes and, for each cluster
// in order, its name and its adapter's fingerprint (or "none" where the directory has no adapter
// of that name); `fingerprints` maps an adapter directory's name to its fingerprint. Any change
// to the router or to one adapter changes it.
std::string adapter_set_identity(const PromptRouter& router, const std::map<std::string, std::string>& fingerprints);

}  // namespace lorazip
