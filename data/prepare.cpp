// `lorazip prepare`: reads the corpus, drops exact duplicates per domain, assigns splits by a hash
// of each document's bytes, trains or loads the tokenizer, tokenizes in parallel (checking that
// every document decodes back to its bytes) and writes the token store and its statistics.
#include "data/prepare.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/yaml_strict.h"
#include "data/token_store.h"
#include "model/gguf_tokenizer.h"
#include "model/tokenizer.h"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace lorazip {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty()) return p;
  fs::path path(p);
  if (path.is_relative() && !base_dir.empty()) path = fs::path(base_dir) / path;
  return path.lexically_normal().string();
}

// A document's position in [0, 1), from its bytes and the seed only: the split of a document never
// depends on which files were read or in which order.
double split_key(const std::string& bytes, uint64_t seed) {
  return double(xxh64(bytes, seed) >> 11) * 0x1.0p-53;
}

int split_of(double u, const SplitConfig& s) {
  if (u < s.test) return 2;
  if (u < s.test + s.val) return 1;
  return 0;
}

}  // namespace

int split_of_document(const std::string& bytes, const SplitConfig& cfg) { return split_of(split_key(bytes, cfg.seed), cfg); }

namespace {

struct Doc {
  std::string bytes;
  std::string where;
  double key = 0;  // split_key
  std::vector<int32_t> tokens;
};

struct DomainWork {
  DomainStats stats;
  std::vector<Doc> splits[3];
};

std::string fmt2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

ojson split_json(const SplitStats& s) {
  return ojson{{"documents", s.documents}, {"bytes", s.bytes}, {"tokens", s.tokens},
               {"bytes_per_token", s.bytes_per_token()}};
}

SplitStats split_from_json(const ojson& j) {
  SplitStats s;
  s.documents = j.at("documents").get<int64_t>();
  s.bytes = j.at("bytes").get<int64_t>();
  s.tokens = j.at("tokens").get<int64_t>();
  return s;
}

// with_run = false leaves out what describes the run rather than the data (where the store is,
// threads, timings), so that the store's bytes depend only on the inputs and the config.
ojson stats_json(const PrepareStats& st, bool with_run) {
  ojson j;
  j["tokenizer"] = {{"path", st.tokenizer_path}, {"sha256", st.tokenizer_sha256}, {"vocab_size", st.vocab_size},
                    {"trained", st.tokenizer_trained}};
  j["token_dtype"] = st.token_dtype;
  if (with_run) {
    j["store"] = st.store_path;
    j["threads"] = st.threads;
    j["timings_s"] = {{"read", st.read_s}, {"tokenizer_train", st.tokenizer_train_s}, {"tokenize", st.tokenize_s},
                      {"write", st.write_s}, {"total", st.total_s}};
  }
  ojson doms = ojson::array();
  for (const auto& d : st.domains) {
    ojson dj;
    dj["domain"] = d.domain;
    dj["sources"] = d.sources;
    dj["documents_read"] = d.documents_read;
    dj["duplicates_dropped"] = d.duplicates_dropped;
    dj["lines_skipped"] = d.lines_skipped;
    ojson sj;
    for (int s = 0; s < 3; ++s) sj[kSplitNames[s]] = split_json(d.splits[s]);
    dj["splits"] = sj;
    dj["total"] = split_json(d.total());
    doms.push_back(dj);
  }
  j["domains"] = doms;
  return j;
}

// Splits that came out empty although their fraction is positive (tiny domains) take the train
// documents with the smallest keys, so that eval always has text; this depends only on the set of
// documents, not on their order.
void fill_empty_splits(DomainWork& w, const SplitConfig& cfg) {
  const double frac[3] = {0, cfg.val, cfg.test};
  for (int s : {2, 1}) {
    if (frac[s] <= 0 || !w.splits[s].empty() || w.splits[0].size() < 2) continue;
    auto& train = w.splits[0];
    auto it = std::min_element(train.begin(), train.end(), [](const Doc& a, const Doc& b) {
      return a.key < b.key || (a.key == b.key && a.bytes < b.bytes);
    });
    w.splits[s].push_back(std::move(*it));
    train.erase(it);
    log_info("domain '" + w.stats.domain + "': split " + kSplitNames[s] +
             " would be empty; moved one train document into it");
  }
}

std::vector<std::string> tokenizer_training_docs(const std::vector<DomainWork>& work, int64_t max_bytes) {
  std::vector<std::string> docs;
  if (max_bytes <= 0) {
    for (const auto& w : work)
      for (const auto& d : w.splits[0]) docs.push_back(d.bytes);
    return docs;
  }
  // Round-robin over domains, each in key order, until the byte budget is spent: every domain is
  // represented and the choice does not depend on file order.
  std::vector<std::vector<const Doc*>> order(work.size());
  for (size_t i = 0; i < work.size(); ++i) {
    for (const auto& d : work[i].splits[0]) order[i].push_back(&d);
    std::sort(order[i].begin(), order[i].end(), [](const Doc* a, const Doc* b) { return a->key < b->key; });
  }
  int64_t total = 0;
  for (size_t k = 0; total < max_bytes; ++k) {
    bool any = false;
    for (size_t i = 0; i < order.size() && total < max_bytes; ++i) {
      if (k >= order[i].size()) continue;
      any = true;
      docs.push_back(order[i][k]->bytes);
      total += static_cast<int64_t>(order[i][k]->bytes.size());
    }
    if (!any) break;
  }
  return docs;
}

void tokenize_all(std::vector<DomainWork>& work, const Tokenizer& tok, int threads) {
  std::vector<Doc*> jobs;
  for (auto& w : work)
    for (auto& s : w.splits)
      for (auto& d : s) jobs.push_back(&d);
  // Long documents first, so that no thread is left with one big document at the end.
  std::stable_sort(jobs.begin(), jobs.end(), [](const Doc* a, const Doc* b) { return a->bytes.size() > b->bytes.size(); });
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mu;
  auto worker = [&] {
    try {
      for (;;) {
        if (failed.load()) return;
        size_t i = next.fetch_add(1);
        if (i >= jobs.size()) return;
        Doc& d = *jobs[i];
        d.tokens = tok.encode(d.bytes);
        if (tok.decode(d.tokens) != d.bytes)
          throw std::runtime_error("the tokenizer does not reproduce document " + d.where +
                                   " byte for byte (a tokenizer bug: decode(encode(x)) != x)");
        done.fetch_add(1);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  Progress progress("tokenize", static_cast<int64_t>(jobs.size()));
  // The calling thread works too; a small thread redraws the progress line.
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop = false;
  std::thread progress_thread([&] {
    std::unique_lock<std::mutex> lock(stop_mu);
    while (!stop) {
      progress.update(static_cast<int64_t>(done.load()));
      stop_cv.wait_for(lock, std::chrono::milliseconds(200));
    }
  });
  worker();
  for (auto& t : pool) t.join();
  {
    std::lock_guard<std::mutex> lock(stop_mu);
    stop = true;
  }
  stop_cv.notify_one();
  progress_thread.join();
  if (error) std::rethrow_exception(error);
  progress.finish(std::to_string(jobs.size()) + " documents");
}

DocSet to_docset(const std::vector<Doc>& docs) {
  DocSet set;
  size_t n = 0;
  for (const auto& d : docs) n += d.tokens.size();
  set.tokens.reserve(n);
  set.offsets.push_back(0);
  for (const auto& d : docs) {
    set.tokens.insert(set.tokens.end(), d.tokens.begin(), d.tokens.end());
    set.offsets.push_back(set.tokens.size());
    set.byte_lengths.push_back(d.bytes.size());
  }
  return set;
}

}  // namespace

// ---- config ----

PrepareConfig PrepareConfig::from_yaml(YamlMap& m, const std::string& base_dir) {
  PrepareConfig c;
  for (YamlMap& im : m.list("inputs")) {
    InputSpec in;
    im.require("domain", in.domain);
    im.require("path", in.path);
    im.get("format", in.format);
    im.get("text_field", in.text_field);
    im.get("messages", in.messages);
    im.get("max_docs", in.max_docs);
    im.finish();
    try {
      check_domain_name(in.domain);
    } catch (const std::invalid_argument& e) {
      im.fail("domain", e.what());
    }
    if (in.format != "auto" && in.format != "jsonl" && in.format != "text")
      im.fail("format", "expected auto, jsonl or text, got '" + in.format + "'");
    if (in.max_docs < 0) im.fail("max_docs", "must be >= 0 (0 = all)");
    if (in.text_field.empty()) im.fail("text_field", "must not be empty");
    in.path = resolve(base_dir, in.path);
    c.inputs.push_back(in);
  }
  YamlMap s = m.sub("split");
  s.get("val", c.split.val);
  s.get("test", c.split.test);
  s.get("seed", c.split.seed);
  if (c.split.val < 0 || c.split.val >= 1) s.fail("val", "must be in [0, 1)");
  if (c.split.test < 0 || c.split.test >= 1) s.fail("test", "must be in [0, 1)");
  if (c.split.val + c.split.test >= 1) s.fail("test", "val + test must be below 1 (something must be left to train on)");
  s.finish();
  YamlMap t = m.sub("tokenizer");
  t.get("model", c.tokenizer.model);
  t.get("vocab_size", c.tokenizer.vocab_size);
  t.get("type", c.tokenizer.type);
  t.get("max_train_bytes", c.tokenizer.max_train_bytes);
  if (c.tokenizer.vocab_size < 260 || c.tokenizer.vocab_size > 1000000) t.fail("vocab_size", "must be in [260, 1000000]");
  if (c.tokenizer.type != "bpe" && c.tokenizer.type != "unigram")
    t.fail("type", "expected bpe or unigram, got '" + c.tokenizer.type + "'");
  if (c.tokenizer.max_train_bytes < 0) t.fail("max_train_bytes", "must be >= 0 (0 = the whole train split)");
  c.tokenizer.model = resolve(base_dir, c.tokenizer.model);
  t.finish();
  m.get("skip_bad_lines", c.skip_bad_lines);
  m.get("threads", c.threads);
  if (c.threads < 0) m.fail("threads", "must be >= 0 (0 = all cores)");
  m.finish();
  return c;
}

InputSpec PrepareConfig::parse_input_arg(const std::string& arg) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size())
    throw std::invalid_argument("input '" + arg + "': expected DOMAIN=PATH (for example math=data/samples/math.jsonl)");
  InputSpec in;
  in.domain = arg.substr(0, eq);
  in.path = arg.substr(eq + 1);
  check_domain_name(in.domain);
  return in;
}

void PrepareConfig::validate() const {
  if (inputs.empty())
    throw std::invalid_argument("data.inputs is empty: give at least one {domain, path} (or DOMAIN=PATH on the command line)");
  for (size_t i = 0; i < inputs.size(); ++i) {
    const InputSpec& in = inputs[i];
    std::string at = "data.inputs[" + std::to_string(i) + "]";
    check_domain_name(in.domain);
    if (in.path.empty()) throw std::invalid_argument(at + ".path is empty");
    if (in.format != "auto" && in.format != "jsonl" && in.format != "text")
      throw std::invalid_argument(at + ".format: expected auto, jsonl or text, got '" + in.format + "'");
    if (in.max_docs < 0) throw std::invalid_argument(at + ".max_docs must be >= 0");
    if (in.text_field.empty()) throw std::invalid_argument(at + ".text_field must not be empty");
  }
  if (!(split.val >= 0 && split.val < 1)) throw std::invalid_argument("data.split.val must be in [0, 1)");
  if (!(split.test >= 0 && split.test < 1)) throw std::invalid_argument("data.split.test must be in [0, 1)");
  if (split.val + split.test >= 1) throw std::invalid_argument("data.split: val + test must be below 1");
  if (tokenizer.model.empty()) {
    if (tokenizer.vocab_size < 260 || tokenizer.vocab_size > 1000000)
      throw std::invalid_argument("data.tokenizer.vocab_size must be in [260, 1000000]");
    if (tokenizer.type != "bpe" && tokenizer.type != "unigram")
      throw std::invalid_argument("data.tokenizer.type: expected bpe or unigram, got '" + tokenizer.type + "'");
  }
  if (tokenizer.max_train_bytes < 0) throw std::invalid_argument("data.tokenizer.max_train_bytes must be >= 0");
  if (threads < 0) throw std::invalid_argument("data.threads must be >= 0");
}

std::string PrepareConfig::to_json() const {
  ojson j;
  ojson ins = ojson::array();
  for (const auto& in : inputs)
    ins.push_back({{"domain", in.domain}, {"path", in.path}, {"format", in.format}, {"text_field", in.text_field},
                   {"messages", in.messages}, {"max_docs", in.max_docs}});
  j["inputs"] = ins;
  j["split"] = {{"val", split.val}, {"test", split.test}, {"seed", split.seed}};
  j["tokenizer"] = {{"model", tokenizer.model}, {"vocab_size", tokenizer.vocab_size}, {"type", tokenizer.type},
                    {"max_train_bytes", tokenizer.max_train_bytes}};
  j["skip_bad_lines"] = skip_bad_lines;
  j["threads"] = threads;
  return j.dump();
}

// ---- statistics ----

SplitStats DomainStats::total() const {
  SplitStats t;
  for (const auto& s : splits) {
    t.documents += s.documents;
    t.bytes += s.bytes;
    t.tokens += s.tokens;
  }
  return t;
}

std::string PrepareStats::to_markdown() const {
  std::string md = "| domain | split | documents | bytes | tokens | bytes/token | duplicates dropped | lines skipped |\n"
                   "|---|---|---:|---:|---:|---:|---:|---:|\n";
  auto row = [&](const std::string& dom, const std::string& split, const SplitStats& s, const std::string& dup,
                 const std::string& skip) {
    md += "| " + dom + " | " + split + " | " + std::to_string(s.documents) + " | " + std::to_string(s.bytes) + " | " +
          std::to_string(s.tokens) + " | " + fmt2(s.bytes_per_token()) + " | " + dup + " | " + skip + " |\n";
  };
  SplitStats all;
  int64_t dups = 0, skips = 0;
  for (const auto& d : domains) {
    for (int s = 0; s < 3; ++s) row(d.domain, kSplitNames[s], d.splits[s], "", "");
    SplitStats t = d.total();
    row("**" + d.domain + "**", "all", t, std::to_string(d.duplicates_dropped), std::to_string(d.lines_skipped));
    all.documents += t.documents;
    all.bytes += t.bytes;
    all.tokens += t.tokens;
    dups += d.duplicates_dropped;
    skips += d.lines_skipped;
  }
  row("**all**", "all", all, std::to_string(dups), std::to_string(skips));
  return md;
}

std::string PrepareStats::to_json() const { return stats_json(*this, true).dump(2) + "\n"; }

PrepareStats PrepareStats::from_json(const std::string& text) {
  PrepareStats st;
  try {
    ojson j = ojson::parse(text);
    const ojson& t = j.at("tokenizer");
    st.tokenizer_path = t.at("path").get<std::string>();
    st.tokenizer_sha256 = t.at("sha256").get<std::string>();
    st.vocab_size = t.at("vocab_size").get<int64_t>();
    st.tokenizer_trained = t.at("trained").get<bool>();
    st.token_dtype = j.at("token_dtype").get<std::string>();
    if (j.contains("store")) st.store_path = j["store"].get<std::string>();
    if (j.contains("threads")) st.threads = j["threads"].get<int>();
    if (j.contains("timings_s")) {
      const ojson& tm = j["timings_s"];
      st.read_s = tm.at("read").get<double>();
      st.tokenizer_train_s = tm.at("tokenizer_train").get<double>();
      st.tokenize_s = tm.at("tokenize").get<double>();
      st.write_s = tm.at("write").get<double>();
      st.total_s = tm.at("total").get<double>();
    }
    for (const ojson& dj : j.at("domains")) {
      DomainStats d;
      d.domain = dj.at("domain").get<std::string>();
      d.sources = dj.at("sources").get<std::vector<std::string>>();
      d.documents_read = dj.at("documents_read").get<int64_t>();
      d.duplicates_dropped = dj.at("duplicates_dropped").get<int64_t>();
      d.lines_skipped = dj.at("lines_skipped").get<int64_t>();
      for (int s = 0; s < 3; ++s) d.splits[s] = split_from_json(dj.at("splits").at(kSplitNames[s]));
      st.domains.push_back(d);
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("malformed prepare statistics JSON: ") + e.what());
  }
  return st;
}

// ---- the stage ----

PrepareStats prepare(const PrepareConfig& cfg, const std::string& work_dir) {
  cfg.validate();
  auto t_start = Clock::now();
  log_info("prepare: config " + cfg.to_json());
  PrepareStats st;
  st.threads = cfg.threads > 0 ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());

  // 1. Read every input into its domain (domains in order of first appearance), dropping exact
  //    duplicates within the domain and assigning splits.
  auto t0 = Clock::now();
  std::vector<DomainWork> work;
  std::unordered_map<std::string, size_t> domain_index;
  std::vector<std::vector<Doc>> unique;                                 // per domain, in reading order
  std::vector<std::unordered_map<uint64_t, std::vector<size_t>>> seen;  // per domain: hash -> indices
  for (const InputSpec& in : cfg.inputs) {
    auto [it, added] = domain_index.emplace(in.domain, work.size());
    if (added) {
      work.emplace_back();
      work.back().stats.domain = in.domain;
      unique.emplace_back();
      seen.emplace_back();
    }
    DomainWork& w = work[it->second];
    std::vector<Doc>& docs = unique[it->second];
    auto& index = seen[it->second];
    CorpusReadResult r = read_input(in, cfg.skip_bad_lines);
    w.stats.sources.insert(w.stats.sources.end(), r.files.begin(), r.files.end());
    w.stats.lines_skipped += r.lines_skipped;
    w.stats.documents_read += static_cast<int64_t>(r.docs.size());
    for (Document& d : r.docs) {
      auto& bucket = index[xxh64(d.bytes, 0)];
      if (std::any_of(bucket.begin(), bucket.end(), [&](size_t o) { return docs[o].bytes == d.bytes; })) {
        ++w.stats.duplicates_dropped;
        continue;
      }
      bucket.push_back(docs.size());
      Doc doc;
      doc.key = split_key(d.bytes, cfg.split.seed);
      doc.bytes = std::move(d.bytes);
      doc.where = std::move(d.where);
      docs.push_back(std::move(doc));
    }
  }
  seen.clear();
  for (size_t i = 0; i < work.size(); ++i)
    for (Doc& d : unique[i]) work[i].splits[split_of(d.key, cfg.split)].push_back(std::move(d));
  unique.clear();
  for (auto& w : work) {
    size_t n = w.splits[0].size() + w.splits[1].size() + w.splits[2].size();
    if (n == 0) {
      std::string inputs;
      for (const auto& in : cfg.inputs)
        if (in.domain == w.stats.domain) inputs += (inputs.empty() ? "" : ", ") + in.path;
      throw std::runtime_error("domain '" + w.stats.domain + "' has no documents (inputs: " + inputs +
                               "; check the paths, the format and text_field)");
    }
    fill_empty_splits(w, cfg.split);
  }
  st.read_s = seconds_since(t0);
  int64_t n_docs = 0, n_bytes = 0;
  for (const auto& w : work)
    for (const auto& s : w.splits)
      for (const auto& d : s) ++n_docs, n_bytes += static_cast<int64_t>(d.bytes.size());
  log_info("prepare: read " + std::to_string(n_docs) + " documents (" + std::to_string(n_bytes) + " bytes) in " +
           std::to_string(work.size()) + " domains, " + fmt2(st.read_s) + " s");

  // 2. The tokenizer: given, or trained on the train split only.
  std::string tok_final = (fs::path(work_dir) / "tokenizer.model").string();
  std::unique_ptr<AtomicPath> tok_out;
  std::unique_ptr<Tokenizer> tok;
  if (cfg.tokenizer.model.empty()) {
    t0 = Clock::now();
    std::vector<std::string> train_docs = tokenizer_training_docs(work, cfg.tokenizer.max_train_bytes);
    size_t train_bytes = 0;
    for (const auto& d : train_docs) train_bytes += d.size();
    log_info("prepare: training a " + cfg.tokenizer.type + " tokenizer (vocab " + std::to_string(cfg.tokenizer.vocab_size) +
             ") on " + std::to_string(train_docs.size()) + " train documents, " + std::to_string(train_bytes) + " bytes");
    TokenizerTrainOptions opt;
    opt.vocab_size = cfg.tokenizer.vocab_size;
    opt.model_type = cfg.tokenizer.type;
    opt.threads = st.threads;
    opt.seed = cfg.split.seed;
    tok_out = std::make_unique<AtomicPath>(tok_final);
    Tokenizer::train(train_docs, opt, tok_out->tmp());
    tok = std::make_unique<Tokenizer>(Tokenizer::load(tok_out->tmp()));
    st.tokenizer_train_s = seconds_since(t0);
    st.tokenizer_trained = true;
    st.tokenizer_path = tok_final;
    log_info("prepare: tokenizer trained in " + fmt2(st.tokenizer_train_s) + " s");
  } else {
    tok = std::make_unique<Tokenizer>(load_tokenizer(cfg.tokenizer.model));  // tokenizer.model or a GGUF base
    st.tokenizer_path = cfg.tokenizer.model;
  }
  st.tokenizer_sha256 = tok->sha256();
  st.vocab_size = tok->vocab_size();
  st.token_dtype = token_dtype_for_vocab(st.vocab_size);

  // 3. Tokenize every document in parallel (Tokenizer::encode is const and thread-safe).
  t0 = Clock::now();
  tokenize_all(work, *tok, std::max(1, std::min<int>(st.threads, static_cast<int>(std::max<int64_t>(1, n_docs)))));
  st.tokenize_s = seconds_since(t0);

  // 4. Statistics and the store.
  t0 = Clock::now();
  std::vector<StoreDomain> store;
  for (auto& w : work) {
    StoreDomain sd;
    sd.name = w.stats.domain;
    sd.sources = w.stats.sources;
    sd.documents_read = w.stats.documents_read;
    sd.duplicates_dropped = w.stats.duplicates_dropped;
    sd.skipped = w.stats.lines_skipped;
    for (int s = 0; s < 3; ++s) {
      sd.splits[s] = to_docset(w.splits[s]);
      SplitStats& ss = w.stats.splits[s];
      ss.documents = static_cast<int64_t>(sd.splits[s].num_docs());
      ss.bytes = static_cast<int64_t>(sd.splits[s].total_bytes());
      ss.tokens = static_cast<int64_t>(sd.splits[s].tokens.size());
      w.splits[s].clear();
      w.splits[s].shrink_to_fit();
    }
    st.domains.push_back(w.stats);
    store.push_back(std::move(sd));
  }
  std::string store_final = (fs::path(work_dir) / "data.h5").string();
  st.store_path = store_final;
  StoreHeader header;
  header.tokenizer_sha256 = st.tokenizer_sha256;
  header.vocab_size = st.vocab_size;
  header.seed = cfg.split.seed;
  header.val_fraction = cfg.split.val;
  header.test_fraction = cfg.split.test;
  header.tokenizer_source = st.tokenizer_path;
  header.stats_json = stats_json(st, false).dump();
  AtomicPath store_out(store_final);
  write_token_store(store_out.tmp(), header, store);
  // The tokenizer goes into place first: a store is never newer than the tokenizer it names.
  if (tok_out) tok_out->commit();
  store_out.commit();
  st.write_s = seconds_since(t0);
  st.total_s = seconds_since(t_start);
  write_file_atomic((fs::path(work_dir) / "data_stats.json").string(), st.to_json());
  log_info("prepare: wrote " + store_final + " (tokenize " + fmt2(st.tokenize_s) + " s on " + std::to_string(st.threads) +
           " threads, write " + fmt2(st.write_s) + " s, total " + fmt2(st.total_s) + " s)");
  return st;
}

}  // namespace lorazip
