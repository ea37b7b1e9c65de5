// Golden files of the coding engine. Arithmetic version 1: tests/golden/engine-v1/ holds a small
// SentencePiece tokenizer, a text, and that text compressed by the LM codec under a tiny Llama
// alone (base.lrz) and with a LoRA adapter (adapter.lrz). The model and the adapter are not stored:
// their weights come exactly from an integer PRNG (multiples of 1/256, the same floats everywhere).
// Today's code must decode each file to the text byte for byte, and compressing the text again
// must give each file byte for byte: any change to the engine's arithmetic, the quantizer, the
// coder or the container shows here. Arithmetic version 2 (tests/golden/engine-v2/, below): the
// same text under float and block-quantized models. Torch-free.
//
// Regenerate (only with a new arithmetic or container version):
//   LORAZIP_WRITE_GOLDEN=1 build/bin/test_golden   (writes the tokenizer only when it is missing)
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <cmath>
#include <cstring>

#include "codec/container.h"
#include "codec/lm_codec.h"
#include "common/fs.h"
#include "common/hash.h"
#include "model/tokenizer.h"
#include "tests/tiny_blocks.h"

using namespace lorazip;
using tiny_blocks::Rng;

namespace {

const std::string kDir = std::string(LORAZIP_SOURCE_DIR) + "/tests/golden/engine-v1";


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

// ---- arithmetic version 2 (tests/golden/engine-v2) ------------------------------------------------
// The same tokenizer and text; full files (container version 2; a random model does not beat the
// text's own bytes, so a compact file would store it) coded in arithmetic version 2 under: the float model
// above (F32 as stored), with its adapter beside the weights, a model with Q4_1 matrices and a
// tied Q8_0 embedding (SmolLM2's mix), and one with Q4_K, Q5_K and Q6_K matrices (hidden size 256).
// Windowed chunks (W = 10), so the chunk-after-chunk decoder is covered too.
namespace {

const std::string kDir2 = std::string(LORAZIP_SOURCE_DIR) + "/tests/golden/engine-v2";


// A version-2 model: the weights as stored, an optional adapter beside them, and their bytes.
struct StoredModel {
  engine::Config cfg;
  std::vector<std::vector<uint8_t>> bytes;
  engine::StoredMap map;
  std::shared_ptr<const engine::Weights> weights;
  std::shared_ptr<const engine::Adapter> adapter;
  TinyModel* floats = nullptr;

  void add(const std::string& key, std::vector<int64_t> shape, engine::WeightKind kind, std::vector<uint8_t> data,
           int64_t permute = 0) {
    bytes.push_back(std::move(data));
    map[key] = {shape, kind, bytes.back().data(), bytes.back().size(), permute};
  }
};

std::vector<uint8_t> as_bytes(const engine::TensorRef& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  const auto* p = reinterpret_cast<const uint8_t*>(t.data);
  return std::vector<uint8_t>(p, p + n * 4);
}

// kind: F32 (the float TinyModel as stored, adapter optional), Q4_1 (+ Q8_0 tied embedding), Q4_K.
std::unique_ptr<StoredModel> stored_model(engine::WeightKind kind, bool with_adapter) {
  Golden& g = golden();
  auto m = std::make_unique<StoredModel>();
  m->bytes.reserve(128);
  if (kind == engine::WeightKind::F32) {
    static TinyModel base(g.tok->vocab_size(), g.tok->bos_id(), false);
    static TinyModel adapted(g.tok->vocab_size(), g.tok->bos_id(), true);
    TinyModel& t = with_adapter ? adapted : base;
    m->cfg = t.cfg;
    for (const auto& [key, ref] : t.map) m->add(key, ref.shape, engine::WeightKind::F32, as_bytes(ref));
    m->weights = std::make_shared<const engine::Weights>(m->cfg, m->map);
    if (with_adapter) m->adapter = std::make_shared<const engine::Adapter>(*m->weights, t.lora);
    return m;
  }
  const bool kq = kind == engine::WeightKind::Q4_K;
  engine::Config& c = m->cfg;
  c.vocab_size = g.tok->vocab_size();
  c.hidden_size = kq ? 256 : 64;
  c.intermediate_size = kq ? 512 : 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = kq ? 64 : 16;
  c.max_position_embeddings = 64;
  c.bos_token_id = g.tok->bos_id();
  c.tie_word_embeddings = !kq;
  Rng rng{kq ? 77u : 41u};
  const int64_t V = c.vocab_size, C = c.hidden_size, I = c.intermediate_size, H = c.num_attention_heads,
                Kv = c.num_key_value_heads, D = c.head_dim;
  using engine::WeightKind;
  // Q4_K_M's mix: Q4_K matrices, Q6_K for v and down, a Q5_K output; SmolLM2's: Q4_1 and a Q8_0 embedding.
  const WeightKind mat = kq ? WeightKind::Q4_K : WeightKind::Q4_1;
  const WeightKind emb = kq ? WeightKind::Q6_K : WeightKind::Q8_0;
  m->add("model.embed_tokens.weight", {V, C}, emb, tiny_blocks::random_blocks(rng, emb, V, C, 1.0f));
  if (kq) m->add("lm_head.weight", {V, C}, WeightKind::Q5_K, tiny_blocks::random_blocks(rng, WeightKind::Q5_K, V, C, 0.5f));
  const char* names[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
  const int64_t shapes[7][2] = {{H * D, C}, {Kv * D, C}, {Kv * D, C}, {C, H * D}, {I, C}, {I, C}, {C, I}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* norm : {"input_layernorm.weight", "post_attention_layernorm.weight"}) {
      std::vector<float> w(static_cast<size_t>(C));
      for (auto& x : w) x = 1.0f + static_cast<float>(rng.in(-32, 32)) / 256.0f;
      std::vector<uint8_t> b(w.size() * 4);
      std::memcpy(b.data(), w.data(), b.size());
      m->add(p + norm, {C}, WeightKind::F32, std::move(b));
    }
    for (int j = 0; j < 7; ++j) {
      const WeightKind k = kq && (j == 2 || j == 6) ? WeightKind::Q6_K : mat;
      m->add(p + names[j] + ".weight", {shapes[j][0], shapes[j][1]}, k,
             tiny_blocks::random_blocks(rng, k, shapes[j][0], shapes[j][1], 2.0f / std::sqrt(static_cast<float>(shapes[j][1]))),
             j == 0 ? H : j == 1 ? Kv : 0);
    }
  }
  std::vector<float> fn(static_cast<size_t>(C), 1.0f);
  std::vector<uint8_t> fb(fn.size() * 4);
  std::memcpy(fb.data(), fn.data(), fb.size());
  m->add("model.norm.weight", {C}, WeightKind::F32, std::move(fb));
  m->weights = std::make_shared<const engine::Weights>(c, m->map);
  return m;
}

void check_golden2(const std::string& file, engine::WeightKind kind, bool with_adapter) {
  Golden& g = golden();
  auto m = stored_model(kind, with_adapter);
  CodecIdentity id;
  id.base_fingerprint = sha256_hex(std::string("lorazip golden base, engine-v2, ") + engine::kind_name(kind));
  id.tokenizer_fingerprint = g.tok->sha256();
  if (with_adapter) {
    id.adapter_fingerprint = sha256_hex("lorazip golden adapter, engine-v2");
    id.adapter_domain = "golden";
  }
  const LmCodec codec(std::make_shared<const engine::Model>(m->weights, m->adapter), *g.tok, id);
  ASSERT_EQ(codec.model().arithmetic_version(), 2);
  LmCodecOptions opt;
  opt.chunk_tokens = 40;
  opt.context_tokens = 10;
  opt.format = ContainerFormat::Full;
  opt.threads = 2;
  const std::string path = kDir2 + "/" + file;
  if (std::getenv("LORAZIP_WRITE_GOLDEN")) write_file_atomic(path, codec.compress(g.text, opt));
  ASSERT_TRUE(file_exists(path)) << path << " is missing";
  const std::string stored = read_file(path);
  EXPECT_EQ(Container::parse(stored, file).arithmetic_version, 2);
  EXPECT_TRUE(codec.decompress(stored, file, 2) == g.text) << file << " no longer decodes to sample.txt";
  EXPECT_TRUE(codec.compress(g.text, opt) == stored) << "compressing sample.txt no longer gives " << file;
  EXPECT_TRUE(codec.decompress(stored, file, 1) == g.text) << file << " on one thread";
}

}  // namespace

TEST(GoldenFilesV2, FloatModelFileDecodesAndReencodesByteForByte) { check_golden2("base.lrz", engine::WeightKind::F32, false); }
TEST(GoldenFilesV2, SidePathAdapterFileDecodesAndReencodesByteForByte) {
  check_golden2("adapter.lrz", engine::WeightKind::F32, true);
}
TEST(GoldenFilesV2, Q4_1ModelFileDecodesAndReencodesByteForByte) { check_golden2("q4_1.lrz", engine::WeightKind::Q4_1, false); }
TEST(GoldenFilesV2, KQuantModelFileDecodesAndReencodesByteForByte) { check_golden2("q4_k.lrz", engine::WeightKind::Q4_K, false); }
