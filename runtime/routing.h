// The rules under AdapterSelector (runtime/selector.h): which of the base and a directory's
// adapters codes a text in the fewest ideal bits (`lorazip compress -A`), and which adapter
// directory holds the adapter a compressed file was coded with (`lorazip decompress -A`).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model_setup.h"

namespace lorazip {

struct RouteChoice {
  std::string adapter_dir;  // "" = the base model alone
  double ideal_bits = 0;    // the text's teacher-forced code length under that choice, in bits
};

// lorazip's one "fewest bits" rule: the index of the smallest value in `bits`, the first of equal
// ones (callers list the base first, so a tie keeps the base). Used by -A's choice and by eval's
// routed figure. std::invalid_argument when `bits` is empty.
size_t fewest_bits(const std::vector<double>& bits);

// Scores `text` under the base alone and under each candidate (LmCodec::tokenize, then
// LmCodec::ideal_bits with `chunk_tokens` and `context_tokens`, the coder's own tokens and chunking) and returns the cheapest. Ties keep the earlier
// choice: the base first, then the candidates in the given order.
// With `context`, given it (conditioned coding, LmCodecOptions::context).
RouteChoice route_by_ideal_bits(CodecSet& codecs, const std::string& text, const std::vector<AdapterEntry>& candidates,
                                int64_t chunk_tokens, int64_t context_tokens, const std::vector<int32_t>* context = nullptr);

// The directory under `adapters_dir` whose adapter has `fingerprint`; "" when `fingerprint` is
// empty (the file was coded with the base alone). An adapter without lorazip.json (a PEFT
// adapter made elsewhere) is fingerprinted from its tensors, as compress did, and kept loaded in
// `codecs`; one that does not fit the base cannot be the one and is passed over.
// std::runtime_error naming `file_name`, the fingerprint and `domain` (when known) if no adapter
// matches.
std::string find_adapter_dir(CodecSet& codecs, const std::string& adapters_dir, const std::string& fingerprint,
                             const std::string& domain, const std::string& file_name);

// The adapter directories under `adapters_dir` whose fingerprint begins with the compact file's
// `tag` of `digits` hex digits (4 in version 3, 2 in version 4; codec/compact.h), in name order;
// adapters that do not fit the base of `codecs` are passed over.
std::vector<std::string> find_adapter_dirs_by_tag(CodecSet& codecs, const std::string& adapters_dir, uint16_t tag, int digits);

}  // namespace lorazip
