// The coding engine: a Llama forward pass with no deep-learning library and no BLAS, whose
// next-token distribution is a pure function of (weights, adapter, tokens, arithmetic version).
// Every float it produces follows the arithmetic written down in docs/engine-arithmetic.md: the
// same bits on any x86-64 (SSE2, AVX2, AVX-512), on aarch64 (NEON), with the portable scalar path,
// for any batch composition and any thread count. The LM codec computes every probability through it.
//
// Two arithmetic versions:
//   1: float weights (quantized ones dequantized to float32) with a LoRA adapter merged into them
//      (Model(Config, TensorMap, lora)); what every file of lorazip 0.1 records.
//   2: weights multiplied as stored: float kinds as version 1, block-quantized kinds (Q8_0, Q4_0,
//      Q4_1, Q4_K, Q5_K, Q6_K) with int8 activations in exact integer block products; keys and
//      values cached as IEEE halves; a LoRA adapter beside the weights (y = W x + s B (A x)), never
//      merged: the base stays shared and a batch may hold streams of different adapters
//      (Model(Weights, Adapter)).
//
// Shape letters: B streams, T positions, C hidden, V vocab, H query heads, K kv heads, D head dim,
// I intermediate, R LoRA rank.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codec/engine/blocks.h"
#include "codec/engine/pool.h"
#include "codec/engine/weights.h"

namespace lorazip::engine {

// The arithmetic new files are coded with, and the oldest one this engine still computes.
constexpr int kArithmeticVersion = 2;
constexpr int kOldestArithmeticVersion = 1;

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

// A float32 tensor owned by the caller, row-major, with its shape; only read while a model is
// being built.
struct TensorRef {
  std::vector<int64_t> shape;
  const float* data = nullptr;
};
using TensorMap = std::map<std::string, TensorRef>;  // Hugging Face key -> tensor

// A tensor as a model file stores it (read while Weights are built): shape in row-major order
// ([N, K] for a matrix, [C] for a vector), `kind`, `nbytes` bytes at `data`; permute_heads as in
// StoredMatrix (weights.h). Vectors (norms, biases) must be a float kind.
struct StoredTensor {
  std::vector<int64_t> shape;
  WeightKind kind = WeightKind::F32;
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  int64_t permute_heads = 0;
};
using StoredMap = std::map<std::string, StoredTensor>;  // Hugging Face key -> tensor

// One LoRA pair for a projection ("model.layers.0.self_attn.q_proj"): A [R, in], B [out, R].
struct LoraRef {
  std::string module;
  TensorRef a, b;
  double scaling = 0;  // alpha / r (rounded to float32 before use)
};

// The same pair as an adapter file stores it (read while an Adapter is built): A [R, in] and
// B [out, R] as StoredTensors of a float kind (F32, F16 or BF16, not necessarily the same for
// both), row-major (permute_heads 0), their bytes at any alignment.
struct StoredLoraRef {
  std::string module;
  StoredTensor a, b;
  double scaling = 0;  // alpha / r (rounded to float32 before use)
};

// lorazip's one LoRA delta, used by version 1's merge and by `lorazip export --merged`:
// w[n, k] += s * (sum over r, in order, of B[n, r] * A[r, k]) for the row-major float32 matrix
// w [N, K], s = scaling rounded to float32, every operation rounded to float32 in this order (the
// same bits on every CPU). std::invalid_argument naming the module when A or B does not fit.
void merge_lora(const LoraRef& l, float* w, int64_t N, int64_t K);

// Which kernels run. All give the same bits; the choice is speed only. Avx512 uses VNNI for the
// integer block products where the CPU has it (Avx512Vnni names that path alone).
enum class Isa { Scalar, Sse2, Avx2, Avx512, Neon, Avx512Vnni };
const char* isa_name(Isa isa);
// The fastest path this CPU supports, or the one LORAZIP_ENGINE_ISA
// (scalar|sse2|avx2|avx512|avx512vnni|neon) names. std::invalid_argument when that variable names
// a path this CPU or build lacks.
Isa select_isa();
bool isa_available(Isa isa);
// Forces a path for this process (tests); std::invalid_argument when it is not available.
void set_isa(Isa isa);

// The key/value cache of B independent streams, each with its own capacity and length.
struct Cache {
  int64_t batch = 0;
  int64_t capacity = 0;          // the largest stream capacity
  std::vector<int64_t> length;   // [B] positions filled per stream
  std::vector<int64_t> cap;      // [B] positions each stream has room for
  // Per stream: per layer and kv head, K as panels of positions, V as panels of D; float32 in
  // arithmetic version 1, IEEE half in version 2 (k16, v16).
  std::vector<std::vector<float>> k, v;
  std::vector<std::vector<uint16_t>> k16, v16;
  std::vector<float> work;       // scratch of the last call
  std::vector<int8_t> qwork;     // scratch: quantized activations
};

class Weights;
class Adapter;

// One row of a batch: the next position of `stream` (its cache length at the call, plus the rows
// of the same stream before it in the batch), reading `token`, with `adapter`'s side path
// (nullptr: none; a version-1 model's merged adapter applies to every row). `logits`: whether the
// row's logits are wanted (rows that only fill the cache skip the output projection).
struct Row {
  int64_t stream = 0;
  int32_t token = 0;
  const Adapter* adapter = nullptr;
  bool logits = true;
};

// The packed base weights: shared by every Model and Adapter built on them.
class Weights {
 public:
  // From tensors as stored (Hugging Face keys, see Model): matrices keep their kind, packed in key
  // order on all cores; `on_packed(key)` (when given) is called as each matrix's stored bytes are
  // no longer needed. std::invalid_argument naming the key for a missing tensor, a wrong shape or
  // kind, or a byte count that does not match.
  Weights(const Config& cfg, const StoredMap& tensors, const std::function<void(const std::string&)>& on_packed = nullptr);
  // From float32 tensors, with `lora` merged in the fixed order of version 1.
  Weights(const Config& cfg, const TensorMap& tensors, const std::vector<LoraRef>& lora);

  const Config& config() const { return cfg_; }
  bool has_quantized() const;     // any matrix in a block-quantized kind
  uint64_t bytes() const;         // memory the packed weights hold
  // The kind of each matrix, counted: "Q4_1 x 210, Q8_0 x 1".
  std::string kinds_summary() const;

 private:
  friend class Model;
  friend class Adapter;
  struct Layer {
    std::vector<float> input_norm, post_norm;  // [C]
    PackedMatrix q, k, v, o, gate, up, down;
  };
  void build_rope();
  Config cfg_;
  // The token embeddings: their own row-major copy in the stored kind, or (tied) the head's panels.
  WeightKind embed_kind_ = WeightKind::F32;
  std::vector<uint8_t> embed_;
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  PackedMatrix lm_head_;
  std::vector<float> rope_cos_, rope_sin_;  // [P, D/2]
  bool merged_lora_ = false;
};

// A LoRA adapter for the side path of arithmetic version 2: each pair packed as float32 panels.
class Adapter {
 public:
  // Pairs as stored, each packed straight from its bytes: F32 values bit for bit, F16 and BF16
  // values widened exactly (f16_to_f32, bf16_to_f32), so a pair gives the same panels (and the
  // same logits) as its float32 values given as a LoraRef. std::invalid_argument for a module that
  // is not a projection of `base`, a module given twice, a pair whose shapes do not fit it, a pair
  // of another kind, or a byte count that does not match its shape.
  Adapter(const Weights& base, const std::vector<StoredLoraRef>& lora);
  // Pairs as float32 values: the same checks and messages.
  Adapter(const Weights& base, const std::vector<LoraRef>& lora);
  const Config& config() const { return cfg_; }
  uint64_t bytes() const;

 private:
  friend class Model;
  struct Pair {
    PackedMatrix a, b;  // A [R, in], B [out, R]
    float scaling = 0;
    bool present = false;
  };
  Config cfg_;
  std::vector<std::array<Pair, 7>> layers_;  // q, k, v, o, gate, up, down
};

class Model {
 public:
  // Version 1: from Hugging Face keys: model.embed_tokens.weight [V, C], per layer i
  // model.layers.i.{input_layernorm,post_attention_layernorm}.weight [C],
  // model.layers.i.self_attn.{q,k,v,o}_proj.weight (+ .bias when attention_bias),
  // model.layers.i.mlp.{gate,up,down}_proj.weight (+ .bias when mlp_bias), model.norm.weight [C],
  // lm_head.weight [V, C] unless tie_word_embeddings. Each LoRA pair is merged into its
  // projection's float weights in a fixed order (docs/engine-arithmetic.md). std::invalid_argument
  // naming the key for a missing tensor or a wrong shape.
  Model(const Config& cfg, const TensorMap& weights, const std::vector<LoraRef>& lora = {});
  // Version 2: the base as stored, with `adapter` (nullptr: none) as the default side path of
  // forward / extend / step. std::invalid_argument when the adapter was built for another config.
  Model(std::shared_ptr<const Weights> base, std::shared_ptr<const Adapter> adapter = nullptr);

  const Config& config() const { return base_->config(); }
  int arithmetic_version() const { return version_; }
  // Whether this model computes the bits of arithmetic version `v` (its own version).
  bool computes_version(int v) const;
  const Weights& weights() const { return *base_; }
  std::shared_ptr<const Weights> weights_ptr() const { return base_; }
  const Adapter* adapter() const { return adapter_.get(); }

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
  // Empties stream `stream` of `cache` and gives it room for `capacity` positions (reusing its
  // memory when it fits), so a batch slot can take a new stream.
  void reset_stream(Cache& cache, int64_t stream, int64_t capacity) const;
  // One new token per stream (tokens [B], stream b at position cache.length[b]) -> logits [B, V];
  // appends to the cache. A row's logits do not depend on the other rows.
  void step(const int32_t* tokens, Cache& cache, float* logits) const;

  // The general call: `rows` (any streams, any adapters, several rows of one stream in position
  // order) -> logits [number of rows with .logits set, V], in row order; appends to the cache.
  // Each row's logits are the same bits as in any other batch. std::invalid_argument for a stream
  // outside the cache, a full stream, a token outside the vocabulary or an adapter of another
  // model (version 1 takes none: its adapter is merged).
  void run(const Row* rows, int64_t M, Cache& cache, float* logits) const;

 private:
  struct Pos;
  // logits [#rows with logits, V]; with stop_layers >= 0, the residual stream after that many blocks [M, C] instead.
  void run_rows(const Row* rows, int64_t M, Cache& cache, float* logits, int64_t stop_layers = -1) const;
  void check_cache(const Cache& cache) const;

  std::shared_ptr<const Weights> base_;
  std::shared_ptr<const Adapter> adapter_;
  int version_ = 2;
};

// probs[v] = exp(logits[v] - max) / sum, in the fixed arithmetic: the distribution the codec
// quantizes.
void softmax(const float* logits, int64_t V, float* probs);

// -log2(p) in double, computed without libm (same bits everywhere); 1075 for p <= 0.
double code_length_bits(float p);

}  // namespace lorazip::engine
