// The engine's bits, checked against one committed hash: a tiny Llama (biases, GQA, head_dim 10,
// sizes that are not multiples of 16) with a merged LoRA adapter, weights drawn from an integer
// PRNG as small-denominator floats (exact on every machine), run on a few token sequences. For
// every kernel path this CPU has, teacher-forced logits, lock-step decoding in groups of 1, 7 and
// 32 streams, 1, 2 and 4 threads, and the softmax + code lengths must all hash to kExpected.
// Plain C++ (no GoogleTest, no libtorch) so that it cross-compiles for aarch64 and runs under
// qemu; CMake builds it at -march=x86-64, x86-64-v3 and x86-64-v4.
//
//   engine_hash            check; exit 0 when every path matches, 1 otherwise
//   engine_hash --print    print the hashes only
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <tuple>
#include <algorithm>
#include <string>
#include <vector>

#include "codec/engine/engine.h"
#include "codec/engine/kernels.h"

namespace lorazip::engine {
// tests/kernels_w16_generic.cpp: the AVX-512 path's 16-lane source compiled for this file's target.
const Kernels& kernels_w16_generic();
}  // namespace lorazip::engine

using namespace lorazip::engine;

namespace {

// FNV-1a over the bytes of the logits, softmax probabilities and code lengths.
constexpr uint64_t kExpected = 0xf74c3fdf236029b9ull;

struct Rng {  // splitmix64
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int64_t in(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1)); }
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
};

TinyWeights tiny_weights(const Config& c) {
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
  // LoRA (r = 3) on q_proj and v_proj of layer 0 and down_proj of layer 1; scaling 8/3.
  const int64_t r = 3;
  for (auto [module, n, k] : {std::tuple<const char*, int64_t, int64_t>{"model.layers.0.self_attn.q_proj", H * D, C},
                              {"model.layers.0.self_attn.v_proj", Kv * D, C}, {"model.layers.1.mlp.down_proj", C, I}}) {
    w.add(rng, std::string(module) + ".lora_A", {r, k}, 32, 128.0f);
    const TensorRef a = w.map[std::string(module) + ".lora_A"];
    w.add(rng, std::string(module) + ".lora_B", {n, r}, 32, 128.0f);
    const TensorRef b = w.map[std::string(module) + ".lora_B"];
    w.lora.push_back({module, a, b, 8.0 / 3.0});
  }
  return w;
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

// Teacher-forced logits, whole sequences at once (slice 0) or appended `slice` positions a call.
uint64_t teacher_forced(const Model& m, const std::vector<std::vector<int32_t>>& seqs, int threads, int64_t slice) {
  const int64_t V = m.config().vocab_size;
  std::vector<std::vector<float>> out(seqs.size());
  parallel_for(seqs.size(), threads, [&](size_t i) {
    const int64_t T = static_cast<int64_t>(seqs[i].size());
    out[i].resize(T * V);
    if (slice == 0) return m.forward(seqs[i].data(), T, out[i].data());
    Cache cache = m.new_cache(1, T);
    for (int64_t t = 0; t < T; t += slice)
      m.extend(seqs[i].data() + t, std::min(slice, T - t), cache, 0, out[i].data() + t * V);
  });
  Hash h;
  for (size_t i = 0; i < seqs.size(); ++i) hash_rows(h, out[i], seqs[i], V);
  return h.h;
}

// The codec's decoder shape: consecutive sequences in groups of `group` streams advancing in
// lock-step; a stream that has ended is fed token 0 so the batch keeps its size.
uint64_t lock_step(const Model& m, const std::vector<std::vector<int32_t>>& seqs, int64_t group, int threads) {
  const int64_t V = m.config().vocab_size;
  std::vector<std::vector<float>> out(seqs.size());
  const size_t n_groups = (seqs.size() + group - 1) / group;
  parallel_for(n_groups, threads, [&](size_t gi) {
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
  });
  Hash h;
  for (size_t i = 0; i < seqs.size(); ++i) hash_rows(h, out[i], seqs[i], V);
  return h.h;
}

}  // namespace

int main(int argc, char** argv) {
  const bool print_only = argc > 1 && std::string(argv[1]) == "--print";
  const Config cfg = tiny_config();
  TinyWeights w = tiny_weights(cfg);
  const Model model(cfg, w.map, w.lora);
  const auto seqs = tiny_sequences(cfg);
  int failures = 0, checked = 0;
  // Every path this CPU has, then the 16-lane source (the AVX-512 path's) on whatever this build
  // targets, so that its tiling is checked on CPUs without AVX-512 too.
  for (int path = 0; path < 6; ++path) {
    const Isa isa = path < 5 ? static_cast<Isa>(path) : Isa::Scalar;
    const char* name = path < 5 ? isa_name(isa) : "w16gen";
    if (!isa_available(isa)) {
      std::printf("%-7s not available here, skipped\n", name);
      continue;
    }
    set_isa(isa);
    override_kernels_for_testing(path < 5 ? nullptr : &kernels_w16_generic());
    struct Case {
      std::string name;
      uint64_t hash;
    };
    std::vector<Case> cases;
    for (int threads : {1, 2, 4})
      cases.push_back({"teacher-forced, " + std::to_string(threads) + " threads", teacher_forced(model, seqs, threads, 0)});
    cases.push_back({"teacher-forced in slices of 7", teacher_forced(model, seqs, 2, 7)});
    for (int64_t group : {1, 7, 32})
      for (int threads : {1, 2})
        cases.push_back({"lock-step groups of " + std::to_string(group) + ", " + std::to_string(threads) + " threads",
                         lock_step(model, seqs, group, threads)});
    for (const Case& c : cases) {
      ++checked;
      const bool ok = c.hash == kExpected;
      if (!ok) ++failures;
      std::printf("%-7s %-36s %016llx%s\n", name, c.name.c_str(), static_cast<unsigned long long>(c.hash),
                  print_only ? "" : ok ? "  ok" : "  MISMATCH");
    }
  }
  if (print_only) return 0;
  std::printf("%d of %d hashes match the committed %016llx\n", checked - failures, checked,
              static_cast<unsigned long long>(kExpected));
  return failures == 0 && checked > 0 ? 0 : 1;
}
