// LoraConfig: defaults, validation and the strict `lora:` YAML section.
#include "adapters/lora_config.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common/yaml_strict.h"

namespace lorazip {

double LoraConfig::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

void LoraConfig::validate(const std::string& source) const {
  auto bad = [&](const std::string& msg) { throw std::invalid_argument(source + ": " + msg); };
  if (r < 1) bad("lora.r must be >= 1, got " + std::to_string(r));
  if (!(alpha > 0)) bad("lora.alpha must be > 0, got " + std::to_string(alpha));
  if (!(dropout >= 0 && dropout < 1)) bad("lora.dropout must be in [0, 1), got " + std::to_string(dropout));
  if (targets.empty()) bad("lora.targets is empty; name at least one projection, e.g. [q_proj, v_proj]");
  for (const auto& t : targets)
    if (t.empty()) bad("lora.targets has an empty name");
  if (top_layers < 0) bad("lora.layers: top K needs K >= 1, got " + std::to_string(top_layers));
  if (top_layers > 0 && !layers.empty()) bad("lora.layers: give either top K or a list of layer indices, not both");
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i] < 0) bad("lora.layers: layer index " + std::to_string(layers[i]) + " is negative");
    for (size_t j = 0; j < i; ++j)
      if (layers[j] == layers[i]) bad("lora.layers: layer " + std::to_string(layers[i]) + " is listed twice");
  }
}

std::vector<int64_t> LoraConfig::resolve_layers(int64_t num_layers) const {
  std::vector<int64_t> out;
  if (top_layers > 0) {
    if (top_layers > num_layers)
      throw std::invalid_argument("lora.layers: top " + std::to_string(top_layers) + " asks for more layers than the model's " +
                                  std::to_string(num_layers));
    for (int64_t i = num_layers - top_layers; i < num_layers; ++i) out.push_back(i);
    return out;
  }
  if (layers.empty()) {
    for (int64_t i = 0; i < num_layers; ++i) out.push_back(i);
    return out;
  }
  for (int64_t i : layers)
    if (i >= num_layers)
      throw std::invalid_argument("lora.layers: layer " + std::to_string(i) + " is not in the model (layers 0-" +
                                  std::to_string(num_layers - 1) + ")");
  out = layers;
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

int64_t layer_number(const std::string& s, const std::string& where) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size())
    throw std::invalid_argument(where + ": lora.layers: '" + s + "' is not a layer number (give all, top K, or a list of layer indices)");
  return static_cast<int64_t>(v);
}

// `layers`: absent or "all" (every layer), "top K", or a list of layer indices.
void parse_layers(const std::vector<std::string>& w, LoraConfig& c, const std::string& where) {
  if (w.empty() || (w.size() == 1 && w[0] == "all")) return;
  if (w[0] == "top") {
    if (w.size() != 2) throw std::invalid_argument(where + ": lora.layers: write 'top K', e.g. 'top 4'");
    c.top_layers = layer_number(w[1], where);
    if (c.top_layers < 1) throw std::invalid_argument(where + ": lora.layers: top K needs K >= 1, got " + w[1]);
    return;
  }
  for (const std::string& s : w) c.layers.push_back(layer_number(s, where));
}

}  // namespace

LoraConfig LoraConfig::from_yaml(YamlMap& m, const std::string& /*base_dir*/) {
  LoraConfig c;
  m.get("r", c.r);
  m.get("alpha", c.alpha);
  m.get("dropout", c.dropout);
  m.get("targets", c.targets);
  std::vector<std::string> layers;
  m.get("layers", layers);
  m.get("seed", c.seed);
  m.finish();
  std::string where = m.file().empty() ? std::string("lora") : m.file();
  parse_layers(layers, c, where);
  c.validate(where);
  return c;
}

int64_t module_layer(const std::string& module) {
  static const std::string key = "layers.";
  for (size_t at = module.find(key); at != std::string::npos; at = module.find(key, at + 1)) {
    if (at > 0 && module[at - 1] != '.') continue;
    size_t i = at + key.size(), digits = 0;
    int64_t v = 0;
    while (i < module.size() && module[i] >= '0' && module[i] <= '9' && digits < 18) v = v * 10 + (module[i++] - '0'), ++digits;
    if (digits > 0 && i < module.size() && module[i] == '.') return v;
  }
  return -1;
}

nlohmann::json LoraConfig::to_json() const {
  nlohmann::json j = {{"r", r}, {"alpha", alpha}, {"dropout", dropout}, {"targets", targets},
                      {"use_rslora", use_rslora}, {"seed", seed}, {"scaling", scaling()}};
  if (top_layers > 0) j["layers"] = "top " + std::to_string(top_layers);
  else if (!layers.empty()) j["layers"] = layers;
  return j;
}

}  // namespace lorazip
