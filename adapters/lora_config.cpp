// LoraConfig: defaults, validation and the strict `lora:` YAML section.
#include "adapters/lora_config.h"

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
}

LoraConfig LoraConfig::from_yaml(YamlMap& m, const std::string& /*base_dir*/) {
  LoraConfig c;
  m.get("r", c.r);
  m.get("alpha", c.alpha);
  m.get("dropout", c.dropout);
  m.get("targets", c.targets);
  m.get("seed", c.seed);
  m.finish();
  std::string where = m.file().empty() ? std::string("lora") : m.file();
  c.validate(where);
  return c;
}

nlohmann::json LoraConfig::to_json() const {
  return {{"r", r}, {"alpha", alpha}, {"dropout", dropout}, {"targets", targets},
          {"use_rslora", use_rslora}, {"seed", seed}, {"scaling", scaling()}};
}

}  // namespace lorazip
