// The archive format (codec/archive.h): header, zstd-compressed index, footer, reads by byte
// range, and the JSONL record splitter. Every length read from the file is checked against the
// bytes present before anything is allocated or read.
#include "codec/archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <new>
#include <stdexcept>

#include "codec/byte_io.h"
#include "codec/classical.h"
#include "codec/compact.h"
#include "codec/container.h"

namespace lorazip {
namespace {

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool kVerifyChecksums = false;
#else
constexpr bool kVerifyChecksums = true;
#endif

// Member flag bits.
constexpr uint8_t kMemberCoded = 1u << 0;
constexpr uint8_t kMemberDummyPrefix = 1u << 1;
constexpr uint8_t kMemberAsciiEscapes = 1u << 2;
constexpr uint8_t kMemberRawLine = 1u << 3;
constexpr uint8_t kMemberNoNewline = 1u << 4;
constexpr uint8_t kMemberKnown = kMemberCoded | kMemberDummyPrefix | kMemberAsciiEscapes | kMemberRawLine | kMemberNoNewline;
constexpr uint8_t kMemberNameNext = 1u << 5;  // version 2: the name is next_member_name(the previous member's); not written
constexpr uint8_t kMemberKnown2 = kMemberKnown | kMemberNameNext;
// Version 2, conversations: the member is the next turn of the record of the member before it;
// its name is that member's (not written).
constexpr uint8_t kMemberSameRecord = 1u << 6;
// Version 2: each member takes at least its data length (a byte) and its check (4 bytes); the
// flags and gaps are runs and may take no byte of their own.
constexpr uint64_t kMinMemberBytes2 = 5;
constexpr size_t kMaxIndexBytes = size_t{1} << 32;  // decompressed index limit (4 GiB)

class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
    const off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) {
      ::close(fd_);
      throw std::runtime_error(path + ": cannot seek: " + std::strerror(errno));
    }
    size_ = static_cast<uint64_t>(end);
  }
  ~FileSource() override { ::close(fd_); }
  uint64_t size() const override { return size_; }
  std::string read(uint64_t offset, size_t n) const override {
    if (offset > size_ || n > size_ - offset)
      throw std::runtime_error(path_ + ": read of " + std::to_string(n) + " bytes at " + std::to_string(offset) + " runs past the end (" +
                               std::to_string(size_) + " bytes)");
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd_, &out[got], n - got, static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) throw std::runtime_error(path_ + ": read error at byte " + std::to_string(offset + got));
      got += static_cast<size_t>(r);
    }
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string b) : b_(std::move(b)) {}
  uint64_t size() const override { return b_.size(); }
  std::string read(uint64_t offset, size_t n) const override {
    if (offset > b_.size() || n > b_.size() - offset) throw std::runtime_error("read past the end of an in-memory archive");
    return b_.substr(static_cast<size_t>(offset), n);
  }

 private:
  std::string b_;
};

void put_tag16(std::string& out, uint16_t tag) {
  put_u8(out, static_cast<uint8_t>(tag >> 8));
  put_u8(out, static_cast<uint8_t>(tag & 0xFF));
}
uint16_t read_tag16(ByteReader& r, const char* field) {
  const uint8_t hi = r.u8(field);
  return static_cast<uint16_t>(hi << 8 | r.u8(field));
}

// ---- JSON strings ----

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Position after the JSON string starting at s[i] == '"', or npos when it is not one.
size_t skip_string(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') ++i;
    else if (s[i] == '"') return i + 1;
  }
  return std::string_view::npos;
}

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
  return i;
}

// Position after the JSON value at s[i] (strings, nesting; scalars up to a delimiter); npos if malformed.
size_t skip_value(std::string_view s, size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      if (s[i] == '"') {
        i = skip_string(s, i);
        if (i == std::string_view::npos) return i;
        --i;
      } else if (s[i] == '{' || s[i] == '[') {
        ++depth;
      } else if (s[i] == '}' || s[i] == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return std::string_view::npos;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t') ++i;
  return i;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The bytes a JSON string literal (quotes included) stands for; false for a malformed one or a
// lone surrogate (which no UTF-8 text can rebuild).
bool decode_json_string(std::string_view lit, std::string* out) {
  out->clear();
  for (size_t i = 1; i + 1 < lit.size(); ++i) {
    const char c = lit[i];
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (++i >= lit.size() - 1) return false;  // a backslash right before the closing quote
    switch (lit[i]) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '/': out->push_back('/'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'u': {
        auto read4 = [&](size_t at, uint32_t* v) {
          if (at + 4 > lit.size() - 1) return false;
          *v = 0;
          for (size_t k = 0; k < 4; ++k) {
            const int d = hex_digit(lit[at + k]);
            if (d < 0) return false;
            *v = *v * 16 + static_cast<uint32_t>(d);
          }
          return true;
        };
        uint32_t cp = 0;
        if (!read4(i + 1, &cp)) return false;
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00) {
          uint32_t lo = 0;
          if (i + 2 >= lit.size() || lit[i + 1] != '\\' || lit[i + 2] != 'u' || !read4(i + 3, &lo) || lo < 0xDC00 || lo >= 0xE000) return false;
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          return false;
        }
        append_utf8(*out, cp);
        break;
      }
      default: return false;
    }
  }
  return true;
}

// Next UTF-8 code point of s at i (advancing i); false for invalid UTF-8.
bool next_code_point(std::string_view s, size_t& i, uint32_t* cp) {
  const auto b = static_cast<uint8_t>(s[i]);
  int n = b < 0x80 ? 0 : (b & 0xE0) == 0xC0 ? 1 : (b & 0xF0) == 0xE0 ? 2 : (b & 0xF8) == 0xF0 ? 3 : -1;
  if (n < 0 || i + static_cast<size_t>(n) >= s.size()) return false;
  uint32_t v = n == 0 ? b : b & (0x3F >> n);
  for (int k = 1; k <= n; ++k) {
    const auto c = static_cast<uint8_t>(s[i + static_cast<size_t>(k)]);
    if ((c & 0xC0) != 0x80) return false;
    v = v << 6 | (c & 0x3F);
  }
  static const uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
  if (v < kMin[n] || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) return false;
  i += static_cast<size_t>(n) + 1;
  *cp = v;
  return true;
}

}  // namespace

// The JSON string literal for `text` as Python's json.dumps writes it: ensure_ascii=False
// (`ascii_escapes` false: only quotes, backslashes and control characters escaped) or the default
// ensure_ascii=True (every character outside space..'~' as \uXXXX, surrogate pairs above U+FFFF).
// Throws std::invalid_argument for ascii escapes of bytes that are not UTF-8.
std::string json_string_literal(std::string_view text, bool ascii_escapes) {
  std::string out = "\"";
  char buf[8];
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<uint8_t>(text[i]);
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      default: break;
    }
    if (c < 0x20) {
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      ++i;
    } else if (!ascii_escapes || (c >= 0x20 && c < 0x7F)) {
      out.push_back(static_cast<char>(c));
      ++i;
    } else {
      uint32_t cp = 0;
      if (!next_code_point(text, i, &cp)) throw std::invalid_argument("text is not UTF-8");
      if (cp >= 0x10000) {
        cp -= 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x", 0xD800 + (cp >> 10));
        out += buf;
        std::snprintf(buf, sizeof buf, "\\u%04x", 0xDC00 + (cp & 0x3FF));
        out += buf;
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
        out += buf;
      }
    }
  }
  return out + "\"";
}

namespace {

// The text a JSON string literal stands for and the style that writes it back exactly; false when
// neither style rebuilds `lit` byte for byte.
bool rebuildable_literal(std::string_view lit, std::string* text, bool* ascii_escapes) {
  if (!decode_json_string(lit, text)) return false;
  for (bool ascii : {false, true}) {
    try {
      if (json_string_literal(*text, ascii) == lit) {
        *ascii_escapes = ascii;
        return true;
      }
    } catch (const std::invalid_argument&) {
    }
  }
  return false;
}

}  // namespace

bool split_jsonl_record(std::string_view line, std::string* text, std::string* prefix, std::string* suffix, bool* ascii_escapes) {
  size_t i = skip_ws(line, 0);
  if (i >= line.size() || line[i] != '{') return false;
  i = skip_ws(line, i + 1);
  while (i < line.size() && line[i] == '"') {
    const size_t key_end = skip_string(line, i);
    if (key_end == std::string_view::npos) return false;
    const std::string_view key = line.substr(i, key_end - i);
    i = skip_ws(line, key_end);
    if (i >= line.size() || line[i] != ':') return false;
    i = skip_ws(line, i + 1);
    const size_t value_end = skip_value(line, i);
    if (value_end == std::string_view::npos) return false;
    if (key == "\"text\"" && line[i] == '"') {
      if (!rebuildable_literal(line.substr(i, value_end - i), text, ascii_escapes)) return false;
      *prefix = std::string(line.substr(0, i));
      *suffix = std::string(line.substr(value_end));
      return true;
    }
    i = skip_ws(line, value_end);
    if (i < line.size() && line[i] == ',') i = skip_ws(line, i + 1);
    else break;
  }
  return false;
}

std::string join_jsonl_record(std::string_view text, const std::string& prefix, const std::string& suffix, bool ascii_escapes) {
  return prefix + json_string_literal(text, ascii_escapes) + suffix;
}

namespace {

// Calls visit(key literal, value start, value end) for each member of the JSON object whose '{'
// is at s[i], in order; false for a malformed object (or when visit returns false).
template <class Visit>
bool scan_object(std::string_view s, size_t i, Visit visit) {
  if (i >= s.size() || s[i] != '{') return false;
  i = skip_ws(s, i + 1);
  if (i < s.size() && s[i] == '}') return true;
  while (i < s.size() && s[i] == '"') {
    const size_t key_end = skip_string(s, i);
    if (key_end == std::string_view::npos) return false;
    const std::string_view key = s.substr(i, key_end - i);
    i = skip_ws(s, key_end);
    if (i >= s.size() || s[i] != ':') return false;
    i = skip_ws(s, i + 1);
    const size_t value_end = skip_value(s, i);
    if (value_end == std::string_view::npos) return false;
    if (!visit(key, i, value_end)) return false;
    i = skip_ws(s, value_end);
    if (i < s.size() && s[i] == ',') i = skip_ws(s, i + 1);
    else return i < s.size() && s[i] == '}';
  }
  return false;
}

struct TurnSpan {
  size_t start = 0, end = 0;  // the content's string literal
  std::string role;
};

// The turns of a "messages" array at s[i] (objects with "role" and "content" strings; other
// elements are no turns); false when it is malformed.
bool scan_messages(std::string_view s, size_t i, std::vector<TurnSpan>* out) {
  if (i >= s.size() || s[i] != '[') return false;
  i = skip_ws(s, i + 1);
  if (i < s.size() && s[i] == ']') return true;
  while (i < s.size()) {
    const size_t end = skip_value(s, i);
    if (end == std::string_view::npos) return false;
    if (s[i] == '{') {
      TurnSpan t;
      bool has_role = false, has_content = false;
      const bool ok = scan_object(s, i, [&](std::string_view key, size_t vs, size_t ve) {
        if (key == "\"role\"" && !has_role && s[vs] == '"') {
          bool ascii = false;
          if (!rebuildable_literal(s.substr(vs, ve - vs), &t.role, &ascii) || t.role.size() > kMaxTurnRole) return false;
          has_role = true;
        } else if (key == "\"content\"" && !has_content && s[vs] == '"') {
          t.start = vs;
          t.end = ve;
          has_content = true;
        }
        return true;
      });
      if (!ok) return false;
      if (has_role && has_content) out->push_back(std::move(t));
    }
    i = skip_ws(s, end);
    if (i < s.size() && s[i] == ',') i = skip_ws(s, i + 1);
    else return i < s.size() && s[i] == ']';
  }
  return false;
}

}  // namespace

bool split_conversation_record(std::string_view line, std::vector<JsonlTurn>* turns, std::string* suffix) {
  turns->clear();
  suffix->clear();
  const size_t open = skip_ws(line, 0);
  std::vector<TurnSpan> spans;
  bool has_messages = false;
  TurnSpan prompt, response;
  int response_rank = 0;  // 0: none; else 4 "response", 3 "completion", 2 "output", 1 "text"
  const bool ok = scan_object(line, open, [&](std::string_view key, size_t vs, size_t ve) {
    if (key == "\"messages\"" && line[vs] == '[' && !has_messages) {
      has_messages = true;
      return scan_messages(line, vs, &spans);
    }
    if (line[vs] != '"') return true;
    if (key == "\"prompt\"" && prompt.role.empty()) {
      prompt = {vs, ve, "user"};
      return true;
    }
    const int rank = key == "\"response\"" ? 4 : key == "\"completion\"" ? 3 : key == "\"output\"" ? 2 : key == "\"text\"" ? 1 : 0;
    if (rank > response_rank) {
      response = {vs, ve, "assistant"};
      response_rank = rank;
    }
    return true;
  });
  if (!ok) return false;
  if (!has_messages) {
    if (prompt.role.empty() || response_rank == 0) return false;
    spans = {prompt, response};
  }
  if (spans.empty()) return false;
  std::vector<size_t> by_place(spans.size());
  for (size_t k = 0; k < spans.size(); ++k) by_place[k] = k;
  std::sort(by_place.begin(), by_place.end(), [&](size_t a, size_t b) { return spans[a].start < spans[b].start; });
  size_t pos = 0;
  for (size_t k : by_place) {
    JsonlTurn t;
    if (!rebuildable_literal(line.substr(spans[k].start, spans[k].end - spans[k].start), &t.text, &t.ascii_escapes)) return false;
    t.prefix = std::string(line.substr(pos, spans[k].start - pos));
    t.role = spans[k].role;
    t.turn = static_cast<uint32_t>(k);
    pos = spans[k].end;
    turns->push_back(std::move(t));
  }
  *suffix = std::string(line.substr(pos));
  return true;
}

std::string join_conversation_record(const std::vector<JsonlTurn>& turns, const std::string& suffix) {
  std::string out;
  for (const JsonlTurn& t : turns) out += t.prefix + json_string_literal(t.text, t.ascii_escapes);
  return out + suffix;
}

std::unique_ptr<ByteSource> open_file_source(const std::string& path) { return std::make_unique<FileSource>(path); }
std::unique_ptr<ByteSource> memory_source(std::string bytes) { return std::make_unique<MemorySource>(std::move(bytes)); }

// ---- header ----

std::string ArchiveHeader::serialize() const {
  if (version != kArchiveVersion && version != kArchiveVersionLegacy)
    throw std::invalid_argument("ArchiveHeader::serialize: version " + std::to_string(version) + " is neither 1 nor 2");
  const int max_arith = version == kArchiveVersion ? kCompactMaxArithmetic4 : 255;
  if (arithmetic_version < 1 || arithmetic_version > max_arith)
    throw std::invalid_argument("ArchiveHeader::serialize: arithmetic_version " + std::to_string(arithmetic_version) + " outside [1, " +
                                std::to_string(max_arith) + "]");
  if (chunk_tokens < 0 || chunk_tokens > kMaxChunkTokens || (chunk_tokens > 0 && (context_tokens < 0 || context_tokens >= chunk_tokens)))
    throw std::invalid_argument("ArchiveHeader::serialize: chunk_tokens " + std::to_string(chunk_tokens) + " / context_tokens " +
                                std::to_string(context_tokens) + " out of range");
  if (flags & ~kArchiveKnownFlags) throw std::invalid_argument("ArchiveHeader::serialize: unknown flags");
  const bool conversations = (flags & kArchiveConversations) != 0;
  if (conversations && (version != kArchiveVersion || !(flags & kArchiveJsonl)))
    throw std::invalid_argument("ArchiveHeader::serialize: conversations need a version-2 archive of JSONL records");
  if (conversations && static_cast<uint8_t>(turn_template) > static_cast<uint8_t>(ArchiveTurnTemplate::BaseTemplate))
    throw std::invalid_argument("ArchiveHeader::serialize: unknown turn template");
  std::string out(kArchiveMagic, 4);
  put_u8(out, static_cast<uint8_t>(version));
  put_u8(out, flags);
  put_u8(out, static_cast<uint8_t>(arithmetic_version));
  put_tag16(out, base_tag);
  put_u8(out, tokenizer_tag);
  put_varint(out, static_cast<uint64_t>(chunk_tokens));
  if (chunk_tokens > 0) put_varint(out, static_cast<uint64_t>(context_tokens));
  if (conversations) put_u8(out, static_cast<uint8_t>(turn_template));
  put_le(out, check32(out), 4);
  return out;
}

ArchiveHeader ArchiveHeader::parse(std::string_view b, const std::string& name, size_t* header_bytes) {
  auto fail = [&](const std::string& what) { throw std::runtime_error(name + ": " + what); };
  if (b.empty()) fail("truncated: the file is empty (not a lorazip archive)");
  const size_t m = b.size() < 4 ? b.size() : 4;
  if (b.substr(0, m) != std::string_view(kArchiveMagic, m)) fail("not a lorazip archive (bad magic: expected \"LRZA\")");
  ByteReader r(b, 4, b.size(), name);
  const uint8_t version = r.u8("version");
  if (version != kArchiveVersion && version != kArchiveVersionLegacy)
    fail("unsupported archive version " + std::to_string(version) + " (this lorazip reads versions " + std::to_string(kArchiveVersionLegacy) +
         " and " + std::to_string(kArchiveVersion) + ")");
  ArchiveHeader h;
  h.version = version;
  h.flags = r.u8("flags");
  if (h.flags & ~kArchiveKnownFlags) fail("archive flags name features this lorazip does not know (written by a newer version?)");
  const bool conversations = (h.flags & kArchiveConversations) != 0;
  if (conversations && (version != kArchiveVersion || !(h.flags & kArchiveJsonl)))
    fail("invalid archive header: the conversations flag without version 2 and JSONL records");
  h.arithmetic_version = r.u8("arithmetic_version");
  const int max_arith = version == kArchiveVersion ? kCompactMaxArithmetic4 : 255;
  if (h.arithmetic_version < 1 || h.arithmetic_version > max_arith)
    fail("invalid archive header: arithmetic_version " + std::to_string(h.arithmetic_version) + " outside [1, " + std::to_string(max_arith) + "]");
  h.base_tag = read_tag16(r, "base_tag");
  h.tokenizer_tag = r.u8("tokenizer_tag");
  h.chunk_tokens = static_cast<int64_t>(r.varint_in("chunk_tokens", 0, static_cast<uint64_t>(kMaxChunkTokens)));
  if (h.chunk_tokens > 0)
    h.context_tokens = static_cast<int64_t>(r.varint_in("context_tokens", 0, static_cast<uint64_t>(h.chunk_tokens - 1)));
  if (conversations) {
    const uint8_t t = r.u8("turn_template");
    if (t > static_cast<uint8_t>(ArchiveTurnTemplate::BaseTemplate))
      fail("invalid archive header: turn template " + std::to_string(t) + " is none this lorazip knows (0 plain, 1 chatml, 2 the base's own)");
    h.turn_template = static_cast<ArchiveTurnTemplate>(t);
  }
  const size_t end = r.pos();
  const uint32_t stored = static_cast<uint32_t>(r.le(4, "header_check"));
  if (kVerifyChecksums && stored != check32(b.substr(0, end))) fail("archive header checksum mismatch (file corrupted)");
  *header_bytes = r.pos();
  return h;
}

// ---- index ----

std::string next_member_name(const std::string& prev) {
  size_t start = prev.size();
  while (start > 0 && prev[start - 1] >= '0' && prev[start - 1] <= '9') --start;
  if (start == prev.size()) return "";
  std::string next = prev;
  size_t i = next.size();
  while (i > start && next[i - 1] == '9') next[--i] = '0';
  if (i > start) ++next[i - 1];
  else next.insert(start, 1, '1');
  return next.size() <= kMaxMemberName ? next : "";
}

uint64_t ArchiveIndex::layout(uint64_t data_start) {
  uint64_t pos = data_start;
  for (auto& m : members) {
    m.offset = pos + m.gap;
    pos = m.offset + m.data_len;
  }
  return pos;
}

namespace {

uint8_t member_flags(const ArchiveMember& m) {
  return (m.coded ? kMemberCoded : 0) | (m.dummy_prefix ? kMemberDummyPrefix : 0) | (m.ascii_escapes ? kMemberAsciiEscapes : 0) |
         (m.raw_line ? kMemberRawLine : 0) | (m.no_newline ? kMemberNoNewline : 0);
}

// What serialize refuses in any version: a name too long, an adapter past the table, chunk
// lengths that do not add up to the data or more chunks than tokens.
void check_member_for_writing(const ArchiveIndex& ix, const ArchiveMember& m) {
  if (m.name.size() > kMaxMemberName) throw std::invalid_argument("archive member name longer than " + std::to_string(kMaxMemberName) + " bytes: " + m.name.substr(0, 80));
  if (m.adapter > ix.adapters.size()) throw std::invalid_argument("archive member '" + m.name + "' names adapter " + std::to_string(m.adapter) + " of " + std::to_string(ix.adapters.size()));
  if (m.coded) {
    uint64_t sum = 0;
    for (uint64_t l : m.chunk_lens) sum += l;
    if (sum != m.data_len || (m.n_tokens == 0) != m.chunk_lens.empty() || m.chunk_lens.size() > m.n_tokens)
      throw std::invalid_argument("archive member '" + m.name + "': chunk lengths do not fit its data or tokens");
  }
}

void put_adapters(std::string& block, const ArchiveIndex& ix) {
  put_varint(block, ix.adapters.size());
  for (const auto& a : ix.adapters) {
    put_tag16(block, a.tag);
    put_str(block, a.domain.substr(0, kMaxDomainBytes));
  }
}

void read_adapters(ByteReader& r, ArchiveIndex& ix) {
  const uint64_t n_adapters = r.varint_in("n_adapters", 0, kMaxArchiveAdapters);
  for (uint64_t i = 0; i < n_adapters; ++i) {
    ArchiveAdapter a;
    a.tag = read_tag16(r, "adapter tag");
    a.domain = r.str("adapter domain", kMaxDomainBytes);
    ix.adapters.push_back(a);
  }
}

// Version 1: member after member (name, flags, gap, length, check, then the coded fields).
std::string index_block_v1(const ArchiveIndex& ix, bool jsonl) {
  std::string block;
  put_adapters(block, ix);
  put_varint(block, ix.members.size());
  for (const auto& m : ix.members) {
    check_member_for_writing(ix, m);
    put_str(block, m.name);
    put_u8(block, member_flags(m));
    put_varint(block, m.gap);
    put_varint(block, m.data_len);
    put_le(block, m.check, 4);
    if (m.coded) {
      put_varint(block, m.adapter);
      put_varint(block, m.original_bytes);
      put_varint(block, m.n_tokens);
      if (m.n_tokens > 0) {
        put_varint(block, m.chunk_lens.size() - 1);
        for (size_t i = 0; i + 1 < m.chunk_lens.size(); ++i) put_varint(block, m.chunk_lens[i]);
      }
    }
    if (jsonl && !m.raw_line) {
      put_str(block, m.prefix);
      put_str(block, m.suffix);
    }
  }
  return block;
}

// Version 2's token counts are written as their difference from a guess made from the member's
// data length and the archive's tokens per KiB of coded data (one number in the index).
uint64_t tokens_guess(uint64_t data_len, uint64_t tokens_per_kib) {
  const unsigned __int128 g = (static_cast<unsigned __int128>(data_len) * tokens_per_kib + 512) >> 10;
  return g > (uint64_t{1} << 62) ? uint64_t{1} << 62 : static_cast<uint64_t>(g);
}
// Version 2 writes the columns that are mostly one value (flags, gaps, adapters, chunk counts) as
// runs: value varint, run length varint (>= 1), until the column's count is reached.
void put_runs(std::string& out, const std::vector<uint64_t>& column) {
  for (size_t i = 0; i < column.size();) {
    size_t j = i + 1;
    while (j < column.size() && column[j] == column[i]) ++j;
    put_varint(out, column[i]);
    put_varint(out, j - i);
    i = j;
  }
}
std::vector<uint64_t> read_runs(ByteReader& r, size_t count, const char* field) {
  std::vector<uint64_t> column;
  column.reserve(count);
  while (column.size() < count) {
    const uint64_t v = r.varint(field);
    const uint64_t run = r.varint(field);
    if (run == 0 || run > count - column.size())
      r.fail(std::string("invalid archive index: a run of ") + std::to_string(run) + " in the " + field + " column, where " +
             std::to_string(count - column.size()) + " values are left");
    column.insert(column.end(), static_cast<size_t>(run), v);
  }
  return column;
}

// Version 2's index bytes start with how the block is kept: as it is, or as a zstd-19 frame
// (whichever is shorter; a small index is often shorter as it is).
constexpr uint8_t kIndexRaw = 0;
constexpr uint8_t kIndexZstd = 1;

uint64_t zigzag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t unzigzag(uint64_t z) { return static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1); }

// Version 2: column after column, so that like sits next to like: the flags of every member (as
// runs), the names not numbered on from the one before, the gaps (runs), the data lengths, the
// checks; then for the coded members the tokens per KiB, their adapters (runs), token counts (as
// differences from the guess), chunk counts (runs) and chunk lengths; then the JSONL records'
// prefixes and suffixes. No original length: a coded member's check (its version-4 seal) binds
// what it decodes to.
// A conversation archive (kArchiveConversations) marks a record's later turns kMemberSameRecord
// (their names are not written), writes a suffix only for a record's last turn, and ends with
// every record member's role and place in its conversation.
// Whether member k is the last turn of its record (a member of its own is).
bool ends_record(const std::vector<ArchiveMember>& ms, size_t k) { return k + 1 >= ms.size() || !ms[k + 1].same_record; }

std::string index_block_v2(const ArchiveIndex& ix, bool jsonl, bool conversations) {
  std::string block;
  put_adapters(block, ix);
  put_varint(block, ix.members.size());
  std::vector<bool> numbered(ix.members.size(), false);
  std::vector<uint64_t> flags, gaps, adapters, extra_chunks;
  uint64_t coded_bytes = 0, coded_tokens = 0;
  for (size_t k = 0; k < ix.members.size(); ++k) {
    const ArchiveMember& m = ix.members[k];
    check_member_for_writing(ix, m);
    if (m.same_record) {
      const ArchiveMember* prev = k > 0 ? &ix.members[k - 1] : nullptr;
      if (!conversations || !prev || m.raw_line || prev->raw_line || prev->no_newline || prev->name != m.name)
        throw std::invalid_argument("archive member '" + m.name + "' continues a record it cannot continue");
    }
    numbered[k] = !m.same_record && k > 0 && !m.name.empty() && next_member_name(ix.members[k - 1].name) == m.name;
    flags.push_back(member_flags(m) | (numbered[k] ? kMemberNameNext : 0) | (m.same_record ? kMemberSameRecord : 0));
    gaps.push_back(m.gap);
    if (m.coded) {
      coded_bytes += m.data_len;
      coded_tokens += m.n_tokens;
      adapters.push_back(m.adapter);
      if (m.n_tokens > 0) extra_chunks.push_back(m.chunk_lens.size() - 1);
    }
  }
  put_runs(block, flags);
  for (size_t k = 0; k < ix.members.size(); ++k)
    if (!numbered[k] && !ix.members[k].same_record) put_str(block, ix.members[k].name);
  put_runs(block, gaps);
  for (const auto& m : ix.members) put_varint(block, m.data_len);
  for (const auto& m : ix.members) put_le(block, m.check, 4);
  const uint64_t per_kib = coded_bytes == 0 ? 0 : static_cast<uint64_t>((static_cast<unsigned __int128>(coded_tokens) * 1024 + coded_bytes / 2) / coded_bytes);
  if (!adapters.empty()) put_varint(block, per_kib);
  put_runs(block, adapters);
  for (const auto& m : ix.members) {
    if (!m.coded) continue;
    const __int128 diff = static_cast<__int128>(m.n_tokens) - static_cast<__int128>(tokens_guess(m.data_len, per_kib));
    if (diff > INT64_MAX || diff < INT64_MIN) throw std::invalid_argument("archive member '" + m.name + "': token count out of range");
    put_varint(block, zigzag(static_cast<int64_t>(diff)));
  }
  put_runs(block, extra_chunks);
  for (const auto& m : ix.members)
    if (m.coded)
      for (size_t i = 0; i + 1 < m.chunk_lens.size(); ++i) put_varint(block, m.chunk_lens[i]);
  if (jsonl)
    for (size_t k = 0; k < ix.members.size(); ++k) {
      const ArchiveMember& m = ix.members[k];
      if (m.raw_line) continue;
      put_str(block, m.prefix);
      if (!conversations || ends_record(ix.members, k)) put_str(block, m.suffix);
      else if (!m.suffix.empty()) throw std::invalid_argument("archive member '" + m.name + "': a turn before the record's last has a suffix");
    }
  if (conversations)
    for (const auto& m : ix.members)
      if (!m.raw_line) {
        if (m.role.size() > kMaxTurnRole) throw std::invalid_argument("archive member '" + m.name + "': role longer than 255 bytes");
        put_str(block, m.role);
        put_varint(block, m.turn);
      }
  return block;
}

std::string member_label(size_t k, const ArchiveMember& m) { return "archive member " + std::to_string(k) + " '" + m.name + "'"; }

// The flag rules every version shares.
void check_member_flags(ByteReader& r, const std::string& who, uint8_t flags, uint8_t known, bool jsonl) {
  if (flags & ~known) r.fail("invalid archive index: " + who + " has unknown flags");
  if (!(flags & kMemberCoded) && (flags & kMemberDummyPrefix)) r.fail("invalid archive index: " + who + " is stored but has the dummy-prefix flag");
  if (!jsonl && (flags & (kMemberRawLine | kMemberAsciiEscapes | kMemberNoNewline))) r.fail("invalid archive index: " + who + " has JSONL flags in an archive of files");
}
void apply_member_flags(ArchiveMember& m, uint8_t flags) {
  m.coded = flags & kMemberCoded;
  m.dummy_prefix = flags & kMemberDummyPrefix;
  m.ascii_escapes = flags & kMemberAsciiEscapes;
  m.raw_line = flags & kMemberRawLine;
  m.no_newline = flags & kMemberNoNewline;
}

// The member's data range after the previous member's end *pos, checked against `data_end`.
void place_member(ByteReader& r, const std::string& who, ArchiveMember& m, uint64_t* pos, uint64_t data_end) {
  if (m.gap > data_end - *pos || m.data_len > data_end - *pos - m.gap) r.fail("invalid archive index: " + who + "'s data runs past the start of the index");
  m.offset = *pos + m.gap;
  *pos = m.offset + m.data_len;
}

// A coded member's chunk table: `extra` + 1 chunks, all lengths but the last read here.
void read_chunk_lengths(ByteReader& r, const std::string& who, ArchiveMember& m, uint64_t extra) {
  if (extra > r.left() || extra >= m.n_tokens) r.fail("invalid archive index: " + who + " has more chunks than tokens or bytes");
  uint64_t listed = 0;
  for (uint64_t i = 0; i < extra; ++i) {
    const uint64_t l = r.varint("member chunk length");
    if (l > m.data_len - listed) r.fail("invalid archive index: " + who + "'s chunk lengths exceed its data");
    listed += l;
    m.chunk_lens.push_back(l);
  }
  m.chunk_lens.push_back(m.data_len - listed);
}

void parse_v1(ByteReader& r, ArchiveIndex& ix, uint64_t data_start, uint64_t data_end, bool jsonl) {
  // Every member takes at least 8 bytes of the index (name length, flags, gap, length, check).
  const uint64_t n_members = r.varint("n_members");
  if (n_members > r.left() / 8) r.fail("invalid archive index: " + std::to_string(n_members) + " members cannot fit its " + std::to_string(r.left()) + " bytes");
  ix.members.reserve(static_cast<size_t>(n_members));
  uint64_t pos = data_start;
  for (uint64_t k = 0; k < n_members; ++k) {
    ArchiveMember m;
    m.name = r.str("member name", kMaxMemberName);
    const std::string who = member_label(k, m);
    const uint8_t flags = r.u8("member flags");
    check_member_flags(r, who, flags, kMemberKnown, jsonl);
    apply_member_flags(m, flags);
    m.gap = r.varint("member gap");
    m.data_len = r.varint("member data_len");
    place_member(r, who, m, &pos, data_end);
    m.check = static_cast<uint32_t>(r.le(4, "member check"));
    m.original_bytes = m.data_len;
    if (m.coded) {
      m.adapter = static_cast<uint32_t>(r.varint_in("member adapter", 0, ix.adapters.size()));
      m.original_bytes = r.varint("member original_bytes");
      m.n_tokens = r.varint("member n_tokens");
      if (m.n_tokens > 0) read_chunk_lengths(r, who, m, r.varint("member n_chunks"));
      else if (m.data_len != 0) r.fail("invalid archive index: " + who + " has data but no tokens");
    }
    if (jsonl && !m.raw_line) {
      m.prefix = r.str("member prefix", kMaxIndexBytes);
      m.suffix = r.str("member suffix", kMaxIndexBytes);
    }
    ix.members.push_back(std::move(m));
  }
}

// A conversation archive's records: each record's turns hold the places 0..n-1 once each, and
// only a record of one turn may have no role.
void check_records(ByteReader& r, const ArchiveIndex& ix) {
  const auto& ms = ix.members;
  std::vector<char> seen;
  for (size_t first = 0; first < ms.size();) {
    size_t end = first + 1;
    while (end < ms.size() && ms[end].same_record) ++end;
    const size_t n = end - first;
    seen.assign(n, 0);
    for (size_t k = first; k < end; ++k) {
      const ArchiveMember& m = ms[k];
      if (m.raw_line) continue;  // a whole line is a record of one member
      if (m.turn >= n || seen[m.turn]++)
        r.fail("invalid archive index: " + member_label(k, m) + " has turn " + std::to_string(m.turn) + ", but its record's " +
               std::to_string(n) + " turns must hold 0.." + std::to_string(n - 1) + " once each");
      if (m.role.empty() && n > 1) r.fail("invalid archive index: " + member_label(k, m) + " has no role in a record of several turns");
    }
    first = end;
  }
}

void parse_v2(ByteReader& r, ArchiveIndex& ix, uint64_t data_start, uint64_t data_end, bool jsonl, bool conversations) {
  const uint64_t n_members = r.varint("n_members");
  if (n_members > r.left() / kMinMemberBytes2)
    r.fail("invalid archive index: " + std::to_string(n_members) + " members cannot fit its " + std::to_string(r.left()) + " bytes");
  const size_t n = static_cast<size_t>(n_members);
  ix.members.resize(n);
  std::vector<bool> numbered(n);
  const std::vector<uint64_t> flags = read_runs(r, n, "member flags");
  for (size_t k = 0; k < n; ++k) {
    if (flags[k] > 0xFF) r.fail("invalid archive index: archive member " + std::to_string(k) + " has unknown flags");
    const std::string who = "archive member " + std::to_string(k);
    check_member_flags(r, who, static_cast<uint8_t>(flags[k]), kMemberKnown2 | (conversations ? kMemberSameRecord : 0), jsonl);
    apply_member_flags(ix.members[k], static_cast<uint8_t>(flags[k]));
    numbered[k] = flags[k] & kMemberNameNext;
    ArchiveMember& m = ix.members[k];
    m.same_record = flags[k] & kMemberSameRecord;
    if (m.same_record) {
      if (k == 0 || numbered[k] || m.raw_line || ix.members[k - 1].raw_line || ix.members[k - 1].no_newline)
        r.fail("invalid archive index: " + who + " continues a record it cannot continue (the first member, a whole line, or after a record's end)");
    }
  }
  for (size_t k = 0; k < n; ++k) {
    ArchiveMember& m = ix.members[k];
    if (m.same_record) {
      m.name = ix.members[k - 1].name;
      continue;
    }
    if (!numbered[k]) {
      m.name = r.str("member name", kMaxMemberName);
      continue;
    }
    m.name = k == 0 ? "" : next_member_name(ix.members[k - 1].name);
    if (m.name.empty()) r.fail("invalid archive index: archive member " + std::to_string(k) + "'s name is numbered on from a name that has no number");
  }
  uint64_t pos = data_start;
  const std::vector<uint64_t> gaps = read_runs(r, n, "member gap");
  for (size_t k = 0; k < n; ++k) ix.members[k].gap = gaps[k];
  for (size_t k = 0; k < n; ++k) {
    ArchiveMember& m = ix.members[k];
    m.data_len = r.varint("member data_len");
    place_member(r, member_label(k, m), m, &pos, data_end);
    if (!m.coded) m.original_bytes = m.data_len;
  }
  for (auto& m : ix.members) m.check = static_cast<uint32_t>(r.le(4, "member check"));
  const size_t n_coded = static_cast<size_t>(std::count_if(ix.members.begin(), ix.members.end(), [](const ArchiveMember& m) { return m.coded; }));
  const uint64_t per_kib = n_coded > 0 ? r.varint_in("tokens per KiB", 0, uint64_t{1} << 32) : 0;
  const std::vector<uint64_t> adapters = read_runs(r, n_coded, "member adapter");
  for (size_t k = 0, c = 0; k < n; ++k) {
    if (!ix.members[k].coded) continue;
    if (adapters[c] > ix.adapters.size())
      r.fail("invalid archive index: " + member_label(k, ix.members[k]) + " names adapter " + std::to_string(adapters[c]) + " of " +
             std::to_string(ix.adapters.size()));
    ix.members[k].adapter = static_cast<uint32_t>(adapters[c++]);
  }
  for (size_t k = 0; k < n; ++k) {
    ArchiveMember& m = ix.members[k];
    if (!m.coded) continue;
    const __int128 t = static_cast<__int128>(tokens_guess(m.data_len, per_kib)) + unzigzag(r.varint("member n_tokens"));
    if (t < 0 || t > (__int128{1} << 62)) r.fail("invalid archive index: " + member_label(k, m) + " has a token count out of range");
    m.n_tokens = static_cast<uint64_t>(t);
    if (m.n_tokens == 0 && m.data_len != 0) r.fail("invalid archive index: " + member_label(k, m) + " has data but no tokens");
  }
  const size_t n_with_tokens = static_cast<size_t>(std::count_if(ix.members.begin(), ix.members.end(), [](const ArchiveMember& m) { return m.coded && m.n_tokens > 0; }));
  const std::vector<uint64_t> extra_chunks = read_runs(r, n_with_tokens, "member n_chunks");
  std::vector<uint64_t> extra(n, 0);
  for (size_t k = 0, c = 0; k < n; ++k) {
    const ArchiveMember& m = ix.members[k];
    if (!m.coded || m.n_tokens == 0) continue;
    extra[k] = extra_chunks[c++];
    if (extra[k] > r.left() || extra[k] >= m.n_tokens) r.fail("invalid archive index: " + member_label(k, m) + " has more chunks than tokens or bytes");
  }
  for (size_t k = 0; k < n; ++k) {
    ArchiveMember& m = ix.members[k];
    if (m.coded && m.n_tokens > 0) read_chunk_lengths(r, member_label(k, m), m, extra[k]);
  }
  if (jsonl)
    for (size_t k = 0; k < n; ++k) {
      ArchiveMember& m = ix.members[k];
      if (m.raw_line) continue;
      m.prefix = r.str("member prefix", kMaxIndexBytes);
      if (!conversations || ends_record(ix.members, k)) m.suffix = r.str("member suffix", kMaxIndexBytes);
    }
  if (conversations) {
    for (auto& m : ix.members)
      if (!m.raw_line) {
        m.role = r.str("member role", kMaxTurnRole);
        m.turn = static_cast<uint32_t>(r.varint_in("member turn", 0, UINT32_MAX));
      }
    check_records(r, ix);
  }
}

}  // namespace

std::string ArchiveIndex::serialize_with_footer(const ArchiveHeader& h) const {
  const bool jsonl = (h.flags & kArchiveJsonl) != 0;
  if (h.version != kArchiveVersion && h.version != kArchiveVersionLegacy)
    throw std::invalid_argument("ArchiveIndex::serialize_with_footer: archive version " + std::to_string(h.version) + " is neither 1 nor 2");
  std::string packed;
  if (h.version == kArchiveVersion) {
    const std::string block = index_block_v2(*this, jsonl, (h.flags & kArchiveConversations) != 0);
    const std::string z = classical_compress(Classical::Zstd19, block);
    packed.assign(1, static_cast<char>(z.size() < block.size() ? kIndexZstd : kIndexRaw));
    packed += z.size() < block.size() ? z : block;
  } else {
    packed = classical_compress(Classical::Zstd19, index_block_v1(*this, jsonl));
  }
  std::string out = packed;
  put_le(out, packed.size(), 8);
  put_le(out, check32(packed), 4);
  out.append(kArchiveFooterMagic, 4);
  return out;
}

ArchiveIndex ArchiveIndex::parse(std::string_view packed, const std::string& name, uint64_t data_start, uint64_t data_end,
                                 const ArchiveHeader& h) {
  if (data_start > data_end) throw std::invalid_argument("ArchiveIndex::parse: data_start after data_end");
  std::string block;
  const bool v2 = h.version == kArchiveVersion;
  if (v2 && (packed.empty() || static_cast<uint8_t>(packed[0]) > kIndexZstd))
    throw std::runtime_error(name + ": invalid archive index: its first byte says neither 'as it is' (0) nor 'zstd' (1)");
  if (v2 && static_cast<uint8_t>(packed[0]) == kIndexRaw) {
    block = std::string(packed.substr(1));
  } else {
    try {
      block = classical_decompress(Classical::Zstd19, v2 ? packed.substr(1) : packed, kMaxIndexBytes);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(name + ": archive index does not decompress (file corrupted): " + e.what());
    }
  }
  ByteReader r(block, 0, block.size(), name);
  ArchiveIndex ix;
  read_adapters(r, ix);
  const bool jsonl = (h.flags & kArchiveJsonl) != 0;
  try {
    if (h.version == kArchiveVersion) parse_v2(r, ix, data_start, data_end, jsonl, (h.flags & kArchiveConversations) != 0);
    else parse_v1(r, ix, data_start, data_end, jsonl);
  } catch (const std::bad_alloc&) {
    // A hostile index can claim as many members as its decompressed bytes allow.
    throw std::runtime_error(name + ": invalid archive index: its " + std::to_string(block.size()) +
                             " bytes claim more members than this machine's memory can hold");
  }
  if (r.left() != 0) r.fail("invalid archive index: " + std::to_string(r.left()) + " bytes after the last member");
  return ix;
}

bool safe_member_name(const std::string& name) {
  if (name.empty() || name[0] == '/' || name.find('\0') != std::string::npos) return false;
  size_t start = 0;
  while (start <= name.size()) {
    const size_t end = std::min(name.find('/', start), name.size());
    if (name.compare(start, end - start, "..") == 0 && end - start == 2) return false;
    start = end + 1;
  }
  return true;
}

std::string extract_path(const std::string& dir, const std::string& name, const std::string& archive_name) {
  if (!safe_member_name(name))
    throw std::runtime_error(archive_name + ": member name '" + name + "' would be written outside " + dir + "; not extracted");
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

size_t record_first_member(const ArchiveIndex& ix, size_t k) {
  while (k > 0 && k < ix.members.size() && ix.members[k].same_record) --k;
  return k;
}

std::vector<size_t> select_members(const ArchiveIndex& ix, bool conversations, const std::vector<std::string>& names,
                                   const std::string& archive_name) {
  std::vector<size_t> which;
  if (names.empty()) {
    for (size_t k = 0; k < ix.members.size(); ++k) which.push_back(k);
  } else {
    std::map<std::string, size_t> by_name;
    for (size_t k = 0; k < ix.members.size(); ++k) by_name.emplace(ix.members[k].name, k);
    for (const auto& n : names) {
      auto it = by_name.find(n);
      if (it == by_name.end()) throw std::invalid_argument("'" + n + "' is not a member of " + archive_name + " (see lorazip archive list)");
      which.push_back(it->second);
    }
  }
  if (!conversations) return which;
  std::vector<size_t> records;
  std::vector<char> taken(ix.members.size(), 0);
  for (size_t k : which) {
    const size_t first = record_first_member(ix, k);
    if (!taken[first]++) records.push_back(first);
  }
  return records;
}

CompactFile member_compact_file(const ArchiveHeader& h, const ArchiveIndex& ix, const ArchiveMember& m, std::string_view data,
                                std::optional<uint16_t> context_tag) {
  if (!m.coded || data.size() != m.data_len || m.adapter > ix.adapters.size())
    throw std::invalid_argument("member_compact_file: '" + m.name + "' is not a coded member with this data and adapter");
  CompactFile f;
  const bool v2 = h.version == kArchiveVersion;
  if (context_tag && !v2) throw std::invalid_argument("member_compact_file: '" + m.name + "': a version-1 archive has no conditioned members");
  f.version = context_tag ? kCompactVersionContext : v2 ? kCompactVersion : kCompactVersionLegacy;
  f.context_tag = context_tag.value_or(0);
  f.dummy_prefix = m.dummy_prefix;
  f.arithmetic_version = h.arithmetic_version;
  f.base_tag = h.base_tag;
  f.tokenizer_tag = h.tokenizer_tag;
  f.has_adapter = m.adapter > 0;
  // The archive's adapter table keeps 16 bits of a fingerprint; version 4 files keep the first 8.
  if (f.has_adapter) f.adapter_tag = v2 ? ix.adapters[m.adapter - 1].tag >> 8 : ix.adapters[m.adapter - 1].tag;
  f.chunk_tokens = h.chunk_tokens;
  f.context_tokens = h.context_tokens;
  f.n_tokens = m.n_tokens;
  if (v2) {
    f.seal = m.check;
  } else {
    f.original_bytes = m.original_bytes;
    f.original_check = m.check;
  }
  size_t pos = 0;
  for (uint64_t len : m.chunk_lens) {
    f.chunks.emplace_back(data.substr(pos, static_cast<size_t>(len)));
    pos += static_cast<size_t>(len);
  }
  return f;
}

namespace {

// Candidates the backward search reads an index for before it gives up (a bound on the work a
// hostile file full of "LRZE" can cause); the scan itself reads the file once, in these blocks.
constexpr int kMaxRecoveryCandidates = 256;
constexpr uint64_t kRecoveryScanBlock = uint64_t{1} << 20;

// The state sealed by a footer that ends at byte `end`: its footer, index block and parsed index
// into *L (header fields already set). Returns "" when they form a complete state; otherwise the
// reason, which is one a cut-off append leaves behind (no footer magic, an index length that does
// not fit, an index checksum mismatch). A sealed index that does not parse throws.
std::string read_state_at(const ByteSource& src, const std::string& name, uint64_t end, ArchiveLayout* L) {
  const std::string foot = src.read(end - kArchiveFooterBytes, kArchiveFooterBytes);
  if (foot.compare(12, 4, kArchiveFooterMagic, 4) != 0) return "truncated or damaged archive: the last bytes are not its footer (\"LRZE\")";
  ByteReader fr(foot, 0, 12, name);
  const uint64_t index_len = fr.le(8, "index_len");
  const uint32_t index_check = static_cast<uint32_t>(fr.le(4, "index_check"));
  if (index_len > end - kArchiveFooterBytes - L->header_bytes)
    return "invalid archive footer: an index of " + std::to_string(index_len) + " bytes does not fit the file";
  L->index_offset = end - kArchiveFooterBytes - index_len;
  const std::string block = src.read(L->index_offset, static_cast<size_t>(index_len));
  if (kVerifyChecksums && check32(block) != index_check) return "archive index checksum mismatch (file corrupted)";
  L->index = ArchiveIndex::parse(block, name, L->header_bytes, L->index_offset, L->header);
  return "";
}

// Whether the state read at *L is one `create` or `add` writes: its index starts right after the
// last member's data (or the header), or right after an older footer (an `add` of no documents).
// This turns away an archive stored as a member of the incomplete append: its own footer seals
// an index whose members, laid out from this archive's header, do not end where it starts.
bool written_by_lorazip(const ByteSource& src, ArchiveLayout* L) {
  const uint64_t data_end = L->index.layout(L->header_bytes);
  if (data_end == L->index_offset) return true;
  return L->index_offset >= L->header_bytes + kArchiveFooterBytes &&
         src.read(L->index_offset - 4, 4) == std::string_view(kArchiveFooterMagic, 4);
}

// The most recent complete state whose footer ends before byte `before`: the search looks
// backwards for "LRZE" and takes the first footer whose index fits, passes its checksum, parses
// and is laid out as lorazip writes it. False when there is none (or too many candidates fail).
bool find_earlier_state(const ByteSource& src, const std::string& name, const ArchiveLayout& head, uint64_t before,
                        ArchiveLayout* out, uint64_t* end_out) {
  const uint64_t lowest_end = head.header_bytes + kArchiveFooterBytes;  // a footer ending here seals an empty index
  if (before <= lowest_end) return false;
  const uint64_t floor = lowest_end - 4;  // where the lowest possible magic starts
  int tried = 0;
  // Candidate ends e with lowest_end <= e < before; a block [a, b) holds the magics of ends in [a + 4, b].
  uint64_t b = before - 1;
  while (b >= floor + 4) {
    const uint64_t a = b - floor > kRecoveryScanBlock ? b - kRecoveryScanBlock : floor;
    const std::string buf = src.read(a, static_cast<size_t>(b - a));
    for (size_t i = buf.size(); i >= 4; --i) {
      if (buf.compare(i - 4, 4, kArchiveFooterMagic, 4) != 0) continue;
      const uint64_t e = a + i;
      const std::string foot = src.read(e - kArchiveFooterBytes, 8);
      ByteReader lr(foot, 0, 8, name);
      if (lr.le(8, "index_len") > e - kArchiveFooterBytes - head.header_bytes) continue;
      if (++tried > kMaxRecoveryCandidates) return false;
      ArchiveLayout L;
      L.header = head.header;
      L.header_bytes = head.header_bytes;
      try {
        if (!read_state_at(src, name, e, &L).empty() || !written_by_lorazip(src, &L)) continue;
      } catch (const std::runtime_error&) {
        continue;  // a sealed block that is not an index: not a state
      }
      *out = std::move(L);
      *end_out = e;
      return true;
    }
    if (a == floor) break;
    b = a + 3;  // the next block overlaps by 3 bytes, so a magic across the boundary is seen once
  }
  return false;
}

}  // namespace

ArchiveIncompleteAppend::ArchiveIncompleteAppend(const std::string& name, uint64_t size, uint64_t complete_end, size_t members)
    : std::runtime_error(name + ": the archive ends with an incomplete append after byte " + std::to_string(complete_end) +
                         " (an `archive add` stopped before its index and footer were complete; the last complete state, " +
                         std::to_string(members) + " members, ends there and " + std::to_string(size - complete_end) +
                         " bytes follow it): run `lorazip archive repair " + name + "` to cut the file back to that state (the bytes after it, the documents of the interrupted add, are dropped: add "
                         "them again)"),
      size(size),
      complete_end(complete_end),
      members(members) {}

ArchiveLayout read_archive_layout(const ByteSource& src, const std::string& name) {
  auto fail = [&](const std::string& what) { throw std::runtime_error(name + ": " + what); };
  const uint64_t size = src.size();
  ArchiveLayout L;
  // The header is at most 4 + 1 + 1 + 1 + 2 + 1 + 5 + 5 + 4 bytes.
  const std::string head = src.read(0, static_cast<size_t>(std::min<uint64_t>(size, 24)));
  L.header = ArchiveHeader::parse(head, name, &L.header_bytes);
  if (size < L.header_bytes + kArchiveFooterBytes)
    fail("truncated: " + std::to_string(size) + " bytes, too short for the archive's header and footer");
  const std::string why = read_state_at(src, name, size, &L);
  if (why.empty()) return L;
  // The end is not a complete state: an `add` cut off (killed, power lost) leaves the state
  // before it intact, its footer somewhere before the end.
  ArchiveLayout earlier;
  uint64_t earlier_end = 0;
  if (find_earlier_state(src, name, L, size, &earlier, &earlier_end))
    throw ArchiveIncompleteAppend(name, size, earlier_end, earlier.index.members.size());
  fail(why);
  return L;  // not reached
}

ArchiveRepair find_archive_repair(const ByteSource& src, const std::string& name) {
  ArchiveRepair r;
  r.old_size = src.size();
  {
    // A file that is not an archive at all is refused as such; there is no state to look for.
    size_t header_bytes = 0;
    ArchiveHeader::parse(src.read(0, static_cast<size_t>(std::min<uint64_t>(r.old_size, 24))), name, &header_bytes);
  }
  try {
    const ArchiveLayout L = read_archive_layout(src, name);
    r.intact = true;
    r.kept_bytes = r.old_size;
    r.members = L.index.members.size();
  } catch (const ArchiveIncompleteAppend& e) {
    r.kept_bytes = e.complete_end;
    r.members = e.members;
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(e.what()) + "; no earlier complete state of the archive was found, so repair cannot cut back to one (nothing changed)");
  }
  return r;
}

ArchiveRepair repair_archive(const std::string& path) {
  ArchiveRepair r;
  {
    auto src = open_file_source(path);
    r = find_archive_repair(*src, path);
  }
  if (r.intact) return r;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": cannot open for repair: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != r.old_size) {
    ::close(fd);
    throw std::runtime_error(path + ": the file changed while it was being checked; nothing changed (run repair again)");
  }
  if (::ftruncate(fd, static_cast<off_t>(r.kept_bytes)) != 0 || ::fsync(fd) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error(path + ": cannot cut the file back to " + std::to_string(r.kept_bytes) + " bytes: " + err);
  }
  if (::close(fd) != 0) throw std::runtime_error(path + ": close failed after the repair: " + std::strerror(errno));
  return r;
}

std::string read_member_data(const ByteSource& src, const ArchiveMember& m) { return src.read(m.offset, static_cast<size_t>(m.data_len)); }

}  // namespace lorazip
