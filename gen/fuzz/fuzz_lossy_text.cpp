// libFuzzer target for the lossy protocols' text parsers: bytes -> ChatTemplate::parse (a GGUF's
// tokenizer.chat_template), QaCode::parse (a code from the sender), extract_answer /
// answers_match / numbers_in / parse_questions (model output). Hostile input must end in the
// documented exception (runtime_error for templates, invalid_argument for codes), never a crash;
// a code that parses must print back to the same text.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "gen/answer.h"
#include "gen/chat.h"
#include "gen/qa.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  static const std::vector<std::string> vocab = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "a"};
  try {
    const lorazip::gen::ChatTemplate t = lorazip::gen::ChatTemplate::parse(input, vocab, "fuzz");
    if (t.im_start() != 1 || t.im_end() != 2) __builtin_trap();
  } catch (const std::runtime_error&) {
  }
  try {
    const lorazip::gen::QaCode c = lorazip::gen::QaCode::parse(input);
    std::string lower = input;
    for (char& ch : lower)
      if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
    if (c.to_string() != lower) __builtin_trap();
  } catch (const std::invalid_argument&) {
  }
  const std::string a = lorazip::gen::extract_answer(input);
  (void)lorazip::gen::answers_match(a, input);
  (void)lorazip::gen::numbers_in(input);
  (void)lorazip::gen::parse_questions(input, 10);
  (void)lorazip::gen::normalize_answer(input);
  return 0;
}
