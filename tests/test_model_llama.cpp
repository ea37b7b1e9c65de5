// LlamaForCausalLM (libtorch, for training): the state dict is the HF key list; attention is
// causal; seeded init is reproducible; forward() refuses misuse; the LoRA side path of Linear
// behaves as PEFT's (zero B changes nothing). Its agreement with the coding engine is test_engine's.
#include <gtest/gtest.h>

#include <algorithm>

#include "model/llama.h"

using namespace lorazip;

namespace {

LlamaConfig small_config(bool tie, int64_t kv_heads = 2, bool bias = false) {
  LlamaConfig c;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.max_position_embeddings = 40;
  c.tie_word_embeddings = tie;
  c.attention_bias = bias;
  c.mlp_bias = bias;
  return c;
}

std::vector<std::string> expected_keys(const LlamaConfig& c) {
  std::vector<std::string> k{"model.embed_tokens.weight"};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    k.push_back(p + "input_layernorm.weight");
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      k.push_back(p + "self_attn." + proj + ".weight");
      if (c.attention_bias) k.push_back(p + "self_attn." + proj + ".bias");
    }
    k.push_back(p + "post_attention_layernorm.weight");
    for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) {
      k.push_back(p + "mlp." + proj + ".weight");
      if (c.mlp_bias) k.push_back(p + "mlp." + proj + ".bias");
    }
  }
  k.push_back("model.norm.weight");
  if (!c.tie_word_embeddings) k.push_back("lm_head.weight");
  return k;
}

std::vector<std::string> param_names(LlamaForCausalLM& m) {
  std::vector<std::string> names;
  for (auto& kv : m->named_parameters(true)) names.push_back(kv.key());
  return names;
}

}  // namespace

TEST(Llama, ParameterNamesAreTheHfKeys) {
  for (bool tie : {false, true}) {
    LlamaConfig c = small_config(tie);
    LlamaForCausalLM m(c);
    EXPECT_EQ(param_names(m), expected_keys(c)) << "tie=" << tie;
    int64_t n = 0;
    for (auto& p : m->parameters()) n += p.numel();
    EXPECT_EQ(n, c.num_parameters());
  }
  LlamaConfig c = small_config(false, 2, true);
  LlamaForCausalLM m(c);
  EXPECT_EQ(param_names(m), expected_keys(c));
  EXPECT_TRUE(m->named_buffers().is_empty());
}

TEST(Llama, ParameterShapesFollowTheConfig) {
  LlamaConfig c = small_config(false);
  LlamaForCausalLM m(c);
  auto p = m->named_parameters();
  EXPECT_EQ(p["model.embed_tokens.weight"].sizes(), (std::vector<int64_t>{97, 32}));
  EXPECT_EQ(p["model.layers.1.self_attn.q_proj.weight"].sizes(), (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(p["model.layers.1.self_attn.k_proj.weight"].sizes(), (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(p["model.layers.1.self_attn.v_proj.weight"].sizes(), (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(p["model.layers.1.self_attn.o_proj.weight"].sizes(), (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(p["model.layers.0.mlp.gate_proj.weight"].sizes(), (std::vector<int64_t>{48, 32}));
  EXPECT_EQ(p["model.layers.0.mlp.down_proj.weight"].sizes(), (std::vector<int64_t>{32, 48}));
  EXPECT_EQ(p["lm_head.weight"].sizes(), (std::vector<int64_t>{97, 32}));
  auto proj = m->projections();
  ASSERT_EQ(proj.size(), 14u);
  EXPECT_EQ(proj[0].first, "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(proj[6].first, "model.layers.0.mlp.down_proj");
  EXPECT_EQ(proj[13].first, "model.layers.1.mlp.down_proj");
  EXPECT_TRUE(proj[1].second->weight.is_same(p["model.layers.0.self_attn.k_proj.weight"]));
}

TEST(Llama, AttentionIsCausal) {
  LlamaConfig c = small_config(false);
  LlamaForCausalLM m(c);
  m->init_weights(5, 0.3);
  torch::NoGradGuard ng;
  torch::Tensor a = torch::randint(0, c.vocab_size, {1, 12}, torch::kLong);
  torch::Tensor b = a.clone();
  b.narrow(1, 7, 5).fill_(3);
  torch::Tensor la = m->forward(a), lb = m->forward(b);
  EXPECT_TRUE(torch::allclose(la.narrow(1, 0, 7), lb.narrow(1, 0, 7), 0, 0));
  EXPECT_FALSE(torch::allclose(la.narrow(1, 7, 5), lb.narrow(1, 7, 5)));
  // Streams in a batch do not see each other.
  torch::Tensor ab = m->forward(torch::cat({a, b}, 0));
  EXPECT_TRUE(torch::allclose(ab[0], la[0], 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(ab[1], lb[0], 1e-5, 1e-5));
}

TEST(Llama, InitWeightsIsSeeded) {
  LlamaConfig c = small_config(false);
  LlamaForCausalLM a(c), b(c), d(c);
  a->init_weights(42, 0.02);
  b->init_weights(42, 0.02);
  d->init_weights(43, 0.02);
  auto pa = a->named_parameters(), pb = b->named_parameters(), pd = d->named_parameters();
  for (const auto& kv : pa) {
    EXPECT_TRUE(torch::equal(kv.value(), pb[kv.key()])) << kv.key();
    if (kv.key().find("norm") != std::string::npos) {
      EXPECT_TRUE(torch::equal(kv.value(), torch::ones_like(kv.value()))) << kv.key();
    } else {
      EXPECT_FALSE(torch::equal(kv.value(), pd[kv.key()])) << kv.key();
      EXPECT_NEAR(kv.value().std().item<double>(), 0.02, 0.004) << kv.key();
    }
  }
}

TEST(Llama, ForwardRefusesMisuse) {
  LlamaConfig c = small_config(false);
  LlamaForCausalLM m(c);
  m->init_weights(1);
  EXPECT_THROW(m->forward(torch::tensor({1, 2}, torch::kLong)), std::invalid_argument);  // not (B, T)
  EXPECT_THROW(m->forward(torch::zeros({1, 41}, torch::kLong)), std::invalid_argument);
  EXPECT_THROW(m->forward(torch::full({1, 4}, -1, torch::kLong)), std::invalid_argument);
}

TEST(Llama, LoraSidePathOnLinear) {
  torch::manual_seed(0);
  Linear lin(8, 6, true);
  {
    torch::NoGradGuard ng;
    lin->weight.normal_();
    lin->bias.normal_();
  }
  torch::Tensor x = torch::randn({5, 8});
  torch::Tensor base = lin->forward(x);
  EXPECT_TRUE(torch::allclose(base, torch::matmul(x, lin->weight.t()) + lin->bias, 1e-5, 1e-5));

  lin->lora_A = torch::randn({2, 8});
  lin->lora_B = torch::zeros({6, 2});
  lin->lora_scaling = 4.0;
  EXPECT_TRUE(torch::allclose(lin->forward(x), base, 0, 0)) << "B = 0 must leave the output unchanged";

  lin->lora_B = torch::randn({6, 2});
  torch::Tensor want = base + torch::matmul(torch::matmul(x, lin->lora_A.t()), lin->lora_B.t()) * 4.0;
  EXPECT_TRUE(torch::allclose(lin->forward(x), want, 1e-5, 1e-5));

  // Dropout on the side path only while training.
  lin->lora_dropout = 0.5;
  lin->eval();
  EXPECT_TRUE(torch::allclose(lin->forward(x), want, 1e-5, 1e-5));
  lin->train();
  EXPECT_FALSE(torch::allclose(lin->forward(x), want, 1e-5, 1e-5));
  lin->eval();

  // The side path is not part of the state dict.
  EXPECT_EQ(lin->named_parameters().size(), 2u);
}

TEST(Llama, SetTorchThreads) {
  EXPECT_EQ(set_torch_threads(1), 1);
  EXPECT_GE(set_torch_threads(0), 1);
  set_torch_threads(1);
}
