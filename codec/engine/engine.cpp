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
#include <mutex>
#include <stdexcept>
#include <thread>

#include "codec/engine/kernels.h"
#include "codec/engine/math.h"

#if defined(__x86_64__)
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

const Kernels& kernels_for(Isa isa) {
  if (const Kernels* k = g_override.load()) return *k;
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Sse2: return kernels_sse2();
    case Isa::Avx2: return kernels_avx2();
    case Isa::Avx512: return kernels_avx512();
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

std::vector<float> copy_of(const TensorRef& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  return std::vector<float>(t.data, t.data + n);
}

// W [N, K] row-major -> panels [ceil(N / 16)][K][16], zero columns past N.
PackedMatrix pack(const std::vector<float>& w, int64_t N, int64_t K) {
  PackedMatrix m;
  m.n = N;
  m.k = K;
  const int64_t P = (N + 15) / 16;
  m.data.assign(static_cast<size_t>(P * K * 16), 0.0f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) m.data[static_cast<size_t>((n / 16) * K * 16 + k * 16 + n % 16)] = w[static_cast<size_t>(n * K + k)];
  return m;
}

// y [M, N] = x [M, K] W^T (+ bias), rows ldx apart.
void project(const Kernels& kn, const float* x, int64_t ldx, int64_t M, const PackedMatrix& w, float* y) {
  kn.matmul(x, ldx, M, w.k, w.data.data(), w.k * 16, w.n, y, w.n);
  if (!w.bias.empty())
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < w.n; ++n) y[m * w.n + n] = y[m * w.n + n] + w.bias[static_cast<size_t>(n)];
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

}  // namespace

void override_kernels_for_testing(const Kernels* k) { g_override.store(k); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Sse2: return "sse2";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Neon: return "neon";
  }
  return "unknown";
}

bool isa_available(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
#if defined(__x86_64__)
    case Isa::Sse2: return true;
    case Isa::Avx2: return __builtin_cpu_supports("avx2");
    case Isa::Avx512: return __builtin_cpu_supports("avx512f");
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
  if (const char* env = std::getenv("LORAZIP_ENGINE_ISA"); env && *env) {
    bool known = false;
    for (Isa i : {Isa::Scalar, Isa::Sse2, Isa::Avx2, Isa::Avx512, Isa::Neon})
      if (std::string(env) == isa_name(i)) best = i, known = true;
    if (!known)
      throw std::invalid_argument(std::string("LORAZIP_ENGINE_ISA='") + env +
                                  "' is not one of scalar, sse2, avx2, avx512, neon");
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

Model::Model(const Config& cfg, const TensorMap& w, const std::vector<LoraRef>& lora) : cfg_(cfg) {
  const int64_t V = cfg.vocab_size, C = cfg.hidden_size, I = cfg.intermediate_size, H = cfg.num_attention_heads,
                Kv = cfg.num_key_value_heads, D = cfg.head_dim, P = cfg.max_position_embeddings;
  if (V < 1 || C < 1 || I < 1 || cfg.num_hidden_layers < 0 || H < 1 || Kv < 1 || H % Kv != 0 || D < 2 || D % 2 != 0 ||
      P < 1)
    throw std::invalid_argument("engine: inconsistent config (vocab " + std::to_string(V) + ", hidden " + std::to_string(C) +
                                ", heads " + std::to_string(H) + "/" + std::to_string(Kv) + ", head_dim " +
                                std::to_string(D) + ", positions " + std::to_string(P) + ")");
  FpEnvGuard fp;

  // LoRA pairs by module, each used exactly once.
  std::map<std::string, const LoraRef*> by_module;
  for (const LoraRef& l : lora) {
    if (!by_module.emplace(l.module, &l).second)
      throw std::invalid_argument("engine: LoRA module '" + l.module + "' given twice");
  }
  auto load = [&](const std::string& module, int64_t N, int64_t K, bool with_bias) {
    std::vector<float> wt = copy_of(need(w, module + ".weight", {N, K}));
    auto it = by_module.find(module);
    if (it != by_module.end()) {
      const LoraRef& l = *it->second;
      if (l.a.shape.size() != 2 || l.b.shape.size() != 2 || l.a.shape[1] != K || l.b.shape[0] != N ||
          l.b.shape[1] != l.a.shape[0] || !l.a.data || !l.b.data)
        throw std::invalid_argument("engine: LoRA pair of '" + module + "' has A " + shape_str(l.a.shape) + " and B " +
                                    shape_str(l.b.shape) + ", expected A [r, " + std::to_string(K) + "] and B [" +
                                    std::to_string(N) + ", r] (was this adapter trained for another base model?)");
      // W'[n, k] = W[n, k] + s * (sum over r, in order, of B[n, r] * A[r, k]).
      const int64_t R = l.a.shape[0];
      const float s = static_cast<float>(l.scaling);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
          float d = 0.0f;
          for (int64_t r = 0; r < R; ++r) d = d + l.b.data[n * R + r] * l.a.data[r * K + k];
          wt[static_cast<size_t>(n * K + k)] = wt[static_cast<size_t>(n * K + k)] + s * d;
        }
      by_module.erase(it);
    }
    PackedMatrix m = pack(wt, N, K);
    if (with_bias) m.bias = copy_of(need(w, module + ".bias", {N}));
    return m;
  };

  embed_ = copy_of(need(w, "model.embed_tokens.weight", {V, C}));
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer L;
    L.input_norm = copy_of(need(w, p + "input_layernorm.weight", {C}));
    L.post_norm = copy_of(need(w, p + "post_attention_layernorm.weight", {C}));
    L.q = load(p + "self_attn.q_proj", H * D, C, cfg.attention_bias);
    L.k = load(p + "self_attn.k_proj", Kv * D, C, cfg.attention_bias);
    L.v = load(p + "self_attn.v_proj", Kv * D, C, cfg.attention_bias);
    L.o = load(p + "self_attn.o_proj", C, H * D, cfg.attention_bias);
    L.gate = load(p + "mlp.gate_proj", I, C, cfg.mlp_bias);
    L.up = load(p + "mlp.up_proj", I, C, cfg.mlp_bias);
    L.down = load(p + "mlp.down_proj", C, I, cfg.mlp_bias);
    layers_.push_back(std::move(L));
  }
  final_norm_ = copy_of(need(w, "model.norm.weight", {C}));
  lm_head_ = cfg.tie_word_embeddings ? pack(embed_, V, C) : load("lm_head", V, C, false);
  if (!by_module.empty())
    throw std::invalid_argument("engine: LoRA module '" + by_module.begin()->first +
                                "' is not a projection of this model (was this adapter trained for another base model?)");

  // RoPE tables, as transformers builds them in float32: inv_freq[i] = 1 / theta^(2i / D) and
  // angle = pos * inv_freq[i]; theta^e, sin and cos in double (math.h), rounded to float once.
  const int64_t half = D / 2;
  const double log2_theta = fixed_log2(cfg.rope_theta);
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

Cache Model::new_cache(int64_t batch, int64_t capacity) const {
  if (batch < 1) throw std::invalid_argument("engine: a cache needs at least one stream, got " + std::to_string(batch));
  if (capacity < 1 || capacity > cfg_.max_position_embeddings)
    throw std::invalid_argument("engine: cache capacity " + std::to_string(capacity) + " must be in 1.." +
                                std::to_string(cfg_.max_position_embeddings) + " (max_position_embeddings)");
  Cache c;
  c.batch = batch;
  c.capacity = capacity;
  c.length.assign(static_cast<size_t>(batch), 0);
  const int64_t D = cfg_.head_dim, blocks = cfg_.num_hidden_layers * batch * cfg_.num_key_value_heads;
  c.k.assign(static_cast<size_t>(blocks * round_up16(capacity) * D), 0.0f);
  c.v.assign(static_cast<size_t>(blocks * round_up16(D) * capacity), 0.0f);
  return c;
}

void Model::forward(const int32_t* tokens, int64_t T, float* logits) const {
  if (T < 0 || T > cfg_.max_position_embeddings)
    throw std::invalid_argument("engine: " + std::to_string(T) + " positions exceed max_position_embeddings = " +
                                std::to_string(cfg_.max_position_embeddings));
  if (T == 0) return;
  Cache cache = new_cache(1, T);
  extend(tokens, T, cache, 0, logits);
}

void Model::extend(const int32_t* tokens, int64_t T, Cache& cache, int64_t stream, float* logits) const {
  check_cache(cache);
  if (stream < 0 || stream >= cache.batch)
    throw std::invalid_argument("engine: stream " + std::to_string(stream) + " is not in a cache of " +
                                std::to_string(cache.batch) + " streams");
  int64_t& len = cache.length[static_cast<size_t>(stream)];
  if (T < 0 || T > cache.capacity - len)
    throw std::invalid_argument("engine: " + std::to_string(T) + " more positions do not fit stream " + std::to_string(stream) +
                                "'s cache (" + std::to_string(len) + " of " + std::to_string(cache.capacity) + " used)");
  if (T == 0) return;
  std::vector<Row> rows(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) rows[static_cast<size_t>(t)] = {stream, len + t, tokens[t]};
  run_rows(rows.data(), T, cache, logits);
  len += T;
}

void Model::hidden_states(const int32_t* tokens, int64_t T, int64_t layers, float* hidden) const {
  if (layers < 0 || layers > cfg_.num_hidden_layers)
    throw std::invalid_argument("engine: hidden states after " + std::to_string(layers) + " blocks: the model has " +
                                std::to_string(cfg_.num_hidden_layers) + " (ask for 0.." + std::to_string(cfg_.num_hidden_layers) + ")");
  if (T < 0 || T > cfg_.max_position_embeddings)
    throw std::invalid_argument("engine: " + std::to_string(T) + " positions exceed max_position_embeddings = " +
                                std::to_string(cfg_.max_position_embeddings));
  if (T == 0) return;
  Cache cache = new_cache(1, T);
  std::vector<Row> rows(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) rows[static_cast<size_t>(t)] = {0, t, tokens[t]};
  run_rows(rows.data(), T, cache, hidden, layers);
}

void Model::check_cache(const Cache& cache) const {
  if (cache.batch < 1 || cache.length.size() != static_cast<size_t>(cache.batch) ||
      cache.k.size() != static_cast<size_t>(cfg_.num_hidden_layers * cache.batch * cfg_.num_key_value_heads *
                                            round_up16(cache.capacity) * cfg_.head_dim))
    throw std::invalid_argument("engine: the cache was not made by this model's new_cache()");
}

void Model::step(const int32_t* tokens, Cache& cache, float* logits) const {
  check_cache(cache);
  std::vector<Row> rows(static_cast<size_t>(cache.batch));
  for (int64_t b = 0; b < cache.batch; ++b) {
    if (cache.length[static_cast<size_t>(b)] >= cache.capacity)
      throw std::invalid_argument("engine: stream " + std::to_string(b) + "'s cache is full (" +
                                  std::to_string(cache.capacity) + " positions)");
    rows[static_cast<size_t>(b)] = {b, cache.length[static_cast<size_t>(b)], tokens[b]};
  }
  run_rows(rows.data(), cache.batch, cache, logits);
  for (auto& l : cache.length) ++l;
}

void Model::run_rows(const Row* rows, int64_t M, Cache& cache, float* logits, int64_t stop_layers) const {
  const Config& c = cfg_;
  const int64_t V = c.vocab_size, C = c.hidden_size, I = c.intermediate_size, H = c.num_attention_heads,
                Kv = c.num_key_value_heads, G = H / Kv, D = c.head_dim, half = D / 2;
  const int64_t cap = cache.capacity, cap16 = round_up16(cap), D16 = round_up16(D);
  for (int64_t m = 0; m < M; ++m)
    if (rows[m].token < 0 || rows[m].token >= V)
      throw std::invalid_argument("engine: token id " + std::to_string(rows[m].token) + " is outside the vocabulary [0, " +
                                  std::to_string(V) + ") (tokenizer and model do not match?)");
  FpEnvGuard fp;
  const Kernels& kn = kernels_for(select_isa());
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));

  // Scratch: x, h, o [M, C]; q, att [M, H*D]; k, v [M, Kv*D]; g, u [M, I]; scores [G, cap].
  const int64_t need_floats = 3 * M * C + 2 * M * H * D + 2 * M * Kv * D + 2 * M * I + G * cap;
  if (cache.work.size() < static_cast<size_t>(need_floats)) cache.work.resize(static_cast<size_t>(need_floats));
  float* x = cache.work.data();
  float* h = x + M * C;
  float* o = h + M * C;
  float* q = o + M * C;
  float* att = q + M * H * D;
  float* k = att + M * H * D;
  float* v = k + M * Kv * D;
  float* g = v + M * Kv * D;
  float* u = g + M * I;
  float* scores = u + M * I;

  for (int64_t m = 0; m < M; ++m)  // (M) -> (M, C)
    std::memcpy(x + m * C, embed_.data() + static_cast<int64_t>(rows[m].token) * C, static_cast<size_t>(C) * sizeof(float));

  for (size_t li = 0; li < layers_.size(); ++li) {
    if (stop_layers >= 0 && static_cast<int64_t>(li) == stop_layers) break;
    const Layer& L = layers_[li];
    for (int64_t m = 0; m < M; ++m) rms_norm(kn, x + m * C, L.input_norm.data(), C, eps, h + m * C);
    project(kn, h, C, M, L.q, q);  // (M, C) -> (M, H*D)
    project(kn, h, C, M, L.k, k);  // (M, C) -> (M, Kv*D)
    project(kn, h, C, M, L.v, v);  // (M, C) -> (M, Kv*D)
    for (int64_t m = 0; m < M; ++m) {  // RoPE, then k and v into the stream's cache at pos
      const int64_t pos = rows[m].pos;
      const float* cs = rope_cos_.data() + pos * half;
      const float* sn = rope_sin_.data() + pos * half;
      for (int64_t hh = 0; hh < H; ++hh) rope(q + (m * H + hh) * D, cs, sn, half);
      for (int64_t kh = 0; kh < Kv; ++kh) {
        float* kr = k + (m * Kv + kh) * D;
        rope(kr, cs, sn, half);
        const int64_t block = (static_cast<int64_t>(li) * cache.batch + rows[m].stream) * Kv + kh;
        float* kc = cache.k.data() + block * cap16 * D;  // panels of 16 positions: [cap16/16][D][16]
        float* vc = cache.v.data() + block * D16 * cap;  // panels of 16 dims: [D16/16][cap][16]
        const float* vr = v + (m * Kv + kh) * D;
        for (int64_t d = 0; d < D; ++d) {
          kc[(pos / 16) * D * 16 + d * 16 + pos % 16] = kr[d];
          vc[(d / 16) * cap * 16 + pos * 16 + d % 16] = vr[d];
        }
      }
    }
    for (int64_t m = 0; m < M; ++m) {  // attention of row m over positions 0..pos of its stream
      const int64_t n = rows[m].pos + 1;
      for (int64_t kh = 0; kh < Kv; ++kh) {
        const int64_t block = (static_cast<int64_t>(li) * cache.batch + rows[m].stream) * Kv + kh;
        const float* kc = cache.k.data() + block * cap16 * D;
        const float* vc = cache.v.data() + block * D16 * cap;
        // The G query heads of kv head kh: (G, D) x (D, n) -> scores (G, n).
        kn.matmul(q + (m * H + kh * G) * D, D, G, D, kc, D * 16, n, scores, n);
        for (int64_t gi = 0; gi < G; ++gi) {
          float* s = scores + gi * n;
          for (int64_t l = 0; l < n; ++l) s[l] = s[l] * scale;
          const float mx = kn.tree_max(s, n);
          kn.exp_shifted(s, n, mx, s);
          kn.divide(s, n, kn.tree_sum(s, n));
        }
        // (G, n) x (n, D) -> (G, D)
        kn.matmul(scores, n, G, n, vc, cap * 16, D, att + (m * H + kh * G) * D, D);
      }
    }
    project(kn, att, H * D, M, L.o, o);  // (M, H*D) -> (M, C)
    for (int64_t i = 0; i < M * C; ++i) x[i] = x[i] + o[i];
    for (int64_t m = 0; m < M; ++m) rms_norm(kn, x + m * C, L.post_norm.data(), C, eps, h + m * C);
    project(kn, h, C, M, L.gate, g);  // (M, C) -> (M, I)
    project(kn, h, C, M, L.up, u);    // (M, C) -> (M, I)
    kn.silu_mul(g, u, M * I, g);
    project(kn, g, I, M, L.down, o);  // (M, I) -> (M, C)
    for (int64_t i = 0; i < M * C; ++i) x[i] = x[i] + o[i];
  }
  if (stop_layers >= 0) {  // the residual stream itself: (M, C)
    std::memcpy(logits, x, static_cast<size_t>(M * C) * sizeof(float));
    return;
  }
  for (int64_t m = 0; m < M; ++m) rms_norm(kn, x + m * C, final_norm_.data(), C, eps, h + m * C);
  project(kn, h, C, M, lm_head_, logits);  // (M, C) -> (M, V)
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

void parallel_for(size_t n, int threads, const std::function<void(size_t)>& fn) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), n));
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex mu;
  auto work = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= n) return;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (error) return;
      }
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < workers; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace lorazip::engine
