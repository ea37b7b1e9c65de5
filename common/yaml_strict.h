// Strict reading of lorazip's own YAML configs: an unknown key or a value of the wrong type is a
// std::invalid_argument whose message names the file, the line and the key path
// ("configs/default.yaml:12: train.lr: expected a number, got 'fast'").
//
//   YamlMap m = YamlMap::load_file("configs/default.yaml");
//   YamlMap t = m.sub("train");          // missing section -> empty map, defaults kept
//   t.get("lr", cfg.lr);                 // optional: keeps the default when absent
//   t.require("steps", cfg.steps);       // mandatory
//   t.finish();                          // any key not read is an error
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace lorazip {

class YamlMap {
 public:
  YamlMap() = default;
  YamlMap(YAML::Node node, std::string file, std::string path);
  static YamlMap load_file(const std::string& file);
  static YamlMap load_string(const std::string& text, const std::string& name);

  bool has(const std::string& key) const;
  // Marks the key as known without reading it.
  void ignore(const std::string& key);

  void get(const std::string& key, bool& out);
  void get(const std::string& key, int& out);
  void get(const std::string& key, int64_t& out);
  // A non-negative integer (seeds): a negative value fails with "must be >= 0".
  void get(const std::string& key, uint64_t& out);
  void get(const std::string& key, double& out);
  void get(const std::string& key, std::string& out);
  void get(const std::string& key, std::vector<std::string>& out);
  void get(const std::string& key, std::vector<double>& out);
  template <class T>
  void require(const std::string& key, T& out) {
    if (!has(key)) fail(key, "is required but missing");
    get(key, out);
  }

  // A nested mapping (an empty one when absent). Its keys are checked by its own finish().
  YamlMap sub(const std::string& key);
  // A sequence of mappings (empty when absent).
  std::vector<YamlMap> list(const std::string& key);

  // Throws for any key that no get/sub/list/ignore touched.
  void finish() const;

  // "file:line: path.key: msg" as std::invalid_argument.
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const;
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  int line() const;  // 1-based line of this mapping, 0 when unknown

 private:
  YAML::Node node_;
  std::string file_;
  std::string path_;
  std::set<std::string> seen_;
  YAML::Node scalar(const std::string& key, const char* what);
  std::string where(const YAML::Node& n) const;
};

}  // namespace lorazip
