// Adapter routing by ideal code length, and adapter lookup by fingerprint (see routing.h).
#include "codec/routing.h"

#include <stdexcept>

#include "adapters/adapter.h"

namespace lorazip {

RouteChoice route_by_ideal_bits(CodecSet& codecs, const std::string& text, const std::vector<AdapterEntry>& candidates,
                                int64_t chunk_tokens, int64_t context_tokens) {
  LmCodec& base = codecs.get("");
  const std::vector<int32_t> ids = base.tokenize(text);  // the tokens compress() codes
  RouteChoice best{"", base.ideal_bits(ids, chunk_tokens, context_tokens)};
  for (const auto& cand : candidates) {
    const double bits = codecs.get(cand.dir).ideal_bits(ids, chunk_tokens, context_tokens);
    if (bits < best.ideal_bits) best = {cand.dir, bits};
  }
  return best;
}

std::string find_adapter_dir(LoadedBase& base, const std::string& adapters_dir, const std::string& fingerprint,
                             const std::string& domain, const std::string& file_name) {
  if (fingerprint.empty()) return "";
  for (AdapterEntry e : list_adapters(adapters_dir)) {
    if (e.fingerprint.empty()) {
      try {
        e.fingerprint = LoraAdapter::load(e.dir, base.model).fingerprint();
      } catch (const std::exception&) {
        continue;  // made for another base: not the adapter this file needs
      }
    }
    if (e.fingerprint == fingerprint) return e.dir;
  }
  throw std::runtime_error(file_name + ": needs adapter " + short_fp(fingerprint) +
                           (domain.empty() ? "" : " (domain '" + domain + "')") + ", which is not in '" + adapters_dir + "'");
}

}  // namespace lorazip
