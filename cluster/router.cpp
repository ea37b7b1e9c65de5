// router.json: parsing with bounds, and the adapter set's identity (torch-free, fuzzed by
// cluster/fuzz/fuzz_router.cpp). Routing a prompt is route.cpp; coding with it, runtime/selector.h.
#include "cluster/router.h"

#include <cctype>
#include <cmath>
#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/hash.h"

namespace lorazip {
namespace {

constexpr int64_t kMaxRouterK = 65536, kMaxRouterDim = 65536, kMaxRouterValues = int64_t{1} << 26;

// A cluster name becomes an adapter directory's name: 1..255 of [A-Za-z0-9_.-], not starting with '.'.
bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 255 || s[0] == '.') return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
  return true;
}

std::string short_hex(const std::string& fp) { return fp.substr(0, 12); }

}  // namespace

PromptRouter PromptRouter::parse(std::string_view bytes, const std::string& path) {
  auto fail = [&](const std::string& what) { throw std::runtime_error(path + ": " + what + " (is this a router.json written by lorazip cluster?)"); };
  nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("not a JSON object");
  auto get_int = [&](const char* key, int64_t lo, int64_t hi) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) fail(std::string("field '") + key + "' is missing or not an integer");
    const int64_t v = it->get<int64_t>();
    if (v < lo || v > hi) fail(std::string("field '") + key + "' = " + std::to_string(v) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
    return v;
  };
  auto get_str = [&](const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) fail(std::string("field '") + key + "' is missing or not a string");
    return it->get<std::string>();
  };
  if (get_str("format") != "lorazip-router") fail("field 'format' is not \"lorazip-router\"");
  if (get_int("version", 0, 1 << 30) != 1) fail("version " + std::to_string(j["version"].get<int64_t>()) + " is not 1, the only one this lorazip reads");
  PromptRouter r;
  r.k_ = get_int("k", 1, kMaxRouterK);
  r.dim_ = get_int("dim", 1, kMaxRouterDim);
  if (r.k_ * r.dim_ > kMaxRouterValues) fail("k x dim = " + std::to_string(r.k_ * r.dim_) + " values is more than a router may hold");
  r.embed_.layer = get_int("layer", 0, 1 << 20);
  r.embed_.max_tokens = get_int("max_tokens", 1, int64_t{1} << 31);
  const std::string embed = get_str("embed");
  if (embed != "prompt" && embed != "response") fail("field 'embed' must be \"prompt\" or \"response\"");
  r.base_fp_ = get_str("base_fingerprint");
  r.tok_fp_ = get_str("tokenizer_fingerprint");
  auto names = j.find("names");
  if (names == j.end() || !names->is_array() || static_cast<int64_t>(names->size()) != r.k_) fail("field 'names' is not a list of k names");
  for (const auto& n : *names) {
    if (!n.is_string()) fail("a cluster name is not a string");
    const std::string s = n.get<std::string>();
    if (!valid_name(s)) fail("cluster name '" + s + "' cannot name an adapter directory (1..255 of A-Z a-z 0-9 _ . -, not starting with '.')");
    r.names_.push_back(s);
  }
  auto cs = j.find("centroids");
  if (cs == j.end() || !cs->is_array() || static_cast<int64_t>(cs->size()) != r.k_) fail("field 'centroids' is not a list of k centroids");
  r.centroids_.reserve(static_cast<size_t>(r.k_ * r.dim_));
  for (const auto& c : *cs) {
    if (!c.is_array() || static_cast<int64_t>(c.size()) != r.dim_) fail("a centroid does not have dim values");
    for (const auto& v : c) {
      if (!v.is_number()) fail("a centroid value is not a number");
      const double d = v.get<double>();
      if (!std::isfinite(d)) fail("a centroid value is not finite");
      r.centroids_.push_back(d);
    }
  }
  r.sha256_ = sha256_hex(bytes);
  return r;
}

PromptRouter PromptRouter::load(const std::string& path) { return parse(read_file(path), path); }

void PromptRouter::check_base(const std::string& base_fingerprint, const std::string& tokenizer_fingerprint) const {
  check_base([&](const std::string& fp) { return fp == base_fingerprint; }, base_fingerprint, tokenizer_fingerprint);
}

void PromptRouter::check_base(const std::function<bool(const std::string&)>& is_base, const std::string& base_fingerprint,
                              const std::string& tokenizer_fingerprint) const {
  if (!is_base(base_fp_) || tokenizer_fingerprint != tok_fp_)
    throw std::runtime_error("the router was made with base " + short_hex(base_fp_) + " and tokenizer " + short_hex(tok_fp_) +
                             ", but the model given is base " + short_hex(base_fingerprint) + " with tokenizer " +
                             short_hex(tokenizer_fingerprint) + " (route with the model the corpus was clustered with)");
}

std::string adapter_set_identity(const PromptRouter& router, const std::map<std::string, std::string>& fingerprints) {
  Sha256 h;
  h.update_field("lorazip prompt-routed adapter set v1");
  h.update_field(router.sha256());
  for (const std::string& name : router.names()) {
    auto it = fingerprints.find(name);
    h.update_field(name);
    h.update_field(it == fingerprints.end() ? "none" : it->second);
  }
  return h.hex();
}

}  // namespace lorazip
