// Byte-level BPE: GPT-2's byte-to-unicode symbols, llama.cpp's pre-tokenizers written as
// hand-made matchers over code points, merges by lowest rank (ties leftmost) with a heap, and the
// tokenizer.json reader/writer. What is lossless and why is stated at each step; docs/tokenizer.md
// has the user's version.
#include "model/bpe_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "model/unicode_tables.h"

namespace lorazip {
namespace {

using unicode::kLetter;
using unicode::kNumber;
using unicode::kOther;
using unicode::kWhitespace;
constexpr uint8_t kNone = 0xFF;  // "past the end of the piece": matches no class

// ---- GPT-2's bytes <-> symbols -------------------------------------------------------------
// Bytes 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF stand for themselves; the other 68 bytes map, in
// ascending order, to U+0100, U+0101, ... (space -> U+0120 'Ġ', newline -> U+010A 'Ċ').
struct ByteSymbols {
  std::array<uint32_t, 256> cp{};     // byte -> code point
  std::array<int16_t, 0x144> byte{};  // code point (< U+0144) -> byte, -1 when not a symbol
  ByteSymbols() {
    byte.fill(-1);
    uint32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      cp[static_cast<size_t>(b)] = self ? static_cast<uint32_t>(b) : next++;
      byte[cp[static_cast<size_t>(b)]] = static_cast<int16_t>(b);
    }
  }
  // Code point -> byte, or -1 when the code point is not one of the 256 symbols.
  int byte_of(uint32_t c) const { return c < byte.size() ? byte[c] : -1; }
};
const ByteSymbols& byte_symbols() {
  static const ByteSymbols t;
  return t;
}

void append_utf8(uint32_t c, std::string& out) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// Length (1..4) of the well-formed UTF-8 sequence at p and its code point, or 0 when the byte at
// p does not start one. Strict: no overlong forms, no surrogates, nothing above U+10FFFF.
size_t decode_utf8(const unsigned char* p, size_t n, uint32_t& cp) {
  const unsigned c = p[0];
  auto cont = [&](size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) { return i < n && p[i] >= lo && p[i] <= hi; };
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  size_t len = 0;
  if (c >= 0xC2 && c <= 0xDF) len = cont(1) ? 2 : 0;
  else if (c == 0xE0) len = cont(1, 0xA0) && cont(2) ? 3 : 0;
  else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = cont(1) && cont(2) ? 3 : 0;
  else if (c == 0xED) len = cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  else if (c == 0xF0) len = cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  else if (c >= 0xF1 && c <= 0xF3) len = cont(1) && cont(2) && cont(3) ? 4 : 0;
  else if (c == 0xF4) len = cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  if (len == 2) cp = ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
  if (len == 3) cp = ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
  if (len == 4) cp = ((c & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
  return len;
}

bool is_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t len = decode_utf8(p + i, s.size() - i, cp);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// GPT-2 symbol text -> the bytes it stands for; false when a character is not one of the symbols
// (or the text is not UTF-8).
bool symbols_to_bytes(std::string_view text, std::string& out) {
  out.clear();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t len = decode_utf8(p + i, text.size() - i, cp);
    if (len == 0) return false;
    const int b = byte_symbols().byte_of(cp);
    if (b < 0) return false;
    out += static_cast<char>(b);
    i += len;
  }
  return true;
}

std::string bytes_to_symbols(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) append_utf8(byte_symbols().cp[b], out);
  return out;
}

// ---- Code point classes -------------------------------------------------------------------
uint8_t class_of(uint32_t cp) {
  // First run whose start is above cp, then one back. Entries are (start << 2 | class).
  const uint32_t* begin = unicode::kClassRuns;
  const uint32_t* end = begin + unicode::kClassRunCount;
  const uint32_t* it = std::upper_bound(begin, end, (cp << 2) | 3u);
  return static_cast<uint8_t>(it[-1] & 3u);
}

struct AsciiClasses {
  std::array<uint8_t, 128> cls{};
  AsciiClasses() {
    for (uint32_t c = 0; c < 128; ++c) cls[c] = class_of(c);
  }
};

// One unit of text: a code point (or one invalid byte, classed as U+FFFD, a symbol) and its length.
struct Unit {
  uint32_t cp;
  uint32_t len;
  uint8_t cls;
};

class Text {
 public:
  Text(const unsigned char* p, size_t n) : p_(p), n_(n) {}
  Unit at(size_t i) const {
    static const AsciiClasses ascii;
    const unsigned char c = p_[i];
    if (c < 0x80) return {c, 1, ascii.cls[c]};
    uint32_t cp = 0;
    const size_t len = decode_utf8(p_ + i, n_ - i, cp);
    if (len == 0) return {0xFFFD, 1, kOther};
    return {cp, static_cast<uint32_t>(len), class_of(cp)};
  }
  // Class of the unit at i, or kNone when i is at or past `end`.
  uint8_t cls(size_t i, size_t end) const { return i < end ? at(i).cls : kNone; }
  unsigned char byte(size_t i) const { return p_[i]; }

 private:
  const unsigned char* p_;
  size_t n_;
};

// End of the run of units of class `c` starting at i (i itself when none).
size_t run_end(const Text& t, size_t i, size_t end, uint8_t c) {
  while (i < end) {
    const Unit u = t.at(i);
    if (u.cls != c) break;
    i += u.len;
  }
  return i;
}

// Length of a contraction 's 't 're 've 'm 'll 'd at i (0 when none). The apostrophe and the
// letters are ASCII, so units are bytes here. `fold`: also accept upper case (llama-bpe's (?i:...)).
size_t contraction(const Text& t, size_t i, size_t end, bool fold) {
  if (t.byte(i) != '\'' || i + 1 >= end) return 0;
  auto low = [&](size_t k) {
    const unsigned char c = t.byte(k);
    return fold && c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c + 32) : c;
  };
  const unsigned char a = low(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= end) return 0;
  const unsigned char b = low(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// Whitespace run at i: its end, the start of its last unit, its unit count, and the end of its
// last \r or \n (0 when it has none).
struct SpaceRun {
  size_t end, last_start, count, last_newline_end;
};
SpaceRun space_run(const Text& t, size_t i, size_t end) {
  SpaceRun r{i, i, 0, 0};
  while (r.end < end) {
    const Unit u = t.at(r.end);
    if (u.cls != kWhitespace) break;
    if (u.cp == '\r' || u.cp == '\n') r.last_newline_end = r.end + 1;
    r.last_start = r.end;
    r.end += u.len;
    ++r.count;
  }
  return r;
}

// GPT-2's pattern over [b, e), as llama.cpp's unicode_regex_split_custom_gpt2 applies it:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)  (a lone unmatched
// whitespace unit becomes a piece of its own, like \s+ would make it).
template <typename Emit>
void split_gpt2(const Text& t, size_t b, size_t e, Emit&& emit) {
  size_t pos = b;
  while (pos < e) {
    const Unit u = t.at(pos);
    if (const size_t k = contraction(t, pos, e, false)) {
      emit(pos, pos + k);
      pos += k;
      continue;
    }
    // ' ?' then a run of one class: the space joins a letter/number/other run after it.
    const size_t from = u.cp == ' ' ? pos + 1 : pos;
    const uint8_t c = u.cp == ' ' ? t.cls(pos + 1, e) : u.cls;
    if (c == kLetter || c == kNumber || c == kOther) {
      const size_t r = run_end(t, from, e, c);
      emit(pos, r);
      pos = r;
      continue;
    }
    // \s+(?!\S): a whitespace run followed by a non-space leaves its last unit to the next piece.
    const SpaceRun s = space_run(t, pos, e);
    size_t r = s.count > 1 && s.end < e ? s.last_start : s.end;
    if (r == pos) r = pos + u.len;
    emit(pos, r);
    pos = r;
  }
}

// Llama 3's pattern over [b, e), as llama.cpp's unicode_regex_split_custom_llama3 applies it:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
template <typename Emit>
void split_llama3(const Text& t, size_t b, size_t e, Emit&& emit) {
  size_t pos = b;
  while (pos < e) {
    const Unit u = t.at(pos);
    if (const size_t k = contraction(t, pos, e, true)) {
      emit(pos, pos + k);
      pos += k;
      continue;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(u.cp == '\r' || u.cp == '\n' || u.cls == kNumber) &&
        (u.cls == kLetter || t.cls(pos + u.len, e) == kLetter)) {
      const size_t r = run_end(t, pos + u.len, e, kLetter);
      emit(pos, r);
      pos = r;
      continue;
    }
    // \p{N}{1,3}: a run of numbers in groups of three from its start.
    if (u.cls == kNumber) {
      size_t start = pos, count = 0;
      while (pos < e) {
        const Unit v = t.at(pos);
        if (v.cls != kNumber) break;
        pos += v.len;
        if (++count == 3) {
          emit(start, pos);
          start = pos;
          count = 0;
        }
      }
      if (pos > start) emit(start, pos);
      continue;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    const size_t from = u.cp == ' ' ? pos + 1 : pos;
    const uint8_t c = u.cp == ' ' ? t.cls(pos + 1, e) : u.cls;
    if (c == kOther) {
      size_t r = run_end(t, from, e, kOther);
      while (r < e && (t.byte(r) == '\r' || t.byte(r) == '\n')) ++r;
      emit(pos, r);
      pos = r;
      continue;
    }
    // \s*[\r\n]+ | \s+(?!\S) | \s+
    const SpaceRun s = space_run(t, pos, e);
    size_t r = s.last_newline_end ? s.last_newline_end : (s.count > 1 && s.end < e ? s.last_start : s.end);
    if (r == pos) r = pos + u.len;
    emit(pos, r);
    pos = r;
  }
}

// Calls emit(begin, end) for each pre-token of [0, n), in order, covering every byte.
template <typename Emit>
void pretokenize(BpePre pre, const unsigned char* p, size_t n, Emit&& emit) {
  const Text t(p, n);
  switch (pre) {
    case BpePre::kGpt2:
      split_gpt2(t, 0, n, emit);
      return;
    case BpePre::kLlama3:
      split_llama3(t, 0, n, emit);
      return;
    case BpePre::kSmolLM: {
      // \p{N} first: every number unit is a piece alone; GPT-2's pattern re-splits the rest.
      size_t pos = 0, start = 0;
      while (pos < n) {
        const Unit u = t.at(pos);
        if (u.cls == kNumber) {
          if (pos > start) split_gpt2(t, start, pos, emit);
          emit(pos, pos + u.len);
          start = pos + u.len;
        }
        pos += u.len;
      }
      if (n > start) split_gpt2(t, start, n, emit);
      return;
    }
  }
}

// "left right" -> (left, right): split at the first space at index >= 1 (GGUF's rule; a merge of
// a leading-space symbol keeps its space on the left).
bool split_merge(const std::string& m, std::string& left, std::string& right) {
  const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
  if (sp == std::string::npos || sp + 1 >= m.size()) return false;
  left.assign(m, 0, sp);
  right.assign(m, sp + 1, std::string::npos);
  return true;
}

bool default_ignore_merges(BpePre pre) { return pre == BpePre::kLlama3; }

// Validates and resolves pre / ignore_merges; throws std::runtime_error naming `name`.
BpeDefinition resolved(BpeDefinition def, const std::string& name) {
  const BpePre pre = [&] {
    try {
      return parse_bpe_pre(def.pre);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(name + ": " + e.what());
    }
  }();
  def.pre = bpe_pre_name(pre);
  if (!def.ignore_merges) def.ignore_merges = default_ignore_merges(pre);
  return def;
}

std::string hex_byte(int b) {
  static const char* digits = "0123456789ABCDEF";
  return std::string("0x") + digits[(b >> 4) & 15] + digits[b & 15];
}

}  // namespace

// ---- Pre-tokenizer names ------------------------------------------------------------------
BpePre parse_bpe_pre(const std::string& pre) {
  static const std::vector<std::pair<std::string, BpePre>> names = {
      {"gpt2", BpePre::kGpt2},           {"gpt-2", BpePre::kGpt2},
      {"smollm", BpePre::kSmolLM},       {"starcoder", BpePre::kSmolLM},    {"refact", BpePre::kSmolLM},
      {"command-r", BpePre::kSmolLM},    {"codeshell", BpePre::kSmolLM},    {"exaone", BpePre::kSmolLM},
      {"minerva-7b", BpePre::kSmolLM},   {"llama-bpe", BpePre::kLlama3},    {"llama3", BpePre::kLlama3},
      {"llama-v3", BpePre::kLlama3}};
  for (const auto& [n, p] : names)
    if (n == pre) return p;
  std::string list;
  for (const auto& [n, p] : names) list += (list.empty() ? "" : ", ") + n;
  throw std::runtime_error("pre-tokenizer '" + pre + "' is not supported; lorazip knows " + list);
}

const char* bpe_pre_name(BpePre pre) {
  switch (pre) {
    case BpePre::kGpt2: return "gpt2";
    case BpePre::kSmolLM: return "smollm";
    case BpePre::kLlama3: return "llama-bpe";
  }
  return "gpt2";
}

std::vector<std::string_view> bpe_pretokenize(BpePre pre, std::string_view text) {
  std::vector<std::string_view> out;
  pretokenize(pre, reinterpret_cast<const unsigned char*>(text.data()), text.size(),
              [&](size_t b, size_t e) { out.push_back(text.substr(b, e - b)); });
  return out;
}

// ---- The encoder --------------------------------------------------------------------------
struct BpeEncoder::Scratch {
  struct Sym {
    int32_t id;  // symbol id; -1 once merged into its left neighbour
    int32_t prev, next;
  };
  struct Candidate {
    int32_t rank, left, left_id, right_id;
  };
  std::vector<Sym> syms;
  std::vector<Candidate> heap;
};

int32_t BpeEncoder::intern(const std::string& bytes, std::unordered_map<std::string, int32_t>& index) {
  auto [it, fresh] = index.emplace(bytes, static_cast<int32_t>(symbols_.size()));
  if (fresh) symbols_.push_back(bytes);
  return it->second;
}

BpeEncoder::BpeEncoder(BpeDefinition def, std::string name) : def_(resolved(std::move(def), name)), name_(std::move(name)) {
  pre_ = parse_bpe_pre(def_.pre);
  ignore_merges_ = *def_.ignore_merges;
  const size_t n = def_.tokens.size();
  if (n == 0) throw std::runtime_error(name_ + ": the BPE vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX))
    throw std::runtime_error(name_ + ": the BPE vocabulary has " + std::to_string(n) + " tokens, more than ids can hold");
  if (def_.types.size() != n)
    throw std::runtime_error(name_ + ": " + std::to_string(n) + " tokens but " + std::to_string(def_.types.size()) +
                             " token types (tokenizer.ggml.token_type must have one per token)");
  auto check_special = [&](int32_t id, const char* what) {
    if (id < -1 || id >= static_cast<int64_t>(n))
      throw std::runtime_error(name_ + ": " + what + " " + std::to_string(id) + " is outside the vocabulary (" +
                               std::to_string(n) + " tokens)");
  };
  check_special(def_.bos_id, "bos token id");
  check_special(def_.eos_id, "eos token id");

  // Decode table and the bytes -> token map for tokens merges can produce. Where two normal tokens
  // have the same text the later id wins, as in llama.cpp's token_to_id.
  piece_bytes_.resize(n);
  token_of_bytes_.reserve(n);
  std::string bytes;
  for (size_t id = 0; id < n; ++id) {
    const std::string& text = def_.tokens[id];
    const int32_t type = def_.types[id];
    if (type < kBpeNormal || type > kBpeByte)
      throw std::runtime_error(name_ + ": token " + std::to_string(id) + " has type " + std::to_string(type) +
                               "; expected 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused or 6 byte");
    if (!is_utf8(text))
      throw std::runtime_error(name_ + ": token " + std::to_string(id) + " is not valid UTF-8");
    if (type == kBpeNormal || type == kBpeByte) {
      if (symbols_to_bytes(text, bytes)) {
        piece_bytes_[id] = bytes;
        if (!bytes.empty()) token_of_bytes_[bytes] = static_cast<int32_t>(id);
      } else {
        piece_bytes_[id] = text;  // not GPT-2 symbols: merges can never produce it; decodes as written
      }
    } else if (type == kBpeUserDefined) {
      piece_bytes_[id] = text;
      if (!text.empty()) user_tokens_.push_back({text, static_cast<int32_t>(id)});
    }  // unknown, control, unused: decode to nothing
  }
  std::vector<int> missing, present;
  for (int b = 0; b < 256; ++b) {
    const auto it = token_of_bytes_.find(std::string(1, static_cast<char>(b)));
    byte_token_[static_cast<size_t>(b)] = it == token_of_bytes_.end() ? -1 : it->second;
    (it == token_of_bytes_.end() ? missing : present).push_back(b);
  }
  if (!missing.empty()) {
    for (size_t id = n; id-- > 0 && escape_id_ < 0;) {
      const int32_t ty = def_.types[id];
      if ((ty == kBpeControl || ty == kBpeUnknown || ty == kBpeUnused) && static_cast<int32_t>(id) != def_.bos_id &&
          static_cast<int32_t>(id) != def_.eos_id)
        escape_id_ = static_cast<int32_t>(id);
    }
    if (escape_id_ < 0 || missing.size() > present.size()) {
      const std::string b = std::string(1, static_cast<char>(missing[0]));
      throw std::runtime_error(name_ + ": the vocabulary has no token for byte " + hex_byte(missing[0]) + " (symbol '" +
                               bytes_to_symbols(b) + "') and " + std::to_string(missing.size() - 1) +
                               " more, and no control/unknown/unused token (other than bos/eos) to escape them with, "
                               "so not every byte string can be represented");
    }
    escape_second_.fill(-1);
    for (size_t k = 0; k < missing.size(); ++k) {
      const int32_t second = byte_token_[static_cast<size_t>(present[k])];
      escape_second_[static_cast<size_t>(missing[k])] = second;
      escaped_[second] = static_cast<uint8_t>(missing[k]);
    }
  }
  std::stable_sort(user_tokens_.begin(), user_tokens_.end(),
                   [](const UserToken& a, const UserToken& b) { return a.text.size() > b.text.size(); });

  // Symbols are interned by their raw bytes: ids 0..255 are the single bytes. A merge whose parts
  // are not GPT-2 symbols can never apply and is skipped; rank stays its index. A repeated pair
  // keeps its first (lowest) rank.
  std::unordered_map<std::string, int32_t> index;
  index.reserve(2 * def_.merges.size() + 256);
  symbols_.reserve(2 * def_.merges.size() + 256);
  merges_.reserve(def_.merges.size());
  for (int b = 0; b < 256; ++b) intern(std::string(1, static_cast<char>(b)), index);
  std::string left, right, lb, rb;
  for (size_t rank = 0; rank < def_.merges.size(); ++rank) {
    if (rank > static_cast<size_t>(INT32_MAX)) throw std::runtime_error(name_ + ": too many merges");
    const std::string& m = def_.merges[rank];
    if (!split_merge(m, left, right))
      throw std::runtime_error(name_ + ": merge " + std::to_string(rank) + " ('" + m.substr(0, 64) +
                               "') is not two symbols separated by a space");
    if (!symbols_to_bytes(left, lb) || !symbols_to_bytes(right, rb)) continue;
    const int32_t l = intern(lb, index), r = intern(rb, index);
    const int32_t merged = intern(lb + rb, index);
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
    merges_.emplace(key, MergeRule{static_cast<int32_t>(rank), merged});
  }
  symbol_token_.assign(symbols_.size(), -1);
  for (size_t s = 0; s < symbols_.size(); ++s) {
    const auto it = token_of_bytes_.find(symbols_[s]);
    if (it != token_of_bytes_.end()) symbol_token_[s] = it->second;
  }
}

// BPE on one pre-token: start from its bytes, repeatedly merge the adjacent pair of lowest rank
// (ties: leftmost), then look each symbol up; a symbol that is not a token (a merge whose result
// the vocabulary lacks) is spelled byte by byte, so the output always decodes to the input.
void BpeEncoder::encode_piece(const unsigned char* p, size_t n, Scratch& s, std::vector<int32_t>& out) const {
  if (n == 0) return;
  if (n == 1) {
    emit_byte(p[0], out);
    return;
  }
  if (ignore_merges_) {
    const auto it = token_of_bytes_.find(std::string(reinterpret_cast<const char*>(p), n));
    if (it != token_of_bytes_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  using Cand = Scratch::Candidate;
  auto later = [](const Cand& a, const Cand& b) { return a.rank > b.rank || (a.rank == b.rank && a.left > b.left); };
  auto push = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = s.syms[static_cast<size_t>(left)].next;
    if (right < 0) return;
    const int32_t l = s.syms[static_cast<size_t>(left)].id, r = s.syms[static_cast<size_t>(right)].id;
    const auto it = merges_.find((static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r));
    if (it == merges_.end()) return;
    s.heap.push_back({it->second.rank, left, l, r});
    std::push_heap(s.heap.begin(), s.heap.end(), later);
  };

  s.syms.resize(n);
  for (size_t i = 0; i < n; ++i)
    s.syms[i] = {static_cast<int32_t>(p[i]), static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
  s.heap.clear();
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), later);
    const Cand c = s.heap.back();
    s.heap.pop_back();
    Scratch::Sym& left = s.syms[static_cast<size_t>(c.left)];
    // Stale when either side changed since the push: a symbol's id only ever grows longer, so an
    // unchanged id means an unchanged symbol.
    if (left.id != c.left_id || left.next < 0 || s.syms[static_cast<size_t>(left.next)].id != c.right_id) continue;
    Scratch::Sym& right = s.syms[static_cast<size_t>(left.next)];
    const auto it = merges_.find((static_cast<uint64_t>(static_cast<uint32_t>(c.left_id)) << 32) |
                                 static_cast<uint32_t>(c.right_id));
    left.id = it->second.merged;
    left.next = right.next;
    if (right.next >= 0) s.syms[static_cast<size_t>(right.next)].prev = c.left;
    right.id = -1;
    push(left.prev);
    push(c.left);
  }
  for (int32_t i = 0; i >= 0; i = s.syms[static_cast<size_t>(i)].next) {
    const int32_t sym = s.syms[static_cast<size_t>(i)].id;
    const int32_t tok = symbol_token_[static_cast<size_t>(sym)];
    if (tok >= 0) {
      out.push_back(tok);
    } else {
      for (unsigned char b : symbols_[static_cast<size_t>(sym)]) emit_byte(b, out);
    }
  }
}

void BpeEncoder::emit_byte(unsigned char b, std::vector<int32_t>& out) const {
  const int32_t id = byte_token_[b];
  if (id >= 0) {
    out.push_back(id);
  } else {
    out.push_back(escape_id_);
    out.push_back(escape_second_[b]);
  }
}

int BpeEncoder::escaped_byte(int32_t id) const {
  const auto it = escaped_.find(id);
  return it == escaped_.end() ? -1 : it->second;
}

void BpeEncoder::encode_text(const unsigned char* p, size_t n, Scratch& s, std::vector<int32_t>& out) const {
  pretokenize(pre_, p, n, [&](size_t b, size_t e) { encode_piece(p + b, e - b, s, out); });
}

// User-defined tokens are split out first, longest text first, leftmost occurrences (llama.cpp's
// tokenizer_st_partition); each remaining fragment is pre-tokenized on its own. Control tokens are
// never matched, so text that looks like "<|im_end|>" is ordinary bytes.
void BpeEncoder::encode(std::string_view bytes, std::vector<int32_t>& out) const {
  Scratch s;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (user_tokens_.empty()) {
    encode_text(p, bytes.size(), s, out);
    return;
  }
  struct Fragment {
    size_t begin, end;
    int32_t token;  // -1: text still to tokenize
  };
  std::vector<Fragment> frags{{0, bytes.size(), -1}}, next;
  for (const UserToken& u : user_tokens_) {
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t at = f.begin;
      while (at < f.end) {
        const size_t hit = bytes.substr(0, f.end).find(u.text, at);
        if (hit == std::string_view::npos) break;
        if (hit > at) next.push_back({at, hit, -1});
        next.push_back({hit, hit + u.text.size(), u.id});
        at = hit + u.text.size();
      }
      if (at < f.end) next.push_back({at, f.end, -1});
    }
    frags.swap(next);
  }
  for (const Fragment& f : frags) {
    if (f.token >= 0)
      out.push_back(f.token);
    else
      encode_text(p + f.begin, f.end - f.begin, s, out);
  }
}

// ---- Canonical bytes (the fingerprint's input) ---------------------------------------------
std::string bpe_canonical_bytes(const BpeDefinition& raw) {
  const BpeDefinition def = resolved(raw, "BPE definition");
  auto str = [](std::string& o, const std::string& s) {
    o += std::to_string(s.size());
    o += ':';
    o += s;
  };
  std::string o = "lorazip-bpe 1\n";
  o += "pre " + def.pre + "\n";
  o += std::string("ignore_merges ") + (*def.ignore_merges ? "1" : "0") + "\n";
  o += std::string("add_bos ") + (def.add_bos ? "1" : "0") + "\n";
  o += "bos " + std::to_string(def.bos_id) + "\neos " + std::to_string(def.eos_id) + "\n";
  o += "tokens " + std::to_string(def.tokens.size()) + "\n";
  for (size_t i = 0; i < def.tokens.size(); ++i) {
    o += std::to_string(i < def.types.size() ? def.types[i] : 0) + " ";
    str(o, def.tokens[i]);
    o += '\n';
  }
  o += "merges " + std::to_string(def.merges.size()) + "\n";
  for (const std::string& m : def.merges) {
    str(o, m);
    o += '\n';
  }
  return o;
}

// ---- tokenizer.json -----------------------------------------------------------------------
namespace {

using nlohmann::json;

// The pre_tokenizer configurations lorazip recognises, as Hugging Face writes them.
const char* const kGpt2Regex = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char* const kGpt2RegexShort = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const char* const kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

json pre_tokenizer_json(BpePre pre) {
  switch (pre) {
    case BpePre::kGpt2:
      return byte_level(true);
    case BpePre::kSmolLM:
      return {{"type", "Sequence"},
              {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)})}};
    case BpePre::kLlama3:
      return {{"type", "Sequence"},
              {"pretokenizers",
               json::array({{{"type", "Split"},
                             {"pattern", {{"Regex", kLlama3Regex}}},
                             {"behavior", "Isolated"},
                             {"invert", false}},
                            byte_level(false)})}};
  }
  return nullptr;
}

class JsonReader {
 public:
  explicit JsonReader(const std::string& name) : name_(name) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(name_ + ": " + what + " (lorazip reads byte-level BPE tokenizer.json files)");
  }
  const json& member(const json& obj, const char* key, const std::string& where) const {
    const auto it = obj.find(key);
    if (it == obj.end()) fail(where + " has no \"" + key + "\"");
    return *it;
  }
  bool flag(const json& obj, const char* key, bool fallback, const std::string& where) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(where + "." + key + " is not true/false");
    return it->get<bool>();
  }
  const std::string& text(const json& v, const std::string& where) const {
    if (!v.is_string()) fail(where + " is not a string");
    return v.get_ref<const std::string&>();
  }
  int64_t id(const json& v, const std::string& where, int64_t limit) const {
    if (!v.is_number_integer()) fail(where + " is not an integer id");
    const int64_t x = v.is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX))
                                             : v.get<int64_t>();
    if (x < 0 || x >= limit)
      fail(where + " = " + std::to_string(x) + " is outside 0.." + std::to_string(limit - 1) +
           " (ids must be 0..N-1 without gaps)");
    return x;
  }

  // pre_tokenizer -> BpePre, refusing (and naming) configurations lorazip cannot reproduce.
  BpePre pre(const json& p) const {
    if (p.is_null()) fail("pre_tokenizer is null: a byte-level BPE needs ByteLevel");
    if (!p.is_object()) fail("pre_tokenizer is not an object");
    const std::string type = type_of(p, "pre_tokenizer");
    if (type == "ByteLevel") {
      check_byte_level(p, true, "pre_tokenizer");
      return BpePre::kGpt2;
    }
    if (type != "Sequence") fail("pre_tokenizer of type " + type + " is not supported");
    const json& list = member(p, "pretokenizers", "pre_tokenizer");
    if (!list.is_array()) fail("pre_tokenizer.pretokenizers is not an array");
    std::string types;
    for (const json& e : list) types += (types.empty() ? "" : ", ") + (e.is_object() ? type_of(e, "pre_tokenizer item") : "?");
    const std::string where = "pre_tokenizer Sequence [" + types + "]";
    if (list.size() == 1 && types == "ByteLevel") {
      check_byte_level(list[0], true, where);
      return BpePre::kGpt2;
    }
    if (list.size() == 2 && types == "Digits, ByteLevel") {
      if (!flag(list[0], "individual_digits", false, "Digits")) fail(where + ": Digits without individual_digits");
      check_byte_level(list[1], true, where);
      return BpePre::kSmolLM;
    }
    if (list.size() == 2 && types == "Split, ByteLevel") {
      check_byte_level(list[1], false, where);
      const json& s = list[0];
      const json& pattern = member(s, "pattern", "Split");
      if (!pattern.is_object() || !pattern.contains("Regex")) fail(where + ": Split without a Regex pattern");
      const std::string& re = text(pattern["Regex"], "Split.pattern.Regex");
      if (!s.contains("behavior") || !s["behavior"].is_string() || s["behavior"] != "Isolated" ||
          flag(s, "invert", false, "Split"))
        fail(where + ": Split must be behavior Isolated, invert false");
      if (re == kLlama3Regex) return BpePre::kLlama3;
      if (re == kGpt2Regex || re == kGpt2RegexShort) return BpePre::kGpt2;
      fail(where + ": the Split regex '" + re.substr(0, 120) + "' is not GPT-2's or Llama 3's");
    }
    fail(where + " is not one lorazip knows (ByteLevel; Digits + ByteLevel; Split(GPT-2/Llama 3 regex) + ByteLevel)");
  }

 private:
  std::string type_of(const json& o, const std::string& where) const { return text(member(o, "type", where), where + ".type"); }
  void check_byte_level(const json& b, bool regex, const std::string& where) const {
    if (flag(b, "add_prefix_space", false, "ByteLevel"))
      fail(where + ": ByteLevel add_prefix_space would insert a space the text does not have");
    if (flag(b, "use_regex", true, "ByteLevel") != regex)
      fail(where + std::string(": ByteLevel use_regex must be ") + (regex ? "true" : "false") + " here");
  }
  const std::string& name_;
};

}  // namespace

BpeDefinition parse_tokenizer_json(std::string_view bytes, const std::string& name) {
  JsonReader r(name);
  json j;
  try {
    j = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    r.fail(std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) r.fail("the top level is not an object");
  const json& model = r.member(j, "model", "tokenizer.json");
  if (!model.is_object()) r.fail("\"model\" is not an object");
  const std::string& type = r.text(r.member(model, "type", "model"), "model.type");
  if (type != "BPE") r.fail("model.type is " + type + ", not BPE");
  if (r.flag(model, "byte_fallback", false, "model"))
    r.fail("model.byte_fallback is set: a SentencePiece-style BPE, not byte-level (use its tokenizer.model)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = model.find(key);
    if (it != model.end() && !it->is_null() && !(it->is_string() && it->get_ref<const std::string&>().empty()))
      r.fail(std::string("model.") + key + " is set; byte-level BPE has none");
  }
  if (const auto it = model.find("dropout"); it != model.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() != 0.0) r.fail("model.dropout is set; encoding must be deterministic");
  }
  if (const auto it = j.find("normalizer"); it != j.end() && !it->is_null())
    r.fail("a normalizer is set (" + (it->is_object() && it->contains("type") && (*it)["type"].is_string()
                                          ? (*it)["type"].get<std::string>()
                                          : std::string("?")) +
           "); it would change the bytes");

  BpeDefinition def;
  const BpePre pre = r.pre(r.member(j, "pre_tokenizer", "tokenizer.json"));
  def.pre = bpe_pre_name(pre);
  def.ignore_merges = r.flag(model, "ignore_merges", false, "model");

  const json& vocab = r.member(model, "vocab", "model");
  if (!vocab.is_object()) r.fail("model.vocab is not an object");
  const json empty = json::array();
  const auto added_it = j.find("added_tokens");
  const json& added = added_it == j.end() || added_it->is_null() ? empty : *added_it;
  if (!added.is_array()) r.fail("added_tokens is not an array");
  // lorazip's own extension: inside "model" (where Hugging Face's tokenizers library tolerates an
  // unknown key), or at the top level as lorazip wrote it before (which that library refuses).
  const json* ext = nullptr;
  for (const json* holder : std::initializer_list<const json*>{&model, &j})
    if (const auto it = holder->find("lorazip"); it != holder->end() && !ext) {
      if (!it->is_object()) r.fail("\"lorazip\" is not an object");
      ext = &*it;
    }
  const json* extra = nullptr;
  if (ext && ext->contains("extra_tokens")) {
    extra = &(*ext)["extra_tokens"];
    if (!extra->is_object()) r.fail("lorazip.extra_tokens is not an object");
  }
  // Ids must be dense (0..N-1); the bound keeps memory linear in the file before the gap check
  // below names the first missing id.
  const int64_t limit = 2 * static_cast<int64_t>(vocab.size() + added.size() + (extra ? extra->size() : 0)) + 1024;
  std::vector<std::string> tokens(static_cast<size_t>(limit));
  std::vector<int32_t> types(static_cast<size_t>(limit), 0);
  int64_t count = 0;
  auto set = [&](int64_t id, const std::string& t, int32_t ty) {
    if (types[static_cast<size_t>(id)] == 0) count = std::max(count, id + 1);
    tokens[static_cast<size_t>(id)] = t;
    types[static_cast<size_t>(id)] = ty;
  };
  for (const auto& [t, v] : vocab.items()) set(r.id(v, "model.vocab[\"" + t.substr(0, 40) + "\"]", limit), t, kBpeNormal);
  if (extra)
    for (const auto& [k, v] : extra->items()) {
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(k, &used);
        if (used != k.size()) id = -1;
      } catch (const std::exception&) {
      }
      set(r.id(json(id), "lorazip.extra_tokens key '" + k.substr(0, 20) + "'", limit), r.text(v, "lorazip.extra_tokens value"),
          kBpeNormal);
    }
  for (const json& a : added) {
    if (!a.is_object()) r.fail("an added_tokens entry is not an object");
    const int64_t id = r.id(r.member(a, "id", "added_tokens entry"), "added_tokens[].id", limit);
    const std::string& content = r.text(r.member(a, "content", "added_tokens entry"), "added_tokens[].content");
    const bool special = r.flag(a, "special", false, "added_tokens entry");
    if (!special)
      for (const char* key : {"lstrip", "rstrip", "single_word"})
        if (r.flag(a, key, false, "added_tokens entry"))
          r.fail("added token " + std::to_string(id) + " ('" + content.substr(0, 40) + "') sets " + key +
                 ", which lorazip does not reproduce");
    set(id, content, special ? kBpeControl : kBpeUserDefined);
  }
  for (int64_t id = 0; id < count; ++id)
    if (types[static_cast<size_t>(id)] == 0)
      r.fail("token id " + std::to_string(id) + " is missing (ids must be 0..N-1 without gaps)");
  tokens.resize(static_cast<size_t>(count));
  types.resize(static_cast<size_t>(count));

  const json& merges = r.member(model, "merges", "model");
  if (!merges.is_array()) r.fail("model.merges is not an array");
  def.merges.reserve(merges.size());
  for (const json& m : merges) {
    if (m.is_string()) {
      def.merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      const std::string& a = m[0].get_ref<const std::string&>();
      if (a.empty() || a.find(' ', 1) != std::string::npos)
        r.fail("merge " + std::to_string(def.merges.size()) + " has a left part that is empty or holds a space");
      def.merges.push_back(a + " " + m[1].get<std::string>());
    } else {
      r.fail("merge " + std::to_string(def.merges.size()) + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }

  if (ext) {
    if (ext->contains("pre")) {
      const std::string& p = r.text((*ext)["pre"], "lorazip.pre");
      BpePre e = BpePre::kGpt2;
      try {
        e = parse_bpe_pre(p);
      } catch (const std::runtime_error& err) {
        r.fail(std::string("lorazip.pre: ") + err.what());
      }
      if (e != pre) r.fail("lorazip.pre '" + p + "' disagrees with the pre_tokenizer (" + bpe_pre_name(pre) + ")");
    }
    auto special = [&](const char* key) -> int32_t {
      if (!ext->contains(key) || (*ext)[key].is_null()) return -1;
      const json& v = (*ext)[key];
      if (v.is_number_integer() && v.get<int64_t>() == -1) return -1;
      return static_cast<int32_t>(r.id(v, std::string("lorazip.") + key, count));
    };
    def.bos_id = special("bos_id");
    def.eos_id = special("eos_id");
    def.add_bos = r.flag(*ext, "add_bos", false, "lorazip");
    if (ext->contains("token_types")) {
      const json& tt = (*ext)["token_types"];
      if (!tt.is_object()) r.fail("lorazip.token_types is not an object");
      for (const auto& [k, v] : tt.items()) {
        int64_t id = -1;
        try {
          size_t used = 0;
          id = std::stoll(k, &used);
          if (used != k.size()) id = -1;
        } catch (const std::exception&) {
        }
        id = r.id(json(id), "lorazip.token_types key '" + k.substr(0, 20) + "'", count);
        if (!v.is_number_integer() || v.get<int64_t>() < kBpeNormal || v.get<int64_t>() > kBpeByte)
          r.fail("lorazip.token_types[" + k + "] is not a type 1..6");
        types[static_cast<size_t>(id)] = static_cast<int32_t>(v.get<int64_t>());
      }
    }
  }
  def.tokens = std::move(tokens);
  def.types = std::move(types);
  return def;
}

std::string write_tokenizer_json(const BpeDefinition& raw) {
  const BpeDefinition def = resolved(raw, "BPE definition");
  json vocab = json::object(), extra = json::object(), types = json::object();
  json added = json::array();
  for (size_t id = 0; id < def.tokens.size(); ++id) {
    const std::string& t = def.tokens[id];
    const int32_t ty = id < def.types.size() ? def.types[id] : kBpeNormal;
    if (ty == kBpeNormal || ty == kBpeByte) {
      if (vocab.contains(t))
        extra[std::to_string(id)] = t;  // a second id with the same text: the vocab object holds one
      else
        vocab[t] = id;
      if (ty == kBpeByte) types[std::to_string(id)] = ty;
    } else {
      added.push_back({{"id", id},
                       {"content", t},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", ty != kBpeUserDefined}});
      if (ty != kBpeControl && ty != kBpeUserDefined) types[std::to_string(id)] = ty;
    }
  }
  json merges = json::array();
  std::string left, right;
  for (const std::string& m : def.merges) {
    // "left right" where that splits unambiguously (tokenizers before 0.20 read only this form),
    // else the pair form of later versions.
    if (split_merge(m, left, right) && left.find(' ') == std::string::npos && right.find(' ') == std::string::npos)
      merges.push_back(m);
    else if (split_merge(m, left, right))
      merges.push_back(json::array({left, right}));
    else
      merges.push_back(m);  // kept as written; loading refuses it as it refused the original
  }
  json ext = {{"format", 1},
              {"pre", def.pre},
              {"bos_id", def.bos_id},
              {"eos_id", def.eos_id},
              {"add_bos", def.add_bos}};
  if (!types.empty()) ext["token_types"] = types;
  if (!extra.empty()) ext["extra_tokens"] = extra;
  // BOS before every sequence, as lorazip codes (every stream starts from BOS): transformers'
  // fast tokenizers add it through this post-processor. Parsing ignores it.
  json post = nullptr;
  if (def.bos_id >= 0) {
    const std::string& bos = def.tokens[static_cast<size_t>(def.bos_id)];
    auto special = [&](int type_id) { return json{{"SpecialToken", {{"id", bos}, {"type_id", type_id}}}}; };
    auto sequence = [&](const char* id, int type_id) { return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
    post = {{"type", "TemplateProcessing"},
            {"single", json::array({special(0), sequence("A", 0)})},
            {"pair", json::array({special(0), sequence("A", 0), special(1), sequence("B", 1)})},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", json::array({def.bos_id})}, {"tokens", json::array({bos})}}}}}};
  }
  json j = {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", added},
            {"normalizer", nullptr},
            {"pre_tokenizer", pre_tokenizer_json(parse_bpe_pre(def.pre))},
            {"post_processor", post},
            {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
            {"model",
             {{"type", "BPE"},
              {"dropout", nullptr},
              {"unk_token", nullptr},
              {"continuing_subword_prefix", nullptr},
              {"end_of_word_suffix", nullptr},
              {"fuse_unk", false},
              {"byte_fallback", false},
              {"ignore_merges", *def.ignore_merges},
              {"vocab", vocab},
              {"merges", merges},
              {"lorazip", ext}}}};
  return j.dump();
}

}  // namespace lorazip
