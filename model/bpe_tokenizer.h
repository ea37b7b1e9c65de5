// Byte-level BPE (GPT-2 style) tokenizer, torch-free: the second backend of lorazip::Tokenizer.
// Built from plain inputs (BpeDefinition: what a GGUF's tokenizer.ggml.* keys hold) or from a
// Hugging Face tokenizer.json. Pre-tokenizes like llama.cpp (gpt2, smollm, llama-bpe), merges like
// llama.cpp, and is lossless: decode(encode(b)) == b for every byte string (docs/tokenizer.md).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lorazip {

// Token types as GGUF's tokenizer.ggml.token_type stores them.
enum BpeTokenType : int32_t {
  kBpeNormal = 1,       // GPT-2 symbol text; produced by merges
  kBpeUnknown = 2,      // never produced; decodes to nothing
  kBpeControl = 3,      // <|endoftext|> etc.: never produced from text; decodes to nothing
  kBpeUserDefined = 4,  // raw text, split out of the input before pre-tokenization (as llama.cpp)
  kBpeUnused = 5,       // never produced; decodes to nothing
  kBpeByte = 6,         // like normal
};

// Everything a byte-level BPE tokenizer is made of, in GGUF's terms (tokenizer.ggml.*). The GGUF
// loader fills it from the file's metadata; parse_tokenizer_json fills it from a tokenizer.json.
struct BpeDefinition {
  std::vector<std::string> tokens;  // id -> text: GPT-2 byte-to-unicode symbols for normal/byte
                                    // tokens ("Ġthe"), raw text for user-defined/control ones
  std::vector<int32_t> types;       // id -> BpeTokenType (1..6); same length as tokens
  std::vector<std::string> merges;  // "left right", split at the first space at index >= 1; rank = index
  int32_t bos_id = -1;              // tokenizer.ggml.bos_token_id; -1 = none
  int32_t eos_id = -1;              // tokenizer.ggml.eos_token_id; -1 = none
  bool add_bos = false;             // tokenizer.ggml.add_bos_token; recorded only (encode never adds BOS)
  std::string pre = "gpt2";         // tokenizer.ggml.pre: gpt2, smollm or llama-bpe (or an alias of one)
  std::optional<bool> ignore_merges;  // a pre-token that is itself a token is taken whole; unset = as
                                      // llama.cpp decides from `pre` (true for llama-bpe only)
};

// The pre-tokenizers (llama.cpp's names; aliases in parse_bpe_pre).
enum class BpePre {
  kGpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
  kSmolLM,  // \p{N} (every digit alone), then kGpt2's pattern on each piece
  kLlama3,  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
};
// Accepts gpt2 (llama.cpp's gpt-2), smollm (starcoder, refact, command-r, codeshell, exaone, minerva-7b)
// and llama-bpe (llama3, llama-v3) -- the names llama.cpp maps onto these same splitters. Throws
// std::runtime_error naming `pre` and the accepted names otherwise.
BpePre parse_bpe_pre(const std::string& pre);
const char* bpe_pre_name(BpePre pre);  // canonical: "gpt2", "smollm", "llama-bpe"

// Splits `text` into pre-tokens the way llama.cpp does; the pieces concatenate to `text` exactly.
// Bytes that are not well-formed UTF-8 are each a unit of their own, classed as U+FFFD (a symbol).
std::vector<std::string_view> bpe_pretokenize(BpePre pre, std::string_view text);

// Hugging Face tokenizer.json <-> BpeDefinition. Parsing refuses (std::runtime_error naming `name`
// and the key) anything it cannot reproduce exactly: a normalizer, a pre_tokenizer it does not
// recognise as one of BpePre, byte_fallback, subword prefixes/suffixes, dropout, gaps in the ids.
// bos/eos/add_bos come from lorazip's own "lorazip" key when present (write_tokenizer_json writes it
// inside "model", where Hugging Face's tokenizers library accepts it; a top-level one, as lorazip
// wrote before, is read too), else none.
BpeDefinition parse_tokenizer_json(std::string_view json, const std::string& name);
std::string write_tokenizer_json(const BpeDefinition& def);

// The byte string the fingerprint (Tokenizer::sha256) is taken of: a versioned, length-prefixed
// serialization of the definition with `pre` and `ignore_merges` resolved (docs/tokenizer.md).
std::string bpe_canonical_bytes(const BpeDefinition& def);

// The encoder built from a definition. Construction validates the definition and throws
// std::runtime_error naming `name` (types out of range, bos/eos out of range, malformed merges,
// token text that is not UTF-8, a byte with no token when no escape token is available).
//
// Bytes without a token of their own. Real vocabularies lack some byte symbols (SmolLM2's lacks 21:
// 0x04 0x06 0x13 0x14 0x16 0x1D 0xC0 0xC1 0xF1 0xF2 0xF5..0xFF), and llama.cpp silently drops such
// bytes. lorazip instead spells the k-th missing byte (ascending) as two tokens: the escape token
// (the highest-id control/unknown/unused token that is neither bos nor eos; encode never produces
// it otherwise) followed by the byte token of the k-th present byte (ascending). decode_escape()
// undoes that pair; every other id decodes by table lookup.
class BpeEncoder {
 public:
  BpeEncoder(BpeDefinition def, std::string name);

  // Appends the ids of `bytes`. Never produces control/unknown/unused tokens; user-defined tokens
  // only where their exact text occurs. Thread-safe (const, no shared mutable state).
  void encode(std::string_view bytes, std::vector<int32_t>& out) const;

  const BpeDefinition& definition() const { return def_; }  // pre and ignore_merges resolved
  BpePre pre() const { return pre_; }
  const std::vector<std::string>& piece_bytes() const { return piece_bytes_; }  // id -> exact bytes
  int32_t byte_id(uint8_t b) const { return byte_token_[b]; }  // -1 for a missing byte
  int32_t escape_id() const { return escape_id_; }              // -1 when no byte is missing
  // The missing byte that (escape_id(), id) stands for, or -1 when `id` does not follow an escape.
  int escaped_byte(int32_t id) const;

 private:
  struct MergeRule {
    int32_t rank;
    int32_t merged;  // symbol id of left + right
  };
  struct UserToken {
    std::string text;
    int32_t id;
  };
  struct Scratch;

  void encode_text(const unsigned char* p, size_t n, Scratch& s, std::vector<int32_t>& out) const;
  void encode_piece(const unsigned char* p, size_t n, Scratch& s, std::vector<int32_t>& out) const;
  void emit_byte(unsigned char b, std::vector<int32_t>& out) const;
  int32_t intern(const std::string& bytes, std::unordered_map<std::string, int32_t>& index);

  BpeDefinition def_;
  std::string name_;
  BpePre pre_ = BpePre::kGpt2;
  bool ignore_merges_ = false;
  std::vector<std::string> piece_bytes_;             // token id -> exact bytes
  std::array<int32_t, 256> byte_token_{};            // byte -> token id, -1 when missing
  int32_t escape_id_ = -1;
  std::array<int32_t, 256> escape_second_{};         // missing byte -> the token after the escape
  std::unordered_map<int32_t, uint8_t> escaped_;     // that token -> the missing byte
  std::vector<std::string> symbols_;                 // symbol id -> raw bytes (0..255: single bytes)
  std::vector<int32_t> symbol_token_;                // symbol id -> token id, or -1
  std::unordered_map<uint64_t, MergeRule> merges_;   // (left symbol << 32 | right symbol) -> rule
  std::unordered_map<std::string, int32_t> token_of_bytes_;  // exact bytes -> normal/byte token
  std::vector<UserToken> user_tokens_;               // longest first, then lowest id
};

}  // namespace lorazip
