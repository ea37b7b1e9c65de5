// Adapter routing by ideal code length, and adapter lookup by fingerprint (see routing.h).
#include "runtime/routing.h"

#include <cstdio>
#include <stdexcept>

#include "codec/compact.h"
#include "codec/container.h"


namespace lorazip {

RouteChoice route_by_ideal_bits(CodecSet& codecs, const std::string& text, const std::vector<AdapterEntry>& candidates,
                                int64_t chunk_tokens, int64_t context_tokens, const std::vector<int32_t>* context) {
  LmCodec& base = codecs.get("");
  const std::vector<int32_t> ids = base.tokenize(text);  // the tokens compress() codes
  // The base and every candidate in one pass (the same engine calls, each with its side path).
  std::vector<const LmCodec*> all = {&base};
  for (const auto& cand : candidates) all.push_back(&codecs.get(cand.dir));
  const std::vector<double> bits = LmCodec::ideal_bits_many(all, ids, chunk_tokens, context_tokens, 0, context);
  const size_t k = fewest_bits(bits);
  return {k == 0 ? std::string() : candidates[k - 1].dir, bits[k]};
}

size_t fewest_bits(const std::vector<double>& bits) {
  if (bits.empty()) throw std::invalid_argument("fewest_bits: no figures to choose from");
  size_t k = 0;
  for (size_t i = 1; i < bits.size(); ++i)
    if (bits[i] < bits[k]) k = i;
  return k;
}

std::string find_adapter_dir(CodecSet& codecs, const std::string& adapters_dir, const std::string& fingerprint,
                             const std::string& domain, const std::string& file_name) {
  if (fingerprint.empty()) return "";
  for (const AdapterEntry& e : list_adapters(adapters_dir)) {
    std::string fp;
    try {
      fp = codecs.fingerprint(e);
    } catch (const std::exception&) {
      continue;  // made for another base: not the adapter this file needs
    }
    if (fp == fingerprint) return e.dir;
  }
  throw std::runtime_error(file_name + ": needs adapter " + short_fp(fingerprint) +
                           (domain.empty() ? "" : " (domain '" + domain + "')") + ", which is not in '" + adapters_dir + "'");
}

std::vector<std::string> find_adapter_dirs_by_tag(CodecSet& codecs, const std::string& adapters_dir, uint16_t tag, int digits) {
  std::vector<std::string> dirs;
  for (const AdapterEntry& e : list_adapters(adapters_dir)) {
    std::string fp;
    try {
      fp = codecs.fingerprint(e);
    } catch (const std::exception&) {
      continue;  // made for another base
    }
    if (fingerprint_tag(fp, digits) == tag) dirs.push_back(e.dir);
  }
  return dirs;
}

}  // namespace lorazip
