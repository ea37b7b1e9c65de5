// Chat prompts as a model was tuned to read them. A GGUF carries its chat template as Jinja source
// (tokenizer.chat_template); lorazip does not run Jinja: it recognises the ChatML form
// (<|im_start|>role\ncontent<|im_end|>\n ..., then <|im_start|>assistant\n), with or without a
// default system message added when the conversation has none (SmolLM2's), and refuses any other
// template naming it. The markers are emitted as their own token ids, the text between them is
// tokenized as plain bytes, so a message can never smuggle in a control token.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/tokenizer.h"

namespace lorazip {
class GgufFile;
}

namespace lorazip::gen {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  // ChatML with the given marker ids; default_system (may be empty = none) is prepended as a
  // system message when the first message is not one.
  ChatTemplate(int32_t im_start, int32_t im_end, std::string default_system);

  // Recognises `source` (Jinja text) as ChatML; std::runtime_error naming `name` and quoting the
  // start of the template when it is anything else. `tokens` is the vocabulary (id -> text) in
  // which the <|im_start|> and <|im_end|> markers are looked up.
  static ChatTemplate parse(std::string_view source, const std::vector<std::string>& tokens, const std::string& name);
  // tokenizer.chat_template and tokenizer.ggml.tokens of a GGUF file; std::runtime_error naming the
  // file when it has no template or one lorazip does not recognise.
  static ChatTemplate from_gguf(const GgufFile& f);

  // Prompt tokens for `messages`, ending with "<|im_start|>assistant\n" when add_generation_prompt.
  std::vector<int32_t> apply(const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;
  // The context a conversation's next turn of `role` is read after: the turns `before` (with the
  // default system message first when the conversation's first turn is not a system one), then
  // "<|im_start|>{role}\n". apply(m, true) == open_turn(m, "assistant") for any non-empty m.
  std::vector<int32_t> open_turn(const Tokenizer& tok, const std::vector<ChatMessage>& before, const std::string& role) const;
  // One user message (the common case).
  std::vector<int32_t> user_prompt(const Tokenizer& tok, const std::string& text) const;
  // Where an assistant turn ends.
  std::vector<int32_t> stop_tokens() const { return {im_end_}; }

  int32_t im_start() const { return im_start_; }
  int32_t im_end() const { return im_end_; }
  const std::string& default_system() const { return default_system_; }

 private:
  int32_t im_start_, im_end_;
  std::string default_system_;
};

// A prompt template's {key} placeholders filled in one pass: text put in for one key (a problem
// that happens to contain "{solution}") is never scanned for another; an unknown {word} stays.
std::string fill_template(std::string_view t, const std::vector<std::pair<std::string, std::string>>& vars);

}  // namespace lorazip::gen
