// An adapter's files through libtorch: LoraAdapter::save (the PEFT directory, see docs/formats.md,
// and lorazip.json) and ::load, which reads with adapters/peft_files.h (every tensor checked against
// the base) and makes torch tensors of it.
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <stdexcept>

#include "adapters/adapter.h"
#include "adapters/adapter_impl.h"
#include "common/fs.h"
#include "model/checkpoint.h"
#include "model/llama.h"
#include "model/safetensors.h"

namespace lorazip {
// ---- PEFT directory ------------------------------------------------------------------------

void LoraAdapter::save(const std::string& dir, AdapterInfo info) const {
  if (info.base_fingerprint.empty()) {
    if (!impl_->model)
      throw std::logic_error("LoraAdapter::save: info.base_fingerprint is empty and the adapter is not attached");
    info.base_fingerprint = model_fingerprint(impl_->model);
  }
  write_peft_adapter(dir, impl_->cfg, peft_modules(), std::move(info));
}

std::vector<PeftModule> LoraAdapter::peft_modules() const {
  std::vector<PeftModule> out;
  for (const auto& m : impl_->mods) {
    PeftModule p;
    static_cast<LoraModuleShape&>(p) = m;
    const torch::Tensor a = m.A.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    const torch::Tensor b = m.B.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    p.a.assign(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
    p.b.assign(b.data_ptr<float>(), b.data_ptr<float>() + b.numel());
    out.push_back(std::move(p));
  }
  return out;
}

AdapterInfo LoraAdapter::read_info(const std::string& dir) { return AdapterInfo::read(dir); }

LoraAdapter LoraAdapter::load(const std::string& dir, LlamaForCausalLM& model, bool check_base) {
  std::vector<Projection> projs;
  for (const auto& [name, lin] : model->projections()) projs.push_back({name, lin->in_features, lin->out_features});
  // The base's fingerprint is computed only when lorazip.json names the base to compare with.
  std::string base_fp;
  if (check_base && file_exists(dir + "/lorazip.json") && !AdapterInfo::read(dir).base_fingerprint.empty()) {
    base_fp = model_fingerprint(model);
  }
  const PeftAdapterFiles f =
      base_fp.empty() ? read_peft_adapter(dir, projs)
                      : read_peft_adapter(dir, projs, [&base_fp](const std::string& fp) { return fp == base_fp; }, base_fp);
  LoraAdapter a;
  for (const PeftModule& pm : f.modules) {
    Impl::Module m;
    static_cast<LoraModuleShape&>(m) = pm;
    m.A = torch::from_blob(const_cast<float*>(pm.a.data()), {pm.r, pm.in}, torch::kFloat).clone();
    m.B = torch::from_blob(const_cast<float*>(pm.b.data()), {pm.out, pm.r}, torch::kFloat).clone();
    a.impl_->mods.push_back(std::move(m));
  }
  a.impl_->cfg = f.config;
  a.set_trainable(false);
  return a;
}

}  // namespace lorazip
