// lorazip prepare / pretrain / train / eval / export: options -> one job/ stage or adapters/ call.
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "cli/commands.h"
#include "codec/model_setup.h"
#include "common/fs.h"
#include "common/log.h"
#include "job/job_config.h"
#include "job/stages.h"
#include "model/checkpoint.h"
#include "model/gguf.h"

namespace fs = std::filesystem;

namespace lorazip {
namespace {

JobConfig load_job(const PipelineOptions& o, const GlobalOptions& g0, GlobalOptions& g) {
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

int cmd_prepare(const PipelineOptions& o, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(o, g0, g);
  PrepareOverrides po;
  po.inputs = o.inputs;
  po.tokenizer = o.tokenizer;
  po.vocab_size = o.vocab_size;
  std::printf("%s\n", prepare_stage(j, g.threads, po).to_markdown().c_str());
  return 0;
}

int cmd_pretrain(const PipelineOptions& o, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(o, g0, g);
  if (!j.base_model.empty())
    log_info("note: the config names base_model '" + j.base_model + "'; pretraining writes " + j.work_dir + "/base anyway");
  resolve_training_device(j.device, 0);  // a config's device: cuda is refused here, before any work, when it cannot run
  pretrain_stage(j, o.resume, g.threads);
  return 0;
}

int cmd_train(const PipelineOptions& o, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(o, g0, g);
  resolve_training_device(j.device, 0);
  adapter_stage(j, o.domain, o.base_dir.empty() ? j.base_path() : o.base_dir, o.resume, g.threads);
  return 0;
}

int cmd_eval(const PipelineOptions& o, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(o, g0, g);
  EvalOverrides eo;
  eo.base_dir = o.base_dir;
  eo.adapters_dir = o.adapters_dir;
  eo.extra = o.extra;
  eo.sample_docs = o.sample_docs;
  std::printf("%s\n", eval_stage(j, g.threads, eo).to_markdown().c_str());
  return 0;
}

int cmd_cluster(const PipelineOptions& o, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(o, g0, g);
  ClusterOverrides co;
  co.inputs = o.inputs;
  co.model = o.base_dir;
  co.k = o.k;
  co.out_dir = o.out_dir;
  std::printf("%s\n", cluster_stage(j, g.threads, co).to_markdown().c_str());
  return 0;
}

}  // namespace lorazip
