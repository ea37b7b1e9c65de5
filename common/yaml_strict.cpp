#include "common/yaml_strict.h"

#include <cmath>
#include <stdexcept>

namespace lorazip {

YamlMap::YamlMap(YAML::Node node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {
  if (node_ && !node_.IsNull() && !node_.IsMap())
    throw std::invalid_argument(where(node_) + (path_.empty() ? "" : path_ + ": ") + "expected a mapping of keys");
}

YamlMap YamlMap::load_file(const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    throw std::runtime_error("cannot open config '" + file + "'");
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(file + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  return YamlMap(root, file, "");
}

YamlMap YamlMap::load_string(const std::string& text, const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(name + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  return YamlMap(root, name, "");
}

std::string YamlMap::where(const YAML::Node& n) const {
  std::string s = file_;
  if (n && n.Mark().line >= 0) s += ":" + std::to_string(n.Mark().line + 1);
  return s + ": ";
}

int YamlMap::line() const { return node_ && node_.Mark().line >= 0 ? node_.Mark().line + 1 : 0; }

bool YamlMap::has(const std::string& key) const { return node_ && node_.IsMap() && node_[key]; }

void YamlMap::ignore(const std::string& key) { seen_.insert(key); }

void YamlMap::fail(const std::string& key, const std::string& msg) const {
  YAML::Node n = has(key) ? node_[key] : node_;
  std::string full = path_.empty() ? key : path_ + "." + key;
  throw std::invalid_argument(where(n) + full + ": " + msg);
}

YAML::Node YamlMap::scalar(const std::string& key, const char* what) {
  seen_.insert(key);
  YAML::Node n = node_[key];
  if (!n.IsScalar()) fail(key, std::string("expected ") + what + ", got a " + (n.IsMap() ? "mapping" : n.IsSequence() ? "list" : "null"));
  return n;
}

void YamlMap::get(const std::string& key, bool& out) {
  if (!has(key)) return seen_.insert(key), void();
  YAML::Node n = scalar(key, "true or false");
  const std::string& s = n.Scalar();
  if (s == "true" || s == "True" || s == "yes") out = true;
  else if (s == "false" || s == "False" || s == "no") out = false;
  else fail(key, "expected true or false, got '" + s + "'");
}

void YamlMap::get(const std::string& key, int64_t& out) {
  if (!has(key)) return seen_.insert(key), void();
  YAML::Node n = scalar(key, "an integer");
  const std::string& s = n.Scalar();
  try {
    size_t pos = 0;
    long long v = std::stoll(s, &pos, 10);
    if (pos != s.size()) throw std::invalid_argument(s);
    out = v;
  } catch (const std::exception&) {
    fail(key, "expected an integer, got '" + s + "'");
  }
}

void YamlMap::get(const std::string& key, int& out) {
  int64_t v = out;
  get(key, v);
  if (v < INT32_MIN || v > INT32_MAX) fail(key, "integer out of range");
  out = static_cast<int>(v);
}

void YamlMap::get(const std::string& key, uint64_t& out) {
  if (!has(key)) return seen_.insert(key), void();
  int64_t v = 0;
  get(key, v);
  if (v < 0) fail(key, "must be >= 0");
  out = static_cast<uint64_t>(v);
}

void YamlMap::get(const std::string& key, double& out) {
  if (!has(key)) return seen_.insert(key), void();
  YAML::Node n = scalar(key, "a number");
  const std::string& s = n.Scalar();
  try {
    size_t pos = 0;
    double v = std::stod(s, &pos);
    if (pos != s.size() || !std::isfinite(v)) throw std::invalid_argument(s);
    out = v;
  } catch (const std::exception&) {
    fail(key, "expected a number, got '" + s + "'");
  }
}

void YamlMap::get(const std::string& key, std::string& out) {
  if (!has(key)) return seen_.insert(key), void();
  out = scalar(key, "a string").Scalar();
}

void YamlMap::get(const std::string& key, std::vector<std::string>& out) {
  seen_.insert(key);
  if (!has(key)) return;
  YAML::Node n = node_[key];
  if (n.IsScalar()) {  // "q_proj v_proj" or a single value
    out.clear();
    std::string s = n.Scalar(), cur;
    for (char c : s + " ") {
      if (c == ' ' || c == ',') {
        if (!cur.empty()) out.push_back(cur);
        cur.clear();
      } else cur.push_back(c);
    }
    return;
  }
  if (!n.IsSequence()) fail(key, "expected a list of strings");
  out.clear();
  for (const auto& e : n) {
    if (!e.IsScalar()) fail(key, "expected a list of strings, found a nested value");
    out.push_back(e.Scalar());
  }
}

void YamlMap::get(const std::string& key, std::vector<double>& out) {
  seen_.insert(key);
  if (!has(key)) return;
  YAML::Node n = node_[key];
  if (!n.IsSequence()) fail(key, "expected a list of numbers");
  out.clear();
  for (const auto& e : n) {
    try {
      if (!e.IsScalar()) throw std::invalid_argument("nested");
      size_t pos = 0;
      double v = std::stod(e.Scalar(), &pos);
      if (pos != e.Scalar().size()) throw std::invalid_argument("junk");
      out.push_back(v);
    } catch (const std::exception&) {
      fail(key, "expected a list of numbers, found '" + (e.IsScalar() ? e.Scalar() : std::string("?")) + "'");
    }
  }
}

YamlMap YamlMap::sub(const std::string& key) {
  seen_.insert(key);
  std::string p = path_.empty() ? key : path_ + "." + key;
  if (!has(key)) return YamlMap(YAML::Node(), file_, p);
  YAML::Node n = node_[key];
  if (!n.IsMap() && !n.IsNull()) fail(key, "expected a mapping of keys");
  return YamlMap(n, file_, p);
}

std::vector<YamlMap> YamlMap::list(const std::string& key) {
  seen_.insert(key);
  std::vector<YamlMap> out;
  if (!has(key)) return out;
  YAML::Node n = node_[key];
  if (!n.IsSequence()) fail(key, "expected a list of mappings");
  std::string p = path_.empty() ? key : path_ + "." + key;
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsMap()) fail(key, "item " + std::to_string(i) + " is not a mapping");
    out.emplace_back(n[i], file_, p + "[" + std::to_string(i) + "]");
  }
  return out;
}

void YamlMap::finish() const {
  if (!node_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    std::string k = kv.first.Scalar();
    if (!seen_.count(k)) {
      std::string full = path_.empty() ? k : path_ + "." + k;
      throw std::invalid_argument(where(kv.first) + "unknown key '" + full + "'");
    }
  }
}

}  // namespace lorazip
