// Llama checkpoints as stored (GGUF or Hugging Face safetensors), checked against their config,
// and the float32 fingerprint that names a base (llama_tensors.h).
#include "model/llama_tensors.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>

#include "common/fs.h"
#include "common/hash.h"
#include "model/gguf_llama.h"
#include "model/hf_tokenizer.h"
#include "model/tokenizer.h"

namespace lorazip {
namespace {

using nlohmann::json;

std::string shape_str(const std::vector<int64_t>& s, const char* sep = ", ") {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? sep : "") + std::to_string(s[i]);
  return out + "]";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

[[noreturn]] void refuse(const GgufFile& f, const std::string& msg) {
  throw std::runtime_error("GGUF file '" + f.name() + "': " + msg);
}

// One tensor's contribution to a fingerprint: (name, dtype, shape, then the bytes as one field).
void hash_header(Sha256& h, const std::string& name, const char* dtype, const std::vector<int64_t>& shape, uint64_t nbytes) {
  h.update_field(name);
  h.update_field(dtype);
  h.update_field(shape_str(shape, ","));
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(nbytes >> (8 * i));
  h.update(len, 8);
}

engine::WeightKind kind_of(DType d, const std::string& file, const std::string& name) {
  switch (d) {
    case DType::F32: return engine::WeightKind::F32;
    case DType::F16: return engine::WeightKind::F16;
    case DType::BF16: return engine::WeightKind::BF16;
    default:
      throw std::runtime_error("checkpoint '" + file + "': tensor '" + name + "' has dtype " + dtype_name(d) +
                               "; expected F32, F16 or BF16");
  }
}

}  // namespace

std::map<std::string, std::vector<int64_t>> expected_llama_tensors(const LlamaConfig& c) {
  const int64_t hd = c.resolved_head_dim(), hq = c.num_attention_heads * hd, hkv = c.num_key_value_heads * hd;
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  std::map<std::string, std::vector<int64_t>> e;
  e["model.embed_tokens.weight"] = {c.vocab_size, h};
  e["model.norm.weight"] = {h};
  if (!c.tie_word_embeddings) e["lm_head.weight"] = {c.vocab_size, h};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    e[p + "input_layernorm.weight"] = {h};
    e[p + "post_attention_layernorm.weight"] = {h};
    e[p + "self_attn.q_proj.weight"] = {hq, h};
    e[p + "self_attn.k_proj.weight"] = {hkv, h};
    e[p + "self_attn.v_proj.weight"] = {hkv, h};
    e[p + "self_attn.o_proj.weight"] = {h, hq};
    e[p + "mlp.gate_proj.weight"] = {f, h};
    e[p + "mlp.up_proj.weight"] = {f, h};
    e[p + "mlp.down_proj.weight"] = {h, f};
    if (c.attention_bias) {
      e[p + "self_attn.q_proj.bias"] = {hq};
      e[p + "self_attn.k_proj.bias"] = {hkv};
      e[p + "self_attn.v_proj.bias"] = {hkv};
      e[p + "self_attn.o_proj.bias"] = {h};
    }
    if (c.mlp_bias) {
      e[p + "mlp.gate_proj.bias"] = {f};
      e[p + "mlp.up_proj.bias"] = {f};
      e[p + "mlp.down_proj.bias"] = {h};
    }
  }
  return e;
}

StoredLlama read_gguf_llama(const GgufFile& f) { return read_gguf_llama(std::make_shared<const GgufFile>(f)); }

StoredLlama read_gguf_llama(std::shared_ptr<const GgufFile> file) {
  const GgufFile& f = *file;
  StoredLlama out;
  out.source = f.name();
  out.config = llama_config_from_gguf(f);
  const LlamaConfig& cfg = out.config;
  const auto expected = expected_llama_tensors(cfg);
  for (const GgufTensorInfo& t : f.tensors()) {
    const std::string hf = hf_tensor_name(t.name);
    auto it = hf.empty() ? expected.end() : expected.find(hf);
    if (it == expected.end())
      refuse(f, "unexpected tensor '" + t.name + "' (not part of a Llama model with this file's llama.* metadata)");
    if (t.shape() != it->second)
      refuse(f, "tensor '" + t.name + "' has shape " + shape_str(t.shape()) + " but the llama.* metadata implies " +
                    shape_str(it->second) + " for " + hf);
    engine::WeightKind kind;
    if (!engine::kind_from_ggml(t.type, &kind))
      refuse(f, "tensor '" + t.name + "' has type " + ggml_type_label(t.type) +
                    ", which lorazip does not compute with (supported: " + ggml_dequantizable_types() + ")");
    if (it->second.size() == 1 && engine::kind_traits(kind).quantized)
      refuse(f, "tensor '" + t.name + "' is a vector stored as " + engine::kind_name(kind) +
                    "; norm weights and biases must be F32, F16 or BF16");
    const std::string_view bytes = f.tensor_bytes(t);
    out.tensors[hf] = {it->second, kind, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                       qk_permute_heads(hf, cfg)};
  }
  for (const auto& e : expected)
    if (!out.tensors.count(e.first))
      refuse(f, "tensor '" + gguf_tensor_name(e.first) + "' (" + e.first + ") is missing" +
                    (e.first == "lm_head.weight" ? "" : " (truncated conversion, or the metadata is for another model?)"));
  out.keep = std::move(file);
  return out;
}

StoredLlama read_hf_llama(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  if (!file_exists(config_path))
    throw std::runtime_error("model directory '" + dir + "' has no config.json (is it a Hugging Face model directory?)");
  json cj;
  try {
    cj = json::parse(read_file(config_path));
  } catch (const json::exception& e) {
    throw std::runtime_error(config_path + ": invalid JSON: " + e.what());
  }
  StoredLlama out;
  out.source = dir;
  out.config = LlamaConfig::from_hf_json(cj, config_path);
  const LlamaConfig& cfg = out.config;
  const auto expected = expected_llama_tensors(cfg);

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

  auto held = std::make_shared<std::vector<SafetensorsFile>>();
  held->reserve(files.size());
  const RawTensor* tied_head = nullptr;
  std::string tied_head_file;
  for (const std::string& file : files) {
    if (!file_exists(file)) throw std::runtime_error("checkpoint shard '" + file + "' named in " + index_path + " is missing");
    held->push_back(read_safetensors(file));
    const SafetensorsFile& sf = held->back();
    const std::string base = file.substr(file.rfind('/') + 1);
    if (!weight_map.empty()) {
      for (const auto& wm : weight_map)
        if (wm.second == base && !sf.tensors.count(wm.first))
          throw std::runtime_error("checkpoint '" + file + "': tensor '" + wm.first + "' is listed in " + index_path +
                                   " but not in this shard");
    }
    for (const auto& kv : sf.tensors) {
      const std::string& name = kv.first;
      if (ends_with(name, ".rotary_emb.inv_freq")) continue;  // recomputed from rope_theta
      if (!weight_map.empty()) {
        auto w = weight_map.find(name);
        if (w == weight_map.end() || w->second != base)
          throw std::runtime_error("checkpoint '" + file + "': tensor '" + name + "' is not assigned to this shard in " +
                                   index_path);
      }
      auto e = expected.find(name);
      if (e == expected.end()) {
        // A tied checkpoint may still carry a copy of the embedding as lm_head; accept an exact
        // copy (checked once every file is loaded).
        if (name == "lm_head.weight" && cfg.tie_word_embeddings) {
          tied_head = &kv.second;
          tied_head_file = file;
          continue;
        }
        throw std::runtime_error("checkpoint '" + file + "': unexpected tensor '" + name + "' (shape " +
                                 shape_str(kv.second.shape, ",") +
                                 "); the file holds weights this Llama config does not have "
                                 "(wrong config.json, or not a Llama checkpoint?)");
      }
      if (out.tensors.count(name))
        throw std::runtime_error("checkpoint '" + file + "': tensor '" + name + "' appears in more than one file");
      if (kv.second.shape != e->second)
        throw std::runtime_error("checkpoint '" + file + "': tensor '" + name + "' has shape " + shape_str(kv.second.shape, ",") +
                                 " but config.json implies " + shape_str(e->second, ",") +
                                 " (config.json and weights disagree, or the file is for another model)");
      const engine::WeightKind kind = kind_of(kv.second.dtype, file, name);
      out.tensors[name] = {e->second, kind, reinterpret_cast<const uint8_t*>(kv.second.data.data()), kv.second.data.size(), 0};
    }
  }
  std::vector<std::string> missing;
  for (const auto& e : expected)
    if (!out.tensors.count(e.first)) missing.push_back(e.first);
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 5; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 5) list += ", ... (" + std::to_string(missing.size()) + " in all)";
    throw std::runtime_error("checkpoint '" + dir + "': missing tensor(s) " + list +
                             (missing.size() == 1 && missing[0] == "lm_head.weight"
                                  ? " (should config.json set tie_word_embeddings = true?)"
                                  : " (config.json and weights disagree?)"));
  }
  if (tied_head) {
    const engine::StoredTensor& emb = out.tensors.at("model.embed_tokens.weight");
    bool same = tied_head->shape == emb.shape;
    if (same) {
      engine::StoredTensor head = emb;
      head.kind = kind_of(tied_head->dtype, tied_head_file, "lm_head.weight");
      head.data = reinterpret_cast<const uint8_t*>(tied_head->data.data());
      head.nbytes = tied_head->data.size();
      same = stored_as_float32(head) == stored_as_float32(emb);
    }
    if (!same)
      throw std::runtime_error("checkpoint '" + tied_head_file + "': tensor 'lm_head.weight' is not a copy of " +
                               "model.embed_tokens.weight but config.json sets tie_word_embeddings = true");
  }
  out.keep = held;
  return out;
}

void write_hf_llama(const std::string& dir, const LlamaConfig& config, std::vector<std::pair<std::string, RawTensor>> tensors,
                    const std::string& tokenizer_model_bytes, int64_t max_shard_bytes) {
  AtomicDir out(dir);
  write_file_atomic(out.tmp() + "/config.json", config.to_hf_json().dump(2) + "\n");

  // Shards filled greedily in the given order (as transformers does).
  std::vector<std::vector<std::pair<std::string, RawTensor>>> shards(1);
  int64_t shard_bytes = 0, total = 0;
  for (auto& [key, raw] : tensors) {
    const int64_t n = static_cast<int64_t>(raw.data.size());
    if (max_shard_bytes > 0 && shard_bytes > 0 && shard_bytes + n > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shard_bytes += n;
    total += n;
    shards.back().emplace_back(key, std::move(raw));
  }
  tensors.clear();

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
  if (!tokenizer_model_bytes.empty()) {
    const std::string name = Tokenizer::model_file_name(tokenizer_model_bytes);
    write_file_atomic(out.tmp() + "/" + name, tokenizer_model_bytes);
    const Tokenizer tok = Tokenizer::from_bytes(tokenizer_model_bytes, dir + "/" + name);
    for (const auto& [file, text] : hf_tokenizer_files(tok, config.max_position_embeddings))
      write_file_atomic(out.tmp() + "/" + file, text);
  }
  out.commit();
}

std::vector<float> stored_as_float32(const engine::StoredTensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  // A vector's rows are its elements (a permuted q/k bias moves element by element).
  const int64_t cols = t.shape.size() == 1 ? 1 : t.shape.back(), rows = cols ? n / cols : 0;
  const uint64_t rb = engine::row_bytes(t.kind, cols);
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t src = engine::stored_row(r, rows, t.permute_heads);
    engine::dequantize_row(t.kind, t.data + static_cast<uint64_t>(src) * rb, out.data() + r * cols, cols);
  }
  return out;
}

std::string float32_fingerprint(const engine::StoredMap& tensors) {
  Sha256 h;
  std::vector<float> row;
  for (const auto& [name, t] : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    hash_header(h, name, "F32", t.shape, static_cast<uint64_t>(n) * 4);
    const int64_t cols = t.shape.size() == 1 ? 1 : t.shape.back(), rows = cols ? n / cols : 0;
    if (t.kind == engine::WeightKind::F32 && t.permute_heads == 0) {  // the bytes are the float32 values
      h.update(t.data, static_cast<size_t>(n) * 4);
      continue;
    }
    const uint64_t rb = engine::row_bytes(t.kind, cols);
    row.resize(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t src = engine::stored_row(r, rows, t.permute_heads);
      engine::dequantize_row(t.kind, t.data + static_cast<uint64_t>(src) * rb, row.data(), cols);
      h.update(row.data(), static_cast<size_t>(cols) * 4);
    }
  }
  return h.hex();
}

std::string stored_fingerprint(const engine::StoredMap& tensors) { return stored_fingerprint(tensors, nullptr); }

std::string stored_fingerprint(const engine::StoredMap& tensors, const TensorReader& read) {
  Sha256 h;
  h.update_field("lorazip stored weights 1");
  for (const auto& [name, t] : tensors) {
    hash_header(h, name, engine::kind_name(t.kind), t.shape, t.nbytes);
    if (read) read(t, [&h](const uint8_t* p, size_t n) { h.update(p, n); });
    else h.update(t.data, static_cast<size_t>(t.nbytes));
    h.update_field(std::to_string(t.permute_heads));
  }
  return h.hex();
}

bool has_quantized_matrix(const engine::StoredMap& tensors) {
  for (const auto& [name, t] : tensors)
    if (engine::kind_traits(t.kind).quantized) return true;
  return false;
}

std::string tensors_fingerprint(const std::map<std::string, RawTensor>& tensors) {
  std::map<std::string, TensorView> views;
  for (const auto& [name, t] : tensors) views.emplace(name, TensorView{t.dtype, t.shape, t.data});
  return tensors_fingerprint(views);
}

std::string tensors_fingerprint(const std::map<std::string, TensorView>& tensors) {
  Sha256 h;
  for (const auto& [name, t] : tensors) {
    hash_header(h, name, dtype_name(t.dtype), t.shape, t.data.size());
    h.update(t.data.data(), t.data.size());
  }
  return h.hex();
}

}  // namespace lorazip
