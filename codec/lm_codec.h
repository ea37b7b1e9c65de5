// The LM codec: arithmetic coding of a file's tokens under a Llama model (with any adapter
// already merged into its weights).
//
// One probability path (contract 2). The tokens are cut into chunks of at most `chunk_tokens`
// tokens; each chunk is an independent stream that starts from BOS at position 0. Consecutive
// chunks form groups of `group_streams` streams (the last group may be smaller); a group is run
// through LlamaForCausalLM::step() as one batch in lock-step, streams that have ended are fed BOS
// so the batch shape never changes. The group size is written in the container, so the decoder
// rebuilds exactly the same batches. Groups run on worker threads, each with ONE intra-op thread,
// so the floats of every step do not depend on --threads; the adapter is merged on one thread
// too. Softmax in float32, then codec/quantize.h turns each row into integer frequencies.
//
// The result is reproducible on the same machine type and libtorch build; a different CPU
// instruction set may round differently, in which case the checksum refuses the output instead
// of returning wrong bytes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "codec/container.h"
#include "model/llama.h"
#include "model/tokenizer.h"

namespace lorazip {

// What a compressed file is bound to.
struct CodecIdentity {
  std::string base_fingerprint;
  std::string tokenizer_fingerprint;
  std::string adapter_fingerprint;  // empty: no adapter
  std::string adapter_domain;       // informational
};

struct LmCodecOptions {
  int64_t chunk_tokens = 0;    // tokens per independent stream; 0 = max_position_embeddings - 1
  int64_t group_streams = 32;  // streams coded together as one batch (1..1024)
  int threads = 0;             // worker threads; 0 = all cores. Does not change the output.
};

struct CodeStats {
  int64_t bytes = 0;         // original bytes
  int64_t tokens = 0;
  int64_t chunks = 0;
  double ideal_bits = 0;     // sum of -log2 p(token) under the model's float32 softmax
  int64_t payload_bytes = 0; // arithmetic-coded payload, all chunks
  int64_t file_bytes = 0;    // whole container
  double seconds = 0;
  double coded_bits() const { return 8.0 * static_cast<double>(payload_bytes); }
};

class LmCodec {
 public:
  LmCodec(LlamaForCausalLM model, const Tokenizer& tokenizer, CodecIdentity identity);

  std::string compress(std::string_view input, const LmCodecOptions& opt, CodeStats* stats = nullptr) const;
  // Refuses (std::runtime_error) a file bound to another base/adapter/tokenizer, naming the expected
  // fingerprints; a corrupted file is refused by the container's checks or the final checksum.
  std::string decompress(std::string_view file, const std::string& name, int threads,
                         CodeStats* stats = nullptr) const;

  // Teacher-forced estimate of the code length of `tokens` under this model, in bits, with the
  // codec's chunking (whole-sequence forward, any thread count): what -A compares.
  double ideal_bits(const std::vector<int32_t>& tokens, int64_t chunk_tokens = 0) const;

  // Throws std::runtime_error when `c` was not made with this identity.
  static void check_identity(const Container& c, const CodecIdentity& id, const std::string& name);

  const CodecIdentity& identity() const { return id_; }

 private:
  LlamaForCausalLM model_;
  const Tokenizer& tok_;
  CodecIdentity id_;
};

// Short form of a fingerprint for messages: first 12 hex digits.
std::string short_fp(const std::string& fp);

}  // namespace lorazip
