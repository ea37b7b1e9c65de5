// tokenizer_from_gguf: a GGUF base's tokenizer, built from its tokenizer.ggml.* metadata. Byte-level
// BPE (tokenizer.ggml.model = "gpt2") becomes lorazip's BPE backend (model/bpe_tokenizer.h); any
// other vocabulary kind is refused, naming it.
#include "model/gguf_tokenizer.h"

#include <stdexcept>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "model/bpe_tokenizer.h"

namespace lorazip {

Tokenizer tokenizer_from_gguf(const GgufFile& f) {
  const std::string where = "GGUF file '" + f.name() + "'";
  if (!f.has("tokenizer.ggml.model"))
    throw std::runtime_error(where + " has no tokenizer (metadata key tokenizer.ggml.model is missing)");
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "gpt2")
    throw std::runtime_error(where + ": tokenizer.ggml.model = '" + model +
                             "' is not supported (lorazip reads byte-level BPE vocabularies, model 'gpt2')");
  if (!f.has("tokenizer.ggml.tokens") || !f.has("tokenizer.ggml.merges"))
    throw std::runtime_error(where + ": a byte-level BPE vocabulary needs tokenizer.ggml.tokens and tokenizer.ggml.merges");
  BpeDefinition d;
  d.tokens = f.get_string_array("tokenizer.ggml.tokens");
  d.types = f.has("tokenizer.ggml.token_type") ? f.get_i32_array("tokenizer.ggml.token_type")
                                                : std::vector<int32_t>(d.tokens.size(), kBpeNormal);
  d.merges = f.get_string_array("tokenizer.ggml.merges");
  d.bos_id = f.has("tokenizer.ggml.bos_token_id") ? f.get_i32("tokenizer.ggml.bos_token_id") : -1;
  d.eos_id = f.has("tokenizer.ggml.eos_token_id") ? f.get_i32("tokenizer.ggml.eos_token_id") : -1;
  d.add_bos = f.get_bool_or("tokenizer.ggml.add_bos_token", false);
  d.pre = f.get_string_or("tokenizer.ggml.pre", "gpt2");
  return Tokenizer::from_bpe(std::move(d), f.name());
}

Tokenizer load_tokenizer(const std::string& path) {
  if (is_gguf_path(path)) return tokenizer_from_gguf(GgufFile::open(path));
  return Tokenizer::load(path);
}

std::string base_tokenizer_path(const std::string& base) {
  if (is_gguf_path(base)) return base;
  for (const char* name : {"/tokenizer.model", "/tokenizer.json"})
    if (file_exists(base + name)) return base + name;
  return "";
}

}  // namespace lorazip
