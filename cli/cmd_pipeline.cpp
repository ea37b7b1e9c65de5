// lorazip prepare / pretrain / train / eval / cluster: their command line, and each request -> one
// job/ stage call.
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "cli/pipeline_commands.h"
#include "runtime/model_setup.h"
#include "common/fs.h"
#include "common/log.h"
#include "job/job_config.h"
#include "job/stages.h"
#include "model/checkpoint.h"
#include "model/gguf.h"

namespace fs = std::filesystem;

namespace lorazip {
namespace {

JobConfig load_job(const JobRequest& o, const GlobalOptions& g0, GlobalOptions& g) {
  JobConfig j = JobConfig::load(o.config);
  if (!o.work_dir.empty()) j.work_dir = o.work_dir;
  if (g0.device_given) j.device = g0.device;
  g = apply_config_threads(j, g0);
  log_info("config " + o.config + " (resolved), " + std::to_string(g.threads) + " threads:\n" + j.resolved_text);
  return j;
}

}  // namespace

GlobalOptions apply_config_threads(const JobConfig& j, const GlobalOptions& g) {
  GlobalOptions out = g;
  if (!g.threads_given && j.threads > 0) out.threads = set_torch_threads(j.threads);
  return out;
}

int cmd_prepare(const PrepareRequest& r, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(r.job, g0, g);
  std::printf("%s\n", prepare_stage(j, g.threads, r.overrides).to_markdown().c_str());
  return 0;
}

int cmd_pretrain(const PretrainRequest& r, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(r.job, g0, g);
  if (!j.base_model.empty())
    log_info("note: the config names base_model '" + j.base_model + "'; pretraining writes " + j.work_dir + "/base anyway");
  resolve_training_device(j.device, 0);  // a config's device: cuda is refused here, before any work, when it cannot run
  pretrain_stage(j, r.resume, g.threads);
  return 0;
}

int cmd_train(const TrainRequest& r, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(r.job, g0, g);
  resolve_training_device(j.device, 0);
  adapter_stage(j, r.domain, r.base_dir.empty() ? j.base_path() : r.base_dir, r.resume, g.threads);
  return 0;
}

int cmd_eval(const EvalRequest& r, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(r.job, g0, g);
  std::printf("%s\n", eval_stage(j, g.threads, r.overrides).to_markdown().c_str());
  return 0;
}

int cmd_cluster(const ClusterRequest& r, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(r.job, g0, g);
  std::printf("%s\n", cluster_stage(j, g.threads, r.overrides).to_markdown().c_str());
  return 0;
}

namespace {

// How to train on several processes, shown by pretrain --help, train --help and run --help.
const char* const kDataParallelHelp =
    "\nData-parallel training (several processes or machines, c10d over Gloo): start lorazip under torchrun,\n"
    "  torchrun --standalone --nproc_per_node=2 --redirects 1 --tee 1 --no_python lorazip train CONFIG -d DOMAIN\n"
    "or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT in each process's environment. batch_size must be a\n"
    "multiple of the process count; rank 0 writes the outputs; --resume needs the same process count; a rank that\n"
    "dies or hangs ends the job after --dist-timeout seconds (a global option, default 300), naming it.";

void add_job_options(CLI::App* sub, JobRequest& r, const char* config_help) {
  sub->add_option("config", r.config, config_help)->capture_default_str();
  sub->add_option("-w,--work-dir", r.work_dir, "work directory (overrides the config's work_dir)");
}

void add_training_commands(CLI::App& app, PipelineCommands& c) {
  c.pretrain = app.add_subcommand("pretrain", "train a small base model on the prepared corpus -> WORK/base/ (HF Llama directory)");
  add_job_options(c.pretrain, c.pretrain_r.job, "YAML config");
  c.pretrain->add_flag("--resume", c.pretrain_r.resume, "continue from the last checkpoint");
  c.pretrain->footer(kDataParallelHelp);

  c.train = app.add_subcommand("train", "train one LoRA adapter on a frozen base -> WORK/adapters/DOMAIN/ (PEFT directory)");
  c.train->footer(kDataParallelHelp);
  add_job_options(c.train, c.train_r.job, "YAML config");
  c.train->add_option("-d,--domain", c.train_r.domain, "domain to train the adapter on")->required();
  c.train->add_option("-m,--model", c.train_r.base_dir, "base model directory or .gguf file (default: the config's base_model, else WORK/base)");
  c.train->add_flag("--resume", c.train_r.resume, "continue from the last checkpoint");
}

}  // namespace

void add_pipeline_commands(CLI::App& app, PipelineCommands& c) {
  c.prepare = app.add_subcommand("prepare", "corpus (JSONL/text per domain) -> WORK/data.h5 token store (+ WORK/tokenizer.model)");
  add_job_options(c.prepare, c.prepare_r.job, "YAML config with a data: section");
  c.prepare->add_option("-i,--input", c.prepare_r.overrides.inputs, "DOMAIN=PATH (file or directory); repeatable; replaces the config's inputs");
  c.prepare->add_option("--tokenizer", c.prepare_r.overrides.tokenizer, "use this tokenizer.model instead of training one");
  c.prepare->add_option("--vocab-size", c.prepare_r.overrides.vocab_size, "vocabulary size of a trained tokenizer");

  add_training_commands(app, c);

  c.eval = app.add_subcommand("eval", "bits/token per domain: base vs adapters vs classical compressors -> WORK/report.{md,json,csv,svg}");
  add_job_options(c.eval, c.eval_r.job, "YAML config");
  EvalOverrides& eo = c.eval_r.overrides;
  c.eval->add_option("-m,--model", eo.base_dir, "base model directory or .gguf file (default: the config's base_model, else WORK/base)");
  c.eval->add_option("-A,--adapters", eo.adapters_dir, "adapters directory (default: WORK/adapters)");
  c.eval->add_option("-e,--extra", eo.extra, "NAME=PATH: an extra evaluation corpus (JSONL/text), repeatable");
  c.eval->add_option("--sample-docs", eo.sample_docs, "documents per domain to really compress (default from config)");
}

void add_job_commands(CLI::App& app, PipelineCommands& c) {
  c.run = app.add_subcommand("run", "the main job: prepare -> tokenizer -> pretrain -> adapters -> eval -> codec check, each stage cached");
  add_job_options(c.run, c.run_r.job, "YAML config");
  c.run->add_flag("--force", c.run_r.force, "rerun every stage even when its inputs are unchanged");
  c.run->footer(kDataParallelHelp);

  c.cluster = app.add_subcommand("cluster", "embed every document (its prompt) with the base model and k-means them -> WORK/clusters "
                                             "(one JSONL per cluster, router.json for routing by prompt)");
  add_job_options(c.cluster, c.cluster_r.job, "YAML config (data.inputs, cluster:)");
  ClusterOverrides& co = c.cluster_r.overrides;
  c.cluster->add_option("-i,--input", co.inputs, "LABEL=PATH (JSONL with prompt and text fields, or text); repeatable; replaces the config's inputs");
  c.cluster->add_option("-m,--model", co.model, "model to embed with (default: cluster.model, else base_model)");
  c.cluster->add_option("-k", co.k, "clusters (default: cluster.k)");
  c.cluster->add_option("-o,--output", co.out_dir, "output directory (default: WORK/clusters)");
}

int run_pipeline_command(const PipelineCommands& c, const GlobalOptions& g) {
  if (*c.prepare) return cmd_prepare(c.prepare_r, g);
  if (*c.pretrain) return cmd_pretrain(c.pretrain_r, g);
  if (*c.train) return cmd_train(c.train_r, g);
  if (*c.eval) return cmd_eval(c.eval_r, g);
  if (*c.cluster) return cmd_cluster(c.cluster_r, g);
  if (*c.run) return cmd_run(c.run_r, g);
  return -1;
}

bool trains(const PipelineCommands& c) { return *c.pretrain || *c.train || *c.run; }
bool uses_device(const PipelineCommands& c) { return trains(c) || *c.eval; }

}  // namespace lorazip
