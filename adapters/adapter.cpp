// LoraAdapter on a model: a fresh adapter shaped for it, attach / detach of the Linear side path,
// for training. The PEFT files are in peft_io.cpp.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <stdexcept>

#include "adapters/adapter.h"
#include "adapters/adapter_impl.h"
#include "model/checkpoint.h"
#include "model/llama.h"

namespace lorazip {

using adapter_detail::shape_str;
using adapter_detail::suffix_match;

LoraAdapter::LoraAdapter() : impl_(std::make_unique<Impl>()) {}
LoraAdapter::LoraAdapter(LoraAdapter&&) noexcept = default;
LoraAdapter& LoraAdapter::operator=(LoraAdapter&&) noexcept = default;
LoraAdapter::~LoraAdapter() = default;

LoraAdapter::LoraAdapter(LlamaForCausalLM& model, const LoraConfig& cfg) : LoraAdapter() {
  cfg.validate("LoraConfig");
  impl_->cfg = cfg;
  auto gen = at::detail::createCPUGenerator(cfg.seed);
  std::set<std::string> used;
  const std::vector<int64_t> layers = cfg.resolve_layers(model->config().num_hidden_layers);
  const std::set<int64_t> in_layers(layers.begin(), layers.end());
  for (const auto& [name, lin] : model->projections()) {
    if (!in_layers.count(module_layer(name))) continue;
    bool hit = false;
    for (const auto& t : cfg.targets)
      if (suffix_match(name, t)) hit = true, used.insert(t);
    if (!hit) continue;
    Impl::Module m;
    m.name = name;
    m.r = cfg.r;
    m.alpha = cfg.alpha;
    m.scaling = cfg.scaling();
    m.in = lin->in_features;
    m.out = lin->out_features;
    // PEFT's kaiming_uniform_(a=sqrt(5)) on [R, in]: gain sqrt(2/(1+5)), bound = gain*sqrt(3/in) = 1/sqrt(in).
    double bound = 1.0 / std::sqrt(static_cast<double>(m.in));
    m.A = torch::empty({m.r, m.in}, torch::kFloat32);
    {
      torch::NoGradGuard ng;
      m.A.uniform_(-bound, bound, gen);
    }
    m.B = torch::zeros({m.out, m.r}, torch::kFloat32);
    impl_->mods.push_back(std::move(m));
  }
  for (const auto& t : cfg.targets)
    if (!used.count(t))
      throw std::invalid_argument("lora.targets: '" + t +
                                  "' matches no projection of the model (Llama projections: q_proj k_proj v_proj "
                                  "o_proj gate_proj up_proj down_proj)");
  set_trainable(true);
}

void LoraAdapter::attach(LlamaForCausalLM& model) {
  if (impl_->model) {
    if (impl_->model.ptr() == model.ptr()) return;
    detach();
  }
  std::map<std::string, Linear> by_name;
  for (const auto& [name, lin] : model->projections()) by_name.emplace(name, lin);
  for (const auto& m : impl_->mods) {
    auto it = by_name.find(m.name);
    if (it == by_name.end())
      throw std::invalid_argument("cannot attach LoRA adapter: the model has no projection '" + m.name + "'");
    const Linear& lin = it->second;
    if (lin->in_features != m.in || lin->out_features != m.out)
      throw std::invalid_argument("cannot attach LoRA adapter: " + m.name + " is [" + std::to_string(lin->out_features) +
                                  ", " + std::to_string(lin->in_features) + "] in the model but the adapter expects [" +
                                  std::to_string(m.out) + ", " + std::to_string(m.in) + "]");
  }
  for (auto& m : impl_->mods) {
    Linear lin = by_name.at(m.name);
    lin->lora_A = m.A;
    lin->lora_B = m.B;
    lin->lora_scaling = m.scaling;
    lin->lora_dropout = impl_->cfg.dropout;
    m.lin = lin;
  }
  impl_->model = model;
}

void LoraAdapter::detach() {
  if (!impl_->model) return;
  for (auto& m : impl_->mods) {
    if (m.lin && m.lin->lora_A.defined() && m.lin->lora_A.is_same(m.A)) {
      m.lin->lora_A = torch::Tensor();
      m.lin->lora_B = torch::Tensor();
      m.lin->lora_scaling = 0.0;
      m.lin->lora_dropout = 0.0;
    }
    m.lin = Linear(nullptr);
  }
  impl_->model = LlamaForCausalLM(nullptr);
}

bool LoraAdapter::attached() const { return static_cast<bool>(impl_->model); }

std::vector<at::Tensor> LoraAdapter::parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& m : impl_->mods) {
    out.push_back(m.A);
    out.push_back(m.B);
  }
  return out;
}

void LoraAdapter::set_trainable(bool trainable) {
  for (auto& m : impl_->mods) {
    m.A.set_requires_grad(trainable);
    m.B.set_requires_grad(trainable);
  }
}

std::map<std::string, at::Tensor> LoraAdapter::state_dict() const {
  std::map<std::string, at::Tensor> sd;
  for (const auto& m : impl_->mods) {
    sd.emplace(peft_key(m.name, "lora_A"), m.A);
    sd.emplace(peft_key(m.name, "lora_B"), m.B);
  }
  return sd;
}

void LoraAdapter::load_state_dict(const std::map<std::string, at::Tensor>& sd) {
  auto mine = state_dict();
  if (sd.size() != mine.size())
    throw std::invalid_argument("LoraAdapter::load_state_dict: " + std::to_string(sd.size()) + " tensors given, adapter has " +
                                std::to_string(mine.size()));
  for (const auto& [k, t] : mine) {
    auto it = sd.find(k);
    if (it == sd.end()) throw std::invalid_argument("LoraAdapter::load_state_dict: missing tensor " + k);
    if (it->second.sizes() != t.sizes())
      throw std::invalid_argument("LoraAdapter::load_state_dict: " + k + " has shape " + shape_str(it->second.sizes()) +
                                  ", expected " + shape_str(t.sizes()));
  }
  torch::NoGradGuard ng;
  for (auto& [k, t] : mine) t.copy_(sd.at(k));
}

std::string LoraAdapter::fingerprint() const {
  std::map<std::string, RawTensor> raw;
  for (const auto& [k, t] : state_dict()) raw.emplace(k, to_raw(t.detach().to(torch::kFloat32).contiguous()));
  return tensors_fingerprint(raw);
}

std::vector<std::string> LoraAdapter::modules() const {
  std::vector<std::string> out;
  for (const auto& m : impl_->mods) out.push_back(m.name);
  return out;
}
int64_t LoraAdapter::rank(const std::string& module) const { return impl_->find(module).r; }
double LoraAdapter::scaling(const std::string& module) const { return impl_->find(module).scaling; }
const LoraConfig& LoraAdapter::config() const { return impl_->cfg; }
int64_t LoraAdapter::num_parameters() const {
  int64_t n = 0;
  for (const auto& m : impl_->mods) n += m.A.numel() + m.B.numel();
  return n;
}

}  // namespace lorazip
