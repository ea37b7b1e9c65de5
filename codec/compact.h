// lorazip's compact single-file format (container version 3): the same magic as version 2, then
// one flags byte, short identity tags instead of full fingerprints (the first bytes of the base's,
// tokenizer's and adapter's SHA-256, resolved against the models the reader is given), the chunk
// table reduced to what the model's chunk plan cannot recompute, and a 32-bit checksum of the
// whole file at its end. A "stored" file holds the input itself (the fallback when the model's
// code is longer). Layout, refusals and trade-offs: docs/container-format.md ("Compact files").
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lorazip {

constexpr uint8_t kCompactVersion = 3;
// Flag bits of byte 5. A reader refuses any bit it does not know.
constexpr uint8_t kCompactDummyPrefix = 1u << 0;  // tokens spell U+0020 + the input (container flag bit 0)
constexpr uint8_t kCompactAdapter = 1u << 1;      // coded with an adapter: adapter_tag follows tokenizer_tag
constexpr uint8_t kCompactChunking = 1u << 2;     // chunk_tokens and context_tokens are written (else the model's defaults)
constexpr uint8_t kCompactMultiChunk = 1u << 3;   // two or more chunks: their count and all but the last length are written
constexpr uint8_t kCompactStored = 1u << 7;       // the payload is the input itself; no other bit may be set
constexpr uint8_t kCompactKnownFlags =
    kCompactDummyPrefix | kCompactAdapter | kCompactChunking | kCompactMultiChunk | kCompactStored;
constexpr size_t kCompactTrailerBytes = 4;  // low 32 bits of xxh64 of every byte before them
constexpr size_t kCompactMinBytes = 4 + 1 + 1 + kCompactTrailerBytes;  // magic, version, flags, trailer

// The identity tags: the first 2 (base, adapter) or 1 (tokenizer) bytes of a SHA-256 fingerprint
// given as 64 hex digits; 0 for an empty fingerprint.
uint16_t fingerprint_tag16(const std::string& hex);
uint8_t fingerprint_tag8(const std::string& hex);
// Low 32 bits of xxh64: the compact file's content and file checksums.
uint32_t check32(std::string_view bytes);

struct CompactFile {
  bool stored = false;          // payload = the original bytes (then only `stored_bytes` matters)
  std::string stored_bytes;
  bool dummy_prefix = false;
  int arithmetic_version = 0;   // 1..255
  uint16_t base_tag = 0;
  uint8_t tokenizer_tag = 0;
  bool has_adapter = false;
  uint16_t adapter_tag = 0;
  // 0: the model's defaults (chunk = context length - 1, W = chunk / 4); else 1..2^31-1 with
  // context_tokens in [0, chunk_tokens - 1].
  int64_t chunk_tokens = 0;
  int64_t context_tokens = 0;
  uint64_t original_bytes = 0;
  uint64_t n_tokens = 0;         // tokens coded, all chunks; chunk spans follow plan_chunks()
  uint32_t original_check = 0;   // check32 of the original
  std::vector<std::string> chunks;  // range-coder payloads, in order; empty exactly when n_tokens is 0

  // std::invalid_argument (naming the field) for anything parse() would refuse.
  std::string serialize() const;
  // std::runtime_error("<name>: ...") for anything malformed (see docs/container-format.md).
  static CompactFile parse(std::string_view bytes, const std::string& name);
};

// 3 for a compact file, 2 for a full container (parse it with Container::parse), after the checks
// both share (empty, bad magic, too short to hold the version byte); any other version byte is
// returned as it is and left for Container::parse to refuse with its message.
int container_version(std::string_view bytes, const std::string& name);

}  // namespace lorazip
