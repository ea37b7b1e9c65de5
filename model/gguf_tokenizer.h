// The tokenizer a GGUF base carries in its tokenizer.ggml.* metadata, and one entry point that
// loads a tokenizer from either kind of file lorazip accepts as a base's tokenizer.
#pragma once
#include <string>

#include "model/gguf.h"
#include "model/tokenizer.h"

namespace lorazip {

// Builds the tokenizer described by tokenizer.ggml.* (model, tokens, token_type, merges, bos/eos
// ids, pre). std::runtime_error naming the file when the file has no tokenizer or one lorazip
// cannot build.
Tokenizer tokenizer_from_gguf(const GgufFile& f);

// A GGUF file (its embedded tokenizer), a SentencePiece tokenizer.model or a tokenizer.json.
Tokenizer load_tokenizer(const std::string& path);

// Where a base's tokenizer lives: the GGUF file itself, else the directory's tokenizer.model
// (SentencePiece first: Llama-2 style directories also ship a tokenizer.json), else its
// tokenizer.json; "" when the directory has neither. One rule for load_model and job configs.
std::string base_tokenizer_path(const std::string& base);

}  // namespace lorazip
