// Sequence packing with a stateless data order. The training stream is the infinite concatenation
// of epochs 0, 1, 2, ...; epoch e lists every document once, in an order shuffled by (seed, e),
// each document preceded by BOS. Window g is the stream's tokens [g*stride, g*stride + len), so the
// tokens of any step are a pure function of (seed, g) and resuming needs no iterator state.
// Torch-free.
#pragma once
#include <cstdint>
#include <vector>

#include "data/token_store.h"

namespace lorazip {

// splitmix64: the mixing function behind every seed lorazip derives (epochs, steps).
uint64_t mix_seed(uint64_t a, uint64_t b);

class PackedStream {
 public:
  // `docs` must outlive the stream. std::invalid_argument when it has no documents.
  PackedStream(const DocSet& docs, int32_t bos_id, uint64_t seed);

  // Fills tokens[0..len) with window g and is_bos[0..len) with 1 where the token is a BOS separator
  // or part of a document's context (DocSet::context: read before the document, never a target).
  void window(int64_t g, int64_t len, int64_t stride, int32_t* tokens, uint8_t* is_bos);

  int64_t epoch_tokens() const { return epoch_len_; }  // documents' tokens and contexts + one BOS each
  // The document order of epoch e (a permutation of 0..n_docs-1).
  std::vector<uint32_t> epoch_order(int64_t e) const;

 private:
  struct Epoch {
    int64_t e = -1;
    std::vector<uint32_t> order;
    std::vector<int64_t> start;  // start[i]: offset of entry i's BOS in the epoch; start[n] = epoch_len
  };
  const Epoch& epoch(int64_t e);

  const DocSet& docs_;
  int32_t bos_;
  uint64_t seed_;
  int64_t epoch_len_ = 0;
  Epoch cache_[2];
  int next_slot_ = 0;
};

}  // namespace lorazip
