// lorazip's compressed-file container: what a file was coded with (fingerprints of base model,
// adapter and tokenizer; coder parameters), the original length and checksum, and the table of
// independently coded chunks. The byte layout is specified in docs/container-format.md.
//
// parse() treats its input as hostile: every length is bounded by the bytes actually present,
// every count by what those bytes could hold, both checksums are verified before any payload is
// handed out, and every refusal is a std::runtime_error that names the file and the problem.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lorazip {

constexpr char kContainerMagic[4] = {'L', 'R', 'Z', 'P'};
constexpr uint8_t kContainerVersion = 2;
// Version 1 was written by lorazip 0.1's BLAS path, whose floats depended on the CPU and BLAS;
// parse() refuses it with a message that says so.
constexpr uint8_t kCpuDependentContainerVersion = 1;

// Flag bits 0..15 name features a reader must understand (a file with a bit set that this reader
// does not know is refused); bits 16..31 are hints a reader may ignore.
constexpr uint32_t kContainerRequiredFlagsMask = 0x0000FFFFu;
// Bit 0: the tokens spell U+0020 followed by the input (the SentencePiece model's dummy prefix, as
// it was trained); the decoder drops that first space.
constexpr uint32_t kFlagDummyPrefix = 1u << 0;
// Bit 1: chunks after the first continue from the document's previous `context_tokens` tokens;
// the header then holds the context_tokens field after the chunk table.
constexpr uint32_t kFlagChunkContext = 1u << 1;
// Bit 2: the document was coded given a context both sides hold (a prompt rendered in the model's
// chat template): its first `prefix_tokens` tokens fill the first chunk's stream after BOS, uncoded.
// The header then holds context_fingerprint and prefix_tokens after the chunk context (if any).
constexpr uint32_t kFlagContext = 1u << 2;
// Bit 8: the adapter was chosen from the document's prompt (cluster/router.h); adapter_fingerprint
// then holds the adapter set's identity (router + adapters), not one adapter's, and the decoder
// repeats the choice from the prompt. (Bits 2..7 are left for the container's own features.)
constexpr uint32_t kFlagPromptRouted = 1u << 8;
constexpr uint32_t kContainerKnownRequiredFlags = kFlagDummyPrefix | kFlagChunkContext | kFlagContext | kFlagPromptRouted;

// How the adapter took part in coding (it changes the floats, so the decoder must do the same).
enum class AdapterMode : uint8_t {
  None = 0,       // base model alone; adapter_fingerprint is empty
  Merged = 1,     // LoRA weights merged into the base weights before coding
  Unmerged = 2,   // LoRA applied beside the frozen base weights at every step
};
std::string adapter_mode_name(AdapterMode m);  // "none", "merged", "unmerged"

// Bounds that parse() and serialize() enforce.
constexpr int64_t kMaxChunkTokens = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxGroupStreams = int64_t{1} << 20;
constexpr size_t kMaxDomainBytes = 255;

struct ContainerChunk {
  uint32_t n_tokens = 0;  // tokens coded in this chunk (limits: Container::chunk_limit)
  std::string payload;    // the range coder's bytes for this chunk
};

struct Container {
  uint32_t flags = 0;                 // see kContainerRequiredFlagsMask
  std::string base_fingerprint;       // SHA-256, 64 lowercase hex digits, or empty
  std::string tokenizer_fingerprint;  // same form
  std::string adapter_fingerprint;    // same form; empty exactly when adapter_mode is None
  std::string adapter_domain;         // informational, <= 255 bytes, may be empty
  AdapterMode adapter_mode = AdapterMode::None;
  int arithmetic_version = 0;         // the engine arithmetic the probabilities follow, 1..255
  int total_bits = 0;                 // frequency total 2^total_bits, 1..kMaxTotalBits
  int64_t chunk_tokens = 0;           // positions a stream may use (context + coded tokens), 1..kMaxChunkTokens
  int64_t context_tokens = 0;         // W: tokens chunk i > 0 starts from, 0..chunk_tokens-1; > 0 exactly
                                      // when kFlagChunkContext is set. Chunk 0 codes <= chunk_tokens
                                      // tokens, later chunks <= chunk_tokens - W.
  std::string context_fingerprint;    // kFlagContext: SHA-256 of the context's tokens (context_fingerprint()
                                      // of codec/lm_codec.h); else empty
  int64_t prefix_tokens = 0;          // kFlagContext: context tokens chunk 0's stream reads after BOS,
                                      // 0..chunk_tokens-1; chunk 0 then codes <= chunk_tokens - prefix_tokens
  int64_t group_streams = 0;          // streams coded together per batch group, 1..kMaxGroupStreams
  uint64_t original_bytes = 0;        // length of the original input
  uint64_t original_xxh64 = 0;        // xxh64 (seed 0) of the original input
  std::vector<ContainerChunk> chunks;

  uint64_t total_tokens() const;
  // Most tokens chunk i may code: chunk_tokens - prefix_tokens for chunk 0, chunk_tokens -
  // context_tokens after it.
  int64_t chunk_limit(size_t i) const { return i == 0 ? chunk_tokens - prefix_tokens : chunk_tokens - context_tokens; }
  uint64_t payload_bytes() const;  // sum of the chunks' payload sizes

  // The file's bytes. std::invalid_argument (naming the field) when a field is out of the bounds
  // above, so that everything serialize() writes, parse() accepts. Same container, same bytes.
  std::string serialize() const;

  // The whole file. std::runtime_error("<name>: ...") for anything malformed: bad magic,
  // unsupported version, truncation, trailing bytes, a checksum mismatch, a field out of bounds,
  // a chunk table that does not match the payload bytes.
  static Container parse(std::string_view bytes, const std::string& name);

  // The header alone (for `lorazip info`): `bytes` may stop anywhere after the header checksum.
  // Checks everything parse() checks except the payload bytes and their checksum; the chunks
  // come back with n_tokens set and empty payloads, their sizes in *payload_sizes if given.
  static Container parse_header_only(std::string_view bytes, const std::string& name,
                                     std::vector<uint64_t>* payload_sizes = nullptr);
};

}  // namespace lorazip
