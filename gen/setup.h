// Loading a chat model for generation: a llama GGUF packed straight into the coding engine
// (runtime/model_setup.h, no libtorch), its tokenizer and its chat template.
#pragma once
#include <string>

#include "codec/lm_codec.h"
#include "gen/qa.h"

namespace lorazip::gen {

// std::runtime_error naming the file when it is not a GGUF with a recognised chat template
// (HF directories carry their template in tokenizer_config.json, which lorazip does not read).
// identity_out (optional): what an LmCodec over this model records.
ChatModel load_chat_model(const std::string& path, CodecIdentity* identity_out = nullptr);

}  // namespace lorazip::gen
