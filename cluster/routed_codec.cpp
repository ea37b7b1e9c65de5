// Routing a prompt to its cluster, and coding with the adapter it picks (see router.h).
#include <filesystem>
#include <map>
#include <stdexcept>

#include "cluster/kmeans.h"
#include "cluster/router.h"
#include "codec/container.h"
#include "codec/lm_codec.h"
#include "runtime/model_setup.h"
#include "model/tokenizer.h"

namespace lorazip {

int64_t PromptRouter::route(const engine::Model& model, const Tokenizer& tok, std::string_view prompt) const {
  if (model.config().hidden_size != dim_)
    throw std::runtime_error("the router's centroids have " + std::to_string(dim_) + " dimensions, the model " +
                             std::to_string(model.config().hidden_size) + " (another base model?)");
  if (embed_.layer > model.config().num_hidden_layers)
    throw std::runtime_error("the router embeds after " + std::to_string(embed_.layer) + " blocks; the model has " +
                             std::to_string(model.config().num_hidden_layers));
  std::vector<double> e = embed_tokens(model, tok.encode(prompt), tok.bos_id(), embed_);
  return nearest_centroid(e.data(), centroids_, k_, dim_);
}


RoutedCodec::RoutedCodec(CodecSet& codecs, PromptRouter router, std::string adapters_dir)
    : set_(codecs), router_(std::move(router)), adapters_dir_(std::move(adapters_dir)) {
  const LoadedModel& base = set_.base();
  router_.check_base([&](const std::string& fp) { return base.is_named_by(fp); }, base.fingerprint, base.tokenizer->sha256());
  std::vector<AdapterEntry> entries;
  if (!adapters_dir_.empty()) entries = list_adapters(adapters_dir_);
  for (AdapterEntry& e : entries) e.fingerprint = set_.fingerprint(e);
  std::map<std::string, std::string> fingerprints;
  for (const AdapterEntry& e : entries) fingerprints[std::filesystem::path(e.dir).filename().string()] = e.fingerprint;
  identity_ = adapter_set_identity(router_, fingerprints);
  for (const std::string& name : router_.names()) {
    std::string dir;
    for (const auto& e : entries)
      if (std::filesystem::path(e.dir).filename().string() == name) dir = e.dir;
    adapter_dirs_.push_back(dir);
  }
  codecs_.resize(static_cast<size_t>(router_.k()));
}

RoutedCodec::~RoutedCodec() = default;

int64_t RoutedCodec::route(std::string_view prompt, int arithmetic_version) {
  // A file routes with the arithmetic it was coded in: version 1's embeddings come from the float32 base.
  if (arithmetic_version == 1) {
    if (!base_v1_) base_v1_ = set_.base().version1_model(nullptr);
    return router_.route(*base_v1_, *set_.base().tokenizer, prompt);
  }
  return router_.route(*set_.base().engine_model(), *set_.base().tokenizer, prompt);
}

LmCodec& RoutedCodec::codec_for(int64_t cluster) {
  std::unique_ptr<LmCodec>& c = codecs_[static_cast<size_t>(cluster)];
  if (c) return *c;
  // The identity every prompt-routed file of this set records, whichever adapter codes it.
  CodecIdentity id{set_.base().fingerprint, set_.base().tokenizer->sha256(), identity_, ""};
  const std::string& dir = adapter_dirs_[static_cast<size_t>(cluster)];
  LoadedModel* base = &set_.base();
  if (dir.empty()) {
    c = std::make_unique<LmCodec>(set_.base().engine_model(), *set_.base().tokenizer, id, [base] { return base->version1_model(nullptr); });
  } else {
    std::shared_ptr<const LoadedAdapter> a = set_.adapter(dir);
    c = std::make_unique<LmCodec>(std::make_shared<const engine::Model>(set_.base().weights, a->engine), *set_.base().tokenizer, id,
                                  [base, a] { return base->version1_model(&a->files); });
  }
  return *c;
}

std::string RoutedCodec::compress(std::string_view prompt, std::string_view text, const LmCodecOptions& opt, CodeStats* stats,
                                  std::string* chosen) {
  const int64_t c = route(prompt);
  if (chosen) *chosen = router_.name(c);
  // The routing flag lives in the full container's header (version 2), so such files are never compact.
  LmCodecOptions full = opt;
  full.format = ContainerFormat::Full;
  Container file = Container::parse(codec_for(c).compress(text, full, stats), "(prompt-routed output)");
  file.flags |= kFlagPromptRouted;
  const std::string out = file.serialize();
  if (stats) stats->file_bytes = static_cast<int64_t>(out.size());
  return out;
}

std::string RoutedCodec::decompress(const std::string* prompt, std::string_view file, const std::string& name, int threads,
                                    CodeStats* stats) {
  const Container header = Container::parse_header_only(file, name);
  if (!(header.flags & kFlagPromptRouted))
    throw std::runtime_error(name + ": was not compressed with routing by prompt (decompress it with -a or -A, without --router)");
  if (!prompt)
    throw std::runtime_error(name + ": the adapter was chosen from the document's prompt, which the file does not hold: "
                                    "pass the same prompt with --prompt-file (and the same --router and -A)");
  if (header.adapter_fingerprint != identity_)
    throw std::runtime_error(name + ": compressed with adapter set " + short_fp(header.adapter_fingerprint) +
                             ", but this router and adapter directory make set " + short_fp(identity_) +
                             " (pass the router.json and adapters that compressed it)");
  const int64_t c = route(*prompt, header.arithmetic_version);
  try {
    return codec_for(c).decompress(file, name, threads, stats);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(name + ": decoding with adapter '" + router_.name(c) +
                             "', the one this prompt routes to, failed; the file was most likely compressed with another prompt "
                             "(" + e.what() + ")");
  }
}

bool is_prompt_routed(std::string_view file, const std::string& name) {
  // Only full containers (version 2) carry the flag; compact files cannot be prompt-routed.
  return container_version(file, name) == 2 && (Container::parse_header_only(file, name).flags & kFlagPromptRouted) != 0;
}

}  // namespace lorazip
