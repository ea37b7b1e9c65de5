// The synthetic distribution and seed containers shared by the fuzz target, the corpus generator
// and the golden-file test: a quantized Zipf law over 512 symbols, and a few small valid
// containers whose chunks are real range-coded streams under it.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "codec/container.h"
#include "codec/quantize.h"
#include "codec/range_coder.h"
#include "common/hash.h"

namespace lorazip::fuzz_seeds {

constexpr int kSymbols = 512;

// p(s) proportional to 1 / (s + 1); integer CDF from quantize_cdf.
inline const std::vector<uint32_t>& zipf_cdf(int* total_bits) {
  static const int bits = choose_total_bits(kSymbols);
  static const std::vector<uint32_t> cdf = [] {
    std::vector<float> p(kSymbols);
    for (int s = 0; s < kSymbols; ++s) p[s] = 1.0f / static_cast<float>(s + 1);
    std::vector<uint32_t> c(kSymbols + 1);
    quantize_cdf(p.data(), kSymbols, bits, c.data());
    return c;
  }();
  *total_bits = bits;
  return cdf;
}

// Deterministic symbols drawn from the Zipf CDF with a fixed 64-bit LCG (no library RNG, whose
// output could differ between standard libraries), range-coded into one chunk.
inline ContainerChunk coded_chunk(uint32_t n_tokens, uint64_t seed) {
  int bits = 0;
  const auto& cdf = zipf_cdf(&bits);
  RangeEncoder enc;
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint32_t i = 0; i < n_tokens; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const auto target = static_cast<uint32_t>((state >> 33) & ((uint64_t{1} << bits) - 1));
    const int s = find_symbol(cdf.data(), kSymbols, target);
    enc.encode(cdf[s], cdf[s + 1] - cdf[s], bits);
  }
  return ContainerChunk{n_tokens, enc.finish()};
}

inline std::vector<std::pair<std::string, Container>> seed_containers() {
  int bits = 0;
  zipf_cdf(&bits);
  std::vector<std::pair<std::string, Container>> out;

  Container empty;  // what an empty input compresses to: no chunks
  empty.base_fingerprint = sha256_hex("base model");
  empty.tokenizer_fingerprint = sha256_hex("tokenizer");
  empty.arithmetic_version = 1;
  empty.total_bits = bits;
  empty.chunk_tokens = 64;
  empty.group_streams = 4;
  empty.original_bytes = 0;
  empty.original_xxh64 = xxh64("", 0);
  out.emplace_back("empty.lrz", empty);

  Container base = empty;  // base model only, three chunks, the last one short
  base.original_bytes = 300;
  base.original_xxh64 = xxh64("three chunks");
  base.chunks = {coded_chunk(64, 1), coded_chunk(64, 2), coded_chunk(17, 3)};
  out.emplace_back("base_three_chunks.lrz", base);

  Container adapted = empty;  // a merged adapter with a domain name
  adapted.adapter_mode = AdapterMode::Merged;
  adapted.adapter_fingerprint = sha256_hex("adapter");
  adapted.adapter_domain = "code";
  adapted.chunk_tokens = 200;
  adapted.group_streams = 1;
  adapted.original_bytes = 512;
  adapted.original_xxh64 = xxh64("adapted");
  adapted.chunks = {coded_chunk(200, 4), coded_chunk(1, 5)};
  out.emplace_back("merged_adapter.lrz", adapted);

  Container unmerged = adapted;  // unmerged adapter, optional flag bit, an empty-payload chunk
  unmerged.adapter_mode = AdapterMode::Unmerged;
  unmerged.flags = 0x00010000u;
  unmerged.adapter_domain = "";
  unmerged.chunks = {coded_chunk(0, 6), coded_chunk(120, 7)};
  out.emplace_back("unmerged_adapter.lrz", unmerged);

  Container windowed = base;  // both required flags: dummy prefix, chunks with a 16-token context
  windowed.flags = kFlagDummyPrefix | kFlagChunkContext;
  windowed.context_tokens = 16;
  windowed.original_xxh64 = xxh64("windowed");
  windowed.chunks = {coded_chunk(64, 8), coded_chunk(48, 9), coded_chunk(5, 10)};
  out.emplace_back("windowed.lrz", windowed);

  Container conditioned = windowed;  // coded given a context: its fingerprint and a 20-token prefix
  conditioned.flags = kFlagChunkContext | kFlagContext;
  conditioned.context_fingerprint = sha256_hex("context tokens");
  conditioned.prefix_tokens = 20;
  conditioned.original_xxh64 = xxh64("conditioned");
  conditioned.chunks = {coded_chunk(44, 11), coded_chunk(48, 12), coded_chunk(7, 13)};
  out.emplace_back("conditioned.lrz", conditioned);
  return out;
}

}  // namespace lorazip::fuzz_seeds
