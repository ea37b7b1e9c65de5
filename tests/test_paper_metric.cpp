// The paper's size metric in the eval report (eval/paper_table.h): bits / (tokens x log2 V) for
// gzip-9, base, own adapter, mean wrong adapter, routing by response and by prompt, checked
// against figures worked out by hand on a tiny report.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/paper_table.h"

using namespace lorazip;

namespace {

// V = 256 (log2 V = 8); 10 tokens, 2 documents, 40 bytes: base 40 bits = 1 bit/byte.
DomainResult tiny_domain(const std::string& name) {
  DomainResult d;
  d.domain = name;
  d.corpus = "test";
  d.docs = 2;
  d.tokens = 10;
  d.bytes = 40;
  d.base_bits = 40;
  d.own_adapter = "a";
  d.adapter_bits = {{"a", 20}, {"b", 30}, {"c", 50}};
  d.routed_bits = 18;
  d.routed_choice = {{"a", 2}};
  d.prompt_routed_bits = 24;
  d.base_bits_given = 32;
  d.adapter_bits_given = {{"a", 16}, {"b", 28}, {"c", 44}};
  d.classical_per_doc = {{"gzip-9", 15}, {"xz-9", 14}};
  return d;
}

}  // namespace

TEST(PaperMetric, RatioIsBitsOverTokensTimesLog2Vocab) {
  EXPECT_DOUBLE_EQ(paper_ratio(40, 10, 256), 0.5);
  EXPECT_DOUBLE_EQ(paper_ratio(12, 3, 16), 1.0);
  EXPECT_TRUE(std::isnan(paper_ratio(1, 0, 256)));
  EXPECT_TRUE(std::isnan(paper_ratio(1, 10, 1)));
}

TEST(PaperMetric, RowMatchesHandComputedValues) {
  Report r;
  r.vocab_size = 256;
  r.adapters = {"a", "b", "c"};
  r.domains = {tiny_domain("x")};
  std::vector<PaperRow> rows = paper_rows(r);
  ASSERT_EQ(rows.size(), 1u);  // one test domain: no "all" row
  const PaperRow& p = rows[0];
  EXPECT_DOUBLE_EQ(paper_ratio(p.gzip_bits, p.tokens, 256), 1.5);    // 15 bytes * 8 / 80
  EXPECT_DOUBLE_EQ(paper_ratio(p.base_bits, p.tokens, 256), 0.5);    // 40 / 80
  EXPECT_DOUBLE_EQ(paper_ratio(p.own_bits, p.tokens, 256), 0.25);    // 20 / 80
  EXPECT_DOUBLE_EQ(paper_ratio(p.wrong_bits, p.tokens, 256), 0.5);   // mean(30, 50) / 80
  // 18 bits + 2 documents * log2(3 adapters + base) = 22 bits.
  EXPECT_DOUBLE_EQ(paper_ratio(p.response_routed_bits, p.tokens, 256), 22.0 / 80);
  EXPECT_DOUBLE_EQ(paper_ratio(p.prompt_routed_bits, p.tokens, 256), 0.3);  // 24 / 80
  EXPECT_DOUBLE_EQ(paper_ratio(p.base_given_bits, p.tokens, 256), 0.4);     // 32 / 80
  EXPECT_DOUBLE_EQ(paper_ratio(p.own_given_bits, p.tokens, 256), 0.2);      // own adapter a: 16 / 80

  nlohmann::json j = paper_table_json(r);
  EXPECT_DOUBLE_EQ(j["rows"][0]["own_adapter"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["rows"][0]["gzip_9"].get<double>(), 1.5);
  const std::string md = paper_table_markdown(r);
  EXPECT_DOUBLE_EQ(j["rows"][0]["own_adapter_given_prompt"].get<double>(), 0.2);
  EXPECT_NE(md.find("| x | 2 | 10 | 1.5000 | 0.5000 | 0.2500 | 0.5000 | 0.2750 | 0.3000 | 0.4000 | 0.2000 | 1.000 | 0.500 | 0.0625 |"),
            std::string::npos)
      << md;
  EXPECT_NE(r.to_markdown().find("The paper's metric"), std::string::npos);
}

TEST(PaperMetric, AllRowSumsBitsAndTokensOverTestDomains) {
  Report r;
  r.vocab_size = 256;
  r.adapters = {"a", "b", "c"};
  DomainResult y = tiny_domain("y");
  y.tokens = 30;  // 240 bits of log2 V
  y.base_bits = 80;
  r.domains = {tiny_domain("x"), y};
  std::vector<PaperRow> rows = paper_rows(r);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2].tokens, 40);
  EXPECT_DOUBLE_EQ(paper_ratio(rows[2].base_bits, rows[2].tokens, 256), 120.0 / 320);
}

TEST(PaperMetric, MissingFiguresAreDashesNotZeros) {
  Report r;
  r.vocab_size = 256;
  DomainResult d = tiny_domain("x");
  d.own_adapter.clear();
  d.adapter_bits.clear();
  d.routed_choice.clear();
  d.prompt_routed_bits = NAN;
  d.base_bits_given = NAN;
  d.adapter_bits_given.clear();
  d.classical_per_doc.clear();
  r.domains = {d};
  nlohmann::json j = paper_table_json(r);
  EXPECT_TRUE(j["rows"][0]["own_adapter"].is_null());
  EXPECT_TRUE(j["rows"][0]["wrong_adapter"].is_null());
  EXPECT_TRUE(j["rows"][0]["prompt_routed"].is_null());
  EXPECT_TRUE(j["rows"][0]["base_given_prompt"].is_null());
  EXPECT_TRUE(j["rows"][0]["own_adapter_given_prompt"].is_null());
  // Given the prompt but without an own adapter: the base's figure, and a dash for the adapter.
  r.domains[0].base_bits_given = 32;
  r.domains[0].adapter_bits_given = {{"b", 28}};
  j = paper_table_json(r);
  EXPECT_DOUBLE_EQ(j["rows"][0]["base_given_prompt"].get<double>(), 0.4);
  EXPECT_TRUE(j["rows"][0]["own_adapter_given_prompt"].is_null());
  EXPECT_TRUE(j["rows"][0]["gzip_9"].is_null());
  EXPECT_DOUBLE_EQ(j["rows"][0]["base"].get<double>(), 0.5);
}
