// The tokenizer side of a Hugging Face model directory that lorazip writes: tokenizer_config.json
// and special_tokens_map.json, so that transformers' AutoTokenizer (slow or fast class, transformers
// 4.x and 5.x) gives the ids lorazip codes with: BOS, then the text's tokens (docs/formats.md,
// "Tokenizer files"). Torch-free.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "model/tokenizer.h"

namespace lorazip {

// File name -> contents. SentencePiece: LlamaTokenizer with BOS added and EOS not,
// add_prefix_space = the model's own add_dummy_prefix, legacy = true (SentencePiece's own
// encoding, which lorazip's equals on text without runs of whitespace at a line start). BPE:
// PreTrainedTokenizerFast; BOS comes from tokenizer.json's post-processor (write_tokenizer_json).
// `model_max_length` is the model's context (max_position_embeddings).
std::map<std::string, std::string> hf_tokenizer_files(const Tokenizer& tok, int64_t model_max_length);

}  // namespace lorazip
