// The engine's forward pass: weights packed into column panels once, then every row (one position
// of one stream) goes through the Llama blocks independently of the other rows, with the kernels
// of kernels.h and the arithmetic of docs/engine-arithmetic.md. Lane-wise steps (residual adds,
// RoPE, norm scaling, biases) are plain loops: whatever the compiler vectorizes them into, each
// element sees the same two-operand operations (-ffp-contract=off).
#include "codec/engine/engine.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "codec/engine/kernels.h"
#include "codec/engine/math.h"
#include "common/threads.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <xmmintrin.h>
#endif

namespace lorazip::engine {
namespace {

// Pins the floating-point environment of the calling thread for one engine call and restores the
// caller's on exit: round to nearest, no flush-to-zero, no denormals-are-zero (a library built
// with -ffast-math may have switched those on for the whole process).
class FpEnvGuard {
 public:
  FpEnvGuard() {
#if defined(__x86_64__)
    saved_ = _mm_getcsr();
    _mm_setcsr(saved_ & ~(0x8000u | 0x0040u | 0x6000u));  // FTZ, DAZ, rounding control
#elif defined(__aarch64__)
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved_));
    const uint64_t pinned = saved_ & ~((uint64_t{3} << 22) | (uint64_t{1} << 24) | (uint64_t{1} << 19));  // RMode, FZ, FZ16
    __asm__ __volatile__("msr fpcr, %0" : : "r"(pinned));
#endif
  }
  ~FpEnvGuard() {
#if defined(__x86_64__)
    _mm_setcsr(saved_);
#elif defined(__aarch64__)
    __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_));
#endif
  }
  FpEnvGuard(const FpEnvGuard&) = delete;
  FpEnvGuard& operator=(const FpEnvGuard&) = delete;

 private:
#if defined(__aarch64__)
  uint64_t saved_ = 0;
#else
  unsigned saved_ = 0;
#endif
};

std::atomic<const Kernels*> g_override{nullptr};

#if defined(__x86_64__)
// F16C (CPUID leaf 1, ECX bit 29): clang 14's __builtin_cpu_supports does not know "f16c".
bool cpu_has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}
#endif

bool cpu_has_vnni() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

const Kernels& kernels_for(Isa isa) {
  if (const Kernels* k = g_override.load()) return *k;
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Sse2: return kernels_sse2();
    case Isa::Avx2: return kernels_avx2();
    case Isa::Avx512: return cpu_has_vnni() ? kernels_avx512vnni() : kernels_avx512();
    case Isa::Avx512Vnni: return kernels_avx512vnni();
#endif
#if defined(__aarch64__)
    case Isa::Neon: return kernels_neon();
#endif
    default: return kernels_scalar();
  }
}

std::atomic<int> g_active_isa{-1};

int64_t round_up16(int64_t n) { return (n + 15) / 16 * 16; }

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

const TensorRef& need(const TensorMap& w, const std::string& key, const std::vector<int64_t>& shape) {
  auto it = w.find(key);
  if (it == w.end() || it->second.data == nullptr)
    throw std::invalid_argument("engine: tensor '" + key + "' is missing (is this a Llama checkpoint with Hugging Face key names?)");
  if (it->second.shape != shape)
    throw std::invalid_argument("engine: tensor '" + key + "' has shape " + shape_str(it->second.shape) + ", expected " +
                                shape_str(shape) + " from the model config");
  return it->second;
}

const StoredTensor& need(const StoredMap& w, const std::string& key, const std::vector<int64_t>& shape) {
  auto it = w.find(key);
  if (it == w.end() || it->second.data == nullptr)
    throw std::invalid_argument("engine: tensor '" + key + "' is missing (is this a Llama checkpoint with Hugging Face key names?)");
  const StoredTensor& t = it->second;
  if (t.shape != shape)
    throw std::invalid_argument("engine: tensor '" + key + "' has shape " + shape_str(t.shape) + ", expected " +
                                shape_str(shape) + " from the model config");
  const KindTraits& tr = kind_traits(t.kind);
  const int64_t cols = shape.back();
  if (cols % tr.block != 0)
    throw std::invalid_argument("engine: tensor '" + key + "' is " + tr.name + ", whose blocks of " + std::to_string(tr.block) +
                                " values do not divide its rows of " + std::to_string(cols));
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  const uint64_t want = row_bytes(t.kind, cols) * static_cast<uint64_t>(rows);
  if (t.nbytes != want)
    throw std::invalid_argument("engine: tensor '" + key + "' holds " + std::to_string(t.nbytes) + " bytes, but " +
                                shape_str(shape) + " in " + tr.name + " needs " + std::to_string(want));
  return t;
}

std::vector<float> copy_of(const TensorRef& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  return std::vector<float>(t.data, t.data + n);
}

// A vector (norm weight, bias) of a float kind, converted exactly.
std::vector<float> vector_of(const StoredTensor& t, const std::string& key) {
  if (kind_traits(t.kind).quantized)
    throw std::invalid_argument("engine: tensor '" + key + "' is " + kind_name(t.kind) +
                                "; norm weights and biases must be F32, F16 or BF16");
  const int64_t n = t.shape[0];
  std::vector<float> out(static_cast<size_t>(n));
  if (t.permute_heads <= 0) {
    dequantize_row(t.kind, t.data, out.data(), n);
  } else {  // a q/k bias in llama.cpp's rotary order: element i of Hugging Face's order is stored at stored_row(i)
    const uint64_t es = row_bytes(t.kind, 1);
    for (int64_t i = 0; i < n; ++i) dequantize_row(t.kind, t.data + static_cast<uint64_t>(stored_row(i, n, t.permute_heads)) * es, &out[static_cast<size_t>(i)], 1);
  }
  return out;
}

// out = weight * (x * (1 / sqrt(sum(x^2) / C + eps))) for one row of C.
void rms_norm(const Kernels& kn, const float* x, const float* weight, int64_t C, float eps, float* out) {
  const float mean = kn.tree_sum_squares(x, C) / static_cast<float>(C);
  const float inv = 1.0f / std::sqrt(mean + eps);
  for (int64_t c = 0; c < C; ++c) out[c] = weight[c] * (x[c] * inv);
}

// Half-split RoPE of one head vector in place: [x1, x2] -> [x1 cos - x2 sin, x2 cos + x1 sin].
void rope(float* x, const float* cos, const float* sin, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    x[i] = a * cos[i] - b * sin[i];
    x[i + half] = b * cos[i] + a * sin[i];
  }
}

// y [M, N] (row stride ldy) = x [M, K] W^T over W's panels [p0, p1): columns 16 p0 .. min(16 p1, N).
// Float kinds run the version-1 matmul on x; quantized kinds the integer block products on xq.
void matmul_panels(const Kernels& kn, const float* x, const QuantizedRows& xq, int64_t M, const PackedMatrix& w,
                   int64_t p0, int64_t p1, float* y, int64_t ldy) {
  const int64_t n0 = 16 * p0, cols = std::min(16 * p1, w.n) - n0;
  if (cols <= 0) return;
  const uint8_t* panels = w.panel(p0);
  switch (w.kind) {
    case WeightKind::F32:
      kn.matmul(x, w.k, M, w.k, reinterpret_cast<const float*>(panels), w.k * 16, cols, y + n0, ldy);
      break;
    case WeightKind::F16:
      kn.matmul_f16(x, w.k, M, w.k, reinterpret_cast<const uint16_t*>(panels), w.k * 16, cols, y + n0, ldy);
      break;
    case WeightKind::BF16:
      kn.matmul_bf16(x, w.k, M, w.k, reinterpret_cast<const uint16_t*>(panels), w.k * 16, cols, y + n0, ldy);
      break;
    default:
      kn.qmatmul(w.kind, xq, M, panels, w.panel_bytes, cols, y + n0, ldy);
      break;
  }
}

// parallel_parts with the floating-point environment pinned in every part (workers are threads of
// their own).
template <class Fn>
void par(int64_t parts, Fn&& fn) {
  parallel_parts(parts, [&](int part, int n) {
    FpEnvGuard fp;
    fn(part, n);
  });
}

template <class T>
T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

const char* kProjNames[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                             "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

}  // namespace

void override_kernels_for_testing(const Kernels* k) { g_override.store(k); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Sse2: return "sse2";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Neon: return "neon";
    case Isa::Avx512Vnni: return "avx512vnni";
  }
  return "unknown";
}

bool isa_available(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
#if defined(__x86_64__)
    case Isa::Sse2: return true;
    case Isa::Avx2: return __builtin_cpu_supports("avx2") && cpu_has_f16c();
    case Isa::Avx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    case Isa::Avx512Vnni: return cpu_has_vnni();
#endif
#if defined(__aarch64__)
    case Isa::Neon: return true;
#endif
    default: return false;
  }
}

Isa select_isa() {
  int cur = g_active_isa.load();
  if (cur >= 0) return static_cast<Isa>(cur);
  Isa best = Isa::Scalar;
  const Isa all[] = {Isa::Scalar, Isa::Sse2, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni, Isa::Neon};
  if (const char* env = std::getenv("LORAZIP_ENGINE_ISA"); env && *env) {
    bool known = false;
    for (Isa i : all)
      if (std::string(env) == isa_name(i)) best = i, known = true;
    if (!known)
      throw std::invalid_argument(std::string("LORAZIP_ENGINE_ISA='") + env +
                                  "' is not one of scalar, sse2, avx2, avx512, avx512vnni, neon");
    if (!isa_available(best))
      throw std::invalid_argument(std::string("LORAZIP_ENGINE_ISA=") + env + ": this CPU or build has no " + env +
                                  " path (unset the variable to pick the fastest available)");
  } else {
    for (Isa i : {Isa::Sse2, Isa::Neon, Isa::Avx2, Isa::Avx512})
      if (isa_available(i)) best = i;
  }
  g_active_isa.store(static_cast<int>(best));
  return best;
}

void set_isa(Isa isa) {
  if (!isa_available(isa)) throw std::invalid_argument(std::string("engine: no ") + isa_name(isa) + " path on this CPU or build");
  g_active_isa.store(static_cast<int>(isa));
}

// ---- Weights -------------------------------------------------------------------------------

namespace {

void check_config(const Config& cfg) {
  const int64_t V = cfg.vocab_size, C = cfg.hidden_size, I = cfg.intermediate_size, H = cfg.num_attention_heads,
                Kv = cfg.num_key_value_heads, D = cfg.head_dim, P = cfg.max_position_embeddings;
  if (V < 1 || C < 1 || I < 1 || cfg.num_hidden_layers < 0 || H < 1 || Kv < 1 || H % Kv != 0 || D < 2 || D % 2 != 0 ||
      P < 1)
    throw std::invalid_argument("engine: inconsistent config (vocab " + std::to_string(V) + ", hidden " + std::to_string(C) +
                                ", heads " + std::to_string(H) + "/" + std::to_string(Kv) + ", head_dim " +
                                std::to_string(D) + ", positions " + std::to_string(P) + ")");
}

// The shapes of the 7 projections of a layer: {N, K}.
std::array<std::array<int64_t, 2>, 7> proj_shapes(const Config& c) {
  const int64_t C = c.hidden_size, I = c.intermediate_size, H = c.num_attention_heads, Kv = c.num_key_value_heads,
                D = c.head_dim;
  return {{{H * D, C}, {Kv * D, C}, {Kv * D, C}, {C, H * D}, {I, C}, {I, C}, {C, I}}};
}

}  // namespace

void Weights::build_rope() {
  // RoPE tables, as transformers builds them in float32: inv_freq[i] = 1 / theta^(2i / D) and
  // angle = pos * inv_freq[i]; theta^e, sin and cos in double (math.h), rounded to float once.
  const int64_t D = cfg_.head_dim, P = cfg_.max_position_embeddings, half = D / 2;
  const double log2_theta = fixed_log2(cfg_.rope_theta);
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(D);
    inv_freq[static_cast<size_t>(i)] = 1.0f / static_cast<float>(fixed_exp2(static_cast<double>(e) * log2_theta));
  }
  rope_cos_.resize(static_cast<size_t>(P * half));
  rope_sin_.resize(static_cast<size_t>(P * half));
  for (int64_t pos = 0; pos < P; ++pos)
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos) * inv_freq[static_cast<size_t>(i)];
      double s = 0, c = 0;
      fixed_sincos(static_cast<double>(angle), &s, &c);
      rope_cos_[static_cast<size_t>(pos * half + i)] = static_cast<float>(c);
      rope_sin_[static_cast<size_t>(pos * half + i)] = static_cast<float>(s);
    }
}

void merge_lora(const LoraRef& l, float* w, int64_t N, int64_t K) {
  if (l.a.shape.size() != 2 || l.b.shape.size() != 2 || l.a.shape[1] != K || l.b.shape[0] != N ||
      l.b.shape[1] != l.a.shape[0] || !l.a.data || !l.b.data)
    throw std::invalid_argument("engine: LoRA pair of '" + l.module + "' has A " + shape_str(l.a.shape) + " and B " +
                                shape_str(l.b.shape) + ", expected A [r, " + std::to_string(K) + "] and B [" +
                                std::to_string(N) + ", r] (was this adapter trained for another base model?)");
  FpEnvGuard fp;
  // W'[n, k] = W[n, k] + s * (sum over r, in order, of B[n, r] * A[r, k]), each operation rounded
  // to float32 (the engine's flags: no contraction into fused multiply-adds).
  const int64_t R = l.a.shape[0];
  const float s = static_cast<float>(l.scaling);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      float d = 0.0f;
      for (int64_t r = 0; r < R; ++r) d = d + l.b.data[n * R + r] * l.a.data[r * K + k];
      w[n * K + k] = w[n * K + k] + s * d;
    }
}

Weights::Weights(const Config& cfg, const TensorMap& w, const std::vector<LoraRef>& lora) : cfg_(cfg) {
  check_config(cfg);
  FpEnvGuard fp;
  const int64_t V = cfg.vocab_size, C = cfg.hidden_size;
  // LoRA pairs by module, each used exactly once.
  std::map<std::string, const LoraRef*> by_module;
  for (const LoraRef& l : lora) {
    if (!by_module.emplace(l.module, &l).second)
      throw std::invalid_argument("engine: LoRA module '" + l.module + "' given twice");
  }
  merged_lora_ = !lora.empty();
  auto load = [&](const std::string& module, int64_t N, int64_t K, bool with_bias) {
    std::vector<float> wt = copy_of(need(w, module + ".weight", {N, K}));
    auto it = by_module.find(module);
    if (it != by_module.end()) {
      merge_lora(*it->second, wt.data(), N, K);
      by_module.erase(it);
    }
    PackedMatrix m = pack_floats(wt.data(), N, K);
    if (with_bias) m.bias = copy_of(need(w, module + ".bias", {N}));
    return m;
  };

  const TensorRef& emb = need(w, "model.embed_tokens.weight", {V, C});
  embed_kind_ = WeightKind::F32;
  if (!cfg.tie_word_embeddings) {
    embed_.resize(static_cast<size_t>(V * C) * sizeof(float));
    std::memcpy(embed_.data(), emb.data, embed_.size());
  }
  const auto shapes = proj_shapes(cfg);
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer L;
    L.input_norm = copy_of(need(w, p + "input_layernorm.weight", {C}));
    L.post_norm = copy_of(need(w, p + "post_attention_layernorm.weight", {C}));
    PackedMatrix* mats[7] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
    for (int j = 0; j < 7; ++j)
      *mats[j] = load(p + kProjNames[j], shapes[j][0], shapes[j][1], j < 4 ? cfg.attention_bias : cfg.mlp_bias);
    layers_.push_back(std::move(L));
  }
  final_norm_ = copy_of(need(w, "model.norm.weight", {C}));
  lm_head_ = cfg.tie_word_embeddings ? pack_floats(emb.data, V, C) : load("lm_head", V, C, false);
  if (!by_module.empty())
    throw std::invalid_argument("engine: LoRA module '" + by_module.begin()->first +
                                "' is not a projection of this model (was this adapter trained for another base model?)");
  build_rope();
}

Weights::Weights(const Config& cfg, const StoredMap& w, const std::function<void(const std::string&)>& on_packed) : cfg_(cfg) {
  check_config(cfg);
  FpEnvGuard fp;
  const int64_t V = cfg.vocab_size, C = cfg.hidden_size;
  auto matrix = [&](const std::string& key, int64_t N, int64_t K) {
    const StoredTensor& t = need(w, key, {N, K});
    StoredMatrix s;
    s.kind = t.kind;
    s.rows = N;
    s.cols = K;
    s.data = t.data;
    s.permute_heads = t.permute_heads;
    return pack_matrix(s, "engine: tensor '" + key + "'");
  };
  auto vec = [&](const std::string& key, int64_t N) { return vector_of(need(w, key, {N}), key); };

  const StoredTensor& emb = need(w, "model.embed_tokens.weight", {V, C});
  const auto shapes = proj_shapes(cfg);
  // Every tensor's presence and shape is checked before the matrices are packed (in parallel).
  struct Job {
    PackedMatrix* out;
    std::string key;
    int64_t n, k;
  };
  std::vector<Job> jobs;
  layers_.resize(static_cast<size_t>(cfg.num_hidden_layers));
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer& L = layers_[static_cast<size_t>(i)];
    L.input_norm = vec(p + "input_layernorm.weight", C);
    L.post_norm = vec(p + "post_attention_layernorm.weight", C);
    PackedMatrix* mats[7] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
    for (int j = 0; j < 7; ++j) {
      const std::string key = p + kProjNames[j];
      need(w, key + ".weight", {shapes[j][0], shapes[j][1]});
      jobs.push_back({mats[j], key + ".weight", shapes[j][0], shapes[j][1]});
      if (j < 4 ? cfg.attention_bias : cfg.mlp_bias) mats[j]->bias = vec(key + ".bias", shapes[j][0]);
    }
  }
  final_norm_ = vec("model.norm.weight", C);
  if (cfg.tie_word_embeddings) {
    jobs.push_back({&lm_head_, "model.embed_tokens.weight", V, C});
  } else {
    need(w, "lm_head.weight", {V, C});
    jobs.push_back({&lm_head_, "lm_head.weight", V, C});
    embed_kind_ = emb.kind;
    embed_.assign(emb.data, emb.data + emb.nbytes);
  }
  std::vector<std::string> biases(jobs.size());
  // In key order, so that a caller reading the stored bytes in that order too (a fingerprint) and
  // releasing each tensor once both are done holds only a few tensors at a time.
  std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) { return a.key < b.key; });
  parallel_for(jobs.size(), 0, [&](size_t i) {
    std::vector<float> bias = std::move(jobs[i].out->bias);
    *jobs[i].out = matrix(jobs[i].key, jobs[i].n, jobs[i].k);
    jobs[i].out->bias = std::move(bias);
    if (on_packed) on_packed(jobs[i].key);
  });
  build_rope();
}

bool Weights::has_quantized() const {
  if (kind_traits(lm_head_.kind).quantized) return true;
  for (const Layer& L : layers_)
    for (const PackedMatrix* m : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
      if (kind_traits(m->kind).quantized) return true;
  return false;
}

uint64_t Weights::bytes() const {
  uint64_t n = embed_.size() + lm_head_.data.size() + (rope_cos_.size() + rope_sin_.size() + final_norm_.size()) * 4;
  for (const Layer& L : layers_) {
    n += (L.input_norm.size() + L.post_norm.size()) * 4;
    for (const PackedMatrix* m : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) n += m->data.size() + m->bias.size() * 4;
  }
  return n;
}

std::string Weights::kinds_summary() const {
  std::map<std::string, int> count;
  for (const Layer& L : layers_)
    for (const PackedMatrix* m : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) ++count[kind_name(m->kind)];
  ++count[kind_name(lm_head_.kind)];
  std::string out;
  for (const auto& [k, n] : count) out += (out.empty() ? "" : ", ") + k + " x " + std::to_string(n);
  return out;
}

// ---- Adapter -------------------------------------------------------------------------------

namespace {

// A float32 pair as stored F32 bytes (the byte count from its shape: a shape that does not fit
// the projection is refused before the count is read).
StoredTensor stored_f32(const TensorRef& t) {
  uint64_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  return {t.shape, WeightKind::F32, reinterpret_cast<const uint8_t*>(t.data), n * 4, 0};
}

std::vector<StoredLoraRef> stored_pairs(const std::vector<LoraRef>& lora) {
  std::vector<StoredLoraRef> out;
  out.reserve(lora.size());
  for (const LoraRef& l : lora) out.push_back({l.module, stored_f32(l.a), stored_f32(l.b), l.scaling});
  return out;
}

}  // namespace

Adapter::Adapter(const Weights& base, const std::vector<LoraRef>& lora) : Adapter(base, stored_pairs(lora)) {}

Adapter::Adapter(const Weights& base, const std::vector<StoredLoraRef>& lora) : cfg_(base.config()) {
  FpEnvGuard fp;
  const auto shapes = proj_shapes(cfg_);
  layers_.resize(static_cast<size_t>(cfg_.num_hidden_layers));
  for (const StoredLoraRef& l : lora) {
    int64_t layer = -1;
    int proj = -1;
    for (int64_t i = 0; i < cfg_.num_hidden_layers && proj < 0; ++i)
      for (int j = 0; j < 7; ++j)
        if (l.module == "model.layers." + std::to_string(i) + "." + kProjNames[j]) layer = i, proj = j;
    if (proj < 0)
      throw std::invalid_argument("engine: LoRA module '" + l.module +
                                  "' is not a projection of this model (was this adapter trained for another base model?)");
    Pair& pair = layers_[static_cast<size_t>(layer)][static_cast<size_t>(proj)];
    if (pair.present) throw std::invalid_argument("engine: LoRA module '" + l.module + "' given twice");
    const int64_t N = shapes[static_cast<size_t>(proj)][0], K = shapes[static_cast<size_t>(proj)][1];
    if (l.a.shape.size() != 2 || l.b.shape.size() != 2 || l.a.shape[1] != K || l.b.shape[0] != N ||
        l.b.shape[1] != l.a.shape[0] || l.a.shape[0] < 1 || !l.a.data || !l.b.data)
      throw std::invalid_argument("engine: LoRA pair of '" + l.module + "' has A " + shape_str(l.a.shape) + " and B " +
                                  shape_str(l.b.shape) + ", expected A [r, " + std::to_string(K) + "] and B [" +
                                  std::to_string(N) + ", r] (was this adapter trained for another base model?)");
    // Each matrix of the pair as a StoredMatrix, once its kind, row order and byte count are checked.
    auto stored = [&](const StoredTensor& t, const char* which) {
      const std::string what = "engine: LoRA pair of '" + l.module + "': " + which;
      if (t.kind != WeightKind::F32 && t.kind != WeightKind::F16 && t.kind != WeightKind::BF16)
        throw std::invalid_argument(what + " is " + kind_name(t.kind) + "; a LoRA pair must be F32, F16 or BF16");
      if (t.permute_heads != 0)
        throw std::invalid_argument(what + " has its rows in llama.cpp's rotary order; a LoRA pair must be in Hugging Face's");
      const int64_t rows = t.shape[0], cols = t.shape[1];
      const uint64_t rb = row_bytes(t.kind, cols);
      const bool fits = static_cast<uint64_t>(rows) <= std::numeric_limits<uint64_t>::max() / rb;
      if (!fits || t.nbytes != rb * static_cast<uint64_t>(rows))
        throw std::invalid_argument(what + " holds " + std::to_string(t.nbytes) + " bytes, but " + shape_str(t.shape) +
                                    " in " + kind_name(t.kind) + " needs " +
                                    (fits ? std::to_string(rb * static_cast<uint64_t>(rows)) : std::string("more than 2^64")));
      return std::make_pair(StoredMatrix{t.kind, rows, cols, t.data, 0}, what);
    };
    const auto [a, what_a] = stored(l.a, "A");
    const auto [b, what_b] = stored(l.b, "B");
    pair.a = pack_as_f32(a, what_a);
    pair.b = pack_as_f32(b, what_b);
    pair.scaling = static_cast<float>(l.scaling);
    pair.present = true;
  }
}

uint64_t Adapter::bytes() const {
  uint64_t n = 0;
  for (const auto& layer : layers_)
    for (const Pair& p : layer) n += p.a.data.size() + p.b.data.size();
  return n;
}

// ---- Model ---------------------------------------------------------------------------------

Model::Model(const Config& cfg, const TensorMap& w, const std::vector<LoraRef>& lora)
    : base_(std::make_shared<const Weights>(cfg, w, lora)), version_(1) {}

Model::Model(std::shared_ptr<const Weights> base, std::shared_ptr<const Adapter> adapter)
    : base_(std::move(base)), adapter_(std::move(adapter)) {
  if (!base_) throw std::invalid_argument("engine: a model needs weights");
  version_ = base_->merged_lora_ ? 1 : 2;
  if (adapter_ && version_ == 1)
    throw std::invalid_argument("engine: these weights have an adapter merged into them; a side-path adapter cannot be added");
  if (adapter_ && adapter_->layers_.size() != base_->layers_.size())
    throw std::invalid_argument("engine: the adapter was built for a model of " + std::to_string(adapter_->layers_.size()) +
                                " layers, this one has " + std::to_string(base_->layers_.size()));
}

bool Model::computes_version(int v) const { return v == version_; }

Cache Model::new_cache(int64_t batch, int64_t capacity) const {
  if (batch < 1) throw std::invalid_argument("engine: a cache needs at least one stream, got " + std::to_string(batch));
  Cache c;
  c.batch = batch;
  c.length.assign(static_cast<size_t>(batch), 0);
  c.cap.assign(static_cast<size_t>(batch), 0);
  c.k.resize(static_cast<size_t>(batch));
  c.v.resize(static_cast<size_t>(batch));
  c.k16.resize(static_cast<size_t>(batch));
  c.v16.resize(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) reset_stream(c, b, capacity);
  return c;
}

void Model::reset_stream(Cache& c, int64_t stream, int64_t capacity) const {
  const Config& cfg = config();
  if (capacity < 1 || capacity > cfg.max_position_embeddings)
    throw std::invalid_argument("engine: cache capacity " + std::to_string(capacity) + " must be in 1.." +
                                std::to_string(cfg.max_position_embeddings) + " (max_position_embeddings)");
  if (stream < 0 || stream >= c.batch)
    throw std::invalid_argument("engine: stream " + std::to_string(stream) + " is not in a cache of " + std::to_string(c.batch) +
                                " streams");
  const int64_t D = cfg.head_dim, blocks = cfg.num_hidden_layers * cfg.num_key_value_heads;
  const size_t b = static_cast<size_t>(stream);
  c.cap[b] = capacity;
  c.length[b] = 0;
  const size_t kn = static_cast<size_t>(blocks * round_up16(capacity) * D), vn = static_cast<size_t>(blocks * round_up16(D) * capacity);
  if (version_ == 1) {
    c.k[b].resize(kn);
    c.v[b].resize(vn);
  } else {
    c.k16[b].resize(kn);
    c.v16[b].resize(vn);
  }
  c.capacity = *std::max_element(c.cap.begin(), c.cap.end());
}

void Model::check_cache(const Cache& cache) const {
  const Config& cfg = config();
  bool ok = cache.batch >= 1 && cache.length.size() == static_cast<size_t>(cache.batch) &&
            cache.cap.size() == static_cast<size_t>(cache.batch) && cache.k.size() == static_cast<size_t>(cache.batch) &&
            cache.v.size() == static_cast<size_t>(cache.batch) && cache.k16.size() == static_cast<size_t>(cache.batch) &&
            cache.v16.size() == static_cast<size_t>(cache.batch);
  for (int64_t b = 0; ok && b < cache.batch; ++b)
    ok = (version_ == 1 ? cache.k[static_cast<size_t>(b)].size() : cache.k16[static_cast<size_t>(b)].size()) ==
         static_cast<size_t>(cfg.num_hidden_layers * cfg.num_key_value_heads * round_up16(cache.cap[static_cast<size_t>(b)]) *
                             cfg.head_dim);
  if (!ok) throw std::invalid_argument("engine: the cache was not made by this model's new_cache()");
}

void Model::forward(const int32_t* tokens, int64_t T, float* logits) const {
  if (T < 0 || T > config().max_position_embeddings)
    throw std::invalid_argument("engine: " + std::to_string(T) + " positions exceed max_position_embeddings = " +
                                std::to_string(config().max_position_embeddings));
  if (T == 0) return;
  Cache cache = new_cache(1, T);
  extend(tokens, T, cache, 0, logits);
}

void Model::extend(const int32_t* tokens, int64_t T, Cache& cache, int64_t stream, float* logits) const {
  check_cache(cache);
  if (stream < 0 || stream >= cache.batch)
    throw std::invalid_argument("engine: stream " + std::to_string(stream) + " is not in a cache of " +
                                std::to_string(cache.batch) + " streams");
  const int64_t len = cache.length[static_cast<size_t>(stream)], cap = cache.cap[static_cast<size_t>(stream)];
  if (T < 0 || T > cap - len)
    throw std::invalid_argument("engine: " + std::to_string(T) + " more positions do not fit stream " + std::to_string(stream) +
                                "'s cache (" + std::to_string(len) + " of " + std::to_string(cap) + " used)");
  if (T == 0) return;
  std::vector<Row> rows(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) rows[static_cast<size_t>(t)] = {stream, tokens[t], version_ == 2 ? adapter_.get() : nullptr, true};
  run_rows(rows.data(), T, cache, logits);
}

void Model::hidden_states(const int32_t* tokens, int64_t T, int64_t layers, float* hidden) const {
  const Config& cfg = config();
  if (layers < 0 || layers > cfg.num_hidden_layers)
    throw std::invalid_argument("engine: hidden states after " + std::to_string(layers) + " blocks: the model has " +
                                std::to_string(cfg.num_hidden_layers) + " (ask for 0.." + std::to_string(cfg.num_hidden_layers) + ")");
  if (T < 0 || T > cfg.max_position_embeddings)
    throw std::invalid_argument("engine: " + std::to_string(T) + " positions exceed max_position_embeddings = " +
                                std::to_string(cfg.max_position_embeddings));
  if (T == 0) return;
  Cache cache = new_cache(1, T);
  std::vector<Row> rows(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) rows[static_cast<size_t>(t)] = {0, tokens[t], version_ == 2 ? adapter_.get() : nullptr, false};
  run_rows(rows.data(), T, cache, hidden, layers);
}

void Model::step(const int32_t* tokens, Cache& cache, float* logits) const {
  check_cache(cache);
  std::vector<Row> rows(static_cast<size_t>(cache.batch));
  for (int64_t b = 0; b < cache.batch; ++b) rows[static_cast<size_t>(b)] = {b, tokens[b], version_ == 2 ? adapter_.get() : nullptr, true};
  run_rows(rows.data(), cache.batch, cache, logits);
}

void Model::run(const Row* rows, int64_t M, Cache& cache, float* logits) const {
  check_cache(cache);
  if (M <= 0) return;
  for (int64_t m = 0; m < M; ++m) {
    const Adapter* a = rows[m].adapter;
    if (a && version_ == 1)
      throw std::invalid_argument("engine: a version-1 model has its adapter merged; rows cannot name another");
    if (a && a->layers_.size() != base_->layers_.size())
      throw std::invalid_argument("engine: row " + std::to_string(m) + "'s adapter was built for another model");
  }
  run_rows(rows, M, cache, logits);
}

void Model::run_rows(const Row* rows, int64_t M, Cache& cache, float* logits, int64_t stop_layers) const {
  const Weights& W = *base_;
  const Config& c = W.cfg_;
  const int64_t V = c.vocab_size, C = c.hidden_size, I = c.intermediate_size, H = c.num_attention_heads,
                Kv = c.num_key_value_heads, G = H / Kv, D = c.head_dim, half = D / 2, D16 = round_up16(D);
  // Positions: each row takes its stream's next position (earlier rows of the stream first).
  std::vector<int64_t> pos(static_cast<size_t>(M));
  {
    std::vector<int64_t> next(cache.length);
    for (int64_t m = 0; m < M; ++m) {
      const int64_t s = rows[m].stream;
      if (s < 0 || s >= cache.batch)
        throw std::invalid_argument("engine: stream " + std::to_string(s) + " is not in a cache of " +
                                    std::to_string(cache.batch) + " streams");
      if (rows[m].token < 0 || rows[m].token >= V)
        throw std::invalid_argument("engine: token id " + std::to_string(rows[m].token) + " is outside the vocabulary [0, " +
                                    std::to_string(V) + ") (tokenizer and model do not match?)");
      if (next[static_cast<size_t>(s)] >= cache.cap[static_cast<size_t>(s)])
        throw std::invalid_argument("engine: stream " + std::to_string(s) + "'s cache is full (" +
                                    std::to_string(cache.cap[static_cast<size_t>(s)]) + " positions)");
      pos[static_cast<size_t>(m)] = next[static_cast<size_t>(s)]++;
    }
  }
  FpEnvGuard fp;
  const Kernels& kn = kernels_for(select_isa());
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));

  // Scratch: x, h, o [M, C]; q, att [M, H*D]; k, v [M, Kv*D]; g, u [M, I].
  const int64_t need_floats = 3 * M * C + 2 * M * H * D + 2 * M * Kv * D + 2 * M * I;
  float* x = grow(cache.work, static_cast<size_t>(need_floats));
  float* h = x + M * C;
  float* o = h + M * C;
  float* q = o + M * C;
  float* att = q + M * H * D;
  float* k = att + M * H * D;
  float* v = k + M * Kv * D;
  float* g = v + M * Kv * D;
  float* u = g + M * I;
  // Quantized activations (version 2, quantized matrices): codes [M, Kmax], scales, half sums.
  const int64_t kmax = std::max({C, I, H * D});
  int8_t* xq = grow(cache.qwork, static_cast<size_t>(M * kmax + M * (kmax / 32) * 4 + M * (kmax / 16) * 4 + 64));
  float* xd = reinterpret_cast<float*>(xq + (M * kmax + 63) / 64 * 64);
  int32_t* xs = reinterpret_cast<int32_t*>(xd + M * (kmax / 32));
  const bool v2 = version_ == 2;

  // Rows grouped by adapter (version 2): the side path runs once per adapter over its rows.
  struct AdapterRows {
    const Adapter* a;
    std::vector<int64_t> rows;
  };
  std::vector<AdapterRows> by_adapter;
  if (v2)
    for (int64_t m = 0; m < M; ++m) {
      const Adapter* a = rows[m].adapter;
      if (!a) continue;
      auto it = std::find_if(by_adapter.begin(), by_adapter.end(), [&](const AdapterRows& r) { return r.a == a; });
      if (it == by_adapter.end()) by_adapter.push_back({a, {m}});
      else it->rows.push_back(m);
    }

  // y_j [M, N_j] = in [M, K] W_j^T (+ bias) (+ s B (A in) for rows with an adapter pair), for the
  // matrices `mats` (same K), split over the threads by output panels.
  auto project = [&](const float* in, int64_t K, std::initializer_list<std::pair<const PackedMatrix*, float*>> mats_il,
                     int layer, std::initializer_list<int> projs_il) {
    const std::vector<std::pair<const PackedMatrix*, float*>> mats(mats_il);
    const std::vector<int> projs(projs_il);
    QuantizedRows qr;
    bool quantized = false;
    for (const auto& mt : mats) quantized = quantized || kind_traits(mt.first->kind).quantized;
    if (quantized) {
      for (int64_t m = 0; m < M; ++m) kn.quantize_row(in + m * K, K, xq + m * K, xd + m * (K / 32), xs + m * (K / 16));
      qr = {xq, xd, xs, K};
    }
    int64_t total = 0;
    for (const auto& mt : mats) total += mt.first->panels();
    par(total, [&](int part, int parts) {
      int64_t a, b;
      part_range(total, part, parts, &a, &b);
      int64_t base = 0;
      for (size_t j = 0; j < mats.size(); ++j) {
        const PackedMatrix& wm = *mats[j].first;
        float* y = mats[j].second;
        const int64_t p0 = std::max<int64_t>(a - base, 0), p1 = std::min<int64_t>(b - base, wm.panels());
        base += wm.panels();
        if (p0 >= p1) continue;
        const int64_t N = wm.n, n0 = 16 * p0, n1 = std::min(16 * p1, N);
        matmul_panels(kn, in, qr, M, wm, p0, p1, y, N);
        if (!wm.bias.empty())
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = n0; n < n1; ++n) y[m * N + n] = y[m * N + n] + wm.bias[static_cast<size_t>(n)];
        if (layer < 0) continue;
        for (const AdapterRows& ar : by_adapter) {
          const Adapter::Pair& pr = ar.a->layers_[static_cast<size_t>(layer)][static_cast<size_t>(projs[j])];
          if (!pr.present) continue;
          // t = in_rows A^T [ma, R]; u = t B^T over this part's columns; y += s * u.
          const int64_t ma = static_cast<int64_t>(ar.rows.size()), Rk = pr.a.n;
          thread_local std::vector<float> xa, t, uu;
          float* xa_p = grow(xa, static_cast<size_t>(ma * K));
          float* t_p = grow(t, static_cast<size_t>(ma * Rk));
          float* u_p = grow(uu, static_cast<size_t>(ma * (n1 - n0)));
          for (int64_t r = 0; r < ma; ++r) std::memcpy(xa_p + r * K, in + ar.rows[static_cast<size_t>(r)] * K, static_cast<size_t>(K) * 4);
          matmul_panels(kn, xa_p, QuantizedRows{}, ma, pr.a, 0, pr.a.panels(), t_p, Rk);
          kn.matmul(t_p, Rk, ma, Rk, reinterpret_cast<const float*>(pr.b.panel(p0)), Rk * 16, n1 - n0, u_p, n1 - n0);
          for (int64_t r = 0; r < ma; ++r) {
            float* yr = y + ar.rows[static_cast<size_t>(r)] * N;
            for (int64_t n = n0; n < n1; ++n) yr[n] = yr[n] + pr.scaling * u_p[r * (n1 - n0) + (n - n0)];
          }
        }
      }
    });
  };

  // Embeddings: (M) -> (M, C)
  for (int64_t m = 0; m < M; ++m) {
    float* xr = x + m * C;
    if (W.embed_.empty()) unpack_row(W.lm_head_, rows[m].token, xr);
    else dequantize_row(W.embed_kind_, W.embed_.data() + static_cast<uint64_t>(rows[m].token) * row_bytes(W.embed_kind_, C), xr, C);
  }

  for (size_t li = 0; li < W.layers_.size(); ++li) {
    if (stop_layers >= 0 && static_cast<int64_t>(li) == stop_layers) break;
    const Weights::Layer& L = W.layers_[li];
    const int layer = v2 ? static_cast<int>(li) : -1;
    for (int64_t m = 0; m < M; ++m) rms_norm(kn, x + m * C, L.input_norm.data(), C, eps, h + m * C);
    project(h, C, {{&L.q, q}, {&L.k, k}, {&L.v, v}}, layer, {0, 1, 2});  // (M, C) -> (M, H*D), 2 x (M, Kv*D)
    for (int64_t m = 0; m < M; ++m) {  // RoPE, then k and v into the stream's cache at pos
      const int64_t p = pos[static_cast<size_t>(m)], s = rows[m].stream;
      const int64_t cap = cache.cap[static_cast<size_t>(s)], cap16 = round_up16(cap);
      const float* cs = W.rope_cos_.data() + p * half;
      const float* sn = W.rope_sin_.data() + p * half;
      for (int64_t hh = 0; hh < H; ++hh) rope(q + (m * H + hh) * D, cs, sn, half);
      for (int64_t kh = 0; kh < Kv; ++kh) {
        float* kr = k + (m * Kv + kh) * D;
        rope(kr, cs, sn, half);
        const int64_t block = static_cast<int64_t>(li) * Kv + kh;
        const float* vr = v + (m * Kv + kh) * D;
        const size_t sb = static_cast<size_t>(s);
        if (v2) {  // version 2 keeps K and V as IEEE halves (rounded to nearest even)
          uint16_t* kc = cache.k16[sb].data() + block * cap16 * D;  // panels of 16 positions: [cap16/16][D][16]
          uint16_t* vc = cache.v16[sb].data() + block * D16 * cap;  // panels of 16 dims: [D16/16][cap][16]
          for (int64_t d = 0; d < D; ++d) {
            kc[(p / 16) * D * 16 + d * 16 + p % 16] = f32_to_f16(kr[d]);
            vc[(d / 16) * cap * 16 + p * 16 + d % 16] = f32_to_f16(vr[d]);
          }
        } else {
          float* kc = cache.k[sb].data() + block * cap16 * D;
          float* vc = cache.v[sb].data() + block * D16 * cap;
          for (int64_t d = 0; d < D; ++d) {
            kc[(p / 16) * D * 16 + d * 16 + p % 16] = kr[d];
            vc[(d / 16) * cap * 16 + p * 16 + d % 16] = vr[d];
          }
        }
      }
    }
    // Attention of row m over positions 0..pos of its stream: one task per (row, kv head), or per
    // (row, query head) when that gives the threads too few tasks (each query head's scores and
    // output are its own, whichever rows share the call).
    const int64_t per_row = M * Kv >= 4 * threads() ? Kv : H;
    par(M * per_row, [&](int part, int parts) {
      int64_t a, b;
      part_range(M * per_row, part, parts, &a, &b);
      thread_local std::vector<float> scores_buf;
      for (int64_t task = a; task < b; ++task) {
        const int64_t m = task / per_row, t = task % per_row;
        const int64_t kh = per_row == Kv ? t : t / G, h0 = per_row == Kv ? kh * G : t, g_rows = per_row == Kv ? G : 1;
        const int64_t s = rows[m].stream, n = pos[static_cast<size_t>(m)] + 1;
        const int64_t cap = cache.cap[static_cast<size_t>(s)], cap16 = round_up16(cap);
        const int64_t block = static_cast<int64_t>(li) * Kv + kh;
        float* scores = grow(scores_buf, static_cast<size_t>(g_rows * n));
        // The query heads h0 .. h0 + g_rows - 1 of kv head kh: (g, D) x (D, n) -> scores (g, n).
        const float* qh = q + (m * H + h0) * D;
        if (v2) kn.matmul_f16(qh, D, g_rows, D, cache.k16[static_cast<size_t>(s)].data() + block * cap16 * D, D * 16, n, scores, n);
        else kn.matmul(qh, D, g_rows, D, cache.k[static_cast<size_t>(s)].data() + block * cap16 * D, D * 16, n, scores, n);
        for (int64_t gi = 0; gi < g_rows; ++gi) {
          float* sc = scores + gi * n;
          for (int64_t l = 0; l < n; ++l) sc[l] = sc[l] * scale;
          const float mx = kn.tree_max(sc, n);
          kn.exp_shifted(sc, n, mx, sc);
          kn.divide(sc, n, kn.tree_sum(sc, n));
        }
        // (g, n) x (n, D) -> (g, D)
        float* out = att + (m * H + h0) * D;
        if (v2) kn.matmul_f16(scores, n, g_rows, n, cache.v16[static_cast<size_t>(s)].data() + block * D16 * cap, cap * 16, D, out, D);
        else kn.matmul(scores, n, g_rows, n, cache.v[static_cast<size_t>(s)].data() + block * D16 * cap, cap * 16, D, out, D);
      }
    });
    project(att, H * D, {{&L.o, o}}, layer, {3});  // (M, H*D) -> (M, C)
    for (int64_t i = 0; i < M * C; ++i) x[i] = x[i] + o[i];
    for (int64_t m = 0; m < M; ++m) rms_norm(kn, x + m * C, L.post_norm.data(), C, eps, h + m * C);
    project(h, C, {{&L.gate, g}, {&L.up, u}}, layer, {4, 5});  // (M, C) -> 2 x (M, I)
    kn.silu_mul(g, u, M * I, g);
    project(g, I, {{&L.down, o}}, layer, {6});  // (M, I) -> (M, C)
    for (int64_t i = 0; i < M * C; ++i) x[i] = x[i] + o[i];
  }
  for (int64_t m = 0; m < M; ++m) cache.length[static_cast<size_t>(rows[m].stream)] = pos[static_cast<size_t>(m)] + 1;
  if (stop_layers >= 0) {  // the residual stream itself: (M, C)
    std::memcpy(logits, x, static_cast<size_t>(M * C) * sizeof(float));
    return;
  }
  // The head, for the rows that want logits: (Ml, C) -> (Ml, V)
  int64_t ml = 0;
  for (int64_t m = 0; m < M; ++m)
    if (rows[m].logits) rms_norm(kn, x + m * C, W.final_norm_.data(), C, eps, h + (ml++) * C);
  if (ml == 0) return;
  {
    QuantizedRows qr;
    if (kind_traits(W.lm_head_.kind).quantized) {
      for (int64_t m = 0; m < ml; ++m) kn.quantize_row(h + m * C, C, xq + m * C, xd + m * (C / 32), xs + m * (C / 16));
      qr = {xq, xd, xs, C};
    }
    const PackedMatrix& head = W.lm_head_;
    par(head.panels(), [&](int part, int parts) {
      int64_t a, b;
      part_range(head.panels(), part, parts, &a, &b);
      if (a < b) matmul_panels(kn, h, qr, ml, head, a, b, logits, V);
    });
  }
}

void softmax(const float* logits, int64_t V, float* probs) {
  FpEnvGuard fp;
  const Kernels& kn = kernels_for(select_isa());
  const float mx = kn.tree_max(logits, V);
  kn.exp_shifted(logits, V, mx, probs);
  kn.divide(probs, V, kn.tree_sum(probs, V));
}

double code_length_bits(float p) {
  FpEnvGuard fp;
  return -fixed_log2(static_cast<double>(p));
}

}  // namespace lorazip::engine
