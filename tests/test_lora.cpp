// LoRA adapters (libtorch's side path, for training): an untrained adapter changes nothing, the
// PEFT directory round-trips with PEFT's key names and shapes, and a mismatched adapter is refused
// with a message that names the tensor.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

#include "adapters/adapter.h"
#include "common/fs.h"
#include "common/yaml_strict.h"
#include "model/checkpoint.h"
#include "model/llama.h"
#include "model/safetensors.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

LlamaConfig tiny_config(int64_t hidden = 32) {
  LlamaConfig c;
  c.vocab_size = 64;
  c.hidden_size = hidden;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;  // GQA: k/v projections are narrower than q
  c.max_position_embeddings = 32;
  return c;
}

LlamaForCausalLM tiny_model(uint64_t seed = 1, int64_t hidden = 32) {
  LlamaForCausalLM m(tiny_config(hidden));
  m->init_weights(seed);
  m->eval();
  return m;
}

torch::Tensor some_tokens() {
  torch::manual_seed(7);
  return torch::randint(64, {2, 12}, torch::kInt64);
}

// Gives B random values so that the adapter actually changes the model.
void randomize_b(LoraAdapter& a, uint64_t seed = 3) {
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  for (auto& [k, t] : a.state_dict())
    if (k.find("lora_B") != std::string::npos) t.copy_(torch::randn(t.sizes()) * 0.05);
}

std::string temp_dir(const std::string& name) {
  std::string d = (fs::temp_directory_path() / ("lorazip_test_lora_" + name + "_" + std::to_string(::getpid()))).string();
  fs::remove_all(d);
  return d;
}

std::map<std::string, torch::Tensor> weights(LlamaForCausalLM& m) {
  std::map<std::string, torch::Tensor> w;
  for (auto& p : m->named_parameters()) w.emplace(p.key(), p.value().detach().clone());
  return w;
}

bool same_weights(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  for (const auto& [k, t] : a)
    if (!torch::equal(t, b.at(k))) return false;
  return a.size() == b.size();
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Lora, FreshAdapterLeavesLogitsUnchanged) {
  auto m = tiny_model();
  torch::NoGradGuard ng;
  torch::Tensor before = m->forward(some_tokens());
  LoraAdapter a(m, LoraConfig{});
  a.attach(m);
  EXPECT_TRUE(torch::equal(m->forward(some_tokens()), before));
  // 7 projections x 2 layers, each with A [8, in] and B [out, 8].
  EXPECT_EQ(a.modules().size(), 14u);
  EXPECT_EQ(a.parameters().size(), 28u);
}

TEST(Lora, AInitialisedLikePeftAndSeeded) {
  auto m = tiny_model();
  LoraConfig c;
  c.seed = 5;
  LoraAdapter a(m, c), b(m, c);
  auto sa = a.state_dict(), sb = b.state_dict();
  const std::string q = peft_key("model.layers.0.self_attn.q_proj", "lora_A");
  const std::string d = peft_key("model.layers.0.mlp.down_proj", "lora_A");
  EXPECT_TRUE(torch::equal(sa.at(q), sb.at(q)));
  // kaiming_uniform_(a=sqrt(5)) on [R, in]: U(-1/sqrt(in), 1/sqrt(in)); down_proj's in is 48.
  EXPECT_LE(sa.at(q).abs().max().item<double>(), 1.0 / std::sqrt(32.0));
  EXPECT_LE(sa.at(d).abs().max().item<double>(), 1.0 / std::sqrt(48.0));
  EXPECT_GT(sa.at(q).abs().max().item<double>(), 0.5 / std::sqrt(32.0));
  EXPECT_EQ(sa.at(peft_key("model.layers.0.self_attn.q_proj", "lora_B")).abs().sum().item<double>(), 0.0);
  c.seed = 6;
  LoraAdapter other(m, c);
  EXPECT_FALSE(torch::equal(other.state_dict().at(q), sa.at(q)));
}

TEST(Lora, OnlyTargetedProjectionsAndOnlyLoraParameters) {
  auto m = tiny_model();
  LoraConfig c;
  c.targets = {"q_proj", "v_proj"};
  LoraAdapter a(m, c);
  EXPECT_EQ(a.modules(), (std::vector<std::string>{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                                   "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}));
  // per layer: q A [8, 32] + B [32, 8], v A [8, 32] + B [16, 8] (GQA)
  EXPECT_EQ(a.num_parameters(), 2 * ((8 * 32 + 32 * 8) + (8 * 32 + 16 * 8)));
  for (const auto& t : a.parameters()) EXPECT_TRUE(t.requires_grad());
  c.targets = {"nonexistent_proj"};
  EXPECT_NE(error_of([&] { LoraAdapter bad(m, c); }).find("nonexistent_proj"), std::string::npos);
}

// PEFT 0.10's LoraConfig and PeftConfig fields (peft/config.py, peft/tuners/lora/config.py of
// peft 0.10.0): a key outside them makes LoraConfig.__init__ fail there (PEFT 0.10-0.13 refused
// lorazip's adapters for "lora_bias"). Later PEFT versions keep every one of these.
TEST(Lora, AdapterConfigHoldsOnlyKeysPeft010Knows) {
  const std::set<std::string> peft010 = {
      "peft_type", "auto_mapping", "base_model_name_or_path", "revision", "task_type", "inference_mode",
      "r", "target_modules", "lora_alpha", "lora_dropout", "fan_in_fan_out", "bias", "use_rslora",
      "modules_to_save", "init_lora_weights", "layers_to_transform", "layers_pattern", "rank_pattern",
      "alpha_pattern", "megatron_config", "megatron_core", "loftq_config", "use_dora", "layer_replication"};
  for (bool rslora : {false, true}) {
    LoraConfig c;
    c.use_rslora = rslora;
    const nlohmann::json cfg = peft_adapter_config(c, "base");
    for (const auto& [key, value] : cfg.items()) EXPECT_TRUE(peft010.count(key)) << key << " is unknown to PEFT 0.10";
    EXPECT_EQ(cfg.contains("use_rslora"), rslora);
    // What a reader needs is there.
    for (const char* k : {"peft_type", "r", "lora_alpha", "target_modules", "base_model_name_or_path"})
      EXPECT_TRUE(cfg.contains(k)) << k;
  }
}

TEST(Lora, PeftSaveLoadRoundTripWithPeftKeysAndShapes) {
  auto m = tiny_model();
  LoraAdapter a(m, LoraConfig{});
  a.attach(m);
  randomize_b(a);
  const std::string dir = temp_dir("roundtrip");
  AdapterInfo info;
  info.domain = "code";
  info.base_model_name_or_path = "lorazip/tiny";
  info.tokenizer_sha256 = std::string(64, 'a');
  info.val_bits_per_token = 3.25;
  a.save(dir, info);

  // adapter_config.json: PEFT's fields.
  auto cfg = nlohmann::json::parse(read_file(dir + "/adapter_config.json"));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["r"], 8);
  EXPECT_EQ(cfg["lora_alpha"], 16);
  EXPECT_EQ(cfg["base_model_name_or_path"], "lorazip/tiny");
  EXPECT_EQ(cfg["target_modules"].size(), 7u);
  EXPECT_FALSE(cfg.contains("use_rslora"));  // PEFT's default, left out
  EXPECT_EQ(cfg["bias"], "none");

  // adapter_model.safetensors: F32, format=pt, keys and shapes of docs/formats.md, "PEFT LoRA adapter directory" (GQA: k/v B rows = Hkv).
  SafetensorsFile st = read_safetensors(dir + "/adapter_model.safetensors");
  EXPECT_EQ(st.metadata.at("format"), "pt");
  EXPECT_EQ(st.tensors.size(), 28u);
  const int64_t C = 32, Hq = 32, Hkv = 16, I = 48, R = 8;
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<int64_t>>> want = {
      {"self_attn.q_proj", {{R, C}, {Hq, R}}}, {"self_attn.k_proj", {{R, C}, {Hkv, R}}},
      {"self_attn.v_proj", {{R, C}, {Hkv, R}}}, {"self_attn.o_proj", {{R, Hq}, {C, R}}},
      {"mlp.gate_proj", {{R, C}, {I, R}}},      {"mlp.up_proj", {{R, C}, {I, R}}},
      {"mlp.down_proj", {{R, I}, {C, R}}}};
  for (int layer = 0; layer < 2; ++layer)
    for (const auto& [proj, shapes] : want) {
      const std::string p = "base_model.model.model.layers." + std::to_string(layer) + "." + proj;
      ASSERT_TRUE(st.tensors.count(p + ".lora_A.weight")) << p;
      EXPECT_EQ(st.tensors.at(p + ".lora_A.weight").shape, shapes.first) << p;
      EXPECT_EQ(st.tensors.at(p + ".lora_B.weight").shape, shapes.second) << p;
      EXPECT_EQ(st.tensors.at(p + ".lora_A.weight").dtype, DType::F32);
    }

  // lorazip.json
  AdapterInfo back = LoraAdapter::read_info(dir);
  EXPECT_EQ(back.domain, "code");
  EXPECT_EQ(back.base_fingerprint, model_fingerprint(m));
  EXPECT_EQ(back.tokenizer_sha256, std::string(64, 'a'));
  EXPECT_EQ(back.adapter_fingerprint, a.fingerprint());
  EXPECT_DOUBLE_EQ(back.val_bits_per_token, 3.25);
  EXPECT_EQ(back.config["lora"]["r"], 8);

  // Load: identical tensors, same scaling, same outputs.
  a.detach();
  LoraAdapter b = LoraAdapter::load(dir, m);
  EXPECT_FALSE(b.attached());
  auto sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [k, t] : sa) EXPECT_TRUE(torch::equal(t, sb.at(k))) << k;
  EXPECT_DOUBLE_EQ(b.scaling("model.layers.1.mlp.up_proj"), 2.0);
  EXPECT_EQ(b.fingerprint(), a.fingerprint());
  torch::NoGradGuard ng;
  a.attach(m);
  torch::Tensor ya = m->forward(some_tokens());
  b.attach(m);
  EXPECT_TRUE(torch::equal(m->forward(some_tokens()), ya));
  b.detach();
  fs::remove_all(dir);
}

TEST(Lora, ForeignPeftConfigReadLeniently) {
  auto m = tiny_model();
  LoraConfig c;
  c.r = 4;
  c.targets = {"q_proj", "v_proj"};
  LoraAdapter a(m, c);
  randomize_b(a);
  const std::string dir = temp_dir("foreign");
  a.attach(m);
  a.save(dir, AdapterInfo{});
  a.detach();
  fs::remove(dir + "/lorazip.json");
  // A minimal PEFT file: only what PEFT needs, plus rsLoRA and an unknown key.
  write_file_atomic(dir + "/adapter_config.json",
                    R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_rslora": true,
                        "target_modules": ["q_proj", "v_proj"], "some_future_key": {"x": 1}})");
  LoraAdapter b = LoraAdapter::load(dir, m);
  EXPECT_EQ(b.modules().size(), 4u);
  EXPECT_DOUBLE_EQ(b.scaling("model.layers.0.self_attn.q_proj"), 8.0 / 2.0);  // alpha / sqrt(r)
  EXPECT_EQ(b.rank("model.layers.0.self_attn.v_proj"), 4);
  // A regex target_modules selects the same modules.
  write_file_atomic(dir + "/adapter_config.json",
                    R"J({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ".*\\.(q_proj|v_proj)"})J");
  EXPECT_EQ(LoraAdapter::load(dir, m).modules().size(), 4u);
  // peft_type is the one required key.
  write_file_atomic(dir + "/adapter_config.json", R"({"r": 4})");
  EXPECT_NE(error_of([&] { LoraAdapter::load(dir, m); }).find("peft_type"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Lora, MismatchedAdaptersAreRefusedNamingTheTensor) {
  auto m = tiny_model();
  LoraAdapter a(m, LoraConfig{});
  randomize_b(a);
  const std::string dir = temp_dir("mismatch");
  a.attach(m);
  a.save(dir, AdapterInfo{});
  a.detach();

  // Another base (hidden 48 instead of 32): the shape check names the tensor and suggests the cause.
  auto wide = tiny_model(1, 48);
  std::string e = error_of([&] { LoraAdapter::load(dir, wide, /*check_base=*/false); });
  EXPECT_NE(e.find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("another base model"), std::string::npos) << e;

  // Same shapes, other weights: lorazip.json's base fingerprint refuses it, naming both.
  auto other = tiny_model(2);
  e = error_of([&] { LoraAdapter::load(dir, other); });
  EXPECT_NE(e.find(model_fingerprint(m)), std::string::npos) << e;
  EXPECT_NE(e.find(model_fingerprint(other)), std::string::npos) << e;

  // Rank in the file (8) differs from the config's r.
  auto cfg = nlohmann::json::parse(read_file(dir + "/adapter_config.json"));
  cfg["r"] = 4;
  write_file_atomic(dir + "/adapter_config.json", cfg.dump());
  e = error_of([&] { LoraAdapter::load(dir, m); });
  EXPECT_NE(e.find(".lora_A.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("r=4"), std::string::npos) << e;
  cfg["r"] = 8;
  write_file_atomic(dir + "/adapter_config.json", cfg.dump());

  // A missing tensor.
  SafetensorsFile st = read_safetensors(dir + "/adapter_model.safetensors");
  const std::string gone = "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight";
  st.tensors.erase(gone);
  write_safetensors(dir + "/adapter_model.safetensors", st);
  fs::remove(dir + "/lorazip.json");
  e = error_of([&] { LoraAdapter::load(dir, m); });
  EXPECT_NE(e.find("missing tensor '" + gone + "'"), std::string::npos) << e;

  // A tensor for a module this base does not have.
  st = read_safetensors(dir + "/adapter_model.safetensors");
  st.tensors.erase("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight");
  RawTensor extra = st.tensors.at("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  st.tensors.emplace("base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight", extra);
  write_safetensors(dir + "/adapter_model.safetensors", st);
  e = error_of([&] { LoraAdapter::load(dir, m); });
  EXPECT_NE(e.find("layers.7.self_attn.q_proj"), std::string::npos) << e;
  fs::remove_all(dir);
}

TEST(Lora, YamlSectionIsStrict) {
  YamlMap root = YamlMap::load_string("lora:\n  r: 4\n  alpha: 8\n  targets: [q_proj, v_proj]\n", "t.yaml");
  YamlMap sec = root.sub("lora");
  LoraConfig c = LoraConfig::from_yaml(sec, ".");
  EXPECT_EQ(c.r, 4);
  EXPECT_DOUBLE_EQ(c.scaling(), 2.0);
  EXPECT_EQ(c.targets.size(), 2u);
  YamlMap bad = YamlMap::load_string("lora:\n  r: 4\n  rank: 8\n", "t.yaml");
  YamlMap bs = bad.sub("lora");
  std::string e = error_of([&] { LoraConfig::from_yaml(bs, "."); });
  EXPECT_NE(e.find("rank"), std::string::npos) << e;
  YamlMap zero = YamlMap::load_string("lora:\n  r: 0\n", "t.yaml");
  YamlMap zs = zero.sub("lora");
  EXPECT_NE(error_of([&] { LoraConfig::from_yaml(zs, "."); }).find("lora.r"), std::string::npos);
}

// lora.layers: "top K" takes the K layers nearest the output, a list takes those indices; the
// adapter has modules only there, and a PEFT directory written from it names them in
// layers_to_transform, so reading it back gives the same modules.
TEST(Lora, LayersSettingPutsAdaptersOnTheChosenLayersOnly) {
  auto parse = [](const std::string& body) {
    YamlMap root = YamlMap::load_string("lora:\n" + body, "t.yaml");
    YamlMap sec = root.sub("lora");
    return LoraConfig::from_yaml(sec, ".");
  };
  EXPECT_EQ(parse("  layers: top 1\n").resolve_layers(2), (std::vector<int64_t>{1}));
  EXPECT_EQ(parse("  layers: top 3\n").resolve_layers(30), (std::vector<int64_t>{27, 28, 29}));
  EXPECT_EQ(parse("  layers: [3, 0]\n").resolve_layers(4), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(parse("  layers: all\n").resolve_layers(3), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(parse("  r: 4\n").resolve_layers(2), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(parse("  layers: top 2\n").to_json()["layers"], "top 2");
  for (const char* bad : {"  layers: top\n", "  layers: top 0\n", "  layers: top x\n", "  layers: [1, 1]\n", "  layers: [-1]\n",
                          "  layers: [a]\n"})
    EXPECT_NE(error_of([&] { parse(bad); }).find("lora.layers"), std::string::npos) << bad;
  EXPECT_NE(error_of([&] { parse("  layers: top 3\n").resolve_layers(2); }).find("top 3"), std::string::npos);
  EXPECT_NE(error_of([&] { parse("  layers: [2]\n").resolve_layers(2); }).find("layer 2"), std::string::npos);
  EXPECT_EQ(module_layer("model.layers.12.mlp.up_proj"), 12);
  EXPECT_EQ(module_layer("model.norm"), -1);

  auto m = tiny_model();  // two layers
  LoraConfig c;
  c.targets = {"q_proj", "v_proj"};
  c.top_layers = 1;
  LoraAdapter a(m, c);
  EXPECT_EQ(a.modules(), (std::vector<std::string>{"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}));
  a.attach(m);
  randomize_b(a);
  const std::string dir = temp_dir("top1");
  a.save(dir, AdapterInfo{});
  const auto cfg = nlohmann::json::parse(read_file(dir + "/adapter_config.json"));
  EXPECT_EQ(cfg["layers_to_transform"], nlohmann::json::array({1}));
  const PeftAdapterFiles back = read_peft_adapter(dir, llama_projections(m->config()));
  ASSERT_EQ(back.modules.size(), 2u);
  EXPECT_EQ(back.modules[0].name, "model.layers.1.self_attn.q_proj");
  EXPECT_EQ(back.config.layers, (std::vector<int64_t>{1}));
}
