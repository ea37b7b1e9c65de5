// The HDF5 token store written by `lorazip prepare` and read by train / eval. Layout (see
// docs/token-store.md):
//   /                      attrs: format="lorazip-token-store", version=1, tokenizer_sha256,
//                                 vocab_size, token_dtype, seed, split ratios
//   /<domain>/<split>/tokens        uint8|uint16|uint32 [n_tokens]  (narrowest type for the vocab)
//   /<domain>/<split>/offsets       uint64 [n_docs + 1]  document d = tokens[offsets[d]:offsets[d+1]]
//   /<domain>/<split>/byte_lengths  uint64 [n_docs]      original byte length of each document
//   /<domain>               attrs: sources (file list), documents, duplicates_dropped, skipped
// split is one of train, val, test.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lorazip {

struct DocSet {
  std::vector<int32_t> tokens;
  std::vector<uint64_t> offsets;       // n_docs + 1
  std::vector<uint64_t> byte_lengths;  // n_docs
  size_t num_docs() const { return byte_lengths.size(); }
  const int32_t* doc(size_t d) const { return tokens.data() + offsets[d]; }
  size_t doc_len(size_t d) const { return offsets[d + 1] - offsets[d]; }
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

  TokenStore(TokenStore&&) noexcept;
  TokenStore& operator=(TokenStore&&) noexcept;
  ~TokenStore();

 private:
  TokenStore();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorazip
