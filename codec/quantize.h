// Probability quantizer: turns the model's float32 distribution over the vocabulary into integer
// counts (a CDF) that the range coder can use, identically on the encoder and the decoder.
//
// Rule, for n symbols and total T = 2^total_bits (n <= T):
//   every symbol gets a floor of 1 count; the remaining B = T - n counts are shared in proportion
//   to p:  c_i = 1 + floor(p_i * B / sum(p)) (computed in double, one thread, in index order);
//   the few counts that the floors leave over (fewer than n) go to the most probable symbol
//   (lowest index among ties). The total is then exactly T.
// Cost: since c_i >= p_i * B / sum(p), every symbol's coded length is at most its ideal length
//   plus -log2(B / T) = -log2(1 - n / T) bits; this floor cost, paid per token, is
//     V = 512   at total_bits 17:  0.00565 bits/token
//     V = 4096  at total_bits 20:  0.00565 bits/token
//     V = 32000 at total_bits 23:  0.00551 bits/token
//   with the total_bits that choose_total_bits() picks (measured figures are in tests/test_quantize).
// Determinism: the output depends only on the input floats (no threads, no SIMD reductions whose
//   order could vary, no library calls besides floor). Inputs with a NaN, an infinity, a negative
//   entry or a zero sum give the uniform-as-possible CDF instead (still exact and >= 1 per symbol).
// Speed: three linear passes over n floats, no allocation: about 50 us for n = 32000 and 9 us for
//   n = 4096 on this project's 2-core build machine (CPU time; small beside the model's V x C output
//   projection that produces the probabilities).
#pragma once
#include <cstdint>

namespace lorazip {

// Smallest total_bits with -log2(1 - V / 2^total_bits) < 0.01 bits/token, i.e. the floor of one
// count per symbol costs under 0.01 bits per token. Capped at kMaxTotalBits (28), which keeps the
// floor cost under 0.01 for V <= 1.85 million (and usable, with a larger floor, up to V < 2^28).
// std::invalid_argument for V < 1 or V >= 2^kMaxTotalBits.
int choose_total_bits(int64_t vocab_size);

// Fills cdf[0..n] (n + 1 entries): cdf[0] = 0, cdf[n] = 2^total_bits, cdf[i+1] - cdf[i] >= 1.
// std::invalid_argument when n < 1, total_bits outside [1, kMaxTotalBits] or n > 2^total_bits.
void quantize_cdf(const float* probs, int64_t n, int total_bits, uint32_t* cdf);

// -log2(1 - n / 2^total_bits): the most the one-count floor adds to any token's code length.
double floor_cost_bits(int64_t n, int total_bits);

// Code length, in bits, of `symbol` under a quantized CDF: -log2(freq / 2^total_bits).
double quantized_bits(const uint32_t* cdf, int total_bits, int64_t symbol);

// Ideal code length, in bits, of `symbol` under the float distribution: -log2(p_s / sum(p)),
// computed in double. Infinity when p_s is 0; NaN for the inputs quantize_cdf treats as invalid.
double ideal_bits(const float* probs, int64_t n, int64_t symbol);

}  // namespace lorazip
