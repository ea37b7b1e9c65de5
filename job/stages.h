// The main job's stages as library calls: prepare, pretrain, one adapter, eval. The subcommands
// (`lorazip prepare` ...) and the staged runner (job/run_job.h) both call these; they log
// progress through common/log and return what they made, and the caller decides what to print.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/cluster.h"
#include "data/prepare.h"
#include "eval/report.h"
#include "job/job_config.h"
#include "train/train.h"

namespace lorazip {

// What `lorazip prepare` may override on the command line; empty / 0 = the config's value.
struct PrepareOverrides {
  std::vector<std::string> inputs;  // "domain=path" arguments; replace the config's inputs
  std::string tokenizer;            // an existing tokenizer.model
  int vocab_size = 0;
};

// What `lorazip eval` may override; empty / negative = the config's value.
struct EvalOverrides {
  std::string base_dir;             // default: the job's base
  std::string adapters_dir;         // default: WORK/adapters
  std::vector<std::string> extra;   // more "name=path" corpora, after the config's
  int64_t sample_docs = -1;
};

// What `lorazip cluster` may override; empty / 0 = the config's value.
struct ClusterOverrides {
  std::vector<std::string> inputs;  // "label=path" arguments; replace the config's inputs
  std::string model;                // the model to embed with
  int64_t k = 0;
  std::string out_dir;              // default: WORK/clusters
};

// The config's inputs (their labels kept only to measure agreement) -> clusters in WORK/clusters
// (cluster/cluster.h), embedded with j.cluster_model().
ClusterStats cluster_stage(const JobConfig& j, int threads, const ClusterOverrides& o = {});
// With clustering on (cluster.k > 0): prepare's inputs, one per cluster (WORK/clusters/cNN.jsonl).
std::vector<InputSpec> cluster_inputs(const JobConfig& j);

// The corpus -> WORK/data.h5 (+ WORK/tokenizer.model when one is trained); with clustering on,
// the corpus is the clusters (cluster_inputs) unless inputs are given.
PrepareStats prepare_stage(const JobConfig& j, int threads, const PrepareOverrides& o = {});
// A base of the config's size pretrained on the store -> WORK/base; `resume` continues from
// WORK/runs/pretrain's checkpoint.
TrainResult pretrain_stage(const JobConfig& j, bool resume, int threads);
// One domain's adapter on `base_dir` -> WORK/adapters/<domain>.
TrainResult adapter_stage(const JobConfig& j, const std::string& domain, const std::string& base_dir, bool resume,
                          int threads);
// The report (base vs adapters vs classical compressors per domain), written to WORK/report.*.
// The config's extra corpora marked optional are skipped (with a log line) when absent.
Report eval_stage(const JobConfig& j, int threads, const EvalOverrides& o = {});

}  // namespace lorazip
