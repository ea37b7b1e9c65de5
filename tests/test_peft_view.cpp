// A PEFT adapter on its way to the coding engine, torch-free: load_adapter reads
// adapter_model.safetensors into one buffer, the view's pairs point into it (nothing copied), and
// the engine packs its panels straight from those bytes (F32 bit for bit, F16 / BF16 widened
// exactly), giving the very logits of the adapter packed from its float32 values; the adapter's
// fingerprint is the value lorazip has always given it; the engine refuses a stored pair that
// does not fit, with the float path's messages where both apply.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unistd.h>
#include <vector>

#include "adapters/peft_files.h"
#include "codec/engine/engine.h"
#include "common/fs.h"
#include "model/llama_tensors.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"
#include "runtime/model_setup.h"
#include "tests/tiny_blocks.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

std::string temp_root() {
  static const std::string d = (fs::temp_directory_path() / ("lorazip_test_peft_view_" + std::to_string(::getpid()))).string();
  return d;
}

class RemoveTempRoot : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(temp_root(), ec);
  }
};
const auto* const kRemoveTempRoot = ::testing::AddGlobalTestEnvironment(new RemoveTempRoot);

const std::string kTokenizer = std::string(LORAZIP_SOURCE_DIR) + "/tests/golden/engine-v1/tokenizer.model";

// A tiny Llama (GQA, 2 layers); the vocabulary is the golden files' tokenizer's.
LlamaConfig tiny_config(int64_t vocab) {
  LlamaConfig c;
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

// A [rows, cols] tensor of `dtype` with values k / 2^22, |k| <= 2^20, drawn from `rng` (F16 and
// BF16: those values rounded; F64: nudged off the float grid, so reading it rounds).
RawTensor random_tensor(tiny_blocks::Rng& rng, DType dtype, int64_t rows, int64_t cols) {
  RawTensor t;
  t.dtype = dtype;
  t.shape = {rows, cols};
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float v = static_cast<float>(rng.in(-(1 << 20), 1 << 20)) / static_cast<float>(1 << 22);
    if (dtype == DType::F32) {
      t.data.append(reinterpret_cast<const char*>(&v), 4);
    } else if (dtype == DType::F64) {
      const double d = static_cast<double>(v) + static_cast<double>(rng.in(-1000, 1000)) * 1e-12;
      t.data.append(reinterpret_cast<const char*>(&d), 8);
    } else {
      const uint16_t h = dtype == DType::F16 ? engine::f32_to_f16(v) : engine::f32_to_bf16(v);
      t.data.append(reinterpret_cast<const char*>(&h), 2);
    }
  }
  return t;
}

// The safetensors bytes with `shift` spaces more in the header (a length that is not a multiple
// of 8), so every tensor's data starts `shift` bytes off its alignment.
std::string misaligned(const std::string& bytes, size_t shift) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const uint64_t m = n + shift;
  std::string out(8, '\0');
  std::memcpy(out.data(), &m, 8);
  return out + bytes.substr(8, n) + std::string(shift, ' ') + bytes.substr(8 + n);
}

// A PEFT directory with an r=4 pair of `dtype` on every projection of the tiny Llama (values from
// seed `seed`); lorazip.json (with the stored tensors' adapter_fingerprint) when `with_info`.
// `shift` > 0 misaligns the tensors' data in the file.
std::string write_adapter(const std::string& name, DType dtype, uint64_t seed, bool with_info, size_t shift = 0) {
  const std::string dir = temp_root() + "/" + name;
  fs::create_directories(dir);
  LoraConfig cfg;
  cfg.r = 4;
  cfg.alpha = 8;
  cfg.targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  SafetensorsFile st;
  st.metadata["format"] = "pt";
  tiny_blocks::Rng rng{seed};
  for (const Projection& p : llama_projections(tiny_config(300))) {
    st.tensors.emplace(peft_key(p.name, "lora_A"), random_tensor(rng, dtype, cfg.r, p.in));
    st.tensors.emplace(peft_key(p.name, "lora_B"), random_tensor(rng, dtype, p.out, cfg.r));
  }
  write_file_atomic(dir + "/adapter_config.json", peft_adapter_config(cfg, "tiny").dump(2));
  const std::string bytes = serialize_safetensors(st);
  write_file_atomic(dir + "/adapter_model.safetensors", shift ? misaligned(bytes, shift) : bytes);
  if (with_info) {
    AdapterInfo info;
    info.domain = name;
    info.adapter_fingerprint = tensors_fingerprint(st.tensors);
    write_file_atomic(dir + "/lorazip.json", info.to_json().dump(2));
  }
  return dir;
}

// The tiny Llama with random F32 weights as a Hugging Face directory, loaded as the program loads it.
LoadedModel& base() {
  static std::unique_ptr<LoadedModel> b;
  if (!b) {
    const std::string tok = read_file(kTokenizer);
    const LlamaConfig c = tiny_config(Tokenizer::from_bytes(tok, kTokenizer).vocab_size());
    tiny_blocks::Rng rng{99};
    std::vector<std::pair<std::string, RawTensor>> tensors;
    for (const auto& [key, shape] : expected_llama_tensors(c)) {
      RawTensor t = random_tensor(rng, DType::F32, shape[0], shape.size() == 2 ? shape[1] : 1);
      t.shape = shape;
      if (key.find("norm") != std::string::npos)  // norm weights near 1
        for (size_t i = 0; i < t.data.size(); i += 4) {
          float v;
          std::memcpy(&v, t.data.data() + i, 4);
          v += 1.0f;
          std::memcpy(t.data.data() + i, &v, 4);
        }
      tensors.emplace_back(key, std::move(t));
    }
    const std::string dir = temp_root() + "/base";
    write_hf_llama(dir, c, std::move(tensors), tok);
    b = std::make_unique<LoadedModel>(load_model(dir));
  }
  return *b;
}

// The adapter's pairs as float32 values, read with the copying parser and to_float32 (not through
// the view), as engine::LoraRefs into `store`.
std::vector<engine::LoraRef> float_pairs(const std::string& dir, std::vector<std::vector<float>>& store) {
  const SafetensorsFile st = read_safetensors(dir + "/adapter_model.safetensors");
  store.clear();
  store.reserve(2 * st.tensors.size());
  std::vector<engine::LoraRef> out;
  for (const Projection& p : base().projections()) {
    const RawTensor& a = st.tensors.at(peft_key(p.name, "lora_A"));
    const RawTensor& b = st.tensors.at(peft_key(p.name, "lora_B"));
    store.push_back(to_float32(a, "A"));
    const float* pa = store.back().data();
    store.push_back(to_float32(b, "B"));
    out.push_back({p.name, {a.shape, pa}, {b.shape, store.back().data()}, 8.0 / 4.0});
  }
  return out;
}

// Logits [T, V] of a few positions under the base with `adapter` (nullptr: the base alone).
std::vector<float> logits(const std::shared_ptr<const engine::Adapter>& adapter) {
  const engine::Model m(base().weights, adapter);
  const std::vector<int32_t> tokens = {1, 17, 40, 3, 99, 5, 61, 8};
  const int64_t T = static_cast<int64_t>(tokens.size());
  std::vector<float> out(static_cast<size_t>(T * m.config().vocab_size));
  m.forward(tokens.data(), T, out.data());
  return out;
}

bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

bool inside(const uint8_t* p, uint64_t n, const std::string& buffer) {
  const uint8_t* b = reinterpret_cast<const uint8_t*>(buffer.data());
  return p >= b && n <= buffer.size() && static_cast<uint64_t>(p - b) <= buffer.size() - n;
}

// The std::exception message of f(); a test failure when it returns.
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a refusal, but the call succeeded";
  return "";
}

}  // namespace

// The engine's adapter packed from the file's bytes computes the same logits, bit for bit, as the
// adapter packed from the pairs' float32 values, for every stored kind, aligned or not.
TEST(PeftView, EngineAdapterFromStoredPairsGivesTheFloatPathsLogits) {
  const std::vector<float> alone = logits(nullptr);
  for (const auto& [name, dtype, shift] :
       {std::tuple{"a-f32", DType::F32, size_t{0}}, std::tuple{"a-f16", DType::F16, size_t{0}},
        std::tuple{"a-bf16", DType::BF16, size_t{0}}, std::tuple{"a-f64", DType::F64, size_t{0}},
        std::tuple{"a-f32-off3", DType::F32, size_t{3}}, std::tuple{"a-f16-off1", DType::F16, size_t{1}}}) {
    SCOPED_TRACE(name);
    const std::string dir = write_adapter(name, dtype, 31, false, shift);
    const std::shared_ptr<const LoadedAdapter> loaded = load_adapter(base(), dir);
    std::vector<std::vector<float>> store;
    const auto from_floats = std::make_shared<const engine::Adapter>(*base().weights, float_pairs(dir, store));
    const std::vector<float> want = logits(from_floats);
    EXPECT_TRUE(same_bits(logits(loaded->engine), want)) << "the adapter packed from the file's bytes computes other logits";
    EXPECT_FALSE(same_bits(alone, want)) << "the adapter should change the logits";
    // The same panels built directly from the view's pairs.
    EXPECT_TRUE(same_bits(logits(std::make_shared<const engine::Adapter>(*base().weights, loaded->view.lora())), want));
    EXPECT_EQ(loaded->engine->bytes(), from_floats->bytes());
  }
}

// The loaded adapter's pairs are where the file's bytes hold them: one buffer, read once, with
// the stored kind (no conversion, no copy); an F64 file's pairs are its values rounded once.
TEST(PeftView, LoadedPairsPointIntoTheFileBuffer) {
  for (const auto& [name, dtype, kind] : {std::tuple{"p-f32", DType::F32, engine::WeightKind::F32},
                                          std::tuple{"p-f16", DType::F16, engine::WeightKind::F16},
                                          std::tuple{"p-bf16", DType::BF16, engine::WeightKind::BF16}}) {
    SCOPED_TRACE(name);
    const std::string dir = write_adapter(name, dtype, 5, true, 1);
    const std::shared_ptr<const LoadedAdapter> a = load_adapter(base(), dir);
    ASSERT_TRUE(a->view.file);
    EXPECT_EQ(*a->view.file, read_file(dir + "/adapter_model.safetensors"));
    EXPECT_FALSE(a->view.rounded);
    const SafetensorsView st = parse_safetensors_view(*a->view.file, "x");
    ASSERT_EQ(a->view.modules.size(), base().projections().size());
    for (const PeftModuleView& m : a->view.modules) {
      for (const auto& [t, which] : {std::pair{&m.a, "lora_A"}, std::pair{&m.b, "lora_B"}}) {
        EXPECT_EQ(t->kind, kind) << m.name;
        EXPECT_TRUE(inside(t->data, t->nbytes, *a->view.file)) << m.name << " " << which << " is not in the file's buffer";
        // Exactly the tensor's place in the file.
        const std::string_view want = st.tensors.at(peft_key(m.name, which)).data;
        EXPECT_EQ(t->data - reinterpret_cast<const uint8_t*>(a->view.file->data()),
                  reinterpret_cast<const uint8_t*>(want.data()) - reinterpret_cast<const uint8_t*>(a->view.file->data()));
        EXPECT_EQ(t->nbytes, want.size());
      }
    }
  }
  const std::shared_ptr<const LoadedAdapter> a = load_adapter(base(), write_adapter("p-f64", DType::F64, 5, false));
  ASSERT_TRUE(a->view.rounded);
  EXPECT_EQ(a->view.rounded->size(), 2 * a->view.modules.size());
  for (const PeftModuleView& m : a->view.modules) EXPECT_EQ(m.a.kind, engine::WeightKind::F32);
}

// The fingerprint an adapter is named by is the one lorazip gave it before the view reader
// (pinned), equal to tensors_fingerprint over its tensors converted to float32 and to the float
// reader's, for F32 (lorazip.json checked without hashing twice), F16 (lorazip.json checked
// against the stored tensors), BF16 and F64 files.
TEST(PeftView, FingerprintIsUnchanged) {
  const std::map<std::string, std::string> pinned = {
      {"f32", "919ae17ee387614b005a94b97b893c442c8b0793d8e8c6b76493c87fcd65dd8c"},
      {"f16", "a8a63113396b72befe8b2df3caa0099015b2034495074c9c72b28eebe26b874b"},
      {"bf16", "1cf6708cbaaab6cbfa64e2d7f8993206b5e8c47ffd20d7ea733400d839b17c78"},
      {"f64", "652e7d78295d5618af5018a301e43a2031d76808da8c8de5143b237847e6b918"}};
  const std::vector<Projection> projs = llama_projections(tiny_config(300));
  for (const auto& [name, dtype, info] : {std::tuple{"f32", DType::F32, true}, std::tuple{"f16", DType::F16, true},
                                          std::tuple{"bf16", DType::BF16, false}, std::tuple{"f64", DType::F64, true}}) {
    SCOPED_TRACE(name);
    const std::string dir = write_adapter(name, dtype, 7, info);
    const PeftAdapterView v = read_peft_adapter_view(dir, projs);
    EXPECT_EQ(v.fingerprint, pinned.at(name));
    EXPECT_EQ(v.has_info, info);
    std::map<std::string, RawTensor> as_f32;
    for (const auto& [key, t] : read_safetensors(dir + "/adapter_model.safetensors").tensors) {
      const std::vector<float> f = to_float32(t, key);
      RawTensor r;
      r.shape = t.shape;
      r.data.assign(reinterpret_cast<const char*>(f.data()), f.size() * sizeof(float));
      as_f32.emplace(key, std::move(r));
    }
    EXPECT_EQ(v.fingerprint, tensors_fingerprint(as_f32));
    EXPECT_EQ(read_peft_adapter(dir, projs).fingerprint, v.fingerprint);
  }
  // lorazip.json naming other tensors is refused, whichever way the file stores them.
  for (const auto& [name, dtype] : {std::pair{"f32", DType::F32}, std::pair{"f16", DType::F16}}) {
    const std::string dir = temp_root() + "/" + name;
    AdapterInfo info = AdapterInfo::read(dir);
    info.adapter_fingerprint = std::string(64, 'a');
    write_file_atomic(dir + "/lorazip.json", info.to_json().dump(2));
    const std::string msg = message_of([&] { read_peft_adapter_view(dir, projs); });
    EXPECT_NE(msg.find("adapter_fingerprint " + std::string(64, 'a')), std::string::npos) << msg;
    EXPECT_EQ(message_of([&] { read_peft_adapter(dir, projs); }), msg);
  }
}

// The view reader refuses what the float reader refuses, with the same message naming the file
// and the tensor: a pair that is not floating-point, a pair of the wrong rank.
TEST(PeftView, RefusesWhatTheFloatReaderRefuses) {
  const std::vector<Projection> projs = llama_projections(tiny_config(300));
  const std::string dir = write_adapter("bad", DType::F32, 3, false);
  SafetensorsFile st = read_safetensors(dir + "/adapter_model.safetensors");
  const std::string key = peft_key("model.layers.1.mlp.up_proj", "lora_B");
  st.tensors[key].dtype = DType::I32;
  write_safetensors(dir + "/adapter_model.safetensors", st);
  std::string msg = message_of([&] { read_peft_adapter_view(dir, projs); });
  EXPECT_NE(msg.find(key), std::string::npos) << msg;
  EXPECT_NE(msg.find("I32 is not a floating-point type"), std::string::npos) << msg;
  EXPECT_EQ(message_of([&] { read_peft_adapter(dir, projs); }), msg);

  tiny_blocks::Rng rng{1};
  st.tensors[key] = random_tensor(rng, DType::F32, 64, 3);
  write_safetensors(dir + "/adapter_model.safetensors", st);
  msg = message_of([&] { read_peft_adapter_view(dir, projs); });
  EXPECT_NE(msg.find(key), std::string::npos) << msg;
  EXPECT_NE(msg.find("rank 3"), std::string::npos) << msg;
  EXPECT_EQ(message_of([&] { read_peft_adapter(dir, projs); }), msg);
}

// The stored-pair constructor refuses what the float one refuses, with the same messages, and a
// pair of a kind or byte count that does not fit, naming the module and the matrix.
TEST(PeftView, EngineRefusesStoredPairsThatDoNotFit) {
  const engine::Weights& w = *base().weights;
  const std::string q = "model.layers.0.self_attn.q_proj";  // [32, 32]
  std::vector<float> fa(4 * 32, 0.5f), fb(32 * 4, 0.25f);
  const auto f32 = [](std::vector<int64_t> shape, const std::vector<float>& v) {
    return engine::StoredTensor{std::move(shape), engine::WeightKind::F32, reinterpret_cast<const uint8_t*>(v.data()),
                                v.size() * 4, 0};
  };
  auto both = [&](const engine::LoraRef& l) {
    const std::string want = message_of([&] { engine::Adapter(w, std::vector<engine::LoraRef>{l}); });
    const engine::StoredLoraRef s{l.module, f32(l.a.shape, fa), f32(l.b.shape, fb), l.scaling};
    EXPECT_EQ(message_of([&] { engine::Adapter(w, std::vector<engine::StoredLoraRef>{s}); }), want);
    return want;
  };
  EXPECT_NE(both({q, {{4, 32}, fa.data()}, {{32, 5}, fb.data()}, 1.0}).find("expected A [r, 32] and B [32, r]"), std::string::npos);
  EXPECT_NE(both({"model.layers.7.self_attn.q_proj", {{4, 32}, fa.data()}, {{32, 4}, fb.data()}, 1.0}).find("not a projection"),
            std::string::npos);
  {
    const engine::LoraRef l{q, {{4, 32}, fa.data()}, {{32, 4}, fb.data()}, 1.0};
    const std::string want = message_of([&] { engine::Adapter(w, std::vector<engine::LoraRef>{l, l}); });
    EXPECT_NE(want.find("given twice"), std::string::npos) << want;
    const engine::StoredLoraRef s{q, f32({4, 32}, fa), f32({32, 4}, fb), 1.0};
    EXPECT_EQ(message_of([&] { engine::Adapter(w, std::vector<engine::StoredLoraRef>{s, s}); }), want);
  }

  engine::StoredLoraRef s{q, f32({4, 32}, fa), f32({32, 4}, fb), 1.0};
  s.a.kind = engine::WeightKind::Q8_0;
  std::string msg = message_of([&] { engine::Adapter(w, std::vector<engine::StoredLoraRef>{s}); });
  EXPECT_NE(msg.find(q), std::string::npos) << msg;
  EXPECT_NE(msg.find("A is Q8_0"), std::string::npos) << msg;

  s = {q, f32({4, 32}, fa), f32({32, 4}, fb), 1.0};
  s.b.kind = engine::WeightKind::F16;  // 512 bytes of F32 given as F16 [32, 4], which needs 256
  msg = message_of([&] { engine::Adapter(w, std::vector<engine::StoredLoraRef>{s}); });
  EXPECT_NE(msg.find("B holds 512 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs 256"), std::string::npos) << msg;

  s = {q, f32({4, 32}, fa), f32({32, 4}, fb), 1.0};
  s.a.permute_heads = 2;
  msg = message_of([&] { engine::Adapter(w, std::vector<engine::StoredLoraRef>{s}); });
  EXPECT_NE(msg.find("rotary order"), std::string::npos) << msg;
}

// pack_as_f32 gives float32 panels holding each stored value exactly (unpack_row reads them back).
TEST(PeftView, PackAsF32WidensEveryValueExactly) {
  tiny_blocks::Rng rng{12};
  for (DType d : {DType::F32, DType::F16, DType::BF16}) {
    const RawTensor t = random_tensor(rng, d, 19, 7);  // rows not a multiple of 16
    const std::string bytes = " " + t.data;            // misaligned by one byte
    const engine::WeightKind kind = d == DType::F32 ? engine::WeightKind::F32
                                    : d == DType::F16 ? engine::WeightKind::F16
                                                      : engine::WeightKind::BF16;
    const engine::PackedMatrix m =
        engine::pack_as_f32({kind, 19, 7, reinterpret_cast<const uint8_t*>(bytes.data()) + 1, 0}, "t");
    EXPECT_EQ(m.kind, engine::WeightKind::F32);
    const std::vector<float> want = to_float32(t, "t");
    std::vector<float> row(7);
    for (int64_t n = 0; n < 19; ++n) {
      engine::unpack_row(m, n, row.data());
      EXPECT_EQ(std::memcmp(row.data(), want.data() + n * 7, 7 * sizeof(float)), 0) << dtype_name(d) << " row " << n;
    }
  }
  EXPECT_THROW(engine::pack_as_f32({engine::WeightKind::Q4_0, 1, 32, nullptr, 0}, "q"), std::invalid_argument);
}
