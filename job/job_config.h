// The main job's YAML (configs/default.yaml): one file, strict, with a section per stage.
//
//   work_dir: ../work/default     # relative paths are relative to this file's directory
//   threads: 0                    # 0 = all cores; --threads overrides
//   device: cpu                   # pretrain / train: cpu, or cuda on a CUDA build; --device overrides
//   data: {...}                   # data/prepare.h PrepareConfig
//   base_model: ""                # an existing HF Llama directory or llama GGUF file: skips pretrain;
//                                 # ${VAR} expands (${LORAZIP_CACHE} defaults to ~/.cache/lorazip)
//   model_file: model-tiny.yaml   # model size (or an inline `model:` mapping)
//   pretrain: {...}               # train/train.h PretrainConfig
//   lora: {...}                   # adapters/lora_config.h LoraConfig
//   train: {...}                  # train/train.h TrainConfig
//   cluster: {...}                # cluster/cluster.h ClusterConfig; k > 0: domains are found by k-means
//                                 # on the base model's embeddings instead of the inputs' labels
//   adapters: [math, code]        # domains that get an adapter (default: every domain)
//   eval: {...}                   # EvalConfig below
//   codec: {...}                  # CodecConfig below
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/lora_config.h"
#include "cluster/cluster.h"
#include "codec/lm_codec.h"  // kDefaultContextTokens
#include "data/prepare.h"
#include "model/config.h"
#include "train/train.h"

namespace lorazip {

struct ExtraCorpus {
  std::string name;      // row label in the report
  InputSpec input;       // what to read (domain is unused)
  std::string adapter;   // the adapter considered "own" for this corpus ("" = none)
  bool optional = false; // skip silently when the path does not exist
};

struct EvalConfig {
  int64_t max_docs = 0;       // test documents per domain to score, spread evenly; 0 = all
  int64_t sample_docs = 3;    // documents per domain really compressed and decompressed (0 = none)
  bool classical = true;      // gzip / xz / zstd / brotli on the same documents
  int64_t batch_tokens = 8192;  // padded positions per forward pass
  std::vector<ExtraCorpus> extra;  // corpora from other sources, prepared with the base's tokenizer
  // Conditioned coding: domains whose JSONL records carry a "prompt" are also scored with each
  // response given its prompt, rendered by context_template (auto, chatml, plain).
  bool conditioned = true;
  std::string context_template = "auto";

  nlohmann::json to_json() const;  // every field, extra corpora included (the resolved `eval:` section)
};

struct CodecConfig {
  int64_t group_streams = 32;  // streams coded together per batch, 1..1024
  int64_t chunk_tokens = 0;    // positions per stream, context included; 0 = the model's context - 1
  int64_t context_tokens = kDefaultContextTokens;  // W, tokens a chunk after the first reads first (< chunk length); 0 = independent chunks; -1 = a quarter of the chunk

  nlohmann::json to_json() const;
};

struct JobConfig {
  std::string path;      // the YAML file
  std::string base_dir;  // its directory
  std::string work_dir = "work";
  int threads = 0;
  std::string device = "cpu";  // where training computes (RunOptions::device); coding stays on the CPU
  PrepareConfig data;
  std::string base_model;  // existing HF Llama directory or GGUF file, or empty to pretrain one
  LlamaConfig model;
  PretrainConfig pretrain;
  LoraConfig lora;
  TrainConfig train;
  ClusterConfig cluster;  // k > 0: cluster -> prepare takes the clusters as its domains
  std::vector<std::string> adapters;
  EvalConfig eval;
  CodecConfig codec;
  std::string resolved_text;  // the resolved config, printed at the start of every run

  // Strict load; std::invalid_argument naming file:line:key for an unknown key or a wrong type.
  static JobConfig load(const std::string& path);

  std::string store_path() const { return work_dir + "/data.h5"; }
  std::string tokenizer_path() const;  // data.tokenizer.model, or work_dir/tokenizer.model
  std::string base_path() const { return base_model.empty() ? work_dir + "/base" : base_model; }
  std::string adapters_path() const { return work_dir + "/adapters"; }
  std::string clusters_path() const { return work_dir + "/clusters"; }
  // The model documents are embedded with for clustering: cluster.model, else base_model.
  std::string cluster_model() const { return cluster.model.empty() ? base_model : cluster.model; }
};

}  // namespace lorazip
