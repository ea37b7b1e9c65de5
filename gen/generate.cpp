// Greedy and seeded sampling on the coding engine; see generate.h for the exact rules. Built with
// -ffp-contract=off: the only float steps (logit / temperature, the 2^32 scaling, top_p * total)
// are single correctly rounded operations.
#include "gen/generate.h"
#include "common/threads.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

namespace lorazip::gen {

uint64_t Rng::next() {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t stream_seed(uint64_t seed, uint64_t i) {
  Rng r{seed ^ (0xD1B54A32D192ED03ull * (i + 1))};
  return r.next();
}

void check_options(const SamplingOptions& opt, int64_t vocab_size) {
  if (!(opt.temperature >= 0) || !std::isfinite(opt.temperature))
    throw std::invalid_argument("sampling: temperature must be >= 0 (0 = greedy), got " + std::to_string(opt.temperature));
  if (opt.top_k < 0) throw std::invalid_argument("sampling: top_k must be >= 0 (0 = all tokens), got " + std::to_string(opt.top_k));
  if (!(opt.top_p > 0 && opt.top_p <= 1)) throw std::invalid_argument("sampling: top_p must be in (0, 1], got " + std::to_string(opt.top_p));
  if (opt.max_tokens < 0) throw std::invalid_argument("sampling: max_tokens must be >= 0, got " + std::to_string(opt.max_tokens));
  for (int32_t t : opt.stop_tokens)
    if (t < 0 || t >= vocab_size)
      throw std::invalid_argument("sampling: stop token " + std::to_string(t) + " is outside the vocabulary (0.." +
                                  std::to_string(vocab_size - 1) + ")");
}

int32_t pick_token(const float* logits, int64_t V, const SamplingOptions& opt, Rng& rng) {
  if (opt.temperature == 0) {
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (logits[v] > logits[best]) best = v;
    return static_cast<int32_t>(best);
  }
  const float t = static_cast<float>(opt.temperature);
  std::vector<float> scaled(static_cast<size_t>(V)), probs(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) scaled[static_cast<size_t>(v)] = logits[v] / t;
  engine::softmax(scaled.data(), V, probs.data());
  struct Cand {
    uint64_t w;
    int32_t id;
  };
  std::vector<Cand> cands;
  cands.reserve(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) {
    // probs <= 1, so the product is exact and below 2^32 + 1; truncation is exact too.
    const uint64_t w = static_cast<uint64_t>(probs[static_cast<size_t>(v)] * 4294967296.0f);
    if (w > 0) cands.push_back({w, static_cast<int32_t>(v)});
  }
  if (cands.empty()) {  // every weight underflowed (cannot happen with a finite softmax): argmax
    SamplingOptions g = opt;
    g.temperature = 0;
    return pick_token(logits, V, g, rng);
  }
  std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.w != b.w ? a.w > b.w : a.id < b.id; });
  if (opt.top_k > 0 && static_cast<size_t>(opt.top_k) < cands.size()) cands.resize(static_cast<size_t>(opt.top_k));
  uint64_t total = 0;
  for (const Cand& c : cands) total += c.w;
  if (opt.top_p < 1) {
    const uint64_t need = static_cast<uint64_t>(std::ceil(opt.top_p * static_cast<double>(total)));
    uint64_t cum = 0;
    size_t keep = 0;
    while (keep < cands.size() && cum < need) cum += cands[keep++].w;
    cands.resize(std::max<size_t>(keep, 1));
    total = 0;
    for (const Cand& c : cands) total += c.w;
  }
  const uint64_t r = rng.next() % total;
  uint64_t cum = 0;
  for (const Cand& c : cands) {
    cum += c.w;
    if (r < cum) return c.id;
  }
  return cands.back().id;  // unreachable: cum reaches total > r
}

namespace {

// One lock-step group: streams whose prompts have the same length, so a stream that has stopped
// (fed token 0 while the others run) never outgrows the longest-running one.
void run_group(const engine::Model& model, const std::vector<std::vector<int32_t>>& prompts, const std::vector<size_t>& members,
               const SamplingOptions& opt, std::vector<Generation>& out) {
  const int64_t V = model.config().vocab_size, P = static_cast<int64_t>(prompts[members[0]].size());
  const int64_t max_pos = model.config().max_position_embeddings;
  const int64_t B = static_cast<int64_t>(members.size());
  const int64_t capacity = std::min(max_pos, P + std::max<int64_t>(opt.max_tokens, 1));
  engine::Cache cache = model.new_cache(B, capacity);
  std::vector<float> prefill(static_cast<size_t>(P * V)), logits(static_cast<size_t>(B * V));
  std::vector<Rng> rngs(static_cast<size_t>(B));
  std::vector<char> active(static_cast<size_t>(B), 1);
  for (int64_t b = 0; b < B; ++b) {
    const size_t i = members[static_cast<size_t>(b)];
    model.extend(prompts[i].data(), P, cache, b, prefill.data());
    std::copy(prefill.end() - V, prefill.end(), logits.begin() + b * V);
    rngs[static_cast<size_t>(b)].state = stream_seed(opt.seed, i);
    out[i].positions = P;
  }
  std::vector<int32_t> feed(static_cast<size_t>(B), 0);
  int64_t n_active = opt.max_tokens > 0 ? B : 0;
  if (n_active == 0) return;
  for (;;) {
    for (int64_t b = 0; b < B; ++b) {
      feed[static_cast<size_t>(b)] = 0;
      if (!active[static_cast<size_t>(b)]) continue;
      Generation& g = out[members[static_cast<size_t>(b)]];
      const int32_t t = pick_token(logits.data() + b * V, V, opt, rngs[static_cast<size_t>(b)]);
      if (std::find(opt.stop_tokens.begin(), opt.stop_tokens.end(), t) != opt.stop_tokens.end()) {
        g.stopped = true;
      } else {
        g.tokens.push_back(t);
        feed[static_cast<size_t>(b)] = t;
      }
      const bool full = cache.length[static_cast<size_t>(b)] >= capacity;
      if (g.stopped || static_cast<int64_t>(g.tokens.size()) >= opt.max_tokens || full) {
        active[static_cast<size_t>(b)] = 0;
        --n_active;
      }
    }
    if (n_active == 0) return;
    model.step(feed.data(), cache, logits.data());
    for (int64_t b = 0; b < B; ++b)
      if (active[static_cast<size_t>(b)]) out[members[static_cast<size_t>(b)]].positions += 1;
  }
}

}  // namespace

std::vector<Generation> generate(const engine::Model& model, const std::vector<std::vector<int32_t>>& prompts,
                                 const SamplingOptions& opt, int threads) {
  const int64_t V = model.config().vocab_size, max_pos = model.config().max_position_embeddings;
  check_options(opt, V);
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw std::invalid_argument("generate: prompt " + std::to_string(i) + " is empty (start it with BOS or a chat template)");
    if (static_cast<int64_t>(prompts[i].size()) >= max_pos)
      throw std::invalid_argument("generate: prompt " + std::to_string(i) + " has " + std::to_string(prompts[i].size()) +
                                  " tokens; the model's context holds " + std::to_string(max_pos) + " positions");
    for (int32_t t : prompts[i])
      if (t < 0 || t >= V) throw std::invalid_argument("generate: prompt " + std::to_string(i) + " holds token " + std::to_string(t) + " outside the vocabulary");
  }
  // Groups: streams with equal prompt lengths, in index order, at most kGroup each.
  constexpr size_t kGroup = 16;
  std::map<size_t, std::vector<size_t>> by_len;
  for (size_t i = 0; i < prompts.size(); ++i) by_len[prompts[i].size()].push_back(i);
  std::vector<std::vector<size_t>> groups;
  for (auto& [len, ids] : by_len)
    for (size_t s = 0; s < ids.size(); s += kGroup)
      groups.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(s), ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), s + kGroup)));
  std::vector<Generation> out(prompts.size());
  parallel_for(groups.size(), threads, [&](size_t g) { run_group(model, prompts, groups[g], opt, out); });
  return out;
}

std::vector<Generation> sample(const engine::Model& model, const std::vector<int32_t>& prompt, int64_t n,
                               const SamplingOptions& opt, int threads) {
  if (n < 1) throw std::invalid_argument("sample: n must be >= 1, got " + std::to_string(n));
  return generate(model, std::vector<std::vector<int32_t>>(static_cast<size_t>(n), prompt), opt, threads);
}

}  // namespace lorazip::gen
