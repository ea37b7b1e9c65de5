// The quantizer turns any float vector into a CDF the coder can use (every count >= 1, exact
// total), the same way every time, and costs no more than its documented floor over the ideal.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "codec/quantize.h"
#include "codec/range_coder.h"

namespace lorazip {
namespace {

void expect_valid_cdf(const std::vector<uint32_t>& cdf, int bits) {
  ASSERT_EQ(cdf.front(), 0u);
  ASSERT_EQ(cdf.back(), 1u << bits) << "the total is exactly 2^total_bits";
  for (size_t i = 0; i + 1 < cdf.size(); ++i) {
    ASSERT_GE(cdf[i + 1], cdf[i] + 1) << "symbol " << i << " has no count";
  }
}

// Softmax of Gaussian logits with a given spread: peaky (large scale) to flat (small scale),
// like a language model's next-token distribution.
std::vector<float> softmax_probs(int n, float scale, std::mt19937_64& rng) {
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<float> p(n);
  float mx = -1e30f;
  for (auto& x : p) mx = std::max(mx, x = g(rng));
  double sum = 0;
  for (auto& x : p) sum += (x = std::exp(x - mx));
  for (auto& x : p) x = static_cast<float>(x / sum);
  return p;
}

TEST(Quantize, ChooseTotalBitsKeepsTheFloorUnderOneHundredthOfABit) {
  EXPECT_EQ(choose_total_bits(512), 17);
  EXPECT_EQ(choose_total_bits(4096), 20);
  EXPECT_EQ(choose_total_bits(32000), 23);
  EXPECT_EQ(choose_total_bits(32768), 23);
  for (int64_t v : {1, 2, 255, 256, 512, 1000, 4096, 32000, 50257, 128256, 256000, 1000000}) {
    const int bits = choose_total_bits(v);
    EXPECT_LT(floor_cost_bits(v, bits), 0.01) << "V=" << v;
    if (bits > 1 && v < (int64_t{1} << (bits - 1))) {
      EXPECT_GE(floor_cost_bits(v, bits - 1), 0.01) << "V=" << v << ": not the smallest";
    }
    EXPECT_LE(bits, kMaxTotalBits);
  }
  EXPECT_EQ(choose_total_bits(100000000), kMaxTotalBits) << "capped at what the coder supports";
  EXPECT_THROW(choose_total_bits(0), std::invalid_argument);
  EXPECT_THROW(choose_total_bits(int64_t{1} << kMaxTotalBits), std::invalid_argument);
  std::printf("floor cost: V=512 %.5f, V=4096 %.5f, V=32000 %.5f bits/token\n",
              floor_cost_bits(512, 17), floor_cost_bits(4096, 20), floor_cost_bits(32000, 23));
}

TEST(Quantize, EverySymbolGetsACountAndTheTotalIsExact) {
  std::mt19937_64 rng(1);
  for (int n : {1, 2, 512, 4096, 32000}) {
    for (float scale : {0.1f, 2.0f, 8.0f, 30.0f}) {
      const auto p = softmax_probs(n, scale, rng);
      for (int bits : {choose_total_bits(n), kMaxTotalBits}) {
        std::vector<uint32_t> cdf(n + 1);
        quantize_cdf(p.data(), n, bits, cdf.data());
        expect_valid_cdf(cdf, bits);
      }
    }
  }
}

TEST(Quantize, TightestFitWhenSymbolsFillTheTotal) {
  // n == 2^bits: every symbol gets exactly one count whatever the probabilities.
  std::mt19937_64 rng(2);
  const auto p = softmax_probs(1024, 5.0f, rng);
  std::vector<uint32_t> cdf(1025);
  quantize_cdf(p.data(), 1024, 10, cdf.data());
  for (int i = 0; i <= 1024; ++i) ASSERT_EQ(cdf[i], static_cast<uint32_t>(i));
  EXPECT_THROW(quantize_cdf(p.data(), 1024, 9, cdf.data()), std::invalid_argument);
  EXPECT_THROW(quantize_cdf(p.data(), 0, 9, cdf.data()), std::invalid_argument);
  EXPECT_THROW(quantize_cdf(p.data(), 4, 0, cdf.data()), std::invalid_argument);
  EXPECT_THROW(quantize_cdf(p.data(), 4, kMaxTotalBits + 1, cdf.data()), std::invalid_argument);
}

TEST(Quantize, SameInputSameOutput) {
  std::mt19937_64 rng(3);
  const auto p = softmax_probs(32000, 6.0f, rng);
  std::vector<uint32_t> a(32001), b(32001);
  quantize_cdf(p.data(), 32000, 23, a.data());
  const std::vector<float> copy = p;  // different memory, same floats
  quantize_cdf(copy.data(), 32000, 23, b.data());
  EXPECT_EQ(a, b);
}

TEST(Quantize, InvalidInputsFallBackToUniform) {
  const int n = 1000, bits = 17;
  std::vector<float> p(n, 0.001f);
  auto check_uniform = [&](const char* what) {
    std::vector<uint32_t> cdf(n + 1);
    quantize_cdf(p.data(), n, bits, cdf.data());
    expect_valid_cdf(cdf, bits);
    uint32_t lo = UINT32_MAX, hi = 0;
    for (int i = 0; i < n; ++i) {
      lo = std::min(lo, cdf[i + 1] - cdf[i]);
      hi = std::max(hi, cdf[i + 1] - cdf[i]);
    }
    EXPECT_LE(hi - lo, 1u) << what;
  };
  p[10] = std::numeric_limits<float>::quiet_NaN();
  check_uniform("NaN");
  p[10] = -0.5f;
  check_uniform("negative");
  p[10] = std::numeric_limits<float>::infinity();
  check_uniform("infinity");
  std::fill(p.begin(), p.end(), 0.0f);
  check_uniform("all zero");
}

TEST(Quantize, UnnormalizedInputsAreNormalized) {
  // Scaling every probability by the same factor gives nearly the same counts.
  std::mt19937_64 rng(4);
  const auto p = softmax_probs(4096, 4.0f, rng);
  std::vector<float> q(p);
  for (auto& x : q) x *= 1000.0f;
  std::vector<uint32_t> a(4097), b(4097);
  quantize_cdf(p.data(), 4096, 20, a.data());
  quantize_cdf(q.data(), 4096, 20, b.data());
  const int argmax = static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin());
  for (int i = 0; i < 4096; ++i) {
    const int fa = static_cast<int>(a[i + 1] - a[i]), fb = static_cast<int>(b[i + 1] - b[i]);
    // Floors may differ by one count; the leftover counts all land on the most probable symbol.
    ASSERT_LE(std::abs(fa - fb), i == argmax ? 4096 : 1) << "symbol " << i;
  }
}

TEST(Quantize, CostOverIdealStaysUnderTheFloor) {
  // For every symbol, -log2 q(s) <= -log2 p(s) + floor_cost: the quantized code is never worse
  // than the float model by more than the documented floor. Report the measured mean excess.
  std::mt19937_64 rng(5);
  for (int n : {512, 4096, 32000}) {
    const int bits = choose_total_bits(n);
    const double floor = floor_cost_bits(n, bits);
    double excess_sum = 0;
    int draws = 0;
    for (float scale : {1.0f, 3.0f, 6.0f, 12.0f}) {
      const auto p = softmax_probs(n, scale, rng);
      std::vector<uint32_t> cdf(n + 1);
      quantize_cdf(p.data(), n, bits, cdf.data());
      double sum = 0;
      for (float x : p) sum += x;
      for (int s = 0; s < n; ++s) {
        if (p[s] <= 0) continue;
        const double ideal = -std::log2(p[s] / sum);
        ASSERT_LE(quantized_bits(cdf.data(), bits, s), ideal + floor + 1e-9) << "n " << n << " s " << s;
      }
      // Expected excess under p itself (cross-entropy minus entropy), sampled by the float model.
      std::discrete_distribution<int> pick(p.begin(), p.end());
      for (int k = 0; k < 20000; ++k) {
        const int s = pick(rng);
        excess_sum += quantized_bits(cdf.data(), bits, s) + std::log2(p[s] / sum);
        ++draws;
      }
    }
    const double mean = excess_sum / draws;
    std::printf("V=%d total_bits=%d floor bound %.5f, measured mean excess %.5f bits/token\n", n,
                bits, floor, mean);
    EXPECT_LE(mean, floor + 1e-3);
  }
}

TEST(Quantize, CodedSizeMatchesTheQuantizedIdeal) {
  // Quantizer + coder end to end on a long stream with a changing distribution: the real coded
  // size is within 1% + a few bytes of sum(-log2 q), and within the floor of sum(-log2 p).
  std::mt19937_64 rng(6);
  const int n = 4096, bits = choose_total_bits(n);
  // A pool of distributions from peaky to flat, one drawn per step (each step still quantizes).
  struct Dist {
    std::vector<float> p;
    std::vector<double> bits;  // -log2 p(s) / sum
    std::discrete_distribution<int> pick;
  };
  std::vector<Dist> pool;
  for (int k = 0; k < 40; ++k) {
    Dist d;
    d.p = softmax_probs(n, 1.0f + static_cast<float>(k % 10), rng);
    double sum = 0;
    for (float x : d.p) sum += x;
    for (float x : d.p) d.bits.push_back(-std::log2(x / sum));
    d.pick = std::discrete_distribution<int>(d.p.begin(), d.p.end());
    pool.push_back(std::move(d));
  }
  RangeEncoder enc;
  double q_bits = 0, p_bits = 0;
  const int steps = 20000;
  std::vector<uint32_t> cdf(n + 1);
  for (int i = 0; i < steps; ++i) {
    Dist& d = pool[rng() % pool.size()];
    quantize_cdf(d.p.data(), n, bits, cdf.data());
    const int s = d.pick(rng);
    enc.encode(cdf[s], cdf[s + 1] - cdf[s], bits);
    q_bits += quantized_bits(cdf.data(), bits, s);
    p_bits += d.bits[s];
  }
  const std::string bytes = enc.finish();
  const double coded = 8.0 * bytes.size();
  std::printf("%d tokens: ideal %.1f bits, quantized %.1f, coded %.0f (%.5f bits/token over ideal)\n",
              steps, p_bits, q_bits, coded, (coded - p_bits) / steps);
  EXPECT_LE(coded, q_bits * 1.01 + 32);
  EXPECT_LE(coded, p_bits + steps * floor_cost_bits(n, bits) + 0.001 * p_bits + 32);
}

}  // namespace
}  // namespace lorazip
