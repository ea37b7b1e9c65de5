// Writing and checked reading of the compact single-file formats (versions 5, 4 and 3; layouts in
// docs/container-format.md). Like the version-2 reader, every length is compared with the bytes
// that remain before anything is sliced; a checksum over the whole file (version 3, and stored
// files of version 4) is verified before any field, a version-4 seal after decoding.
#include "codec/compact.h"

#include <cstdio>
#include <stdexcept>

#include "codec/byte_io.h"
#include "codec/container.h"
#include "common/hash.h"

namespace lorazip {
namespace {

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool kVerifyChecksums = false;  // the fuzz target reaches the fields behind the trailer
#else
constexpr bool kVerifyChecksums = true;
#endif

uint32_t hex_prefix(const std::string& hex, size_t digits) {
  if (hex.size() < digits) return 0;
  uint32_t v = 0;
  for (size_t i = 0; i < digits; ++i) {
    const char ch = hex[i];
    const int nib = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
    if (nib < 0) throw std::invalid_argument("fingerprint '" + hex.substr(0, 80) + "' is not hexadecimal");
    v = v * 16 + static_cast<uint32_t>(nib);
  }
  return v;
}

// Tags go to disk in the digest's own byte order (the first two bytes of the SHA-256).
void put_tag16(std::string& out, uint16_t tag) {
  put_u8(out, static_cast<uint8_t>(tag >> 8));
  put_u8(out, static_cast<uint8_t>(tag & 0xFF));
}
uint16_t read_tag16(ByteReader& r, const char* field) {
  const uint8_t hi = r.u8(field);
  return static_cast<uint16_t>(hi << 8 | r.u8(field));
}

std::string flags_hex(uint8_t f) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", f);
  return buf;
}

}  // namespace

uint16_t fingerprint_tag16(const std::string& hex) { return static_cast<uint16_t>(hex_prefix(hex, 4)); }
uint8_t fingerprint_tag8(const std::string& hex) { return static_cast<uint8_t>(hex_prefix(hex, 2)); }
uint16_t fingerprint_tag(const std::string& hex, int digits) {
  if (digits != 2 && digits != 4) throw std::invalid_argument("fingerprint_tag: " + std::to_string(digits) + " digits (2 or 4)");
  return static_cast<uint16_t>(hex_prefix(hex, static_cast<size_t>(digits)));
}
uint32_t check32(std::string_view bytes) { return static_cast<uint32_t>(xxh64(bytes) & 0xFFFFFFFFu); }

uint32_t compact_seal(std::string_view file_before_seal, std::string_view original) {
  return static_cast<uint32_t>(xxh64(original, xxh64(file_before_seal)) & 0xFFFFFFFFu);
}

int container_version(std::string_view b, const std::string& name) {
  if (b.empty()) throw std::runtime_error(name + ": truncated: the file is empty (not a lorazip file)");
  if (b[0] == kCompactMagic4) return kCompactVersion;
  if (b[0] == kCompactMagic5) return kCompactVersionContext;
  const size_t m = b.size() < 4 ? b.size() : 4;
  if (b.size() >= 4 && b.substr(0, 4) == std::string_view("LRZA", 4))  // kArchiveMagic (codec/archive.h)
    throw std::runtime_error(name + ": a lorazip archive, not a single compressed file (read it with `lorazip archive list|extract|test`)");
  if (b.substr(0, m) != std::string_view(kContainerMagic, m))
    throw std::runtime_error(name + ": not a lorazip file (bad magic: expected 0xFA, 0xFB or \"LRZP\")");
  if (b.size() < 5)
    throw std::runtime_error(name + ": truncated: " + std::to_string(b.size()) + " bytes, too short to hold the version byte");
  return static_cast<uint8_t>(b[4]);
}

std::string CompactFile::bytes_before_trailer() const {
  auto bad = [](const std::string& what) { return std::invalid_argument("CompactFile::serialize: " + what); };
  if (!is_compact_version(version)) throw bad("version " + std::to_string(version) + " is not 3, 4 or 5");
  const bool v4 = sealed_format();  // versions 4 and 5 share the layout; 5 adds the context tag
  if (version == kCompactVersionContext && stored) throw bad("a stored file needs no context (version 4, not 5)");
  std::string out;
  if (v4) {
    out.assign(1, version == kCompactVersionContext ? kCompactMagic5 : kCompactMagic4);
  } else {
    out.assign(kContainerMagic, 4);
    put_u8(out, kCompactVersionLegacy);
  }
  if (stored) {
    put_u8(out, kCompactStored);
    out.append(stored_bytes);
    return out;
  }
  const int max_arith = v4 ? kCompactMaxArithmetic4 : 255;
  if (arithmetic_version < 1 || arithmetic_version > max_arith)
    throw bad("arithmetic_version " + std::to_string(arithmetic_version) + " outside [1, " + std::to_string(max_arith) + "]");
  if (chunk_tokens < 0 || chunk_tokens > kMaxChunkTokens)
    throw bad("chunk_tokens " + std::to_string(chunk_tokens) + " outside [0 (model default), " + std::to_string(kMaxChunkTokens) + "]");
  if (chunk_tokens > 0 && (context_tokens < 0 || context_tokens >= chunk_tokens))
    throw bad("context_tokens " + std::to_string(context_tokens) + " outside [0, chunk_tokens - 1]");
  if ((n_tokens == 0) != chunks.empty())
    throw bad(std::to_string(n_tokens) + " tokens in " + std::to_string(chunks.size()) + " chunks (no tokens exactly when no chunks)");
  if (chunks.size() > n_tokens) throw bad("more chunks than tokens (every chunk codes at least one)");
  uint8_t flags = (dummy_prefix ? kCompactDummyPrefix : 0) | (has_adapter ? kCompactAdapter : 0) |
                  (chunk_tokens > 0 ? kCompactChunking : 0) | (chunks.size() > 1 ? kCompactMultiChunk : 0);
  if (v4) {
    put_u8(out, static_cast<uint8_t>(flags | arithmetic_version << kCompactArithmeticShift));
  } else {
    put_u8(out, flags);
    put_u8(out, static_cast<uint8_t>(arithmetic_version));
  }
  put_tag16(out, base_tag);
  put_u8(out, tokenizer_tag);
  if (has_adapter) {
    if (v4 && adapter_tag > 0xFF) throw bad("adapter_tag " + std::to_string(adapter_tag) + " is wider than version 4's 8 bits");
    if (v4) put_u8(out, static_cast<uint8_t>(adapter_tag));
    else put_tag16(out, adapter_tag);
  }
  if (version == kCompactVersionContext) put_tag16(out, context_tag);
  if (chunk_tokens > 0) {
    put_varint(out, static_cast<uint64_t>(chunk_tokens));
    put_varint(out, static_cast<uint64_t>(context_tokens));
  }
  if (!v4) put_varint(out, original_bytes);
  put_varint(out, n_tokens);
  if (!v4) put_le(out, original_check, 4);
  if (chunks.size() > 1) {
    put_varint(out, chunks.size() - 2);
    for (size_t i = 0; i + 1 < chunks.size(); ++i) put_varint(out, chunks[i].size());
  }
  for (const auto& p : chunks) out.append(p);
  return out;
}

std::string CompactFile::serialize() const {
  const bool sealed = sealed_format() && !stored;
  if (sealed && !seal)
    throw std::invalid_argument("CompactFile::serialize: a coded version-4 file has no seal (serialize_sealed(original) computes it)");
  std::string out = bytes_before_trailer();
  put_le(out, sealed ? *seal : check32(out), 4);
  return out;
}

std::string CompactFile::serialize_sealed(std::string_view original) const {
  if (!sealed_format() || stored) return serialize();
  std::string out = bytes_before_trailer();
  put_le(out, compact_seal(out, original), 4);
  return out;
}

uint32_t CompactFile::seal_for(std::string_view original) const {
  if (!sealed_format() || stored) throw std::invalid_argument("CompactFile::seal_for: only a coded version-4 or -5 file has a seal");
  return compact_seal(bytes_before_trailer(), original);
}

bool CompactFile::seal_matches(std::string_view file, std::string_view original) {
  if (file.size() < kCompactMinBytes4 || (file[0] != kCompactMagic4 && file[0] != kCompactMagic5)) return true;
  const size_t end = file.size() - kCompactTrailerBytes;
  uint32_t trailer = 0;
  for (size_t i = 0; i < kCompactTrailerBytes; ++i) trailer |= uint32_t{static_cast<uint8_t>(file[end + i])} << (8 * i);
  if (static_cast<uint8_t>(file[1]) & kCompactStored) return trailer == check32(file.substr(0, end));
  return trailer == compact_seal(file.substr(0, end), original);
}

CompactFile CompactFile::parse(std::string_view b, const std::string& name) {
  auto fail = [&](const std::string& what) { throw std::runtime_error(name + ": " + what); };
  const int version = container_version(b, name);
  if (!is_compact_version(version))
    fail("version " + std::to_string(version) + " is not a compact format (version " + std::to_string(kCompactVersionLegacy) + ", " +
         std::to_string(kCompactVersion) + " or " + std::to_string(kCompactVersionContext) + ")");
  const bool v4 = version != kCompactVersionLegacy;  // versions 4 and 5 share the layout
  const size_t min_bytes = v4 ? kCompactMinBytes4 : kCompactMinBytes;
  if (b.size() < min_bytes)
    fail("truncated: " + std::to_string(b.size()) + " bytes, shorter than the " + std::to_string(min_bytes) +
         "-byte minimum of a compact file (version " + std::to_string(version) + ")");
  const size_t end = b.size() - kCompactTrailerBytes;
  ByteReader trailer(b, end, b.size(), name);
  const uint32_t stored_check = static_cast<uint32_t>(trailer.le(4, v4 ? "seal" : "file_check"));

  CompactFile f;
  f.version = version;
  ByteReader r(b, v4 ? 1 : 5, end, name);
  const uint8_t byte = r.u8("flags");
  const uint8_t flags = v4 ? (byte & kCompactStored ? byte : static_cast<uint8_t>(byte & 0x0F)) : byte;
  // Version 3 has its file checksum over every byte; version 4 only for stored files (a coded
  // file's seal needs the decoded bytes).
  const bool whole_file_check = !v4 || (flags & kCompactStored);
  if (kVerifyChecksums && whole_file_check && stored_check != check32(b.substr(0, end)))
    fail("file checksum mismatch (file corrupted, truncated or concatenated)");
  // Version 4 has no spare bit (bits 4-6 hold the arithmetic version, and a stored file with any
  // of them set is refused below), so only version 3 can name unknown features.
  if (!v4 && (flags & ~kCompactKnownFlags))
    fail("flags " + flags_hex(flags) + " name features this lorazip does not know (file written by a newer version?)");
  if (flags & kCompactStored) {
    if (flags != kCompactStored) fail("invalid header: flags " + flags_hex(flags) + " combine 'stored' with coding flags");
    if (version == kCompactVersionContext) fail("invalid header: a stored file of version 5 (lorazip writes stored files as version 4)");
    f.stored = true;
    f.stored_bytes = std::string(r.bytes(r.left(), "stored bytes"));
    f.original_bytes = f.stored_bytes.size();
    f.original_check = check32(f.stored_bytes);
    return f;
  }
  f.dummy_prefix = flags & kCompactDummyPrefix;
  f.has_adapter = flags & kCompactAdapter;
  f.arithmetic_version = v4 ? byte >> kCompactArithmeticShift : r.u8("arithmetic_version");
  if (f.arithmetic_version < 1) fail("invalid header: arithmetic_version 0 outside [1, " + std::to_string(v4 ? kCompactMaxArithmetic4 : 255) + "]");
  f.base_tag = read_tag16(r, "base_tag");
  f.tokenizer_tag = r.u8("tokenizer_tag");
  if (f.has_adapter) f.adapter_tag = v4 ? r.u8("adapter_tag") : read_tag16(r, "adapter_tag");
  if (version == kCompactVersionContext) f.context_tag = read_tag16(r, "context_tag");
  if (flags & kCompactChunking) {
    f.chunk_tokens = static_cast<int64_t>(r.varint_in("chunk_tokens", 1, static_cast<uint64_t>(kMaxChunkTokens)));
    f.context_tokens = static_cast<int64_t>(r.varint_in("context_tokens", 0, static_cast<uint64_t>(f.chunk_tokens - 1)));
  }
  if (!v4) f.original_bytes = r.varint("original_bytes");
  f.n_tokens = r.varint("n_tokens");
  if (!v4) f.original_check = static_cast<uint32_t>(r.le(4, "original_check"));
  if (v4) f.seal = stored_check;
  uint64_t n_chunks = f.n_tokens == 0 ? 0 : 1;
  if (flags & kCompactMultiChunk) {
    // Each of the n_chunks - 1 lengths takes at least one byte, so the file bounds the count.
    const uint64_t extra = r.varint("n_chunks");
    if (extra >= r.left()) fail("invalid header: " + std::to_string(extra) + " + 2 chunks cannot fit the " + std::to_string(r.left()) + " bytes left");
    n_chunks = extra + 2;
    if (n_chunks > f.n_tokens)
      fail("invalid header: " + std::to_string(n_chunks) + " chunks for " + std::to_string(f.n_tokens) + " tokens (every chunk codes at least one)");
  }
  std::vector<uint64_t> sizes;
  for (uint64_t i = 0; i + 1 < n_chunks; ++i) sizes.push_back(r.varint("chunk payload_len"));
  uint64_t listed = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] > r.left() - listed) fail("invalid header: chunk " + std::to_string(i) + "'s payload runs past the end of the file");
    listed += sizes[i];
  }
  if (n_chunks == 0 && r.left() > 0)
    fail(std::to_string(r.left()) + " unexpected bytes after the header of a file without tokens (file corrupted or concatenated)");
  for (uint64_t s : sizes) f.chunks.emplace_back(r.bytes(static_cast<size_t>(s), "chunk payload"));
  if (n_chunks > 0) f.chunks.emplace_back(r.bytes(r.left(), "chunk payload"));
  return f;
}

}  // namespace lorazip
