// The main job's stages (see stages.h): each loads what it needs from the work directory, checks
// that the pieces belong together (store and tokenizer, base and tokenizer), runs, and logs one
// summary line.
#include "job/stages.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "adapters/adapter.h"
#include "codec/model_setup.h"
#include "common/log.h"
#include "data/token_store.h"
#include "eval/evaluation.h"
#include "model/tokenizer.h"
#include "train/distributed.h"
#include "train/evaluate.h"

namespace fs = std::filesystem;

namespace lorazip {
namespace {

std::string fmt3(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

RunOptions run_options(const JobConfig& j, const std::string& run_name, bool resume, int threads) {
  RunOptions ro;
  ro.run_dir = j.work_dir + "/runs/" + run_name;
  ro.resume = resume;
  ro.threads = threads;
  ro.eval_batch_tokens = j.eval.batch_tokens;
  ro.dist = process_group();  // data-parallel when the program joined a torchrun job
  return ro;
}

}  // namespace

PrepareStats prepare_stage(const JobConfig& j, int threads, const PrepareOverrides& o) {
  PrepareConfig cfg = j.data;
  if (!o.inputs.empty()) {
    cfg.inputs.clear();
    for (const auto& arg : o.inputs) cfg.inputs.push_back(PrepareConfig::parse_input_arg(arg));
  }
  if (!o.tokenizer.empty()) cfg.tokenizer.model = o.tokenizer;
  if (o.vocab_size > 0) cfg.tokenizer.vocab_size = o.vocab_size;
  cfg.threads = threads;
  cfg.validate();
  return prepare(cfg, j.work_dir);
}

TrainResult pretrain_stage(const JobConfig& j, bool resume, int threads) {
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
  TrainResult r = pretrain(mc, j.pretrain, data, tok.model_bytes(), j.work_dir + "/base", run_options(j, "pretrain", resume, threads));
  log_info("pretrain: " + std::to_string(r.steps) + " steps, " + std::to_string(r.tokens) + " tokens, " + format_duration(r.seconds) +
           ", val " + fmt3(r.final_val_bits_per_token) + " bits/token (" + r.stop_reason + ")");
  return r;
}

TrainResult adapter_stage(const JobConfig& j, const std::string& domain, const std::string& base_dir, bool resume, int threads) {
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
  TrainResult r = train_lora(base.model, j.lora, j.train, data, info, j.adapters_path() + "/" + domain,
                             run_options(j, "adapter-" + domain, resume, threads));
  log_info("adapter " + domain + ": " + std::to_string(r.steps) + " steps, " + format_duration(r.seconds) + ", val " +
           fmt3(r.base_val_bits_per_token) + " -> " + fmt3(r.best_val_bits_per_token) + " bits/token (" + r.stop_reason + ")");
  return r;
}

Report eval_stage(const JobConfig& j, int threads, const EvalOverrides& o) {
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
  eo.context_tokens = j.codec.context_tokens;
  eo.threads = threads;
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
  log_info("eval: " + format_duration(r.seconds) + "; wrote " + j.work_dir + "/report.{md,json,csv,svg}");
  return r;
}

}  // namespace lorazip
