// JobConfig::load: the main job's YAML, strict, with every relative path resolved against the
// file's directory, and the resolved config as text for the log.
#include "job/job_config.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/yaml_strict.h"
#include "model/gguf.h"
#include "model/gguf_tokenizer.h"

namespace fs = std::filesystem;

namespace lorazip {
namespace {

std::string resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(base_dir) / p).lexically_normal().string();
}

// ${NAME} in a path is the environment variable NAME; ${LORAZIP_CACHE} defaults to
// $HOME/.cache/lorazip, where scripts/fetch_smollm2.sh puts models.
std::string expand_vars(const std::string& p, YamlMap& m, const std::string& key) {
  std::string out;
  size_t i = 0;
  while (i < p.size()) {
    size_t open = p.find("${", i);
    if (open == std::string::npos) break;
    size_t close = p.find('}', open);
    if (close == std::string::npos) m.fail(key, "unterminated ${ in '" + p + "'");
    const std::string name = p.substr(open + 2, close - open - 2);
    const char* v = std::getenv(name.c_str());
    std::string value = v ? v : "";
    if (!v && name == "LORAZIP_CACHE") {
      const char* home = std::getenv("HOME");
      if (!home) m.fail(key, "${LORAZIP_CACHE} needs LORAZIP_CACHE or HOME to be set");
      value = std::string(home) + "/.cache/lorazip";
    } else if (!v) {
      m.fail(key, "environment variable " + name + " (used as ${" + name + "}) is not set");
    }
    out += p.substr(i, open - i) + value;
    i = close + 1;
  }
  return out + p.substr(std::min(i, p.size()));
}

}  // namespace

nlohmann::json EvalConfig::to_json() const {
  nlohmann::json xs = nlohmann::json::array();
  for (const auto& x : extra)
    xs.push_back({{"name", x.name}, {"path", x.input.path}, {"format", x.input.format}, {"text_field", x.input.text_field},
                  {"messages", x.input.messages}, {"max_docs", x.input.max_docs}, {"adapter", x.adapter},
                  {"optional", x.optional}});
  return {{"max_docs", max_docs}, {"sample_docs", sample_docs}, {"classical", classical}, {"batch_tokens", batch_tokens},
          {"extra", xs}, {"conditioned", conditioned}, {"context_template", context_template}};
}

nlohmann::json CodecConfig::to_json() const { return {{"group_streams", group_streams}, {"chunk_tokens", chunk_tokens}, {"context_tokens", context_tokens}}; }

std::string JobConfig::tokenizer_path() const {
  return data.tokenizer.model.empty() ? work_dir + "/tokenizer.model" : data.tokenizer.model;
}

JobConfig JobConfig::load(const std::string& path) {
  JobConfig j;
  j.path = path;
  j.base_dir = fs::path(path).parent_path().string();
  if (j.base_dir.empty()) j.base_dir = ".";
  YamlMap m = YamlMap::load_file(path);
  m.get("work_dir", j.work_dir);
  j.work_dir = resolve(j.base_dir, j.work_dir);
  m.get("threads", j.threads);
  if (j.threads < 0) m.fail("threads", "must be >= 0 (0 = all cores)");
  m.get("device", j.device);
  if (j.device != "cpu" && j.device != "cuda")
    m.fail("device", "must be cpu or cuda (cuda needs a CUDA build, docs/training.md 'CUDA'), not '" + j.device + "'");

  YamlMap data = m.sub("data");
  j.data = PrepareConfig::from_yaml(data, j.base_dir);

  m.get("base_model", j.base_model);
  j.base_model = resolve(j.base_dir, expand_vars(j.base_model, m, "base_model"));
  // A given base brings its tokenizer: the corpus is prepared with it unless the config names one.
  if (!j.base_model.empty() && j.data.tokenizer.model.empty()) {
    j.data.tokenizer.model = base_tokenizer_path(j.base_model);
    if (j.data.tokenizer.model.empty())
      m.fail("base_model", "'" + j.base_model + "' is not a GGUF file nor a directory holding tokenizer.model or "
             "tokenizer.json (name the base's tokenizer under data.tokenizer.model)");
  }
  std::string model_file;
  m.get("model_file", model_file);
  if (!model_file.empty() && m.has("model")) m.fail("model", "give either model_file or an inline model mapping, not both");
  if (!model_file.empty()) {
    YamlMap mm = YamlMap::load_file(resolve(j.base_dir, model_file));
    j.model = LlamaConfig::from_yaml(mm);
  } else {
    YamlMap mm = m.sub("model");
    j.model = LlamaConfig::from_yaml(mm);
  }
  YamlMap pre = m.sub("pretrain");
  j.pretrain = PretrainConfig::from_yaml(pre, j.base_dir);
  YamlMap lora = m.sub("lora");
  j.lora = LoraConfig::from_yaml(lora, j.base_dir);
  YamlMap tr = m.sub("train");
  j.train = TrainConfig::from_yaml(tr, j.base_dir);
  YamlMap cl = m.sub("cluster");
  j.cluster = ClusterConfig::from_yaml(cl, j.base_dir);
  if (j.cluster.k > 0 && j.cluster_model().empty())
    m.fail("cluster", "clustering embeds documents with a model: set base_model, or cluster.model");
  m.get("adapters", j.adapters);

  YamlMap ev = m.sub("eval");
  ev.get("max_docs", j.eval.max_docs);
  ev.get("sample_docs", j.eval.sample_docs);
  ev.get("classical", j.eval.classical);
  ev.get("batch_tokens", j.eval.batch_tokens);
  ev.get("conditioned", j.eval.conditioned);
  ev.get("context_template", j.eval.context_template);
  if (j.eval.context_template != "auto" && j.eval.context_template != "chatml" && j.eval.context_template != "plain")
    ev.fail("context_template", "must be auto, chatml or plain, got '" + j.eval.context_template + "'");
  if (j.eval.max_docs < 0) ev.fail("max_docs", "must be >= 0 (0 = all)");
  if (j.eval.sample_docs < 0) ev.fail("sample_docs", "must be >= 0");
  if (j.eval.batch_tokens < 1) ev.fail("batch_tokens", "must be >= 1");
  for (YamlMap& e : ev.list("extra")) {
    ExtraCorpus x;
    e.require("name", x.name);
    e.require("path", x.input.path);
    x.input.path = resolve(j.base_dir, x.input.path);
    e.get("format", x.input.format);
    e.get("text_field", x.input.text_field);
    e.get("messages", x.input.messages);
    e.get("max_docs", x.input.max_docs);
    e.get("adapter", x.adapter);
    e.get("optional", x.optional);
    x.input.domain = x.name;
    e.finish();
    j.eval.extra.push_back(x);
  }
  ev.finish();

  YamlMap co = m.sub("codec");
  co.get("group_streams", j.codec.group_streams);
  co.get("chunk_tokens", j.codec.chunk_tokens);
  co.get("context_tokens", j.codec.context_tokens);
  if (j.codec.group_streams < 1 || j.codec.group_streams > 1024) co.fail("group_streams", "must be in 1..1024");
  if (j.codec.chunk_tokens < 0) co.fail("chunk_tokens", "must be >= 0 (0 = the model's context - 1)");
  if (j.codec.context_tokens < -1)
    co.fail("context_tokens", "must be -1 (a quarter of the chunk), 0 (independent chunks) or a count below the chunk length");
  co.finish();
  m.finish();

  nlohmann::json r;
  r["config"] = path;
  r["work_dir"] = j.work_dir;
  r["threads"] = j.threads;
  r["device"] = j.device;
  r["data"] = nlohmann::json::parse(j.data.to_json());
  r["base_model"] = j.base_model;
  r["model"] = j.model.to_hf_json();
  r["pretrain"] = j.pretrain.to_json();
  r["lora"] = j.lora.to_json();
  r["train"] = j.train.to_json();
  if (j.cluster.k > 0) r["cluster"] = j.cluster.to_json();
  r["adapters"] = j.adapters;
  r["eval"] = j.eval.to_json();
  r["codec"] = j.codec.to_json();
  j.resolved_text = r.dump(2);
  return j;
}

}  // namespace lorazip
