// lorazip prepare / pretrain / train / eval / export / run.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "adapters/adapter.h"
#include "adapters/gguf_lora.h"
#include "cli/commands.h"
#include "cli/job.h"
#include "codec/model_setup.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "data/token_store.h"
#include "eval/evaluation.h"
#include "model/checkpoint.h"
#include "train/evaluate.h"

namespace fs = std::filesystem;

namespace lorazip {
namespace {

JobConfig load_job(const PipelineOptions& o, const GlobalOptions& g0, GlobalOptions& g) {
  JobConfig j = JobConfig::load(o.config);
  if (!o.work_dir.empty()) j.work_dir = o.work_dir;
  g = apply_config_threads(j, g0);
  log_info("config " + o.config + " (resolved), " + std::to_string(g.threads) + " threads:\n" + j.resolved_text);
  return j;
}

std::string fmt3(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

PrepareStats do_prepare(const JobConfig& j, const PipelineOptions& o, const GlobalOptions& g) {
  PrepareConfig cfg = j.data;
  if (!o.inputs.empty()) {
    cfg.inputs.clear();
    for (const auto& arg : o.inputs) cfg.inputs.push_back(PrepareConfig::parse_input_arg(arg));
  }
  if (!o.tokenizer.empty()) cfg.tokenizer.model = o.tokenizer;
  if (o.vocab_size > 0) cfg.tokenizer.vocab_size = o.vocab_size;
  cfg.threads = g.threads;
  cfg.validate();
  PrepareStats s = prepare(cfg, j.work_dir);
  std::printf("%s\n", s.to_markdown().c_str());
  return s;
}

TrainResult do_pretrain(JobConfig& j, bool resume, const GlobalOptions& g) {
  Tokenizer tok = Tokenizer::load(j.tokenizer_path());
  LlamaConfig mc = j.model;
  if (mc.vocab_size != tok.vocab_size()) {
    log_info("model vocab_size set to the tokenizer's " + std::to_string(tok.vocab_size()) + " (config said " +
             std::to_string(mc.vocab_size) + ")");
    mc.vocab_size = tok.vocab_size();
  }
  mc.bos_token_id = tok.bos_id();
  mc.eos_token_id = tok.eos_id();
  TokenStore store = TokenStore::open(j.store_path());
  if (store.tokenizer_sha256() != tok.sha256())
    throw std::runtime_error("token store '" + j.store_path() + "' was not made with tokenizer '" + j.tokenizer_path() + "'; rerun prepare");
  TrainData data = load_train_data(store, j.pretrain.domains);
  RunOptions ro;
  ro.run_dir = j.work_dir + "/runs/pretrain";
  ro.resume = resume;
  ro.threads = g.threads;
  ro.eval_batch_tokens = j.eval.batch_tokens;
  TrainResult r = pretrain(mc, j.pretrain, data, tok.model_bytes(), j.work_dir + "/base", ro);
  log_info("pretrain: " + std::to_string(r.steps) + " steps, " + std::to_string(r.tokens) + " tokens, " + format_duration(r.seconds) +
           ", val " + fmt3(r.final_val_bits_per_token) + " bits/token (" + r.stop_reason + ")");
  return r;
}

TrainResult do_train(const JobConfig& j, const std::string& domain, const std::string& base_dir, bool resume,
                     const GlobalOptions& g) {
  LoadedBase base = load_base(base_dir);
  TokenStore store = TokenStore::open(j.store_path());
  if (store.tokenizer_sha256() != base.tokenizer->sha256())
    throw std::runtime_error("token store '" + j.store_path() + "' was prepared with another tokenizer than base '" + base_dir + "'");
  TrainData data = load_train_data(store, {domain});
  AdapterInfo info;
  info.domain = domain;
  info.base_model_name_or_path = base_dir;
  info.tokenizer_sha256 = base.tokenizer->sha256();
  info.base_fingerprint = base.fingerprint;
  RunOptions ro;
  ro.run_dir = j.work_dir + "/runs/adapter-" + domain;
  ro.resume = resume;
  ro.threads = g.threads;
  ro.eval_batch_tokens = j.eval.batch_tokens;
  TrainResult r = train_lora(base.model, j.lora, j.train, data, info, j.adapters_path() + "/" + domain, ro);
  log_info("adapter " + domain + ": " + std::to_string(r.steps) + " steps, " + format_duration(r.seconds) + ", val " +
           fmt3(r.base_val_bits_per_token) + " -> " + fmt3(r.best_val_bits_per_token) + " bits/token (" + r.stop_reason + ")");
  return r;
}

Report do_eval(const JobConfig& j, const PipelineOptions& o, const GlobalOptions& g) {
  LoadedBase base = load_base(o.base_dir.empty() ? j.base_path() : o.base_dir);
  EvaluationOptions eo;
  eo.store_path = j.store_path();
  eo.adapters_dir = o.adapters_dir.empty() ? j.adapters_path() : o.adapters_dir;
  eo.max_docs = j.eval.max_docs;
  eo.sample_docs = o.sample_docs >= 0 ? o.sample_docs : j.eval.sample_docs;
  eo.classical = j.eval.classical;
  eo.batch_tokens = j.eval.batch_tokens;
  eo.group_streams = j.codec.group_streams;
  eo.chunk_tokens = j.codec.chunk_tokens;
  eo.threads = g.threads;
  for (const auto& x : j.eval.extra) {
    if (x.optional && !fs::exists(x.input.path)) {
      log_info("eval: skipping extra corpus '" + x.name + "': " + x.input.path + " not found");
      continue;
    }
    eo.extra.push_back({x.name, x.input, x.adapter});
  }
  for (const auto& arg : o.extra) {
    InputSpec in = PrepareConfig::parse_input_arg(arg);
    eo.extra.push_back({in.domain, in, ""});
  }
  Report r = run_evaluation(base, eo);
  r.write(j.work_dir);
  std::printf("%s\n", r.to_markdown().c_str());
  log_info("eval: " + format_duration(r.seconds) + "; wrote " + j.work_dir + "/report.{md,json,csv,svg}");
  return r;
}

}  // namespace

GlobalOptions apply_config_threads(const JobConfig& j, const GlobalOptions& g) {
  GlobalOptions out = g;
  if (!g.threads_given && j.threads > 0) out.threads = set_torch_threads(j.threads);
  return out;
}

PrepareStats run_prepare_stage(const JobConfig& j, const GlobalOptions& g) { return do_prepare(j, PipelineOptions{}, g); }
TrainResult run_pretrain_stage(JobConfig& j, bool resume, const GlobalOptions& g) { return do_pretrain(j, resume, g); }
TrainResult run_train_stage(const JobConfig& j, const std::string& domain, bool resume, const GlobalOptions& g) {
  return do_train(j, domain, j.base_path(), resume, g);
}
Report run_eval_stage(const JobConfig& j, const GlobalOptions& g) {
  PipelineOptions o;
  return do_eval(j, o, g);
}

int cmd_prepare(const PipelineOptions& o, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(o, g0, g);
  do_prepare(j, o, g);
  return 0;
}

int cmd_pretrain(const PipelineOptions& o, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(o, g0, g);
  if (!j.base_model.empty())
    log_info("note: the config names base_model '" + j.base_model + "'; pretraining writes " + j.work_dir + "/base anyway");
  do_pretrain(j, o.resume, g);
  return 0;
}

int cmd_train(const PipelineOptions& o, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(o, g0, g);
  do_train(j, o.domain, o.base_dir.empty() ? j.base_path() : o.base_dir, o.resume, g);
  return 0;
}

int cmd_eval(const PipelineOptions& o, const GlobalOptions& g0) {
  GlobalOptions g;
  JobConfig j = load_job(o, g0, g);
  do_eval(j, o, g);
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
    LoraAdapter a = LoraAdapter::load(o.adapter_dir, base.model);
    AdapterInfo info = file_exists(o.adapter_dir + "/lorazip.json") ? LoraAdapter::read_info(o.adapter_dir) : AdapterInfo{};
    if (info.base_model_name_or_path.empty()) info.base_model_name_or_path = o.base_dir;
    info.base_fingerprint = base.fingerprint;
    info.tokenizer_sha256 = base.tokenizer->sha256();
    a.save(o.out_dir, info);
    // The same adapter for llama.cpp (llama-cli --lora), inside the PEFT directory.
    const std::string gguf_path = o.out_dir + "/adapter_model.gguf";
    save_gguf_lora(a, base.model->config(), gguf_path, info.domain);
    log_info("wrote PEFT adapter " + o.out_dir + " (" + std::to_string(a.num_parameters()) + " parameters) and its llama.cpp LoRA " +
             gguf_path);
  }
  return 0;
}

}  // namespace lorazip
