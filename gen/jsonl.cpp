// JSONL reading for the lossy protocols; see jsonl.h.
#include "gen/jsonl.h"

#include <cmath>
#include <stdexcept>

namespace lorazip::gen {

size_t for_each_jsonl_object(const std::string& text, const std::string& name, const std::string& hint,
                             const std::function<void(const nlohmann::json&, const std::string&)>& fn) {
  size_t pos = 0, count = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = name + ":" + std::to_string(line_no);
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) throw std::runtime_error(where + ": not a JSON object" + (hint.empty() ? "" : " (" + hint + ")"));
    fn(j, where);
    ++count;
  }
  return count;
}

namespace {
const nlohmann::json& field(const nlohmann::json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) throw std::runtime_error(where + ": field '" + key + "' is missing");
  return *it;
}
}  // namespace

std::string json_text(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto& v = field(j, key, where);
  if (!v.is_string()) throw std::runtime_error(where + ": field '" + key + "' is not a string");
  return v.get<std::string>();
}

int64_t json_count(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto& v = field(j, key, where);
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
    throw std::runtime_error(where + ": field '" + key + "' is not a non-negative integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > (uint64_t{1} << 62)) throw std::runtime_error(where + ": field '" + key + "' is out of range");
  return v.get<int64_t>();
}

double json_bits(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto& v = field(j, key, where);
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
    throw std::runtime_error(where + ": field '" + key + "' is not a non-negative number");
  return v.get<double>();
}

bool json_flag(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto& v = field(j, key, where);
  if (!v.is_boolean()) throw std::runtime_error(where + ": field '" + key + "' is not true/false");
  return v.get<bool>();
}

}  // namespace lorazip::gen
