// libtorch's side of Hugging Face Llama directories: a model loaded from one and saved to one (the
// reading, checking and writing are model/llama_tensors.h's), its fingerprint, tensor conversions.
#include "model/checkpoint.h"

#include <cstring>
#include <stdexcept>

#include "model/llama_tensors.h"

namespace lorazip {

RawTensor to_raw(const torch::Tensor& t_in) {
  torch::Tensor t = t_in.detach().to(torch::kCPU).contiguous();
  RawTensor r;
  switch (t.scalar_type()) {
    case torch::kFloat: r.dtype = DType::F32; break;
    case torch::kHalf: r.dtype = DType::F16; break;
    case torch::kBFloat16: r.dtype = DType::BF16; break;
    case torch::kDouble: r.dtype = DType::F64; break;
    case torch::kLong: r.dtype = DType::I64; break;
    case torch::kInt: r.dtype = DType::I32; break;
    default:
      throw std::invalid_argument(std::string("to_raw: unsupported tensor dtype ") + c10::toString(t.scalar_type()));
  }
  r.shape.assign(t.sizes().begin(), t.sizes().end());
  r.data.assign(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return r;
}

torch::Tensor from_raw(const RawTensor& r, const std::string& name) {
  std::vector<float> v = to_float32(r, name);
  torch::Tensor t = torch::empty(r.shape, torch::kFloat);
  if (!v.empty()) std::memcpy(t.data_ptr<float>(), v.data(), v.size() * sizeof(float));
  return t;
}

LlamaForCausalLM load_hf_model(const std::string& dir) {
  const StoredLlama stored = read_hf_llama(dir);  // every tensor checked against config.json
  LlamaForCausalLM model(stored.config);
  torch::NoGradGuard no_grad;
  for (auto& kv : model->named_parameters(true)) {
    const std::vector<float> v = stored_as_float32(stored.tensors.at(kv.key()));
    std::memcpy(kv.value().data_ptr<float>(), v.data(), v.size() * sizeof(float));
  }
  return model;
}

void save_hf_model(LlamaForCausalLM& model, const std::string& dir, const std::string& tokenizer_model_bytes,
                   int64_t max_shard_bytes) {
  std::vector<std::pair<std::string, RawTensor>> tensors;  // in the model's own order (as transformers shards)
  for (auto& kv : model->named_parameters(true)) tensors.emplace_back(kv.key(), to_raw(kv.value().to(torch::kFloat)));
  write_hf_llama(dir, model->config(), std::move(tensors), tokenizer_model_bytes, max_shard_bytes);
}

std::string model_fingerprint(LlamaForCausalLM& model) {
  std::vector<torch::Tensor> keep;
  engine::StoredMap tensors;
  for (auto& kv : model->named_parameters(true)) {
    keep.push_back(kv.value().detach().to(torch::kCPU, torch::kFloat).contiguous());
    const torch::Tensor& t = keep.back();
    tensors[kv.key()] = {std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), engine::WeightKind::F32,
                         static_cast<const uint8_t*>(t.data_ptr()), static_cast<uint64_t>(t.numel()) * sizeof(float), 0};
  }
  return float32_fingerprint(tensors);
}

}  // namespace lorazip
