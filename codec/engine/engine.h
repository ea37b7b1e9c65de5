// The coding engine: a torch-free, BLAS-free Llama forward pass whose next-token distribution is
// a pure function of (weights, adapter, tokens). Every float it produces follows the arithmetic
// written down in docs/engine-arithmetic.md ("arithmetic version 1"): the same bits on any x86-64
// (SSE2, AVX2, AVX-512), on aarch64 (NEON), with the portable scalar path, for any batch
// composition and any thread count. The LM codec computes every probability through it.
//
// Shape letters: B streams, T positions, C hidden, V vocab, H query heads, K kv heads, D head dim,
// I intermediate, R LoRA rank.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lorazip::engine {

// The arithmetic this engine implements; recorded in every compressed file.
constexpr int kArithmeticVersion = 1;

// Model sizes (the fields of a Hugging Face LlamaConfig that the forward pass needs). Kept free of
// model/config.h's JSON and YAML so the engine cross-compiles alone (codec/engine/from_config.h
// converts a LlamaConfig).
struct Config {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;                 // D, even
  int64_t max_position_embeddings = 0;  // positions per stream
  double rms_norm_eps = 1e-5;           // used as float32, as transformers does
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;     // lm_head = model.embed_tokens
  bool attention_bias = false;          // q/k/v/o_proj have biases
  bool mlp_bias = false;                // gate/up/down_proj have biases
  int64_t bos_token_id = -1;            // unused by the forward pass; every coded stream starts from it
};

// A float32 tensor owned by the caller, row-major, with its shape; only read while a Model is
// being built.
struct TensorRef {
  std::vector<int64_t> shape;
  const float* data = nullptr;
};
using TensorMap = std::map<std::string, TensorRef>;  // Hugging Face key -> tensor

// One LoRA pair for a projection ("model.layers.0.self_attn.q_proj"): A [R, in], B [out, R].
struct LoraRef {
  std::string module;
  TensorRef a, b;
  double scaling = 0;  // alpha / r (rounded to float32 before use)
};

// Which kernels run. All give the same bits; the choice is speed only.
enum class Isa { Scalar, Sse2, Avx2, Avx512, Neon };
const char* isa_name(Isa isa);
// The fastest path this CPU supports, or the one LORAZIP_ENGINE_ISA (scalar|sse2|avx2|avx512|neon)
// names. std::invalid_argument when that variable names a path this CPU or build lacks.
Isa select_isa();
bool isa_available(Isa isa);
// Forces a path for this process (tests); std::invalid_argument when it is not available.
void set_isa(Isa isa);

// A weight matrix W [N, K] (out, in) stored as column panels: panel p holds W[16p + j, k] at
// data[p * K * 16 + k * 16 + j] (columns past N are zero). Kind F32 is the only kind in
// arithmetic version 1; docs/engine-arithmetic.md says how quantized kinds would fit.
struct PackedMatrix {
  int64_t n = 0, k = 0;
  std::vector<float> data;
  std::vector<float> bias;  // [N] or empty
};

// The key/value cache of B independent streams, each with its own length.
struct Cache {
  int64_t batch = 0, capacity = 0;
  std::vector<int64_t> length;  // [B] positions filled per stream
  std::vector<float> k, v;      // per layer, stream, kv head: K as panels of positions, V as panels of D
  std::vector<float> work;      // scratch of the last call
};

class Model {
 public:
  // Builds from Hugging Face keys: model.embed_tokens.weight [V, C], per layer i
  // model.layers.i.{input_layernorm,post_attention_layernorm}.weight [C],
  // model.layers.i.self_attn.{q,k,v,o}_proj.weight (+ .bias when attention_bias),
  // model.layers.i.mlp.{gate,up,down}_proj.weight (+ .bias when mlp_bias), model.norm.weight [C],
  // lm_head.weight [V, C] unless tie_word_embeddings. Each LoRA pair is merged into its
  // projection's float weights in a fixed order (docs/engine-arithmetic.md). std::invalid_argument
  // naming the key for a missing tensor or a wrong shape.
  Model(const Config& cfg, const TensorMap& weights, const std::vector<LoraRef>& lora = {});

  const Config& config() const { return cfg_; }

  // Teacher-forced: one stream, tokens[0..T) at positions 0..T-1 -> logits [T, V].
  void forward(const int32_t* tokens, int64_t T, float* logits) const;
  // Teacher-forced continuation of one stream of a cache: tokens[0..T) at positions
  // cache.length[stream] .. + T - 1 -> logits [T, V]; appends to the cache. forward() is extend()
  // on a fresh cache; cutting a sequence into several extend() calls gives the same bits.
  void extend(const int32_t* tokens, int64_t T, Cache& cache, int64_t stream, float* logits) const;

  // The residual stream after the first `layers` decoder blocks (0 = the token embeddings;
  // num_hidden_layers = what the final norm reads): tokens[0..T) at positions 0..T-1 -> hidden
  // [T, C]. The same arithmetic as forward(), so the same bits on every machine (what a router
  // that both ends of a file must agree on needs). std::invalid_argument for `layers` out of range.
  void hidden_states(const int32_t* tokens, int64_t T, int64_t layers, float* hidden) const;

  // An empty cache for `batch` streams with room for `capacity` positions each.
  Cache new_cache(int64_t batch, int64_t capacity) const;
  // One new token per stream (tokens [B], stream b at position cache.length[b]) -> logits [B, V];
  // appends to the cache. A row's logits do not depend on the other rows.
  void step(const int32_t* tokens, Cache& cache, float* logits) const;

 private:
  struct Layer {
    std::vector<float> input_norm, post_norm;  // [C]
    PackedMatrix q, k, v, o, gate, up, down;
  };
  struct Row {
    int64_t stream, pos;
    int32_t token;
  };
  // logits [M, V]; with stop_layers >= 0, the residual stream after that many blocks [M, C] instead.
  void run_rows(const Row* rows, int64_t M, Cache& cache, float* logits, int64_t stop_layers = -1) const;
  void check_cache(const Cache& cache) const;

  Config cfg_;
  std::vector<float> embed_;  // [V, C]
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  PackedMatrix lm_head_;
  std::vector<float> rope_cos_, rope_sin_;  // [P, D/2]
  Isa isa_;
};

// probs[v] = exp(logits[v] - max) / sum, in the fixed arithmetic: the distribution the codec
// quantizes.
void softmax(const float* logits, int64_t V, float* probs);

// -log2(p) in double, computed without libm (same bits everywhere); 1075 for p <= 0.
double code_length_bits(float p);

// Runs fn(i) for i in [0, n) on `threads` workers (0 = all cores); the first exception is rethrown.
void parallel_for(size_t n, int threads, const std::function<void(size_t)>& fn);

}  // namespace lorazip::engine
