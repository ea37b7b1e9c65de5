// The LM codec: arithmetic coding of a file's tokens under a Llama model, every probability
// computed by the coding engine (codec/engine/engine.h) in the arithmetic version the file records.
//
// One probability path (contract 2). The input is tokenized as the model was trained wherever
// that is lossless (Tokenizer::encode_native: SentencePiece's dummy prefix; flag bit 0 of the
// container). The tokens are cut into chunks; every stream starts from BOS at position 0 and uses
// at most `chunk_tokens` positions. With context_tokens W = 0 every chunk is independent (chunk
// length L = chunk_tokens). With W > 0 the first chunk codes L tokens and each later chunk first
// reads the document's previous W tokens (teacher-forced, not coded) and then codes L - W new
// ones, so no token is coded blind; the decoder then decodes a file's chunks in order. Encoder
// and decoder run their chunks as streams of codec/stream_runner.h: every engine call takes rows
// of every active stream (the encoder's known tokens in slices, the decoder's newest token), and
// several files decode in the same calls (decompress_many). The engine gives a row the same bits
// alone, in any batch, teacher-forced or stepped, on any CPU and thread count, so the file does
// not depend on any of that. Softmax in the engine's float32 arithmetic, then codec/quantize.h
// turns each row into integer frequencies. The container records the engine's arithmetic version:
// 2 for new files (an adapter beside the weights: adapter mode "unmerged"); files of version 1
// (adapter merged) decode with the version-1 model the codec builds on demand.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <exception>
#include <functional>
#include <memory>
#include <mutex>

#include "codec/compact.h"
#include "codec/container.h"
#include "codec/engine/engine.h"
#include "model/tokenizer.h"

namespace lorazip {

// What a compressed file is bound to.
struct CodecIdentity {
  std::string base_fingerprint;
  std::string tokenizer_fingerprint;
  std::string adapter_fingerprint;  // empty: no adapter
  std::string adapter_domain;       // informational
};

// context_tokens < 0 asks for the default W: chunk length / kAutoContextDivisor (127 for a
// 512-position model). The measured sweep behind it is in docs/codec.md ("Context across chunks").
constexpr int64_t kDefaultContextTokens = -1;
constexpr int64_t kAutoContextDivisor = 4;

// What compress() writes: the full container (version 2: every fingerprint and coder parameter in
// the file) or the compact file (version 3: identity tags, 10-24 bytes of fixed overhead, and the
// input stored as it is whenever that is shorter than the model's code). decompress() reads both.
enum class ContainerFormat { Full, Compact };

class ProgressMeter;

struct LmCodecOptions {
  int64_t chunk_tokens = 0;    // positions per stream (context + coded); 0 = max_position_embeddings - 1
  int64_t context_tokens = kDefaultContextTokens;  // W, 0..chunk_tokens-1; 0 = independent chunks; < 0 = default
  int64_t group_streams = 32;  // streams coded together (1..1024); speed and memory only
  int threads = 0;             // worker threads; 0 = all cores. Does not change the output.
  ContainerFormat format = ContainerFormat::Full;
  // 0: the model's own (2 for new files); 1: lorazip 0.1's arithmetic (the version-1 model), for
  // readers that know only version 1.
  int arithmetic_version = 0;
  ProgressMeter* progress = nullptr;  // tokens coded are added to it (nullptr: none)
  // Conditioned coding: the document is coded given these tokens, which the decoder must be given
  // too (a prompt rendered in the model's chat template, codec/context.h). nullptr: from BOS alone.
  // The file records context_fingerprint(*context); the stream reads context_window() after BOS.
  const std::vector<int32_t>* context = nullptr;
};

// Conditioned coding. The fingerprint a conditioned file records: SHA-256 (64 hex digits) of the
// context's token ids as little-endian int32, so another prompt, template or tokenizer differs.
std::string context_fingerprint(const std::vector<int32_t>& context);
// The tokens of `context` that chunk 0's stream reads after BOS: a leading BOS is dropped (the
// stream has one already), then at most the last chunk_tokens / 2, so that a context longer than
// the model's window keeps its end (the assistant turn's opening) and half the chunk stays for
// coding. Chunks after the first read only the document's own tokens before them (and, where the
// window W reaches back past the document's start, the end of this window).
std::vector<int32_t> context_window(const std::vector<int32_t>& context, int32_t bos, int64_t chunk_tokens);

struct CodeStats {
  int64_t bytes = 0;         // original bytes
  int64_t tokens = 0;
  int64_t chunks = 0;
  int64_t context_tokens = 0;  // W recorded in the file (0: independent chunks or a single chunk)
  bool dummy_prefix = false;   // tokenized with the model's dummy-prefix space
  double ideal_bits = 0;     // sum of -log2 p(token) under the engine's float32 softmax (code_length_bits)
  int64_t payload_bytes = 0; // arithmetic-coded payload, all chunks
  int64_t file_bytes = 0;    // whole container
  bool stored = false;       // compact file holding the input itself (the model's code was longer)
  int format_version = 0;    // container version of the file (2 full; 3, 4, 5 compact)
  int64_t prefix_tokens = 0;   // conditioned: context tokens the first chunk read after BOS
  std::string context_fingerprint;  // conditioned: what the file records; else empty
  double seconds = 0;
  double coded_bits() const { return 8.0 * static_cast<double>(payload_bytes); }
};

class LmCodec {
 public:
  // The model for version 1 (float32 weights, the adapter merged), built when a file of that version
  // is decoded or asked for, and the identity such files record (a block-quantized base was named
  // by its float32 fingerprint then).
  using Version1Model = std::function<std::shared_ptr<const engine::Model>()>;
  using Version1Identity = std::function<CodecIdentity()>;
  // std::invalid_argument when the tokenizer's vocabulary is not the model's or the model has no BOS.
  LmCodec(std::shared_ptr<const engine::Model> model, const Tokenizer& tokenizer, CodecIdentity identity,
          Version1Model version1 = nullptr, Version1Identity version1_identity = nullptr);

  std::string compress(std::string_view input, const LmCodecOptions& opt, CodeStats* stats = nullptr) const;
  // Refuses (std::runtime_error) a file bound to another base/adapter/tokenizer, naming the expected
  // fingerprints, or coded with an engine arithmetic this lorazip does not implement; a corrupted
  // file is refused by the container's checks or the final checksum.
  // A conditioned file needs its `context` (the tokens it was coded given) and refuses, naming the
  // fingerprints, none or another; a file coded from BOS alone refuses a context. A stored file
  // takes any.
  std::string decompress(std::string_view file, const std::string& name, int threads,
                         CodeStats* stats = nullptr, ProgressMeter* progress = nullptr,
                         const std::vector<int32_t>* context = nullptr) const;

  // Several files at once, each with its codec (codecs over the same base weights; any adapters):
  // their chunks decode in the same engine calls. Each result is the output of decompress() or the
  // error it would throw; the bytes are the same as decoding the files one by one.
  struct DecodeJob {
    const LmCodec* codec = nullptr;
    std::string_view file;
    std::string name;
    const std::vector<int32_t>* context = nullptr;  // conditioned files: what they were coded given
  };
  struct DecodeResult {
    std::string data;
    CodeStats stats;
    std::exception_ptr error;  // null: data holds the file's bytes
  };
  static std::vector<DecodeResult> decompress_many(const std::vector<DecodeJob>& jobs, int threads,
                                                   int64_t group_streams = 32, ProgressMeter* progress = nullptr);
  // The tokens a file holds (from its header), for a progress total; 0 for a stored file or when
  // the header does not say. Never throws.
  static int64_t token_count(std::string_view file);

  // The tokens compress() codes for `input` (Tokenizer::encode_native).
  std::vector<int32_t> tokenize(std::string_view input) const;
  // The ideal code length of `tokens` in bits (code_length_bits below with this codec's model):
  // exactly the ideal_bits that compress() reports for tokenize(input) with the same options.
  // What -A compares.
  // With `context`, given that context (as compress() with LmCodecOptions::context).
  double ideal_bits(const std::vector<int32_t>& tokens, int64_t chunk_tokens, int64_t context_tokens, int threads = 0,
                    const std::vector<int32_t>* context = nullptr) const;
  // The same under several codecs at once: codecs over one base's weights (any adapters) score in
  // the same engine calls, each weight block read once for all of them. Equal to ideal_bits of each.
  static std::vector<double> ideal_bits_many(const std::vector<const LmCodec*>& codecs, const std::vector<int32_t>& tokens,
                                             int64_t chunk_tokens, int64_t context_tokens, int threads = 0,
                                             const std::vector<int32_t>* context = nullptr);

  // Throws std::runtime_error when `c` was not made with this identity.
  static void check_identity(const Container& c, const CodecIdentity& id, const std::string& name);
  // The same for a compact file's tags, naming which of base, tokenizer and adapter differs. A
  // stored file matches every identity.
  static void check_identity(const CompactFile& f, const CodecIdentity& id, const std::string& name);

  const CodecIdentity& identity() const { return id_; }
  const engine::Model& model() const { return *model_; }
  // The model that computes arithmetic version `v` (this codec's, or its version-1 model).
  // std::runtime_error when there is none.
  std::shared_ptr<const engine::Model> model_for(int v, const std::string& name) const;

 private:
  struct Prepared;
  // The compact file `f` as the container it abbreviates, under identity `id` and this codec's model.
  // `given`: the context a version-5 file is decoded with (checked against its tag by prepare()).
  Container expand(const CompactFile& f, const CodecIdentity& id, const std::string& name,
                   const std::vector<int32_t>* given) const;
  // The identity a file of arithmetic version `v` records (this codec's, or the version-1 one).
  CodecIdentity identity_for_version(int v) const;
  // Parses, checks the identity and lays out the chunks of a file (stored files: their bytes).
  Prepared prepare(std::string_view file, const std::string& name, const std::vector<int32_t>* context) const;
  // Detokenizes and checks a prepared file's decoded tokens.
  std::string finish(const Prepared& p, std::string_view file, const std::string& name, CodeStats* stats) const;

  std::shared_ptr<const engine::Model> model_;
  const Tokenizer& tok_;
  CodecIdentity id_;
  Version1Model version1_;
  Version1Identity version1_identity_;
  mutable std::shared_ptr<const engine::Model> v1_model_;
  mutable std::mutex v1_mu_;
};

// The one code-length function (contract 5: the coder's and the report's numbers cannot drift
// apart): the ideal code length, in bits, of each document under `model`, with the codec's
// chunking (streams of at most chunk_tokens positions, 0 = context - 1, each from BOS at position
// 0; chunks after the first read the previous context_tokens tokens first, see above),
// teacher-forced: the sum over coded tokens of -log2 p(token) (engine::softmax,
// engine::code_length_bits), summed per chunk in position order and per document in chunk order.
// Chunks are spread over `threads` workers (0 = all cores); the result does not depend on them.
// An empty document costs 0. context_tokens < 0: the default (see kDefaultContextTokens).
// std::invalid_argument for chunk_tokens or context_tokens out of range.
struct TokenSpan {
  const int32_t* data = nullptr;
  size_t size = 0;
};
// With `context`, every document is scored given it (LmCodecOptions::context).
std::vector<double> code_length_bits(const engine::Model& model, const std::vector<TokenSpan>& docs,
                                     int64_t chunk_tokens, int64_t context_tokens, int threads = 0,
                                     const std::vector<int32_t>* context = nullptr);
// Each document given its own context (`contexts[i]`, nullptr: from BOS alone; one per document).
std::vector<double> code_length_bits(const engine::Model& model, const std::vector<TokenSpan>& docs,
                                     int64_t chunk_tokens, int64_t context_tokens, int threads,
                                     const std::vector<const std::vector<int32_t>*>& contexts);

// Where the chunks of an n-token document lie: chunk i codes tokens [start, start + n) after
// reading the `context` tokens before start. chunk_tokens L >= 1, 0 <= context_tokens W < L.
// With prefix_tokens P (0 <= P < L: a conditioned document's context window, which stands before
// token 0), chunk 0 reads those P tokens and codes at most L - P.
struct ChunkSpan {
  size_t start = 0;
  int64_t n = 0;
  int64_t context = 0;
};
// W for chunk length `chunk_tokens` (>= 1): context_tokens itself, or the default (a quarter of the
// chunk) when it is -1. std::invalid_argument for anything below -1.
int64_t resolve_context_tokens(int64_t chunk_tokens, int64_t context_tokens);

// How documents are cut into chunks, as numbers: `chunk` positions per stream
// (1..max_position_embeddings - 1) and the window W of earlier tokens each later chunk reads
// (0..chunk - 1; 0 = independent chunks). Options and configs say "the default" with
// chunk_tokens 0 and context_tokens -1; resolve() turns them into numbers once, where a request
// comes in, and code that scores or codes with one takes it as it is.
struct Chunking {
  int64_t chunk = 0;
  int64_t window = 0;
  // std::invalid_argument naming the value out of range for a model of `max_positions` positions.
  static Chunking resolve(int64_t max_positions, int64_t chunk_tokens, int64_t context_tokens);
  // An archive header's chunking (chunk_tokens 0: the model's defaults, its context_tokens unused).
  static Chunking of_archive(int64_t max_positions, int64_t header_chunk_tokens, int64_t header_context_tokens);
  // The same chunks, each coded alone.
  Chunking independent() const { return {chunk, 0}; }
};
std::vector<ChunkSpan> plan_chunks(size_t n_tokens, int64_t chunk_tokens, int64_t context_tokens, int64_t prefix_tokens = 0);

// Short form of a fingerprint for messages: first 12 hex digits.
std::string short_fp(const std::string& fp);

}  // namespace lorazip
