// lorazip's tokenizer: SentencePiece (tokenizer.model) or byte-level BPE (tokenizer.json, or a GGUF's
// tokenizer.ggml.* through from_bpe), each with a lossless layer. Torch-free.
//
// SentencePiece and libtorch cannot share a process's symbol space (Debian's libsentencepiece
// exports its own protobuf 3.14 and libtorch links protobuf 3.21), so SentencePiece lives in
// lorazip's own small shared library (liblorazip_spm.so, C interface) opened with
// dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND).
//
// Lossless guarantee: decode(encode(b)) == b for EVERY byte string b (invalid UTF-8, NULs,
// whitespace runs, leading spaces, the empty string). decode() is a pure table lookup
// (SentencePiece: piece text with U+2581 -> ' ', byte pieces <0xXX> -> that byte; BPE: GPT-2
// symbols -> their bytes); it never calls SentencePiece. The BPE backend never needs
// liblorazip_spm.so (model/bpe_tokenizer.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lorazip {

struct BpeDefinition;  // model/bpe_tokenizer.h

struct TokenizerTrainOptions {
  int vocab_size = 4096;
  std::string model_type = "bpe";  // "bpe" or "unigram"
  double character_coverage = 0.9995;
  int64_t max_sentences = 2000000;    // cap on training lines fed to SentencePiece
  int threads = 0;                    // 0 = all cores
  uint64_t seed = 0;                  // picks the sample when there are more lines than max_sentences
  bool verbose = false;               // let SentencePiece's trainer print its progress to stderr
};

class Tokenizer {
 public:
  // Loads any SentencePiece tokenizer.model (Llama-family included) or a byte-level BPE
  // tokenizer.json (told apart by content: JSON starts with '{'). Throws std::runtime_error naming
  // the file when it cannot be read or parsed, or when not every byte can be represented (no
  // byte-fallback pieces; a BPE vocabulary without all 256 byte symbols).
  static Tokenizer load(const std::string& model_path);
  static Tokenizer from_bytes(std::string model_bytes, const std::string& name);
  // Byte-level BPE from plain inputs (what a GGUF's tokenizer.ggml.* keys hold). `name` labels
  // messages. Throws std::runtime_error when the definition is unusable (see BpeEncoder).
  static Tokenizer from_bpe(BpeDefinition def, const std::string& name);
  // The file name model_bytes() belong under in a model directory: "tokenizer.json" for BPE,
  // "tokenizer.model" for SentencePiece.
  static const char* model_file_name(std::string_view model_bytes);

  // Trains a BPE/unigram model with byte fallback on `docs` and writes it atomically to out_path.
  static void train(const std::vector<std::string>& docs, const TokenizerTrainOptions& opt,
                    const std::string& out_path);

  std::vector<int32_t> encode(std::string_view bytes) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string decode(const int32_t* ids, size_t n) const;

  // Tokenization as the model was trained, wherever it is lossless: a SentencePiece model trained
  // with a dummy prefix (add_dummy_prefix, Llama's and llama2.c's default) sees " " + bytes, so the
  // first word gets the "▁word" piece it was trained on; *dummy_prefix says so. Falls back to
  // encode(bytes) (*dummy_prefix false) for the empty input, a model without the prefix, the BPE
  // backend (already native: byte-level BPE adds no prefix), input that starts with a space (it
  // already gives the model "▁word"; the prefix would make it "▁▁word") and, defensively, whenever decoding
  // would not give back exactly " " + bytes. decode_native undoes it; std::runtime_error when
  // dummy_prefix is set but the tokens do not start with a space.
  std::vector<int32_t> encode_native(std::string_view bytes, bool* dummy_prefix) const;
  std::string decode_native(const int32_t* ids, size_t n, bool dummy_prefix) const;
  bool trained_with_dummy_prefix() const;  // SentencePiece: the original normalizer's flag; BPE: false
  const std::string& piece_bytes(int32_t id) const;  // exact bytes this id decodes to
  // Id of the token that is exactly byte b: SentencePiece's <0xXX>, BPE's byte symbol. -1 for a
  // byte a BPE vocabulary lacks (encode spells it as two tokens, see BpeEncoder; decode undoes it).
  int byte_id(uint8_t b) const;

  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;
  int unk_id() const;  // SentencePiece's <unk>; -1 for BPE (byte-level BPE has no unknown token)
  // The vocabulary's own text of `id`, as Hugging Face tokenizers name the token: SentencePiece's
  // piece ("\u2581the", "<s>", "<0x0A>"), BPE's token ("\u0120the", "<|im_start|>"). Throws
  // std::invalid_argument for an id outside the vocabulary.
  std::string token_text(int32_t id) const;
  // SentencePiece: of the tokenizer.model bytes. BPE: of bpe_canonical_bytes(definition), so a
  // GGUF's vocabulary and the tokenizer.json written from it have the same fingerprint.
  const std::string& sha256() const;
  // The serialized model, to copy into a model directory under model_file_name(): the original
  // file's bytes, or for from_bpe a tokenizer.json (write_tokenizer_json) that loads back the same.
  const std::string& model_bytes() const;
  bool is_bpe() const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorazip
