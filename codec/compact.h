// lorazip's compact single-file formats. Version 4 (written by default): a 1-byte magic, one byte of
// flags that also holds the engine arithmetic version, short identity tags instead of full
// fingerprints (the first bytes of the base's, tokenizer's and adapter's SHA-256, resolved against
// the models the reader is given), the token count, the chunk table reduced to what the model's
// chunk plan cannot recompute, the payload, and one 32-bit seal over the file's bytes and the
// decoded input, checked after decoding. Version 3 (read, and what members of version-1 archives expand
// to) spends 12 more bytes with an adapter: a 4-byte magic and a version byte, a 16-bit adapter
// tag, the input's length, and separate content and file checksums. A "stored" file holds the input itself (the fallback when the
// model's code is longer). Layouts, refusals and trade-offs: docs/container-format.md ("Compact
// files").
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lorazip {

constexpr uint8_t kCompactVersion = 4;        // what `lorazip compress` writes
constexpr uint8_t kCompactVersionLegacy = 3;  // read; members of version-1 archives expand to it
constexpr char kCompactMagic4 = '\xFA';  // version 4's first byte (0xFA never occurs in UTF-8 text)
// Version 5: version 4 coded given a context (container flag bit 2), with the first two bytes of the
// context's fingerprint after the adapter tag. Written only for such files (a stored one needs no
// context and stays version 4).
constexpr uint8_t kCompactVersionContext = 5;
constexpr char kCompactMagic5 = '\xFB';  // version 5's first byte (0xFB never occurs in UTF-8 text either)
// Flag bits (byte 5 of version 3, byte 2 of version 4). A reader refuses any bit it does not know.
// Version 4 keeps the engine arithmetic version (1..7) in bits 4-6 of the same byte.
constexpr uint8_t kCompactDummyPrefix = 1u << 0;  // tokens spell U+0020 + the input (container flag bit 0)
constexpr uint8_t kCompactAdapter = 1u << 1;      // coded with an adapter: adapter_tag follows tokenizer_tag
constexpr uint8_t kCompactChunking = 1u << 2;     // chunk_tokens and context_tokens are written (else the model's defaults)
constexpr uint8_t kCompactMultiChunk = 1u << 3;   // two or more chunks: their count and all but the last length are written
constexpr uint8_t kCompactStored = 1u << 7;       // the payload is the input itself; no other bit may be set
constexpr uint8_t kCompactKnownFlags =
    kCompactDummyPrefix | kCompactAdapter | kCompactChunking | kCompactMultiChunk | kCompactStored;
constexpr uint8_t kCompactArithmeticShift = 4;  // version 4: arithmetic version in bits 4-6
constexpr int kCompactMaxArithmetic4 = 7;
constexpr size_t kCompactTrailerBytes = 4;  // version 3: file checksum; version 4: the seal
constexpr size_t kCompactMinBytes = 4 + 1 + 1 + kCompactTrailerBytes;  // version 3: magic, version, flags, trailer
constexpr size_t kCompactMinBytes4 = 1 + 1 + kCompactTrailerBytes;      // version 4: magic, flags, trailer

// The identity tags: the first 2 (base, adapter) or 1 (tokenizer) bytes of a SHA-256 fingerprint
// given as 64 hex digits; 0 for an empty fingerprint.
uint16_t fingerprint_tag16(const std::string& hex);
uint8_t fingerprint_tag8(const std::string& hex);
// The first `digits` hex digits (2 or 4) of a fingerprint as a number; 0 for an empty one.
uint16_t fingerprint_tag(const std::string& hex, int digits);
// Low 32 bits of xxh64: the compact file's content and file checksums.
uint32_t check32(std::string_view bytes);

// Version 4's seal: the low 32 bits of xxh64(original, seed = xxh64(every file byte before the
// seal)). It binds the header, the payload and what they decode to: corruption, truncation,
// appended bytes, and a decoder whose model or arithmetic differs all fail it (each missed with
// probability 2^-32). A stored file's seal is check32 of every byte before it.
uint32_t compact_seal(std::string_view file_before_seal, std::string_view original);

struct CompactFile {
  int version = kCompactVersion;  // 4, 5 (kCompactVersionContext: has a context tag), or 3 (kCompactVersionLegacy)
  bool stored = false;          // payload = the original bytes (then only `stored_bytes` matters)
  std::string stored_bytes;
  bool dummy_prefix = false;
  int arithmetic_version = 0;   // 1..255 (version 4: 1..7)
  uint16_t base_tag = 0;
  uint8_t tokenizer_tag = 0;
  bool has_adapter = false;
  uint16_t adapter_tag = 0;      // version 3: 16 bits of the adapter's fingerprint; version 4: 8 bits
  uint16_t context_tag = 0;      // version 5: 16 bits of the context's fingerprint (fingerprint_tag16)
  // 0: the model's defaults (chunk = context length - 1, W = chunk / 4); else 1..2^31-1 with
  // context_tokens in [0, chunk_tokens - 1].
  int64_t chunk_tokens = 0;
  int64_t context_tokens = 0;
  uint64_t original_bytes = 0;   // version 3 and stored files only (version 4 does not record it)
  uint64_t n_tokens = 0;         // tokens coded, all chunks; chunk spans follow plan_chunks()
  uint32_t original_check = 0;   // version 3: check32 of the original
  std::optional<uint32_t> seal;  // version 4, coded: the trailer (compact_seal); parse() sets it
  std::vector<std::string> chunks;  // range-coder payloads, in order; empty exactly when n_tokens is 0

  // std::invalid_argument (naming the field) for anything parse() would refuse. A coded version-4
  // file gets `seal` as its trailer and is refused without one: serialize_sealed() computes it.
  std::string serialize() const;
  // Version 4, coded: the file with its seal computed over its bytes and `original` (what the
  // compressor writes; `seal` is ignored). Other files: serialize().
  std::string serialize_sealed(std::string_view original) const;
  // Version 4, coded: the seal serialize_sealed(original) writes (compact_seal over its bytes).
  uint32_t seal_for(std::string_view original) const;
  // std::runtime_error("<name>: ...") for anything malformed (see docs/container-format.md). A
  // version-4 coded file's seal can only be checked after decoding: seal_matches().
  static CompactFile parse(std::string_view bytes, const std::string& name);
  // Version 4: whether `file`'s seal is the one for `original` (true for files of other kinds).
  static bool seal_matches(std::string_view file, std::string_view original);
  // Hex digits of the adapter tag in this version (4 in version 3, 2 in version 4) and the tag an
  // adapter with fingerprint `hex` has in it.
  int adapter_tag_digits() const { return version == kCompactVersionLegacy ? 4 : 2; }
  bool sealed_format() const { return version == kCompactVersion || version == kCompactVersionContext; }  // 4 and 5
  uint16_t adapter_tag_for(const std::string& hex) const { return fingerprint_tag(hex, adapter_tag_digits()); }

 private:
  // Every byte before the trailer (version 3's file checksum, version 4's seal).
  std::string bytes_before_trailer() const;
};

// 5, 4 or 3 for a compact file, 2 for a full container (parse it with Container::parse), after the
// checks all share (empty, bad magic, too short to hold the version byte); any other version byte
// after "LRZP" is returned as it is and left for Container::parse to refuse with its message.
int container_version(std::string_view bytes, const std::string& name);
inline bool is_compact_version(int v) {
  return v == kCompactVersion || v == kCompactVersionContext || v == kCompactVersionLegacy;
}

}  // namespace lorazip
