// LlamaConfig: Hugging Face config.json in (classic and transformers v5 files), config.json out,
// strict YAML, validation. A base model from the Hub must load; a lorazip base must load in HF.
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>

#include "common/fs.h"
#include "common/yaml_strict.h"
#include "model/config.h"

using lorazip::LlamaConfig;
using nlohmann::json;

namespace {

json tinyllama_json() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 5632,
    "max_position_embeddings": 2048, "model_type": "llama", "num_attention_heads": 32,
    "num_hidden_layers": 22, "num_key_value_heads": 4, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": null, "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.35.0", "use_cache": true, "vocab_size": 32000})");
}

template <class E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST(ModelConfig, ReadsTinyLlamaConfigJson) {
  LlamaConfig c = LlamaConfig::from_hf_json(tinyllama_json(), "tinyllama/config.json");
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 5632);
  EXPECT_EQ(c.num_hidden_layers, 22);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.resolved_head_dim(), 64);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
}

TEST(ModelConfig, DefaultsAndNullsFollowTransformers) {
  json j = tinyllama_json();
  j["num_key_value_heads"] = nullptr;  // null -> num_attention_heads
  j.erase("rope_theta");               // absent -> 10000
  j.erase("max_position_embeddings");  // absent -> 2048
  j["eos_token_id"] = json::array({128001, 128009});
  j["vocab_size"] = 128256;
  j["some_future_key"] = {{"x", 1}};  // unknown keys are tolerated
  LlamaConfig c = LlamaConfig::from_hf_json(j, "c.json");
  EXPECT_EQ(c.num_key_value_heads, 32);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_EQ(c.eos_token_id, 128001);
}

TEST(ModelConfig, ReadsTransformersV5RopeParametersAndHeadDim) {
  json j = tinyllama_json();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  j["head_dim"] = 128;
  j["dtype"] = "float32";
  LlamaConfig c = LlamaConfig::from_hf_json(j, "v5.json");
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.resolved_head_dim(), 128);
}

TEST(ModelConfig, RejectsWhatItCannotComputeNamingTheKey) {
  auto load = [](json j) { LlamaConfig::from_hf_json(j, "bad/config.json"); };
  json j = tinyllama_json();
  j.erase("hidden_size");
  std::string msg = error_of<std::runtime_error>([&] { load(j); });
  EXPECT_NE(msg.find("hidden_size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad/config.json"), std::string::npos) << msg;

  j = tinyllama_json();
  j["hidden_act"] = "gelu";
  EXPECT_NE(error_of<std::runtime_error>([&] { load(j); }).find("hidden_act"), std::string::npos);

  j = tinyllama_json();
  j["pretraining_tp"] = 2;
  EXPECT_NE(error_of<std::runtime_error>([&] { load(j); }).find("pretraining_tp"), std::string::npos);

  j = tinyllama_json();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  EXPECT_NE(error_of<std::runtime_error>([&] { load(j); }).find("rope_scaling"), std::string::npos);

  j = tinyllama_json();
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0}};
  msg = error_of<std::runtime_error>([&] { load(j); });
  EXPECT_NE(msg.find("rope_parameters"), std::string::npos) << msg;
  EXPECT_NE(msg.find("llama3"), std::string::npos) << msg;

  j = tinyllama_json();
  j["num_key_value_heads"] = 5;  // does not divide 32
  EXPECT_NE(error_of<std::runtime_error>([&] { load(j); }).find("num_key_value_heads"), std::string::npos);

  j = tinyllama_json();
  j["vocab_size"] = "many";
  EXPECT_NE(error_of<std::runtime_error>([&] { load(j); }).find("vocab_size"), std::string::npos);
}

TEST(ModelConfig, ToHfJsonIsLoadableAndRoundTrips) {
  LlamaConfig c;
  c.vocab_size = 777;
  c.hidden_size = 96;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.intermediate_size = 250;
  c.num_hidden_layers = 3;
  c.tie_word_embeddings = true;
  c.mlp_bias = true;
  c.rope_theta = 12345.0;
  c.rms_norm_eps = 1e-6;
  json j = c.to_hf_json();
  EXPECT_EQ(j.at("architectures"), json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(j.at("model_type"), "llama");
  EXPECT_EQ(j.at("hidden_act"), "silu");
  EXPECT_EQ(j.at("torch_dtype"), "float32");
  EXPECT_EQ(j.at("head_dim"), 16);
  LlamaConfig d = LlamaConfig::from_hf_json(json::parse(j.dump()), "roundtrip");
  EXPECT_EQ(d.to_hf_json(), j);
  EXPECT_EQ(d.num_parameters(), c.num_parameters());
}

TEST(ModelConfig, ParameterCountMatchesTinyStories) {
  // tinystories-260k: V 512, C 64, 5 layers, 8 / 4 heads, I 192, tied -> 279,232 parameters
  // (llama2.c's 281,280 also counts its 2,048 stored RoPE table entries).
  LlamaConfig c;
  c.vocab_size = 512;
  c.hidden_size = 64;
  c.intermediate_size = 192;
  c.num_hidden_layers = 5;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.tie_word_embeddings = true;
  EXPECT_EQ(c.num_parameters(), 279232);
}

TEST(ModelConfig, ShippedYamlSizesLoad) {
  const std::string dir = std::string(LORAZIP_SOURCE_DIR) + "/configs/";
  LlamaConfig tiny = LlamaConfig::from_yaml_file(dir + "model-tiny.yaml");
  EXPECT_EQ(tiny.vocab_size, 2048);
  EXPECT_EQ(tiny.hidden_size, 128);
  EXPECT_LT(tiny.num_key_value_heads, tiny.num_attention_heads);
  LlamaConfig small = LlamaConfig::from_yaml_file(dir + "model-small.yaml");
  EXPECT_EQ(small.vocab_size, 4096);
  EXPECT_EQ(small.hidden_size, 256);
  EXPECT_EQ(small.num_hidden_layers, 4);
  EXPECT_EQ(small.num_attention_heads, 8);
  EXPECT_EQ(small.num_key_value_heads, 4);
  EXPECT_EQ(small.intermediate_size, 688);
  EXPECT_EQ(small.max_position_embeddings, 512);
}

TEST(ModelConfig, YamlIsStrict) {
  auto parse = [](const std::string& text) {
    lorazip::YamlMap m = lorazip::YamlMap::load_string(text, "sizes.yaml");
    return LlamaConfig::from_yaml(m);
  };
  LlamaConfig c = parse("hidden_size: 64\nnum_attention_heads: 4\nnum_key_value_heads: 2\n");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.vocab_size, LlamaConfig().vocab_size);  // defaults kept

  std::string msg = error_of<std::invalid_argument>([&] { parse("hidden_size: 64\nhiden_layers: 3\n"); });
  EXPECT_NE(msg.find("hiden_layers"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sizes.yaml:2"), std::string::npos) << msg;

  msg = error_of<std::invalid_argument>([&] { parse("vocab_size: big\n"); });
  EXPECT_NE(msg.find("vocab_size"), std::string::npos) << msg;

  msg = error_of<std::invalid_argument>([&] { parse("hidden_size: 100\nnum_attention_heads: 3\nnum_key_value_heads: 3\n"); });
  EXPECT_NE(msg.find("num_attention_heads"), std::string::npos) << msg;
}
