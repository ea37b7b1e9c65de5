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

std::vector<std::string> candidate_adapter_dirs(CodecSet& codecs, const std::string& adapter_dir, const std::string& adapters_dir,
                                                std::string_view file, const std::string& name) {
  if (!adapter_dir.empty() || adapters_dir.empty()) return {adapter_dir};
  if (!is_compact_version(container_version(file, name))) {
    const Container header = Container::parse_header_only(file, name);
    return {find_adapter_dir(codecs, adapters_dir, header.adapter_fingerprint, header.adapter_domain, name)};
  }
  const CompactFile f = CompactFile::parse(file, name);
  if (f.stored || !f.has_adapter) return {""};
  const std::vector<std::string> dirs = find_adapter_dirs_by_tag(codecs, adapters_dir, f.adapter_tag, f.adapter_tag_digits());
  char tag[8];
  std::snprintf(tag, sizeof tag, "%0*x", f.adapter_tag_digits(), f.adapter_tag);
  if (dirs.empty())
    throw std::runtime_error(name + ": needs an adapter whose fingerprint begins " + std::string(tag) + ", which is not in '" +
                             adapters_dir + "'");
  return dirs;
}

std::vector<DecodedFile> decode_files(CodecSet& codecs, const std::string& adapter_dir, const std::string& adapters_dir,
                                      const std::vector<FileToDecode>& files, int threads, ProgressMeter* progress) {
  std::vector<DecodedFile> out(files.size());
  std::vector<std::vector<std::string>> candidates(files.size());
  std::vector<LmCodec::DecodeJob> jobs;
  std::vector<size_t> job_file;
  for (size_t i = 0; i < files.size(); ++i) {
    try {
      candidates[i] = candidate_adapter_dirs(codecs, adapter_dir, adapters_dir, files[i].data, files[i].name);
      jobs.push_back({&codecs.get(candidates[i][0]), files[i].data, files[i].name, files[i].context});
      job_file.push_back(i);
    } catch (...) {
      out[i].error = std::current_exception();
    }
  }
  std::vector<LmCodec::DecodeResult> r = LmCodec::decompress_many(jobs, threads, 32, progress);
  for (size_t k = 0; k < jobs.size(); ++k) {
    const size_t i = job_file[k];
    out[i].error = r[k].error;
    out[i].data = std::move(r[k].data);
    out[i].stats = r[k].stats;
    // Adapters sharing a compact file's tag: the first whose output passes the seal is the one.
    for (size_t c = 1; out[i].error && c < candidates[i].size(); ++c) {
      try {
        out[i].data = codecs.get(candidates[i][c]).decompress(files[i].data, files[i].name, threads, &out[i].stats, nullptr,
                                                              files[i].context);
        out[i].error = nullptr;
      } catch (const std::runtime_error&) {
        if (c + 1 == candidates[i].size()) out[i].error = std::current_exception();
      }
    }
  }
  return out;
}

std::string decode_file(CodecSet& codecs, const std::string& adapter_dir, const std::string& adapters_dir,
                        std::string_view file, const std::string& name, int threads, CodeStats* stats, ProgressMeter* progress) {
  std::vector<DecodedFile> r = decode_files(codecs, adapter_dir, adapters_dir, {{file, name}}, threads, progress);
  if (r[0].error) std::rethrow_exception(r[0].error);
  if (stats) *stats = r[0].stats;
  return std::move(r[0].data);
}

}  // namespace lorazip
