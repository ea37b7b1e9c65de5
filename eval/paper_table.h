// The size metric of the paper behind lorazip ("Haiku to Opus in Just 10 bits", arXiv 2604.02343):
// total compressed bits / (tokens x log2 V), V the vocabulary size, so that 1.0 is a token id
// written in plain binary. This file computes it for every row of a Report — gzip-9, the base, the
// own adapter, the mean wrong adapter, routing by response (-A) and routing by prompt, and base and
// own adapter conditioned on the prompt (the prompt read, not coded) — beside
// bits/byte and compressed/original, so lorazip's figures sit beside the paper's. Torch-free.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/report.h"

namespace lorazip {

// bits / (tokens * log2(vocab_size)); NaN when tokens < 1 or vocab_size < 2 or bits is NaN.
double paper_ratio(double bits, int64_t tokens, int64_t vocab_size);

// One row of the table, every "bits" a total over the row's documents (NaN = not measured).
struct PaperRow {
  std::string domain;
  int64_t docs = 0, tokens = 0, bytes = 0;
  double gzip_bits = NAN;             // gzip -9 of every document alone, 8 x compressed bytes
  double base_bits = NAN;
  double own_bits = NAN;              // the row's own adapter (NaN: none)
  double wrong_bits = NAN;            // mean over the adapters that are not the row's own (NaN: none)
  double response_routed_bits = NAN;  // -A: per document the cheapest of base and adapters, plus the
                                      // choice it must store: log2(adapters + 1) bits per document
  double prompt_routed_bits = NAN;    // the adapter the prompt picks (nothing stored); NaN: not run
  double base_given_bits = NAN;       // conditioned on the prompt (DomainResult::base_bits_given); NaN: not run
  double own_given_bits = NAN;        // the own adapter conditioned on the prompt (NaN: no own adapter, or not run)
};

// The row for one domain; `adapters` is the number of adapters -A chooses among.
PaperRow paper_row(const DomainResult& d, size_t adapters);
// The rows of the report plus, when there are several test-split rows, an "all test domains" row
// that sums their bits and tokens.
std::vector<PaperRow> paper_rows(const Report& r);

// "### The paper's metric ..." section (empty when the report has no vocabulary size).
std::string paper_table_markdown(const Report& r);
// {"vocab_size", "rows": [{domain, tokens, gzip_9, base, own_adapter, wrong_adapter, response_routed,
// prompt_routed, base_given_prompt, own_adapter_given_prompt, ...}]} with each figure as the paper's ratio (null where not measured).
nlohmann::json paper_table_json(const Report& r);

}  // namespace lorazip
