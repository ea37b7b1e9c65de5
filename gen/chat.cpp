// ChatML recognition and prompt building (see chat.h). The template is cut into {% statements %},
// {{ expressions }} and text; statements are compared with whitespace removed and quotes unified;
// an expression must be a '+' chain of string literals and message['role'] / message['content'];
// anything else is refused. Bounds: every index is checked against the source length.
#include "gen/chat.h"

#include <algorithm>
#include <stdexcept>

#include "model/gguf.h"

namespace lorazip::gen {
namespace {

struct Piece {
  enum Kind { Literal, Role, Content } kind;
  std::string text;  // Literal only
};

struct Segment {
  enum Kind { Stmt, Expr } kind;
  std::string body;
};

[[noreturn]] void refuse(const std::string& name, std::string_view src, const std::string& why) {
  std::string head(src.substr(0, 120));
  for (char& c : head)
    if (c == '\n') c = ' ';
  throw std::runtime_error(name + ": chat template not recognised (" + why +
                           "); lorazip supports the ChatML form <|im_start|>role\\ncontent<|im_end|>\\n. Template starts: \"" + head + "\"");
}

std::vector<Segment> cut(std::string_view src, const std::string& name) {
  std::vector<Segment> out;
  size_t i = 0;
  while (i < src.size()) {
    if (src[i] == '{' && i + 1 < src.size() && (src[i + 1] == '%' || src[i + 1] == '{')) {
      const bool stmt = src[i + 1] == '%';
      const std::string_view close = stmt ? "%}" : "}}";
      // Find the closing marker outside string literals.
      size_t j = i + 2;
      char quote = 0;
      for (; j + 1 < src.size(); ++j) {
        const char c = src[j];
        if (quote) {
          if (c == '\\') ++j;
          else if (c == quote) quote = 0;
        } else if (c == '\'' || c == '"') {
          quote = c;
        } else if (src.substr(j, 2) == close) {
          break;
        }
      }
      if (j + 1 >= src.size()) refuse(name, src, std::string("unterminated ") + (stmt ? "{%" : "{{"));
      std::string body(src.substr(i + 2, j - (i + 2)));
      if (!body.empty() && body.front() == '-') body.erase(0, 1);  // whitespace control
      if (!body.empty() && body.back() == '-') body.pop_back();
      out.push_back({stmt ? Segment::Stmt : Segment::Expr, body});
      i = j + 2;
    } else {
      if (src[i] != ' ' && src[i] != '\n' && src[i] != '\t' && src[i] != '\r')
        refuse(name, src, "literal text outside {{ }} at byte " + std::to_string(i));
      ++i;
    }
  }
  return out;
}

// Statement text with whitespace removed and double quotes turned into single ones.
std::string canon(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') out += c == '"' ? '\'' : c;
  return out;
}

std::vector<Piece> parse_expr(const std::string& e, const std::string& name, std::string_view src) {
  std::vector<Piece> out;
  size_t i = 0;
  auto skip = [&] {
    while (i < e.size() && (e[i] == ' ' || e[i] == '\t' || e[i] == '\n' || e[i] == '\r')) ++i;
  };
  for (;;) {
    skip();
    if (i >= e.size()) refuse(name, src, "an expression ends after '+' or is empty");
    if (e[i] == '\'' || e[i] == '"') {
      const char q = e[i++];
      std::string lit;
      for (;;) {
        if (i >= e.size()) refuse(name, src, "unterminated string literal");
        char c = e[i++];
        if (c == q) break;
        if (c == '\\') {
          if (i >= e.size()) refuse(name, src, "unterminated string literal");
          const char x = e[i++];
          if (x == 'n') c = '\n';
          else if (x == 't') c = '\t';
          else if (x == 'r') c = '\r';
          else if (x == '\\' || x == '\'' || x == '"') c = x;
          else refuse(name, src, std::string("unsupported escape \\") + x);
        }
        lit += c;
      }
      if (!out.empty() && out.back().kind == Piece::Literal) out.back().text += lit;
      else out.push_back({Piece::Literal, lit});
    } else {
      size_t j = i;
      while (j < e.size() && e[j] != '+') ++j;
      const std::string term = canon(e.substr(i, j - i));
      if (term == "message['role']" || term == "message.role") out.push_back({Piece::Role, ""});
      else if (term == "message['content']" || term == "message.content") out.push_back({Piece::Content, ""});
      else refuse(name, src, "unsupported expression '" + term + "'");
      i = j;
    }
    skip();
    if (i >= e.size()) return out;
    if (e[i] != '+') refuse(name, src, "unsupported operator in an expression");
    ++i;
  }
}

bool is_literal(const std::vector<Piece>& p, std::string* text) {
  if (p.size() != 1 || p[0].kind != Piece::Literal) return false;
  *text = p[0].text;
  return true;
}

int32_t find_token(const std::vector<std::string>& tokens, const std::string& text, const std::string& name) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] == text) return static_cast<int32_t>(i);
  throw std::runtime_error(name + ": the chat template uses " + text + " but the vocabulary has no such token");
}

}  // namespace

ChatTemplate::ChatTemplate(int32_t im_start, int32_t im_end, std::string default_system)
    : im_start_(im_start), im_end_(im_end), default_system_(std::move(default_system)) {}

ChatTemplate ChatTemplate::parse(std::string_view src, const std::vector<std::string>& tokens, const std::string& name) {
  const std::vector<Segment> seg = cut(src, name);
  size_t k = 0;
  auto stmt = [&](const char* want) {
    if (k >= seg.size() || seg[k].kind != Segment::Stmt || canon(seg[k].body) != want)
      refuse(name, src, std::string("expected {% ") + want + " %} as part " + std::to_string(k + 1));
    ++k;
  };
  auto literal = [&](std::string* text) {
    if (k >= seg.size() || seg[k].kind != Segment::Expr || !is_literal(parse_expr(seg[k].body, name, src), text))
      refuse(name, src, "expected a string literal as part " + std::to_string(k + 1));
    ++k;
  };
  stmt("formessageinmessages");
  std::string system;
  if (k < seg.size() && seg[k].kind == Segment::Stmt && canon(seg[k].body) == "ifloop.firstandmessages[0]['role']!='system'") {
    ++k;
    std::string lit;
    literal(&lit);
    const std::string head = "<|im_start|>system\n", tail = "<|im_end|>\n";
    if (lit.size() < head.size() + tail.size() || lit.compare(0, head.size(), head) != 0 ||
        lit.compare(lit.size() - tail.size(), tail.size(), tail) != 0)
      refuse(name, src, "the default system message is not <|im_start|>system\\n...<|im_end|>\\n");
    system = lit.substr(head.size(), lit.size() - head.size() - tail.size());
    stmt("endif");
  }
  if (k >= seg.size() || seg[k].kind != Segment::Expr) refuse(name, src, "expected the message expression");
  const std::vector<Piece> msg = parse_expr(seg[k++].body, name, src);
  const bool chatml = msg.size() == 5 && msg[0].kind == Piece::Literal && msg[0].text == "<|im_start|>" && msg[1].kind == Piece::Role &&
                      msg[2].kind == Piece::Literal && msg[2].text == "\n" && msg[3].kind == Piece::Content &&
                      msg[4].kind == Piece::Literal && msg[4].text == "<|im_end|>\n";
  if (!chatml) refuse(name, src, "the message expression is not '<|im_start|>' + role + '\\n' + content + '<|im_end|>\\n'");
  stmt("endfor");
  stmt("ifadd_generation_prompt");
  std::string gen;
  literal(&gen);
  if (gen != "<|im_start|>assistant\n") refuse(name, src, "the generation prompt is not <|im_start|>assistant\\n");
  stmt("endif");
  if (k != seg.size()) refuse(name, src, "unexpected part " + std::to_string(k + 1) + " after the generation prompt");
  return ChatTemplate(find_token(tokens, "<|im_start|>", name), find_token(tokens, "<|im_end|>", name), system);
}

ChatTemplate ChatTemplate::from_gguf(const GgufFile& f) {
  if (!f.has("tokenizer.chat_template"))
    throw std::runtime_error(f.name() + ": no tokenizer.chat_template (is this an instruct model?)");
  return parse(f.get_string("tokenizer.chat_template"), f.get_string_array("tokenizer.ggml.tokens"), f.name());
}

std::vector<int32_t> ChatTemplate::apply(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                         bool add_generation_prompt) const {
  std::vector<int32_t> out;
  auto text = [&](const std::string& s) {
    const std::vector<int32_t> ids = tok.encode(s);
    out.insert(out.end(), ids.begin(), ids.end());
  };
  auto turn = [&](const std::string& role, const std::string& content) {
    out.push_back(im_start_);
    text(role + "\n" + content);
    out.push_back(im_end_);
    text("\n");
  };
  if (!default_system_.empty() && !messages.empty() && messages[0].role != "system") turn("system", default_system_);
  for (const ChatMessage& m : messages) turn(m.role, m.content);
  if (add_generation_prompt) {
    out.push_back(im_start_);
    text("assistant\n");
  }
  return out;
}

std::vector<int32_t> ChatTemplate::open_turn(const Tokenizer& tok, const std::vector<ChatMessage>& before, const std::string& role) const {
  std::vector<int32_t> out;
  if (!default_system_.empty() && (before.empty() ? role : before[0].role) != "system") {
    out.push_back(im_start_);
    const std::vector<int32_t> ids = tok.encode("system\n" + default_system_);
    out.insert(out.end(), ids.begin(), ids.end());
    out.push_back(im_end_);
    const std::vector<int32_t> nl = tok.encode("\n");
    out.insert(out.end(), nl.begin(), nl.end());
  }
  if (!before.empty()) {
    // apply() adds the default system message itself only when before[0] is not a system turn,
    // which is the case handled above; render the turns without it.
    const std::vector<int32_t> turns = ChatTemplate(im_start_, im_end_, "").apply(tok, before, false);
    out.insert(out.end(), turns.begin(), turns.end());
  }
  out.push_back(im_start_);
  const std::vector<int32_t> ids = tok.encode(role + "\n");
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

std::vector<int32_t> ChatTemplate::user_prompt(const Tokenizer& tok, const std::string& text) const {
  return apply(tok, {{"user", text}}, true);
}

std::string fill_template(std::string_view t, const std::vector<std::pair<std::string, std::string>>& vars) {
  std::string out;
  size_t pos = 0;
  while (pos < t.size()) {
    const size_t open = t.find('{', pos);
    if (open == std::string_view::npos) break;
    out.append(t, pos, open - pos);
    const std::pair<std::string, std::string>* hit = nullptr;
    for (const auto& kv : vars)
      if (t.compare(open + 1, kv.first.size(), kv.first) == 0 && open + 1 + kv.first.size() < t.size() &&
          t[open + 1 + kv.first.size()] == '}')
        hit = &kv;
    if (hit) {
      out += hit->second;
      pos = open + hit->first.size() + 2;
    } else {
      out += '{';
      pos = open + 1;
    }
  }
  out.append(t.substr(std::min(pos, t.size())));
  return out;
}

}  // namespace lorazip::gen
