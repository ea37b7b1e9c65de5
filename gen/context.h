// The context of conditioned coding (LmCodecOptions::context): a prompt, rendered as the model was
// tuned to read it, so that the response is coded given it. Both sides render the same prompt the
// same way; the file records only the fingerprint of the rendered tokens (codec/lm_codec.h).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codec/turns.h"
#include "gen/chat.h"
#include "model/tokenizer.h"

namespace lorazip::gen {

// How a prompt becomes the context's tokens:
//   auto:   the base's own chat template (a GGUF's tokenizer.chat_template, recognised as ChatML,
//           with its default system message) when it has one, else plain;
//   chatml: <|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n, no system message (the
//           vocabulary must hold <|im_start|> and <|im_end|>);
//   plain:  the prompt's own tokens, then those of "\n\n" (for bases trained on text alone).
enum class ContextTemplate { Auto, ChatML, Plain };
// "auto", "chatml" or "plain"; std::invalid_argument naming the accepted names otherwise.
ContextTemplate parse_context_template(const std::string& name);

struct RenderedContext {
  std::vector<int32_t> tokens;
  std::string template_name;  // what rendered it: "chatml (the GGUF's template, with its system message)", "chatml", "plain"
};

// Renders prompts for the base at `model_path` (-m: a .gguf file or a Hugging Face directory) with
// tokenizer `tok` (which must outlive it). The template is resolved once, at construction (auto reads
// the GGUF's metadata then), so rendering many prompts opens nothing. std::runtime_error naming the
// base when `t` is chatml and the vocabulary lacks the markers, or under auto the GGUF's template is
// one lorazip does not recognise (the message says --template plain or chatml still work).
class ContextRenderer {
 public:
  ContextRenderer(const std::string& model_path, const Tokenizer& tok, ContextTemplate t);
  // The prompt (any bytes: the markers are emitted as their own ids, the text between them
  // tokenized as plain bytes, so a prompt never smuggles in a control token) as context tokens.
  RenderedContext render(const std::string& prompt) const;
  // A conversation's next turn of `role`, given the turns before it: ChatML's open_turn; plain: each
  // earlier turn's text followed by "\n\n", tokenized turn by turn (roles not rendered).
  std::vector<int32_t> turn_context(const std::vector<ChatMessage>& before, const std::string& role) const;
  const std::string& template_name() const { return name_; }
  // What the template resolved to: Plain, ChatML, or Auto for the base's own chat template.
  ContextTemplate resolved() const { return resolved_; }

 private:
  const Tokenizer& tok_;
  std::optional<ChatTemplate> chat_;  // empty: plain
  std::string name_;
  ContextTemplate resolved_ = ContextTemplate::Plain;
};

// Conversation archives: renderers for each template an archive may name, over the base at
// `model_path` with `tok` (which must outlive them): plain and ChatML as ContextRenderer's
// turn_context, the base's own template refused (std::runtime_error) when the base has none.
TurnRendererFactory archive_turn_renderers(const std::string& model_path, const Tokenizer& tok);
// What `t` resolves to for that base: the byte a new archive's header records.
ArchiveTurnTemplate resolve_turn_template(const std::string& model_path, const Tokenizer& tok, ContextTemplate t);
// "plain", "chatml", "the base's own chat template".
const char* turn_template_name(ArchiveTurnTemplate t);

// One prompt: ContextRenderer(model_path, tok, t).render(prompt).
RenderedContext render_context(const std::string& model_path, const Tokenizer& tok, const std::string& prompt, ContextTemplate t);

}  // namespace lorazip::gen
