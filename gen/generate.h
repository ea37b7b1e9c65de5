// Deterministic text generation on the coding engine (codec/engine/engine.h): greedy decoding and
// seeded sampling whose every choice is a pure function of (model, prompt, options), the same on
// any machine, kernel path and thread count. The engine's logits and softmax are already bit-exact
// everywhere; the sampler turns probabilities into integer weights and draws with its own integer
// PRNG, so no platform float or library RNG enters a choice. The lossy protocols (gen/qa.h,
// gen/rewrite.h) rely on this: a receiver regenerates the sender's text token for token.
#pragma once
#include <cstdint>
#include <vector>

#include "codec/engine/engine.h"

namespace lorazip::gen {

// splitmix64: the sampler's only source of randomness (fixed, documented, portable).
struct Rng {
  uint64_t state = 0;
  uint64_t next();
};
// The seed of stream i of a request with seed `seed` (splitmix of both): streams never share draws.
uint64_t stream_seed(uint64_t seed, uint64_t i);

struct SamplingOptions {
  double temperature = 0;     // 0 = greedy (argmax of the logits, lowest id on ties); > 0 = sample
  int64_t top_k = 0;          // keep the k most likely tokens (0 = all); sampling only
  double top_p = 1.0;         // nucleus: the most likely tokens whose weight reaches top_p, (0, 1]
  uint64_t seed = 0;          // stream i draws from Rng{stream_seed(seed, i)}
  int64_t max_tokens = 256;   // generated tokens at most (>= 0)
  std::vector<int32_t> stop_tokens;  // generation ends at the first of these (not included in the output)
};
// std::invalid_argument naming the field for a value out of range.
void check_options(const SamplingOptions& opt, int64_t vocab_size);

// The next token after `logits` [V]. Greedy: argmax. Sampling: probs = engine::softmax(logits[v] /
// float(temperature)); integer weight w[v] = floor(probs[v] * 2^32) (exact in float); candidates
// sorted by (w desc, id asc); top_k keeps the first k; top_p keeps the shortest prefix whose weight
// sum reaches ceil(top_p * total) (one double product); then r = rng.next() % kept_sum and the
// candidate whose cumulative weight first exceeds r is chosen. Tokens of weight 0 are never chosen.
int32_t pick_token(const float* logits, int64_t V, const SamplingOptions& opt, Rng& rng);

struct Generation {
  std::vector<int32_t> tokens;  // generated tokens, the stop token excluded
  bool stopped = false;         // ended by a stop token (false: max_tokens or the model's context)
  int64_t positions = 0;        // rows the engine ran for this stream (prompt + generated): compute
};

// Generates one continuation of each prompt: stream i of `prompts` uses Rng{stream_seed(opt.seed,
// i)}. The prompt is read teacher-forced into the stream's key/value cache (extend), then tokens
// are stepped one at a time reusing that cache; streams are stepped in lock-step groups spread over
// `threads` workers (0 = all cores). A stream's result does not depend on the other prompts, the
// grouping or the thread count. Generation stops at a stop token, after max_tokens, or when the
// model's context (max_position_embeddings) is full. std::invalid_argument for an empty prompt, a
// prompt longer than the context, a token id outside the vocabulary or bad options.
std::vector<Generation> generate(const engine::Model& model, const std::vector<std::vector<int32_t>>& prompts,
                                 const SamplingOptions& opt, int threads = 0);
// n samples of one prompt (streams 0..n-1 of the request above).
std::vector<Generation> sample(const engine::Model& model, const std::vector<int32_t>& prompt, int64_t n,
                               const SamplingOptions& opt, int threads = 0);

}  // namespace lorazip::gen
