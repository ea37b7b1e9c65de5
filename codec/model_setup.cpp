#include "codec/model_setup.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "adapters/adapter.h"
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
  std::string tok = dir + "/tokenizer.model";
  if (!file_exists(tok))
    throw std::runtime_error("base model directory '" + dir + "' has no tokenizer.model (lorazip needs the SentencePiece model beside the weights)");
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
  AdapterEntry e = describe_adapter(adapter_dir);
  e.fingerprint = a.fingerprint();
  // Fold W += scaling * B @ A here, on one intra-op thread, so the merged weights are the same
  // bits on every run; the adapter itself is never attached to `m`.
  std::map<std::string, Linear> proj;
  for (auto& [name, lin] : m->projections()) proj.emplace(name, lin);
  auto sd = a.state_dict();
  int prev = at::get_num_threads();
  at::set_num_threads(1);
  {
    torch::NoGradGuard no_grad;
    for (const std::string& mod : a.modules()) {
      auto it = proj.find(mod);
      if (it == proj.end()) throw std::runtime_error(adapter_dir + ": adapter module '" + mod + "' is not in the base model");
      const torch::Tensor& A = sd.at(peft_key(mod, "lora_A"));
      const torch::Tensor& B = sd.at(peft_key(mod, "lora_B"));
      it->second->weight.add_(torch::matmul(B, A).mul_(a.scaling(mod)));
    }
  }
  at::set_num_threads(prev);
  if (entry_out) *entry_out = e;
  return m;
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
    c = std::make_unique<LmCodec>(base_.model, *base_.tokenizer, identity_for(base_, nullptr));
  } else {
    AdapterEntry e;
    LlamaForCausalLM m = merged_model(base_, adapter_dir, &e);
    c = std::make_unique<LmCodec>(m, *base_.tokenizer, identity_for(base_, &e));
  }
  return *codecs_.emplace(adapter_dir, std::move(c)).first->second;
}

}  // namespace lorazip
