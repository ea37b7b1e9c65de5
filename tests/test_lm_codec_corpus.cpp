// Slow check (label: slow): every document of ../shared/data/llm-text, each compressed alone as
// its own file through the real LM codec, decompresses to exactly its bytes (contract 1), and the
// thread count used to compress or decompress changes nothing (contract 2).
//
// The model is a tiny random Llama (hidden 32, 2 layers, context 64) with a tokenizer trained here
// on a sample of the corpus, saved as an HF directory and loaded the way the program loads a base.
// Its random weights code poorly; the point is exactness on real text, not the ratio.
//
// Documents are coded on two worker threads. Each document is compressed with 2 codec threads and
// decompressed with 1, or the other way round (alternating), with stream groups of 1, 2, 3 or 8
// chunks so a document spans several groups and both threads of a call get work. Every 25th
// document is also compressed again with the other thread count and must give the same file.
//
// LORAZIP_CORPUS_STRIDE=n (default 1) codes only every n-th document, for a quick look.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "codec/lm_codec.h"
#include "runtime/model_setup.h"
#include "train/torch_base.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

const std::string kCorpus = std::string(LORAZIP_SHARED_DIR) + "/data/llm-text";

struct Doc {
  std::string where;  // <domain>/<file>.jsonl:<line>
  std::string domain;
  std::string text;
};

// Every "text" of every *.jsonl under each domain folder of `root`, folders and files in name
// order. A line that is not a JSON object with a string "text" is a test failure naming file:line.
std::vector<Doc> read_corpus(const std::string& root) {
  std::vector<fs::path> domains;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) domains.push_back(e.path());
  std::sort(domains.begin(), domains.end());
  std::vector<Doc> docs;
  for (const fs::path& d : domains) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(d))
      if (e.is_regular_file() && e.path().extension() == ".jsonl") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      std::ifstream in(f, std::ios::binary);
      if (!in) {
        ADD_FAILURE() << f.string() << ": cannot be opened";
        continue;
      }
      const std::string name = d.filename().string() + "/" + f.filename().string();
      std::string line;
      for (int64_t ln = 1; std::getline(in, line); ++ln) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = name + ":" + std::to_string(ln);
        try {
          const auto j = nlohmann::json::parse(line);
          docs.push_back({where, d.filename().string(), j.at("text").get<std::string>()});
        } catch (const std::exception& e) {
          ADD_FAILURE() << where << ": not a JSON object with a string \"text\": " << e.what();
        }
      }
    }
  }
  return docs;
}

std::string temp_root() {
  static const std::string d =
      (fs::temp_directory_path() / ("lorazip_test_lm_codec_corpus_" + std::to_string(::getpid()))).string();
  return d;
}

// Removes the temporary base directory however the test ends.
struct RemoveTempRoot {
  ~RemoveTempRoot() {
    std::error_code ec;
    fs::remove_all(temp_root(), ec);
  }
};

// Base model directory with a tokenizer trained on every 16th document (BPE 1024, byte fallback)
// and a tiny Llama with weights large enough that its distributions are far from uniform.
std::string make_base(const std::vector<Doc>& docs) {
  fs::create_directories(temp_root());
  std::vector<std::string> sample;
  for (size_t i = 0; i < docs.size(); i += 16) sample.push_back(docs[i].text);
  TokenizerTrainOptions topt;
  topt.vocab_size = 1024;
  topt.threads = 1;
  const std::string tok_path = temp_root() + "/tok.model";
  Tokenizer::train(sample, topt, tok_path);
  const Tokenizer tok = Tokenizer::load(tok_path);

  LlamaConfig c;
  c.vocab_size = tok.vocab_size();
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.bos_token_id = tok.bos_id();
  c.eos_token_id = tok.eos_id();
  LlamaForCausalLM m(c);
  m->init_weights(7, 0.25);
  m->eval();
  const std::string dir = temp_root() + "/base";
  save_hf_model(m, dir, tok.model_bytes());
  return dir;
}

struct Failure {
  size_t index;
  std::string message;
};

struct Totals {
  int64_t docs = 0, bytes = 0, tokens = 0, chunks = 0, file_bytes = 0, payload_bytes = 0, same_file_checks = 0;
  double ideal_bits = 0;
  void add(const Totals& o) {
    docs += o.docs;
    bytes += o.bytes;
    tokens += o.tokens;
    chunks += o.chunks;
    file_bytes += o.file_bytes;
    payload_bytes += o.payload_bytes;
    same_file_checks += o.same_file_checks;
    ideal_bits += o.ideal_bits;
  }
};

}  // namespace

TEST(LmCodecCorpus, EveryLlmTextDocumentRoundTripsAloneAcrossThreadCounts) {
  if (!fs::is_directory(kCorpus)) GTEST_SKIP() << "../shared not found: " << kCorpus << " is absent";
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<Doc> docs = read_corpus(kCorpus);
  ASSERT_FALSE(HasFailure()) << "the corpus could not be read cleanly";
  std::map<std::string, int64_t> per_domain;
  for (const Doc& d : docs) ++per_domain[d.domain];
  for (const char* want : {"chat", "code", "creative", "math", "science"})
    EXPECT_GT(per_domain[want], 0) << "no documents read for domain '" << want << "' under " << kCorpus;

  size_t stride = 1;
  if (const char* s = std::getenv("LORAZIP_CORPUS_STRIDE")) stride = std::max(1, std::atoi(s));

  const RemoveTempRoot cleanup;
  const std::string base_dir = make_base(docs);
  LoadedModel base = load_model(base_dir);
  const LmCodec codec(base.engine_model(), *base.tokenizer, identity_for(base, nullptr));
  const double setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("corpus: %zu documents (", docs.size());
  for (const auto& [d, n] : per_domain) std::printf(" %s %lld", d.c_str(), (long long)n);
  std::printf(" ); tokenizer %d pieces; setup %.1f s; coding documents with stride %zu on 2 workers\n",
              base.tokenizer->vocab_size(), setup_s, stride);
  std::fflush(stdout);

  const int64_t kGroups[] = {1, 2, 3, 8};
  std::atomic<size_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::vector<Failure> failures;
  Totals totals;
  const auto t1 = std::chrono::steady_clock::now();

  auto worker = [&] {
    at::set_num_threads(1);
    Totals mine;
    for (;;) {
      const size_t k = next.fetch_add(1);
      const size_t i = k * stride;
      if (i >= docs.size()) break;
      const Doc& doc = docs[i];
      // Even k: compress on 2 threads, decompress on 1; odd k: the other way round.
      const int c_threads = k % 2 == 0 ? 2 : 1, d_threads = 3 - c_threads;
      LmCodecOptions o;
      o.chunk_tokens = 0;  // the context less BOS: 63
      o.group_streams = kGroups[(k / 2) % 4];
      o.threads = c_threads;
      std::string fail;
      try {
        CodeStats cs;
        const std::string file = codec.compress(doc.text, o, &cs);
        const std::string back = codec.decompress(file, doc.where, d_threads);
        if (back != doc.text) {
          size_t at = 0;
          while (at < back.size() && at < doc.text.size() && back[at] == doc.text[at]) ++at;
          fail = "decoded " + std::to_string(back.size()) + " bytes for " + std::to_string(doc.text.size()) +
                 ", first difference at byte " + std::to_string(at);
        } else if (k % 25 == 0) {
          LmCodecOptions other = o;
          other.threads = d_threads;
          if (codec.compress(doc.text, other) != file)
            fail = "compressing with " + std::to_string(d_threads) + " thread(s) gave another file than with " +
                   std::to_string(c_threads);
          ++mine.same_file_checks;
        }
        ++mine.docs;
        mine.bytes += cs.bytes;
        mine.tokens += cs.tokens;
        mine.chunks += cs.chunks;
        mine.file_bytes += cs.file_bytes;
        mine.payload_bytes += cs.payload_bytes;
        mine.ideal_bits += cs.ideal_bits;
      } catch (const std::exception& e) {
        fail = std::string("threw: ") + e.what();
      }
      const int64_t n_done = done.fetch_add(1) + 1;
      std::lock_guard<std::mutex> lock(mu);
      if (!fail.empty())
        failures.push_back({i, doc.where + " (compress threads " + std::to_string(c_threads) + ", decompress threads " +
                                   std::to_string(d_threads) + ", group_streams " + std::to_string(o.group_streams) +
                                   "): " + fail});
      if (n_done % 1000 == 0) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        std::printf("  %lld of %zu documents, %.0f s, %zu failures\n", (long long)n_done,
                    (docs.size() + stride - 1) / stride, s, failures.size());
        std::fflush(stdout);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    totals.add(mine);
  };
  std::vector<std::thread> pool;
  for (int w = 0; w < 2; ++w) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  const double code_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();

  std::printf("coded %lld documents, %lld bytes, %lld tokens, %lld chunks; compressed %lld bytes (payload %lld, "
              "ratio %.4f, %.3f bits/token, ideal %.3f); %lld same-file checks across thread counts; %.1f s coding "
              "(compress + decompress), %.1f s in all; %zu failures\n",
              (long long)totals.docs, (long long)totals.bytes, (long long)totals.tokens, (long long)totals.chunks,
              (long long)totals.file_bytes, (long long)totals.payload_bytes,
              totals.bytes ? static_cast<double>(totals.file_bytes) / totals.bytes : 0.0,
              totals.tokens ? 8.0 * totals.payload_bytes / totals.tokens : 0.0,
              totals.tokens ? totals.ideal_bits / totals.tokens : 0.0, (long long)totals.same_file_checks, code_s,
              setup_s + code_s, failures.size());
  std::fflush(stdout);

  std::sort(failures.begin(), failures.end(), [](const Failure& a, const Failure& b) { return a.index < b.index; });
  for (size_t f = 0; f < failures.size() && f < 10; ++f) ADD_FAILURE() << failures[f].message;
  if (!failures.empty())
    FAIL() << failures.size() << " of " << (docs.size() + stride - 1) / stride << " documents failed; the first is "
           << failures.front().message;
  EXPECT_EQ(totals.docs, static_cast<int64_t>((docs.size() + stride - 1) / stride));
}
