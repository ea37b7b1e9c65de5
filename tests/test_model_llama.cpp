// LlamaForCausalLM: the state dict is the HF key list; the incremental step() path gives the same
// logits as the whole-sequence forward(); attention is causal; seeded init is reproducible; the
// LoRA side path of Linear behaves as PEFT's (zero B changes nothing, merged = folded into W).
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

// Runs step() over every position of `tokens` (B, T) and stacks the logits to (B, T, V).
torch::Tensor run_steps(LlamaForCausalLM& m, const torch::Tensor& tokens) {
  KVCache cache = m->new_cache(tokens.size(0), tokens.size(1));
  std::vector<torch::Tensor> out;
  for (int64_t t = 0; t < tokens.size(1); ++t) out.push_back(m->step(tokens.select(1, t), cache));
  EXPECT_EQ(cache.length, tokens.size(1));
  return torch::stack(out, 1);
}

void expect_step_matches_forward(const LlamaConfig& c, uint64_t seed) {
  LlamaForCausalLM m(c);
  m->init_weights(seed, 0.3);  // large weights so that attention is far from uniform
  m->eval();
  torch::manual_seed(seed);
  torch::Tensor tokens = torch::randint(0, c.vocab_size, {3, 23}, torch::kLong);
  torch::Tensor full;
  {
    torch::NoGradGuard ng;
    full = m->forward(tokens);
  }
  ASSERT_EQ(full.sizes(), (std::vector<int64_t>{3, 23, c.vocab_size}));
  EXPECT_EQ(full.scalar_type(), torch::kFloat);
  const double scale = full.abs().max().item<double>();
  EXPECT_GT(scale, 1.0);
  for (bool fast : {true, false}) {
    m->set_fast_step(fast);
    torch::Tensor inc = run_steps(m, tokens);
    const double diff = (full - inc).abs().max().item<double>();
    EXPECT_LT(diff, 1e-5 * scale) << "max |forward - step| = " << diff << " at logit scale " << scale
                                  << (fast ? " (fused CPU step)" : " (plain libtorch step)");
  }
  m->set_fast_step(true);
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

TEST(Llama, StepMatchesForwardWithGroupedQueryAttention) { expect_step_matches_forward(small_config(false, 2), 1); }
TEST(Llama, StepMatchesForwardWithTiedEmbeddings) { expect_step_matches_forward(small_config(true, 1), 2); }
TEST(Llama, StepMatchesForwardMultiHeadWithBiases) { expect_step_matches_forward(small_config(false, 4, true), 3); }

TEST(Llama, FusedStepIgnoresThreadCountAndWorksWithAdapters) {
  LlamaConfig c = small_config(false, 2, true);
  LlamaForCausalLM m(c);
  m->init_weights(4, 0.3);
  torch::Tensor tokens = torch::randint(0, c.vocab_size, {4, 9}, torch::kLong);
  set_torch_threads(1);
  torch::Tensor one = run_steps(m, tokens);
  set_torch_threads(2);
  torch::Tensor two = run_steps(m, tokens);
  set_torch_threads(1);
  EXPECT_TRUE(torch::equal(one, two)) << "step() logits changed with the thread count";

  // An attached (unmerged) adapter on every projection takes the general Linear path.
  for (auto& p : m->projections()) {
    p.second->lora_A = torch::randn({2, p.second->in_features}) * 0.3;
    p.second->lora_B = torch::randn({p.second->out_features, 2}) * 0.3;
    p.second->lora_scaling = 2.0;
  }
  m->eval();
  torch::Tensor full;
  {
    torch::NoGradGuard ng;
    full = m->forward(tokens);
  }
  torch::Tensor inc = run_steps(m, tokens);
  EXPECT_FALSE(torch::allclose(full, one, 1e-3, 1e-3)) << "the adapter should change the logits";
  EXPECT_LT((full - inc).abs().max().item<double>(), 1e-5 * full.abs().max().item<double>());

  // step() never applies the adapter's dropout, even on a model left in training mode.
  for (auto& p : m->projections()) p.second->lora_dropout = 0.5;
  m->train();
  EXPECT_TRUE(torch::equal(run_steps(m, tokens), inc));
  m->set_fast_step(false);
  EXPECT_LT((run_steps(m, tokens) - inc).abs().max().item<double>(), 1e-5 * full.abs().max().item<double>());
  m->set_fast_step(true);
  m->eval();
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

TEST(Llama, StepRefusesMisuse) {
  LlamaConfig c = small_config(false);
  LlamaForCausalLM m(c);
  m->init_weights(1);
  KVCache cache = m->new_cache(2, 3);
  torch::Tensor t = torch::tensor({1, 2}, torch::kLong);
  for (int i = 0; i < 3; ++i) m->step(t, cache);
  EXPECT_THROW(m->step(t, cache), std::invalid_argument);  // full
  KVCache fresh = m->new_cache(2, 3);
  EXPECT_THROW(m->step(torch::tensor({1, 2, 3}, torch::kLong), fresh), std::invalid_argument);  // batch
  EXPECT_THROW(m->step(torch::tensor({1, 97}, torch::kLong), fresh), std::invalid_argument);    // vocab
  EXPECT_THROW(m->new_cache(2, 41), std::invalid_argument);
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

  lin->lora_merged = true;  // side path ignored: the caller has folded it into weight
  EXPECT_TRUE(torch::allclose(lin->forward(x), base, 0, 0));
  // The side path is not part of the state dict.
  EXPECT_EQ(lin->named_parameters().size(), 2u);
}

TEST(Llama, SetTorchThreads) {
  EXPECT_EQ(set_torch_threads(1), 1);
  EXPECT_GE(set_torch_threads(0), 1);
  set_torch_threads(1);
}
