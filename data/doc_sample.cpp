// spread_indices: see data/doc_sample.h.
#include "data/doc_sample.h"

#include <numeric>

namespace lorazip {

std::vector<size_t> spread_indices(size_t n_docs, int64_t max_docs) {
  std::vector<size_t> idx;
  if (max_docs <= 0 || static_cast<size_t>(max_docs) >= n_docs) {
    idx.resize(n_docs);
    std::iota(idx.begin(), idx.end(), size_t{0});
    return idx;
  }
  // Document i*n/k for i = 0..k-1: strictly increasing because k < n.
  for (int64_t i = 0; i < max_docs; ++i)
    idx.push_back(static_cast<size_t>((static_cast<unsigned __int128>(i) * n_docs) / static_cast<uint64_t>(max_docs)));
  return idx;
}

}  // namespace lorazip
