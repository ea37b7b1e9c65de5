// libtorch's side of a loaded base (model_torch.h).
#include "codec/model_torch.h"

#include "adapters/adapter.h"
#include "codec/engine/from_config.h"
#include "model/checkpoint.h"
#include "model/gguf.h"
#include "model/gguf_model.h"

namespace lorazip {

LlamaForCausalLM& torch_model(LoadedBase& base) {
  if (!base.torch_cache) {
    auto m = std::make_shared<LlamaForCausalLM>(is_gguf_path(base.dir) ? load_gguf_model(base.dir) : load_hf_model(base.dir));
    (*m)->eval();
    base.torch_cache = m;
  }
  return *static_cast<LlamaForCausalLM*>(base.torch_cache.get());
}

LlamaForCausalLM clone_model(LlamaForCausalLM& model) {
  LlamaForCausalLM m(model->config());
  torch::NoGradGuard no_grad;
  auto src = model->named_parameters(true);
  for (auto& p : m->named_parameters(true)) p.value().copy_(src[p.key()]);
  m->eval();
  return m;
}

LlamaForCausalLM merged_model(LoadedBase& base, const std::string& adapter_dir, AdapterEntry* entry_out) {
  read_peft_adapter(adapter_dir, base.projections(), [&base](const std::string& fp) { return base.is_named_by(fp); },
                    base.fingerprint);  // made for this base (by either of its names)
  LlamaForCausalLM m = clone_model(torch_model(base));
  LoraAdapter a = LoraAdapter::load(adapter_dir, m, /*check_base=*/false);
  a.merge_into(m);  // lorazip's one merge (single-threaded, so every run gives the same bits)
  if (entry_out) {
    *entry_out = describe_adapter(adapter_dir);
    entry_out->fingerprint = a.fingerprint();
  }
  return m;
}

namespace {

// The model's parameters and the adapter's pairs as float32 tensors for the engine.
struct TorchTensors {
  std::vector<torch::Tensor> keep;  // float32 contiguous copies, alive while the engine copies them
  engine::TensorMap weights;
  std::vector<engine::LoraRef> lora;
  TorchTensors(LlamaForCausalLM& model, const LoraAdapter* adapter) {
    torch::NoGradGuard no_grad;
    auto ref = [&](const torch::Tensor& t) {
      keep.push_back(t.detach().to(torch::kCPU, torch::kFloat).contiguous());
      return engine::TensorRef{keep.back().sizes().vec(), keep.back().data_ptr<float>()};
    };
    for (const auto& p : model->named_parameters(true)) weights[p.key()] = ref(p.value());
    if (adapter) {
      const auto sd = adapter->state_dict();
      for (const std::string& mod : adapter->modules())
        lora.push_back({mod, ref(sd.at(peft_key(mod, "lora_A"))), ref(sd.at(peft_key(mod, "lora_B"))), adapter->scaling(mod)});
    }
  }
};

}  // namespace

std::shared_ptr<const engine::Model> engine_model(LlamaForCausalLM& model, const LoraAdapter* adapter) {
  const TorchTensors t(model, adapter);
  return std::make_shared<const engine::Model>(engine::config_from(model->config()), t.weights, t.lora);
}

std::shared_ptr<const engine::Model> engine_model_v2(LlamaForCausalLM& model, const LoraAdapter* adapter) {
  const TorchTensors t(model, adapter);
  engine::StoredMap stored;
  for (const auto& [key, ref] : t.weights) {
    int64_t n = 1;
    for (int64_t d : ref.shape) n *= d;
    stored[key] = {ref.shape, engine::WeightKind::F32, reinterpret_cast<const uint8_t*>(ref.data), static_cast<uint64_t>(n) * 4, 0};
  }
  auto weights = std::make_shared<const engine::Weights>(engine::config_from(model->config()), stored);
  std::shared_ptr<const engine::Adapter> a;
  if (adapter) a = std::make_shared<const engine::Adapter>(*weights, t.lora);
  return std::make_shared<const engine::Model>(weights, a);
}

}  // namespace lorazip
