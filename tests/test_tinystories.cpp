// The real, externally trained TinyStories Llama (../shared/models/tinystories-260k-hf) loads and
// reproduces an independent float64 Hugging Face-convention forward pass: the argmax at every
// position, each log-prob to float32 precision, and the mean bits/token; the coding engine's
// step() (the inference path) reproduces llama2.c's greedy continuation from BOS, in every stream
// of a batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "runtime/model_setup.h"
#include "common/fs.h"
#include "model/checkpoint.h"

using namespace lorazip;
using nlohmann::json;

namespace {

const std::string kDir = std::string(LORAZIP_SHARED_DIR) + "/models/tinystories-260k-hf";

std::vector<int64_t> ids_of(const json& j, const char* key) { return j.at(key).get<std::vector<int64_t>>(); }

}  // namespace

TEST(TinyStories, ForwardMatchesFloat64Reference) {
  if (!file_exists(kDir + "/config.json")) GTEST_SKIP() << "../shared not found: " << kDir;
  LlamaForCausalLM m = load_hf_model(kDir);
  m->eval();
  EXPECT_TRUE(m->config().tie_word_embeddings);
  EXPECT_EQ(m->config().num_key_value_heads, 4);

  json ref = json::parse(read_file(kDir + "/reference_logprobs.json"));
  std::vector<int64_t> ids = ids_of(ref, "ids");
  std::vector<double> want_lp = ref.at("next_token_logprob_nats").get<std::vector<double>>();
  std::vector<int64_t> want_argmax = ids_of(ref, "argmax_next");
  const double want_bits = ref.at("mean_bits_per_token").get<double>();
  ASSERT_EQ(ids.size(), 256u);
  ASSERT_EQ(want_lp.size(), ids.size() - 1);

  torch::NoGradGuard ng;
  torch::Tensor tokens = torch::tensor(ids, torch::kLong).unsqueeze(0);  // (1, T)
  torch::Tensor logp = torch::log_softmax(m->forward(tokens)[0], -1);   // (T, V)
  torch::Tensor argmax = logp.argmax(-1);
  double sum = 0, worst = 0;
  int argmax_mismatches = 0;
  for (size_t t = 0; t + 1 < ids.size(); ++t) {
    const double lp = logp[t][ids[t + 1]].item<double>();
    worst = std::max(worst, std::fabs(lp - want_lp[t]));
    sum += lp;
    if (argmax[t].item<int64_t>() != want_argmax[t]) {
      ++argmax_mismatches;
      ADD_FAILURE() << "argmax differs at position " << t << ": " << argmax[t].item<int64_t>() << " vs "
                    << want_argmax[t];
    }
  }
  EXPECT_EQ(argmax_mismatches, 0);
  EXPECT_LT(worst, 1e-4) << "largest |log-prob - reference| in nats";
  const double bits = -sum / static_cast<double>(want_lp.size()) / std::log(2.0);
  EXPECT_NEAR(bits, want_bits, 1e-5);
}

TEST(TinyStories, EngineStepReproducesGreedyContinuationInEveryStream) {
  if (!file_exists(kDir + "/config.json")) GTEST_SKIP() << "../shared not found: " << kDir;
  const LoadedModel base = load_model(kDir);
  const std::shared_ptr<const engine::Model> m = base.engine_model();
  json ref = json::parse(read_file(kDir + "/reference_greedy.json"));
  std::vector<int64_t> want = ids_of(ref, "ids");
  const int64_t bos = ref.at("bos_id").get<int64_t>();
  ASSERT_EQ(static_cast<int64_t>(want.size()), ref.at("steps").get<int64_t>());

  const int64_t B = 3, V = base.config.vocab_size;
  engine::Cache cache = m->new_cache(B, base.config.max_position_embeddings);
  std::vector<int32_t> tok(static_cast<size_t>(B), static_cast<int32_t>(bos));
  std::vector<float> logits(static_cast<size_t>(B * V));
  for (size_t s = 0; s < want.size(); ++s) {
    m->step(tok.data(), cache, logits.data());
    for (int64_t b = 0; b < B; ++b) {
      const float* row = logits.data() + b * V;
      tok[static_cast<size_t>(b)] = static_cast<int32_t>(std::max_element(row, row + V) - row);
      ASSERT_EQ(tok[static_cast<size_t>(b)], want[s]) << "stream " << b << ", step " << s;
    }
  }
  for (int64_t b = 0; b < B; ++b) EXPECT_EQ(cache.length[static_cast<size_t>(b)], static_cast<int64_t>(want.size()));
}
