// `lorazip eval`: fills a Report from a base model, a directory of adapters and a token store.
// Every ideal code length comes from the codec's code_length_bits (codec/lm_codec.h) on the coding
// engine, with the codec's chunking, so the report's ideal and coded sizes share one formula.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "codec/lm_codec.h"  // kDefaultContextTokens
#include "data/corpus.h"
#include "eval/report.h"

namespace lorazip {

struct LoadedModel;

struct EvalCorpus {
  std::string name;
  InputSpec input;
  std::string adapter;  // "own" adapter for this corpus, "" = none
};

struct EvaluationOptions {
  std::string store_path;            // token store (its test splits are the domains' rows)
  std::string adapters_dir;          // may be missing or empty: base only
  std::vector<std::string> domains;  // rows to evaluate; empty = every domain with a test split
  std::vector<EvalCorpus> extra;     // extra corpora (read and tokenized with the base's tokenizer)
  int64_t max_docs = 0;              // per row, spread evenly; 0 = all
  int64_t sample_docs = 3;           // per row, really compressed + decompressed
  bool classical = true;
  int64_t batch_tokens = 8192;       // unused since scoring runs on the coding engine (kept for job configs)
  int64_t group_streams = 32;
  int64_t chunk_tokens = 0;
  int64_t context_tokens = kDefaultContextTokens;  // W of the coder (codec/lm_codec.h); the report also scores W = 0
  int threads = 0;
  // Routing by prompt (cluster/router.h): with a router.json, each test document whose bytes are a
  // key of `prompts` is scored under the adapter its prompt routes to (the report's prompt-routed
  // column); a row is measured only when every one of its documents has a prompt.
  std::string router_path;
  std::map<std::string, std::string> prompts;  // document bytes -> its prompt
  // Conditioned coding: where every document of a row has a prompt in `prompts`, the row is also
  // scored with each document given its prompt (rendered by `context_template`: auto, chatml,
  // plain), under the base and every adapter (the report's "conditioned on the prompt" table).
  bool conditioned = true;
  std::string context_template = "auto";
};

// std::runtime_error when the store was prepared with another tokenizer than the base's.
Report run_evaluation(LoadedModel& base, const EvaluationOptions& opt);

}  // namespace lorazip
