// The coding engine against libtorch: the same Llama (GQA or MHA, biases, tied or untied head,
// head dims that are not multiples of 16, two RoPE bases) gives the same logits as
// LlamaForCausalLM::forward to float32 noise, with and without a LoRA adapter (merged by the
// engine, attached unmerged in libtorch); the engine's softmax and code lengths agree with a
// double-precision reference. Bit identity across ISAs, threads and batches is engine_hash's job.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>
#include <vector>

#include "adapters/adapter.h"
#include "codec/engine/engine.h"
#include "runtime/model_setup.h"
#include "train/torch_base.h"
#include "model/llama.h"

using namespace lorazip;

namespace {

struct Variant {
  const char* name;
  LlamaConfig cfg;
};

std::vector<Variant> variants() {
  LlamaConfig a;  // GQA, biases, untied, head_dim 16
  a.vocab_size = 300;
  a.hidden_size = 64;
  a.intermediate_size = 136;
  a.num_hidden_layers = 2;
  a.num_attention_heads = 4;
  a.num_key_value_heads = 2;
  a.max_position_embeddings = 96;
  a.attention_bias = true;
  a.mlp_bias = true;
  LlamaConfig b = a;  // MHA, tied, head_dim 8, a large RoPE base, no biases
  b.hidden_size = 48;
  b.num_attention_heads = 6;
  b.num_key_value_heads = 6;
  b.tie_word_embeddings = true;
  b.attention_bias = false;
  b.mlp_bias = false;
  b.rope_theta = 500000.0;
  b.max_position_embeddings = 200;
  return {{"gqa_bias_untied", a}, {"mha_tied_hd8", b}};
}

LlamaForCausalLM make_model(const LlamaConfig& cfg, uint64_t seed) {
  LlamaForCausalLM m(cfg);
  m->init_weights(seed, 0.08);
  torch::NoGradGuard ng;
  torch::manual_seed(static_cast<int64_t>(seed));
  for (auto& p : m->named_parameters(true)) {
    const std::string& k = p.key();
    if (k.size() > 5 && k.compare(k.size() - 5, 5, ".bias") == 0) p.value().copy_(torch::randn(p.value().sizes()) * 0.05);
    if (k.find("norm.weight") != std::string::npos) p.value().add_(torch::randn(p.value().sizes()) * 0.1);
  }
  m->eval();
  return m;
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

// max |engine - torch| / max |torch| over every logit of a T-token sequence.
double relative_logit_error(LlamaForCausalLM& torch_model, const engine::Model& eng, const std::vector<int32_t>& toks) {
  const int64_t T = static_cast<int64_t>(toks.size()), V = eng.config().vocab_size;
  std::vector<float> e(static_cast<size_t>(T * V));
  eng.forward(toks.data(), T, e.data());
  torch::NoGradGuard ng;
  torch::Tensor ids = torch::tensor(std::vector<int64_t>(toks.begin(), toks.end())).view({1, T});
  torch::Tensor ref = torch_model->forward(ids).view({T, V}).contiguous();
  torch::Tensor got = torch::from_blob(e.data(), {T, V}, torch::kFloat);
  return (got - ref).abs().max().item<double>() / ref.abs().max().item<double>();
}

}  // namespace

TEST(EngineVsLibtorch, LogitsAgreeToFloatNoise) {
  for (const Variant& v : variants()) {
    LlamaForCausalLM m = make_model(v.cfg, 3);
    auto eng = engine_model(m);
    const auto toks = random_tokens(v.cfg.max_position_embeddings, v.cfg.vocab_size, 5);
    const double err = relative_logit_error(m, *eng, toks);
    std::printf("%s: %lld positions, max |engine - libtorch| / max |logit| = %.2e\n", v.name,
                (long long)toks.size(), err);
    EXPECT_LT(err, 1e-5) << v.name;
  }
}

TEST(EngineVsLibtorch, MergedAdapterMatchesTheAttachedSidePath) {
  const Variant v = variants()[0];
  LlamaForCausalLM m = make_model(v.cfg, 7);
  LoraConfig lc;
  lc.r = 4;
  lc.seed = 9;
  LoraAdapter a(m, lc);
  {
    torch::NoGradGuard ng;
    torch::manual_seed(11);
    for (auto& [k, t] : a.state_dict())
      if (k.find("lora_B") != std::string::npos) t.copy_(torch::randn(t.sizes()) * 0.1);
  }
  auto base_engine = engine_model(m);
  auto adapted = engine_model(m, &a);  // the engine merges; libtorch runs the side path
  a.attach(m);
  m->eval();
  const auto toks = random_tokens(64, v.cfg.vocab_size, 13);
  const double err = relative_logit_error(m, *adapted, toks);
  const double moved = relative_logit_error(m, *base_engine, toks);
  std::printf("adapter: engine merged vs libtorch side path %.2e; without the adapter %.2e\n", err, moved);
  EXPECT_LT(err, 1e-5);
  EXPECT_GT(moved, 1e-3) << "the adapter must change the logits, or this test shows nothing";
  a.detach();
}

TEST(EngineArithmetic, SoftmaxAndCodeLengthsMatchADoubleReference) {
  std::mt19937 rng(21);
  std::uniform_real_distribution<double> u(-100.0, 40.0);
  const int64_t V = 4099;
  std::vector<float> logits(static_cast<size_t>(V)), probs(static_cast<size_t>(V));
  for (auto& x : logits) x = static_cast<float>(u(rng));
  logits[17] = 41.0f;  // one clear maximum
  engine::softmax(logits.data(), V, probs.data());
  // The reference starts from the same float32 differences x - max (their rounding, up to 2^-17
  // relative, is float32 softmax's own) and is exact from there on.
  float mx = logits[0];
  for (float x : logits) mx = std::max(mx, x);
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x - mx));
  double worst = 0;
  for (int64_t i = 0; i < V; ++i) {
    const double ref = std::exp(static_cast<double>(logits[static_cast<size_t>(i)] - mx)) / sum;
    if (ref < 1e-30) continue;  // below what the clamped exp keeps
    worst = std::max(worst, std::fabs(probs[static_cast<size_t>(i)] - ref) / ref);
    const double bits = engine::code_length_bits(static_cast<float>(ref));
    ASSERT_NEAR(bits, -std::log2(static_cast<double>(static_cast<float>(ref))), 1e-12) << i;
  }
  std::printf("softmax: worst relative error %.2e over %lld probabilities\n", worst, (long long)V);
  EXPECT_LT(worst, 2e-6);
  EXPECT_EQ(engine::code_length_bits(0.0f), 1075.0);
  EXPECT_EQ(engine::code_length_bits(1.0f), 0.0);
  EXPECT_EQ(engine::code_length_bits(0.5f), 1.0);
}

TEST(EngineArithmetic, ForcedIsaIsRefusedWhenUnavailableAndRoundTripsByName) {
  for (engine::Isa isa : {engine::Isa::Scalar, engine::Isa::Sse2, engine::Isa::Avx2, engine::Isa::Avx512, engine::Isa::Neon}) {
    if (engine::isa_available(isa)) {
      EXPECT_NO_THROW(engine::set_isa(isa)) << engine::isa_name(isa);
    } else {
      EXPECT_THROW(engine::set_isa(isa), std::invalid_argument) << engine::isa_name(isa);
    }
  }
  engine::set_isa(engine::Isa::Scalar);
  EXPECT_EQ(engine::select_isa(), engine::Isa::Scalar);
}

TEST(EngineModel, MissingOrMisshapenTensorsAreNamed) {
  const Variant v = variants()[0];
  LlamaForCausalLM m = make_model(v.cfg, 1);
  LlamaConfig bigger = v.cfg;
  bigger.intermediate_size += 1;
  LlamaForCausalLM other(bigger);
  LoraConfig lc;
  lc.r = 2;
  LoraAdapter wrong(other, lc);  // shapes of another model
  try {
    engine_model(m, &wrong);
    ADD_FAILURE() << "an adapter for another model was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("another base model"), std::string::npos) << e.what();
  }
}
