// libFuzzer target for the byte-level BPE tokenizer.json reader: bytes -> parse_tokenizer_json ->
// Tokenizer::from_bpe. Hostile input must end in std::runtime_error, never a crash or another
// exception; a file that loads must round-trip the input itself and a few fixed strings
// (decode(encode(b)) == b), and write_tokenizer_json must load back with the same fingerprint.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "model/bpe_tokenizer.h"
#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  lorazip::BpeDefinition def;
  try {
    def = lorazip::parse_tokenizer_json(input, "fuzz");
  } catch (const std::runtime_error&) {
    return 0;
  }
  try {
    const lorazip::Tokenizer tok = lorazip::Tokenizer::from_bpe(def, "fuzz");
    static const std::string fixed[] = {"", "Hello world! 123\n", std::string("\0\xFF\xC3 \r\n\t  x", 11),
                                        "I'm <|x|> \xF0\x9F\x98\x80 1234567"};
    for (const std::string& s : fixed)
      if (tok.decode(tok.encode(s)) != s) __builtin_trap();
    const std::string whole(input);
    if (tok.decode(tok.encode(whole)) != whole) __builtin_trap();
    const lorazip::Tokenizer again = lorazip::Tokenizer::from_bytes(tok.model_bytes(), "fuzz rewritten");
    if (again.sha256() != tok.sha256()) __builtin_trap();
  } catch (const std::runtime_error&) {
    // a definition the encoder refuses (e.g. a byte without a token and nothing to escape it with)
  }
  return 0;
}
