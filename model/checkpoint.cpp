// Hugging Face Llama directories in and out: config.json + model.safetensors (or shards + index),
// checked tensor by tensor, written atomically; and the SHA-256 fingerprints that name a model.
#include "model/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>

#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "model/tokenizer.h"

namespace lorazip {
namespace {

using nlohmann::json;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// One tensor's contribution to a fingerprint; shared by the model and RawTensor paths so that
// both give the same value for the same tensors.
void hash_tensor(Sha256& h, const std::string& name, DType dtype, const std::vector<int64_t>& shape, const void* data,
                 size_t nbytes) {
  h.update_field(name);
  h.update_field(dtype_name(dtype));
  h.update_field(shape_str(shape));
  h.update_field(std::string_view(static_cast<const char*>(data), nbytes));
}

// Copies one file tensor into the model's parameter after checking its shape.
void assign(torch::Tensor& param, const RawTensor& raw, const std::string& name, const std::string& file) {
  std::vector<int64_t> want(param.sizes().begin(), param.sizes().end());
  if (raw.shape != want)
    throw std::runtime_error("checkpoint '" + file + "': tensor '" + name + "' has shape " + shape_str(raw.shape) +
                             " but config.json implies " + shape_str(want) +
                             " (config.json and weights disagree, or the file is for another model)");
  if (raw.dtype != DType::F32 && raw.dtype != DType::F16 && raw.dtype != DType::BF16)
    throw std::runtime_error("checkpoint '" + file + "': tensor '" + name + "' has dtype " + dtype_name(raw.dtype) +
                             "; expected F32, F16 or BF16");
  torch::Tensor t = from_raw(raw, name);
  torch::NoGradGuard no_grad;
  param.copy_(t);
}

}  // namespace

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
  const std::string config_path = dir + "/config.json";
  if (!file_exists(config_path))
    throw std::runtime_error("model directory '" + dir + "' has no config.json (is it a Hugging Face model directory?)");
  json cj;
  try {
    cj = json::parse(read_file(config_path));
  } catch (const json::exception& e) {
    throw std::runtime_error(config_path + ": invalid JSON: " + e.what());
  }
  LlamaConfig cfg = LlamaConfig::from_hf_json(cj, config_path);
  LlamaForCausalLM model(cfg);

  // Which files to read, and for sharded checkpoints which tensors each must hold.
  std::vector<std::string> files;
  std::map<std::string, std::string> weight_map;  // tensor -> shard file (sharded only)
  const std::string single = dir + "/model.safetensors";
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (file_exists(single)) {
    files.push_back(single);
  } else if (file_exists(index_path)) {
    json ij;
    try {
      ij = json::parse(read_file(index_path));
    } catch (const json::exception& e) {
      throw std::runtime_error(index_path + ": invalid JSON: " + e.what());
    }
    if (!ij.is_object() || !ij.contains("weight_map") || !ij.at("weight_map").is_object())
      throw std::runtime_error(index_path + ": missing object 'weight_map'");
    std::set<std::string> shard_set;
    for (auto it = ij.at("weight_map").begin(); it != ij.at("weight_map").end(); ++it) {
      if (!it.value().is_string()) throw std::runtime_error(index_path + ": weight_map['" + it.key() + "'] is not a file name");
      std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "..")
        throw std::runtime_error(index_path + ": weight_map['" + it.key() + "'] = '" + shard + "' is not a plain file name");
      weight_map[it.key()] = shard;
      shard_set.insert(shard);
    }
    for (const auto& s : shard_set) files.push_back(dir + "/" + s);
  } else {
    throw std::runtime_error("model directory '" + dir +
                             "' has neither model.safetensors nor model.safetensors.index.json "
                             "(pytorch_model.bin checkpoints are not supported; convert to safetensors)");
  }

  std::map<std::string, torch::Tensor> params;
  for (auto& kv : model->named_parameters(true)) params.emplace(kv.key(), kv.value());
  std::set<std::string> loaded;
  torch::Tensor tied_head;
  std::string tied_head_file;
  for (const std::string& file : files) {
    if (!file_exists(file)) throw std::runtime_error("checkpoint shard '" + file + "' named in " + index_path + " is missing");
    SafetensorsFile sf = read_safetensors(file);
    const std::string base = file.substr(file.rfind('/') + 1);
    if (!weight_map.empty()) {
      for (const auto& wm : weight_map)
        if (wm.second == base && !sf.tensors.count(wm.first))
          throw std::runtime_error("checkpoint '" + file + "': tensor '" + wm.first + "' is listed in " + index_path +
                                   " but not in this shard");
    }
    for (auto& kv : sf.tensors) {
      const std::string& name = kv.first;
      if (ends_with(name, ".rotary_emb.inv_freq")) continue;  // recomputed from rope_theta
      if (!weight_map.empty()) {
        auto w = weight_map.find(name);
        if (w == weight_map.end() || w->second != base)
          throw std::runtime_error("checkpoint '" + file + "': tensor '" + name + "' is not assigned to this shard in " +
                                   index_path);
      }
      auto p = params.find(name);
      if (p == params.end()) {
        // A tied checkpoint may still carry a copy of the embedding as lm_head; accept an exact
        // copy (checked once every file is loaded).
        if (name == "lm_head.weight" && cfg.tie_word_embeddings) {
          tied_head = from_raw(kv.second, name);
          tied_head_file = file;
          continue;
        }
        throw std::runtime_error("checkpoint '" + file + "': unexpected tensor '" + name + "' (shape " +
                                 shape_str(kv.second.shape) +
                                 "); the file holds weights this Llama config does not have "
                                 "(wrong config.json, or not a Llama checkpoint?)");
      }
      if (!loaded.insert(name).second)
        throw std::runtime_error("checkpoint '" + file + "': tensor '" + name + "' appears in more than one file");
      assign(p->second, kv.second, name, file);
    }
  }
  std::vector<std::string> missing;
  for (const auto& kv : params)
    if (!loaded.count(kv.first)) missing.push_back(kv.first);
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 5; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 5) list += ", ... (" + std::to_string(missing.size()) + " in all)";
    throw std::runtime_error("checkpoint '" + dir + "': missing tensor(s) " + list +
                             (missing.size() == 1 && missing[0] == "lm_head.weight"
                                  ? " (should config.json set tie_word_embeddings = true?)"
                                  : " (config.json and weights disagree?)"));
  }
  if (tied_head.defined() && !torch::equal(tied_head, params.at("model.embed_tokens.weight").detach()))
    throw std::runtime_error("checkpoint '" + tied_head_file + "': tensor 'lm_head.weight' is not a copy of " +
                             "model.embed_tokens.weight but config.json sets tie_word_embeddings = true");
  return model;
}

void save_hf_model(LlamaForCausalLM& model, const std::string& dir, const std::string& tokenizer_model_bytes,
                   int64_t max_shard_bytes) {
  AtomicDir out(dir);
  write_file_atomic(out.tmp() + "/config.json", model->config().to_hf_json().dump(2) + "\n");

  // Tensors in the model's own order, grouped greedily into shards (as transformers does).
  std::vector<std::vector<std::pair<std::string, RawTensor>>> shards(1);
  int64_t shard_bytes = 0, total = 0;
  for (auto& kv : model->named_parameters(true)) {
    RawTensor r = to_raw(kv.value().to(torch::kFloat));
    const int64_t n = static_cast<int64_t>(r.data.size());
    if (max_shard_bytes > 0 && shard_bytes > 0 && shard_bytes + n > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shard_bytes += n;
    total += n;
    shards.back().emplace_back(kv.key(), std::move(r));
  }

  if (shards.size() == 1) {
    SafetensorsFile f;
    f.metadata["format"] = "pt";
    for (auto& kv : shards[0]) f.tensors.emplace(kv.first, std::move(kv.second));
    write_file_atomic(out.tmp() + "/model.safetensors", serialize_safetensors(f));
  } else {
    json index;
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = json::object();
    const size_t n = shards.size();
    for (size_t s = 0; s < n; ++s) {
      char fname[64];
      std::snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", s + 1, n);
      SafetensorsFile f;
      f.metadata["format"] = "pt";
      for (auto& kv : shards[s]) {
        index["weight_map"][kv.first] = fname;
        f.tensors.emplace(kv.first, std::move(kv.second));
      }
      write_file_atomic(out.tmp() + "/" + fname, serialize_safetensors(f));
    }
    write_file_atomic(out.tmp() + "/model.safetensors.index.json", index.dump(2) + "\n");
  }
  if (!tokenizer_model_bytes.empty())
    write_file_atomic(out.tmp() + "/" + Tokenizer::model_file_name(tokenizer_model_bytes), tokenizer_model_bytes);
  out.commit();
}

std::string model_fingerprint(LlamaForCausalLM& model) {
  std::map<std::string, torch::Tensor> sorted;
  for (auto& kv : model->named_parameters(true)) sorted.emplace(kv.key(), kv.value());
  Sha256 h;
  for (const auto& kv : sorted) {
    torch::Tensor t = kv.second.detach().to(torch::kCPU, torch::kFloat).contiguous();
    hash_tensor(h, kv.first, DType::F32, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), t.data_ptr(),
                static_cast<size_t>(t.numel()) * sizeof(float));
  }
  return h.hex();
}

std::string tensors_fingerprint(const std::map<std::string, RawTensor>& tensors) {
  Sha256 h;
  for (const auto& kv : tensors) hash_tensor(h, kv.first, kv.second.dtype, kv.second.shape, kv.second.data.data(), kv.second.data.size());
  return h.hex();
}

}  // namespace lorazip
