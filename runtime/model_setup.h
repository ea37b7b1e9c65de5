// Loading what the codec and eval need: a base model (a llama GGUF file, or a Hugging Face
// directory with its tokenizer), adapters (PEFT directories), and the identity a compressed file
// records. Bases load into the coding engine as stored (a quantized GGUF stays quantized, mapped
// and packed, never expanded to float32); adapters become the engine's side path. Training's
// model of the same weights is built in train/, outside the coding path.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adapters/peft_files.h"
#include "codec/lm_codec.h"
#include "model/config.h"
#include "model/tokenizer.h"

namespace lorazip {

struct LoadedAdapter;

struct LoadedModel {
  std::string dir;
  LlamaConfig config;
  std::unique_ptr<Tokenizer> tokenizer;
  // The base's identity: SHA-256 of its weights as float32 (model_fingerprint), or, for a GGUF
  // with block-quantized matrices, of the weights as stored (stored_fingerprint, which lorazip
  // 0.1 did not have; files and adapters that name the base the old way still match, see below).
  std::string fingerprint;
  std::shared_ptr<const engine::Weights> weights; // as stored (arithmetic version 2)
  double load_seconds = 0;

  // The float32 fingerprint (equal to `fingerprint` unless the base is block-quantized, where it is
  // computed on first use: a pass over every weight).
  std::string float32_fingerprint() const;
  // Whether `fp` names this base, in either form.
  bool is_named_by(const std::string& fp) const;

  // The base alone on the engine (arithmetic version 2).
  std::shared_ptr<const engine::Model> engine_model() const;
  // The projections adapters attach to.
  std::vector<Projection> projections() const { return llama_projections(config); }
  // Arithmetic version 1 (what lorazip 0.1 wrote): the weights as float32 with `adapter` merged in
  // (nullptr: none). Each call builds one: it holds a float32 copy of the base, and converts the
  // adapter's pairs to float32 values for the merge.
  std::shared_ptr<const engine::Model> version1_model(const LoadedAdapter* adapter) const;

  bool quantized = false;             // named by its stored bytes

 private:
  mutable std::shared_ptr<const engine::Model> engine_;
  mutable std::shared_ptr<std::string> float32_fp_;
  mutable std::shared_ptr<std::mutex> mu_ = std::make_shared<std::mutex>();
};

// `dir` is a Hugging Face Llama directory (config.json, weights, tokenizer.model or tokenizer.json)
// or a llama GGUF file (a path ending in .gguf, or any file starting with the GGUF magic; tokenizer
// from its metadata). std::runtime_error naming the path when something is missing or malformed.
LoadedModel load_model(const std::string& dir);

struct AdapterEntry {
  std::string dir;
  std::string domain;
  std::string fingerprint;
};

// Every adapter directory directly under `adapters_dir` (those with adapter_config.json), sorted by name.
std::vector<AdapterEntry> list_adapters(const std::string& adapters_dir);
// The directory's domain and fingerprint from lorazip.json; without one (an adapter made
// elsewhere) the fingerprint is left empty (CodecSet::fingerprint computes it, reading the adapter
// once).
AdapterEntry describe_adapter(const std::string& dir);

CodecIdentity identity_for(const LoadedModel& base, const AdapterEntry* adapter);

// `lorazip export --merged`: writes `base` with `adapter` merged into its weights as a Hugging Face
// Llama directory (float32 safetensors, config.json, the tokenizer's files) at `out_dir`, merged
// by the engine's one LoRA delta (engine::merge_lora): the weights are bit for bit the ones
// arithmetic version 1 computes with for this base and adapter. Returns the written base's
// fingerprint. Atomic (out_dir is replaced whole or left as it was); std::runtime_error naming
// what does not fit.
std::string write_merged_base(const LoadedModel& base, const PeftAdapterFiles& adapter, const std::string& out_dir);

// The identity of files coded by `codec`'s base and adapter in arithmetic version 1 (lorazip 0.1
// named a block-quantized base by its float32 fingerprint).
CodecIdentity version1_identity(const LoadedModel& base, const AdapterEntry* adapter);

// An adapter read for the engine: adapter_model.safetensors read into one buffer and checked (the
// view, whose pairs point into that buffer), the side path packed straight from those bytes, and
// its identity. No float32 copy of the pairs is kept (version1_model converts them when asked).
struct LoadedAdapter {
  AdapterEntry entry;
  PeftAdapterView view;
  std::shared_ptr<const engine::Adapter> engine;
};
// std::runtime_error naming the directory when it is not an adapter of `base`.
std::shared_ptr<const LoadedAdapter> load_adapter(const LoadedModel& base, const std::string& dir);

// LM codecs over one base, one per adapter directory ("" = the base alone), each built on first
// use and kept for the next file; every codec shares the base's packed weights.
class CodecSet {
 public:
  explicit CodecSet(LoadedModel& base) : base_(base) {}
  LmCodec& get(const std::string& adapter_dir);
  LoadedModel& base() const { return base_; }
  // The adapter behind get(dir) (nullptr for ""), read once and kept.
  std::shared_ptr<const LoadedAdapter> adapter(const std::string& adapter_dir);
  // The entry's fingerprint: lorazip.json's, else the adapter's tensors' (reading it through
  // adapter(), so the codec later built on it reads nothing again). std::runtime_error when the
  // directory is not an adapter of this base.
  std::string fingerprint(const AdapterEntry& e);

 private:
  LoadedModel& base_;
  std::map<std::string, std::unique_ptr<LmCodec>> codecs_;
  std::map<std::string, std::shared_ptr<const LoadedAdapter>> adapters_;
};

}  // namespace lorazip
