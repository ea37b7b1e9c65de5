// End-to-end: `lorazip export` writes an adapter as a PEFT directory whose tensors carry the keys
// and shapes PEFT itself writes (docs/formats.md) with a llama.cpp LoRA GGUF beside them, and `--merged` writes a Hugging Face Llama
// directory that lorazip compress -m can code with.
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "e2e/e2e_util.h"

using namespace e2e;

namespace {

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// The JSON header of a safetensors file: u64 little-endian length, then the JSON object.
nlohmann::json safetensors_header(const fs::path& p) {
  std::string bytes = slurp(p);
  if (bytes.size() < 8) throw std::runtime_error(p.string() + ": shorter than a safetensors header");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  if (n > bytes.size() - 8) throw std::runtime_error(p.string() + ": header length past the end");
  return nlohmann::json::parse(bytes.substr(8, n));
}

class E2eExport : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = tiny_pipeline();
    if (work_.empty()) GTEST_SKIP() << "the tiny pipeline failed (see the failure above)";
    base_ = (work_ / "base").string();
    math_ = (work_ / "adapters/math").string();
  }
  Result lz(const std::vector<std::string>& args) { return lorazip(args, t_.path()); }

  TempDir t_;
  fs::path work_;
  std::string base_, math_;
};

// The llama.cpp LoRA beside the PEFT files: GGUF magic and version 3, llama.cpp's metadata keys
// and tensor names (docs/gguf.md; test_gguf_model checks shapes, values and the permutation).
TEST_F(E2eExport, LlamaCppLoraGgufInsideThePeftDirectory) {
  Result r = lz({"export", "-m", base_, "-a", math_, "-o", "peft"});
  ASSERT_EQ(r.rc, 0) << r.describe();
  const fs::path g = t_ / "peft" / "adapter_model.gguf";
  ASSERT_TRUE(fs::is_regular_file(g)) << r.describe();
  const std::string bytes = slurp(g);
  ASSERT_GE(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(0, 4), "GGUF");
  EXPECT_EQ(bytes[4], 3);
  for (const char* s : {"general.type", "adapter", "adapter.type", "adapter.lora.alpha", "blk.0.attn_q.weight.lora_a",
                        "blk.1.ffn_down.weight.lora_b", "blk.1.attn_output.weight.lora_a"})
    EXPECT_TRUE(has(bytes, s)) << s;
  EXPECT_TRUE(has(r.err, "adapter_model.gguf")) << r.describe();
}

TEST_F(E2eExport, PeftDirectoryHasTheKeysPeftWrites) {
  Result r = lz({"export", "-m", base_, "-a", math_, "-o", "peft"});
  ASSERT_EQ(r.rc, 0) << r.describe();
  const fs::path out = t_ / "peft";
  ASSERT_TRUE(fs::is_regular_file(out / "adapter_config.json"));
  ASSERT_TRUE(fs::is_regular_file(out / "adapter_model.safetensors"));

  auto cfg = nlohmann::json::parse(slurp(out / "adapter_config.json"));
  EXPECT_EQ(cfg.value("peft_type", ""), "LORA");
  EXPECT_EQ(cfg.value("r", 0), 4);
  EXPECT_DOUBLE_EQ(cfg.value("lora_alpha", 0.0), 8.0);
  EXPECT_TRUE(cfg.contains("base_model_name_or_path"));
  std::set<std::string> targets;
  for (const auto& t : cfg["target_modules"]) targets.insert(t.get<std::string>());
  EXPECT_EQ(targets, (std::set<std::string>{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}));

  // tiny.yaml: hidden 64, intermediate 172, 4 query heads and 2 key/value heads of 16, 2 layers, r 4.
  const int64_t r4 = 4, C = 64, I = 172, KV = 32;
  std::map<std::string, std::pair<int64_t, int64_t>> in_out = {
      {"self_attn.q_proj", {C, C}}, {"self_attn.k_proj", {C, KV}},  {"self_attn.v_proj", {C, KV}}, {"self_attn.o_proj", {C, C}},
      {"mlp.gate_proj", {C, I}},    {"mlp.up_proj", {C, I}},        {"mlp.down_proj", {I, C}}};
  std::map<std::string, std::vector<int64_t>> want;
  for (int layer = 0; layer < 2; ++layer)
    for (const auto& [mod, io] : in_out) {
      std::string stem = "base_model.model.model.layers." + std::to_string(layer) + "." + mod;
      want[stem + ".lora_A.weight"] = {r4, io.first};
      want[stem + ".lora_B.weight"] = {io.second, r4};
    }
  auto header = safetensors_header(out / "adapter_model.safetensors");
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& [key, val] : header.items()) {
    if (key == "__metadata__") {
      EXPECT_EQ(val.value("format", ""), "pt");
      continue;
    }
    EXPECT_EQ(val.value("dtype", ""), "F32") << key;
    got[key] = val["shape"].get<std::vector<int64_t>>();
  }
  EXPECT_EQ(got, want);
  const std::regex peft_key(R"(^base_model\.model\.model\.layers\.\d+\.(self_attn|mlp)\.[a-z_]+_proj\.lora_[AB]\.weight$)");
  for (const auto& kv : got) EXPECT_TRUE(std::regex_match(kv.first, peft_key)) << kv.first;

  // The export codes exactly as the adapter it came from.
  spill(t_ / "m.txt", sample_text());
  ASSERT_EQ(lz({"compress", "-m", base_, "-a", math_, "-o", "a.lz", "m.txt"}).rc, 0);
  Result b = lz({"compress", "-m", base_, "-a", "peft", "-o", "b.lz", "m.txt"});
  ASSERT_EQ(b.rc, 0) << b.describe();
  EXPECT_EQ(slurp(t_ / "a.lz"), slurp(t_ / "b.lz")) << "the exported adapter codes differently from the original";
  Result d = lz({"decompress", "-m", base_, "-a", "peft", "-c", "a.lz"});
  ASSERT_EQ(d.rc, 0) << d.describe();
  EXPECT_EQ(d.out, sample_text());

  // An existing output directory is not replaced without -f.
  Result again = lz({"export", "-m", base_, "-a", math_, "-o", "peft"});
  EXPECT_NE(again.rc, 0) << again.describe();
  EXPECT_TRUE(has(again.err, "peft")) << again.describe();
  Result forced = lz({"export", "-m", base_, "-a", math_, "-o", "peft", "-f"});
  EXPECT_EQ(forced.rc, 0) << forced.describe();
}

TEST_F(E2eExport, MergedModelIsABaseForCompress) {
  Result r = lz({"export", "-m", base_, "-a", math_, "--merged", "-o", "merged"});
  ASSERT_EQ(r.rc, 0) << r.describe();
  const fs::path out = t_ / "merged";
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.model"}) EXPECT_TRUE(fs::is_regular_file(out / f)) << f;
  auto cfg = nlohmann::json::parse(slurp(out / "config.json"));
  EXPECT_EQ(cfg.value("hidden_size", 0), 64);
  EXPECT_EQ(slurp(out / "tokenizer.model"), slurp(fs::path(base_) / "tokenizer.model"));
  // AutoTokenizer's files, in the pretrained base and the merged export alike: BOS added (lorazip
  // codes from BOS), and no "\u2581" put before the first word (the tokenizer has no dummy prefix).
  for (const fs::path& dir : {fs::path(base_), out}) {
    ASSERT_TRUE(fs::is_regular_file(dir / "tokenizer_config.json")) << dir;
    ASSERT_TRUE(fs::is_regular_file(dir / "special_tokens_map.json")) << dir;
    const auto tc = nlohmann::json::parse(slurp(dir / "tokenizer_config.json"));
    EXPECT_EQ(tc.value("tokenizer_class", ""), "LlamaTokenizer") << dir;
    EXPECT_EQ(tc.value("bos_token", ""), "<s>") << dir;
    EXPECT_EQ(tc.value("eos_token", ""), "</s>") << dir;
    EXPECT_TRUE(tc.value("add_bos_token", false)) << dir;
    EXPECT_FALSE(tc.value("add_eos_token", true)) << dir;
    EXPECT_FALSE(tc.value("add_prefix_space", true)) << dir;
    EXPECT_TRUE(tc.value("legacy", false)) << dir;
    EXPECT_EQ(tc.value("model_max_length", 0), 128) << dir;
  }
  auto header = safetensors_header(out / "model.safetensors");
  EXPECT_TRUE(header.contains("model.layers.0.self_attn.q_proj.weight")) << header.dump();
  EXPECT_TRUE(header.contains("lm_head.weight")) << header.dump();
  for (const auto& [key, val] : header.items()) EXPECT_FALSE(has(key, "lora")) << "the merged model still has " << key;

  const std::string text = sample_text();
  spill(t_ / "m.txt", text);
  Result c = lz({"compress", "-m", "merged", "-o", "m.lz", "m.txt"});
  ASSERT_EQ(c.rc, 0) << c.describe();
  Result d = lz({"decompress", "-m", "merged", "-c", "m.lz"});
  ASSERT_EQ(d.rc, 0) << d.describe();
  EXPECT_EQ(d.out, text);
  // The merged model is a different base from the original: the header says which.
  Result i = lz({"info", "m.lz"});
  ASSERT_EQ(i.rc, 0) << i.describe();
  auto rep = nlohmann::json::parse(slurp(work_ / "report.json"));
  EXPECT_FALSE(has(i.out, rep["base"].value("fingerprint", "?"))) << i.out;
}

}  // namespace

// adapter_config.json's base_model_name_or_path resolves from any folder: the trained adapter
// and an export given a relative -m both name the base by its absolute path; --base-name sets it.
TEST_F(E2eExport, BaseModelNameResolvesFromAnyFolder) {
  auto base_name_of = [](const fs::path& dir) {
    return nlohmann::json::parse(slurp(dir / "adapter_config.json")).value("base_model_name_or_path", std::string());
  };
  const std::string trained = base_name_of(math_);
  EXPECT_TRUE(fs::path(trained).is_absolute()) << trained;
  EXPECT_EQ(fs::weakly_canonical(trained), fs::weakly_canonical(base_)) << trained;

  const std::string rel = fs::relative(base_, t_.path()).string();
  ASSERT_FALSE(fs::path(rel).is_absolute());
  Result r = lz({"export", "-m", rel, "-a", math_, "-o", "peft"});
  ASSERT_EQ(r.rc, 0) << r.describe();
  const std::string exported = base_name_of(t_ / "peft");
  EXPECT_TRUE(fs::path(exported).is_absolute()) << exported;
  EXPECT_EQ(fs::weakly_canonical(exported), fs::weakly_canonical(base_)) << exported;

  Result named = lz({"export", "-m", rel, "-a", math_, "-o", "named", "--base-name", "HuggingFaceTB/SmolLM2-135M-Instruct"});
  ASSERT_EQ(named.rc, 0) << named.describe();
  EXPECT_EQ(base_name_of(t_ / "named"), "HuggingFaceTB/SmolLM2-135M-Instruct");
}
