// Succinct rewrite (gen/rewrite.h) on a tiny engine model: the final answer is stripped before the
// model sees the solution, the shortest non-empty of N seeded samples is kept, its coded size is the
// LM codec's for that text, the ratios follow, and the config file refuses unknown keys. Torch-free.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "codec/lm_codec.h"
#include "gen/rewrite.h"
#include "tests/gen_tiny.h"

using namespace lorazip;
using namespace lorazip::gen;

TEST(Rewrite, StripsTheFinalAnswer) {
  EXPECT_EQ(strip_final_answer("so x = 3, thus \\boxed{\\frac{1}{2}} done"), "so x = 3, thus \\boxed{?} done");
  EXPECT_EQ(strip_final_answer("a \\boxed{1} b \\boxed{{2}}"), "a \\boxed{?} b \\boxed{?}");
  EXPECT_EQ(strip_final_answer("Step 1.\nStep 2.\nTherefore the answer is 65.\n\n"), "Step 1.\nStep 2.");
  EXPECT_EQ(strip_final_answer("only one line 65"), "");
  EXPECT_EQ(strip_final_answer("\\boxed{unbalanced"), "\\boxed{unbalanced");
}

TEST(Rewrite, KeepsTheShortestSampleAndCodesIt) {
  RewriteConfig cfg;
  cfg.samples = 5;
  cfg.temperature = 1.5;
  cfg.max_tokens = 40;
  cfg.infer_tokens = 16;
  LmCodecOptions copt;
  copt.threads = 1;
  const std::string solution = "We add 12 and 30 to get 42, so \\boxed{42}.";
  // The first tiny model (by seed) whose five samples differ in length, so the choice shows.
  std::unique_ptr<ChatModel> mp;
  std::unique_ptr<LmCodec> cp;
  RewriteResult r;
  for (uint64_t seed = 1; seed < 40; ++seed) {
    mp = std::make_unique<ChatModel>(test::tiny_chat_model(seed));
    cp = std::make_unique<LmCodec>(mp->model, *mp->tokenizer, CodecIdentity{});
    r = rewrite_solution(*mp, *cp, copt, "Add 12 and 30.", solution, cfg, 1, mp.get(), "42");
    std::set<size_t> sizes;
    for (const std::string& s : r.samples) sizes.insert(s.size());
    if (sizes.size() >= 3) break;
  }
  const ChatModel& m = *mp;
  const LmCodec& codec = *cp;
  ASSERT_EQ(r.samples.size(), 5u);
  std::set<size_t> sizes;
  for (const std::string& s : r.samples) sizes.insert(s.size());
  ASSERT_GE(sizes.size(), 3u) << "no tiny model gave samples of different lengths";
  for (const std::string& s : r.samples)
    if (!s.empty()) EXPECT_LE(r.rewrite.size(), s.size());
  EXPECT_EQ(r.rewrite, r.samples[r.chosen]);
  for (size_t i = 0; i < r.chosen; ++i) EXPECT_TRUE(r.samples[i].empty() || r.samples[i].size() > r.rewrite.size());
  CodeStats direct;
  codec.compress(r.rewrite, copt, &direct);
  EXPECT_EQ(r.rewrite_code.payload_bytes, direct.payload_bytes);
  EXPECT_EQ(r.original_bytes, static_cast<int64_t>(solution.size()));
  EXPECT_DOUBLE_EQ(r.ratio_vs_bytes, 8.0 * direct.payload_bytes / (8.0 * solution.size()));
  EXPECT_DOUBLE_EQ(r.ratio_vs_coded, static_cast<double>(direct.payload_bytes) / r.original_code.payload_bytes);
  // Same seed, same rewrites (on any thread count).
  const RewriteResult again = rewrite_solution(m, codec, copt, "Add 12 and 30.", solution, cfg, 2, nullptr, "");
  EXPECT_EQ(again.samples, r.samples);
  // Given the problem (what `lorazip rewrite` does by default): both texts are coded after the
  // problem's user turn, exactly as compress codes them given that context.
  const std::vector<int32_t> ctx = problem_context(m, "Add 12 and 30.");
  EXPECT_EQ(ctx, m.chat.user_prompt(*m.tokenizer, "Add 12 and 30."));
  LmCodecOptions given = copt;
  given.context = &ctx;
  const RewriteResult cond = rewrite_solution(m, codec, given, "Add 12 and 30.", solution, cfg, 1, nullptr, "");
  EXPECT_EQ(cond.rewrite, r.rewrite);
  CodeStats o_given, w_given;
  codec.compress(solution, given, &o_given);
  codec.compress(cond.rewrite, given, &w_given);
  EXPECT_EQ(cond.original_code.context_fingerprint, context_fingerprint(ctx));
  EXPECT_GT(cond.original_code.prefix_tokens, 0);
  EXPECT_DOUBLE_EQ(cond.original_code.ideal_bits, o_given.ideal_bits);
  EXPECT_DOUBLE_EQ(cond.rewrite_code.ideal_bits, w_given.ideal_bits);
  EXPECT_NE(cond.original_code.ideal_bits, r.original_code.ideal_bits);
  EXPECT_NE(rewrite_json("p1", "b", "ref", cond, true).find("\"conditioned\":true"), std::string::npos);
}

TEST(Rewrite, ConfigFileRefusesUnknownKeys) {
  const std::string dir = testing::TempDir();
  const std::string good = dir + "/rw_good.yaml", bad = dir + "/rw_bad.yaml";
  std::ofstream(good) << "prompt: 'Shorten: {solution}'\nsamples: 3\ntemperature: 0.5\nconditioned: false\n";
  std::ofstream(bad) << "samples: 3\nsampels: 4\n";
  const RewriteConfig c = load_rewrite_config(good);
  EXPECT_EQ(c.samples, 3);
  EXPECT_EQ(c.prompt, "Shorten: {solution}");
  EXPECT_FALSE(c.conditioned);
  EXPECT_TRUE(RewriteConfig{}.conditioned) << "coding given the problem is the default";
  EXPECT_THROW(load_rewrite_config(bad), std::invalid_argument);
  std::ofstream(bad) << "prompt: 'no placeholder'\n";
  EXPECT_THROW(load_rewrite_config(bad), std::invalid_argument);
}

TEST(Rewrite, MarkdownTableRowsAndTotals) {
  RewriteResult a, b;
  a.original_bytes = 100;
  a.original_code.payload_bytes = 20;
  a.rewrite_bytes = 10;
  a.rewrite_code.payload_bytes = 5;
  a.ratio_vs_bytes = 40.0 / 800;
  a.ratio_vs_coded = 0.25;
  a.inferred_answer = "42";
  a.inferred_correct = true;
  b.original_bytes = 300;
  b.original_code.payload_bytes = 60;
  b.rewrite_bytes = 30;
  b.rewrite_code.payload_bytes = 15;
  b.inferred_answer = "7";
  const std::string md = rewrite_markdown({{"p1", a}, {"p2", b}});
  EXPECT_NE(md.find("| p1 | 100 | 160 | 10 | 40 | 0.0500 | 0.2500 | 42 ✓ |"), std::string::npos) << md;
  EXPECT_NE(md.find("| p2 | 300 | 480 | 30 | 120 |"), std::string::npos) << md;
  // Totals: 400 bytes, 640 original coded bits, 160 rewrite coded bits: 160 / 3200 and 160 / 640.
  EXPECT_NE(md.find("| **all 2** | 400 | 640 |  | 160 | 0.0500 | 0.2500 | 1/2 |"), std::string::npos) << md;
}
