// The range coder is lossless for any symbol sequence under any valid integer distribution, its
// output is deterministic and close to the ideal length, and hostile input cannot hurt it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec/quantize.h"
#include "codec/range_coder.h"

namespace lorazip {
namespace {

// One coding step: the CDF in force and the symbol coded under it.
struct Step {
  const std::vector<uint32_t>* cdf;
  int bits;
  int symbol;
};

std::string encode_steps(const std::vector<Step>& steps) {
  RangeEncoder enc;
  for (const auto& s : steps) {
    const auto& c = *s.cdf;
    enc.encode(c[s.symbol], c[s.symbol + 1] - c[s.symbol], s.bits);
  }
  const size_t before = enc.bytes_so_far();
  std::string out = enc.finish();
  EXPECT_LE(out.size(), before + 1) << "finish() adds at most one byte";
  return out;
}

// Decodes steps.size() symbols with the same CDFs; returns them and checks no overrun.
std::vector<int> decode_steps(const std::string& bytes, const std::vector<Step>& steps) {
  RangeDecoder dec(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  std::vector<int> got;
  got.reserve(steps.size());
  for (const auto& s : steps) {
    const auto& c = *s.cdf;
    const int n = static_cast<int>(c.size()) - 1;
    const uint32_t t = dec.target(s.bits);
    const int sym = find_symbol(c.data(), n, t);
    dec.consume(c[sym], c[sym + 1] - c[sym], s.bits);
    got.push_back(sym);
  }
  EXPECT_FALSE(dec.overrun()) << "a valid stream never reads past its allowed zero tail";
  EXPECT_LE(dec.bytes_read(), bytes.size());
  return got;
}

std::vector<int> symbols_of(const std::vector<Step>& steps) {
  std::vector<int> v;
  for (const auto& s : steps) v.push_back(s.symbol);
  return v;
}

// A random CDF with n symbols, every count >= 1, total 2^bits.
std::vector<uint32_t> random_cdf(int n, int bits, std::mt19937_64& rng) {
  std::vector<float> p(n);
  std::exponential_distribution<float> e(1.0f);
  for (auto& x : p) x = std::pow(e(rng), 4.0f);  // heavy spread of magnitudes
  std::vector<uint32_t> cdf(n + 1);
  quantize_cdf(p.data(), n, bits, cdf.data());
  return cdf;
}

// Symbol drawn in proportion to the CDF's counts.
int draw(const std::vector<uint32_t>& cdf, std::mt19937_64& rng) {
  const uint32_t total = cdf.back();
  const uint32_t t = static_cast<uint32_t>(rng() % total);
  return find_symbol(cdf.data(), static_cast<int>(cdf.size()) - 1, t);
}

double ideal_bits_of(const std::vector<Step>& steps) {
  double bits = 0;
  for (const auto& s : steps) bits += quantized_bits(s.cdf->data(), s.bits, s.symbol);
  return bits;
}

TEST(RangeCoder, RoundTripRandomDistributionsAtEveryTotalBits) {
  std::mt19937_64 rng(1);
  for (int bits : {1, 2, 8, 12, 16, 20, 23, 24, 26, 28}) {
    for (int n : {2, 3, 17, 512, 4096}) {
      if (n > (1 << std::min(bits, 20))) continue;
      const auto cdf = random_cdf(n, bits, rng);
      std::vector<Step> steps;
      for (int i = 0; i < 3000; ++i) steps.push_back({&cdf, bits, draw(cdf, rng)});
      const std::string bytes = encode_steps(steps);
      EXPECT_EQ(decode_steps(bytes, steps), symbols_of(steps)) << "bits " << bits << " n " << n;
    }
  }
}

TEST(RangeCoder, RoundTripUniformlyChosenSymbolsIncludingRareOnes) {
  // Symbols chosen uniformly, not by their probability: rare symbols (count 1) come up often,
  // which exercises the smallest sub-intervals.
  std::mt19937_64 rng(2);
  for (int bits : {17, 20, 23, 28}) {
    const auto cdf = random_cdf(4096, bits, rng);
    std::vector<Step> steps;
    for (int i = 0; i < 5000; ++i) steps.push_back({&cdf, bits, static_cast<int>(rng() % 4096)});
    EXPECT_EQ(decode_steps(encode_steps(steps), steps), symbols_of(steps)) << "bits " << bits;
  }
}

TEST(RangeCoder, RoundTripSkewedNearOneAndNearZero) {
  // One symbol holds 1 - 1e-9 of the mass, the others 1e-9 each; code mostly the likely one and
  // sometimes the unlikely ones.
  for (int bits : {17, 20, 23, 28}) {
    const int n = 512;
    std::vector<float> p(n, 1e-9f);
    p[7] = 1.0f - 511e-9f;
    std::vector<uint32_t> cdf(n + 1);
    quantize_cdf(p.data(), n, bits, cdf.data());
    std::mt19937_64 rng(3);
    std::vector<Step> steps;
    for (int i = 0; i < 20000; ++i) {
      const int sym = (rng() % 100 == 0) ? static_cast<int>(rng() % n) : 7;
      steps.push_back({&cdf, bits, sym});
    }
    const std::string bytes = encode_steps(steps);
    EXPECT_EQ(decode_steps(bytes, steps), symbols_of(steps));
    EXPECT_LE(bytes.size() * 8.0, ideal_bits_of(steps) * 1.001 + 16) << "bits " << bits;
  }
}

TEST(RangeCoder, LongRunsOfCertainTopSymbolPropagateCarries) {
  // Always coding the top symbol pushes `low` towards the top of the window: long runs of 0xFF
  // held back and then resolved by a carry. Mix in a few bottom symbols to trigger both.
  for (int bits : {8, 16, 24, 28}) {
    const uint32_t total = 1u << bits;
    const std::vector<uint32_t> cdf{0, 1, total};  // symbol 1 has all but one count
    std::mt19937_64 rng(4);
    std::vector<Step> steps;
    for (int i = 0; i < 200000; ++i) steps.push_back({&cdf, bits, (rng() % 5000 == 0) ? 0 : 1});
    const std::string bytes = encode_steps(steps);
    EXPECT_EQ(decode_steps(bytes, steps), symbols_of(steps)) << "bits " << bits;
  }
  // A stream built to end in a carry over held-back 0xFF bytes.
  const int bits = 8;
  const std::vector<uint32_t> cdf{0, 1, 255, 256};
  for (int run = 0; run < 64; ++run) {
    std::vector<Step> steps;
    for (int i = 0; i < run; ++i) steps.push_back({&cdf, bits, 2});
    steps.push_back({&cdf, bits, 1});
    for (int i = 0; i < run; ++i) steps.push_back({&cdf, bits, 2});
    EXPECT_EQ(decode_steps(encode_steps(steps), steps), symbols_of(steps)) << "run " << run;
  }
}

TEST(RangeCoder, ExhaustiveShortSequencesOverSmallAlphabets) {
  // Every sequence of up to 7 symbols over 3 symbols, for several count layouts: catches
  // off-by-one errors at the end of a stream, where finish() picks its short final value.
  const std::vector<std::vector<uint32_t>> cdfs{{0, 1, 2, 4}, {0, 1, 255, 256}, {0, 254, 255, 256},
                                                {0, 1, 2, 1u << 28}, {0, (1u << 28) - 2, (1u << 28) - 1, 1u << 28}};
  const std::vector<int> bits_of{2, 8, 8, 28, 28};
  for (size_t k = 0; k < cdfs.size(); ++k) {
    for (int len = 0; len <= 7; ++len) {
      int combos = 1;
      for (int i = 0; i < len; ++i) combos *= 3;
      for (int code = 0; code < combos; ++code) {
        std::vector<Step> steps;
        int x = code;
        for (int i = 0; i < len; ++i, x /= 3) steps.push_back({&cdfs[k], bits_of[k], x % 3});
        ASSERT_EQ(decode_steps(encode_steps(steps), steps), symbols_of(steps))
            << "layout " << k << " length " << len << " code " << code;
      }
    }
  }
}

TEST(RangeCoder, OneSymbolAlphabetCostsNothing) {
  for (int bits : {0, 1, 17, 28}) {
    const std::vector<uint32_t> cdf{0, static_cast<uint32_t>(uint64_t{1} << bits)};
    std::vector<Step> steps(10000, Step{&cdf, bits, 0});
    const std::string bytes = encode_steps(steps);
    EXPECT_LE(bytes.size(), 1u) << "certain symbols carry no information";
    EXPECT_EQ(decode_steps(bytes, steps), symbols_of(steps));
  }
}

TEST(RangeCoder, ZeroSymbolsGiveAnEmptyStream) {
  RangeEncoder enc;
  EXPECT_EQ(enc.bytes_so_far(), 0u);
  EXPECT_EQ(enc.finish(), "");
  RangeDecoder dec(nullptr, 0);
  EXPECT_FALSE(dec.overrun());
  EXPECT_EQ(dec.bytes_read(), 0u);
}

TEST(RangeCoder, LargestTotalBitsWithCountOneSymbols) {
  // 2^28 total, a 32000-symbol vocabulary where most symbols have count 1: the rare symbols cost
  // about 28 bits each and still round-trip.
  const int bits = kMaxTotalBits;
  std::vector<float> p(32000, 0.0f);
  p[0] = 0.5f;
  p[1] = 0.25f;
  p[31999] = 0.25f;
  std::vector<uint32_t> cdf(32001);
  quantize_cdf(p.data(), 32000, bits, cdf.data());
  EXPECT_EQ(cdf[101] - cdf[100], 1u);
  std::mt19937_64 rng(5);
  std::vector<Step> steps;
  for (int i = 0; i < 4000; ++i) steps.push_back({&cdf, bits, static_cast<int>(rng() % 32000)});
  const std::string bytes = encode_steps(steps);
  EXPECT_EQ(decode_steps(bytes, steps), symbols_of(steps));
  const double ideal = ideal_bits_of(steps);
  EXPECT_NEAR(ideal / steps.size(), 28.0, 0.1);
  EXPECT_LE(bytes.size() * 8.0, ideal * 1.001 + 16);
}

TEST(RangeCoder, TotalBitsMayChangeFromSymbolToSymbol) {
  std::mt19937_64 rng(6);
  std::vector<std::vector<uint32_t>> cdfs;
  std::vector<int> bits_list{1, 5, 12, 17, 20, 23, 28};
  for (int b : bits_list) cdfs.push_back(random_cdf(2, b, rng));
  for (int b : {12, 17, 20, 23, 28}) cdfs.push_back(random_cdf(4000, b, rng)), bits_list.push_back(b);
  std::vector<Step> steps;
  for (int i = 0; i < 20000; ++i) {
    const size_t k = rng() % cdfs.size();
    steps.push_back({&cdfs[k], bits_list[k], draw(cdfs[k], rng)});
  }
  EXPECT_EQ(decode_steps(encode_steps(steps), steps), symbols_of(steps));
}

TEST(RangeCoder, EncodingTwiceGivesIdenticalBytes) {
  std::mt19937_64 rng(7);
  const auto cdf = random_cdf(4096, 20, rng);
  std::vector<Step> steps;
  for (int i = 0; i < 10000; ++i) steps.push_back({&cdf, 20, draw(cdf, rng)});
  EXPECT_EQ(encode_steps(steps), encode_steps(steps));
}

TEST(RangeCoder, LongStreamWithinATenthOfAPercentOfIdeal) {
  std::mt19937_64 rng(8);
  for (int bits : {17, 20, 23}) {
    const auto cdf = random_cdf(4096, bits, rng);
    std::vector<Step> steps;
    for (int i = 0; i < 100000; ++i) steps.push_back({&cdf, bits, draw(cdf, rng)});
    const std::string bytes = encode_steps(steps);
    const double ideal = ideal_bits_of(steps);
    EXPECT_LE(bytes.size() * 8.0, ideal * 1.001 + 16) << "bits " << bits;
    EXPECT_GE(bytes.size() * 8.0, ideal - 8) << "no code beats the ideal length";
  }
}

TEST(RangeCoder, DecodingPastTheEndSetsOverrun) {
  std::mt19937_64 rng(9);
  const auto cdf = random_cdf(512, 17, rng);
  RangeEncoder enc;
  for (int i = 0; i < 1000; ++i) {
    const int s = draw(cdf, rng);
    enc.encode(cdf[s], cdf[s + 1] - cdf[s], 17);
  }
  const std::string bytes = enc.finish();
  RangeDecoder dec(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  int steps = 0;
  while (!dec.overrun() && steps < 100000) {
    const uint32_t t = dec.target(17);
    const int s = find_symbol(cdf.data(), 512, t);
    dec.consume(cdf[s], cdf[s + 1] - cdf[s], 17);
    ++steps;
  }
  EXPECT_TRUE(dec.overrun());
  EXPECT_GT(steps, 1000) << "the 1000 real symbols decode without overrun";
  EXPECT_EQ(dec.bytes_read(), bytes.size());
}

TEST(RangeCoder, GarbageInputDecodesSafelyToSymbolsInRange) {
  // Random bytes, including all-0xFF and all-zero: each target is within the total and maps to a
  // symbol whose interval contains it.
  std::mt19937_64 rng(10);
  const auto cdf = random_cdf(300, 20, rng);
  for (int trial = 0; trial < 200; ++trial) {
    std::string junk(rng() % 64, '\0');
    for (auto& ch : junk) ch = static_cast<char>(trial == 0 ? 0xFF : trial == 1 ? 0 : rng());
    RangeDecoder dec(reinterpret_cast<const uint8_t*>(junk.data()), junk.size());
    for (int i = 0; i < 500; ++i) {
      const uint32_t t = dec.target(20);
      ASSERT_LT(t, 1u << 20);
      const int s = find_symbol(cdf.data(), 300, t);
      ASSERT_GE(t, cdf[s]);
      ASSERT_LT(t, cdf[s + 1]);
      dec.consume(cdf[s], cdf[s + 1] - cdf[s], 20);
    }
    EXPECT_LE(dec.bytes_read(), junk.size());
  }
}

TEST(RangeCoder, RejectsInvalidSymbols) {
  RangeEncoder enc;
  EXPECT_THROW(enc.encode(0, 0, 8), std::invalid_argument);          // zero frequency
  EXPECT_THROW(enc.encode(200, 57, 8), std::invalid_argument);       // past the total
  EXPECT_THROW(enc.encode(0, 1, kMaxTotalBits + 1), std::invalid_argument);
  EXPECT_THROW(enc.encode(0, 1, -1), std::invalid_argument);
  enc.encode(200, 56, 8);  // exactly at the total is fine
  enc.finish();
  EXPECT_THROW(enc.encode(0, 1, 8), std::logic_error);
  RangeDecoder dec(nullptr, 0);
  EXPECT_THROW(dec.target(kMaxTotalBits + 1), std::invalid_argument);
  EXPECT_THROW(dec.consume(0, 0, 8), std::invalid_argument);
}

TEST(RangeCoder, FindSymbolMatchesALinearScan) {
  // Includes zero-count symbols (repeated CDF entries), which are never returned.
  const std::vector<uint32_t> cdf{0, 3, 3, 4, 10, 10, 10, 16};
  const int n = 7;
  for (uint32_t t = 0; t < 16; ++t) {
    int expect = 0;
    for (int s = 0; s < n; ++s) if (cdf[s] <= t && t < cdf[s + 1]) expect = s;
    EXPECT_EQ(find_symbol(cdf.data(), n, t), expect) << "target " << t;
  }
  EXPECT_EQ(find_symbol(cdf.data(), n, 99), 6) << "targets past the total give the last symbol";
  const std::vector<uint32_t> one{0, 256};
  EXPECT_EQ(find_symbol(one.data(), 1, 0), 0);
  EXPECT_EQ(find_symbol(one.data(), 1, 255), 0);
  EXPECT_THROW(find_symbol(one.data(), 0, 0), std::invalid_argument);
}

}  // namespace
}  // namespace lorazip
