// The full build's subcommands (prepare, pretrain, train, eval, cluster, run): one request struct
// each, filled by the command line (cli/full_main.cpp) and run by one function that calls job/.
// Only liblorazip_full.so includes this header (it needs job/, which needs libtorch).
#pragma once
#include <string>

#include "cli/commands.h"
#include "job/stages.h"

namespace CLI {
class App;
}

namespace lorazip {

// What every pipeline subcommand takes: the config and an override of its work_dir.
struct JobRequest {
  std::string config = "configs/default.yaml";
  std::string work_dir;  // overrides the config's work_dir when set
};

struct PrepareRequest {
  JobRequest job;
  PrepareOverrides overrides;
};
struct PretrainRequest {
  JobRequest job;
  bool resume = false;
};
struct TrainRequest {
  JobRequest job;
  std::string domain;
  std::string base_dir;  // default: the config's base_model, else WORK/base
  bool resume = false;
};
struct EvalRequest {
  JobRequest job;
  EvalOverrides overrides;
};
struct ClusterRequest {
  JobRequest job;
  ClusterOverrides overrides;
};
struct RunRequest {
  JobRequest job;
  bool force = false;  // rerun every stage
};

// A config's `threads` applies when --threads was not given; returns the options in force.
GlobalOptions apply_config_threads(const JobConfig& j, const GlobalOptions& g);

int cmd_prepare(const PrepareRequest& r, const GlobalOptions& g);
int cmd_pretrain(const PretrainRequest& r, const GlobalOptions& g);
int cmd_train(const TrainRequest& r, const GlobalOptions& g);
int cmd_eval(const EvalRequest& r, const GlobalOptions& g);
int cmd_cluster(const ClusterRequest& r, const GlobalOptions& g);
int cmd_run(const RunRequest& r, const GlobalOptions& g);

// The pipeline subcommands registered on `app`, with the requests their options fill:
// add_pipeline_commands registers prepare, pretrain, train and eval, add_job_commands run and
// cluster (two calls, so that help lists them in cli/subcommands.h's order).
struct PipelineCommands {
  CLI::App *prepare = nullptr, *pretrain = nullptr, *train = nullptr, *eval = nullptr, *cluster = nullptr, *run = nullptr;
  PrepareRequest prepare_r;
  PretrainRequest pretrain_r;
  TrainRequest train_r;
  EvalRequest eval_r;
  ClusterRequest cluster_r;
  RunRequest run_r;
};
void add_pipeline_commands(CLI::App& app, PipelineCommands& c);
void add_job_commands(CLI::App& app, PipelineCommands& c);
// Runs the parsed pipeline subcommand; -1 when none of them was given.
int run_pipeline_command(const PipelineCommands& c, const GlobalOptions& g);
// Whether the parsed subcommand is one that trains (pretrain, train, run) or runs on a device
// (those and eval).
bool trains(const PipelineCommands& c);
bool uses_device(const PipelineCommands& c);

}  // namespace lorazip
