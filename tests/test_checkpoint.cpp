// Checkpoints: save -> load gives identical tensors and fingerprint (single file, sharded, tied);
// F16 / BF16 checkpoints load; a checkpoint with a missing, unexpected or wrong-shaped tensor is
// refused naming that tensor; the fingerprint of a model equals that of its file's tensors.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "common/fs.h"
#include "model/checkpoint.h"
#include "model/bpe_tokenizer.h"
#include "model/tokenizer.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

// A byte-level BPE tokenizer of 256 byte tokens plus BOS / EOS (what a GGUF base brings).
std::shared_ptr<Tokenizer> tiny_tokenizer() {
  BpeDefinition d;
  int next = 0;
  for (int b = 0; b < 256; ++b) {
    // GPT-2's byte-to-symbol map: printable Latin-1 stays, the rest moves to U+0100 onwards.
    const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const int cp = keep ? b : 0x100 + next++;
    std::string sym;
    if (cp < 0x80) sym += static_cast<char>(cp);
    else {
      sym += static_cast<char>(0xC0 | (cp >> 6));
      sym += static_cast<char>(0x80 | (cp & 0x3F));
    }
    d.tokens.push_back(sym);
    d.types.push_back(kBpeNormal);
  }
  d.tokens.push_back("<|im_start|>");
  d.types.push_back(kBpeControl);
  d.tokens.push_back("<|im_end|>");
  d.types.push_back(kBpeControl);
  d.bos_id = 256;
  d.eos_id = 257;
  return std::make_shared<Tokenizer>(Tokenizer::from_bpe(d, "tiny"));
}

LlamaConfig tiny(bool tie) {
  LlamaConfig c;
  c.vocab_size = 61;
  c.hidden_size = 24;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 16;
  c.tie_word_embeddings = tie;
  return c;
}

class Checkpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    root = (fs::temp_directory_path() / ("lorazip_ckpt_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(root);
    fs::create_directories(root);
  }
  void TearDown() override { fs::remove_all(root); }
  std::string root;
};

void expect_same_weights(LlamaForCausalLM& a, LlamaForCausalLM& b) {
  auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& kv : pa) {
    ASSERT_TRUE(pb.contains(kv.key())) << kv.key();
    EXPECT_TRUE(torch::equal(kv.value(), pb[kv.key()])) << kv.key();
  }
}

// A model directory written by hand: config + one safetensors file with the given tensors.
void write_dir(const std::string& dir, const LlamaConfig& c, const std::map<std::string, RawTensor>& tensors) {
  fs::create_directories(dir);
  write_file_atomic(dir + "/config.json", c.to_hf_json().dump());
  SafetensorsFile f;
  f.tensors = tensors;
  write_safetensors(dir + "/model.safetensors", f);
}

std::map<std::string, RawTensor> raw_params(LlamaForCausalLM& m) {
  std::map<std::string, RawTensor> out;
  for (auto& kv : m->named_parameters()) out[kv.key()] = to_raw(kv.value());
  return out;
}

std::string load_error(const std::string& dir) {
  try {
    load_hf_model(dir);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "<loaded>";
}

}  // namespace

TEST_F(Checkpoint, SaveLoadRoundTrip) {
  for (bool tie : {false, true}) {
    LlamaForCausalLM m(tiny(tie));
    m->init_weights(7);
    const std::string dir = root + (tie ? "/tied" : "/untied");
    const std::string tok = tiny_tokenizer()->model_bytes();
    save_hf_model(m, dir, tok);
    EXPECT_EQ(read_file(dir + "/tokenizer.json"), tok);
    // AutoTokenizer's files beside it: the class, BOS / EOS by their text, the model's context.
    const auto tc = nlohmann::json::parse(read_file(dir + "/tokenizer_config.json"));
    EXPECT_EQ(tc.at("tokenizer_class"), "PreTrainedTokenizerFast");
    EXPECT_EQ(tc.at("bos_token"), "<|im_start|>");
    EXPECT_EQ(tc.at("eos_token"), "<|im_end|>");
    EXPECT_EQ(tc.at("model_max_length"), m->config().max_position_embeddings);
    EXPECT_EQ(nlohmann::json::parse(read_file(dir + "/special_tokens_map.json")).at("bos_token"), "<|im_start|>");
    SafetensorsFile f = read_safetensors(dir + "/model.safetensors");
    EXPECT_EQ(f.metadata.at("format"), "pt");
    EXPECT_EQ(f.tensors.count("lm_head.weight"), tie ? 0u : 1u);
    for (const auto& kv : f.tensors) EXPECT_EQ(kv.second.dtype, DType::F32) << kv.first;

    LlamaForCausalLM back = load_hf_model(dir);
    EXPECT_EQ(back->config().to_hf_json(), m->config().to_hf_json());
    expect_same_weights(m, back);
    EXPECT_EQ(model_fingerprint(back), model_fingerprint(m));
    EXPECT_EQ(tensors_fingerprint(f.tensors), model_fingerprint(m));
    EXPECT_EQ(model_fingerprint(m).size(), 64u);
  }
}

TEST_F(Checkpoint, FingerprintChangesWithAnyWeight) {
  LlamaForCausalLM m(tiny(false));
  m->init_weights(1);
  std::string before = model_fingerprint(m);
  {
    torch::NoGradGuard ng;
    m->named_parameters()["model.layers.1.mlp.up_proj.weight"][3][5] += 1e-6f;
  }
  EXPECT_NE(model_fingerprint(m), before);
}

TEST_F(Checkpoint, ShardedSaveAndLoad) {
  LlamaForCausalLM m(tiny(false));
  m->init_weights(3);
  const std::string dir = root + "/sharded";
  save_hf_model(m, dir, "", /*max_shard_bytes=*/8000);
  EXPECT_FALSE(file_exists(dir + "/model.safetensors"));
  EXPECT_FALSE(file_exists(dir + "/tokenizer.json"));
  EXPECT_FALSE(file_exists(dir + "/tokenizer_config.json"));
  auto index = nlohmann::json::parse(read_file(dir + "/model.safetensors.index.json"));
  int64_t total = 0;
  for (auto& kv : m->named_parameters()) total += kv.value().numel() * 4;
  EXPECT_EQ(index.at("metadata").at("total_size"), total);
  std::set<std::string> shards;
  for (auto it = index.at("weight_map").begin(); it != index.at("weight_map").end(); ++it)
    shards.insert(it.value().get<std::string>());
  ASSERT_GT(shards.size(), 2u);
  const std::string n = std::to_string(shards.size());
  EXPECT_EQ(*shards.begin(), "model-00001-of-0000" + n + ".safetensors");
  for (const auto& s : shards) EXPECT_TRUE(file_exists(dir + "/" + s)) << s;

  LlamaForCausalLM back = load_hf_model(dir);
  expect_same_weights(m, back);
  EXPECT_EQ(model_fingerprint(back), model_fingerprint(m));

  // A shard that is gone is named.
  fs::remove(dir + "/" + *shards.rbegin());
  std::string msg = load_error(dir);
  EXPECT_NE(msg.find(*shards.rbegin()), std::string::npos) << msg;
}

TEST_F(Checkpoint, SaveReplacesAtomicallyAndLeavesNoTemporaries) {
  LlamaForCausalLM a(tiny(false)), b(tiny(false));
  a->init_weights(1);
  b->init_weights(2);
  const std::string dir = root + "/model";
  save_hf_model(a, dir, tiny_tokenizer()->model_bytes());
  ASSERT_TRUE(file_exists(dir + "/tokenizer_config.json"));
  save_hf_model(b, dir, "");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_FALSE(file_exists(dir + "/" + f)) << f;  // the directory was replaced as a whole
  LlamaForCausalLM back = load_hf_model(dir);
  EXPECT_EQ(model_fingerprint(back), model_fingerprint(b));
  size_t entries = 0;
  for (auto& e : fs::directory_iterator(root)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
}

TEST_F(Checkpoint, LoadsHalfAndBfloat16Weights) {
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    LlamaForCausalLM m(tiny(false));
    m->init_weights(5);
    std::map<std::string, RawTensor> t;
    for (auto& kv : m->named_parameters()) t[kv.key()] = to_raw(kv.value().to(dtype));
    EXPECT_EQ(t.begin()->second.dtype, dtype == torch::kHalf ? DType::F16 : DType::BF16);
    const std::string dir = root + (dtype == torch::kHalf ? "/f16" : "/bf16");
    write_dir(dir, m->config(), t);
    LlamaForCausalLM back = load_hf_model(dir);
    for (auto& kv : m->named_parameters())
      EXPECT_TRUE(torch::equal(back->named_parameters()[kv.key()], kv.value().to(dtype).to(torch::kFloat))) << kv.key();
  }
}

TEST_F(Checkpoint, RefusesMissingUnexpectedAndMisshapenTensors) {
  LlamaForCausalLM m(tiny(false));
  m->init_weights(9);
  auto good = raw_params(m);

  auto t = good;
  t.erase("model.layers.1.self_attn.v_proj.weight");
  write_dir(root + "/missing", m->config(), t);
  std::string msg = load_error(root + "/missing");
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.layers.1.self_attn.v_proj.weight"), std::string::npos) << msg;

  t = good;
  t.erase("lm_head.weight");
  write_dir(root + "/nohead", m->config(), t);
  msg = load_error(root + "/nohead");
  EXPECT_NE(msg.find("lm_head.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tie_word_embeddings"), std::string::npos) << msg;

  t = good;
  t["model.layers.0.self_attn.extra.weight"] = to_raw(torch::zeros({2}));
  write_dir(root + "/unexpected", m->config(), t);
  msg = load_error(root + "/unexpected");
  EXPECT_NE(msg.find("unexpected tensor 'model.layers.0.self_attn.extra.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;

  t = good;
  t["model.layers.0.mlp.up_proj.weight"] = to_raw(torch::zeros({40, 23}));
  write_dir(root + "/shape", m->config(), t);
  msg = load_error(root + "/shape");
  EXPECT_NE(msg.find("model.layers.0.mlp.up_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[40,23]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[40,24]"), std::string::npos) << msg;

  t = good;
  RawTensor ints;
  ints.dtype = DType::I32;
  ints.shape = {24};
  ints.data.assign(24 * 4, '\0');
  t["model.norm.weight"] = ints;
  write_dir(root + "/dtype", m->config(), t);
  msg = load_error(root + "/dtype");
  EXPECT_NE(msg.find("model.norm.weight"), std::string::npos) << msg;

  msg = load_error(root + "/nonexistent");
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  fs::create_directories(root + "/noweights");
  write_file_atomic(root + "/noweights/config.json", m->config().to_hf_json().dump());
  msg = load_error(root + "/noweights");
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST_F(Checkpoint, ToleratesRotaryInvFreqAndTiedHeadCopy) {
  LlamaForCausalLM m(tiny(true));
  m->init_weights(11);
  auto t = raw_params(m);
  t["model.layers.0.self_attn.rotary_emb.inv_freq"] = to_raw(torch::ones({3}));
  t["lm_head.weight"] = t.at("model.embed_tokens.weight");
  write_dir(root + "/legacy", m->config(), t);
  LlamaForCausalLM back = load_hf_model(root + "/legacy");
  expect_same_weights(m, back);

  t["lm_head.weight"] = to_raw(torch::zeros({61, 24}));
  write_dir(root + "/legacy2", m->config(), t);
  std::string msg = load_error(root + "/legacy2");
  EXPECT_NE(msg.find("lm_head.weight"), std::string::npos) << msg;
}

TEST_F(Checkpoint, RawConversions) {
  torch::Tensor x = torch::randn({3, 4});
  RawTensor r = to_raw(x);
  EXPECT_EQ(r.dtype, DType::F32);
  EXPECT_EQ(r.shape, (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(torch::equal(from_raw(r, "x"), x));
  EXPECT_TRUE(torch::equal(from_raw(to_raw(x.to(torch::kBFloat16)), "x"), x.to(torch::kBFloat16).to(torch::kFloat)));
  EXPECT_TRUE(torch::equal(from_raw(to_raw(x.t()), "xt"), x.t()));  // non-contiguous input
  EXPECT_EQ(tensors_fingerprint({{"x", r}}), tensors_fingerprint({{"x", to_raw(x.clone())}}));
  EXPECT_NE(tensors_fingerprint({{"x", r}}), tensors_fingerprint({{"y", r}}));
}
