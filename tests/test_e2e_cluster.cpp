// End-to-end: `lorazip cluster` on the tiny pipeline's corpus with its base (the same files for
// any thread count), then routing by prompt with two of its adapters standing in for the
// clusters' adapters: a file decodes with its prompt, and is refused with a clear message without
// the prompt, without the router, or with a prompt that routes elsewhere; the file records the
// adapter set, not the choice.
#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

using namespace e2e;

namespace {

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// The first prompt of a cluster's JSONL file.
std::string first_prompt(const fs::path& jsonl) {
  const std::string text = slurp(jsonl);
  return nlohmann::json::parse(text.substr(0, text.find('\n')))["prompt"].get<std::string>();
}

class E2eCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = tiny_pipeline();
    if (work_.empty()) GTEST_SKIP() << "the tiny pipeline failed (see the failure above)";
    base_ = (work_ / "base").string();
    spill(t_ / "tiny.yaml", tiny_yaml_text_absolute());
  }
  Result lz(const std::vector<std::string>& args) { return lorazip(args, t_.path()); }
  // lorazip cluster on the tiny corpus, k = 2, into `out`.
  Result cluster(const std::string& out, const std::string& threads) {
    return lz({"--threads", threads, "cluster", "tiny.yaml", "-w", (t_ / "w").string(), "-m", base_, "-k", "2", "-o", out});
  }
  TempDir t_;
  fs::path work_;
  std::string base_;
};

TEST_F(E2eCluster, ClusterWritesTheSameFilesForAnyThreadCount) {
  Result a = cluster("one", "1");
  ASSERT_EQ(a.rc, 0) << a.describe();
  Result b = cluster("two", "2");
  ASSERT_EQ(b.rc, 0) << b.describe();
  for (const char* f : {"router.json", "assignments.jsonl", "c00.jsonl", "c01.jsonl"}) {
    ASSERT_TRUE(fs::exists(t_ / "one" / f)) << f;
    EXPECT_EQ(slurp(t_ / "one" / f), slurp(t_ / "two" / f)) << f << " differs between 1 and 2 threads";
  }
  // Every document of the three capped inputs (16 each) is in exactly one cluster.
  const std::string asg = slurp(t_ / "one/assignments.jsonl");
  EXPECT_EQ(std::count(asg.begin(), asg.end(), '\n'), 48);
  EXPECT_TRUE(has(a.out, "adjusted Rand index")) << a.out;
}

TEST_F(E2eCluster, PromptRoutedFileDecodesOnlyWithItsPrompt) {
  Result c = cluster("cl", "1");
  ASSERT_EQ(c.rc, 0) << c.describe();
  // The tiny pipeline's math and code adapters stand in for the two clusters' adapters.
  fs::create_directories(t_ / "ads");
  fs::copy(work_ / "adapters/math", t_ / "ads/c00", fs::copy_options::recursive);
  fs::copy(work_ / "adapters/code", t_ / "ads/c01", fs::copy_options::recursive);
  // A record's own prompt routes to its own cluster (the router repeats the clustering's embedding).
  spill(t_ / "p0.txt", first_prompt(t_ / "cl/c00.jsonl"));
  spill(t_ / "p1.txt", first_prompt(t_ / "cl/c01.jsonl"));
  const std::string text = sample_text();
  spill(t_ / "doc.txt", text);
  const std::string router = (t_ / "cl/router.json").string(), ads = (t_ / "ads").string();

  Result z = lz({"compress", "-m", base_, "--router", router, "-A", ads, "--prompt-file", "p0.txt", "-v", "-o", "doc0.lz", "doc.txt"});
  ASSERT_EQ(z.rc, 0) << z.describe();
  EXPECT_TRUE(has(z.err, "routes to cluster c00")) << z.err;
  Result z1 = lz({"compress", "-m", base_, "--router", router, "-A", ads, "--prompt-file", "p1.txt", "-o", "doc1.lz", "doc.txt"});
  ASSERT_EQ(z1.rc, 0) << z1.describe();
  EXPECT_NE(slurp(t_ / "doc0.lz"), slurp(t_ / "doc1.lz")) << "both prompts coded with the same adapter";
  // Both files name the same adapter set, not the adapter: the header says nothing of the choice.
  Result i0 = lz({"info", "doc0.lz"}), i1 = lz({"info", "doc1.lz"});
  ASSERT_EQ(i0.rc, 0) << i0.describe();
  auto adapter_line = [](const std::string& s) { size_t p = s.find("  adapter "); return s.substr(p, s.find('\n', p) - p); };
  EXPECT_EQ(adapter_line(i0.out), adapter_line(i1.out));
  EXPECT_TRUE(has(i0.out, "chosen from the prompt")) << i0.out;

  Result ok = lz({"decompress", "-m", base_, "--router", router, "-A", ads, "--prompt-file", "p0.txt", "-o", "back.txt", "doc0.lz"});
  ASSERT_EQ(ok.rc, 0) << ok.describe();
  EXPECT_EQ(slurp(t_ / "back.txt"), text);

  Result no_prompt = lz({"decompress", "-m", base_, "--router", router, "-A", ads, "-o", "x1.txt", "doc0.lz"});
  EXPECT_NE(no_prompt.rc, 0);
  EXPECT_TRUE(has(no_prompt.err, "which the file does not hold")) << no_prompt.err;
  EXPECT_FALSE(fs::exists(t_ / "x1.txt"));

  Result no_router = lz({"decompress", "-m", base_, "-A", ads, "-o", "x2.txt", "doc0.lz"});
  EXPECT_NE(no_router.rc, 0);
  EXPECT_TRUE(has(no_router.err, "pass --router")) << no_router.err;

  // A prompt without a router would be silently ignored: refused, as is a router without -A.
  Result prompt_only = lz({"compress", "-m", base_, "-A", ads, "--prompt-file", "p0.txt", "-o", "y.lz", "doc.txt"});
  EXPECT_EQ(prompt_only.rc, 2) << prompt_only.describe();
  EXPECT_TRUE(has(prompt_only.err, "--prompt-file") && has(prompt_only.err, "--router")) << prompt_only.err;
  EXPECT_FALSE(fs::exists(t_ / "y.lz"));
  Result router_only = lz({"compress", "-m", base_, "--router", router, "--prompt-file", "p0.txt", "-o", "y.lz", "doc.txt"});
  EXPECT_EQ(router_only.rc, 2) << router_only.describe();
  EXPECT_TRUE(has(router_only.err, "-A")) << router_only.err;
  EXPECT_FALSE(fs::exists(t_ / "y.lz"));

  Result wrong = lz({"decompress", "-m", base_, "--router", router, "-A", ads, "--prompt-file", "p1.txt", "-o", "x3.txt", "doc0.lz"});
  EXPECT_NE(wrong.rc, 0);
  EXPECT_TRUE(has(wrong.err, "compressed with another prompt")) << wrong.err;
  EXPECT_FALSE(fs::exists(t_ / "x3.txt"));

  // Another adapter set (one adapter swapped) is refused by its identity.
  fs::remove_all(t_ / "ads/c01");
  fs::copy(work_ / "adapters/math", t_ / "ads/c01", fs::copy_options::recursive);
  Result other = lz({"decompress", "-m", base_, "--router", router, "-A", ads, "--prompt-file", "p0.txt", "-o", "x4.txt", "doc0.lz"});
  EXPECT_NE(other.rc, 0);
  EXPECT_TRUE(has(other.err, "adapter set")) << other.err;
}

}  // namespace
