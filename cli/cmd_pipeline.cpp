// lorazip prepare / pretrain / train / eval / export: options -> one job/ stage or adapters/ call.
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "adapters/adapter.h"
#include "adapters/gguf_lora.h"
#include "cli/commands.h"
#include "codec/model_setup.h"
#include "codec/model_torch.h"
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

int cmd_export(const PipelineOptions& o, const GlobalOptions& g) {
  if (!o.force && fs::exists(o.out_dir)) throw std::invalid_argument("'" + o.out_dir + "' already exists; use -f to replace it");
  LoadedBase base = load_base(o.base_dir);
  if (o.merged) {
    AdapterEntry e;
    LlamaForCausalLM m = merged_model(base, o.adapter_dir, &e);
    save_hf_model(m, o.out_dir, base.tokenizer->model_bytes());
    log_info("wrote " + o.out_dir + ": base " + short_fp(base.fingerprint) + " with adapter '" + e.domain + "' merged (fingerprint " +
             short_fp(model_fingerprint(m)) + ")");
  } else {
    load_adapter(base, o.adapter_dir);  // made for this base (by either of its names)
    LoraAdapter a = LoraAdapter::load(o.adapter_dir, torch_model(base), /*check_base=*/false);
    AdapterInfo info = file_exists(o.adapter_dir + "/lorazip.json") ? LoraAdapter::read_info(o.adapter_dir) : AdapterInfo{};
    info.base_model_name_or_path = o.base_name.empty() ? absolute_path(o.base_dir) : o.base_name;
    if (o.base_name.empty() && is_gguf_path(o.base_dir))
      log_info("note: the base is a GGUF file, which transformers' from_pretrained does not take as a model path; for "
               "AutoPeftModelForCausalLM, export again with --base-name naming the Hugging Face model it was converted from "
               "(SmolLM2-135M-Instruct's GGUF: HuggingFaceTB/SmolLM2-135M-Instruct)");
    info.base_fingerprint = base.fingerprint;
    info.tokenizer_sha256 = base.tokenizer->sha256();
    a.save(o.out_dir, info);
    // The same adapter for llama.cpp (llama-cli --lora), inside the PEFT directory.
    const std::string gguf_path = o.out_dir + "/adapter_model.gguf";
    save_gguf_lora(a, base.config, gguf_path, info.domain);
    log_info("wrote PEFT adapter " + o.out_dir + " (" + std::to_string(a.num_parameters()) + " parameters) and its llama.cpp LoRA " +
             gguf_path);
  }
  return 0;
}

}  // namespace lorazip
