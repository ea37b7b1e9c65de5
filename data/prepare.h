// `lorazip prepare`: corpus (JSONL / text, tagged by domain) -> deduplicated, split, tokenized
// HDF5 token store (work_dir/data.h5), a tokenizer trained on the train split when none is given
// (work_dir/tokenizer.model), and statistics (work_dir/data_stats.json). Torch-free.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/corpus.h"

namespace lorazip {

class YamlMap;

struct SplitConfig {
  double val = 0.1;   // fraction of each domain's documents in val, [0, 1)
  double test = 0.1;  // fraction in test, [0, 1); val + test < 1
  uint64_t seed = 17; // seed of the document hash that assigns splits
};

struct PrepareTokenizerConfig {
  std::string model;            // an existing tokenizer.model or GGUF file; empty = train one on the train split of all domains
  int vocab_size = 4096;        // when training: vocabulary size, [260, 1000000]
  std::string type = "bpe";     // when training: bpe | unigram
  int64_t max_train_bytes = 0;  // when training: cap on text fed to the trainer (bytes), 0 = whole train split
};

struct PrepareConfig {
  std::vector<InputSpec> inputs;    // at least one; several inputs may share a domain
  SplitConfig split;
  PrepareTokenizerConfig tokenizer;
  bool skip_bad_lines = false;      // true: skip (and count) bad JSONL records instead of failing
  int threads = 0;                  // tokenization threads, 0 = all cores

  // Reads the `data:` section (strict: unknown keys are errors naming file:line). Relative paths
  // are resolved against base_dir (the config file's directory). Calls finish() on every map.
  static PrepareConfig from_yaml(YamlMap& m, const std::string& base_dir);
  // "domain=path" (command line) -> an input with default options; std::invalid_argument otherwise.
  static InputSpec parse_input_arg(const std::string& arg);
  // std::invalid_argument naming the field for any value out of range.
  void validate() const;
  // The resolved config as JSON text, for logging at the start of a run.
  std::string to_json() const;
};

struct SplitStats {
  int64_t documents = 0;
  int64_t bytes = 0;   // original document bytes
  int64_t tokens = 0;
  double bytes_per_token() const { return tokens ? double(bytes) / double(tokens) : 0.0; }
};

struct DomainStats {
  std::string domain;
  std::vector<std::string> sources;  // files read
  int64_t documents_read = 0;        // before duplicate removal
  int64_t duplicates_dropped = 0;    // exact duplicates within the domain
  int64_t lines_skipped = 0;         // bad JSONL records skipped (skip_bad_lines)
  SplitStats splits[3];              // train, val, test (kSplitNames)
  SplitStats total() const;
};

struct PrepareStats {
  std::vector<DomainStats> domains;
  std::string tokenizer_path;     // the tokenizer used (work_dir/tokenizer.model when trained)
  std::string tokenizer_sha256;
  int64_t vocab_size = 0;
  bool tokenizer_trained = false;
  std::string token_dtype;        // uint8 | uint16 | uint32
  std::string store_path;         // work_dir/data.h5
  int threads = 0;                // tokenization threads used
  double read_s = 0, tokenizer_train_s = 0, tokenize_s = 0, write_s = 0, total_s = 0;  // wall seconds

  // One row per domain and split plus a row per domain ("all"), with duplicates and skips.
  std::string to_markdown() const;
  std::string to_json() const;
  static PrepareStats from_json(const std::string& text);  // std::runtime_error on malformed text
};

// Runs the whole stage. Writes work_dir/data.h5 (atomically), work_dir/tokenizer.model (only when
// trained, atomically) and work_dir/data_stats.json. Logs progress with log_info; the caller prints
// the returned statistics (to_markdown()). std::invalid_argument for config mistakes (empty input
// set, bad domain name, out-of-range values), std::runtime_error for unreadable or malformed input
// (naming file:line), a domain without documents, or write failures.
PrepareStats prepare(const PrepareConfig& cfg, const std::string& work_dir);

// The split prepare assigns a document of these bytes: 0 train, 1 val, 2 test (a hash of the
// bytes and cfg.seed, so it never depends on which files were read or in which order).
int split_of_document(const std::string& bytes, const SplitConfig& cfg);

}  // namespace lorazip
