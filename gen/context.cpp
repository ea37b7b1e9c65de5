// Rendering a prompt as the context of conditioned coding (context.h).
#include "gen/context.h"

#include <stdexcept>

#include "gen/chat.h"
#include "model/gguf.h"

namespace lorazip::gen {

ContextTemplate parse_context_template(const std::string& name) {
  if (name == "auto") return ContextTemplate::Auto;
  if (name == "chatml") return ContextTemplate::ChatML;
  if (name == "plain") return ContextTemplate::Plain;
  throw std::invalid_argument("--template must be auto, chatml or plain, got '" + name + "'");
}

namespace {

int32_t find_marker(const Tokenizer& tok, const std::string& text, const std::string& model_path) {
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (tok.token_text(id) == text) return id;
  throw std::runtime_error(model_path + ": the vocabulary has no " + text + " token, so it cannot render ChatML (use --template plain)");
}

RenderedContext plain(const Tokenizer& tok, const std::string& prompt) {
  RenderedContext r;
  r.tokens = tok.encode(prompt + "\n\n");
  r.template_name = "plain";
  return r;
}

}  // namespace

RenderedContext render_context(const std::string& model_path, const Tokenizer& tok, const std::string& prompt, ContextTemplate t) {
  if (t == ContextTemplate::Plain) return plain(tok, prompt);
  if (t == ContextTemplate::ChatML) {
    const int32_t start = find_marker(tok, "<|im_start|>", model_path);
    const int32_t end = find_marker(tok, "<|im_end|>", model_path);
    const ChatTemplate chat(start, end, "");
    return {chat.user_prompt(tok, prompt), "chatml"};
  }
  // auto: the base's own template where it has one.
  if (is_gguf_path(model_path)) {
    const GgufFile f = GgufFile::open(model_path);
    if (f.has("tokenizer.chat_template")) {
      const ChatTemplate chat = ChatTemplate::from_gguf(f);  // refuses a template it does not recognise, naming it
      return {chat.user_prompt(tok, prompt),
              chat.default_system().empty() ? "chatml (the GGUF's template)" : "chatml (the GGUF's template, with its system message)"};
    }
  }
  return plain(tok, prompt);
}

}  // namespace lorazip::gen
