// The classical baselines are real compressors: each stream decompresses to the input, sizes
// are those of the actual streams, and the stronger settings beat gzip on text.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec/classical.h"

namespace lorazip {
namespace {

std::string sample_text() {
  std::string s;
  for (int i = 0; i < 400; ++i) {
    s += "The model predicts token " + std::to_string(i * 7919 % 1000) +
         " with high confidence; arithmetic coding turns that into few bits.\n";
  }
  return s;
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(Classical, NamesAreDistinctAndStable) {
  std::set<std::string> names;
  for (Classical c : all_classical()) names.insert(classical_name(c));
  EXPECT_EQ(names, (std::set<std::string>{"gzip-9", "xz-9", "zstd-19", "brotli-11"}));
}

TEST(Classical, EveryCompressorRoundTrips) {
  const std::string inputs[] = {"", "a", sample_text(), random_bytes(100000, 1),
                                std::string(300000, '\0'), std::string("\xff\xfe\x00\x01", 4)};
  for (Classical c : all_classical()) {
    for (const auto& in : inputs) {
      const std::string z = classical_compress(c, in);
      EXPECT_EQ(classical_compressed_size(c, in), z.size());
      EXPECT_EQ(classical_decompress(c, z), in) << classical_name(c) << " on " << in.size() << " bytes";
    }
  }
}

TEST(Classical, StreamsHaveTheirFormatsMagic) {
  const std::string t = sample_text();
  EXPECT_EQ(classical_compress(Classical::Gzip9, t).substr(0, 2), "\x1f\x8b");
  EXPECT_EQ(classical_compress(Classical::Xz9, t).substr(0, 6), std::string("\xfd" "7zXZ\0", 6));
  EXPECT_EQ(classical_compress(Classical::Zstd19, t).substr(0, 4), "\x28\xb5\x2f\xfd");
}

TEST(Classical, TextCompressesAndStrongerSettingsBeatGzip) {
  const std::string t = sample_text();
  const size_t gz = classical_compressed_size(Classical::Gzip9, t);
  EXPECT_LT(gz, t.size() / 4);
  EXPECT_LT(classical_compressed_size(Classical::Xz9, t), gz);
  EXPECT_LT(classical_compressed_size(Classical::Zstd19, t), gz);
  EXPECT_LT(classical_compressed_size(Classical::Brotli11, t), gz);
  // Random bytes do not compress (each format adds only its framing).
  const std::string r = random_bytes(50000, 2);
  for (Classical c : all_classical()) EXPECT_GE(classical_compressed_size(c, r), r.size());
}

TEST(Classical, MalformedStreamsAreRefused) {
  const std::string t = sample_text();
  for (Classical c : all_classical()) {
    const std::string z = classical_compress(c, t);
    EXPECT_THROW(classical_decompress(c, z.substr(0, z.size() / 2)), std::runtime_error)
        << classical_name(c) << " truncated";
    EXPECT_THROW(classical_decompress(c, z + "junk"), std::runtime_error) << classical_name(c) << " trailing";
    EXPECT_THROW(classical_decompress(c, z, 100), std::runtime_error) << classical_name(c) << " limit";
  }
}

// A dictionary trained on many short documents of one kind makes zstd-19 of another such
// document smaller than zstd-19 alone; it stays within its size bound; too little data is refused.
TEST(Classical, ZstdDictionaryHelpsShortDocumentsOfTheSameKind) {
  std::vector<std::string> train;
  for (int i = 0; i < 300; ++i)
    train.push_back("User asked about item " + std::to_string(i * 31 % 97) +
                    ". The assistant replied: thank you for your question; the answer depends on the context, "
                    "and here is a short explanation with an example number " + std::to_string(i * 7 % 13) + ".");
  const std::string dict = train_zstd_dictionary(train, 4096);
  EXPECT_GT(dict.size(), 0u);
  EXPECT_LE(dict.size(), 4096u);
  const std::string doc =
      "User asked about item 5. The assistant replied: thank you for your question; the answer depends on the "
      "context, and here is a short explanation with an example number 11.";
  const size_t with = zstd19_dict_compressed_size(dict, doc), without = classical_compressed_size(Classical::Zstd19, doc);
  EXPECT_LT(with, without / 2) << "with the dictionary " << with << " bytes, without " << without;
  EXPECT_THROW(train_zstd_dictionary({"ab", "cd"}, 4096), std::runtime_error);
}

}  // namespace
}  // namespace lorazip
