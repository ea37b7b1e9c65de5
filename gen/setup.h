// Loading a chat model for generation: a llama GGUF (weights dequantized to float32 through the
// libtorch loader, then copied into the coding engine), its tokenizer and its chat template. The
// libtorch copy is dropped once the engine holds the weights.
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
