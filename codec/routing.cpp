// Adapter routing by ideal code length, and adapter lookup by fingerprint (see routing.h).
#include "codec/routing.h"

#include <cstdio>
#include <stdexcept>

#include "codec/compact.h"
#include "codec/container.h"

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

std::vector<std::string> find_adapter_dirs_by_tag(LoadedBase& base, const std::string& adapters_dir, uint16_t tag, int digits) {
  std::vector<std::string> dirs;
  for (AdapterEntry e : list_adapters(adapters_dir)) {
    if (e.fingerprint.empty()) {
      try {
        e.fingerprint = LoraAdapter::load(e.dir, base.model).fingerprint();
      } catch (const std::exception&) {
        continue;  // made for another base
      }
    }
    if (fingerprint_tag(e.fingerprint, digits) == tag) dirs.push_back(e.dir);
  }
  return dirs;
}

std::string decode_file(CodecSet& codecs, const std::string& adapter_dir, const std::string& adapters_dir,
                        std::string_view file, const std::string& name, int threads, CodeStats* stats) {
  if (!adapter_dir.empty() || adapters_dir.empty()) return codecs.get(adapter_dir).decompress(file, name, threads, stats);
  if (!is_compact_version(container_version(file, name))) {
    const Container header = Container::parse_header_only(file, name);
    const std::string dir = find_adapter_dir(codecs.base(), adapters_dir, header.adapter_fingerprint, header.adapter_domain, name);
    return codecs.get(dir).decompress(file, name, threads, stats);
  }
  const CompactFile f = CompactFile::parse(file, name);
  if (f.stored || !f.has_adapter) return codecs.get("").decompress(file, name, threads, stats);
  const std::vector<std::string> dirs = find_adapter_dirs_by_tag(codecs.base(), adapters_dir, f.adapter_tag, f.adapter_tag_digits());
  char tag[8];
  std::snprintf(tag, sizeof tag, "%0*x", f.adapter_tag_digits(), f.adapter_tag);
  if (dirs.empty())
    throw std::runtime_error(name + ": needs an adapter whose fingerprint begins " + std::string(tag) + ", which is not in '" +
                             adapters_dir + "'");
  for (size_t i = 0; i + 1 < dirs.size(); ++i) {
    try {
      return codecs.get(dirs[i]).decompress(file, name, threads, stats);
    } catch (const std::runtime_error&) {
      // another adapter sharing the tag: its output fails the seal or checksum; try the next
    }
  }
  return codecs.get(dirs.back()).decompress(file, name, threads, stats);
}

}  // namespace lorazip
