// lorazip run: the main job. Stages (prepare -> pretrain -> one adapter per domain -> eval ->
// codec check) are cached in WORK/stages.json: each stage records a stamp, the SHA-256 of
// everything it depends on (its config section, the input files' bytes, the stamps of the stages
// before it). A stage whose stamp is unchanged and whose outputs exist is skipped; a stage that
// was interrupted with the same stamp resumes from its checkpoint; a changed stamp reruns it and
// everything after it.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "cli/commands.h"
#include "cli/job.h"
#include "codec/model_setup.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "data/token_store.h"
#include "eval/evaluation.h"

namespace fs = std::filesystem;

namespace lorazip {

// Defined in cmd_pipeline.cpp.
PrepareStats run_prepare_stage(const JobConfig& j, const GlobalOptions& g);
TrainResult run_pretrain_stage(JobConfig& j, bool resume, const GlobalOptions& g);
TrainResult run_train_stage(const JobConfig& j, const std::string& domain, bool resume, const GlobalOptions& g);
Report run_eval_stage(const JobConfig& j, const GlobalOptions& g);

namespace {

class StageCache {
 public:
  explicit StageCache(std::string path) : path_(std::move(path)) {
    if (file_exists(path_)) {
      try {
        state_ = nlohmann::json::parse(read_file(path_));
      } catch (const std::exception&) {
        log_info("stage cache " + path_ + " is unreadable; every stage will run");
        state_ = nlohmann::json::object();
      }
    } else {
      state_ = nlohmann::json::object();
    }
  }
  bool done(const std::string& stage, const std::string& stamp) const {
    return state_.contains(stage) && state_[stage].value("stamp", "") == stamp && state_[stage].value("done", false);
  }
  bool started(const std::string& stage, const std::string& stamp) const {
    return state_.contains(stage) && state_[stage].value("stamp", "") == stamp;
  }
  void mark(const std::string& stage, const std::string& stamp, bool done, double seconds = 0) {
    state_[stage] = {{"stamp", stamp}, {"done", done}, {"seconds", seconds}};
    write_file_atomic(path_, state_.dump(2) + "\n");
  }

 private:
  std::string path_;
  nlohmann::json state_;
};

std::string stamp_of(std::initializer_list<std::string> parts) {
  Sha256 h;
  for (const auto& p : parts) h.update_field(p);
  return h.hex();
}

// Content of every input file (paths and bytes) plus the data section.
std::string prepare_stamp(const JobConfig& j) {
  Sha256 h;
  h.update_field(j.data.to_json());
  for (const auto& in : j.data.inputs)
    for (const auto& f : list_input_files(in.path)) {
      h.update_field(f);
      h.update_field(sha256_file(f));
    }
  if (!j.data.tokenizer.model.empty()) h.update_field(sha256_file(j.data.tokenizer.model));
  return h.hex();
}

std::string external_base_stamp(const std::string& dir) {
  Sha256 h;
  if (fs::is_regular_file(dir)) {  // a GGUF file
    h.update_field(fs::path(dir).filename().string());
    h.update_field(std::to_string(fs::file_size(dir)));
    h.update_field(std::to_string(fs::last_write_time(dir).time_since_epoch().count()));
    return h.hex();
  }
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    h.update_field(e.path().filename().string());
    h.update_field(std::to_string(e.file_size()));
    h.update_field(std::to_string(e.last_write_time().time_since_epoch().count()));
  }
  return h.hex();
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int cmd_run(const PipelineOptions& o, const GlobalOptions& g0) {
  auto t_all = std::chrono::steady_clock::now();
  JobConfig j = JobConfig::load(o.config);
  if (!o.work_dir.empty()) j.work_dir = o.work_dir;
  GlobalOptions g = apply_config_threads(j, g0);
  log_info("lorazip run: config " + o.config + ", work directory " + j.work_dir + ", " + std::to_string(g.threads) + " threads");
  log_info("resolved config:\n" + j.resolved_text);
  fs::create_directories(j.work_dir);
  StageCache cache(j.work_dir + "/stages.json");

  // 1. prepare (+ tokenizer)
  std::string s_prep = prepare_stamp(j);
  if (!o.force && cache.done("prepare", s_prep) && file_exists(j.store_path()) && file_exists(j.tokenizer_path())) {
    log_info("[1/5] prepare: cached (inputs and data config unchanged)");
  } else {
    log_info("[1/5] prepare: corpus -> " + j.store_path());
    auto t = std::chrono::steady_clock::now();
    cache.mark("prepare", s_prep, false);
    run_prepare_stage(j, g);
    cache.mark("prepare", s_prep, true, since(t));
  }

  // 2. base model
  std::string s_base;
  if (!j.base_model.empty()) {
    s_base = stamp_of({"external", j.base_model, external_base_stamp(j.base_model)});
    log_info("[2/5] base: using " + j.base_model + " (no pretraining)");
  } else {
    s_base = stamp_of({"pretrain", s_prep, j.model.to_hf_json().dump(), j.pretrain.to_json().dump()});
    if (!o.force && cache.done("pretrain", s_base) && file_exists(j.base_path() + "/config.json")) {
      log_info("[2/5] pretrain: cached");
    } else {
      bool resume = !o.force && cache.started("pretrain", s_base);
      log_info(std::string("[2/5] pretrain: a small base model -> ") + j.base_path() + (resume ? " (resuming)" : ""));
      auto t = std::chrono::steady_clock::now();
      cache.mark("pretrain", s_base, false);
      run_pretrain_stage(j, resume, g);
      cache.mark("pretrain", s_base, true, since(t));
    }
  }

  // 3. adapters
  std::vector<std::string> domains = j.adapters;
  if (domains.empty()) domains = TokenStore::open(j.store_path()).domains();
  std::string s_adapters;
  for (size_t i = 0; i < domains.size(); ++i) {
    const std::string& d = domains[i];
    std::string s = stamp_of({"adapter", d, s_base, s_prep, j.lora.to_json().dump(), j.train.to_json().dump()});
    s_adapters += s;
    std::string stage = "adapter:" + d;
    std::string tag = "[3/5] adapter " + std::to_string(i + 1) + "/" + std::to_string(domains.size()) + " '" + d + "'";
    if (!o.force && cache.done(stage, s) && file_exists(j.adapters_path() + "/" + d + "/adapter_config.json")) {
      log_info(tag + ": cached");
      continue;
    }
    bool resume = !o.force && cache.started(stage, s);
    log_info(tag + ": training" + (resume ? " (resuming)" : ""));
    auto t = std::chrono::steady_clock::now();
    cache.mark(stage, s, false);
    run_train_stage(j, d, resume, g);
    cache.mark(stage, s, true, since(t));
  }

  // 4. eval
  nlohmann::json ev = {{"max_docs", j.eval.max_docs}, {"sample_docs", j.eval.sample_docs}, {"classical", j.eval.classical},
                       {"group", j.codec.group_streams}, {"chunk", j.codec.chunk_tokens}, {"extra", j.eval.extra.size()}};
  std::string s_eval = stamp_of({"eval", s_base, s_prep, s_adapters, ev.dump()});
  if (!o.force && cache.done("eval", s_eval) && file_exists(j.work_dir + "/report.md")) {
    log_info("[4/5] eval: cached; report " + j.work_dir + "/report.md");
    std::printf("%s\n", read_file(j.work_dir + "/report.md").c_str());
  } else {
    log_info("[4/5] eval: bits/token per domain, base vs adapters vs classical compressors");
    auto t = std::chrono::steady_clock::now();
    cache.mark("eval", s_eval, false);
    run_eval_stage(j, g);
    cache.mark("eval", s_eval, true, since(t));
  }

  // 5. codec check: compress and decompress one test document of the first adapter domain.
  {
    log_info("[5/5] codec check: compress + decompress a test document");
    LoadedBase base = load_base(j.base_path());
    TokenStore store = TokenStore::open(j.store_path());
    // The longest test document of any adapter domain (or of any domain when there are none).
    // Chosen by the stored byte lengths; only that document is decoded.
    store.check_tokenizer(*base.tokenizer);
    std::string domain;
    std::vector<int32_t> ids;
    uint64_t longest = 0;
    for (const auto& d : domains.empty() ? store.domains() : domains) {
      DocSet test = store.read(d, "test");
      for (size_t i = 0; i < test.num_docs(); ++i)
        if (domain.empty() || test.byte_lengths[i] > longest) {
          longest = test.byte_lengths[i];
          domain = d;
          ids.assign(test.doc(i), test.doc(i) + test.doc_len(i));
        }
    }
    const std::string original = base.tokenizer->decode(ids);
    if (domain.empty()) throw std::runtime_error("codec check: no test documents in " + j.store_path());
    std::string adapter_dir = j.adapters_path() + "/" + domain;
    bool with_adapter = file_exists(adapter_dir + "/adapter_config.json");
    CodecSet codecs(base);
    LmCodec& codec = codecs.get(with_adapter ? adapter_dir : "");
    LmCodecOptions co;
    co.group_streams = j.codec.group_streams;
    co.chunk_tokens = j.codec.chunk_tokens;
    co.threads = g.threads;
    CodeStats cs, ds;
    std::string packed = codec.compress(original, co, &cs);
    write_file_atomic(j.work_dir + "/sample.txt", original);
    write_file_atomic(j.work_dir + "/sample.txt.lz", packed);
    std::string back = codec.decompress(packed, j.work_dir + "/sample.txt.lz", 1, &ds);
    if (back != original) throw std::runtime_error("codec check FAILED: the decompressed sample differs from the original");
    std::printf("codec check (%s adapter, %s): %zu bytes -> %zu bytes (ratio %.4f, %.3f bits/byte); compress %.2f s on %d threads, "
                "decompress %.2f s on 1 thread; round trip byte for byte: ok\n",
                with_adapter ? domain.c_str() : "no", (j.work_dir + "/sample.txt").c_str(), original.size(), packed.size(),
                original.empty() ? 0.0 : double(packed.size()) / original.size(),
                original.empty() ? 0.0 : 8.0 * packed.size() / original.size(), cs.seconds, g.threads, ds.seconds);
  }
  log_info("lorazip run: done in " + format_duration(since(t_all)) + "; report " + j.work_dir + "/report.md, chart " + j.work_dir +
           "/report.svg");
  return 0;
}

}  // namespace lorazip
