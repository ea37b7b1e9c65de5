// Which adapter codes each document, and decoding any lorazip file with the adapter its header
// names. A command builds one AdapterSelector from its -a / -A / --router options and hands it to
// the coder, the archive and eval; none of them chooses adapters or builds codecs themselves.
//
//   fixed        (-a DIR, or nothing: the base alone) every document with that adapter
//   fewest bits  (-A DIR) per document, whichever of the base and the adapters under DIR codes
//                it in the fewest ideal bits (fewest_bits: the base first, ties keep the earlier)
//   by prompt    (--router ROUTER.json -A DIR) the adapter DIR/<cluster> of the cluster the
//                document's prompt routes to (cluster/router.h: the base alone where DIR has no
//                such adapter). The file records the adapter set's identity and flag bit 8
//                (kFlagPromptRouted, docs/container-format.md), never the choice: decoding
//                routes the same prompt again.
#pragma once
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model_setup.h"

namespace lorazip {

class PromptRouter;
class ProgressMeter;

// A command's adapter options, as given.
struct AdapterOptions {
  std::string adapter_dir;   // -a: one adapter for every document
  std::string adapters_dir;  // -A: the candidates (coding), where files' adapters are found (decoding)
  std::string router;        // --router: router.json of `lorazip cluster` (needs adapters_dir)
};

class AdapterSelector {
 public:
  enum class Kind { Fixed, FewestBits, ByPrompt };

  // std::invalid_argument for options that do not combine (-a with -A, -a with --router,
  // --router without -A); std::runtime_error naming the file for a router made with another base
  // or tokenizer, an adapters directory that does not exist, or an -a directory that is not an
  // adapter of this base (fixed: the adapter is read and packed here, once). `codecs` (the one
  // adapter cache) must outlive the selector. By prompt: every adapter under adapters_dir is
  // fingerprinted (the set's identity).
  AdapterSelector(CodecSet& codecs, const AdapterOptions& options);
  ~AdapterSelector();
  AdapterSelector(const AdapterSelector&) = delete;
  AdapterSelector& operator=(const AdapterSelector&) = delete;

  Kind kind() const { return kind_; }
  CodecSet& codecs() const { return codecs_; }
  const AdapterOptions& options() const { return options_; }

  struct Pick {
    LmCodec* codec = nullptr;
    std::string adapter_dir;  // "" = the base alone
    std::string cluster;      // by prompt: the cluster the prompt routes to
    double ideal_bits = -1;   // fewest bits: the text's ideal code length under the pick
  };
  // The adapter for `text`, scored (fewest bits) with the coder's `chunk_tokens` and
  // `context_tokens` (as LmCodecOptions takes them), given `context` when not null. By prompt:
  // std::invalid_argument without `prompt`.
  Pick pick(std::string_view text, int64_t chunk_tokens, int64_t context_tokens, const std::string* prompt = nullptr,
            const std::vector<int32_t>* context = nullptr);
  // Codes `text` with its pick: LmCodec::compress with `opt`, or, by prompt, a full container
  // flagged as prompt-routed (that flag lives only in the full container's header).
  std::string compress(std::string_view text, const LmCodecOptions& opt, const std::string* prompt = nullptr,
                       CodeStats* stats = nullptr, Pick* picked = nullptr);

  // By prompt: the cluster `prompt` routes to (embedded with the base in arithmetic version
  // `arithmetic_version`: a file routes with the version it was coded in) and its adapter
  // directory ("" where adapters_dir has no adapter of that name). std::logic_error for the other kinds.
  Pick route(std::string_view prompt, int arithmetic_version);
  // By prompt: the adapter set's identity the files record.
  const std::string& set_identity() const;

 private:
  struct Routed;
  LmCodec& routed_codec(int64_t cluster);
  CodecSet& codecs_;
  AdapterOptions options_;
  Kind kind_ = Kind::Fixed;
  LmCodec* fixed_ = nullptr;              // fixed: the codec of -a's adapter (or the base's)
  std::vector<AdapterEntry> candidates_;  // fewest bits
  std::unique_ptr<Routed> routed_;        // by prompt
};

// One file to decode: its bytes and name, and what its coding was given: a conversation turn's
// context (LmCodec::decompress) and, for a prompt-routed file, the prompt.
struct FileToDecode {
  std::string_view data;
  std::string name;
  const std::vector<int32_t>* context = nullptr;
  const std::string* prompt = nullptr;
};
struct DecodedFile {
  std::string data;
  CodeStats stats;
  std::exception_ptr error;
};

// Decodes lorazip files of any format (full containers of every version, compact files, stored
// files, archive members expanded to compact files), each dispatched on its header:
//   - coded with the base alone: the base;
//   - coded with an adapter: a fixed selector's adapter when it names one (LmCodec's identity
//     check refuses another), else the adapter under the selector's adapters_dir whose
//     fingerprint (full container) or tag (compact file; adapters sharing the tag are tried in name
//     order, the first whose output passes the file's seal is the one) the header names;
//   - prompt-routed: by the adapter its prompt routes to (a by-prompt selector; any other is
//     refused, naming --router; a missing prompt is refused naming --prompt-file).
// Every file decodes in the same engine calls (LmCodec::decompress_many), whatever adapter it
// needs, except prompt-routed ones (one by one). One result per file, in order: its bytes, or the
// error decoding it alone throws. `progress` counts decoded tokens when given.
std::vector<DecodedFile> decode_any(AdapterSelector& selector, const std::vector<FileToDecode>& files, int threads,
                                    ProgressMeter* progress = nullptr);
// One file (its error thrown).
std::string decode_any(AdapterSelector& selector, const FileToDecode& file, int threads, CodeStats* stats = nullptr,
                       ProgressMeter* progress = nullptr);

// True when `file` is a full container (version 2) whose header carries kFlagPromptRouted (the
// header is checked as parse() checks it); false for compact files.
bool is_prompt_routed(std::string_view file, const std::string& name);

}  // namespace lorazip
