// Reading a PEFT adapter directory without libtorch (peft_files.h), and lorazip.json.
#include "adapters/peft_files.h"

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <tuple>

#include "common/fs.h"
#include "model/llama_tensors.h"
#include "model/safetensors.h"

namespace lorazip {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A list entry of target_modules matches a module path exactly or as a dotted suffix (PEFT).
bool suffix_match(const std::string& module, const std::string& target) {
  return module == target || ends_with(module, "." + target);
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

const char* kPrefix = "base_model.model.";


double json_number(const nlohmann::json& j, const char* key, double dflt, const std::string& file) {
  if (!j.contains(key) || j[key].is_null()) return dflt;
  if (!j[key].is_number()) throw std::runtime_error(file + ": '" + key + "' must be a number, got " + j[key].dump());
  return j[key].get<double>();
}

bool json_bool(const nlohmann::json& j, const char* key, bool dflt, const std::string& file) {
  if (!j.contains(key) || j[key].is_null()) return dflt;
  if (!j[key].is_boolean()) throw std::runtime_error(file + ": '" + key + "' must be true or false, got " + j[key].dump());
  return j[key].get<bool>();
}

}  // namespace

namespace {
int64_t layer_count(const std::vector<Projection>& projs) {
  int64_t n = 0;
  for (const Projection& p : projs) n = std::max(n, module_layer(p.name) + 1);
  return n;
}
}  // namespace

std::vector<Projection> llama_projections(const LlamaConfig& c) {
  const int64_t hd = c.resolved_head_dim(), hq = c.num_attention_heads * hd, hkv = c.num_key_value_heads * hd;
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  std::vector<Projection> out;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.push_back({p + "self_attn.q_proj", h, hq});
    out.push_back({p + "self_attn.k_proj", h, hkv});
    out.push_back({p + "self_attn.v_proj", h, hkv});
    out.push_back({p + "self_attn.o_proj", hq, h});
    out.push_back({p + "mlp.gate_proj", h, f});
    out.push_back({p + "mlp.up_proj", h, f});
    out.push_back({p + "mlp.down_proj", f, h});
  }
  return out;
}

namespace {
// lorazip.json's domain, else the directory's name.
std::string domain_of(const std::string& dir, bool has_info, const AdapterInfo& info) {
  if (has_info && !info.domain.empty()) return info.domain;
  const size_t slash = dir.find_last_not_of('/');
  const std::string trimmed = slash == std::string::npos ? dir : dir.substr(0, slash + 1);
  return trimmed.substr(trimmed.rfind('/') == std::string::npos ? 0 : trimmed.rfind('/') + 1);
}
}  // namespace

std::string PeftAdapterFiles::domain() const { return domain_of(dir, has_info, info); }
std::string PeftAdapterView::domain() const { return domain_of(dir, has_info, info); }

std::vector<engine::StoredLoraRef> PeftAdapterView::lora() const {
  std::vector<engine::StoredLoraRef> out;
  out.reserve(modules.size());
  for (const PeftModuleView& m : modules) out.push_back({m.name, m.a, m.b, m.scaling});
  return out;
}

std::string peft_key(const std::string& module, const std::string& which) {
  return kPrefix + module + "." + which + ".weight";
}

nlohmann::json peft_adapter_config(const LoraConfig& cfg, const std::string& base_model_name_or_path) {
  // Only keys every PEFT from 0.10 on knows (an unknown key makes LoraConfig.__init__ fail), and
  // only those a reader needs: a key at PEFT's default is left out (use_rslora is written when true).
  nlohmann::json j;
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["base_model_name_or_path"] = base_model_name_or_path;
  j["r"] = cfg.r;
  // PEFT writes lora_alpha as a number; keep integers integral so other tools read "16", not "16.0".
  if (cfg.alpha == std::floor(cfg.alpha) && std::fabs(cfg.alpha) < 1e15) j["lora_alpha"] = static_cast<int64_t>(cfg.alpha);
  else j["lora_alpha"] = cfg.alpha;
  j["lora_dropout"] = cfg.dropout;
  j["target_modules"] = cfg.targets;
  j["bias"] = "none";
  if (cfg.use_rslora) j["use_rslora"] = true;
  j["inference_mode"] = true;
  return j;
}

// ---- AdapterInfo ---------------------------------------------------------------------------

namespace {
nlohmann::json num_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
double num_from(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return std::numeric_limits<double>::quiet_NaN();
  return j[key].get<double>();
}
std::string str_from(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}
}  // namespace

nlohmann::json AdapterInfo::to_json() const {
  nlohmann::json j;
  j["format"] = "lorazip-adapter";
  j["version"] = 1;
  j["domain"] = domain;
  j["base_model_name_or_path"] = base_model_name_or_path;
  j["base_fingerprint"] = base_fingerprint;
  j["tokenizer_sha256"] = tokenizer_sha256;
  j["adapter_fingerprint"] = adapter_fingerprint;
  j["train_bits_per_token"] = num_or_null(train_bits_per_token);
  j["val_bits_per_token"] = num_or_null(val_bits_per_token);
  j["val_bits_per_byte"] = num_or_null(val_bits_per_byte);
  j["base_val_bits_per_token"] = num_or_null(base_val_bits_per_token);
  j["steps"] = steps;
  j["config"] = config.is_null() ? nlohmann::json::object() : config;
  return j;
}

AdapterInfo AdapterInfo::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw std::runtime_error(source + ": expected a JSON object");
  if (str_from(j, "format") != "lorazip-adapter")
    throw std::runtime_error(source + ": 'format' is not \"lorazip-adapter\"; is this a lorazip.json?");
  AdapterInfo a;
  a.domain = str_from(j, "domain");
  a.base_model_name_or_path = str_from(j, "base_model_name_or_path");
  a.base_fingerprint = str_from(j, "base_fingerprint");
  a.tokenizer_sha256 = str_from(j, "tokenizer_sha256");
  a.adapter_fingerprint = str_from(j, "adapter_fingerprint");
  a.train_bits_per_token = num_from(j, "train_bits_per_token");
  a.val_bits_per_token = num_from(j, "val_bits_per_token");
  a.val_bits_per_byte = num_from(j, "val_bits_per_byte");
  a.base_val_bits_per_token = num_from(j, "base_val_bits_per_token");
  if (j.contains("steps") && j["steps"].is_number_integer()) a.steps = j["steps"].get<int64_t>();
  if (j.contains("config")) a.config = j["config"];
  return a;
}

AdapterInfo AdapterInfo::read(const std::string& dir) {
  std::string path = dir + "/lorazip.json";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": invalid JSON: " + e.what());
  }
  return AdapterInfo::from_json(j, path);
}

PeftAdapterView read_peft_adapter_view(const std::string& dir, const std::vector<Projection>& projections,
                                       const std::function<bool(const std::string&)>& base_matches,
                                       const std::string& base_fingerprint) {
  const std::string cfg_path = dir + "/adapter_config.json";
  const std::string st_path = dir + "/adapter_model.safetensors";
  if (!file_exists(cfg_path))
    throw std::runtime_error(cfg_path + ": not found; a PEFT adapter directory holds adapter_config.json and "
                             "adapter_model.safetensors");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(cfg_path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(cfg_path + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw std::runtime_error(cfg_path + ": expected a JSON object");
  if (!j.contains("peft_type")) throw std::runtime_error(cfg_path + ": 'peft_type' is missing (PEFT requires it)");
  if (j["peft_type"] != "LORA")
    throw std::runtime_error(cfg_path + ": peft_type is " + j["peft_type"].dump() + "; lorazip reads only \"LORA\" adapters");

  // Features that change the math and that lorazip does not implement are refused, not ignored.
  auto refuse_if = [&](bool cond, const std::string& what) {
    if (cond) throw std::runtime_error(cfg_path + ": " + what + " is not supported by lorazip");
  };
  refuse_if(json_bool(j, "use_dora", false, cfg_path), "use_dora=true (DoRA)");
  refuse_if(json_bool(j, "fan_in_fan_out", false, cfg_path), "fan_in_fan_out=true (Conv1D-style weights)");
  refuse_if(json_bool(j, "lora_bias", false, cfg_path), "lora_bias=true");
  refuse_if(j.contains("bias") && j["bias"].is_string() && j["bias"] != "none", "bias=" + j.value("bias", std::string()));
  refuse_if(j.contains("modules_to_save") && !j["modules_to_save"].is_null() && !j["modules_to_save"].empty(),
            "modules_to_save (fully trained extra modules)");
  refuse_if(j.contains("layer_replication") && !j["layer_replication"].is_null(), "layer_replication");
  refuse_if(j.contains("trainable_token_indices") && !j["trainable_token_indices"].is_null(), "trainable_token_indices");
  refuse_if(j.contains("target_parameters") && !j["target_parameters"].is_null() && !j["target_parameters"].empty(),
            "target_parameters");

  LoraConfig cfg;
  double r_d = json_number(j, "r", 8, cfg_path);
  if (r_d < 1 || r_d != std::floor(r_d)) throw std::runtime_error(cfg_path + ": 'r' must be a positive integer");
  cfg.r = static_cast<int64_t>(r_d);
  cfg.alpha = json_number(j, "lora_alpha", 8, cfg_path);
  cfg.dropout = json_number(j, "lora_dropout", 0.0, cfg_path);
  cfg.use_rslora = json_bool(j, "use_rslora", false, cfg_path);

  // Which projections the config targets.
  const std::vector<Projection>& projs = projections;
  std::vector<std::string> list_targets;
  std::string regex_target;
  bool all_linear = false;
  const nlohmann::json tm = j.contains("target_modules") ? j["target_modules"] : nlohmann::json(nullptr);
  if (tm.is_null()) list_targets = {"q_proj", "v_proj"};  // PEFT's default for Llama
  else if (tm.is_string()) {
    if (tm == "all-linear") all_linear = true;
    else regex_target = tm.get<std::string>();
  } else if (tm.is_array()) {
    for (const auto& t : tm) {
      if (!t.is_string()) throw std::runtime_error(cfg_path + ": target_modules entries must be strings, got " + t.dump());
      list_targets.push_back(t.get<std::string>());
    }
  } else {
    throw std::runtime_error(cfg_path + ": target_modules must be a list, a string or null, got " + tm.dump());
  }
  std::set<int64_t> layers;
  if (j.contains("layers_to_transform") && !j["layers_to_transform"].is_null()) {
    const auto& lt = j["layers_to_transform"];
    if (lt.is_number_integer()) layers.insert(lt.get<int64_t>());
    else if (lt.is_array())
      for (const auto& v : lt) {
        if (!v.is_number_integer()) throw std::runtime_error(cfg_path + ": layers_to_transform must hold integers");
        layers.insert(v.get<int64_t>());
      }
    else throw std::runtime_error(cfg_path + ": layers_to_transform must be an integer or a list of integers");
  }
  auto targeted = [&](const std::string& name) {
    bool hit = false;
    if (all_linear) hit = true;
    else if (!regex_target.empty()) {
      try {
        hit = std::regex_match(name, std::regex(regex_target));
      } catch (const std::regex_error& e) {
        throw std::runtime_error(cfg_path + ": target_modules regex '" + regex_target + "' is invalid: " + e.what());
      }
    } else {
      for (const auto& t : list_targets) hit = hit || suffix_match(name, t);
    }
    if (hit && !layers.empty()) hit = layers.count(module_layer(name)) > 0;
    return hit;
  };
  // PEFT's per-module overrides: a key matches a module path as "(.*\.)?(key)$".
  auto pattern_value = [&](const char* field, const std::string& name, double dflt) {
    if (!j.contains(field) || j[field].is_null()) return dflt;
    if (!j[field].is_object()) throw std::runtime_error(cfg_path + ": '" + field + "' must be an object");
    for (const auto& [key, v] : j[field].items()) {
      bool match = false;
      try {
        match = std::regex_match(name, std::regex("(.*\\.)?(" + key + ")$"));
      } catch (const std::regex_error&) {
        match = suffix_match(name, key);
      }
      if (match) {
        if (!v.is_number()) throw std::runtime_error(cfg_path + ": " + field + "['" + key + "'] must be a number");
        return v.get<double>();
      }
    }
    return dflt;
  };

  if (!file_exists(st_path)) {
    if (file_exists(dir + "/adapter_model.bin"))
      throw std::runtime_error(st_path + ": not found; this adapter has only the legacy pickle adapter_model.bin, which "
                               "lorazip does not read. Re-save it with PEFT (safe_serialization=True)");
    throw std::runtime_error(st_path + ": not found");
  }
  auto file = std::make_shared<const std::string>(read_file(st_path));
  const SafetensorsView st = parse_safetensors_view(*file, st_path);

  // Group the file's tensors by module and check that each is one lorazip can use.
  std::map<std::string, const Projection*> proj_by_name;
  for (const Projection& p : projs) proj_by_name[p.name] = &p;
  std::map<std::string, std::map<std::string, const TensorView*>> by_module;  // module -> {lora_A, lora_B}
  for (const auto& [key, raw] : st.tensors) {
    std::string which;
    if (ends_with(key, ".lora_A.weight")) which = "lora_A";
    else if (ends_with(key, ".lora_B.weight")) which = "lora_B";
    if (key.rfind(kPrefix, 0) != 0 || which.empty())
      throw std::runtime_error(st_path + ": tensor '" + key +
                               "' is not a LoRA tensor lorazip can use (expected base_model.model.<module>.lora_A.weight / "
                               ".lora_B.weight on a Llama projection; embedding, lm_head and bias adapters are not supported)");
    std::string module = key.substr(std::string(kPrefix).size(),
                                    key.size() - std::string(kPrefix).size() - (which.size() + 8));
    if (!proj_by_name.count(module))
      throw std::runtime_error(st_path + ": tensor '" + key + "' is for module '" + module +
                               "', which this base model does not have (it has " + std::to_string(projs.size()) +
                               " projections, model.layers.0-" + std::to_string(layer_count(projs) - 1) +
                               "); was this adapter trained for another base model?");
    if (!targeted(module))
      throw std::runtime_error(st_path + ": tensor '" + key + "' is for module '" + module +
                               "', which adapter_config.json's target_modules does not target");
    by_module[module][which] = &raw;
  }

  PeftAdapterView a;
  a.dir = dir;
  a.file = file;
  auto rounded = std::make_shared<std::vector<std::vector<float>>>();
  std::set<std::string> suffixes;
  engine::StoredMap as_f32;  // the pairs as the engine reads them, for the float32 fingerprint
  // A tensor as the engine reads it: F32, F16 and BF16 where the file holds it, F64 rounded to
  // float32 (the buffer of a vector in `rounded` does not move when the vector does).
  auto stored = [&](const TensorView& t, const std::string& key) {
    engine::StoredTensor out;
    out.shape = t.shape;
    switch (t.dtype) {
      case DType::F32: out.kind = engine::WeightKind::F32; break;
      case DType::F16: out.kind = engine::WeightKind::F16; break;
      case DType::BF16: out.kind = engine::WeightKind::BF16; break;
      default: {  // F64 rounded; to_float32 refuses every other dtype, naming the tensor
        rounded->push_back(to_float32(t, key));
        out.kind = engine::WeightKind::F32;
        out.data = reinterpret_cast<const uint8_t*>(rounded->back().data());
        out.nbytes = rounded->back().size() * sizeof(float);
        return out;
      }
    }
    out.data = reinterpret_cast<const uint8_t*>(t.data.data());
    out.nbytes = t.data.size();
    return out;
  };
  for (const Projection& proj : projs) {
    const std::string& name = proj.name;
    if (!targeted(name)) continue;
    auto it = by_module.find(name);
    for (const char* which : {"lora_A", "lora_B"})
      if (it == by_module.end() || !it->second.count(which))
        throw std::runtime_error(st_path + ": missing tensor '" + peft_key(name, which) +
                                 "' (adapter_config.json targets " + name + ")");
    PeftModuleView m;
    m.name = name;
    double r_mod = pattern_value("rank_pattern", name, static_cast<double>(cfg.r));
    if (r_mod < 1 || r_mod != std::floor(r_mod) || r_mod > 1e9)
      throw std::runtime_error(cfg_path + ": rank_pattern gives " + name + " rank " + std::to_string(r_mod) +
                               "; a rank must be a positive integer");
    m.r = static_cast<int64_t>(r_mod);
    m.alpha = pattern_value("alpha_pattern", name, cfg.alpha);
    m.scaling = cfg.use_rslora ? m.alpha / std::sqrt(static_cast<double>(m.r)) : m.alpha / static_cast<double>(m.r);
    m.in = proj.in;
    m.out = proj.out;
    const TensorView& ra = *it->second.at("lora_A");
    const TensorView& rb = *it->second.at("lora_B");
    const std::string ka = peft_key(name, "lora_A"), kb = peft_key(name, "lora_B");
    if (ra.shape.size() != 2 || rb.shape.size() != 2)
      throw std::runtime_error(st_path + ": tensor '" + (ra.shape.size() != 2 ? ka : kb) + "' is not a matrix");
    if (ra.shape[0] != m.r || rb.shape[1] != m.r)
      throw std::runtime_error(st_path + ": tensor '" + (ra.shape[0] != m.r ? ka : kb) + "' has shape " +
                               shape_str(ra.shape[0] != m.r ? ra.shape : rb.shape) + ", i.e. rank " +
                               std::to_string(ra.shape[0] != m.r ? ra.shape[0] : rb.shape[1]) +
                               ", but adapter_config.json says r=" + std::to_string(m.r));
    if (ra.shape[1] != m.in)
      throw std::runtime_error(st_path + ": tensor '" + ka + "' has shape " + shape_str(ra.shape) + " but the base's " +
                               name + " has in_features " + std::to_string(m.in) + " (expected [" + std::to_string(m.r) +
                               ", " + std::to_string(m.in) + "]); was this adapter trained for another base model?");
    if (rb.shape[0] != m.out)
      throw std::runtime_error(st_path + ": tensor '" + kb + "' has shape " + shape_str(rb.shape) + " but the base's " +
                               name + " has out_features " + std::to_string(m.out) + " (expected [" +
                               std::to_string(m.out) + ", " + std::to_string(m.r) +
                               "]); was this adapter trained for another base model?");
    m.a = stored(ra, ka);
    m.b = stored(rb, kb);
    as_f32.emplace(ka, m.a);
    as_f32.emplace(kb, m.b);
    suffixes.insert(name.substr(name.rfind('.') + 1));
    a.modules.push_back(std::move(m));
  }
  if (a.modules.empty())
    throw std::runtime_error(cfg_path + ": target_modules " + tm.dump() + " matches no projection of this base model");
  cfg.targets.assign(suffixes.begin(), suffixes.end());
  cfg.layers.assign(layers.begin(), layers.end());
  a.config = cfg;
  a.fingerprint = float32_fingerprint(as_f32);
  if (!rounded->empty()) a.rounded = std::move(rounded);

  if (file_exists(dir + "/lorazip.json")) {
    a.info = AdapterInfo::read(dir);
    a.has_info = true;
    // The tensors as stored; when every one is F32 (what lorazip writes) those are the bytes
    // just hashed, so the fingerprint is not computed twice.
    bool all_f32 = st.tensors.size() == as_f32.size();
    for (const auto& [key, t] : st.tensors) all_f32 = all_f32 && t.dtype == DType::F32 && as_f32.count(key);
    if (!a.info.adapter_fingerprint.empty() && a.info.adapter_fingerprint != (all_f32 ? a.fingerprint : tensors_fingerprint(st.tensors)))
      throw std::runtime_error(st_path + ": tensors do not match lorazip.json's adapter_fingerprint " +
                               a.info.adapter_fingerprint + "; the directory mixes files from different adapters");
    if (base_matches && !a.info.base_fingerprint.empty() && !base_matches(a.info.base_fingerprint))
      throw std::runtime_error(dir + ": adapter was trained on base model " + a.info.base_fingerprint +
                               " but the given base model is " + base_fingerprint + "; load the base it was trained on");
  }
  return a;
}

PeftAdapterFiles peft_adapter_floats(const PeftAdapterView& view) {
  PeftAdapterFiles a;
  a.dir = view.dir;
  a.config = view.config;
  a.has_info = view.has_info;
  a.info = view.info;
  a.fingerprint = view.fingerprint;
  a.modules.reserve(view.modules.size());
  for (const PeftModuleView& v : view.modules) {
    PeftModule m;
    static_cast<LoraModuleShape&>(m) = v;
    m.a = stored_as_float32(v.a);
    m.b = stored_as_float32(v.b);
    a.modules.push_back(std::move(m));
  }
  return a;
}

PeftAdapterFiles read_peft_adapter(const std::string& dir, const std::vector<Projection>& projections,
                                   const std::function<bool(const std::string&)>& base_matches,
                                   const std::string& base_fingerprint) {
  return peft_adapter_floats(read_peft_adapter_view(dir, projections, base_matches, base_fingerprint));
}


void write_peft_adapter(const std::string& dir, const LoraConfig& cfg, const std::vector<PeftModule>& modules, AdapterInfo info) {
  SafetensorsFile st;
  st.metadata["format"] = "pt";
  auto raw = [](const std::vector<float>& v, int64_t rows, int64_t cols) {
    RawTensor r;
    r.dtype = DType::F32;
    r.shape = {rows, cols};
    r.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    return r;
  };
  nlohmann::json config = peft_adapter_config(cfg, info.base_model_name_or_path);
  for (const PeftModule& m : modules) {
    if (static_cast<int64_t>(m.a.size()) != m.r * m.in || static_cast<int64_t>(m.b.size()) != m.out * m.r)
      throw std::invalid_argument("write_peft_adapter: module '" + m.name + "' holds " + std::to_string(m.a.size()) + " A and " +
                                  std::to_string(m.b.size()) + " B values for r " + std::to_string(m.r) + ", in " +
                                  std::to_string(m.in) + ", out " + std::to_string(m.out));
    st.tensors.emplace(peft_key(m.name, "lora_A"), raw(m.a, m.r, m.in));
    st.tensors.emplace(peft_key(m.name, "lora_B"), raw(m.b, m.out, m.r));
    // Modules whose rank or alpha differ from the config's keep them through PEFT's per-module
    // patterns, keyed by the full module path.
    if (m.r != cfg.r) config["rank_pattern"][m.name] = m.r;
    if (m.alpha != cfg.alpha) config["alpha_pattern"][m.name] = m.alpha;
  }
  // Adapters on some layers only (lora.layers): PEFT's layers_to_transform lists them.
  if (cfg.top_layers > 0 || !cfg.layers.empty()) {
    std::set<int64_t> layers;
    for (const PeftModule& m : modules) layers.insert(module_layer(m.name));
    config["layers_to_transform"] = std::vector<int64_t>(layers.begin(), layers.end());
  }
  info.adapter_fingerprint = tensors_fingerprint(st.tensors);
  if (info.config.is_null()) info.config = nlohmann::json::object();
  info.config["lora"] = cfg.to_json();

  AtomicDir out(dir);
  write_file_atomic(out.tmp() + "/adapter_config.json", config.dump(2) + "\n");
  write_safetensors(out.tmp() + "/adapter_model.safetensors", st);
  write_file_atomic(out.tmp() + "/lorazip.json", info.to_json().dump(2) + "\n");
  out.commit();
}

int64_t peft_parameter_count(const std::vector<PeftModule>& modules) {
  int64_t n = 0;
  for (const PeftModule& m : modules) n += static_cast<int64_t>(m.a.size() + m.b.size());
  return n;
}

}  // namespace lorazip
