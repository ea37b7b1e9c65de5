// tokenizer_from_gguf: the hook where a GGUF base's tokenizer is built. Byte-level BPE
// (tokenizer.ggml.model = "gpt2") comes from the byte-level BPE tokenizer; until that is wired
// in, every GGUF vocabulary is refused with a message that says so.
#include "model/gguf_tokenizer.h"

#include <stdexcept>

namespace lorazip {

Tokenizer tokenizer_from_gguf(const GgufFile& f) {
  const std::string where = "GGUF file '" + f.name() + "'";
  if (!f.has("tokenizer.ggml.model"))
    throw std::runtime_error(where + " has no tokenizer (metadata key tokenizer.ggml.model is missing)");
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model == "gpt2")
    throw std::runtime_error(where + ": tokenizer.ggml.model = 'gpt2' (pre '" + f.get_string_or("tokenizer.ggml.pre", "") +
                             "'): byte-level BPE not yet supported");
  throw std::runtime_error(where + ": tokenizer.ggml.model = '" + model +
                           "' is not supported (lorazip reads byte-level BPE vocabularies, model 'gpt2')");
}

Tokenizer load_tokenizer(const std::string& path) {
  if (is_gguf_path(path)) return tokenizer_from_gguf(GgufFile::open(path));
  return Tokenizer::load(path);
}

}  // namespace lorazip
