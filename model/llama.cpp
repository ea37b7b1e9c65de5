// The Llama decoder in libtorch, numerically in Hugging Face's convention: RMSNorm in float32 with
// the cast before the weight, half-split RoPE (rotate_half), grouped-query attention, SwiGLU.
// Shape letters: B batch, T time, C hidden, V vocab, H query heads, K kv heads, G = H / K query
// heads per kv head, D head dim, I intermediate, R LoRA rank.
#include "model/llama.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <thread>

namespace lorazip {

// ---- Linear with an optional LoRA side path -------------------------------------------------

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  weight = register_parameter("weight", torch::zeros({out, in}));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor LinearImpl::apply(const torch::Tensor& x, bool side_dropout) {
  torch::Tensor y = torch::linear(x, weight, bias);  // (..., in) -> (..., out)
  if (lora_A.defined()) {
    torch::Tensor xd = (side_dropout && lora_dropout > 0.0) ? torch::dropout(x, lora_dropout, true) : x;
    // (..., in) -> (..., R) -> (..., out)
    y = y + torch::linear(torch::linear(xd, lora_A), lora_B) * lora_scaling;
  }
  return y;
}

// ---- building blocks, named as in transformers' modeling_llama.py -------------------------------

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps_) : eps(eps_) { weight = register_parameter("weight", torch::ones({dim})); }
  // (..., C) -> (..., C); statistics in float32, cast back to the input dtype before the weight.
  torch::Tensor forward(const torch::Tensor& x) {
    const bool is_f32 = x.scalar_type() == torch::kFloat;
    torch::Tensor xf = is_f32 ? x : x.to(torch::kFloat);
    torch::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);  // (..., 1)
    torch::Tensor y = xf * torch::rsqrt(var + eps);
    if (!is_f32) y = y.to(x.scalar_type());
    return weight * y;
  }
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t vocab, int64_t dim) { weight = register_parameter("weight", torch::zeros({vocab, dim})); }
  torch::Tensor forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }  // (...) -> (..., C)
  torch::Tensor weight;
};
TORCH_MODULE(Embedding);

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const LlamaConfig& c) {
    const int64_t D = c.resolved_head_dim();
    q_proj = register_module("q_proj", Linear(c.hidden_size, c.num_attention_heads * D, c.attention_bias));
    k_proj = register_module("k_proj", Linear(c.hidden_size, c.num_key_value_heads * D, c.attention_bias));
    v_proj = register_module("v_proj", Linear(c.hidden_size, c.num_key_value_heads * D, c.attention_bias));
    o_proj = register_module("o_proj", Linear(c.num_attention_heads * D, c.hidden_size, c.attention_bias));
  }
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
};
TORCH_MODULE(Attention);

class MLPImpl : public torch::nn::Module {
 public:
  explicit MLPImpl(const LlamaConfig& c) {
    gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
    up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
    down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias));
  }
  // (..., C) -> (..., I) -> (..., C)
  torch::Tensor forward(const torch::Tensor& x) {
    return down_proj->forward(torch::silu(gate_proj->forward(x)) * up_proj->forward(x));
  }
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(MLP);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const LlamaConfig& c) {
    input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    self_attn = register_module("self_attn", Attention(c));
    post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    mlp = register_module("mlp", MLP(c));
  }
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

class LlamaModelImpl : public torch::nn::Module {
 public:
  explicit LlamaModelImpl(const LlamaConfig& c) {
    embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(DecoderLayer(c));
    norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  }
  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaModel);

// ---- the causal LM -------------------------------------------------------------------------------

struct LlamaForCausalLMImpl::Impl {
  LlamaModel model{nullptr};
  Linear lm_head{nullptr};            // null when tied to embed_tokens
  std::vector<DecoderLayer> layers;   // model.layers, typed
  int64_t H = 0, K = 0, G = 0, D = 0;
  double scale = 1.0;
  // RoPE tables (max_position_embeddings, D), float32. sin_signed has its first half negated so
  // that rotate_half(x) * sin == swap_halves(x) * sin_signed. Not parameters: the state dict stays
  // the HF key list.
  torch::Tensor cos, sin_signed;
  torch::Tensor cos_q, sin_q;  // cos and sin_signed times scale, for the queries in forward()
  torch::Tensor causal_mask;  // (P, P) bool, true above the diagonal

  // Tables follow the weights when the model is moved to another device.
  void sync_device(const torch::Device& dev) {
    if (cos.device() != dev) {
      cos = cos.to(dev);
      sin_signed = sin_signed.to(dev);
      cos_q = cos_q.to(dev);
      sin_q = sin_q.to(dev);
      causal_mask = causal_mask.to(dev);
    }
  }
};

namespace {

// x (..., D) with halves [x1, x2] -> x * cos + [-x2, x1] * sin; cos / sin broadcast over x.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin_signed) {
  const int64_t half = x.size(-1) / 2;
  torch::Tensor swapped = torch::cat({x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + swapped * sin_signed;
}

void check_tokens(const torch::Tensor& tokens, int64_t vocab, const char* what) {
  if (tokens.numel() == 0) return;
  const int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
  if (lo < 0 || hi >= vocab)
    throw std::invalid_argument(std::string(what) + ": token id " + std::to_string(lo < 0 ? lo : hi) +
                                " is outside the vocabulary [0, " + std::to_string(vocab) +
                                ") (tokenizer and model do not match?)");
}

}  // namespace

LlamaForCausalLMImpl::LlamaForCausalLMImpl(const LlamaConfig& cfg) : cfg_(cfg), impl_(std::make_shared<Impl>()) {
  cfg_.validate("LlamaConfig");
  Impl& m = *impl_;
  m.model = register_module("model", LlamaModel(cfg_));
  if (!cfg_.tie_word_embeddings) m.lm_head = register_module("lm_head", Linear(cfg_.hidden_size, cfg_.vocab_size, false));
  for (const auto& child : *m.model->layers) m.layers.push_back(DecoderLayer(std::dynamic_pointer_cast<DecoderLayerImpl>(child)));

  m.H = cfg_.num_attention_heads;
  m.K = cfg_.num_key_value_heads;
  m.G = m.H / m.K;
  m.D = cfg_.resolved_head_dim();
  m.scale = 1.0 / std::sqrt(static_cast<double>(m.D));

  // inv_freq = 1 / theta^(arange(0, D, 2) / D) in float32, as transformers computes it.
  const int64_t P = cfg_.max_position_embeddings;
  torch::Tensor exponent = torch::arange(0, m.D, 2, torch::kInt64).to(torch::kFloat) / static_cast<double>(m.D);
  torch::Tensor inv_freq = 1.0 / torch::pow(cfg_.rope_theta, exponent);               // (D/2)
  torch::Tensor pos = torch::arange(P, torch::kInt64).to(torch::kFloat);              // (P)
  torch::Tensor freqs = torch::outer(pos, inv_freq);                                  // (P, D/2)
  torch::Tensor emb = torch::cat({freqs, freqs}, -1);                                 // (P, D)
  m.cos = emb.cos().contiguous();
  torch::Tensor sin = emb.sin();
  m.sin_signed = torch::cat({-sin.narrow(-1, 0, m.D / 2), sin.narrow(-1, m.D / 2, m.D / 2)}, -1).contiguous();
  m.cos_q = (m.cos * m.scale).contiguous();
  m.sin_q = (m.sin_signed * m.scale).contiguous();
  m.causal_mask = torch::ones({P, P}, torch::kBool).triu(1);

  for (size_t i = 0; i < m.layers.size(); ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    auto& a = m.layers[i]->self_attn;
    auto& f = m.layers[i]->mlp;
    projections_.emplace_back(p + "self_attn.q_proj", a->q_proj);
    projections_.emplace_back(p + "self_attn.k_proj", a->k_proj);
    projections_.emplace_back(p + "self_attn.v_proj", a->v_proj);
    projections_.emplace_back(p + "self_attn.o_proj", a->o_proj);
    projections_.emplace_back(p + "mlp.gate_proj", f->gate_proj);
    projections_.emplace_back(p + "mlp.up_proj", f->up_proj);
    projections_.emplace_back(p + "mlp.down_proj", f->down_proj);
  }
}

std::vector<std::pair<std::string, Linear>> LlamaForCausalLMImpl::projections() const { return projections_; }

torch::Tensor LlamaForCausalLMImpl::forward(const torch::Tensor& tokens) {
  return torch::linear(forward_hidden(tokens), lm_head_weight());  // (B, T, C) -> (B, T, V)
}

torch::Tensor LlamaForCausalLMImpl::lm_head_weight() const {
  return impl_->lm_head ? impl_->lm_head->weight : impl_->model->embed_tokens->weight;
}

torch::Tensor LlamaForCausalLMImpl::forward_hidden(const torch::Tensor& tokens_in) {
  Impl& m = *impl_;
  if (tokens_in.dim() != 2)
    throw std::invalid_argument("LlamaForCausalLM::forward: tokens must be (B, T), got " + std::to_string(tokens_in.dim()) + " dims");
  const int64_t B = tokens_in.size(0), T = tokens_in.size(1);
  if (T > cfg_.max_position_embeddings)
    throw std::invalid_argument("LlamaForCausalLM::forward: " + std::to_string(T) + " positions exceed max_position_embeddings = " +
                                std::to_string(cfg_.max_position_embeddings));
  torch::Tensor tokens = tokens_in.to(m.model->embed_tokens->weight.device(), torch::kLong);
  check_tokens(tokens, cfg_.vocab_size, "LlamaForCausalLM::forward");
  m.sync_device(tokens.device());
  const int64_t H = m.H, K = m.K, G = m.G, D = m.D;

  torch::Tensor cos = m.cos.narrow(0, 0, T), sin = m.sin_signed.narrow(0, 0, T);  // (T, D)
  torch::Tensor cos_q = m.cos_q.narrow(0, 0, T), sin_q = m.sin_q.narrow(0, 0, T);  // (T, D), times 1/sqrt(D)
  torch::Tensor mask = m.causal_mask.narrow(0, 0, T).narrow(1, 0, T);              // (T, T)

  torch::Tensor x = m.model->embed_tokens->forward(tokens);  // (B, T) -> (B, T, C)
  for (auto& layer : m.layers) {
    auto& at = layer->self_attn;
    torch::Tensor h = layer->input_layernorm->forward(x);
    torch::Tensor q = at->q_proj->forward(h).view({B, T, H, D}).transpose(1, 2);  // (B, H, T, D)
    torch::Tensor k = at->k_proj->forward(h).view({B, T, K, D}).transpose(1, 2);  // (B, K, T, D)
    torch::Tensor v = at->v_proj->forward(h).view({B, T, K, D}).transpose(1, 2);  // (B, K, T, D)
    // 1/sqrt(D) rides in q's RoPE tables: scaling (B, H, T, D) instead of the (B, H, T, T) scores.
    q = apply_rope(q, cos_q, sin_q);
    k = apply_rope(k, cos, sin);
    if (G > 1) {  // each kv head serves G consecutive query heads: (B, K, T, D) -> (B, H, T, D)
      k = k.unsqueeze(2).expand({B, K, G, T, D}).reshape({B, H, T, D});
      v = v.unsqueeze(2).expand({B, K, G, T, D}).reshape({B, H, T, D});
    }
    torch::Tensor att = torch::matmul(q, k.transpose(2, 3));  // (B, H, T, T), already scaled
    // In place: matmul's backward needs its inputs, not its output, so no (B, H, T, T) copy.
    att.masked_fill_(mask, -std::numeric_limits<float>::infinity());
    att = torch::softmax(att, -1);
    torch::Tensor y = torch::matmul(att, v);                                  // (B, H, T, D)
    y = y.transpose(1, 2).reshape({B, T, H * D});                             // (B, T, H*D)
    x = x + at->o_proj->forward(y);
    x = x + layer->mlp->forward(layer->post_attention_layernorm->forward(x));
  }
  return m.model->norm->forward(x);  // (B, T, C)
}

void LlamaForCausalLMImpl::init_weights(uint64_t seed, double std) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  for (auto& kv : named_parameters(/*recurse=*/true)) {
    const std::string& name = kv.key();
    torch::Tensor& p = kv.value();
    auto ends_with = [&](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (ends_with("norm.weight")) {
      p.fill_(1.0);
    } else if (ends_with(".bias")) {
      p.zero_();
    } else {
      // Drawn on the CPU so the values do not depend on where the model lives.
      p.copy_(torch::empty(p.sizes(), torch::kFloat).normal_(0.0, std, gen));
    }
  }
}

// ---- the LM head and the loss, fused and chunked ---------------------------------------------------

namespace {

struct LinearCrossEntropyFn : public torch::autograd::Function<LinearCrossEntropyFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& hidden,
                               const torch::Tensor& weight, const torch::Tensor& targets, int64_t ignore_index,
                               int64_t chunk_rows, bool with_grads) {
    // Gradients are formed here only for what autograd will ask for (apply() turns grad mode off,
    // so the caller's grad mode comes in as with_grads).
    const bool grad_h = with_grads && hidden.requires_grad(), grad_w = with_grads && weight.requires_grad();
    const int64_t N = hidden.size(0);
    torch::Tensor d_hidden = grad_h ? torch::empty_like(hidden) : torch::Tensor();
    torch::Tensor d_weight = grad_w ? torch::zeros_like(weight) : torch::Tensor();
    double total = 0;  // nats; chunks summed in double
    for (int64_t s = 0; s < N; s += chunk_rows) {
      const int64_t n = std::min(chunk_rows, N - s);
      torch::Tensor h = hidden.narrow(0, s, n);                       // (n, C)
      torch::Tensor t = targets.narrow(0, s, n);                      // (n)
      torch::Tensor logits = torch::mm(h, weight.t());                // (n, V)
      torch::Tensor lse = torch::logsumexp(logits, 1, true);          // (n, 1)
      torch::Tensor valid = t.ne(ignore_index);                       // (n)
      torch::Tensor safe_t = t.masked_fill(valid.logical_not(), 0).unsqueeze(1);  // (n, 1)
      torch::Tensor nll = (lse - logits.gather(1, safe_t)).squeeze(1);            // (n)
      total += nll.masked_fill(valid.logical_not(), 0).sum().item<double>();
      if (!grad_h && !grad_w) continue;
      // d(sum nll)/d logits = softmax(logits) - one_hot(t), zero on ignored rows; in place in logits.
      torch::Tensor g = logits.sub_(lse).exp_();
      g.scatter_add_(1, safe_t, torch::full({n, 1}, -1.0f, g.options()));
      g.mul_(valid.unsqueeze(1).to(g.scalar_type()));
      if (grad_h) d_hidden.narrow(0, s, n).copy_(torch::mm(g, weight));  // (n, V) x (V, C) -> (n, C)
      if (grad_w) d_weight.addmm_(g.t(), h);                            // (V, n) x (n, C) -> (V, C)
    }
    ctx->save_for_backward({d_hidden, d_weight});
    return torch::full({}, total, hidden.options());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor& g = grad_out[0];  // 0-dim
    torch::Tensor dh = saved[0].defined() ? saved[0] * g : torch::Tensor();
    torch::Tensor dw = saved[1].defined() ? saved[1] * g : torch::Tensor();
    return {dh, dw, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                                   int64_t ignore_index, int64_t chunk_rows) {
  if (hidden.dim() != 2 || weight.dim() != 2 || targets.dim() != 1 || hidden.size(1) != weight.size(1) ||
      targets.size(0) != hidden.size(0))
    throw std::invalid_argument("linear_cross_entropy: expected hidden (N, C), weight (V, C), targets (N); got hidden " +
                                std::to_string(hidden.dim()) + "-d, weight " + std::to_string(weight.dim()) +
                                "-d, targets " + std::to_string(targets.dim()) + "-d with mismatched sizes");
  if (chunk_rows < 0) throw std::invalid_argument("linear_cross_entropy: chunk_rows must be positive (or 0: automatic)");
  if (chunk_rows == 0) chunk_rows = std::max<int64_t>(16, std::min<int64_t>(256, (int64_t{4} << 20) / std::max<int64_t>(1, weight.size(0))));
  torch::Tensor t = targets.to(torch::kLong);
  const torch::Tensor bad = t.ne(ignore_index).logical_and(t.lt(0).logical_or(t.ge(weight.size(0))));
  if (bad.any().item<bool>())
    throw std::invalid_argument("linear_cross_entropy: a target is outside [0, " + std::to_string(weight.size(0)) +
                                ") and is not ignore_index " + std::to_string(ignore_index));
  return LinearCrossEntropyFn::apply(hidden, weight, t, ignore_index, chunk_rows, torch::GradMode::is_enabled());
}

int set_torch_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  return at::get_num_threads();
}


}  // namespace lorazip
