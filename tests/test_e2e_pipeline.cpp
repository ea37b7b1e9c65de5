// End-to-end: `lorazip run` on tests/e2e/tiny.yaml writes every artefact a user looks for, a second
// run is served from the stage cache, and a change in the train section reruns the adapters only.
#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

using namespace e2e;

namespace {

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

const std::vector<std::string> kAdapterDomains = {"math", "code"};
const std::vector<std::string> kDomains = {"chat", "math", "code"};

TEST(E2ePipeline, RunWritesEveryArtefact) {
  Result first;
  fs::path t = tiny_pipeline(&first);
  ASSERT_FALSE(t.empty());
  if (!first.cmd.empty()) {
    // This process ran the pipeline: its log names each stage.
    for (const char* stage : {"[1/5] prepare", "[2/5] pretrain", "[3/5] adapter", "[4/5] eval", "[5/5] codec check"})
      EXPECT_TRUE(has(first.err, stage)) << "no '" << stage << "' in the log\n" << first.describe();
    EXPECT_TRUE(has(first.out, "round trip byte for byte: ok")) << first.out;
    std::printf("[ e2e ] the tiny pipeline ran in %.1f s\n", first.seconds);
  }
  for (const char* f : {"data.h5", "tokenizer.model", "base/config.json", "base/model.safetensors", "base/tokenizer.model", "report.md",
                        "report.json", "report.csv", "report.svg"}) {
    EXPECT_TRUE(fs::is_regular_file(t / f)) << "missing " << (t / f);
    if (fs::is_regular_file(t / f)) {
      EXPECT_GT(fs::file_size(t / f), 0u) << (t / f) << " is empty";
    }
  }
  for (const auto& d : kAdapterDomains)
    for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "lorazip.json"})
      EXPECT_TRUE(fs::is_regular_file(t / "adapters" / d / f)) << "missing " << (t / "adapters" / d / f);
  EXPECT_FALSE(fs::exists(t / "adapters" / "chat")) << "tiny.yaml asks for adapters on math and code only";

  // The base is a Hugging Face Llama config with the tiny sizes.
  auto cfg = nlohmann::json::parse(slurp(t / "base/config.json"));
  EXPECT_EQ(cfg.value("hidden_size", 0), 64);
  EXPECT_EQ(cfg.value("num_hidden_layers", 0), 2);
  EXPECT_EQ(cfg.value("vocab_size", 0), 512);

  // report.json: per domain, base and adapter bits/token, finite and positive.
  auto rep = nlohmann::json::parse(slurp(t / "report.json"));
  ASSERT_TRUE(rep.contains("domains")) << rep.dump(2);
  std::map<std::string, nlohmann::json> by_domain;
  for (const auto& d : rep["domains"]) by_domain[d.value("domain", "")] = d;
  for (const auto& name : kDomains) {
    ASSERT_TRUE(by_domain.count(name)) << "report.json has no domain " << name << "\n" << rep.dump(2);
    const auto& d = by_domain[name];
    double base = d["ideal"].value("base_bits_per_token", -1.0);
    double adapter = d["ideal"].value("adapter_bits_per_token", -1.0);
    EXPECT_GT(base, 0.5) << name;
    EXPECT_LT(base, 20.0) << name;
    EXPECT_GT(adapter, 0.5) << name;
    EXPECT_LT(adapter, 20.0) << name;
    EXPECT_GT(d.value("tokens", 0), 0) << name;
    EXPECT_TRUE(d["coded_sample"].value("roundtrip_ok", false)) << name << ": the sampled documents did not round-trip";
  }
  for (const auto& name : kAdapterDomains) {
    EXPECT_EQ(by_domain[name].value("own_adapter", ""), name);
    EXPECT_TRUE(by_domain[name]["cross"].contains(name)) << by_domain[name].dump(2);
  }
  // The Markdown report names every domain, the CSV has a row per domain and model, the SVG is SVG.
  std::string md = slurp(t / "report.md");
  for (const auto& name : kDomains) EXPECT_TRUE(has(md, name)) << md;
  std::string csv = slurp(t / "report.csv");
  EXPECT_TRUE(has(csv, "chat,")) << csv;
  EXPECT_TRUE(has(csv, "adapter:math")) << csv;
  EXPECT_TRUE(has(slurp(t / "report.svg"), "<svg")) << "report.svg is not SVG";

  // lorazip.json records the domain and the fingerprints the codec checks.
  for (const auto& name : kAdapterDomains) {
    auto info = nlohmann::json::parse(slurp(t / "adapters" / name / "lorazip.json"));
    EXPECT_EQ(info.value("domain", ""), name);
    EXPECT_EQ(info.value("base_fingerprint", ""), rep["base"].value("fingerprint", "?"));
    EXPECT_FALSE(info.value("adapter_fingerprint", "").empty());
    EXPECT_FALSE(info.value("tokenizer_sha256", "").empty());
  }
}

TEST(E2ePipeline, SecondRunIsCached) {
  fs::path t = tiny_pipeline();
  ASSERT_FALSE(t.empty());
  // Work on a copy so that tests running at the same time see the shared directory unchanged.
  TempDir tmp;
  fs::copy(t, tmp / "w", fs::copy_options::recursive);
  Result r = lorazip({"run", kTinyYaml.string(), "--work-dir", (tmp / "w").string()}, tmp.path());
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, "prepare: cached")) << r.describe();
  EXPECT_TRUE(has(r.err, "pretrain: cached")) << r.describe();
  for (const auto& d : kAdapterDomains) EXPECT_TRUE(has(r.err, "'" + d + "': cached")) << r.describe();
  EXPECT_TRUE(has(r.err, "eval: cached")) << r.describe();
  EXPECT_FALSE(has(r.err, "': training")) << r.describe();
  EXPECT_FALSE(has(r.err, "prepare: corpus")) << r.describe();
  EXPECT_TRUE(has(r.out, "round trip byte for byte: ok")) << r.out;
  // Loading a 0.1M-parameter model and coding one document: well under the pipeline's time.
  EXPECT_LT(r.seconds, 20.0) << "a fully cached run took " << r.seconds << " s";
  std::printf("[ e2e ] cached run: %.2f s\n", r.seconds);
}

TEST(E2ePipeline, TrainChangeRerunsAdaptersOnly) {
  fs::path t = tiny_pipeline();
  ASSERT_FALSE(t.empty());
  TempDir tmp;
  fs::copy(t, tmp / "w", fs::copy_options::recursive);
  std::string base_before = slurp(tmp / "w/base/model.safetensors");
  std::string store_before = slurp(tmp / "w/data.h5");
  std::string adapter_before = slurp(tmp / "w/adapters/math/adapter_model.safetensors");

  // Same config with the adapters trained for 12 steps instead of 16 (and data paths made absolute,
  // which resolve to the same files).
  std::string text = tiny_yaml_text_absolute();
  const std::string from = "train:\n  steps: 16\n";
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << "tiny.yaml's train section does not start with 'steps: 16'";
  text.replace(at, from.size(), "train:\n  steps: 12\n");
  spill(tmp / "changed.yaml", text);

  Result r = lorazip({"run", (tmp / "changed.yaml").string(), "--work-dir", (tmp / "w").string()}, tmp.path());
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, "prepare: cached")) << r.describe();
  EXPECT_TRUE(has(r.err, "pretrain: cached")) << r.describe();
  for (const auto& d : kAdapterDomains) {
    EXPECT_FALSE(has(r.err, "'" + d + "': cached")) << r.describe();
    EXPECT_TRUE(has(r.err, "'" + d + "': training")) << r.describe();
  }
  EXPECT_FALSE(has(r.err, "eval: cached")) << "eval depends on the adapters\n" << r.describe();
  EXPECT_EQ(slurp(tmp / "w/base/model.safetensors"), base_before) << "the base was rewritten";
  EXPECT_EQ(slurp(tmp / "w/data.h5"), store_before) << "the token store was rewritten";
  auto info = nlohmann::json::parse(slurp(tmp / "w/adapters/math/lorazip.json"));
  EXPECT_EQ(info["config"]["train"].value("steps", 0), 12) << info.dump(2);
  (void)adapter_before;
}

}  // namespace
