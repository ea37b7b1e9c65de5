#include "eval/evaluation.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <unistd.h>

#include "runtime/archive_io.h"
#include "runtime/model_setup.h"
#include "runtime/routing.h"
#include "codec/classical.h"
#include "codec/lm_codec.h"
#include "common/fs.h"
#include "common/log.h"
#include "data/token_store.h"
#include "data/doc_sample.h"
#include "gen/context.h"

namespace lorazip {
namespace {

struct Row {
  DomainResult result;
  DocSet docs;
  std::vector<size_t> idx;             // documents scored
  std::vector<std::string> bytes;      // their original bytes (same order as idx)
  std::map<std::string, std::vector<double>> doc_bits;  // configuration -> bits per document (the coder's W)
};

DocSet tokenize_docs(const std::vector<Document>& docs, const Tokenizer& tok) {
  DocSet s;
  s.offsets.push_back(0);
  for (const auto& d : docs) {
    std::vector<int32_t> ids = tok.encode(d.bytes);
    s.tokens.insert(s.tokens.end(), ids.begin(), ids.end());
    s.offsets.push_back(s.tokens.size());
    s.byte_lengths.push_back(d.bytes.size());
  }
  return s;
}

// Ideal code length of the row's documents under `codec`'s model with `chunking`: the codec's own
// code-length function (codec/lm_codec.h), so the report's ideal bits are the bits the coder aims
// at. `coder`: `chunking` is the coder's own, and the bits are kept per document (the routed figure).
void score(Row& row, const LmCodec& codec, const EvaluationOptions& opt, const Chunking& chunking, bool coder,
           const std::string& config_name, double* total) {
  std::vector<TokenSpan> docs;
  for (size_t i : row.idx) docs.push_back({row.docs.doc(i), row.docs.doc_len(i)});
  std::vector<double> bits = code_length_bits(codec.model(), docs, chunking.chunk, chunking.window, opt.threads);
  double sum = 0;
  for (size_t i = 0; i < bits.size(); ++i) {
    sum += bits[i];
  }
  if (coder) row.doc_bits[config_name] = bits;
  *total = sum;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Compresses and decompresses each sample document alone; returns false when any round trip fails.
bool code_sample(Row& row, LmCodec& codec, const EvaluationOptions& opt, double* ideal, int64_t* file, int64_t* payload) {
  LmCodecOptions co;
  co.group_streams = opt.group_streams;
  co.chunk_tokens = opt.chunk_tokens;
  co.context_tokens = opt.context_tokens;
  co.threads = opt.threads;
  co.format = ContainerFormat::Compact;  // the files `lorazip compress` writes
  bool ok = true;
  size_t n = std::min<size_t>(static_cast<size_t>(opt.sample_docs), row.bytes.size());
  for (size_t i = 0; i < n; ++i) {
    CodeStats s;
    std::string packed = codec.compress(row.bytes[i], co, &s);
    std::string back = codec.decompress(packed, row.result.domain + " sample " + std::to_string(i), opt.threads);
    ok = ok && back == row.bytes[i];
    *ideal += s.ideal_bits;
    *file += s.file_bytes;
    *payload += s.payload_bytes;
  }
  return ok;
}

// The sample documents as one archive coded with `adapter_dir` ("" = the base), written to a
// temporary file, every member extracted again; sets *file to the archive's size and returns
// whether every member came back equal.
bool archive_sample(const Row& row, size_t n, CodecSet& codecs, const std::string& adapter_dir, const EvaluationOptions& opt,
                    int64_t* file) {
  namespace fs = std::filesystem;
  std::vector<ArchiveDocument> docs;
  for (size_t i = 0; i < n; ++i) docs.push_back(file_document("doc" + std::to_string(i), row.bytes[i]));
  AdapterSelector fixed(codecs, {adapter_dir, "", ""});
  ArchiveCodingOptions ao;
  ao.chunk_tokens = opt.chunk_tokens;
  ao.context_tokens = opt.context_tokens;
  ao.threads = opt.threads;
  const std::string tmp =
      (fs::temp_directory_path() / ("lorazip-eval-" + std::to_string(::getpid()) + "-" + row.result.domain + ".lza")).string();
  bool ok = true;
  try {
    const ArchiveWriteStats st = archive_create(tmp, fixed, docs, ao, true);
    *file = static_cast<int64_t>(st.file_bytes);
    std::unique_ptr<ByteSource> src = open_file_source(tmp);
    const ArchiveLayout layout = read_archive_layout(*src, tmp);
    for (size_t k = 0; k < n; ++k)
      ok = ok && archive_extract_member(*src, layout, k, fixed, opt.threads, tmp) == row.bytes[k];
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::remove(tmp, ec);
  return ok;
}

// zstd-19 per document with a dictionary trained on the domain's training documents (up to
// 2,000 of them, spread evenly); false (and a log line) where the training split is missing or
// too small for zstd to train on.
bool zstd_dictionary_baseline(Row& row, const TokenStore& store, const Tokenizer& tok) {
  const std::string& domain = row.result.domain;
  if (row.result.corpus != "test" || !store.has(domain, "train")) return false;
  DocSet train = store.read(domain, "train");
  std::vector<std::string> samples;
  for (size_t i : spread_indices(train.num_docs(), 2000)) samples.push_back(tok.decode(train.doc(i), train.doc_len(i)));
  try {
    const std::string dict = train_zstd_dictionary(samples);
    row.result.zstd_dict_bytes = static_cast<int64_t>(dict.size());
    row.result.zstd_dict_per_doc = 0;
    for (const auto& b : row.bytes) row.result.zstd_dict_per_doc += static_cast<int64_t>(zstd19_dict_compressed_size(dict, b));
  } catch (const std::runtime_error& e) {
    log_info("eval: " + domain + ": no zstd dictionary baseline: " + e.what());
    return false;
  }
  return true;
}

// The conditioned columns: every document of a row given its prompt, under the base and each
// adapter (the coder's W); rows with a document without a prompt are left out.
void score_conditioned(std::vector<Row>& rows, LoadedModel& base, CodecSet& codecs, const std::vector<AdapterEntry>& adapters,
                       const EvaluationOptions& opt) {
  const gen::ContextRenderer renderer(base.dir, *base.tokenizer, gen::parse_context_template(opt.context_template));
  for (auto& r : rows) {
    std::vector<gen::RenderedContext> rendered;
    for (size_t k = 0; k < r.bytes.size(); ++k) {
      auto p = opt.prompts.find(r.bytes[k]);
      if (p == opt.prompts.end()) break;
      rendered.push_back(renderer.render(p->second));
    }
    if (r.bytes.empty() || rendered.size() != r.bytes.size()) continue;
    std::vector<TokenSpan> docs;
    std::vector<const std::vector<int32_t>*> contexts;
    for (size_t k = 0; k < r.idx.size(); ++k) {
      docs.push_back({r.docs.doc(r.idx[k]), r.docs.doc_len(r.idx[k])});
      contexts.push_back(&rendered[k].tokens);
    }
    auto total = [&](const LmCodec& codec) {
      double sum = 0;
      for (double b : code_length_bits(codec.model(), docs, opt.chunk_tokens, opt.context_tokens, opt.threads, contexts)) sum += b;
      return sum;
    };
    DomainResult& d = r.result;
    d.context_template = rendered.front().template_name;
    const int64_t chunk = Chunking::resolve(base.config.max_position_embeddings, opt.chunk_tokens, opt.context_tokens).chunk;
    d.context_tokens_given = 0;
    for (const auto& c : rendered)
      d.context_tokens_given +=
          static_cast<int64_t>(context_window(c.tokens, static_cast<int32_t>(base.config.bos_token_id), chunk).size());
    d.base_bits_given = total(codecs.get(""));
    for (const auto& a : adapters) d.adapter_bits_given[a.domain] = total(codecs.get(a.dir));
    if (opt.classical) {
      // The records as a JSONL file stores them (prompt and response), each alone, beside the
      // responses alone (classical_per_doc): what the classical codecs must store when nothing is shared.
      d.prompt_bytes_given = 0;
      for (size_t k = 0; k < r.bytes.size(); ++k) {
        const std::string& prompt = opt.prompts.at(r.bytes[k]);
        d.prompt_bytes_given += static_cast<int64_t>(prompt.size());
        const std::string line = "{\"prompt\": " + json_string_literal(prompt, false) + ", \"text\": " + json_string_literal(r.bytes[k], false) + "}\n";
        for (Classical c : all_classical()) d.classical_records_given[classical_name(c)] += static_cast<int64_t>(classical_compress(c, line).size());
      }
    }
    log_info("eval: " + d.domain + " given the prompts: base " + std::to_string(d.bits_per_token(d.base_bits_given)).substr(0, 5) +
             " bits/token (from BOS alone " + std::to_string(d.bits_per_token(d.base_bits)).substr(0, 5) + ")");
  }
}

// The prompt-routed column: each document under the adapter its prompt picks (the base alone
// where the router's cluster has no adapter), from the per-document bits already scored.
void score_prompt_routed(std::vector<Row>& rows, CodecSet& codecs, const std::vector<AdapterEntry>& adapters,
                         const EvaluationOptions& opt) {
  // The selector `lorazip compress --router` uses; each response's bits are the ones already
  // scored for the adapter its prompt routes to (the base where the cluster has none).
  AdapterSelector by_prompt(codecs, {"", opt.adapters_dir, opt.router_path});
  std::map<std::string, std::string> domain_of;  // adapter directory -> the domain its bits are scored under
  for (const AdapterEntry& a : adapters) domain_of[a.dir] = a.domain;
  for (auto& r : rows) {
    double total = 0;
    std::map<std::string, int64_t> choice;
    bool all = !r.bytes.empty();
    for (size_t k = 0; k < r.bytes.size() && all; ++k) {
      auto p = opt.prompts.find(r.bytes[k]);
      if (p == opt.prompts.end()) {
        all = false;
        break;
      }
      const std::string dir = by_prompt.route(p->second, engine::kArithmeticVersion).adapter_dir;
      const std::string used = dir.empty() ? "base" : domain_of.at(dir);
      total += r.doc_bits.at(used)[k];
      ++choice[used];
    }
    if (!all) continue;
    r.result.prompt_routed_bits = total;
    r.result.prompt_routed_choice = choice;
  }
}

}  // namespace

Report run_evaluation(LoadedModel& base, const EvaluationOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  const Tokenizer& tok = *base.tokenizer;
  TokenStore store = TokenStore::open(opt.store_path);
  if (store.tokenizer_sha256() != tok.sha256())
    throw std::runtime_error("token store '" + opt.store_path + "' was prepared with tokenizer " + short_fp(store.tokenizer_sha256()) +
                             ", but the base model '" + base.dir + "' uses " + short_fp(tok.sha256()) +
                             " (run prepare with --tokenizer " + base.dir + "/tokenizer.model)");
  std::vector<AdapterEntry> adapters;
  if (!opt.adapters_dir.empty() && dir_exists(opt.adapters_dir)) adapters = list_adapters(opt.adapters_dir);

  Report report;
  report.base_name = base.dir;
  report.base_fingerprint = base.fingerprint;
  report.tokenizer_fingerprint = tok.sha256();
  report.vocab_size = tok.vocab_size();
  for (const auto& a : adapters) report.adapters.push_back(a.domain);

  std::vector<Row> rows;
  std::vector<std::string> domains = opt.domains;
  if (domains.empty())
    for (const auto& d : store.domains())
      if (store.has(d, "test")) domains.push_back(d);
  for (const auto& d : domains) {
    Row r;
    r.result.domain = d;
    r.result.corpus = "test";
    r.docs = store.read(d, "test");
    for (const auto& a : adapters)
      if (a.domain == d) r.result.own_adapter = d;
    rows.push_back(std::move(r));
  }
  for (const auto& x : opt.extra) {
    Row r;
    r.result.domain = x.name;
    r.result.corpus = x.input.path;
    CorpusReadResult docs = read_input(x.input, false);
    r.docs = tokenize_docs(docs.docs, tok);
    r.result.own_adapter = x.adapter;
    rows.push_back(std::move(r));
  }
  for (auto& r : rows) {
    r.idx = spread_indices(r.docs.num_docs(), opt.max_docs);
    r.result.docs = static_cast<int64_t>(r.idx.size());
    for (size_t i : r.idx) {
      r.result.tokens += static_cast<int64_t>(r.docs.doc_len(i));
      r.result.bytes += static_cast<int64_t>(r.docs.byte_lengths[i]);
      r.bytes.push_back(tok.decode(r.docs.doc(i), r.docs.doc_len(i)));
    }
    if (tok.trained_with_dummy_prefix()) {
      // The store holds encode()'s tokens; the coder codes encode_native()'s (the model's dummy
      // prefix), so score those: the same tokens compress() would code.
      DocSet native;
      native.offsets.push_back(0);
      for (size_t k = 0; k < r.idx.size(); ++k) {
        bool prefixed = false;
        std::vector<int32_t> ids = tok.encode_native(r.bytes[k], &prefixed);
        native.tokens.insert(native.tokens.end(), ids.begin(), ids.end());
        native.offsets.push_back(native.tokens.size());
        native.byte_lengths.push_back(r.bytes[k].size());
      }
      r.docs = std::move(native);
      r.result.tokens = static_cast<int64_t>(r.docs.tokens.size());
      for (size_t k = 0; k < r.idx.size(); ++k) r.idx[k] = k;
    }
  }

  CodecSet codecs(base);
  Progress prog("eval", static_cast<int64_t>((1 + adapters.size()) * rows.size()));
  int64_t done = 0;
  const Chunking coding = Chunking::resolve(base.config.max_position_embeddings, opt.chunk_tokens, opt.context_tokens);
  for (auto& r : rows) {
    r.result.context_tokens = coding.window;
    for (size_t i : r.idx) r.result.long_docs += static_cast<int64_t>(r.docs.doc_len(i)) > coding.chunk;
    auto ts = std::chrono::steady_clock::now();
    score(r, codecs.get(""), opt, coding, true, "base", &r.result.base_bits);
    r.result.base_seconds = seconds_since(ts);
    ts = std::chrono::steady_clock::now();
    score(r, codecs.get(""), opt, coding.independent(), false, "base", &r.result.base_bits_independent);
    r.result.base_independent_seconds = seconds_since(ts);
    prog.update(++done, "base on " + r.result.domain + ": " + std::to_string(r.result.bits_per_token(r.result.base_bits)).substr(0, 5) + " bits/token");
  }
  for (const auto& a : adapters) {
    for (auto& r : rows) {
      double bits = 0;
      score(r, codecs.get(a.dir), opt, coding, true, a.domain, &bits);
      r.result.adapter_bits[a.domain] = bits;
      prog.update(++done, a.domain + " adapter on " + r.result.domain + ": " + std::to_string(r.result.bits_per_token(bits)).substr(0, 5) + " bits/token");
    }
  }
  prog.finish();
  // The routed figure: each document coded by the configuration with the fewest bits, chosen by
  // the rule -A applies (fewest_bits, the base first).
  std::vector<std::string> configs = {"base"};
  for (const auto& a : adapters) configs.push_back(a.domain);
  for (auto& r : rows) {
    r.result.routed_bits = 0;
    for (size_t i = 0; i < r.idx.size(); ++i) {
      std::vector<double> bits;
      for (const std::string& c : configs) bits.push_back(r.doc_bits.at(c)[i]);
      const size_t k = fewest_bits(bits);
      r.result.routed_bits += bits[k];
      r.result.routed_choice[configs[k]] += 1;
    }
  }

  if (!opt.router_path.empty()) score_prompt_routed(rows, codecs, adapters, opt);
  if (opt.conditioned && !opt.prompts.empty()) score_conditioned(rows, base, codecs, adapters, opt);

  if (opt.classical) {
    for (auto& r : rows) {
      std::string all;
      for (const auto& b : r.bytes) all += b;
      for (Classical c : {Classical::Gzip9, Classical::Xz9, Classical::Zstd19, Classical::Brotli11}) {
        int64_t per = 0;
        for (const auto& b : r.bytes) per += static_cast<int64_t>(classical_compressed_size(c, b));
        r.result.classical_per_doc[classical_name(c)] = per;
        r.result.classical_concat[classical_name(c)] = static_cast<int64_t>(classical_compressed_size(c, all));
      }
      zstd_dictionary_baseline(r, store, tok);
    }
  }

  if (opt.sample_docs > 0) {
    LmCodec& base_codec = codecs.get("");
    Progress cp("codec check", static_cast<int64_t>(rows.size()));
    int64_t k = 0;
    for (auto& r : rows) {
      DomainResult& d = r.result;
      size_t n = std::min<size_t>(static_cast<size_t>(opt.sample_docs), r.bytes.size());
      d.sample_docs = static_cast<int64_t>(n);
      for (size_t i = 0; i < n; ++i) {
        d.sample_bytes += static_cast<int64_t>(r.bytes[i].size());
        d.sample_tokens += static_cast<int64_t>(r.docs.doc_len(r.idx[i]));
      }
      bool ok = code_sample(r, base_codec, opt, &d.sample_base_ideal, &d.sample_base_file, &d.sample_base_payload);
      const AdapterEntry* entry = nullptr;
      for (const auto& a : adapters)
        if (a.domain == d.own_adapter) entry = &a;
      ok = archive_sample(r, n, codecs, entry ? entry->dir : "", opt, &d.sample_archive_bytes) && ok;
      if (entry) {
        ok = code_sample(r, codecs.get(entry->dir), opt, &d.sample_adapter_ideal, &d.sample_adapter_file, &d.sample_adapter_payload) && ok;
      } else {
        d.sample_adapter_ideal = d.sample_base_ideal;
        d.sample_adapter_file = d.sample_base_file;
        d.sample_adapter_payload = d.sample_base_payload;
      }
      d.sample_roundtrip_ok = ok;
      cp.update(++k, d.domain + (ok ? " round trip ok" : " ROUND TRIP FAILED"));
    }
    cp.finish();
  }
  for (auto& r : rows) report.domains.push_back(std::move(r.result));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace lorazip
