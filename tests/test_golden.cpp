// Golden files of the coding engine (arithmetic version 1): tests/golden/engine-v1/ holds a small
// SentencePiece tokenizer, a text, and that text compressed by the LM codec under a tiny Llama
// alone (base.lrz) and with a LoRA adapter (adapter.lrz). The model and the adapter are not stored:
// their weights come exactly from an integer PRNG (multiples of 1/256, the same floats everywhere).
// Today's code must decode each file to the text byte for byte, and compressing the text again
// must give each file byte for byte: any change to the engine's arithmetic, the quantizer, the
// coder or the container shows here. Torch-free.
//
// Regenerate (only with a new arithmetic or container version):
//   LORAZIP_WRITE_GOLDEN=1 build/bin/test_golden   (writes the tokenizer only when it is missing)
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "codec/container.h"
#include "codec/lm_codec.h"
#include "common/fs.h"
#include "common/hash.h"
#include "model/tokenizer.h"

using namespace lorazip;

namespace {

const std::string kDir = std::string(LORAZIP_SOURCE_DIR) + "/tests/golden/engine-v1";

struct Rng {  // splitmix64
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

// A tiny Llama (GQA, head_dim 8, untied) whose weights are k / 256 for k uniform in
// [-span, span] (norm weights 1 + k / 256), with an optional rank-4 adapter on every projection.
struct TinyModel {
  std::vector<std::vector<float>> store;
  engine::TensorMap map;
  std::vector<engine::LoraRef> lora;
  engine::Config cfg;

  TinyModel(int64_t vocab, int32_t bos, bool with_adapter) {
    cfg.vocab_size = vocab;
    cfg.hidden_size = 32;
    cfg.intermediate_size = 64;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 4;
    cfg.num_key_value_heads = 2;
    cfg.head_dim = 8;
    cfg.max_position_embeddings = 64;
    cfg.bos_token_id = bos;
    store.reserve(64);
    Rng rng{2024};
    auto add = [&](const std::string& key, std::vector<int64_t> shape, int span, float center) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      std::vector<float> v(static_cast<size_t>(n));
      for (auto& x : v) x = center + static_cast<float>(static_cast<int64_t>(rng.next() % (2 * span + 1)) - span) / 256.0f;
      store.push_back(std::move(v));
      return engine::TensorRef{shape, store.back().data()};
    };
    const int64_t C = 32, I = 64, D = 8;
    map["model.embed_tokens.weight"] = add("", {vocab, C}, 256, 0);
    for (int i = 0; i < 2; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      map[p + "input_layernorm.weight"] = add("", {C}, 32, 1);
      map[p + "post_attention_layernorm.weight"] = add("", {C}, 32, 1);
      map[p + "self_attn.q_proj.weight"] = add("", {4 * D, C}, 96, 0);
      map[p + "self_attn.k_proj.weight"] = add("", {2 * D, C}, 96, 0);
      map[p + "self_attn.v_proj.weight"] = add("", {2 * D, C}, 96, 0);
      map[p + "self_attn.o_proj.weight"] = add("", {C, 4 * D}, 96, 0);
      map[p + "mlp.gate_proj.weight"] = add("", {I, C}, 96, 0);
      map[p + "mlp.up_proj.weight"] = add("", {I, C}, 96, 0);
      map[p + "mlp.down_proj.weight"] = add("", {C, I}, 64, 0);
    }
    map["model.norm.weight"] = add("", {C}, 32, 1);
    map["lm_head.weight"] = add("", {vocab, C}, 192, 0);
    if (with_adapter) {
      for (int i = 0; i < 2; ++i)
        for (auto [name, n, k] : {std::tuple<const char*, int64_t, int64_t>{"self_attn.q_proj", 4 * D, C},
                                  {"self_attn.v_proj", 2 * D, C}, {"mlp.down_proj", C, I}}) {
          const std::string module = "model.layers." + std::to_string(i) + "." + name;
          engine::TensorRef a = add("", {4, k}, 64, 0);
          engine::TensorRef b = add("", {n, 4}, 64, 0);
          lora.push_back({module, a, b, 2.0});
        }
    }
  }
};

struct Golden {
  std::unique_ptr<Tokenizer> tok;
  std::string text;
};

Golden& golden() {
  static std::unique_ptr<Golden> g;
  if (!g) {
    g = std::make_unique<Golden>();
    const std::string tok_path = kDir + "/tokenizer.model";
    if (std::getenv("LORAZIP_WRITE_GOLDEN") && !file_exists(tok_path)) {
      std::vector<std::string> docs;
      for (const char* f : {"/docs/codec.md", "/docs/container-format.md", "/docs/training.md", "/docs/tokenizer.md"})
        docs.push_back(read_file(std::string(LORAZIP_SOURCE_DIR) + f));
      TokenizerTrainOptions opt;
      opt.vocab_size = 400;
      opt.threads = 1;
      Tokenizer::train(docs, opt, tok_path);
    }
    g->tok = std::make_unique<Tokenizer>(Tokenizer::load(tok_path));
    g->text = read_file(kDir + "/sample.txt");
  }
  return *g;
}

std::unique_ptr<LmCodec> golden_codec(bool with_adapter) {
  Golden& g = golden();
  TinyModel m(g.tok->vocab_size(), g.tok->bos_id(), with_adapter);
  CodecIdentity id;
  id.base_fingerprint = sha256_hex("lorazip golden base, engine-v1");
  id.tokenizer_fingerprint = g.tok->sha256();
  if (with_adapter) {
    id.adapter_fingerprint = sha256_hex("lorazip golden adapter, engine-v1");
    id.adapter_domain = "golden";
  }
  return std::make_unique<LmCodec>(std::make_shared<const engine::Model>(m.cfg, m.map, m.lora), *g.tok, id);
}

void check_golden(const std::string& file, bool with_adapter) {
  Golden& g = golden();
  auto codec = golden_codec(with_adapter);
  LmCodecOptions opt;
  opt.chunk_tokens = 40;  // several chunks
  // Independent chunks: the files were written before chunk context existed, and W = 0 must still
  // give their very bytes (a windowed file is covered by test_lm_codec).
  opt.context_tokens = 0;
  opt.group_streams = 3;
  opt.threads = 2;
  const std::string path = kDir + "/" + file;
  if (std::getenv("LORAZIP_WRITE_GOLDEN")) write_file_atomic(path, codec->compress(g.text, opt));
  ASSERT_TRUE(file_exists(path)) << path << " is missing";
  const std::string stored = read_file(path);
  EXPECT_EQ(Container::parse(stored, file).arithmetic_version, 1);
  EXPECT_TRUE(codec->decompress(stored, file, 2) == g.text) << file << " no longer decodes to sample.txt";
  EXPECT_TRUE(codec->compress(g.text, opt) == stored) << "compressing sample.txt no longer gives " << file;
  EXPECT_TRUE(codec->decompress(stored, file, 1) == g.text) << file << " on one thread";
}

}  // namespace

TEST(GoldenFiles, BaseModelFileDecodesAndReencodesByteForByte) { check_golden("base.lrz", false); }

TEST(GoldenFiles, AdapterFileDecodesAndReencodesByteForByte) { check_golden("adapter.lrz", true); }
