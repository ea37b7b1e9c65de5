// SentencePiece tokenizer with a lossless layer. Torch-free.
//
// SentencePiece and libtorch cannot share a process's symbol space (Debian's libsentencepiece
// exports its own protobuf 3.14 and libtorch links protobuf 3.21), so SentencePiece lives in
// lorazip's own small shared library (liblorazip_spm.so, C interface) opened with
// dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND).
//
// Lossless guarantee: decode(encode(b)) == b for EVERY byte string b (invalid UTF-8, NULs,
// whitespace runs, leading spaces, the empty string). decode() is a pure table lookup
// (piece text with U+2581 -> ' ', byte pieces <0xXX> -> that byte); it never calls SentencePiece.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lorazip {

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
  // Loads any SentencePiece tokenizer.model (Llama-family included). Throws std::runtime_error
  // naming the file when it cannot be read or parsed, or when it has no byte-fallback pieces
  // (then not every byte can be represented).
  static Tokenizer load(const std::string& model_path);
  static Tokenizer from_bytes(std::string model_bytes, const std::string& name);

  // Trains a BPE/unigram model with byte fallback on `docs` and writes it atomically to out_path.
  static void train(const std::vector<std::string>& docs, const TokenizerTrainOptions& opt,
                    const std::string& out_path);

  std::vector<int32_t> encode(std::string_view bytes) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string decode(const int32_t* ids, size_t n) const;
  const std::string& piece_bytes(int32_t id) const;  // exact bytes this id decodes to
  int byte_id(uint8_t b) const;                      // id of the byte-fallback piece <0xXX> for b

  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;
  const std::string& sha256() const;       // of the tokenizer.model bytes
  const std::string& model_bytes() const;  // the serialized model, to copy into a model directory

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorazip
