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
    if (impl_->merged)
      throw std::logic_error("LoraAdapter::save: cannot fingerprint the base while the adapter is merged; unmerge first");
    info.base_fingerprint = model_fingerprint(impl_->model);
  }
  SafetensorsFile st;
  st.metadata["format"] = "pt";
  for (const auto& [k, t] : state_dict()) st.tensors.emplace(k, to_raw(t.detach().to(torch::kFloat32).contiguous()));
  info.adapter_fingerprint = tensors_fingerprint(st.tensors);
  if (info.config.is_null()) info.config = nlohmann::json::object();
  info.config["lora"] = impl_->cfg.to_json();

  nlohmann::json cfg = peft_adapter_config(impl_->cfg, info.base_model_name_or_path);
  // Modules whose rank or alpha differ from the defaults (only after loading such a file) keep
  // them through PEFT's per-module patterns, keyed by the full module path.
  for (const auto& m : impl_->mods) {
    if (m.r != impl_->cfg.r) cfg["rank_pattern"][m.name] = m.r;
    if (m.alpha != impl_->cfg.alpha) cfg["alpha_pattern"][m.name] = m.alpha;
  }

  AtomicDir out(dir);
  write_file_atomic(out.tmp() + "/adapter_config.json", cfg.dump(2) + "\n");
  write_safetensors(out.tmp() + "/adapter_model.safetensors", st);
  write_file_atomic(out.tmp() + "/lorazip.json", info.to_json().dump(2) + "\n");
  out.commit();
}

AdapterInfo LoraAdapter::read_info(const std::string& dir) { return AdapterInfo::read(dir); }

LoraAdapter LoraAdapter::load(const std::string& dir, LlamaForCausalLM& model, bool check_base) {
  std::vector<Projection> projs;
  for (const auto& [name, lin] : model->projections()) projs.push_back({name, lin->in_features, lin->out_features});
  // The base's fingerprint is computed only when lorazip.json names the base to compare with.
  std::string base_fp;
  if (check_base && file_exists(dir + "/lorazip.json") && !AdapterInfo::read(dir).base_fingerprint.empty()) {
    for (const auto& [name, lin] : model->projections())
      if (lin->lora_merged)
        throw std::invalid_argument("LoraAdapter::load: the model has an adapter merged into " + name +
                                    "; unmerge it before loading another adapter");
    base_fp = model_fingerprint(model);
  }
  const PeftAdapterFiles f =
      base_fp.empty() ? read_peft_adapter(dir, projs)
                      : read_peft_adapter(dir, projs, [&base_fp](const std::string& fp) { return fp == base_fp; }, base_fp);
  LoraAdapter a;
  for (const PeftModule& pm : f.modules) {
    Impl::Module m;
    m.name = pm.name;
    m.r = pm.r;
    m.alpha = pm.alpha;
    m.scaling = pm.scaling;
    m.in = pm.in;
    m.out = pm.out;
    m.A = torch::from_blob(const_cast<float*>(pm.a.data()), {pm.r, pm.in}, torch::kFloat).clone();
    m.B = torch::from_blob(const_cast<float*>(pm.b.data()), {pm.out, pm.r}, torch::kFloat).clone();
    a.impl_->mods.push_back(std::move(m));
  }
  a.impl_->cfg = f.config;
  a.set_trainable(false);
  return a;
}

}  // namespace lorazip
