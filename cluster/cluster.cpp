// Reading prompt/response records, embedding them, k-means, and the cluster files (see cluster.h).
#include "cluster/cluster.h"
#include "common/threads.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "cluster/kmeans.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/yaml_strict.h"
#include "model/tokenizer.h"

namespace fs = std::filesystem;

namespace lorazip {
namespace {

bool is_jsonl(const InputSpec& in, const std::string& file) {
  if (in.format == "jsonl") return true;
  if (in.format == "text") return false;
  const std::string ext = fs::path(file).extension().string();
  return ext == ".jsonl" || ext == ".ndjson";
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// JSON text of a record; std::runtime_error naming `where` when the bytes are not UTF-8.
std::string record_line(const ClusterRecord& r) {
  nlohmann::json j;
  if (r.has_prompt) j["prompt"] = r.prompt;
  j["text"] = r.text;
  try {
    return j.dump() + "\n";
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error(r.where + ": the document is not valid UTF-8, so it cannot be written to a cluster's JSONL file");
  }
}

}  // namespace

ClusterConfig ClusterConfig::from_yaml(YamlMap& m, const std::string& base_dir) {
  ClusterConfig c;
  m.get("k", c.k);
  m.get("seed", c.seed);
  m.get("restarts", c.restarts);
  m.get("max_iters", c.max_iters);
  m.get("embed", c.embed);
  m.get("prompt_field", c.prompt_field);
  m.get("layer", c.embedding.layer);
  m.get("max_tokens", c.embedding.max_tokens);
  m.get("model", c.model);
  if (!c.model.empty() && !fs::path(c.model).is_absolute()) c.model = (fs::path(base_dir) / c.model).lexically_normal().string();
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    m.fail("k", e.what());
  }
  m.finish();
  return c;
}

void ClusterConfig::validate() const {
  if (k < 0) throw std::invalid_argument("cluster.k must be >= 0 (0 = no clustering)");
  if (restarts < 1) throw std::invalid_argument("cluster.restarts must be >= 1");
  if (max_iters < 1) throw std::invalid_argument("cluster.max_iters must be >= 1");
  if (embed != "prompt" && embed != "response") throw std::invalid_argument("cluster.embed must be 'prompt' or 'response', got '" + embed + "'");
  if (embedding.layer < -1) throw std::invalid_argument("cluster.layer must be >= 0, or -1 for half the model's blocks");
  if (embedding.max_tokens < 1) throw std::invalid_argument("cluster.max_tokens must be >= 1");
}

nlohmann::json ClusterConfig::to_json() const {
  return {{"k", k}, {"seed", seed}, {"restarts", restarts}, {"max_iters", max_iters}, {"embed", embed},
          {"prompt_field", prompt_field}, {"layer", embedding.layer}, {"max_tokens", embedding.max_tokens}, {"model", model}};
}

std::vector<ClusterRecord> read_cluster_records(const std::vector<InputSpec>& inputs, const std::string& prompt_field) {
  std::vector<ClusterRecord> out;
  for (const InputSpec& in : inputs) {
    if (in.messages)
      throw std::invalid_argument("input '" + in.path + "' (domain " + in.domain +
                                  ") uses messages: true; clustering reads prompt/response records (set text_field instead)");
    int64_t taken = 0;
    for (const std::string& file : list_input_files(in.path)) {
      if (in.max_docs > 0 && taken >= in.max_docs) break;
      const std::string data = read_file(file);
      if (!is_jsonl(in, file)) {
        out.push_back({data, "", false, file, in.domain});
        ++taken;
        continue;
      }
      size_t pos = 0;
      int64_t line_no = 0;
      while (pos < data.size() && !(in.max_docs > 0 && taken >= in.max_docs)) {
        size_t end = data.find('\n', pos);
        if (end == std::string::npos) end = data.size();
        const std::string line = data.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = file + ":" + std::to_string(line_no);
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) throw std::runtime_error(where + ": not a JSON object");
        auto t = j.find(in.text_field);
        if (t == j.end() || !t->is_string())
          throw std::runtime_error(where + ": no string field '" + in.text_field + "' (set the input's text_field)");
        ClusterRecord r;
        r.text = t->get<std::string>();
        auto p = j.find(prompt_field);
        if (p != j.end() && p->is_string()) r.prompt = p->get<std::string>(), r.has_prompt = true;
        r.where = where;
        r.label = in.domain;
        out.push_back(std::move(r));
        ++taken;
      }
    }
  }
  return out;
}

std::string cluster_name(int64_t c, int64_t k) {
  int width = 2;
  for (int64_t v = k - 1; v >= 100; v /= 10) ++width;
  char buf[32];
  std::snprintf(buf, sizeof buf, "c%0*lld", width, static_cast<long long>(c));
  return buf;
}

ClusterStats cluster_corpus(const engine::Model& model, const Tokenizer& tok, const std::string& base_fingerprint,
                            const std::vector<InputSpec>& inputs, const ClusterConfig& cfg, const std::string& out_dir, int threads) {
  cfg.validate();
  if (cfg.k < 1) throw std::invalid_argument("cluster: k must be >= 1 to cluster");
  std::vector<ClusterRecord> recs = read_cluster_records(inputs, cfg.prompt_field);
  if (static_cast<int64_t>(recs.size()) < cfg.k)
    throw std::invalid_argument("cluster: " + std::to_string(recs.size()) + " documents cannot make k = " + std::to_string(cfg.k) +
                                " clusters");
  ClusterStats st;
  st.docs = static_cast<int64_t>(recs.size());
  st.k = cfg.k;
  st.dim = model.config().hidden_size;
  st.layer = resolve_embed_layer(model.config(), cfg.embedding.layer);
  st.out_dir = out_dir;

  // 1. Embeddings, one document per task (each is the same bits on any thread).
  auto t0 = std::chrono::steady_clock::now();
  const int64_t n = st.docs, dim = st.dim;
  std::vector<double> x(static_cast<size_t>(n * dim));
  Progress prog("cluster: embedding", n);
  std::atomic<int64_t> done{0};
  std::mutex prog_mu;
  parallel_for(static_cast<size_t>(n), threads, [&](size_t i) {
    const ClusterRecord& r = recs[i];
    const std::string& what = cfg.embed == "prompt" && r.has_prompt ? r.prompt : r.text;
    std::vector<double> e = embed_tokens(model, tok.encode(what), tok.bos_id(), cfg.embedding);
    std::copy(e.begin(), e.end(), x.begin() + static_cast<std::ptrdiff_t>(i * dim));
    const int64_t d = ++done;
    if (d % 64 == 0) {
      std::lock_guard<std::mutex> lock(prog_mu);
      prog.update(d, "");
    }
  });
  prog.finish();
  for (const auto& r : recs) st.with_prompt += r.has_prompt;
  st.embed_s = seconds_since(t0);

  // 2. k-means.
  t0 = std::chrono::steady_clock::now();
  KMeansOptions ko;
  ko.k = cfg.k;
  ko.seed = static_cast<uint64_t>(cfg.seed);
  ko.restarts = cfg.restarts;
  ko.max_iters = cfg.max_iters;
  ko.threads = threads;
  KMeansResult km = kmeans(x, n, dim, ko);
  st.kmeans_s = seconds_since(t0);
  st.inertia = km.inertia;

  // 3. Agreement with the hand labels.
  std::map<std::string, int32_t> label_id;
  for (const auto& r : recs) label_id.emplace(r.label, 0);
  for (auto& [name, id] : label_id) id = static_cast<int32_t>(st.labels.size()), st.labels.push_back(name);
  std::vector<int32_t> truth;
  for (const auto& r : recs) truth.push_back(label_id[r.label]);
  st.purity = purity(km.assignment, truth);
  st.adjusted_rand_index = adjusted_rand_index(km.assignment, truth);
  st.sizes.assign(static_cast<size_t>(cfg.k), 0);
  st.by_label.assign(static_cast<size_t>(cfg.k), std::vector<int64_t>(st.labels.size(), 0));
  for (int64_t c = 0; c < cfg.k; ++c) st.names.push_back(cluster_name(c, cfg.k));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t c = km.assignment[static_cast<size_t>(i)];
    ++st.sizes[static_cast<size_t>(c)];
    ++st.by_label[static_cast<size_t>(c)][static_cast<size_t>(truth[static_cast<size_t>(i)])];
  }

  // 4. Files.
  fs::create_directories(out_dir);
  std::vector<std::string> per_cluster(static_cast<size_t>(cfg.k));
  std::string assignments;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t c = km.assignment[static_cast<size_t>(i)];
    per_cluster[static_cast<size_t>(c)] += record_line(recs[static_cast<size_t>(i)]);
    assignments += nlohmann::json{{"doc", i}, {"where", recs[static_cast<size_t>(i)].where}, {"label", recs[static_cast<size_t>(i)].label},
                                  {"cluster", st.names[static_cast<size_t>(c)]}}
                       .dump() +
                   "\n";
  }
  for (int64_t c = 0; c < cfg.k; ++c) write_file_atomic(out_dir + "/" + st.names[static_cast<size_t>(c)] + ".jsonl", per_cluster[static_cast<size_t>(c)]);
  write_file_atomic(out_dir + "/assignments.jsonl", assignments);
  nlohmann::json router;
  router["format"] = "lorazip-router";
  router["version"] = 1;
  router["k"] = cfg.k;
  router["dim"] = dim;
  router["layer"] = st.layer;
  router["max_tokens"] = cfg.embedding.max_tokens;
  router["embed"] = cfg.embed;
  router["base_fingerprint"] = base_fingerprint;
  router["tokenizer_fingerprint"] = tok.sha256();
  router["names"] = st.names;
  router["centroids"] = nlohmann::json::array();
  for (int64_t c = 0; c < cfg.k; ++c)
    router["centroids"].push_back(std::vector<double>(km.centroids.begin() + c * dim, km.centroids.begin() + (c + 1) * dim));
  write_file_atomic(out_dir + "/router.json", router.dump() + "\n");
  write_file_atomic(out_dir + "/clusters.json", st.to_json().dump(2) + "\n");
  return st;
}

nlohmann::json ClusterStats::to_json() const {
  nlohmann::json j = {{"docs", docs}, {"k", k}, {"dim", dim}, {"layer", layer}, {"docs_with_prompt", with_prompt},
                      {"purity", purity}, {"adjusted_rand_index", adjusted_rand_index}, {"inertia", inertia},
                      {"embed_seconds", embed_s}, {"kmeans_seconds", kmeans_s}, {"labels", labels}};
  j["clusters"] = nlohmann::json::array();
  for (size_t c = 0; c < names.size(); ++c) {
    nlohmann::json counts;
    for (size_t l = 0; l < labels.size(); ++l) counts[labels[l]] = by_label[c][l];
    j["clusters"].push_back({{"name", names[c]}, {"docs", sizes[c]}, {"by_label", counts}});
  }
  return j;
}

std::string ClusterStats::to_markdown() const {
  std::ostringstream o;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "### Clusters: %lld documents (%lld with a prompt), k = %lld, embedded after %lld blocks (%lld dims)\n\n"
                "Agreement with the inputs' own domain labels: purity %.3f, adjusted Rand index %.3f. Embedding %.1f s, k-means %.1f s.\n\n",
                (long long)docs, (long long)with_prompt, (long long)k, (long long)layer, (long long)dim, purity, adjusted_rand_index,
                embed_s, kmeans_s);
  o << buf << "| cluster | docs |";
  for (const auto& l : labels) o << " " << l << " |";
  o << "\n|---|---:|";
  for (size_t l = 0; l < labels.size(); ++l) o << "---:|";
  o << "\n";
  for (size_t c = 0; c < names.size(); ++c) {
    o << "| " << names[c] << " | " << sizes[c] << " |";
    for (size_t l = 0; l < labels.size(); ++l) o << " " << by_label[c][l] << " |";
    o << "\n";
  }
  o << "\n(written to " << out_dir << ": cNN.jsonl per cluster, assignments.jsonl, router.json, clusters.json)\n";
  return o.str();
}

}  // namespace lorazip
