// The engine's bits, checked against committed hashes. Tiny Llamas (biases, GQA, sizes that are
// not multiples of 16): one of arithmetic version 1 (float weights, a merged LoRA adapter), and one
// of version 2 for every weight kind (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K; random
// blocks as a GGUF would hold them, q/k rows in llama.cpp's order, a side-path LoRA adapter), run
// on a few token sequences. For every kernel path this CPU has: teacher-forced logits on 1, 2 and
// 4 threads, in slices of 7 positions, lock-step decoding in groups of 1, 7 and 32 streams; the
// logits, softmax and code lengths must hash to the model's committed value. Version-2 models
// also check that a batch mixing streams of two adapters and none gives each stream the bits it
// gets alone, and that version 2 (integer block products, a half-precision key/value cache) stays
// close to version 1 on the same dequantized weights.
// Plain C++ (no GoogleTest, no libtorch) so that it cross-compiles for aarch64 and runs under
// qemu; CMake builds it at -march=x86-64, x86-64-v3 and x86-64-v4.
//
//   engine_hash            check; exit 0 when every path matches, 1 otherwise
//   engine_hash --print    print the hashes only
//   engine_hash --quick    fewer cases per path (under emulation): teacher-forced on 2 threads, in
//                          slices of 7, lock-step groups of 7
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <tuple>
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "codec/engine/engine.h"
#include "codec/engine/kernels.h"
#include "tests/tiny_blocks.h"

namespace lorazip::engine {
// tests/kernels_w16_generic.cpp: the AVX-512 path's 16-lane source compiled for this file's target.
const Kernels& kernels_w16_generic();
}  // namespace lorazip::engine

using namespace lorazip::engine;
using tiny_blocks::Rng;

namespace {

// FNV-1a over the bytes of the logits, softmax probabilities and code lengths, per model.
struct Expected {
  const char* model;
  uint64_t hash;
};
constexpr Expected kExpected[] = {
    {"v1 F32 merged", 0xf74c3fdf236029b9ull},
    {"v2 F32", 0x28310be516d6c27bull},  {"v2 F16", 0x44ffad4c2e26429aull},  {"v2 BF16", 0x67ee60abe9f8c89dull},
    {"v2 Q8_0", 0x396e39cb5ab12572ull}, {"v2 Q4_0", 0x89413fcf77a59a21ull}, {"v2 Q4_1", 0x636ee188bf21d0d7ull},
    {"v2 Q4_K", 0x6af5b6755af70dafull}, {"v2 Q5_K", 0xbb7ff34476fa9160ull}, {"v2 Q6_K", 0x0541c7239e2d631aull},
};


struct Hash {
  uint64_t h = 0xCBF29CE484222325ull;
  void add(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001B3ull;
  }
};

Config tiny_config() {
  Config c;
  c.vocab_size = 67;
  c.hidden_size = 40;
  c.intermediate_size = 72;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 10;
  c.max_position_embeddings = 40;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.attention_bias = true;
  c.mlp_bias = true;
  return c;
}

// Version-2 shapes: rows of whole blocks (32 values; 256 for the K-quants).
Config block_config(bool k_quant) {
  Config c = tiny_config();
  if (k_quant) {
    c.hidden_size = 256;
    c.intermediate_size = 512;
    c.num_attention_heads = 4;
    c.head_dim = 64;
  } else {
    c.hidden_size = 64;
    c.intermediate_size = 96;
    c.num_attention_heads = 4;
    c.head_dim = 8;
  }
  c.attention_bias = false;
  c.mlp_bias = true;
  return c;
}

struct TinyWeights {
  std::vector<std::vector<float>> store;
  TensorMap map;
  std::vector<LoraRef> lora;
  // k / denom for k uniform in [-span, span] (+ center): exact binary fractions.
  void add(Rng& rng, const std::string& key, std::vector<int64_t> shape, int span, float denom, float center = 0) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = center + static_cast<float>(rng.in(-span, span)) / denom;
    store.push_back(std::move(v));
    map[key] = {shape, store.back().data()};
  }
  // LoRA (rank r) on q_proj and v_proj of layer 0 and down_proj of layer 1.
  void add_lora(Rng& rng, const Config& c, int64_t r, double scaling, const std::string& tag) {
    const int64_t C = c.hidden_size, I = c.intermediate_size, D = c.head_dim, H = c.num_attention_heads,
                  Kv = c.num_key_value_heads;
    for (auto [module, n, k] : {std::tuple<const char*, int64_t, int64_t>{"model.layers.0.self_attn.q_proj", H * D, C},
                                {"model.layers.0.self_attn.v_proj", Kv * D, C}, {"model.layers.1.mlp.down_proj", C, I}}) {
      add(rng, tag + module + ".lora_A", {r, k}, 32, 128.0f);
      const TensorRef a = map[tag + module + ".lora_A"];
      add(rng, tag + module + ".lora_B", {n, r}, 32, 128.0f);
      const TensorRef b = map[tag + module + ".lora_B"];
      lora.push_back({module, a, b, scaling});
    }
  }
};

const char* kProj[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

TinyWeights v1_weights(const Config& c) {
  TinyWeights w;
  w.store.reserve(64);
  Rng rng{12345};
  const int64_t C = c.hidden_size, I = c.intermediate_size, D = c.head_dim, H = c.num_attention_heads,
                Kv = c.num_key_value_heads;
  w.add(rng, "model.embed_tokens.weight", {c.vocab_size, C}, 128, 128.0f);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    w.add(rng, p + "input_layernorm.weight", {C}, 16, 64.0f, 1.0f);
    w.add(rng, p + "post_attention_layernorm.weight", {C}, 16, 64.0f, 1.0f);
    for (auto [name, n, k] : {std::tuple<const char*, int64_t, int64_t>{"self_attn.q_proj", H * D, C},
                              {"self_attn.k_proj", Kv * D, C}, {"self_attn.v_proj", Kv * D, C},
                              {"self_attn.o_proj", C, H * D}, {"mlp.gate_proj", I, C}, {"mlp.up_proj", I, C},
                              {"mlp.down_proj", C, I}}) {
      w.add(rng, p + name + ".weight", {n, k}, 64, 256.0f);
      w.add(rng, p + name + ".bias", {n}, 16, 256.0f);
    }
  }
  w.add(rng, "model.norm.weight", {C}, 16, 64.0f, 1.0f);
  w.add(rng, "lm_head.weight", {c.vocab_size, C}, 64, 128.0f);
  w.add_lora(rng, c, 3, 8.0 / 3.0, "");
  return w;
}

// A version-2 model of `kind`: every matrix in that kind (norms and biases F32), q/k rows permuted
// as llama.cpp stores them; tied embeddings for the 32-block kinds, an embedding of the same kind
// for the K-quants. Keeps the bytes alive in `bytes`.
struct V2Model {
  Config cfg;
  std::vector<std::vector<uint8_t>> bytes;
  StoredMap map;
  TinyWeights lora_a, lora_b;
  std::shared_ptr<const Weights> base;
  std::shared_ptr<const Adapter> adapter_a, adapter_b;
};

void add_stored(V2Model& m, const std::string& key, std::vector<int64_t> shape, WeightKind kind, std::vector<uint8_t> data,
                int64_t permute = 0) {
  m.bytes.push_back(std::move(data));
  m.map[key] = {shape, kind, m.bytes.back().data(), m.bytes.back().size(), permute};
}

std::vector<uint8_t> floats_as_bytes(Rng& rng, int64_t n, int span, float denom, float center) {
  std::vector<uint8_t> out(static_cast<size_t>(n) * 4);
  for (int64_t i = 0; i < n; ++i) {
    const float v = center + static_cast<float>(rng.in(-span, span)) / denom;
    std::memcpy(out.data() + 4 * i, &v, 4);
  }
  return out;
}

std::unique_ptr<V2Model> v2_model(WeightKind kind) {
  auto m = std::make_unique<V2Model>();
  const bool kq = kind_traits(kind).block == 256;
  m->cfg = block_config(kq);
  m->cfg.tie_word_embeddings = !kq;
  const Config& c = m->cfg;
  m->bytes.reserve(128);
  Rng rng{9000 + static_cast<uint64_t>(kind)};
  const int64_t C = c.hidden_size, I = c.intermediate_size, D = c.head_dim, H = c.num_attention_heads,
                Kv = c.num_key_value_heads, V = c.vocab_size;
  add_stored(*m, "model.embed_tokens.weight", {V, C}, kind, tiny_blocks::random_blocks(rng, kind, V, C, 1.0f));
  if (!c.tie_word_embeddings) add_stored(*m, "lm_head.weight", {V, C}, kind, tiny_blocks::random_blocks(rng, kind, V, C, 0.5f));
  const int64_t shapes[7][2] = {{H * D, C}, {Kv * D, C}, {Kv * D, C}, {C, H * D}, {I, C}, {I, C}, {C, I}};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add_stored(*m, p + "input_layernorm.weight", {C}, WeightKind::F32, floats_as_bytes(rng, C, 16, 64.0f, 1.0f));
    add_stored(*m, p + "post_attention_layernorm.weight", {C}, WeightKind::F32, floats_as_bytes(rng, C, 16, 64.0f, 1.0f));
    for (int j = 0; j < 7; ++j) {
      const int64_t n = shapes[j][0], k = shapes[j][1];
      const float mag = 2.0f / std::sqrt(static_cast<float>(k));
      add_stored(*m, p + kProj[j] + ".weight", {n, k}, kind, tiny_blocks::random_blocks(rng, kind, n, k, mag), j == 0 ? H : j == 1 ? Kv : 0);
      if (j >= 4) add_stored(*m, p + kProj[j] + ".bias", {n}, WeightKind::F32, floats_as_bytes(rng, n, 16, 256.0f, 0));
    }
  }
  add_stored(*m, "model.norm.weight", {C}, WeightKind::F32, floats_as_bytes(rng, C, 16, 64.0f, 1.0f));
  m->base = std::make_shared<const Weights>(c, m->map);
  m->lora_a.store.reserve(16);
  m->lora_b.store.reserve(16);
  m->lora_a.add_lora(rng, c, 3, 8.0 / 3.0, "a.");
  m->lora_b.add_lora(rng, c, 5, 2.0, "b.");
  m->adapter_a = std::make_shared<const Adapter>(*m->base, m->lora_a.lora);
  m->adapter_b = std::make_shared<const Adapter>(*m->base, m->lora_b.lora);
  return m;
}

std::vector<std::vector<int32_t>> tiny_sequences(const Config& c) {
  Rng rng{777};
  std::vector<std::vector<int32_t>> seqs;
  for (int64_t len : {1, 5, 17, 33, 40, 23, 2, 16, 31}) {
    std::vector<int32_t> s;
    for (int64_t i = 0; i < len; ++i) s.push_back(static_cast<int32_t>(rng.in(0, c.vocab_size - 1)));
    seqs.push_back(s);
  }
  return seqs;
}

// Logits of every (sequence, position), in that order, plus softmax and code lengths of the
// sequence's next token (the codec's quantities).
void hash_rows(Hash& hash, const std::vector<float>& logits, const std::vector<int32_t>& seq, int64_t V) {
  std::vector<float> probs(static_cast<size_t>(V));
  for (size_t t = 0; t < seq.size(); ++t) {
    const float* row = logits.data() + t * V;
    hash.add(row, V * sizeof(float));
    softmax(row, V, probs.data());
    hash.add(probs.data(), V * sizeof(float));
    const double bits = code_length_bits(probs[static_cast<size_t>(seq[(t + 1) % seq.size()])]);
    hash.add(&bits, sizeof bits);
  }
}

// Teacher-forced logits of each sequence, whole (slice 0) or appended `slice` positions a call.
std::vector<std::vector<float>> teacher_forced_logits(const Model& m, const std::vector<std::vector<int32_t>>& seqs,
                                                      int64_t slice) {
  const int64_t V = m.config().vocab_size;
  std::vector<std::vector<float>> out(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    const int64_t T = static_cast<int64_t>(seqs[i].size());
    out[i].resize(T * V);
    if (slice == 0) {
      m.forward(seqs[i].data(), T, out[i].data());
      continue;
    }
    Cache cache = m.new_cache(1, T);
    for (int64_t t = 0; t < T; t += slice)
      m.extend(seqs[i].data() + t, std::min(slice, T - t), cache, 0, out[i].data() + t * V);
  }
  return out;
}

uint64_t hash_all(const std::vector<std::vector<float>>& out, const std::vector<std::vector<int32_t>>& seqs, int64_t V) {
  Hash h;
  for (size_t i = 0; i < seqs.size(); ++i) hash_rows(h, out[i], seqs[i], V);
  return h.h;
}

// The codec's decoder shape: consecutive sequences in groups of `group` streams advancing in
// lock-step; a stream that has ended is fed token 0 so the batch keeps its size.
uint64_t lock_step(const Model& m, const std::vector<std::vector<int32_t>>& seqs, int64_t group) {
  const int64_t V = m.config().vocab_size;
  std::vector<std::vector<float>> out(seqs.size());
  const size_t n_groups = (seqs.size() + group - 1) / group;
  for (size_t gi = 0; gi < n_groups; ++gi) {
    const size_t first = gi * group, n = std::min<size_t>(group, seqs.size() - first);
    size_t longest = 0;
    for (size_t s = 0; s < n; ++s) {
      longest = std::max(longest, seqs[first + s].size());
      out[first + s].resize(seqs[first + s].size() * V);
    }
    Cache cache = m.new_cache(static_cast<int64_t>(n), static_cast<int64_t>(longest));
    std::vector<int32_t> in(n);
    std::vector<float> logits(n * V);
    for (size_t t = 0; t < longest; ++t) {
      for (size_t s = 0; s < n; ++s) in[s] = t < seqs[first + s].size() ? seqs[first + s][t] : 0;
      m.step(in.data(), cache, logits.data());
      for (size_t s = 0; s < n; ++s)
        if (t < seqs[first + s].size()) std::memcpy(out[first + s].data() + t * V, logits.data() + s * V, V * sizeof(float));
    }
  }
  return hash_all(out, seqs, V);
}

// Every sequence as its own stream in one cache, stream i with adapter (i % 3: a, b, none), all
// advanced together through Model::run, a varying number of positions per stream per call: each
// stream's logits must equal its logits from a model of that adapter alone.
bool mixed_adapters_match(const V2Model& vm, const std::vector<std::vector<int32_t>>& seqs) {
  const Model ma(vm.base, vm.adapter_a), mb(vm.base, vm.adapter_b), m0(vm.base);
  const Model* alone[3] = {&ma, &mb, &m0};
  const Adapter* adapters[3] = {vm.adapter_a.get(), vm.adapter_b.get(), nullptr};
  const int64_t V = vm.cfg.vocab_size, S = static_cast<int64_t>(seqs.size());
  size_t longest = 0;
  for (const auto& s : seqs) longest = std::max(longest, s.size());
  Cache cache = m0.new_cache(S, static_cast<int64_t>(longest));
  std::vector<std::vector<float>> got(seqs.size());
  std::vector<size_t> done(seqs.size(), 0);
  for (int round = 0;; ++round) {
    std::vector<Row> rows;
    std::vector<std::pair<size_t, size_t>> who;  // (stream, position) of each row with logits
    for (int64_t s = 0; s < S; ++s) {
      const size_t take = std::min<size_t>(static_cast<size_t>(1 + (s + round) % 3), seqs[s].size() - done[s]);
      for (size_t t = 0; t < take; ++t) {
        rows.push_back({s, seqs[s][done[s] + t], adapters[s % 3], true});
        who.push_back({static_cast<size_t>(s), done[s] + t});
      }
      done[s] += take;
    }
    if (rows.empty()) break;
    std::vector<float> logits(rows.size() * V);
    m0.run(rows.data(), static_cast<int64_t>(rows.size()), cache, logits.data());
    for (size_t r = 0; r < rows.size(); ++r) {
      auto& g = got[who[r].first];
      g.resize(seqs[who[r].first].size() * V);
      std::memcpy(g.data() + who[r].second * V, logits.data() + r * V, V * sizeof(float));
    }
  }
  for (size_t s = 0; s < seqs.size(); ++s) {
    std::vector<float> want(seqs[s].size() * V);
    alone[s % 3]->forward(seqs[s].data(), static_cast<int64_t>(seqs[s].size()), want.data());
    if (std::memcmp(want.data(), got[s].data(), want.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

// The version-2 model without adapter against version 1 on the same weights dequantized to
// float32: the largest logit difference relative to the largest logit.
double v2_vs_float(const V2Model& vm, const std::vector<std::vector<int32_t>>& seqs) {
  std::vector<std::vector<float>> floats;
  TensorMap tm;
  for (const auto& [key, t] : vm.map) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::vector<float> f(static_cast<size_t>(n));
    const int64_t cols = t.shape.back(), rows = n / cols;
    const uint64_t rb = row_bytes(t.kind, cols);
    for (int64_t r = 0; r < rows; ++r) dequantize_row(t.kind, t.data + r * rb, f.data() + r * cols, cols);
    if (t.permute_heads > 0) {  // back to Hugging Face's row order
      std::vector<float> hf(f.size());
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(hf.data() + r * cols, f.data() + stored_row(r, rows, t.permute_heads) * cols, cols * sizeof(float));
      f.swap(hf);
    }
    floats.push_back(std::move(f));
    tm[key] = {t.shape, floats.back().data()};
  }
  const Model ref(vm.cfg, tm);
  const Model q(vm.base);
  double worst = 0, top = 0;
  const int64_t V = vm.cfg.vocab_size;
  for (const auto& s : seqs) {
    const int64_t T = static_cast<int64_t>(s.size());
    std::vector<float> a(T * V), b(T * V);
    ref.forward(s.data(), T, a.data());
    q.forward(s.data(), T, b.data());
    for (size_t i = 0; i < a.size(); ++i) {
      worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
      top = std::max(top, std::fabs(static_cast<double>(a[i])));
    }
  }
  return worst / top;
}

}  // namespace

int main(int argc, char** argv) {
  const bool print_only = argc > 1 && std::string(argv[1]) == "--print";
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  int failures = 0, checked = 0;

  struct Subject {
    std::string name;
    std::unique_ptr<Model> model;
    std::unique_ptr<V2Model> v2;
    std::vector<std::vector<int32_t>> seqs;
  };
  std::vector<Subject> subjects;
  {
    const Config cfg = tiny_config();
    static TinyWeights w = v1_weights(cfg);
    Subject s{"v1 F32 merged", std::make_unique<Model>(cfg, w.map, w.lora), nullptr, tiny_sequences(cfg)};
    subjects.push_back(std::move(s));
  }
  for (WeightKind kind : {WeightKind::F32, WeightKind::F16, WeightKind::BF16, WeightKind::Q8_0, WeightKind::Q4_0,
                          WeightKind::Q4_1, WeightKind::Q4_K, WeightKind::Q5_K, WeightKind::Q6_K}) {
    Subject s;
    s.name = std::string("v2 ") + kind_name(kind);
    s.v2 = v2_model(kind);
    s.model = std::make_unique<Model>(s.v2->base, s.v2->adapter_a);
    s.seqs = tiny_sequences(s.v2->cfg);
    subjects.push_back(std::move(s));
  }

  // Properties first (on the default path): version 2 stays near the float products, and mixed
  // adapter batches give each stream its own bits.
  for (const Subject& s : subjects) {
    if (!s.v2) continue;
    const double rel = v2_vs_float(*s.v2, s.seqs);
    const bool quantized = kind_traits(s.v2->map.at("model.layers.0.mlp.up_proj.weight").kind).quantized;
    // Float kinds differ from version 1 only by the half-precision key/value cache.
    const bool close = quantized ? rel < 0.05 : rel < 0.01;
    const bool mixed = mixed_adapters_match(*s.v2, s.seqs);
    checked += 2;
    failures += !close + !mixed;
    std::printf("%-14s version 2 vs float products: largest logit difference %.2e of the largest logit%s; "
                "mixed-adapter batch %s\n",
                s.name.c_str(), rel, close ? "" : "  TOO FAR", mixed ? "matches each stream alone" : "DIFFERS");
  }

  // Every path this CPU has, then the 16-lane source (the AVX-512 path's) on whatever this build
  // targets, so that its tiling is checked on CPUs without AVX-512 too.
  const Isa paths[] = {Isa::Scalar, Isa::Sse2, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni, Isa::Neon, Isa::Scalar};
  for (size_t path = 0; path < sizeof paths / sizeof paths[0]; ++path) {
    const bool w16gen = path + 1 == sizeof paths / sizeof paths[0];
    const Isa isa = paths[path];
    const char* name = w16gen ? "w16gen" : isa_name(isa);
    if (!isa_available(isa)) {
      std::printf("%-10s not available here, skipped\n", name);
      continue;
    }
    set_isa(isa);
    override_kernels_for_testing(w16gen ? &kernels_w16_generic() : nullptr);
    for (size_t si = 0; si < subjects.size(); ++si) {
      const Subject& s = subjects[si];
      const Model& m = *s.model;
      const int64_t V = m.config().vocab_size;
      struct Case {
        std::string name;
        uint64_t hash;
      };
      std::vector<Case> cases;
      for (int threads : {1, 2, 4}) {
        if (quick && threads != 2) continue;
        set_threads(threads);
        cases.push_back({"teacher-forced, " + std::to_string(threads) + " threads", hash_all(teacher_forced_logits(m, s.seqs, 0), s.seqs, V)});
      }
      set_threads(2);
      cases.push_back({"teacher-forced in slices of 7", hash_all(teacher_forced_logits(m, s.seqs, 7), s.seqs, V)});
      for (int64_t group : {1, 7, 32})
        for (int threads : {1, 2}) {
          if (quick && (group != 7 || threads != 2)) continue;
          set_threads(threads);
          cases.push_back({"lock-step groups of " + std::to_string(group) + ", " + std::to_string(threads) + " threads",
                           lock_step(m, s.seqs, group)});
        }
      const uint64_t want = kExpected[si].hash;
      for (const Case& c : cases) {
        ++checked;
        const bool ok = c.hash == want;
        if (!ok) ++failures;
        std::printf("%-10s %-14s %-36s %016llx%s\n", name, s.name.c_str(), c.name.c_str(), static_cast<unsigned long long>(c.hash),
                    print_only ? "" : ok ? "  ok" : "  MISMATCH");
      }
    }
  }
  set_threads(0);
  if (print_only) return 0;
  std::printf("%d of %d checks pass (committed hashes per model)\n", checked - failures, checked);
  return failures == 0 && checked > 0 ? 0 : 1;
}
