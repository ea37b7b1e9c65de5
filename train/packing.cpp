// PackedStream: per-epoch shuffled, BOS-separated document stream, addressed by window index.
#include "train/packing.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace lorazip {

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9E3779B97F4A7C15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

PackedStream::PackedStream(const DocSet& docs, int32_t bos_id, uint64_t seed) : docs_(docs), bos_(bos_id), seed_(seed) {
  if (docs.num_docs() == 0) throw std::invalid_argument("training data has no documents");
  if (docs.offsets.size() != docs.num_docs() + 1 || docs.offsets.back() != docs.tokens.size())
    throw std::invalid_argument("training data: document offsets do not match the token array");
  if (docs.has_contexts() && (docs.context_offsets.size() != docs.num_docs() + 1 || docs.context_offsets.back() != docs.context_tokens.size()))
    throw std::invalid_argument("training data: context offsets do not match the context array");
  epoch_len_ = static_cast<int64_t>(docs.tokens.size() + docs.context_tokens.size() + docs.num_docs());
}

std::vector<uint32_t> PackedStream::epoch_order(int64_t e) const {
  const size_t n = docs_.num_docs();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  // Fisher-Yates with our own generator, so the order does not depend on the standard library.
  uint64_t state = mix_seed(seed_, static_cast<uint64_t>(e));
  for (size_t i = n; i > 1; --i) {
    state = mix_seed(state, i);
    size_t j = static_cast<size_t>(state % i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

const PackedStream::Epoch& PackedStream::epoch(int64_t e) {
  for (const auto& c : cache_)
    if (c.e == e) return c;
  Epoch& c = cache_[next_slot_];
  next_slot_ ^= 1;
  c.e = e;
  c.order = epoch_order(e);
  c.start.resize(c.order.size() + 1);
  int64_t pos = 0;
  for (size_t i = 0; i < c.order.size(); ++i) {
    c.start[i] = pos;
    pos += 1 + static_cast<int64_t>(docs_.context_len(c.order[i]) + docs_.doc_len(c.order[i]));
  }
  c.start.back() = pos;
  return c;
}

void PackedStream::window(int64_t g, int64_t len, int64_t stride, int32_t* tokens, uint8_t* is_bos) {
  int64_t p = g * stride;  // absolute stream position
  int64_t filled = 0;
  while (filled < len) {
    const int64_t e = p / epoch_len_;
    int64_t off = p % epoch_len_;
    const Epoch& ep = epoch(e);
    // Entry containing `off`: the last start <= off.
    size_t i = static_cast<size_t>(std::upper_bound(ep.start.begin(), ep.start.end(), off) - ep.start.begin()) - 1;
    for (; i < ep.order.size() && filled < len; ++i) {
      const uint32_t d = ep.order[i];
      // 0 = the BOS, then the context's c tokens, then the document's.
      int64_t k = off - ep.start[i];
      const int64_t entry_len = ep.start[i + 1] - ep.start[i];
      const int64_t c = static_cast<int64_t>(docs_.context_len(d));
      for (; k < entry_len && filled < len; ++k, ++filled, ++p) {
        if (k == 0) {
          tokens[filled] = bos_;
          is_bos[filled] = 1;
        } else if (k <= c) {
          tokens[filled] = docs_.context(d)[k - 1];
          is_bos[filled] = 1;
        } else {
          tokens[filled] = docs_.doc(d)[k - 1 - c];
          is_bos[filled] = 0;
        }
      }
      off = ep.start[i + 1];
    }
  }
}

}  // namespace lorazip
