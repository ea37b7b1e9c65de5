// The input layout of fuzz_peft, shared with its seed writer: one byte string holds a PEFT adapter
// directory's three files. Bytes 0-1 and 2-3: the lengths (little-endian u16) of
// adapter_config.json and lorazip.json (0xFFFF: the file is absent); then those two files; the rest
// is adapter_model.safetensors. The base the adapter is checked against is kFuzzBase below.
#pragma once
#include <cstdint>
#include <string>

#include "model/config.h"

namespace lorazip::fuzz {

constexpr uint16_t kAbsent = 0xFFFF;

inline LlamaConfig fuzz_base_config() {
  LlamaConfig c;
  c.vocab_size = 32;
  c.hidden_size = 8;
  c.intermediate_size = 12;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  return c;
}

inline std::string pack_peft_input(const std::string* config, const std::string* info, const std::string& safetensors) {
  std::string out;
  for (const std::string* s : {config, info}) {
    const uint16_t n = s ? static_cast<uint16_t>(s->size()) : kAbsent;
    out.push_back(static_cast<char>(n & 0xFF));
    out.push_back(static_cast<char>(n >> 8));
  }
  if (config) out += *config;
  if (info) out += *info;
  return out + safetensors;
}

}  // namespace lorazip::fuzz
