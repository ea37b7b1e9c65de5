// Float distribution -> integer CDF for the range coder; the rule and its cost are in quantize.h.
#include "codec/quantize.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <string>

#include "codec/range_coder.h"

namespace lorazip {
namespace {

constexpr double kFloorBudgetBits = 0.01;  // most the one-count floor may cost per token

void uniform_cdf(int64_t n, uint64_t total, uint32_t* cdf) {
  const uint64_t base = total / static_cast<uint64_t>(n);
  const uint64_t extra = total % static_cast<uint64_t>(n);  // the first `extra` symbols get one more
  uint64_t acc = 0;
  cdf[0] = 0;
  for (int64_t i = 0; i < n; ++i) {
    acc += base + (static_cast<uint64_t>(i) < extra ? 1 : 0);
    cdf[i + 1] = static_cast<uint32_t>(acc);
  }
}

}  // namespace

int choose_total_bits(int64_t vocab_size) {
  if (vocab_size < 1 || vocab_size >= (int64_t{1} << kMaxTotalBits)) {
    throw std::invalid_argument("choose_total_bits: vocabulary size " + std::to_string(vocab_size) +
                                " outside [1, 2^" + std::to_string(kMaxTotalBits) + ")");
  }
  for (int bits = 1; bits < kMaxTotalBits; ++bits) {
    if (vocab_size < (int64_t{1} << bits) && floor_cost_bits(vocab_size, bits) < kFloorBudgetBits) {
      return bits;
    }
  }
  return kMaxTotalBits;
}

double floor_cost_bits(int64_t n, int total_bits) {
  return -std::log2(1.0 - static_cast<double>(n) / std::ldexp(1.0, total_bits));
}

void quantize_cdf(const float* probs, int64_t n, int total_bits, uint32_t* cdf) {
  if (total_bits < 1 || total_bits > kMaxTotalBits) {
    throw std::invalid_argument("quantize_cdf: total_bits " + std::to_string(total_bits) +
                                " outside [1, " + std::to_string(kMaxTotalBits) + "]");
  }
  const uint64_t total = uint64_t{1} << total_bits;
  if (n < 1 || static_cast<uint64_t>(n) > total) {
    throw std::invalid_argument("quantize_cdf: " + std::to_string(n) +
                                " symbols do not fit a total of 2^" + std::to_string(total_bits) +
                                " with one count each (need 1 <= n <= total)");
  }

  // Pass 1: sum (four fixed partial sums, combined in a fixed order: the result depends only on
  // the floats), find the most probable symbol, and look for negative entries. NaN and infinity
  // show up in the sum.
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  bool negative = false;
  int64_t argmax = 0;
  float best = probs[0];
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float a = probs[i], b = probs[i + 1], c = probs[i + 2], d = probs[i + 3];
    s0 += static_cast<double>(a);
    s1 += static_cast<double>(b);
    s2 += static_cast<double>(c);
    s3 += static_cast<double>(d);
    negative |= (a < 0.0f) | (b < 0.0f) | (c < 0.0f) | (d < 0.0f);
    const float m = std::max(std::max(a, b), std::max(c, d));
    if (m > best) {  // rare after the first few blocks: find which of the four, lowest index first
      for (int k = 0; k < 4; ++k) {
        if (probs[i + k] > best) {
          best = probs[i + k];
          argmax = i + k;
        }
      }
    }
  }
  for (; i < n; ++i) {
    s0 += static_cast<double>(probs[i]);
    negative |= probs[i] < 0.0f;
    if (probs[i] > best) {
      best = probs[i];
      argmax = i;
    }
  }
  const double sum = (s0 + s1) + (s2 + s3);
  if (negative || !(sum > 0.0 && sum <= DBL_MAX)) {  // also false for a NaN sum
    uniform_cdf(n, total, cdf);
    return;
  }

  // Pass 2: counts into cdf[i + 1]. Each floor(p * scale) <= p * B / sum <= B < 2^31, so the
  // int32 conversion is exact, and the floors add up to at most B.
  const uint64_t budget = total - static_cast<uint64_t>(n);
  const double scale = static_cast<double>(budget) / sum;
  uint64_t used = 0;
  cdf[0] = 0;
  for (i = 0; i < n; ++i) {
    const auto share = static_cast<uint32_t>(static_cast<int32_t>(static_cast<double>(probs[i]) * scale));
    cdf[i + 1] = 1 + share;
    used += share;
  }
  if (used > budget) {  // rounding cannot get here (see above); stay exact regardless
    uniform_cdf(n, total, cdf);
    return;
  }
  cdf[argmax + 1] += static_cast<uint32_t>(budget - used);

  // Pass 3: prefix sums; the last entry is n + budget = total.
  uint32_t acc = 0;
  for (i = 1; i <= n; ++i) {
    acc += cdf[i];
    cdf[i] = acc;
  }
}

double quantized_bits(const uint32_t* cdf, int total_bits, int64_t symbol) {
  const double freq = static_cast<double>(cdf[symbol + 1] - cdf[symbol]);
  return static_cast<double>(total_bits) - std::log2(freq);
}

double ideal_bits(const float* probs, int64_t n, int64_t symbol) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(probs[i]);
  return -std::log2(static_cast<double>(probs[symbol]) / sum);
}

}  // namespace lorazip
