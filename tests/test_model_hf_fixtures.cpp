// Model directories written by transformers' save_pretrained (tests/fixtures/hf-llama, made by
// make_fixtures.py with transformers 5.17): each loads, and lorazip's forward() gives
// transformers' float32 logits. Covers a v5 config with rope_parameters, tied embeddings, biases
// with an explicit head_dim, BF16 and F16 weights, and a sharded checkpoint; the safetensors files
// written by the reference implementation re-serialise byte for byte.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/fs.h"
#include "model/checkpoint.h"

using namespace lorazip;

namespace {

const std::string kFixtures = std::string(LORAZIP_SOURCE_DIR) + "/tests/fixtures/hf-llama/";

struct Expected {
  torch::Tensor tokens, logits;
};

Expected expected(const std::string& name) {
  SafetensorsFile f = read_safetensors(kFixtures + name + ".expected.safetensors");
  const RawTensor& t = f.tensors.at("tokens");
  EXPECT_EQ(t.dtype, DType::I64);
  Expected e;
  e.tokens = torch::from_blob(const_cast<char*>(t.data.data()), t.shape, torch::kLong).clone();
  e.logits = from_raw(f.tensors.at("logits"), "logits");
  return e;
}

// Loads fixture `name` and checks forward() against transformers' logits.
LlamaForCausalLM check_fixture(const std::string& name) {
  LlamaForCausalLM m = load_hf_model(kFixtures + name);
  m->eval();
  Expected e = expected(name);
  const double scale = e.logits.abs().max().item<double>();
  torch::Tensor full;
  {
    torch::NoGradGuard ng;
    full = m->forward(e.tokens);
  }
  EXPECT_LT((full - e.logits).abs().max().item<double>(), 1e-5 * scale) << name << " forward()";
  return m;
}

}  // namespace

TEST(HfFixtures, V5ConfigWithRopeParameters) {
  LlamaForCausalLM m = check_fixture("hf_gqa_theta");
  EXPECT_DOUBLE_EQ(m->config().rope_theta, 500000.0);
  EXPECT_EQ(m->config().num_key_value_heads, 2);
}

TEST(HfFixtures, TiedEmbeddings) {
  LlamaForCausalLM m = check_fixture("hf_tied_mha");
  EXPECT_TRUE(m->config().tie_word_embeddings);
  EXPECT_FALSE(m->named_parameters().contains("lm_head.weight"));
}

TEST(HfFixtures, BiasesAndExplicitHeadDim) {
  LlamaForCausalLM m = check_fixture("hf_bias_hd16");
  EXPECT_EQ(m->config().resolved_head_dim(), 16);
  EXPECT_EQ(m->named_parameters()["model.layers.0.self_attn.q_proj.weight"].sizes(), (std::vector<int64_t>{64, 32}));
  EXPECT_TRUE(m->named_parameters().contains("model.layers.1.mlp.down_proj.bias"));
}

TEST(HfFixtures, HalfPrecisionWeights) {
  check_fixture("hf_bf16");
  check_fixture("hf_f16");
  EXPECT_EQ(read_safetensors(kFixtures + "hf_bf16/model.safetensors").tensors.at("lm_head.weight").dtype, DType::BF16);
  EXPECT_EQ(read_safetensors(kFixtures + "hf_f16/model.safetensors").tensors.at("lm_head.weight").dtype, DType::F16);
}

TEST(HfFixtures, ShardedCheckpoint) {
  ASSERT_TRUE(file_exists(kFixtures + "hf_sharded/model.safetensors.index.json"));
  LlamaForCausalLM m = check_fixture("hf_sharded");
  EXPECT_EQ(m->config().num_hidden_layers, 3);
}

TEST(HfFixtures, ReferenceWrittenSafetensorsReserialiseByteForByte) {
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(kFixtures)) {
    if (e.path().extension() != ".safetensors") continue;
    std::string bytes = read_file(e.path().string());
    EXPECT_EQ(serialize_safetensors(parse_safetensors(bytes, e.path().string())), bytes) << e.path();
    ++files;
  }
  EXPECT_GE(files, 14);
}
