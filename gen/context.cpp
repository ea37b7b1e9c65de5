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

}  // namespace

ContextRenderer::ContextRenderer(const std::string& model_path, const Tokenizer& tok, ContextTemplate t) : tok_(tok), name_("plain") {
  if (t == ContextTemplate::ChatML) {
    const int32_t start = find_marker(tok, "<|im_start|>", model_path);
    const int32_t end = find_marker(tok, "<|im_end|>", model_path);
    chat_.emplace(start, end, "");
    name_ = "chatml";
    resolved_ = ContextTemplate::ChatML;
  } else if (t == ContextTemplate::Auto && is_gguf_path(model_path)) {
    // auto: the base's own template where it has one.
    const GgufFile f = GgufFile::open(model_path);
    if (f.has("tokenizer.chat_template")) {
      try {
        chat_.emplace(ChatTemplate::from_gguf(f));
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(std::string(e.what()) + " (--template plain or --template chatml render the prompt without it)");
      }
      name_ = chat_->default_system().empty() ? "chatml (the GGUF's template)" : "chatml (the GGUF's template, with its system message)";
      resolved_ = ContextTemplate::Auto;
    }
  }
}

RenderedContext ContextRenderer::render(const std::string& prompt) const {
  if (chat_) return {chat_->user_prompt(tok_, prompt), name_};
  return {tok_.encode(prompt + "\n\n"), name_};
}

std::vector<int32_t> ContextRenderer::turn_context(const std::vector<ChatMessage>& before, const std::string& role) const {
  if (chat_) return chat_->open_turn(tok_, before, role);
  std::vector<int32_t> out;
  for (const ChatMessage& m : before) {
    const std::vector<int32_t> ids = tok_.encode(m.content + "\n\n");
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

namespace {

class ArchiveTurns : public TurnRenderer {
 public:
  ArchiveTurns(const std::string& model_path, const Tokenizer& tok, ContextTemplate t) : r_(model_path, tok, t) {}
  const ContextRenderer& renderer() const { return r_; }
  std::vector<int32_t> context(const std::vector<ConversationTurn>& before, const std::string& role) const override {
    std::vector<ChatMessage> msgs;
    msgs.reserve(before.size());
    for (const auto& t : before) msgs.push_back({t.role, t.text});
    return r_.turn_context(msgs, role);
  }

 private:
  ContextRenderer r_;
};

}  // namespace

TurnRendererFactory archive_turn_renderers(const std::string& model_path, const Tokenizer& tok) {
  return [model_path, &tok](ArchiveTurnTemplate t) -> std::unique_ptr<TurnRenderer> {
    const ContextTemplate want = t == ArchiveTurnTemplate::Plain    ? ContextTemplate::Plain
                                 : t == ArchiveTurnTemplate::ChatML ? ContextTemplate::ChatML
                                                                    : ContextTemplate::Auto;
    auto r = std::make_unique<ArchiveTurns>(model_path, tok, want);
    if (r->renderer().resolved() != want)
      throw std::runtime_error(model_path + ": the archive's turns are rendered in the base's own chat template, and this base has none");
    return r;
  };
}

ArchiveTurnTemplate resolve_turn_template(const std::string& model_path, const Tokenizer& tok, ContextTemplate t) {
  if (t == ContextTemplate::Plain) return ArchiveTurnTemplate::Plain;
  const ContextTemplate r = ContextRenderer(model_path, tok, t).resolved();
  return r == ContextTemplate::ChatML ? ArchiveTurnTemplate::ChatML : r == ContextTemplate::Auto ? ArchiveTurnTemplate::BaseTemplate : ArchiveTurnTemplate::Plain;
}

const char* turn_template_name(ArchiveTurnTemplate t) {
  return t == ArchiveTurnTemplate::Plain ? "plain" : t == ArchiveTurnTemplate::ChatML ? "chatml" : "the base's own chat template";
}

RenderedContext render_context(const std::string& model_path, const Tokenizer& tok, const std::string& prompt, ContextTemplate t) {
  return ContextRenderer(model_path, tok, t).render(prompt);
}

}  // namespace lorazip::gen
