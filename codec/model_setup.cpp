#include "codec/model_setup.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "adapters/adapter.h"
#include "codec/engine/from_config.h"
#include "common/fs.h"
#include "model/checkpoint.h"
#include "model/gguf_model.h"
#include "model/gguf_tokenizer.h"

namespace fs = std::filesystem;

namespace lorazip {

LoadedBase load_base(const std::string& dir) {
  if (is_gguf_path(dir)) {
    // A llama.cpp GGUF file: weights dequantized to float32, the tokenizer from its metadata.
    if (!file_exists(dir)) throw std::runtime_error("base model file '" + dir + "' does not exist");
    GgufFile f = GgufFile::open(dir);
    LoadedBase b;
    b.dir = dir;
    b.tokenizer = std::make_unique<Tokenizer>(tokenizer_from_gguf(f));
    b.model = load_gguf_model(f);
    b.model->eval();
    b.fingerprint = model_fingerprint(b.model);
    return b;
  }
  if (!dir_exists(dir)) throw std::runtime_error("base model directory '" + dir + "' does not exist");
  const std::string tok = base_tokenizer_path(dir);
  if (tok.empty())
    throw std::runtime_error("base model directory '" + dir + "' has neither tokenizer.model nor tokenizer.json "
                             "(lorazip needs the SentencePiece model or a byte-level BPE tokenizer.json beside the weights)");
  LoadedBase b;
  b.dir = dir;
  b.model = load_hf_model(dir);
  b.model->eval();
  b.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(tok));
  b.fingerprint = model_fingerprint(b.model);
  return b;
}

AdapterEntry describe_adapter(const std::string& dir) {
  AdapterEntry e;
  e.dir = dir;
  if (!file_exists(dir + "/adapter_config.json"))
    throw std::runtime_error("'" + dir + "' is not an adapter directory (no adapter_config.json)");
  if (file_exists(dir + "/lorazip.json")) {
    AdapterInfo info = LoraAdapter::read_info(dir);
    e.domain = info.domain;
    e.fingerprint = info.adapter_fingerprint;
  }
  if (e.domain.empty()) e.domain = fs::path(dir).filename().string();
  return e;
}

std::vector<AdapterEntry> list_adapters(const std::string& adapters_dir) {
  if (!dir_exists(adapters_dir)) throw std::runtime_error("adapters directory '" + adapters_dir + "' does not exist");
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(adapters_dir))
    if (e.is_directory() && file_exists(e.path().string() + "/adapter_config.json")) dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  std::vector<AdapterEntry> out;
  for (const auto& d : dirs) out.push_back(describe_adapter(d));
  return out;
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
  LlamaForCausalLM m = clone_model(base.model);
  LoraAdapter a = LoraAdapter::load(adapter_dir, m);
  a.merge_into(m);  // lorazip's one merge (single-threaded, so every run gives the same bits)
  if (entry_out) {
    *entry_out = describe_adapter(adapter_dir);
    entry_out->fingerprint = a.fingerprint();
  }
  return m;
}

std::shared_ptr<const engine::Model> engine_model(LlamaForCausalLM& model, const LoraAdapter* adapter) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> keep;  // float32 contiguous copies, alive until the engine has copied them
  auto ref = [&](const torch::Tensor& t) {
    keep.push_back(t.detach().to(torch::kCPU, torch::kFloat).contiguous());
    return engine::TensorRef{keep.back().sizes().vec(), keep.back().data_ptr<float>()};
  };
  engine::TensorMap weights;
  for (const auto& p : model->named_parameters(true)) weights[p.key()] = ref(p.value());
  std::vector<engine::LoraRef> lora;
  if (adapter) {
    const auto sd = adapter->state_dict();
    for (const std::string& mod : adapter->modules())
      lora.push_back({mod, ref(sd.at(peft_key(mod, "lora_A"))), ref(sd.at(peft_key(mod, "lora_B"))), adapter->scaling(mod)});
  }
  return std::make_shared<const engine::Model>(engine::config_from(model->config()), weights, lora);
}

CodecIdentity identity_for(const LoadedBase& base, const AdapterEntry* adapter) {
  CodecIdentity id;
  id.base_fingerprint = base.fingerprint;
  id.tokenizer_fingerprint = base.tokenizer->sha256();
  if (adapter) {
    id.adapter_fingerprint = adapter->fingerprint;
    id.adapter_domain = adapter->domain;
  }
  return id;
}

LmCodec& CodecSet::get(const std::string& adapter_dir) {
  auto it = codecs_.find(adapter_dir);
  if (it != codecs_.end()) return *it->second;
  std::unique_ptr<LmCodec> c;
  if (adapter_dir.empty()) {
    c = std::make_unique<LmCodec>(engine_model(base_.model), *base_.tokenizer, identity_for(base_, nullptr));
  } else {
    LoraAdapter a = LoraAdapter::load(adapter_dir, base_.model);
    AdapterEntry e = describe_adapter(adapter_dir);
    e.fingerprint = a.fingerprint();
    c = std::make_unique<LmCodec>(engine_model(base_.model, &a), *base_.tokenizer, identity_for(base_, &e));
  }
  return *codecs_.emplace(adapter_dir, std::move(c)).first->second;
}

}  // namespace lorazip
