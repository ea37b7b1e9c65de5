// The lossless SentencePiece tokenizer: SentencePiece (through liblorazip_spm.so, opened with
// dlopen) proposes the segmentation, lorazip guarantees the bytes.
//
// How every byte string round-trips (docs/tokenizer.md says the same for users):
//  * decode() never calls SentencePiece. At load we build a table id -> exact bytes: a piece's text
//    with U+2581 "▁" turned back into ' ', a byte piece <0xXX> into that byte, control and unknown
//    pieces into nothing. decode() concatenates table entries.
//  * At load the model's normalizer is rewritten to the identity with no dummy-prefix space and no
//    whitespace squeezing (spm_shim.cpp edits the ModelProto), so SentencePiece sees the text as it
//    is. sha256() and model_bytes() still refer to the original file.
//  * encode() cuts the input at every '\n' (the newline becomes one token of its own; training fed
//    SentencePiece one line per sentence, so no piece spans a newline either). Inside a line, bytes
//    that are not valid UTF-8 (lone continuation bytes, overlong forms, UTF-16 surrogates, code
//    points past U+10FFFF, truncated sequences) and the character U+2581 itself (SentencePiece
//    would read it as a space) become byte pieces directly; SentencePiece would otherwise turn an
//    invalid byte into U+FFFD. Each remaining valid run goes to SentencePiece, and the ids it
//    returns are checked against the decode table. A run that does not reproduce exactly (a
//    character SentencePiece maps to <unk>, a control character it drops) is split in two and each
//    half is tried again, down to single characters, which are spelled as byte pieces. So the
//    output is always exact, and SentencePiece's segmentation is kept wherever it is exact.
//    (Runs above 4 kB are handed over in parts cut at word starts; see encode_run.)
//  * Consequence users can rely on: encode(a + "\n" + b) == encode(a) + [newline] + encode(b).
// The byte-level BPE backend (model/bpe_tokenizer.h) shares the decode table and the accessors;
// encode() hands the whole input to it.
#include "model/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "common/fs.h"
#include "common/hash.h"
#include "model/bpe_tokenizer.h"

#ifndef LORAZIP_SPM_BUILD_PATH
#define LORAZIP_SPM_BUILD_PATH ""
#endif
#ifndef LORAZIP_SPM_INSTALL_NAME
#define LORAZIP_SPM_INSTALL_NAME "liblorazip_spm.so"
#endif

namespace lorazip {
namespace {

// ---- The shim's C interface (see spm_shim.cpp for each function's contract). ----
constexpr int kShimAbiVersion = 2;
constexpr int kPieceNormal = 1, kPieceUnknown = 2, kPieceControl = 3, kPieceByte = 6;

struct SpmApi {
  int (*abi_version)();
  void (*free_buffer)(void*);
  void* (*load)(const char*, size_t, int, char**);
  void (*free_handle)(void*);
  int (*piece_count)(const void*);
  int (*piece)(const void*, int, const char**, size_t*);
  int (*special_id)(const void*, int);
  int (*encode)(const void*, const char*, size_t, int32_t**, size_t*, char**);
  int (*add_dummy_prefix)(const char*, size_t);
  int (*train)(const char* const*, const char* const*, size_t, const char* const*, const size_t*, size_t,
               uint32_t, int, char**, size_t*, char**);
  std::string path;
};

std::string exe_dir() {
  std::string buf(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return {};
  buf.resize(static_cast<size_t>(n));
  const size_t slash = buf.rfind('/');
  return slash == std::string::npos ? std::string() : buf.substr(0, slash);
}

template <typename F>
void bind(void* lib, const char* name, F& fn, const std::string& path) {
  void* sym = ::dlsym(lib, name);
  if (!sym)
    throw std::runtime_error("'" + path + "' lacks the symbol " + name +
                             " (a stale liblorazip_spm.so? rebuild the target lorazip_spm)");
  fn = reinterpret_cast<F>(sym);
}

// Opens liblorazip_spm.so once per process. Search order: $LORAZIP_SPM_LIB (when set, it is the
// only place tried), the directory of the running program, the build tree's path.
SpmApi open_spm() {
  std::vector<std::string> candidates;
  const char* env = std::getenv("LORAZIP_SPM_LIB");
  if (env && *env) {
    candidates.push_back(env);
  } else {
    const std::string dir = exe_dir();
    if (!dir.empty()) candidates.push_back(dir + "/" + LORAZIP_SPM_INSTALL_NAME);
    if (*LORAZIP_SPM_BUILD_PATH) candidates.push_back(LORAZIP_SPM_BUILD_PATH);
  }
  std::string tried;
  for (const std::string& path : candidates) {
    void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!lib) {
      const char* e = ::dlerror();
      tried += "\n  " + path + ": " + (e ? e : "dlopen failed");
      continue;
    }
    SpmApi api{};
    api.path = path;
    bind(lib, "lz_spm_abi_version", api.abi_version, path);
    if (api.abi_version() != kShimAbiVersion)
      throw std::runtime_error("'" + path + "' has interface version " + std::to_string(api.abi_version()) +
                               ", this program needs " + std::to_string(kShimAbiVersion) +
                               " (rebuild the target lorazip_spm)");
    bind(lib, "lz_spm_free_buffer", api.free_buffer, path);
    bind(lib, "lz_spm_load", api.load, path);
    bind(lib, "lz_spm_free", api.free_handle, path);
    bind(lib, "lz_spm_piece_count", api.piece_count, path);
    bind(lib, "lz_spm_piece", api.piece, path);
    bind(lib, "lz_spm_special_id", api.special_id, path);
    bind(lib, "lz_spm_encode", api.encode, path);
    bind(lib, "lz_spm_add_dummy_prefix", api.add_dummy_prefix, path);
    bind(lib, "lz_spm_train", api.train, path);
    return api;  // the library stays loaded for the life of the process
  }
  throw std::runtime_error(std::string("cannot load ") + LORAZIP_SPM_INSTALL_NAME +
                           " (lorazip's SentencePiece library); tried:" +
                           (env && *env ? " $LORAZIP_SPM_LIB =" : "") + tried +
                           "\nPut it beside the lorazip program or set LORAZIP_SPM_LIB to its path.");
}

const SpmApi& spm() {
  static const SpmApi api = open_spm();  // a throw leaves it unset; the next call retries
  return api;
}

// Takes ownership of a message the shim allocated.
std::string take_error(char* err, const char* fallback) {
  std::string msg = err ? err : fallback;
  if (err) spm().free_buffer(err);
  return msg;
}

// Length of the well-formed UTF-8 sequence at p (1..4), or 0 when the byte at p does not start one.
// Strict: no overlong forms, no surrogates (U+D800..DFFF), nothing above U+10FFFF.
size_t utf8_len(const unsigned char* p, size_t n) {
  const unsigned c = p[0];
  auto cont = [&](size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return i < n && p[i] >= lo && p[i] <= hi;
  };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's stand-in for a space.
constexpr char kSpaceMark[] = "\xE2\x96\x81";

// True when the character of length len at p bypasses SentencePiece: U+2581 (SentencePiece would
// read it back as a space) and NUL (SentencePiece can only spell it as <0x00> anyway; keeping it out
// of training lines keeps C-string handling out of the picture).
bool bypasses_spm(const unsigned char* p, size_t len) {
  return (len == 3 && std::memcmp(p, kSpaceMark, 3) == 0) || (len == 1 && p[0] == 0);
}

// Calls f(begin, end, is_text) over consecutive spans of one line: is_text spans are valid UTF-8 for
// SentencePiece, the others are single bytes or characters to spell as byte pieces.
template <typename F>
void for_each_span(const unsigned char* p, size_t n, F&& f) {
  size_t run = 0, i = 0;
  while (i < n) {
    const size_t len = utf8_len(p + i, n - i);
    if (len > 0 && !bypasses_spm(p + i, len)) {
      i += len;
      continue;
    }
    if (i > run) f(run, i, true);
    const size_t raw = len ? len : 1;
    f(i, i + raw, false);
    i += raw;
    run = i;
  }
  if (n > run) f(run, n, true);
}

// "<0xXX>" -> XX, anything else -> -1.
int parse_byte_piece(const std::string& piece) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  const int hi = hex(piece[3]), lo = hex(piece[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Longest run of text handed to SentencePiece's encoder in one call (see encode_run).
constexpr size_t kMaxEncodeRun = 4096;

// Longest sentence handed to the trainer; longer spans are cut at character boundaries.
constexpr size_t kMaxTrainSentence = 8192;

}  // namespace

struct Tokenizer::Impl {
  std::string name;         // file path or caller's label, for messages
  std::string model_bytes;  // the original serialized model
  std::string sha256;
  void* handle = nullptr;                 // SentencePiece backend
  std::unique_ptr<BpeEncoder> bpe;         // byte-level BPE backend
  std::once_flag bpe_json_once;            // from_bpe writes its tokenizer.json on first use
  std::vector<std::string> pieces;  // id -> exact bytes
  std::array<int32_t, 256> byte_id{};
  int32_t newline_id = -1;
  int bos = -1, eos = -1, unk = -1;
  bool dummy_prefix = false;  // the SentencePiece model was trained adding a dummy-prefix space

  ~Impl() {
    if (handle) spm().free_handle(handle);
  }

  void append_bytes(const unsigned char* p, size_t n, std::vector<int32_t>& out) const {
    for (size_t i = 0; i < n; ++i) out.push_back(byte_id[p[i]]);
  }

  // Valid UTF-8 text without '\n' -> ids that reproduce it exactly.
  void encode_text(const unsigned char* p, size_t n, std::vector<int32_t>& out) const {
    if (n == 0) return;
    int32_t* ids = nullptr;
    size_t count = 0;
    char* err = nullptr;
    if (spm().encode(handle, reinterpret_cast<const char*>(p), n, &ids, &count, &err) != 0)
      throw std::runtime_error(name + ": " + take_error(err, "SentencePiece encode failed"));
    bool exact = true;
    size_t at = 0;
    for (size_t k = 0; k < count && exact; ++k) {
      const int32_t id = ids[k];
      if (id < 0 || static_cast<size_t>(id) >= pieces.size()) {
        exact = false;
        break;
      }
      const std::string& b = pieces[static_cast<size_t>(id)];
      exact = b.size() <= n - at && std::memcmp(b.data(), p + at, b.size()) == 0;
      at += b.size();
    }
    exact = exact && at == n;
    if (exact) out.insert(out.end(), ids, ids + count);
    spm().free_buffer(ids);
    if (exact) return;

    const size_t first = utf8_len(p, n);
    if (first >= n) {  // one character SentencePiece cannot give back: spell its bytes
      append_bytes(p, n, out);
      return;
    }
    // Split near the middle, before a space when one is close, at a character boundary.
    size_t mid = n / 2;
    while (mid > 0 && (p[mid] & 0xC0) == 0x80) --mid;
    if (mid == 0) mid = first;
    for (size_t d = 0; d < 32; ++d) {
      if (mid > d && p[mid - d] == ' ') {
        mid -= d;
        break;
      }
      if (mid + d < n && p[mid + d] == ' ') {
        mid += d;
        break;
      }
    }
    encode_text(p, mid, out);
    encode_text(p + mid, n - mid, out);
  }

  // Long runs go to SentencePiece in pieces of at most kMaxEncodeRun bytes, cut where a word starts
  // (a space after a non-space) when there is one: SentencePiece's BPE slows down on very long
  // inputs, and trained pieces do not cross word starts, so the cut rarely changes a token.
  void encode_run(const unsigned char* p, size_t n, std::vector<int32_t>& out) const {
    while (n > kMaxEncodeRun) {
      size_t cut = kMaxEncodeRun;
      while (cut > 0 && !(p[cut] == ' ' && p[cut - 1] != ' ')) --cut;
      if (cut == 0) {
        cut = kMaxEncodeRun;
        while ((p[cut] & 0xC0) == 0x80) --cut;
      }
      encode_text(p, cut, out);
      p += cut;
      n -= cut;
    }
    encode_text(p, n, out);
  }

  void encode_line(const unsigned char* p, size_t n, std::vector<int32_t>& out) const {
    for_each_span(p, n, [&](size_t b, size_t e, bool text) {
      if (text)
        encode_run(p + b, e - b, out);
      else
        append_bytes(p + b, e - b, out);
    });
  }
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& model_path) { return from_bytes(read_file(model_path), model_path); }

namespace {
// A tokenizer.json starts with '{' (after whitespace); a SentencePiece ModelProto starts with a
// protobuf tag, never 0x7B (field 15 as a deprecated group).
bool looks_like_json(std::string_view bytes) {
  for (char c : bytes) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{';
  }
  return false;
}
}  // namespace

const char* Tokenizer::model_file_name(std::string_view model_bytes) {
  return looks_like_json(model_bytes) ? "tokenizer.json" : "tokenizer.model";
}

bool Tokenizer::is_bpe() const { return impl_->bpe != nullptr; }

Tokenizer Tokenizer::from_bpe(BpeDefinition def, const std::string& name) {
  Tokenizer t;
  Impl& m = *t.impl_;
  m.name = name;
  m.bpe = std::make_unique<BpeEncoder>(std::move(def), name);
  const BpeDefinition& d = m.bpe->definition();
  m.pieces = m.bpe->piece_bytes();
  for (int b = 0; b < 256; ++b) m.byte_id[static_cast<size_t>(b)] = m.bpe->byte_id(static_cast<uint8_t>(b));
  m.bos = d.bos_id;
  m.eos = d.eos_id;
  m.sha256 = sha256_hex(bpe_canonical_bytes(d));
  return t;  // model_bytes() writes the tokenizer.json when first asked (half a second for 49k tokens)
}

Tokenizer Tokenizer::from_bytes(std::string model_bytes, const std::string& name) {
  if (looks_like_json(model_bytes)) {
    Tokenizer t = from_bpe(parse_tokenizer_json(model_bytes, name), name);
    t.impl_->model_bytes = std::move(model_bytes);  // the file as given; it loads back the same
    return t;
  }
  const SpmApi& api = spm();
  Tokenizer t;
  Impl& m = *t.impl_;
  m.name = name;
  m.sha256 = sha256_hex(model_bytes);
  m.model_bytes = std::move(model_bytes);
  char* err = nullptr;
  m.handle = api.load(m.model_bytes.data(), m.model_bytes.size(), 1, &err);
  if (!m.handle)
    throw std::runtime_error(name + ": not a usable SentencePiece tokenizer.model: " +
                             take_error(err, "unknown error"));

  const int n = api.piece_count(m.handle);
  m.pieces.resize(static_cast<size_t>(n));
  m.byte_id.fill(-1);
  for (int id = 0; id < n; ++id) {
    const char* text = nullptr;
    size_t len = 0;
    const int kind = api.piece(m.handle, id, &text, &len);
    const std::string piece(text, len);
    std::string& out = m.pieces[static_cast<size_t>(id)];
    if (kind == kPieceByte) {
      const int v = parse_byte_piece(piece);
      if (v < 0)
        throw std::runtime_error(name + ": byte piece " + std::to_string(id) + " is '" + piece +
                                 "', expected the form <0xXX>");
      out.assign(1, static_cast<char>(v));
      if (m.byte_id[v] < 0) m.byte_id[v] = id;
    } else if (kind == kPieceControl || kind == kPieceUnknown) {
      // decodes to nothing (<s>, </s>, <unk>, <pad>)
    } else {
      size_t pos = 0;
      out = piece;
      while ((pos = out.find(kSpaceMark, pos)) != std::string::npos) out.replace(pos, 3, " ");
      if (kind == kPieceNormal && out == "\n" && m.newline_id < 0) m.newline_id = id;
    }
  }
  for (int b = 0; b < 256; ++b) {
    if (m.byte_id[static_cast<size_t>(b)] < 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", b);
      throw std::runtime_error(name + ": the tokenizer has no byte-fallback piece " + hex +
                               ", so not every byte string can be represented; lorazip needs a "
                               "SentencePiece model trained with byte_fallback=true (lorazip prepare "
                               "trains one)");
    }
  }
  if (m.newline_id < 0) m.newline_id = m.byte_id['\n'];
  m.dummy_prefix = api.add_dummy_prefix(m.model_bytes.data(), m.model_bytes.size()) == 1;
  m.bos = api.special_id(m.handle, 1);
  m.eos = api.special_id(m.handle, 2);
  m.unk = api.special_id(m.handle, 0);
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view bytes) const {
  std::vector<int32_t> out;
  out.reserve(bytes.size() / 3 + 1);
  if (impl_->bpe) {
    impl_->bpe->encode(bytes, out);
    return out;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t start = 0;
  while (start <= n) {
    const void* nl = start < n ? std::memchr(p + start, '\n', n - start) : nullptr;
    const size_t end = nl ? static_cast<size_t>(static_cast<const unsigned char*>(nl) - p) : n;
    impl_->encode_line(p + start, end - start, out);
    if (!nl) break;
    out.push_back(impl_->newline_id);
    start = end + 1;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const { return decode(ids.data(), ids.size()); }

bool Tokenizer::trained_with_dummy_prefix() const { return impl_->dummy_prefix; }

std::vector<int32_t> Tokenizer::encode_native(std::string_view bytes, bool* dummy_prefix) const {
  *dummy_prefix = false;
  // Input that already starts with a space gets what the prefix would give ("▁word") without it;
  // the prefix would make that "▁▁word", which a model trained on stripped text rarely saw.
  if (impl_->dummy_prefix && !bytes.empty() && bytes[0] != ' ') {
    std::string spaced;
    spaced.reserve(bytes.size() + 1);
    spaced += ' ';
    spaced.append(bytes);
    std::vector<int32_t> ids = encode(spaced);
    // encode() is exact by construction; checked anyway, since the decoder relies on it.
    if (decode(ids) == spaced) {
      *dummy_prefix = true;
      return ids;
    }
  }
  return encode(bytes);
}

std::string Tokenizer::decode_native(const int32_t* ids, size_t n, bool dummy_prefix) const {
  std::string out = decode(ids, n);
  if (!dummy_prefix) return out;
  if (out.empty() || out[0] != ' ')
    throw std::runtime_error(impl_->name + ": tokens coded with the dummy prefix do not start with a space "
                             "(the file is corrupted or its dummy-prefix flag was altered)");
  return out.substr(1);
}

std::string Tokenizer::decode(const int32_t* ids, size_t n) const {
  std::string out;
  out.reserve(n * 4);
  const int32_t escape = impl_->bpe ? impl_->bpe->escape_id() : -1;
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] == escape && i + 1 < n) {  // a byte the BPE vocabulary has no token for
      const int b = impl_->bpe->escaped_byte(ids[i + 1]);
      if (b >= 0) {
        out += static_cast<char>(b);
        ++i;
        continue;
      }
    }
    out += piece_bytes(ids[i]);
  }
  return out;
}

const std::string& Tokenizer::piece_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->pieces.size())
    throw std::invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary of " +
                                impl_->name + " (size " + std::to_string(impl_->pieces.size()) + ")");
  return impl_->pieces[static_cast<size_t>(id)];
}

int Tokenizer::byte_id(uint8_t b) const { return impl_->byte_id[b]; }
int Tokenizer::vocab_size() const { return static_cast<int>(impl_->pieces.size()); }
int Tokenizer::bos_id() const { return impl_->bos; }
int Tokenizer::eos_id() const { return impl_->eos; }
int Tokenizer::unk_id() const { return impl_->unk; }

std::string Tokenizer::token_text(int32_t id) const {
  piece_bytes(id);  // range check, with its message
  const Impl& m = *impl_;
  if (m.bpe) return m.bpe->definition().tokens[static_cast<size_t>(id)];
  const char* text = nullptr;
  size_t len = 0;
  spm().piece(m.handle, id, &text, &len);
  return std::string(text, len);
}
const std::string& Tokenizer::sha256() const { return impl_->sha256; }
const std::string& Tokenizer::model_bytes() const {
  Impl& m = *impl_;
  if (m.bpe)
    std::call_once(m.bpe_json_once, [&] {
      if (m.model_bytes.empty()) m.model_bytes = write_tokenizer_json(m.bpe->definition());
    });
  return m.model_bytes;
}

void Tokenizer::train(const std::vector<std::string>& docs, const TokenizerTrainOptions& opt,
                      const std::string& out_path) {
  if (opt.model_type != "bpe" && opt.model_type != "unigram")
    throw std::invalid_argument("tokenizer model_type '" + opt.model_type + "': expected bpe or unigram");
  // 256 byte pieces + <unk>, <s>, </s> are always in the vocabulary.
  if (opt.vocab_size < 260)
    throw std::invalid_argument("tokenizer vocab_size " + std::to_string(opt.vocab_size) +
                                " is too small: 259 ids go to the 256 byte pieces, <unk>, <s> and </s>; use 300 or more");
  if (!(opt.character_coverage > 0.0 && opt.character_coverage <= 1.0))
    throw std::invalid_argument("tokenizer character_coverage must be in (0, 1], got " +
                                std::to_string(opt.character_coverage));
  if (opt.max_sentences <= 0 || opt.threads < 0)
    throw std::invalid_argument("tokenizer max_sentences must be > 0 and threads >= 0");

  // Sentences as SentencePiece will meet them at encode time: one line at a time, without the bytes
  // encode() spells as byte pieces (invalid UTF-8, U+2581, NUL), long spans cut at characters.
  std::vector<std::string_view> sentences;
  for (const std::string& doc : docs) {
    const auto* p = reinterpret_cast<const unsigned char*>(doc.data());
    size_t start = 0;
    while (start < doc.size()) {
      const void* nl = std::memchr(p + start, '\n', doc.size() - start);
      const size_t end = nl ? static_cast<size_t>(static_cast<const unsigned char*>(nl) - p) : doc.size();
      for_each_span(p + start, end - start, [&](size_t b, size_t e, bool text) {
        if (!text) return;
        b += start;
        e += start;
        while (b < e) {
          size_t cut = std::min(e, b + kMaxTrainSentence);
          while (cut < e && cut > b && (p[cut] & 0xC0) == 0x80) --cut;
          sentences.emplace_back(doc.data() + b, cut - b);
          b = cut;
        }
      });
      start = end + 1;
    }
  }
  if (sentences.empty())
    throw std::invalid_argument("tokenizer training for '" + out_path + "': the documents hold no text");

  // Deterministic sample when there are more lines than max_sentences (partial Fisher-Yates with
  // our own generator, then back into corpus order).
  const size_t cap = static_cast<size_t>(opt.max_sentences);
  if (sentences.size() > cap) {
    std::vector<size_t> idx(sentences.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    uint64_t s = opt.seed;
    for (size_t i = 0; i < cap; ++i) {
      const size_t j = i + static_cast<size_t>(splitmix64(s) % (idx.size() - i));
      std::swap(idx[i], idx[j]);
    }
    idx.resize(cap);
    std::sort(idx.begin(), idx.end());
    std::vector<std::string_view> picked;
    picked.reserve(cap);
    for (size_t i : idx) picked.push_back(sentences[i]);
    sentences.swap(picked);
  }

  const unsigned threads = opt.threads > 0 ? static_cast<unsigned>(opt.threads)
                                           : std::max(1u, std::thread::hardware_concurrency());
  const std::vector<std::pair<std::string, std::string>> kv = {
      {"model_type", opt.model_type},
      {"vocab_size", std::to_string(opt.vocab_size)},
      {"byte_fallback", "true"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"character_coverage", std::to_string(opt.character_coverage)},
      {"num_threads", std::to_string(threads)},
      {"max_sentence_length", std::to_string(2 * kMaxTrainSentence)},
      {"input_sentence_size", "0"},  // sampling is done above, deterministically
      {"shuffle_input_sentence", "false"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
  };
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : kv) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  std::vector<const char*> data;
  std::vector<size_t> lens;
  data.reserve(sentences.size());
  lens.reserve(sentences.size());
  for (std::string_view s : sentences) {
    data.push_back(s.data());
    lens.push_back(s.size());
  }
  uint32_t seed = static_cast<uint32_t>(opt.seed ^ (opt.seed >> 32));
  if (seed == 0xFFFFFFFFu) seed = 0;  // SentencePiece reserves -1 for "seed from the clock"

  const SpmApi& api = spm();
  char* model = nullptr;
  size_t model_len = 0;
  char* err = nullptr;
  if (api.train(keys.data(), values.data(), keys.size(), data.data(), lens.data(), data.size(), seed,
                opt.verbose ? 0 : 2, &model, &model_len, &err) != 0)
    throw std::runtime_error("training tokenizer '" + out_path + "' (" + opt.model_type + ", vocab " +
                             std::to_string(opt.vocab_size) + ", " + std::to_string(sentences.size()) +
                             " lines): " + take_error(err, "unknown error") +
                             " (a smaller vocab_size helps when the corpus is small)");
  std::string bytes(model, model_len);
  api.free_buffer(model);
  from_bytes(bytes, out_path);  // refuse to write a model that would not load
  write_file_atomic(out_path, bytes);
}

}  // namespace lorazip
