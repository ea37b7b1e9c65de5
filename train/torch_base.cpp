// libtorch's side of a loaded base (torch_base.h).
#include "train/torch_base.h"

#include "adapters/adapter.h"
#include "codec/engine/from_config.h"
#include "model/checkpoint.h"
#include "model/gguf.h"
#include "model/gguf_model.h"

namespace lorazip {

LlamaForCausalLM load_torch_model(const LoadedModel& base) {
  LlamaForCausalLM m = is_gguf_path(base.dir) ? load_gguf_model(base.dir) : load_hf_model(base.dir);
  m->eval();
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
