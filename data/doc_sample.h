// Picking a fixed, evenly spread subset of a document set: the documents that capped validation
// (train/) and capped evaluation (eval/) score. Torch-free, so eval need not link the trainer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lorazip {

// `max_docs` document indices of a set of `n_docs`, evenly spread and strictly increasing
// (document i*n/k for i = 0..k-1); all documents when max_docs <= 0 or >= n_docs.
std::vector<size_t> spread_indices(size_t n_docs, int64_t max_docs);

}  // namespace lorazip
