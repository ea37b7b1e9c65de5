// Writing and checked reading of the lorazip container (layout: docs/container-format.md).
// Reading never trusts a length: each is compared with the bytes that remain before anything is
// allocated or sliced, so a hostile file costs at most its own size in memory and time.
#include "codec/container.h"

#include <cstdio>
#include <stdexcept>

#include "codec/byte_io.h"
#include "codec/range_coder.h"
#include "common/hash.h"

namespace lorazip {
namespace {

// magic(4) + version(1) + header_len(4); the header body follows, then its 8-byte checksum.
constexpr size_t kPreambleBytes = 9;
constexpr size_t kChecksumBytes = 8;

// Builds with -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION (the fuzz target only) accept wrong
// checksums so that the fuzzer reaches the parsing and decoding behind them.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool kVerifyChecksums = false;
#else
constexpr bool kVerifyChecksums = true;
#endif

// ---- writing ----

// A fingerprint goes to disk as its 32 raw bytes after a length byte (0 = none, 32 = SHA-256).
void put_fingerprint(std::string& out, const std::string& hex) {
  out.push_back(static_cast<char>(hex.size() / 2));
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    auto nib = [](char ch) { return ch <= '9' ? ch - '0' : ch - 'a' + 10; };
    out.push_back(static_cast<char>(nib(hex[i]) * 16 + nib(hex[i + 1])));
  }
}

// ---- reading ----

// Reader: ByteReader (codec/byte_io.h) plus the 0-or-32-byte fingerprint field.
class Reader : public ByteReader {
 public:
  using ByteReader::ByteReader;
  std::string fingerprint(const char* field) {
    const uint8_t n = u8(field);
    if (n != 0 && n != 32) {
      fail(std::string("invalid header: field '") + field + "' has length " + std::to_string(n) +
           " (a SHA-256 fingerprint has 32 bytes, or 0 for none)");
    }
    const std::string_view raw = bytes(n, field);
    static const char* digits = "0123456789abcdef";
    std::string hex;
    for (char ch : raw) {
      const auto b = static_cast<uint8_t>(ch);
      hex.push_back(digits[b >> 4]);
      hex.push_back(digits[b & 15]);
    }
    return hex;
  }
};

bool is_fingerprint(const std::string& s) {
  if (s.empty()) return true;
  if (s.size() != 64) return false;
  for (char ch : s) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
}

// The field rules shared by serialize() and parse(); returns "" or what is wrong.
std::string field_problem(const Container& c) {
  auto fp = [](const char* field, const std::string& s) -> std::string {
    if (is_fingerprint(s)) return "";
    return std::string(field) + " is not a SHA-256 fingerprint (64 lowercase hex digits or empty): '" +
           s.substr(0, 80) + "'";
  };
  if (c.flags & kContainerRequiredFlagsMask & ~kContainerKnownRequiredFlags) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", c.flags);
    return std::string("flags ") + hex + " name features this lorazip does not know (file written by a newer version?)";
  }
  for (const auto& p : {fp("base_fingerprint", c.base_fingerprint),
                        fp("tokenizer_fingerprint", c.tokenizer_fingerprint),
                        fp("adapter_fingerprint", c.adapter_fingerprint)}) {
    if (!p.empty()) return p;
  }
  if (c.adapter_domain.size() > kMaxDomainBytes) {
    return "adapter_domain is " + std::to_string(c.adapter_domain.size()) + " bytes, limit " +
           std::to_string(kMaxDomainBytes);
  }
  const auto mode = static_cast<uint8_t>(c.adapter_mode);
  if (mode > static_cast<uint8_t>(AdapterMode::Unmerged)) {
    return "unknown adapter mode " + std::to_string(mode) + " (known: 0 none, 1 merged, 2 unmerged)";
  }
  if ((c.adapter_mode == AdapterMode::None) != c.adapter_fingerprint.empty()) {
    return "adapter mode '" + adapter_mode_name(c.adapter_mode) + "' does not agree with " +
           (c.adapter_fingerprint.empty() ? "an empty" : "a non-empty") + " adapter fingerprint";
  }
  if (c.arithmetic_version < 1 || c.arithmetic_version > 255) {
    return "arithmetic_version " + std::to_string(c.arithmetic_version) + " outside [1, 255]";
  }
  if (c.total_bits < 1 || c.total_bits > kMaxTotalBits) {
    return "total_bits " + std::to_string(c.total_bits) + " outside [1, " +
           std::to_string(kMaxTotalBits) + "]";
  }
  if (c.chunk_tokens < 1 || c.chunk_tokens > kMaxChunkTokens) {
    return "chunk_tokens " + std::to_string(c.chunk_tokens) + " outside [1, " +
           std::to_string(kMaxChunkTokens) + "]";
  }
  if (c.group_streams < 1 || c.group_streams > kMaxGroupStreams) {
    return "group_streams " + std::to_string(c.group_streams) + " outside [1, " +
           std::to_string(kMaxGroupStreams) + "]";
  }
  if (((c.flags & kFlagChunkContext) != 0) != (c.context_tokens > 0)) {
    return "flag bit 1 (chunk context) is " + std::string(c.flags & kFlagChunkContext ? "set" : "clear") +
           " but context_tokens is " + std::to_string(c.context_tokens) + " (the flag is set exactly when it is > 0)";
  }
  if (c.context_tokens < 0 || c.context_tokens >= c.chunk_tokens) {
    return "context_tokens " + std::to_string(c.context_tokens) + " outside [0, chunk_tokens - 1 = " +
           std::to_string(c.chunk_tokens - 1) + "]";
  }
  const bool conditioned = (c.flags & kFlagContext) != 0;
  if (conditioned == c.context_fingerprint.empty()) {
    return "flag bit 2 (context) is " + std::string(conditioned ? "set" : "clear") + " but context_fingerprint is " +
           (c.context_fingerprint.empty() ? "empty" : "present") + " (it is present exactly when the flag is set)";
  }
  if (const std::string p = fp("context_fingerprint", c.context_fingerprint); !p.empty()) return p;
  if (c.prefix_tokens < 0 || c.prefix_tokens >= c.chunk_tokens || (!conditioned && c.prefix_tokens != 0)) {
    return "prefix_tokens " + std::to_string(c.prefix_tokens) + " outside [0, chunk_tokens - 1 = " +
           std::to_string(c.chunk_tokens - 1) + "]" + (conditioned ? "" : " or set without flag bit 2 (context)");
  }
  return "";
}

// Parses and checks everything up to the end of the header checksum. Fills `c` (chunks with
// n_tokens only) and `sizes`; returns the offset where the payload section starts and sets
// `payload_bytes` and `payload_xxh64`.
size_t parse_header(std::string_view b, const std::string& name, Container& c,
                    std::vector<uint64_t>& sizes, uint64_t& payload_bytes, uint64_t& payload_xxh64) {
  auto fail = [&](const std::string& what) { throw std::runtime_error(name + ": " + what); };
  if (b.empty()) fail("truncated: the file is empty (not a lorazip file)");
  const size_t m = b.size() < 4 ? b.size() : 4;
  if (b.substr(0, m) != std::string_view(kContainerMagic, m)) {
    fail("not a lorazip file (bad magic: expected \"LRZP\")");
  }
  if (b.size() < 5) {
    fail("truncated: " + std::to_string(b.size()) + " bytes, shorter than the " +
         std::to_string(kPreambleBytes) + "-byte preamble");
  }
  const uint8_t version = static_cast<uint8_t>(b[4]);
  if (version == kCpuDependentContainerVersion) {
    fail("version 1: written by the CPU-dependent BLAS path of lorazip 0.1, whose files decode only on the "
         "machine type that wrote them; this lorazip does not read them (decompress it with lorazip 0.1 on such a "
         "machine, then compress it again)");
  }
  if (version != kContainerVersion) {
    fail("unsupported version " + std::to_string(version) + " (this lorazip reads version " +
         std::to_string(kContainerVersion) + "; a newer lorazip may read it)");
  }
  if (b.size() < kPreambleBytes) {
    fail("truncated: " + std::to_string(b.size()) + " bytes, shorter than the " +
         std::to_string(kPreambleBytes) + "-byte preamble");
  }
  Reader pre(b, 5, kPreambleBytes, name);
  const uint64_t header_len = pre.le(4, "header_len");
  const uint64_t have = b.size() - kPreambleBytes;
  if (header_len + kChecksumBytes > have) {
    fail("truncated: the header needs " + std::to_string(header_len + kChecksumBytes) +
         " bytes after the preamble, " + std::to_string(have) + " present");
  }
  const size_t header_end = kPreambleBytes + static_cast<size_t>(header_len);
  Reader sum(b, header_end, header_end + kChecksumBytes, name);
  const uint64_t stored = sum.le(8, "header_xxh64");
  if (kVerifyChecksums && stored != xxh64(b.data(), header_end)) {
    fail("header checksum mismatch (file corrupted)");
  }

  Reader r(b, kPreambleBytes, header_end, name);
  c.flags = static_cast<uint32_t>(r.le(4, "flags"));
  c.total_bits = r.u8("total_bits");
  c.adapter_mode = static_cast<AdapterMode>(r.u8("adapter_mode"));
  c.arithmetic_version = r.u8("arithmetic_version");
  // Bound before narrowing so that a huge varint cannot wrap into the allowed range.
  auto bounded = [&](const char* field, int64_t max) {
    const uint64_t v = r.varint(field);
    if (v < 1 || v > static_cast<uint64_t>(max)) {
      fail(std::string("invalid header: ") + field + " " + std::to_string(v) + " outside [1, " +
           std::to_string(max) + "]");
    }
    return static_cast<int64_t>(v);
  };
  c.chunk_tokens = bounded("chunk_tokens", kMaxChunkTokens);
  c.group_streams = bounded("group_streams", kMaxGroupStreams);
  c.original_bytes = r.varint("original_bytes");
  c.original_xxh64 = r.le(8, "original_xxh64");
  c.base_fingerprint = r.fingerprint("base_fingerprint");
  c.tokenizer_fingerprint = r.fingerprint("tokenizer_fingerprint");
  c.adapter_fingerprint = r.fingerprint("adapter_fingerprint");
  c.adapter_domain = r.str("adapter_domain", kMaxDomainBytes);
  // context_tokens and the context fingerprint are read after the chunk table; field_problem's
  // checks of them see placeholders until then.
  if (c.flags & kFlagChunkContext) c.context_tokens = 1;
  if (c.flags & kFlagContext) c.context_fingerprint = std::string(64, '0');
  std::string problem = field_problem(c);
  if (!problem.empty()) fail("invalid header: " + problem);

  payload_bytes = r.varint("payload_bytes");
  payload_xxh64 = r.le(8, "payload_xxh64");
  const uint64_t n_chunks = r.varint("n_chunks");
  // Each table entry takes at least two bytes, so the header itself bounds the count.
  if (n_chunks > r.left() / 2) {
    fail("invalid header: " + std::to_string(n_chunks) + " chunks cannot fit the " +
         std::to_string(r.left()) + " bytes left in the header");
  }
  c.chunks.assign(static_cast<size_t>(n_chunks), ContainerChunk{});
  sizes.assign(static_cast<size_t>(n_chunks), 0);
  uint64_t covered = 0;
  for (size_t i = 0; i < c.chunks.size(); ++i) {
    const uint64_t n_tokens = r.varint("chunk n_tokens");
    const uint64_t size = r.varint("chunk payload_len");
    if (n_tokens > static_cast<uint64_t>(c.chunk_tokens)) {
      fail("invalid header: chunk " + std::to_string(i) + " has " + std::to_string(n_tokens) +
           " tokens, more than the chunk limit " + std::to_string(c.chunk_tokens));
    }  // the tighter limit of chunks after the first is checked once context_tokens is read
    if (size > payload_bytes - covered) {
      fail("invalid header: chunk table exceeds the " + std::to_string(payload_bytes) +
           " payload bytes at chunk " + std::to_string(i));
    }
    c.chunks[i].n_tokens = static_cast<uint32_t>(n_tokens);
    sizes[i] = size;
    covered += size;
  }
  if (covered != payload_bytes) {
    fail("invalid header: the chunk table covers " + std::to_string(covered) +
         " payload bytes but the header says " + std::to_string(payload_bytes));
  }
  // The context's fingerprint and prefix length follow (after context_tokens, if any); field_problem
  // checked the flag bits with placeholders, the values are checked where they are read.
  if (c.flags & kFlagChunkContext) {
    const uint64_t w = r.varint("context_tokens");
    if (w < 1 || w >= static_cast<uint64_t>(c.chunk_tokens)) {
      fail("invalid header: context_tokens " + std::to_string(w) + " outside [1, chunk_tokens - 1 = " +
           std::to_string(c.chunk_tokens - 1) + "] while flag bit 1 (chunk context) is set");
    }
    c.context_tokens = static_cast<int64_t>(w);
    for (size_t i = 1; i < c.chunks.size(); ++i) {
      if (c.chunks[i].n_tokens > static_cast<uint64_t>(c.chunk_limit(i))) {
        fail("invalid header: chunk " + std::to_string(i) + " has " + std::to_string(c.chunks[i].n_tokens) +
             " tokens, more than chunk_tokens - context_tokens = " + std::to_string(c.chunk_limit(i)));
      }
    }
  }
  if (c.flags & kFlagContext) {
    c.context_fingerprint = r.fingerprint("context_fingerprint");
    if (c.context_fingerprint.empty()) fail("invalid header: flag bit 2 (context) is set but context_fingerprint is empty");
    const uint64_t p = r.varint("prefix_tokens");
    if (p >= static_cast<uint64_t>(c.chunk_tokens))
      fail("invalid header: prefix_tokens " + std::to_string(p) + " outside [0, chunk_tokens - 1 = " + std::to_string(c.chunk_tokens - 1) + "]");
    c.prefix_tokens = static_cast<int64_t>(p);
    if (!c.chunks.empty() && c.chunks[0].n_tokens > static_cast<uint64_t>(c.chunk_limit(0)))
      fail("invalid header: chunk 0 has " + std::to_string(c.chunks[0].n_tokens) +
           " tokens, more than chunk_tokens - prefix_tokens = " + std::to_string(c.chunk_limit(0)));
  }
  // Bytes left in the header body are fields of a later minor revision; version 2 skips them.
  return header_end + kChecksumBytes;
}

}  // namespace

std::string adapter_mode_name(AdapterMode m) {
  switch (m) {
    case AdapterMode::None: return "none";
    case AdapterMode::Merged: return "merged";
    case AdapterMode::Unmerged: return "unmerged";
  }
  return "unknown(" + std::to_string(static_cast<int>(m)) + ")";
}

uint64_t Container::total_tokens() const {
  uint64_t n = 0;
  for (const auto& ch : chunks) n += ch.n_tokens;
  return n;
}

uint64_t Container::payload_bytes() const {
  uint64_t n = 0;
  for (const auto& ch : chunks) n += ch.payload.size();
  return n;
}

std::string Container::serialize() const {
  const std::string problem = field_problem(*this);
  if (!problem.empty()) throw std::invalid_argument("Container::serialize: " + problem);
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (chunks[i].n_tokens > static_cast<uint64_t>(chunk_limit(i))) {
      throw std::invalid_argument("Container::serialize: chunk " + std::to_string(i) + " has " +
                                  std::to_string(chunks[i].n_tokens) + " tokens, more than its limit " +
                                  std::to_string(chunk_limit(i)) + " (chunk_tokens " + std::to_string(chunk_tokens) +
                                  ", context_tokens " + std::to_string(context_tokens) + ")");
    }
  }

  std::string body;
  put_le(body, flags, 4);
  put_u8(body, static_cast<uint8_t>(total_bits));
  put_u8(body, static_cast<uint8_t>(adapter_mode));
  put_u8(body, static_cast<uint8_t>(arithmetic_version));
  put_varint(body, static_cast<uint64_t>(chunk_tokens));
  put_varint(body, static_cast<uint64_t>(group_streams));
  put_varint(body, original_bytes);
  put_le(body, original_xxh64, 8);
  put_fingerprint(body, base_fingerprint);
  put_fingerprint(body, tokenizer_fingerprint);
  put_fingerprint(body, adapter_fingerprint);
  put_str(body, adapter_domain);

  std::string payloads;
  payloads.reserve(static_cast<size_t>(payload_bytes()));
  for (const auto& ch : chunks) payloads.append(ch.payload);
  put_varint(body, payloads.size());
  put_le(body, xxh64(payloads), 8);
  put_varint(body, chunks.size());
  for (const auto& ch : chunks) {
    put_varint(body, ch.n_tokens);
    put_varint(body, ch.payload.size());
  }
  if (flags & kFlagChunkContext) put_varint(body, static_cast<uint64_t>(context_tokens));
  if (flags & kFlagContext) {
    put_fingerprint(body, context_fingerprint);
    put_varint(body, static_cast<uint64_t>(prefix_tokens));
  }
  if (body.size() > 0xFFFFFFFFu) {
    throw std::invalid_argument("Container::serialize: header of " + std::to_string(body.size()) +
                                " bytes exceeds the 4 GiB limit (too many chunks)");
  }

  std::string out;
  out.reserve(kPreambleBytes + body.size() + kChecksumBytes + payloads.size());
  out.append(kContainerMagic, 4);
  put_u8(out, kContainerVersion);
  put_le(out, body.size(), 4);
  out.append(body);
  put_le(out, xxh64(out), 8);
  out.append(payloads);
  return out;
}

Container Container::parse_header_only(std::string_view bytes, const std::string& name,
                                       std::vector<uint64_t>* payload_sizes) {
  Container c;
  std::vector<uint64_t> sizes;
  uint64_t payload_bytes = 0, payload_xxh64 = 0;
  parse_header(bytes, name, c, sizes, payload_bytes, payload_xxh64);
  if (payload_sizes) *payload_sizes = std::move(sizes);
  return c;
}

Container Container::parse(std::string_view bytes, const std::string& name) {
  Container c;
  std::vector<uint64_t> sizes;
  uint64_t payload_bytes = 0, payload_xxh64 = 0;
  const size_t start = parse_header(bytes, name, c, sizes, payload_bytes, payload_xxh64);
  const uint64_t have = bytes.size() - start;
  if (have < payload_bytes) {
    throw std::runtime_error(name + ": truncated: the payload needs " + std::to_string(payload_bytes) +
                             " bytes, " + std::to_string(have) + " present");
  }
  if (have > payload_bytes) {
    throw std::runtime_error(name + ": " + std::to_string(have - payload_bytes) +
                             " unexpected bytes after the payload (file corrupted or concatenated)");
  }
  if (kVerifyChecksums && xxh64(bytes.data() + start, static_cast<size_t>(payload_bytes)) != payload_xxh64) {
    throw std::runtime_error(name + ": payload checksum mismatch (file corrupted)");
  }
  size_t pos = start;
  for (size_t i = 0; i < c.chunks.size(); ++i) {
    const size_t n = static_cast<size_t>(sizes[i]);
    c.chunks[i].payload.assign(bytes.data() + pos, n);
    pos += n;
  }
  return c;
}

}  // namespace lorazip
