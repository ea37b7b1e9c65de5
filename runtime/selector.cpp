// Adapter choice (fixed, fewest bits, by prompt) and decoding any lorazip file (selector.h).
#include "runtime/selector.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "cluster/router.h"
#include "codec/compact.h"
#include "codec/container.h"
#include "model/tokenizer.h"
#include "runtime/routing.h"

namespace lorazip {

// By prompt: the router, the directory each cluster's adapter is in, and the codecs that record
// the set's identity (built on first use over the CodecSet's adapters).
struct AdapterSelector::Routed {
  PromptRouter router;
  std::string identity;
  std::vector<std::string> adapter_dirs;  // [k] "" = none
  std::vector<std::unique_ptr<LmCodec>> codecs;
  std::shared_ptr<const engine::Model> base_v1;  // built when a version-1 file is decoded
};

AdapterSelector::AdapterSelector(CodecSet& codecs, const AdapterOptions& options) : codecs_(codecs), options_(options) {
  const AdapterOptions& o = options_;
  if (!o.adapter_dir.empty() && !o.adapters_dir.empty()) throw std::invalid_argument("-a and -A cannot be combined");
  if (!o.router.empty() && !o.adapter_dir.empty()) throw std::invalid_argument("--router picks the adapter from the prompt: drop -a");
  if (!o.router.empty() && o.adapters_dir.empty())
    throw std::invalid_argument("--router needs -A ADAPTERS: the directory of the clusters' adapters");
  if (o.router.empty()) {
    kind_ = o.adapters_dir.empty() ? Kind::Fixed : Kind::FewestBits;
    // -a's adapter is read and packed now: a directory that is not an adapter of this base is
    // refused before any input is read.
    if (kind_ == Kind::Fixed) fixed_ = &codecs_.get(o.adapter_dir);
    else candidates_ = list_adapters(o.adapters_dir);
    return;
  }
  kind_ = Kind::ByPrompt;
  routed_ = std::make_unique<Routed>(Routed{PromptRouter::load(o.router), "", {}, {}, nullptr});
  const LoadedModel& base = codecs_.base();
  routed_->router.check_base([&](const std::string& fp) { return base.is_named_by(fp); }, base.fingerprint,
                             base.tokenizer->sha256());
  std::vector<AdapterEntry> entries = list_adapters(o.adapters_dir);
  std::map<std::string, std::string> fingerprints;  // directory name -> fingerprint
  std::map<std::string, std::string> dirs;          // directory name -> directory
  for (AdapterEntry& e : entries) {
    const std::string name = std::filesystem::path(e.dir).filename().string();
    fingerprints[name] = codecs_.fingerprint(e);
    dirs[name] = e.dir;
  }
  routed_->identity = adapter_set_identity(routed_->router, fingerprints);
  for (const std::string& name : routed_->router.names()) routed_->adapter_dirs.push_back(dirs.count(name) ? dirs[name] : "");
  routed_->codecs.resize(static_cast<size_t>(routed_->router.k()));
}

AdapterSelector::~AdapterSelector() = default;

const std::string& AdapterSelector::set_identity() const {
  if (!routed_) throw std::logic_error("set_identity: the selector does not route by prompt");
  return routed_->identity;
}

AdapterSelector::Pick AdapterSelector::route(std::string_view prompt, int arithmetic_version) {
  if (!routed_) throw std::logic_error("route: the selector does not route by prompt");
  const LoadedModel& base = codecs_.base();
  int64_t c = 0;
  if (arithmetic_version == 1) {
    // Version 1's embeddings come from the float32 base.
    if (!routed_->base_v1) routed_->base_v1 = base.version1_model(nullptr);
    c = routed_->router.route(*routed_->base_v1, *base.tokenizer, prompt);
  } else {
    c = routed_->router.route(*base.engine_model(), *base.tokenizer, prompt);
  }
  Pick p;
  p.codec = &routed_codec(c);
  p.adapter_dir = routed_->adapter_dirs[static_cast<size_t>(c)];
  p.cluster = routed_->router.name(c);
  return p;
}

LmCodec& AdapterSelector::routed_codec(int64_t cluster) {
  std::unique_ptr<LmCodec>& c = routed_->codecs[static_cast<size_t>(cluster)];
  if (c) return *c;
  // The identity every prompt-routed file of this set records, whichever adapter codes it.
  LoadedModel* base = &codecs_.base();
  const CodecIdentity id{base->fingerprint, base->tokenizer->sha256(), routed_->identity, ""};
  const std::string& dir = routed_->adapter_dirs[static_cast<size_t>(cluster)];
  if (dir.empty()) {
    c = std::make_unique<LmCodec>(base->engine_model(), *base->tokenizer, id, [base] { return base->version1_model(nullptr); });
  } else {
    std::shared_ptr<const LoadedAdapter> a = codecs_.adapter(dir);
    c = std::make_unique<LmCodec>(std::make_shared<const engine::Model>(base->weights, a->engine), *base->tokenizer, id,
                                  [base, a] { return base->version1_model(a.get()); });
  }
  return *c;
}

AdapterSelector::Pick AdapterSelector::pick(std::string_view text, int64_t chunk_tokens, int64_t context_tokens,
                                            const std::string* prompt, const std::vector<int32_t>* context) {
  switch (kind_) {
    case Kind::Fixed: {
      Pick p;
      p.adapter_dir = options_.adapter_dir;
      p.codec = fixed_;
      return p;
    }
    case Kind::FewestBits: {
      const RouteChoice r = route_by_ideal_bits(codecs_, std::string(text), candidates_, chunk_tokens, context_tokens, context);
      Pick p;
      p.adapter_dir = r.adapter_dir;
      p.codec = &codecs_.get(r.adapter_dir);
      p.ideal_bits = r.ideal_bits;
      return p;
    }
    case Kind::ByPrompt:
      if (!prompt) throw std::invalid_argument("--router needs the prompt: --prompt-file FILE");
      if (context) throw std::invalid_argument("--context-file cannot be combined with --router yet: code given a context with -a or -A");
      return route(*prompt, engine::kArithmeticVersion);
  }
  throw std::logic_error("AdapterSelector: unknown kind");
}

std::string AdapterSelector::compress(std::string_view text, const LmCodecOptions& opt, const std::string* prompt,
                                      CodeStats* stats, Pick* picked) {
  Pick p = pick(text, opt.chunk_tokens, opt.context_tokens, prompt, opt.context);
  std::string out;
  if (kind_ != Kind::ByPrompt) {
    out = p.codec->compress(text, opt, stats);
  } else {
    // The routing flag lives in the full container's header, so such files are never compact.
    LmCodecOptions full = opt;
    full.format = ContainerFormat::Full;
    Container file = Container::parse(p.codec->compress(text, full, stats), "(prompt-routed output)");
    file.flags |= kFlagPromptRouted;
    out = file.serialize();
    if (stats) stats->file_bytes = static_cast<int64_t>(out.size());
  }
  if (picked) *picked = std::move(p);
  return out;
}

bool is_prompt_routed(std::string_view file, const std::string& name) {
  // Only full containers (version 2) carry the flag; compact files cannot be prompt-routed.
  return container_version(file, name) == 2 && (Container::parse_header_only(file, name).flags & kFlagPromptRouted) != 0;
}

namespace {

// The adapter directories a (not prompt-routed) file may need, in the order to try them; "" = the base.
std::vector<std::string> adapters_for(AdapterSelector& sel, std::string_view file, const std::string& name) {
  CodecSet& codecs = sel.codecs();
  const std::string& fixed = sel.options().adapter_dir;
  const std::string& dir = sel.options().adapters_dir;
  if (!is_compact_version(container_version(file, name))) {
    const Container header = Container::parse_header_only(file, name);
    if (header.adapter_fingerprint.empty()) return {""};
    // Without -a or -A the base codec's identity check refuses the file, naming its adapter.
    if (!fixed.empty() || dir.empty()) return {fixed};
    return {find_adapter_dir(codecs, dir, header.adapter_fingerprint, header.adapter_domain, name)};
  }
  const CompactFile f = CompactFile::parse(file, name);
  if (f.stored || !f.has_adapter) return {""};
  if (!fixed.empty() || dir.empty()) return {fixed};
  std::vector<std::string> dirs = find_adapter_dirs_by_tag(codecs, dir, f.adapter_tag, f.adapter_tag_digits());
  if (dirs.empty()) {
    char tag[8];
    std::snprintf(tag, sizeof tag, "%0*x", f.adapter_tag_digits(), f.adapter_tag);
    throw std::runtime_error(name + ": needs an adapter whose fingerprint begins " + std::string(tag) + ", which is not in '" +
                             dir + "'");
  }
  return dirs;
}

// A prompt-routed file, decoded with the adapter its prompt routes to.
std::string decode_routed(AdapterSelector& sel, const FileToDecode& f, int threads, CodeStats* stats) {
  if (sel.kind() != AdapterSelector::Kind::ByPrompt)
    throw std::runtime_error(f.name + ": the adapter was chosen from the document's prompt, which the file does not hold: "
                                      "pass --router (router.json), -A (the adapters) and --prompt-file (the same prompt)");
  const Container header = Container::parse_header_only(f.data, f.name);
  if (!f.prompt)
    throw std::runtime_error(f.name + ": the adapter was chosen from the document's prompt, which the file does not hold: "
                                      "pass the same prompt with --prompt-file (and the same --router and -A)");
  if (header.adapter_fingerprint != sel.set_identity())
    throw std::runtime_error(f.name + ": compressed with adapter set " + short_fp(header.adapter_fingerprint) +
                             ", but this router and adapter directory make set " + short_fp(sel.set_identity()) +
                             " (pass the router.json and adapters that compressed it)");
  const AdapterSelector::Pick p = sel.route(*f.prompt, header.arithmetic_version);
  try {
    return p.codec->decompress(f.data, f.name, threads, stats);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(f.name + ": decoding with adapter '" + p.cluster +
                             "', the one this prompt routes to, failed; the file was most likely compressed with another prompt "
                             "(" + e.what() + ")");
  }
}

}  // namespace

std::vector<DecodedFile> decode_any(AdapterSelector& sel, const std::vector<FileToDecode>& files, int threads,
                                    ProgressMeter* progress) {
  CodecSet& codecs = sel.codecs();
  std::vector<DecodedFile> out(files.size());
  std::vector<std::vector<std::string>> candidates(files.size());
  std::vector<LmCodec::DecodeJob> jobs;
  std::vector<size_t> job_file;
  for (size_t i = 0; i < files.size(); ++i) {
    const FileToDecode& f = files[i];
    try {
      if (is_prompt_routed(f.data, f.name)) {
        out[i].data = decode_routed(sel, f, threads, &out[i].stats);
        continue;
      }
      candidates[i] = adapters_for(sel, f.data, f.name);
      jobs.push_back({&codecs.get(candidates[i][0]), f.data, f.name, f.context});
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

std::string decode_any(AdapterSelector& sel, const FileToDecode& file, int threads, CodeStats* stats, ProgressMeter* progress) {
  std::vector<DecodedFile> r = decode_any(sel, std::vector<FileToDecode>{file}, threads, progress);
  if (r[0].error) std::rethrow_exception(r[0].error);
  if (stats) *stats = r[0].stats;
  return std::move(r[0].data);
}

}  // namespace lorazip
