// The HDF5 token store written by `lorazip prepare` and read by train / eval. Layout (see
// docs/token-store.md):
//   /                      attrs: format="lorazip-token-store", version=1, tokenizer_sha256,
//                                 vocab_size, token_dtype, seed, split ratios (val_fraction,
//                                 test_fraction), domains (list, in config order), tokenizer_source,
//                                 stats_json (data_stats.json without store path, threads, timings)
//   /<domain>/<split>/tokens        uint8|uint16|uint32 [n_tokens]  (narrowest type for the vocab)
//   /<domain>/<split>/offsets       uint64 [n_docs + 1]  document d = tokens[offsets[d]:offsets[d+1]]
//   /<domain>/<split>/byte_lengths  uint64 [n_docs]      original byte length of each document
//   /<domain>/<split>       attrs: documents, bytes, tokens
//   /<domain>               attrs: sources (file list), documents, documents_read,
//                                  duplicates_dropped, skipped
// split is one of train, val, test; all three groups exist for every domain (possibly empty).
// String attributes are variable-length UTF-8; large datasets are chunked with shuffle + gzip
// (both built into every HDF5, h5py included).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lorazip {

class Tokenizer;

// The split names in store order.
inline constexpr const char* kSplitNames[3] = {"train", "val", "test"};

struct DocSet {
  std::vector<int32_t> tokens;
  std::vector<uint64_t> offsets;       // n_docs + 1
  std::vector<uint64_t> byte_lengths;  // n_docs
  // Conditioned training (not in the store: attached by the job from the documents' prompts):
  // document d is read after its context context_tokens[context_offsets[d] .. context_offsets[d+1]),
  // which is never a target. Both empty: no contexts.
  std::vector<int32_t> context_tokens;
  std::vector<uint64_t> context_offsets;  // n_docs + 1, or empty
  size_t num_docs() const { return byte_lengths.size(); }
  const int32_t* doc(size_t d) const { return tokens.data() + offsets[d]; }
  size_t doc_len(size_t d) const { return offsets[d + 1] - offsets[d]; }
  bool has_contexts() const { return !context_offsets.empty(); }
  const int32_t* context(size_t d) const { return context_tokens.data() + context_offsets[d]; }
  size_t context_len(size_t d) const { return has_contexts() ? context_offsets[d + 1] - context_offsets[d] : 0; }
  // Sets the contexts (one per document, empty ones allowed); std::invalid_argument when the
  // count is not num_docs().
  void set_contexts(const std::vector<std::vector<int32_t>>& contexts);
  uint64_t total_bytes() const;
};

class TokenStore {
 public:
  // Opens read-only; std::runtime_error naming the file when it is not a lorazip token store.
  static TokenStore open(const std::string& path);
  std::vector<std::string> domains() const;
  bool has(const std::string& domain, const std::string& split) const;
  DocSet read(const std::string& domain, const std::string& split) const;  // error names the missing group
  const std::string& tokenizer_sha256() const;
  int64_t vocab_size() const;
  const std::string& path() const;

  // Additions beyond the first interface.
  const std::string& token_dtype() const;                         // "uint8" | "uint16" | "uint32"
  std::vector<std::string> sources(const std::string& domain) const;  // input files of a domain
  std::string stats_json() const;                                  // as written to data_stats.json
  // Throws std::runtime_error when `tok` is not the tokenizer the store was written with.
  void check_tokenizer(const Tokenizer& tok) const;

  TokenStore(TokenStore&&) noexcept;
  TokenStore& operator=(TokenStore&&) noexcept;
  ~TokenStore();

 private:
  TokenStore();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The documents of one domain/split back as their original bytes (decoded tokens), for eval and
// for classical-compressor baselines. max_docs = 0 reads all. Checks the tokenizer's SHA-256.
std::vector<std::string> read_documents(const TokenStore& store, const Tokenizer& tok, const std::string& domain,
                                        const std::string& split, size_t max_docs = 0);
std::vector<std::string> decode_documents(const DocSet& set, const Tokenizer& tok, size_t max_docs = 0);

// ---- writing (used by prepare; exposed for tests and tools) ----

struct StoreDomain {
  std::string name;
  std::vector<std::string> sources;
  int64_t documents_read = 0;      // records read before duplicate removal
  int64_t duplicates_dropped = 0;  // exact duplicates within the domain
  int64_t skipped = 0;             // bad lines skipped (skip_bad_lines)
  DocSet splits[3];                // train, val, test
};

struct StoreHeader {
  std::string tokenizer_sha256;
  int64_t vocab_size = 0;
  uint64_t seed = 0;
  double val_fraction = 0;
  double test_fraction = 0;
  std::string tokenizer_source;  // where the tokenizer came from (path), informational
  std::string stats_json;
};

// The narrowest HDF5 token type for a vocabulary: "uint8" (<= 256), "uint16" (<= 65536), "uint32".
std::string token_dtype_for_vocab(int64_t vocab_size);

// Writes a complete store to exactly `path` (truncating). Not atomic by itself: write to an
// AtomicPath's tmp() and commit. Throws std::invalid_argument for ids outside [0, vocab_size) or
// inconsistent offsets, std::runtime_error for HDF5 failures.
void write_token_store(const std::string& path, const StoreHeader& header, const std::vector<StoreDomain>& domains);

}  // namespace lorazip
