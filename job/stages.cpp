// The main job's stages (see stages.h): each loads what it needs from the work directory, checks
// that the pieces belong together (store and tokenizer, base and tokenizer), runs, and logs one
// summary line.
#include "job/stages.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "adapters/adapter.h"
#include "cluster/router.h"
#include "runtime/model_setup.h"
#include "train/torch_base.h"
#include "common/fs.h"
#include "common/log.h"
#include "data/token_store.h"
#include "eval/evaluation.h"
#include "gen/context.h"
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
  ro.device = j.device;
  return ro;
}

}  // namespace

ClusterStats cluster_stage(const JobConfig& j, int threads, const ClusterOverrides& o) {
  ClusterConfig cfg = j.cluster;
  if (o.k > 0) cfg.k = o.k;
  std::vector<InputSpec> inputs = j.data.inputs;
  if (!o.inputs.empty()) {
    inputs.clear();
    for (const auto& arg : o.inputs) inputs.push_back(PrepareConfig::parse_input_arg(arg));
  }
  const std::string model_path = !o.model.empty() ? o.model : j.cluster_model();
  if (model_path.empty()) throw std::invalid_argument("cluster: no model to embed with: pass -m, or set base_model or cluster.model in the config");
  if (cfg.k < 1) throw std::invalid_argument("cluster: no k: pass -k, or set cluster.k in the config");
  LoadedModel base = load_model(model_path);
  std::shared_ptr<const engine::Model> model = base.engine_model();
  ClusterStats st = cluster_corpus(*model, *base.tokenizer, base.fingerprint, inputs, cfg,
                                   o.out_dir.empty() ? j.clusters_path() : o.out_dir, threads);
  log_info("cluster: " + std::to_string(st.docs) + " documents -> " + std::to_string(st.k) + " clusters (purity " + fmt3(st.purity) +
           ", adjusted Rand index " + fmt3(st.adjusted_rand_index) + " against the inputs' labels)");
  return st;
}

std::vector<InputSpec> cluster_inputs(const JobConfig& j) {
  std::vector<InputSpec> out;
  for (int64_t c = 0; c < j.cluster.k; ++c) {
    InputSpec in;
    in.domain = cluster_name(c, j.cluster.k);
    in.path = j.clusters_path() + "/" + in.domain + ".jsonl";
    in.format = "jsonl";
    in.text_field = "text";
    out.push_back(in);
  }
  return out;
}

PrepareStats prepare_stage(const JobConfig& j, int threads, const PrepareOverrides& o) {
  PrepareConfig cfg = j.data;
  if (j.cluster.k > 0) cfg.inputs = cluster_inputs(j);
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

namespace {

// The responses' prompts (response bytes -> prompt): the clusters' records where the job clusters,
// else the data inputs' JSONL records ("messages" inputs hold turns, not prompt/response records).
std::map<std::string, std::string> response_prompts(const JobConfig& j) {
  std::vector<InputSpec> inputs;
  if (j.cluster.k > 0) {
    inputs = cluster_inputs(j);
  } else {
    for (const InputSpec& in : j.data.inputs)
      if (!in.messages) inputs.push_back(in);
  }
  std::map<std::string, std::string> prompts;
  for (const ClusterRecord& rec : read_cluster_records(inputs, "prompt"))
    if (rec.has_prompt) prompts.emplace(rec.text, rec.prompt);
  return prompts;
}

// Conditioned training: each document with a prompt gets its rendered prompt as its context, cut
// as the codec cuts it (context_window: no leading BOS, the last chunk/2 tokens). Returns how many.
size_t attach_contexts(DocSet& set, const Tokenizer& tok, const std::map<std::string, std::string>& prompts,
                       const gen::ContextRenderer& renderer, int64_t chunk_tokens) {
  if (set.num_docs() == 0) return 0;
  const std::vector<std::string> texts = decode_documents(set, tok);
  std::vector<std::vector<int32_t>> contexts(set.num_docs());
  size_t n = 0;
  for (size_t d = 0; d < texts.size(); ++d) {
    auto it = prompts.find(texts[d]);
    if (it == prompts.end()) continue;
    contexts[d] = context_window(renderer.render(it->second).tokens, tok.bos_id(), chunk_tokens);
    n += contexts[d].empty() ? 0 : 1;
  }
  set.set_contexts(contexts);
  return n;
}

}  // namespace

TrainResult adapter_stage(const JobConfig& j, const std::string& domain, const std::string& base_dir, bool resume, int threads) {
  LoadedModel base = load_model(base_dir);
  TokenStore store = TokenStore::open(j.store_path());
  if (store.tokenizer_sha256() != base.tokenizer->sha256())
    throw std::runtime_error("token store '" + j.store_path() + "' was prepared with another tokenizer than base '" + base_dir + "'");
  TrainData data = load_train_data(store, {domain});
  if (j.train.conditioned) {
    const gen::ContextRenderer renderer(base_dir, *base.tokenizer, gen::parse_context_template(j.eval.context_template));
    const std::map<std::string, std::string> prompts = response_prompts(j);
    const int64_t chunk = Chunking::resolve(base.config.max_position_embeddings, j.codec.chunk_tokens, j.codec.context_tokens).chunk;
    const size_t nt = attach_contexts(data.train, *base.tokenizer, prompts, renderer, chunk);
    const size_t nv = attach_contexts(data.val, *base.tokenizer, prompts, renderer, chunk);
    log_info("adapter " + domain + ": conditioned loss: " + std::to_string(nt) + " of " + std::to_string(data.train.num_docs()) +
             " training and " + std::to_string(nv) + " of " + std::to_string(data.val.num_docs()) + " validation documents read after their prompt (" +
             renderer.template_name() + "), the prompt's tokens masked out of the loss");
    if (nt == 0) throw std::runtime_error("train.conditioned: no training document of domain '" + domain + "' has a prompt in the data inputs");
  }
  AdapterInfo info;
  info.domain = domain;
  info.base_model_name_or_path = absolute_path(base_dir);  // resolves from any folder (PEFT, llama.cpp)
  info.tokenizer_sha256 = base.tokenizer->sha256();
  info.base_fingerprint = base.fingerprint;
  LlamaForCausalLM model = load_torch_model(base);
  TrainResult r = train_lora(model, j.lora, j.train, data, info, j.adapters_path() + "/" + domain,
                             run_options(j, "adapter-" + domain, resume, threads));
  log_info("adapter " + domain + ": " + std::to_string(r.steps) + " steps, " + format_duration(r.seconds) + ", val " +
           fmt3(r.base_val_bits_per_token) + " -> " + fmt3(r.best_val_bits_per_token) + " bits/token (" + r.stop_reason + ")");
  return r;
}

Report eval_stage(const JobConfig& j, int threads, const EvalOverrides& o) {
  // The report's bits are what the coding engine codes, and the engine runs on the CPU only.
  if (j.device != "cpu") log_info("eval: device " + j.device + " is for training; the report is computed on the CPU by the coding engine");
  LoadedModel base = load_model(o.base_dir.empty() ? j.base_path() : o.base_dir);
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
  const std::string router = j.clusters_path() + "/router.json";
  if (j.cluster.k > 0 && fs::exists(router)) {
    // Routing by prompt is measured where the router was made with this base (it embeds with it).
    PromptRouter pr = PromptRouter::load(router);
    try {
      pr.check_base([&](const std::string& fp) { return base.is_named_by(fp); }, base.fingerprint, base.tokenizer->sha256());
      eo.router_path = router;
      for (const ClusterRecord& rec : read_cluster_records(cluster_inputs(j), "prompt"))
        if (rec.has_prompt) eo.prompts.emplace(rec.text, rec.prompt);
    } catch (const std::runtime_error& e) {
      log_info(std::string("eval: no prompt-routed column: ") + e.what());
    }
  }
  eo.conditioned = j.eval.conditioned;
  eo.context_template = j.eval.context_template;
  if (eo.conditioned && eo.prompts.empty()) {
    try {
      eo.prompts = response_prompts(j);
    } catch (const std::exception& e) {
      log_info(std::string("eval: no conditioned columns: ") + e.what());
    }
  }
  Report r = run_evaluation(base, eo);
  r.write(j.work_dir);
  log_info("eval: " + format_duration(r.seconds) + "; wrote " + j.work_dir + "/report.{md,json,csv,svg}");
  return r;
}

}  // namespace lorazip
