// Data tests on real corpora: the embedded samples (data/samples) and the shared LLM-text set
// (../shared/data/llm-text) go through prepare and come back byte for byte; the store is readable
// by h5py with no lorazip code. Each test skips with a message when its input is absent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/fs.h"
#include "data/corpus.h"
#include "data/prepare.h"
#include "data/token_store.h"
#include "model/tokenizer.h"

namespace fs = std::filesystem;
using namespace lorazip;

namespace {

const std::string kSamples = std::string(LORAZIP_SOURCE_DIR) + "/data/samples";
const std::string kLlmText = std::string(LORAZIP_SHARED_DIR) + "/data/llm-text";
const char* kDomains[] = {"chat", "code", "creative", "math", "science"};

std::string fresh_dir(const std::string& name) {
  static int counter = 0;
  fs::path p = fs::temp_directory_path() /
               ("lorazip_test_corpora_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// The "text" of the first max_docs records of every *.jsonl under `path` (sorted), parsed here
// independently of lorazip's corpus reader.
std::multiset<std::string> expected_texts(const std::string& path, size_t max_docs) {
  std::vector<std::string> files;
  if (fs::is_directory(path)) {
    for (auto& e : fs::recursive_directory_iterator(path))
      if (e.path().extension() == ".jsonl") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  std::multiset<std::string> out;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string line;
    while (std::getline(in, line) && (max_docs == 0 || out.size() < max_docs))
      if (!line.empty()) out.insert(nlohmann::json::parse(line).at("text").get<std::string>());
  }
  return out;
}

// Prepares, then checks that each domain's documents (all splits) decode to exactly `expected`
// (duplicates removed), and that the statistics agree with the store.
void check_round_trip(const PrepareConfig& cfg, const std::string& work,
                      const std::map<std::string, std::multiset<std::string>>& expected) {
  PrepareStats st = prepare(cfg, work);
  Tokenizer tok = Tokenizer::load(st.tokenizer_path);
  TokenStore ts = TokenStore::open(work + "/data.h5");
  ASSERT_EQ(st.domains.size(), expected.size());
  for (const DomainStats& d : st.domains) {
    std::set<std::string> unique(expected.at(d.domain).begin(), expected.at(d.domain).end());
    std::multiset<std::string> got;
    for (const char* split : kSplitNames)
      for (auto& doc : read_documents(ts, tok, d.domain, split)) got.insert(std::move(doc));
    EXPECT_EQ(got.size(), unique.size()) << d.domain;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), unique.begin(), unique.end()))
        << d.domain << ": documents read back differ from the source texts";
    EXPECT_EQ(d.duplicates_dropped, static_cast<int64_t>(expected.at(d.domain).size() - unique.size()));
    for (int s = 0; s < 3; ++s) EXPECT_GT(d.splits[s].documents, 0) << d.domain << "/" << kSplitNames[s];
    EXPECT_GT(d.total().bytes_per_token(), 1.5) << d.domain << ": the tokenizer barely compresses";
  }
  std::cout << st.to_markdown();
}

TEST(Corpora, EmbeddedSamplesRoundTrip) {
  std::map<std::string, std::multiset<std::string>> expected;
  PrepareConfig cfg;
  for (const char* d : kDomains) {
    std::string path = kSamples + "/" + d + ".jsonl";
    if (!file_exists(path)) continue;
    cfg.inputs.push_back({d, path});
    expected[d] = expected_texts(path, 0);
  }
  if (cfg.inputs.empty()) GTEST_SKIP() << "data/samples/*.jsonl not found: " << kSamples;
  cfg.tokenizer.vocab_size = 1024;
  cfg.threads = 2;
  check_round_trip(cfg, fresh_dir("samples"), expected);
}

TEST(Corpora, SharedLlmTextRoundTrip) {
  if (!dir_exists(kLlmText)) GTEST_SKIP() << "../shared not found: " << kLlmText << " (the shared LLM-text corpus)";
  // 300 documents per domain and a small tokenizer keep this a few seconds; the full set is timed
  // by hand (docs/token-store.md).
  const int64_t cap = 300;
  std::map<std::string, std::multiset<std::string>> expected;
  PrepareConfig cfg;
  for (const char* d : kDomains) {
    InputSpec in{d, kLlmText + "/" + d};
    in.max_docs = cap;
    cfg.inputs.push_back(in);
    expected[d] = expected_texts(in.path, cap);
  }
  cfg.tokenizer.vocab_size = 1024;
  cfg.tokenizer.max_train_bytes = 1 << 20;
  cfg.threads = 2;
  check_round_trip(cfg, fresh_dir("llmtext"), expected);
}

// Runs a command and returns its stdout; exit status in *rc.
std::string run(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *rc = ::pclose(p);
  return out;
}

// A Python interpreter that can import h5py: the one CMake found (LORAZIP_PYTHON), then
// `python3` on PATH. Empty when neither has h5py; *tried lists what was asked.
std::string python_with_h5py(std::string* tried) {
  std::vector<std::string> candidates;
#ifdef LORAZIP_PYTHON
  if (std::string(LORAZIP_PYTHON).size()) candidates.push_back(LORAZIP_PYTHON);
#endif
  candidates.push_back("python3");
  for (const auto& py : candidates) {
    int rc = -1;
    run("'" + py + "' -c 'import h5py' >/dev/null 2>&1", &rc);
    *tried += (tried->empty() ? "" : ", ") + py;
    if (rc == 0) return py;
  }
  return "";
}

TEST(Corpora, H5pyReadsTheStoreWithoutLorazip) {
  std::string tried;
  const std::string python = python_with_h5py(&tried);
  if (python.empty()) GTEST_SKIP() << "no Python with h5py (tried " << tried << "): cannot check h5py readability";
  int rc = -1;

  std::string dir = fresh_dir("h5py");
  std::string a, b;
  for (int i = 0; i < 300; ++i) {  // enough tokens for the chunked, compressed layout
    a += nlohmann::json{{"text", "Document " + std::to_string(i) + ": the answer is " + std::to_string(i * 7) +
                                     ".\nThanks — “quoted” 😀\n"}}.dump() + "\n";
    b += nlohmann::json{{"text", std::string(i % 50, 'x') + " tail"}}.dump() + "\n";
  }
  std::ofstream(dir + "/a.jsonl") << a;
  std::ofstream(dir + "/b.jsonl") << b;
  PrepareConfig cfg;
  cfg.inputs = {{"alpha", dir + "/a.jsonl"}, {"beta", dir + "/b.jsonl"}};
  cfg.tokenizer.vocab_size = 300;
  cfg.threads = 2;
  PrepareStats st = prepare(cfg, dir + "/work");

  // h5py's view: root attributes, and for each group its dtype, lengths, offsets and a token sum.
  const std::string script = R"PY(
import json, sys, h5py
f = h5py.File(sys.argv[1], "r")
out = {"format": f.attrs["format"], "version": int(f.attrs["version"]),
       "sha": f.attrs["tokenizer_sha256"], "vocab": int(f.attrs["vocab_size"]),
       "dtype": f.attrs["token_dtype"], "domains": [str(d) for d in f.attrs["domains"]], "groups": {}}
json.loads(f.attrs["stats_json"])
for d in f:
    out["sources_" + d] = [str(s) for s in f[d].attrs["sources"]]
    for s in f[d]:
        g = f[d][s]
        t, o, b = g["tokens"][()], g["offsets"][()], g["byte_lengths"][()]
        assert o[0] == 0 and o[-1] == len(t) and len(o) == len(b) + 1
        out["groups"][d + "/" + s] = {"dtype": str(t.dtype), "n": int(len(t)), "sum": int(t.astype("int64").sum()),
                                      "docs": int(len(b)), "bytes": int(b.sum()), "attr_tokens": int(g.attrs["tokens"]),
                                      "compressed": g["tokens"].compression or ""}
print(json.dumps(out))
)PY";
  std::ofstream(dir + "/check.py") << script;
  std::string out = run("'" + python + "' " + dir + "/check.py " + dir + "/work/data.h5", &rc);
  ASSERT_EQ(rc, 0) << "h5py could not read the store: " << out;
  nlohmann::json j = nlohmann::json::parse(out);
  EXPECT_EQ(j["format"], "lorazip-token-store");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["sha"], st.tokenizer_sha256);
  EXPECT_EQ(j["vocab"], st.vocab_size);
  EXPECT_EQ(j["dtype"], "uint16");
  EXPECT_EQ(j["domains"], (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ(j["sources_alpha"], std::vector<std::string>{dir + "/a.jsonl"});
  TokenStore ts = TokenStore::open(dir + "/work/data.h5");
  bool any_compressed = false;
  for (const DomainStats& d : st.domains) {
    for (int s = 0; s < 3; ++s) {
      const nlohmann::json& g = j["groups"][d.domain + "/" + kSplitNames[s]];
      DocSet set = ts.read(d.domain, kSplitNames[s]);
      int64_t sum = 0;
      for (int32_t t : set.tokens) sum += t;
      EXPECT_EQ(g["dtype"], "uint16");
      EXPECT_EQ(g["n"], set.tokens.size());
      EXPECT_EQ(g["sum"], sum);
      EXPECT_EQ(g["docs"], d.splits[s].documents);
      EXPECT_EQ(g["bytes"], d.splits[s].bytes);
      EXPECT_EQ(g["attr_tokens"], d.splits[s].tokens);
      any_compressed = any_compressed || g["compressed"] == "gzip";
    }
  }
  EXPECT_TRUE(any_compressed) << "expected the large train split to use the gzip layout";
}

}  // namespace
