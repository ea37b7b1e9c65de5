// The staged job runner (see run_job.h): the stage cache, the stamps, and the order of stages.
#include "job/run_job.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "runtime/model_setup.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "data/corpus.h"
#include "data/token_store.h"
#include "job/stages.h"
#include "train/distributed.h"

namespace fs = std::filesystem;

namespace lorazip {
namespace {

// WORK/stages.json: {stage: {stamp, done, seconds}}. An unreadable file means nothing is cached.
class StageCache {
 public:
  // `write` = false: a data-parallel rank other than 0, which follows the cache in memory only.
  StageCache(std::string path, bool write) : path_(std::move(path)), write_(write) {
    state_ = nlohmann::json::object();
    if (!file_exists(path_)) return;
    try {
      state_ = nlohmann::json::parse(read_file(path_));
    } catch (const std::exception&) {
      log_info("stage cache " + path_ + " is unreadable; every stage will run");
    }
    if (!state_.is_object()) state_ = nlohmann::json::object();
  }
  bool done(const std::string& stage, const std::string& stamp) const {
    return started(stage, stamp) && state_[stage].value("done", false);
  }
  bool started(const std::string& stage, const std::string& stamp) const {
    return state_.contains(stage) && state_[stage].is_object() && state_[stage].value("stamp", "") == stamp;
  }
  void mark(const std::string& stage, const std::string& stamp, bool done, double seconds = 0) {
    state_[stage] = {{"stamp", stamp}, {"done", done}, {"seconds", seconds}};
    if (write_) write_file_atomic(path_, state_.dump(2) + "\n");
  }

 private:
  std::string path_;
  bool write_ = true;
  nlohmann::json state_;
};

// Data-parallel `run` (launched by torchrun): the training stages run on every rank; prepare runs
// on rank 0 while the others wait; eval and the codec check run on rank 0 alone. Every rank takes
// the same cache decisions: all read stages.json before rank 0 writes it, and each stage ends with
// a barrier, so the outputs they test for are the same files.
enum class Ranks { kAll, kLeaderThenBarrier, kLeaderOnly };

std::string stamp_of(std::initializer_list<std::string> parts) {
  Sha256 h;
  for (const auto& p : parts) h.update_field(p);
  return h.hex();
}

// Every file an input names, by path and content.
void hash_input_files(Sha256& h, const std::string& path) {
  for (const auto& f : list_input_files(path)) {
    h.update_field(f);
    h.update_field(sha256_file(f));
  }
}

// A base directory made elsewhere: its files' names, sizes and modification times (hashing
// gigabytes of weights on every run would cost more than it saves).
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

// Runs `body` as stage `stage` unless the cache has it done under `stamp` and `outputs_exist`;
// `body(resume)` resumes when the same stamp was started before. Returns true when it ran.
template <class Body>
bool run_stage(StageCache& cache, const RunJobOptions& o, const std::string& stage, const std::string& stamp, bool outputs_exist,
               const std::string& tag, const std::string& what, Body&& body, Ranks ranks = Ranks::kLeaderThenBarrier) {
  if (!o.force && outputs_exist && cache.done(stage, stamp)) {
    log_info(tag + ": cached");
    return false;
  }
  const bool resume = !o.force && cache.started(stage, stamp);
  log_info(tag + ": " + what + (resume ? " (resuming)" : ""));
  auto t = std::chrono::steady_clock::now();
  cache.mark(stage, stamp, false);
  const std::shared_ptr<DistGroup> pg = process_group();
  if (!pg || pg->rank() == 0 || ranks == Ranks::kAll) body(resume);
  // After a stage rank 0 ran alone the others may wait long (tokenizer training): a day's timeout;
  // a rank 0 that dies still ends the wait at once (its connections close).
  if (pg && ranks != Ranks::kLeaderOnly) pg->barrier("stage " + stage, ranks == Ranks::kAll ? 0.0 : 86400.0);
  cache.mark(stage, stamp, true, since(t));
  return true;
}

// Compresses and decompresses the longest test document of the adapter domains (of any domain
// when there are none) with its own adapter; returns the line that reports it.
std::string codec_check(const JobConfig& j, const std::vector<std::string>& domains, int threads) {
  LoadedModel base = load_model(j.base_path());
  TokenStore store = TokenStore::open(j.store_path());
  store.check_tokenizer(*base.tokenizer);
  // Chosen by the stored byte lengths; only that document is decoded.
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
  if (domain.empty()) throw std::runtime_error("codec check: no test documents in " + j.store_path());
  const std::string original = base.tokenizer->decode(ids);
  const std::string adapter_dir = j.adapters_path() + "/" + domain;
  const bool with_adapter = file_exists(adapter_dir + "/adapter_config.json");
  CodecSet codecs(base);
  LmCodec& codec = codecs.get(with_adapter ? adapter_dir : "");
  LmCodecOptions co;
  co.group_streams = j.codec.group_streams;
  co.chunk_tokens = j.codec.chunk_tokens;
  co.context_tokens = j.codec.context_tokens;
  co.threads = threads;
  CodeStats cs, ds;
  const std::string packed = codec.compress(original, co, &cs);
  write_file_atomic(j.work_dir + "/sample.txt", original);
  write_file_atomic(j.work_dir + "/sample.txt.lz", packed);
  const std::string back = codec.decompress(packed, j.work_dir + "/sample.txt.lz", 1, &ds);
  if (back != original) throw std::runtime_error("codec check FAILED: the decompressed sample differs from the original");
  char line[512];
  std::snprintf(line, sizeof line,
                "codec check (%s adapter, %s): %zu bytes -> %zu bytes (ratio %.4f, %.3f bits/byte); compress %.2f s on %d threads, "
                "decompress %.2f s on 1 thread; round trip byte for byte: ok",
                with_adapter ? domain.c_str() : "no", (j.work_dir + "/sample.txt").c_str(), original.size(), packed.size(),
                original.empty() ? 0.0 : double(packed.size()) / original.size(),
                original.empty() ? 0.0 : 8.0 * packed.size() / original.size(), cs.seconds, threads, ds.seconds);
  return line;
}

}  // namespace

std::string prepare_stamp(const JobConfig& j) {
  Sha256 h;
  h.update_field(j.data.to_json());
  for (const auto& in : j.data.inputs) hash_input_files(h, in.path);
  if (!j.data.tokenizer.model.empty()) h.update_field(sha256_file(j.data.tokenizer.model));
  return h.hex();
}

std::string eval_stamp(const JobConfig& j, const std::string& base_stamp, const std::string& prepare_stamp,
                       const std::string& adapters_stamp) {
  Sha256 h;
  for (const std::string& s : {std::string("eval"), base_stamp, prepare_stamp, adapters_stamp, j.eval.to_json().dump(),
                               j.codec.to_json().dump()})
    h.update_field(s);
  for (const auto& x : j.eval.extra) {
    h.update_field(x.name);
    if (x.optional && !fs::exists(x.input.path)) h.update_field("absent");
    else hash_input_files(h, x.input.path);
  }
  return h.hex();
}

void run_job(const JobConfig& j, const RunJobOptions& o) {
  auto t_all = std::chrono::steady_clock::now();
  const std::shared_ptr<DistGroup> pg = process_group();
  const bool leader = !pg || pg->rank() == 0;
  auto output = [&](const std::string& text) {
    if (o.output && leader) o.output(text);
  };
  fs::create_directories(j.work_dir);
  StageCache cache(j.work_dir + "/stages.json", leader);
  if (pg) pg->barrier("every rank reading " + j.work_dir + "/stages.json");

  // 0. clusters as domains (only with cluster.k > 0): the inputs embedded by the cluster model
  std::string s_cluster;
  if (j.cluster.k > 0) {
    Sha256 h;
    h.update_field("cluster");
    h.update_field(j.cluster.to_json().dump());
    for (const auto& in : j.data.inputs) {
      h.update_field(nlohmann::json{{"domain", in.domain}, {"path", in.path}, {"format", in.format}, {"text_field", in.text_field},
                                    {"max_docs", in.max_docs}}.dump());
      hash_input_files(h, in.path);
    }
    h.update_field(external_base_stamp(j.cluster_model()));
    s_cluster = h.hex();
    run_stage(cache, o, "cluster", s_cluster, file_exists(j.clusters_path() + "/router.json"), "[0/5] cluster",
              "k-means on " + j.cluster_model() + "'s embeddings -> " + j.clusters_path(),
              [&](bool) { output(cluster_stage(j, o.threads).to_markdown()); });
  }

  // 1. prepare (+ tokenizer)
  const std::string s_prep = s_cluster.empty() ? prepare_stamp(j) : stamp_of({prepare_stamp(j), s_cluster});
  run_stage(cache, o, "prepare", s_prep, file_exists(j.store_path()) && file_exists(j.tokenizer_path()), "[1/5] prepare",
            "corpus -> " + j.store_path(), [&](bool) { output(prepare_stage(j, o.threads).to_markdown()); });

  // 2. base model
  std::string s_base;
  if (!j.base_model.empty()) {
    s_base = stamp_of({"external", j.base_model, external_base_stamp(j.base_model)});
    log_info("[2/5] base: using " + j.base_model + " (no pretraining)");
  } else {
    s_base = stamp_of({"pretrain", s_prep, j.model.to_hf_json().dump(), j.pretrain.to_json().dump()});
    run_stage(cache, o, "pretrain", s_base, file_exists(j.base_path() + "/config.json"), "[2/5] pretrain",
              "a small base model -> " + j.base_path(), [&](bool resume) { pretrain_stage(j, resume, o.threads); },
              Ranks::kAll);
  }

  // 3. adapters
  std::vector<std::string> domains = j.adapters;
  if (domains.empty()) domains = TokenStore::open(j.store_path()).domains();
  std::string s_adapters;
  for (size_t i = 0; i < domains.size(); ++i) {
    const std::string& d = domains[i];
    // A conditioned adapter also depends on how its prompts are rendered.
    const std::string s = j.train.conditioned
                              ? stamp_of({"adapter", d, s_base, s_prep, j.lora.to_json().dump(), j.train.to_json().dump(), j.eval.context_template})
                              : stamp_of({"adapter", d, s_base, s_prep, j.lora.to_json().dump(), j.train.to_json().dump()});
    s_adapters += s;
    const std::string tag = "[3/5] adapter " + std::to_string(i + 1) + "/" + std::to_string(domains.size()) + " '" + d + "'";
    run_stage(cache, o, "adapter:" + d, s, file_exists(j.adapters_path() + "/" + d + "/adapter_config.json"), tag, "training",
              [&](bool resume) { adapter_stage(j, d, j.base_path(), resume, o.threads); }, Ranks::kAll);
  }
  if (!leader) {
    log_info("rank " + std::to_string(pg->rank()) + ": training stages done; rank 0 evaluates");
    return;
  }

  // 4. eval
  const std::string s_eval = eval_stamp(j, s_base, s_prep, s_adapters);
  const std::string report_md = j.work_dir + "/report.md";
  const bool ran = run_stage(cache, o, "eval", s_eval, file_exists(report_md), "[4/5] eval",
                             "bits/token per domain, base vs adapters vs classical compressors",
                             [&](bool) { output(eval_stage(j, o.threads).to_markdown()); }, Ranks::kLeaderOnly);
  if (!ran) {
    log_info("report " + report_md);
    output(read_file(report_md));
  }

  // 5. codec check
  log_info("[5/5] codec check: compress + decompress a test document");
  output(codec_check(j, domains, o.threads));
  log_info("lorazip run: done in " + format_duration(since(t_all)) + "; report " + report_md + ", chart " + j.work_dir + "/report.svg");
}

}  // namespace lorazip
