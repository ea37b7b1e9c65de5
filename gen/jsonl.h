// Reading the JSONL files of the lossy protocols (problem sets, reference answers, the result files
// of `rewrite` / `qa eval`): one loop over a file's objects and typed field readers, each refusal a
// std::runtime_error that starts "NAME:LINE:" and names the field.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace lorazip::gen {

// Calls fn(object, "NAME:LINE") for each non-blank line of `text`; a line that is not a JSON
// object is refused as "NAME:LINE: not a JSON object" followed by ` (HINT)` when `hint` is given.
// Returns the number of objects.
size_t for_each_jsonl_object(const std::string& text, const std::string& name, const std::string& hint,
                             const std::function<void(const nlohmann::json&, const std::string&)>& fn);

// The field `key` of `j`: a string; an integer in [0, 2^62]; a finite number >= 0; true/false.
std::string json_text(const nlohmann::json& j, const char* key, const std::string& where);
int64_t json_count(const nlohmann::json& j, const char* key, const std::string& where);
double json_bits(const nlohmann::json& j, const char* key, const std::string& where);
bool json_flag(const nlohmann::json& j, const char* key, const std::string& where);

}  // namespace lorazip::gen
