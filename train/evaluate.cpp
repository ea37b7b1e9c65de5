// Ideal code length of documents under the model, batched: chunks of all documents sorted by
// length, right-padded into [B, T] batches, padded positions excluded from the sums. Runs on the
// model's device; the sums come back to the CPU.
#include "train/evaluate.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "data/token_store.h"
#include "model/llama.h"

namespace lorazip {
namespace {

struct Chunk {
  size_t slot;          // index into the result vector
  const int32_t* toks;  // the chunk's tokens (targets)
  int64_t len;          // 1..context-1
  const int32_t* prefix = nullptr;  // a document's first chunk: its context, read after BOS, never a target
  int64_t prefix_len = 0;
  int64_t positions() const { return prefix_len + len; }
};

// Restores a module's train/eval mode on scope exit.
class ModeGuard {
 public:
  explicit ModeGuard(torch::nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~ModeGuard() { m_.train(was_training_); }

 private:
  torch::nn::Module& m_;
  bool was_training_;
};

}  // namespace

std::vector<DocBits> document_bits(LlamaForCausalLM& model, const DocSet& docs, const EvalOptions& opt,
                                   const std::vector<size_t>& doc_indices) {
  const LlamaConfig& mc = model->config();
  const int64_t context = opt.context > 0 ? opt.context : mc.max_position_embeddings;
  if (context < 2 || context > mc.max_position_embeddings)
    throw std::invalid_argument("document_bits: context " + std::to_string(context) + " must be in 2.." +
                                std::to_string(mc.max_position_embeddings) + " (max_position_embeddings)");
  const int64_t bos = opt.bos_id >= 0 ? opt.bos_id : mc.bos_token_id;
  if (bos < 0 || bos >= mc.vocab_size)
    throw std::invalid_argument("document_bits: BOS id " + std::to_string(bos) + " is outside the vocabulary");
  const int64_t max_chunk = context - 1;

  const std::vector<size_t> order = doc_indices.empty() ? spread_indices(docs.num_docs(), 0) : doc_indices;
  std::vector<DocBits> out(order.size());
  std::vector<Chunk> chunks;
  for (size_t s = 0; s < order.size(); ++s) {
    const size_t d = order[s];
    if (d >= docs.num_docs())
      throw std::invalid_argument("document_bits: document index " + std::to_string(d) + " out of range (" +
                                  std::to_string(docs.num_docs()) + " documents)");
    const int64_t n = static_cast<int64_t>(docs.doc_len(d));
    out[s].tokens = n;
    // A context (conditioned training): its last max_chunk / 2 tokens at most, as the codec's window.
    const int64_t c = std::min<int64_t>(static_cast<int64_t>(docs.context_len(d)), max_chunk / 2);
    const int32_t* ctx = c > 0 ? docs.context(d) + (docs.context_len(d) - static_cast<size_t>(c)) : nullptr;
    for (int64_t off = 0; off < n;) {
      const int64_t p = off == 0 ? c : 0;
      const int64_t len = std::min(max_chunk - p, n - off);
      chunks.push_back({s, docs.doc(d) + off, len, off == 0 ? ctx : nullptr, p});
      off += len;
    }
  }
  // Longest first, so each batch's padding is small; ties keep document order.
  std::stable_sort(chunks.begin(), chunks.end(), [](const Chunk& a, const Chunk& b) { return a.positions() > b.positions(); });

  ModeGuard mode(*model);
  torch::NoGradGuard no_grad;
  const int64_t budget = std::max<int64_t>(opt.batch_tokens, max_chunk);
  size_t i = 0;
  while (i < chunks.size()) {
    const int64_t T = chunks[i].positions();
    const int64_t B = std::max<int64_t>(1, std::min<int64_t>(budget / T, static_cast<int64_t>(chunks.size() - i)));
    torch::Tensor input = torch::full({B, T}, bos, torch::kInt64);    // (B, T): BOS + chunk[:-1], padded
    torch::Tensor target = torch::zeros({B, T}, torch::kInt64);       // (B, T): chunk, padded with 0
    torch::Tensor mask = torch::zeros({B, T}, torch::kFloat64);       // (B, T): 1 on real positions
    auto in_a = input.accessor<int64_t, 2>();
    auto tg_a = target.accessor<int64_t, 2>();
    auto mk_a = mask.accessor<double, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const Chunk& c = chunks[i + b];
      // Position t reads BOS + the row's tokens before it; the row is prefix, then toks.
      auto row = [&](int64_t t) { return t < c.prefix_len ? c.prefix[t] : c.toks[t - c.prefix_len]; };
      for (int64_t t = 0; t < c.positions(); ++t) {
        if (t > 0) in_a[b][t] = row(t - 1);
        tg_a[b][t] = row(t);
        mk_a[b][t] = t < c.prefix_len ? 0.0 : 1.0;
      }
    }
    torch::Tensor logits = model->forward(input);  // (B, T, V), on the model's device (CPU or GPU)
    target = target.to(logits.device());
    mask = mask.to(logits.device());
    torch::Tensor lse = torch::logsumexp(logits, -1);                                  // (B, T)
    torch::Tensor picked = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1);       // (B, T)
    torch::Tensor nats = ((lse - picked).to(torch::kFloat64) * mask).sum(1).to(torch::kCPU);  // (B)
    auto na = nats.accessor<double, 1>();
    for (int64_t b = 0; b < B; ++b) out[chunks[i + b].slot].bits += na[b] / std::log(2.0);
    i += static_cast<size_t>(B);
  }
  return out;
}

std::vector<DocBits> document_bits(LlamaForCausalLM& model, const DocSet& docs, int64_t context,
                                   int64_t batch_tokens, const std::vector<size_t>& doc_indices) {
  EvalOptions opt;
  opt.context = context;
  opt.batch_tokens = batch_tokens;
  return document_bits(model, docs, opt, doc_indices);
}

double mean_bits_per_token(const std::vector<DocBits>& bits) {
  double b = 0;
  int64_t t = 0;
  for (const auto& d : bits) b += d.bits, t += d.tokens;
  return t ? b / static_cast<double>(t) : 0.0;
}

EvalSummary evaluate(LlamaForCausalLM& model, const DocSet& docs, const EvalOptions& opt,
                     const std::vector<size_t>& doc_indices) {
  std::vector<size_t> idx = doc_indices;
  if (idx.empty()) idx = spread_indices(docs.num_docs(), 0);
  std::vector<DocBits> bits = document_bits(model, docs, opt, idx);
  EvalSummary s;
  for (size_t k = 0; k < idx.size(); ++k) {
    s.bits += bits[k].bits;
    s.tokens += bits[k].tokens;
    s.bytes += docs.byte_lengths[idx[k]];
  }
  s.docs = idx.size();
  return s;
}

}  // namespace lorazip
