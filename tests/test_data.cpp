// Data tests: corpus reading keeps bytes exactly and names file:line on bad input; the strict `data:`
// config; prepare -> token store -> read back is byte-for-byte; splits are stable under reordering;
// duplicates are dropped and counted; nothing half-written is left behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "common/fs.h"
#include "common/yaml_strict.h"
#include "data/corpus.h"
#include "data/prepare.h"
#include "data/token_store.h"
#include "model/tokenizer.h"

namespace fs = std::filesystem;
using namespace lorazip;

namespace {

// A fresh directory per call, removed at process exit by the OS's tmp cleaning only; each test uses
// its own so that tests stay independent.
std::string fresh_dir(const std::string& name) {
  static int counter = 0;
  fs::path p = fs::temp_directory_path() /
               ("lorazip_test_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

void put(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string jsonl_line(const std::string& text) { return nlohmann::json{{"prompt", "p"}, {"text", text}}.dump() + "\n"; }

// Prose in an assistant's register, different for each seed.
std::string prose(uint32_t seed, size_t n_bytes) {
  static const char* words[] = {"the",     "answer", "is",      "a",       "function", "that",   "returns",
                                "value",   "we",     "can",     "compute", "each",     "step",   "first",
                                "then",    "result", "because", "number",  "list",     "of",     "and",
                                "example", "note",   "this",    "data",    "with",     "for",    "in"};
  std::mt19937 rng(seed);
  std::string out;
  while (out.size() < n_bytes) {
    std::string s = words[rng() % 28];
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    for (int w = 0, n = 4 + static_cast<int>(rng() % 9); w < n; ++w) s += std::string(" ") + words[rng() % 28];
    out += s + (rng() % 5 == 0 ? ".\n\n" : ". ");
  }
  return out;
}

// One small BPE tokenizer per test process, trained on generated prose.
const std::string& test_tokenizer_path() {
  static const std::string path = [] {
    std::string dir = fresh_dir("tokenizer");
    std::vector<std::string> docs;
    for (uint32_t i = 0; i < 30; ++i) docs.push_back(prose(1000 + i, 3000));
    docs.push_back("Emoji 😀🎉 naïve café — “quotes” 日本語 tabs\tand\r\nCRLF");
    TokenizerTrainOptions opt;
    opt.vocab_size = 500;
    opt.threads = 2;
    std::string p = dir + "/tok.model";
    Tokenizer::train(docs, opt, p);
    return p;
  }();
  return path;
}

const Tokenizer& test_tokenizer() {
  static const Tokenizer t = Tokenizer::load(test_tokenizer_path());
  return t;
}

PrepareConfig config_with_tokenizer() {
  PrepareConfig c;
  c.tokenizer.model = test_tokenizer_path();
  c.threads = 2;
  return c;
}

InputSpec input(const std::string& domain, const std::string& path) {
  InputSpec in;
  in.domain = domain;
  in.path = path;
  return in;
}

// Every document of a domain (all splits) read back as bytes, with the split it landed in.
std::multimap<std::string, std::string> read_back(const std::string& store_path, const std::string& domain) {
  TokenStore ts = TokenStore::open(store_path);
  std::multimap<std::string, std::string> out;
  for (const char* split : kSplitNames)
    for (auto& d : read_documents(ts, test_tokenizer(), domain, split)) out.emplace(std::move(d), split);
  return out;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- corpus reading ----

TEST(Corpus, JsonlKeepsDocumentBytesExactly) {
  std::string dir = fresh_dir("jsonl");
  std::vector<std::string> texts = {"", "  leading and trailing spaces  \n\n", "CRLF\r\nline\r\n", "tabs\tand\ttabs",
                                    "emoji 😀 and \u00e9 and 日本", std::string("nul\0byte", 8), "ends with newline\n"};
  std::string data;
  for (const auto& t : texts) data += jsonl_line(t);
  data += "{\"text\": \"escaped \\ud83d\\ude00 \\u00e9\\n\"}\n";  // \u escapes and a surrogate pair
  put(dir + "/a.jsonl", data);
  CorpusReadResult r = read_input(input("x", dir + "/a.jsonl"), false);
  ASSERT_EQ(r.docs.size(), texts.size() + 1);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(r.docs[i].bytes, texts[i]) << "document " << i;
  EXPECT_EQ(r.docs.back().bytes, "escaped 😀 é\n");
  EXPECT_EQ(r.docs[2].where, dir + "/a.jsonl:3");
}

TEST(Corpus, BlankLinesAndCrlfLineEndsAreAccepted) {
  std::string dir = fresh_dir("blank");
  put(dir + "/a.jsonl", "{\"text\": \"one\"}\r\n\n   \n{\"text\": \"two\"}");  // no final newline
  CorpusReadResult r = read_input(input("x", dir + "/a.jsonl"), false);
  ASSERT_EQ(r.docs.size(), 2u);
  EXPECT_EQ(r.docs[0].bytes, "one");
  EXPECT_EQ(r.docs[1].bytes, "two");
  EXPECT_EQ(r.docs[1].where, dir + "/a.jsonl:4");
}

TEST(Corpus, MalformedJsonNamesFileAndLine) {
  std::string dir = fresh_dir("malformed");
  put(dir + "/bad.jsonl", jsonl_line("ok") + jsonl_line("ok too") + "{\"text\": \"unterminated}\n" + jsonl_line("x"));
  std::string msg = error_of([&] { read_input(input("x", dir + "/bad.jsonl"), false); });
  EXPECT_NE(msg.find(dir + "/bad.jsonl:3: malformed JSON"), std::string::npos) << msg;
  EXPECT_NE(msg.find("skip_bad_lines"), std::string::npos) << "the message should name the way out: " << msg;
  EXPECT_THROW(read_input(input("x", dir + "/bad.jsonl"), false), std::runtime_error);
}

TEST(Corpus, MissingAndNonStringFieldsNameFileLineAndField) {
  std::string dir = fresh_dir("fields");
  put(dir + "/missing.jsonl", jsonl_line("ok") + "{\"prompt\": \"no text here\"}\n");
  put(dir + "/number.jsonl", "{\"text\": 42}\n");
  put(dir + "/array.jsonl", jsonl_line("a") + jsonl_line("b") + "[1, 2]\n");
  std::string m1 = error_of([&] { read_input(input("x", dir + "/missing.jsonl"), false); });
  EXPECT_NE(m1.find("missing.jsonl:2: no field 'text'"), std::string::npos) << m1;
  std::string m2 = error_of([&] { read_input(input("x", dir + "/number.jsonl"), false); });
  EXPECT_NE(m2.find("number.jsonl:1: field 'text' is a number, expected a string"), std::string::npos) << m2;
  std::string m3 = error_of([&] { read_input(input("x", dir + "/array.jsonl"), false); });
  EXPECT_NE(m3.find("array.jsonl:3:"), std::string::npos) << m3;
  // A custom text_field is honoured.
  InputSpec in = input("x", dir + "/missing.jsonl");
  in.text_field = "body";
  std::string m4 = error_of([&] { read_input(in, false); });
  EXPECT_NE(m4.find("missing.jsonl:1: no field 'body'"), std::string::npos) << m4;
}

TEST(Corpus, SkipBadLinesCountsThem) {
  std::string dir = fresh_dir("skip");
  put(dir + "/a.jsonl", jsonl_line("one") + "not json\n" + "{\"text\": null}\n" + "{\"body\": \"x\"}\n" +
                            jsonl_line("two") + "{\"text\": [\"list\"]}\n");
  CorpusReadResult r = read_input(input("x", dir + "/a.jsonl"), true);
  ASSERT_EQ(r.docs.size(), 2u);
  EXPECT_EQ(r.docs[0].bytes, "one");
  EXPECT_EQ(r.docs[1].bytes, "two");
  EXPECT_EQ(r.lines_skipped, 4);
}

TEST(Corpus, MessagesModeTakesEachAssistantTurn) {
  std::string dir = fresh_dir("messages");
  nlohmann::json rec = {{"messages",
                         {{{"role", "system"}, {"content", "be brief"}},
                          {{"role", "user"}, {"content", "hi"}},
                          {{"role", "assistant"}, {"content", "Hello!\n"}},
                          {{"role", "user"}, {"content", "more"}},
                          {{"role", "assistant"}, {"content", nullptr}},
                          {{"role", "assistant"}, {"content", {{{"type", "text"}, {"text", "part one, "}},
                                                               {{"type", "text"}, {"text", "part two"}}}}}}}};
  put(dir + "/chat.jsonl", rec.dump() + "\n" + jsonl_line("no messages here"));
  InputSpec in = input("chat", dir + "/chat.jsonl");
  in.messages = true;
  std::string msg = error_of([&] { read_input(in, false); });
  EXPECT_NE(msg.find("chat.jsonl:2: no field 'messages'"), std::string::npos) << msg;
  CorpusReadResult r = read_input(in, true);
  ASSERT_EQ(r.docs.size(), 2u);
  EXPECT_EQ(r.docs[0].bytes, "Hello!\n");
  EXPECT_EQ(r.docs[1].bytes, "part one, part two");
  EXPECT_EQ(r.lines_skipped, 1);
}

TEST(Corpus, DirectoryIsReadRecursivelyInSortedOrder) {
  std::string dir = fresh_dir("tree");
  put(dir + "/b/2.jsonl", jsonl_line("b2"));
  put(dir + "/a.txt", "plain text\r\nkept as is  ");
  put(dir + "/b/1.md", "# markdown\n");
  put(dir + "/.hidden.jsonl", jsonl_line("hidden"));
  put(dir + "/.git/x.jsonl", jsonl_line("hidden too"));
  put(dir + "/c.jsonl", jsonl_line("c1") + jsonl_line("c2"));
  CorpusReadResult r = read_input(input("x", dir), false);
  std::vector<std::string> got;
  for (auto& d : r.docs) got.push_back(d.bytes);
  EXPECT_EQ(got, (std::vector<std::string>{"plain text\r\nkept as is  ", "# markdown\n", "b2", "c1", "c2"}));
  EXPECT_EQ(r.files.size(), 4u);
  // format: text reads a JSONL file as one document; max_docs caps what is read.
  InputSpec as_text = input("x", dir + "/c.jsonl");
  as_text.format = "text";
  EXPECT_EQ(read_input(as_text, false).docs.at(0).bytes, jsonl_line("c1") + jsonl_line("c2"));
  InputSpec capped = input("x", dir);
  capped.max_docs = 3;
  EXPECT_EQ(read_input(capped, false).docs.size(), 3u);
  EXPECT_THROW(read_input(input("x", dir + "/nope"), false), std::runtime_error);
}

// ---- config ----

TEST(PrepareConfig, ReadsTheDataSectionWithPathsRelativeToTheConfig) {
  std::string dir = fresh_dir("yaml");
  std::string text =
      "data:\n"
      "  inputs:\n"
      "    - domain: math\n"
      "      path: ../corpus/math.jsonl\n"
      "      format: jsonl\n"
      "      max_docs: 10\n"
      "    - {domain: chat, path: /abs/chat, messages: true, text_field: body}\n"
      "  split: {val: 0.2, test: 0.05, seed: 3}\n"
      "  tokenizer: {model: tok/t.model, vocab_size: 1024, type: unigram, max_train_bytes: 5000}\n"
      "  skip_bad_lines: true\n"
      "  threads: 2\n";
  put(dir + "/configs/c.yaml", text);
  YamlMap root = YamlMap::load_file(dir + "/configs/c.yaml");
  YamlMap m = root.sub("data");
  PrepareConfig c = PrepareConfig::from_yaml(m, dir + "/configs");
  root.finish();
  ASSERT_EQ(c.inputs.size(), 2u);
  EXPECT_EQ(c.inputs[0].path, dir + "/corpus/math.jsonl");
  EXPECT_EQ(c.inputs[0].format, "jsonl");
  EXPECT_EQ(c.inputs[0].max_docs, 10);
  EXPECT_EQ(c.inputs[1].path, "/abs/chat");
  EXPECT_TRUE(c.inputs[1].messages);
  EXPECT_EQ(c.inputs[1].text_field, "body");
  EXPECT_DOUBLE_EQ(c.split.val, 0.2);
  EXPECT_DOUBLE_EQ(c.split.test, 0.05);
  EXPECT_EQ(c.split.seed, 3u);
  EXPECT_EQ(c.tokenizer.model, dir + "/configs/tok/t.model");
  EXPECT_EQ(c.tokenizer.vocab_size, 1024);
  EXPECT_EQ(c.tokenizer.type, "unigram");
  EXPECT_EQ(c.tokenizer.max_train_bytes, 5000);
  EXPECT_TRUE(c.skip_bad_lines);
  EXPECT_EQ(c.threads, 2);
  EXPECT_NO_THROW(c.validate());
}

TEST(PrepareConfig, UnknownKeysAndBadValuesNameFileLineAndKey) {
  auto parse = [](const std::string& text) {
    YamlMap root = YamlMap::load_string(text, "cfg.yaml");
    YamlMap m = root.sub("data");
    PrepareConfig::from_yaml(m, "/base");
  };
  std::string m1 = error_of([&] { parse("data:\n  inputs: []\n  splitt: {val: 0.1}\n"); });
  EXPECT_NE(m1.find("cfg.yaml:3"), std::string::npos) << m1;
  EXPECT_NE(m1.find("data.splitt"), std::string::npos) << m1;
  std::string m2 = error_of([&] { parse("data:\n  inputs:\n    - {domain: a, path: x, fromat: jsonl}\n"); });
  EXPECT_NE(m2.find("fromat"), std::string::npos) << m2;
  EXPECT_NE(m2.find("cfg.yaml:3"), std::string::npos) << m2;
  std::string m3 = error_of([&] { parse("data:\n  inputs:\n    - {domain: a, path: x, format: csv}\n"); });
  EXPECT_NE(m3.find("format"), std::string::npos) << m3;
  std::string m4 = error_of([&] { parse("data:\n  inputs:\n    - {domain: a/b, path: x}\n"); });
  EXPECT_NE(m4.find("domain"), std::string::npos) << m4;
  std::string m5 = error_of([&] { parse("data:\n  split: {val: 0.6, test: 0.5}\n"); });
  EXPECT_NE(m5.find("val + test"), std::string::npos) << m5;
  std::string m6 = error_of([&] { parse("data:\n  inputs:\n    - {path: x}\n"); });
  EXPECT_NE(m6.find("domain"), std::string::npos) << m6;
  EXPECT_THROW(parse("data:\n  tokenizer: {vocab_size: big}\n"), std::invalid_argument);
}

TEST(PrepareConfig, CommandLineInputs) {
  InputSpec in = PrepareConfig::parse_input_arg("math=data/samples/math.jsonl");
  EXPECT_EQ(in.domain, "math");
  EXPECT_EQ(in.path, "data/samples/math.jsonl");
  EXPECT_EQ(in.format, "auto");
  EXPECT_THROW(PrepareConfig::parse_input_arg("no-equals-sign"), std::invalid_argument);
  EXPECT_THROW(PrepareConfig::parse_input_arg("=path"), std::invalid_argument);
  EXPECT_THROW(PrepareConfig::parse_input_arg("bad/name=path"), std::invalid_argument);
  PrepareConfig c;
  std::string msg = error_of([&] { c.validate(); });
  EXPECT_NE(msg.find("data.inputs is empty"), std::string::npos) << msg;
}

// ---- the token store writer on its own ----

TEST(TokenStore, NarrowestTokenTypeAndReadBack) {
  EXPECT_EQ(token_dtype_for_vocab(256), "uint8");
  EXPECT_EQ(token_dtype_for_vocab(257), "uint16");
  EXPECT_EQ(token_dtype_for_vocab(65536), "uint16");
  EXPECT_EQ(token_dtype_for_vocab(65537), "uint32");
  for (int64_t vocab : {200, 4096, 100000}) {
    std::string dir = fresh_dir("store");
    StoreHeader h;
    h.vocab_size = vocab;
    h.tokenizer_sha256 = "abc";
    StoreDomain d;
    d.name = "dom";
    d.sources = {"a.jsonl", "b.txt"};
    std::mt19937 rng(static_cast<uint32_t>(vocab));
    for (int s = 0; s < 3; ++s) {
      DocSet& set = d.splits[s];
      set.offsets = {0};
      for (int doc = 0; doc < 50 * (3 - s); ++doc) {  // test split: 50 docs, train: 150
        int n = static_cast<int>(rng() % 200);
        for (int i = 0; i < n; ++i) set.tokens.push_back(static_cast<int32_t>(rng() % vocab));
        set.offsets.push_back(set.tokens.size());
        set.byte_lengths.push_back(static_cast<uint64_t>(n) * 3);
      }
    }
    write_token_store(dir + "/s.h5", h, {d});
    TokenStore ts = TokenStore::open(dir + "/s.h5");
    EXPECT_EQ(ts.token_dtype(), token_dtype_for_vocab(vocab));
    EXPECT_EQ(ts.vocab_size(), vocab);
    EXPECT_EQ(ts.tokenizer_sha256(), "abc");
    EXPECT_EQ(ts.domains(), std::vector<std::string>{"dom"});
    EXPECT_EQ(ts.sources("dom"), d.sources);
    for (int s = 0; s < 3; ++s) {
      DocSet got = ts.read("dom", kSplitNames[s]);
      EXPECT_EQ(got.tokens, d.splits[s].tokens) << vocab << " " << kSplitNames[s];
      EXPECT_EQ(got.offsets, d.splits[s].offsets);
      EXPECT_EQ(got.byte_lengths, d.splits[s].byte_lengths);
    }
    // Ids outside the vocabulary are refused before anything is written.
    d.splits[0].tokens[0] = static_cast<int32_t>(vocab);
    EXPECT_THROW(write_token_store(dir + "/bad.h5", h, {d}), std::invalid_argument);
  }
}

TEST(TokenStore, LongSourceListsFit) {
  // A directory of many small files gives a source list far over HDF5's 64 KiB compact-attribute limit.
  std::string dir = fresh_dir("sources");
  StoreHeader h;
  h.vocab_size = 300;
  h.stats_json = std::string(200000, '{');
  StoreDomain d;
  d.name = "many";
  for (int i = 0; i < 5000; ++i) d.sources.push_back(dir + "/corpus/some/nested/folder/document_" + std::to_string(i) + ".txt");
  for (auto& s : d.splits) s.offsets = {0};
  write_token_store(dir + "/s.h5", h, {d});
  TokenStore ts = TokenStore::open(dir + "/s.h5");
  EXPECT_EQ(ts.sources("many"), d.sources);
  EXPECT_EQ(ts.stats_json().size(), h.stats_json.size());
  EXPECT_EQ(ts.read("many", "val").num_docs(), 0u);
}

TEST(TokenStore, OpenErrorsNameTheFile) {
  std::string dir = fresh_dir("open");
  std::string m1 = error_of([&] { TokenStore::open(dir + "/missing.h5"); });
  EXPECT_NE(m1.find(dir + "/missing.h5"), std::string::npos) << m1;
  put(dir + "/text.h5", "not an hdf5 file");
  std::string m2 = error_of([&] { TokenStore::open(dir + "/text.h5"); });
  EXPECT_NE(m2.find("not an HDF5 file"), std::string::npos) << m2;
  EXPECT_THROW(TokenStore::open(dir + "/text.h5"), std::runtime_error);
}

// ---- prepare ----

TEST(Prepare, EdgeCaseDocumentsRoundTripByteForByte) {
  std::string dir = fresh_dir("edge");
  std::vector<std::string> jsonl_docs = {"", "CRLF line\r\nnext\r\n", "\ttab\tseparated\t", "emoji 😀🎉👍🏽 and 日本語",
                                         "  spaces  at both ends  ", "\n\n\nnewlines only\n\n", prose(7, 5000)};
  std::string data;
  for (const auto& t : jsonl_docs) data += jsonl_line(t);
  put(dir + "/in/edge.jsonl", data);
  const std::string invalid_utf8 = std::string("bad \xff\xfe bytes \xc3(") + "\x80\xe2\x82" + std::string("\0", 1) + "end";
  put(dir + "/in/binary.txt", invalid_utf8);
  put(dir + "/in/empty.txt", "");  // the same empty document as the JSONL one: a duplicate
  PrepareConfig c = config_with_tokenizer();
  c.inputs = {input("edge", dir + "/in")};
  PrepareStats st = prepare(c, dir + "/work");

  std::multiset<std::string> expected(jsonl_docs.begin(), jsonl_docs.end());
  expected.insert(invalid_utf8);
  auto got = read_back(dir + "/work/data.h5", "edge");
  std::multiset<std::string> got_docs;
  for (auto& kv : got) got_docs.insert(kv.first);
  EXPECT_EQ(got_docs, expected);
  ASSERT_EQ(st.domains.size(), 1u);
  EXPECT_EQ(st.domains[0].duplicates_dropped, 1);
  EXPECT_EQ(st.domains[0].documents_read, 9);
  EXPECT_EQ(st.domains[0].total().documents, 8);
  int64_t bytes = 0;
  for (const auto& d : expected) bytes += static_cast<int64_t>(d.size());
  EXPECT_EQ(st.domains[0].total().bytes, bytes);
  EXPECT_FALSE(st.tokenizer_trained);
  EXPECT_EQ(st.tokenizer_sha256, test_tokenizer().sha256());
  EXPECT_EQ(st.token_dtype, "uint16");
  EXPECT_FALSE(fs::exists(dir + "/work/tokenizer.model")) << "a given tokenizer is not copied";
}

TEST(Prepare, StoreMatchesStatsAndTokenizer) {
  std::string dir = fresh_dir("stats");
  std::string a, b;
  for (uint32_t i = 0; i < 40; ++i) a += jsonl_line(prose(i, 600));
  for (uint32_t i = 0; i < 25; ++i) b += jsonl_line(prose(500 + i, 900));
  put(dir + "/a.jsonl", a);
  put(dir + "/b.jsonl", b);
  PrepareConfig c = config_with_tokenizer();
  c.inputs = {input("alpha", dir + "/a.jsonl"), input("beta", dir + "/b.jsonl")};
  PrepareStats st = prepare(c, dir + "/work");
  TokenStore ts = TokenStore::open(dir + "/work/data.h5");
  EXPECT_EQ(ts.domains(), (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ(ts.tokenizer_sha256(), test_tokenizer().sha256());
  EXPECT_EQ(ts.vocab_size(), test_tokenizer().vocab_size());
  ASSERT_EQ(st.domains.size(), 2u);
  for (const auto& d : st.domains) {
    EXPECT_EQ(ts.sources(d.domain).size(), 1u);
    for (int s = 0; s < 3; ++s) {
      DocSet set = ts.read(d.domain, kSplitNames[s]);
      EXPECT_EQ(static_cast<int64_t>(set.num_docs()), d.splits[s].documents);
      EXPECT_EQ(static_cast<int64_t>(set.total_bytes()), d.splits[s].bytes);
      EXPECT_EQ(static_cast<int64_t>(set.tokens.size()), d.splits[s].tokens);
      EXPECT_GT(set.num_docs(), 0u) << d.domain << "/" << kSplitNames[s] << " is empty";
    }
    EXPECT_GT(d.total().bytes_per_token(), 1.5);
  }
  // data_stats.json and the store's copy carry the same numbers.
  PrepareStats from_file = PrepareStats::from_json(read_file(dir + "/work/data_stats.json"));
  PrepareStats from_store = PrepareStats::from_json(ts.stats_json());
  for (const PrepareStats* p : {&from_file, &from_store}) {
    ASSERT_EQ(p->domains.size(), 2u);
    EXPECT_EQ(p->domains[1].splits[2].tokens, st.domains[1].splits[2].tokens);
    EXPECT_EQ(p->tokenizer_sha256, st.tokenizer_sha256);
  }
  std::string md = st.to_markdown();
  EXPECT_NE(md.find("| alpha | train |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **all** | all |"), std::string::npos) << md;
  // Reading with another tokenizer is refused with both fingerprints named.
  std::string other = fresh_dir("other") + "/t.model";
  TokenizerTrainOptions opt;
  opt.vocab_size = 300;
  opt.threads = 2;
  Tokenizer::train({prose(99, 20000)}, opt, other);
  Tokenizer wrong = Tokenizer::load(other);
  std::string msg = error_of([&] { read_documents(ts, wrong, "alpha", "train"); });
  EXPECT_NE(msg.find(test_tokenizer().sha256()), std::string::npos) << msg;
  // A missing group is named.
  std::string m2 = error_of([&] { ts.read("gamma", "train"); });
  EXPECT_NE(m2.find("/gamma/train"), std::string::npos) << m2;
  EXPECT_FALSE(ts.has("gamma", "train"));
  EXPECT_TRUE(ts.has("beta", "test"));
}

TEST(Prepare, SplitsAreStableWhenFilesAndLinesAreReordered) {
  std::string dir = fresh_dir("stable");
  std::vector<std::string> docs;
  for (uint32_t i = 0; i < 120; ++i) docs.push_back(prose(2000 + i, 200));
  auto write_corpus = [&](const std::string& root, std::vector<std::string> d, uint32_t shuffle_seed, bool extra) {
    std::mt19937 rng(shuffle_seed);
    std::shuffle(d.begin(), d.end(), rng);
    std::string f1, f2;
    for (size_t i = 0; i < d.size(); ++i) (i % 3 == 0 ? f1 : f2) += jsonl_line(d[i]);
    put(root + (shuffle_seed % 2 ? "/z.jsonl" : "/a.jsonl"), f1);
    put(root + (shuffle_seed % 2 ? "/a.jsonl" : "/z.jsonl"), f2);
    if (extra) {
      std::string f3;
      for (uint32_t i = 0; i < 30; ++i) f3 += jsonl_line(prose(9000 + i, 200));
      put(root + "/m.jsonl", f3);
    }
  };
  std::vector<std::map<std::string, std::string>> runs;  // document -> split
  int run = 0;
  for (auto [seed, extra] : std::vector<std::pair<uint32_t, bool>>{{1, false}, {2, false}, {3, true}}) {
    std::string root = dir + "/corpus" + std::to_string(run);
    write_corpus(root, docs, seed, extra);
    PrepareConfig c = config_with_tokenizer();
    c.inputs = {input("d", root)};
    prepare(c, dir + "/work" + std::to_string(run));
    std::map<std::string, std::string> m;
    for (auto& kv : read_back(dir + "/work" + std::to_string(run) + "/data.h5", "d")) m[kv.first] = kv.second;
    runs.push_back(m);
    ++run;
  }
  EXPECT_EQ(runs[0], runs[1]) << "reordering files and lines moved documents between splits";
  for (const auto& d : docs) EXPECT_EQ(runs[2].at(d), runs[0].at(d)) << "adding a file moved an existing document";
  std::map<std::string, int> count;
  for (const auto& kv : runs[0]) ++count[kv.second];
  EXPECT_GT(count["val"], 2);
  EXPECT_GT(count["test"], 2);
  EXPECT_GT(count["train"], 80);
}

TEST(Prepare, StoreBytesDoNotDependOnThreadCount) {
  std::string dir = fresh_dir("threads");
  std::string a;
  for (uint32_t i = 0; i < 200; ++i) a += jsonl_line(prose(4000 + i, 100 + (i * 37) % 900));
  put(dir + "/a.jsonl", a);
  PrepareConfig c = config_with_tokenizer();
  c.inputs = {input("a", dir + "/a.jsonl")};
  std::string first;
  for (int threads : {1, 3}) {
    c.threads = threads;
    prepare(c, dir + "/work");
    std::string bytes = read_file(dir + "/work/data.h5");
    if (first.empty()) first = bytes;
    else EXPECT_TRUE(bytes == first) << "data.h5 changed with the number of tokenization threads";
  }
}

TEST(Prepare, DuplicatesAreDroppedWithinADomainOnly) {
  std::string dir = fresh_dir("dups");
  std::string a = jsonl_line("same text") + jsonl_line("other text") + jsonl_line("same text");
  put(dir + "/a1.jsonl", a);
  put(dir + "/a2.jsonl", jsonl_line("other text") + jsonl_line("third"));
  put(dir + "/b.jsonl", jsonl_line("same text") + jsonl_line("fourth"));
  PrepareConfig c = config_with_tokenizer();
  c.inputs = {input("a", dir + "/a1.jsonl"), input("a", dir + "/a2.jsonl"), input("b", dir + "/b.jsonl")};
  PrepareStats st = prepare(c, dir + "/work");
  ASSERT_EQ(st.domains.size(), 2u);
  EXPECT_EQ(st.domains[0].duplicates_dropped, 2);
  EXPECT_EQ(st.domains[0].documents_read, 5);
  EXPECT_EQ(st.domains[0].total().documents, 3);
  EXPECT_EQ(st.domains[0].sources.size(), 2u);
  EXPECT_EQ(st.domains[1].duplicates_dropped, 0);
  EXPECT_EQ(st.domains[1].total().documents, 2);
  auto got = read_back(dir + "/work/data.h5", "a");
  EXPECT_EQ(got.count("same text"), 1u);
  EXPECT_EQ(got.count("other text"), 1u);
  EXPECT_EQ(got.count("third"), 1u);
}

TEST(Prepare, SkippedLinesAreCountedInTheStatistics) {
  std::string dir = fresh_dir("skipstats");
  put(dir + "/a.jsonl", jsonl_line("good one") + "{broken\n" + "{\"text\": 5}\n" + jsonl_line("good two"));
  PrepareConfig c = config_with_tokenizer();
  c.inputs = {input("a", dir + "/a.jsonl")};
  std::string msg = error_of([&] { prepare(c, dir + "/work"); });
  EXPECT_NE(msg.find(dir + "/a.jsonl:2"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir + "/work/data.h5"));
  c.skip_bad_lines = true;
  PrepareStats st = prepare(c, dir + "/work");
  EXPECT_EQ(st.domains[0].lines_skipped, 2);
  EXPECT_EQ(st.domains[0].total().documents, 2);
  TokenStore ts = TokenStore::open(dir + "/work/data.h5");
  EXPECT_EQ(PrepareStats::from_json(ts.stats_json()).domains[0].lines_skipped, 2);
}

TEST(Prepare, EmptyInputsAndEmptyDomainsAreClearErrors) {
  std::string dir = fresh_dir("empty");
  PrepareConfig c = config_with_tokenizer();
  EXPECT_THROW(prepare(c, dir + "/work"), std::invalid_argument);
  put(dir + "/a.jsonl", jsonl_line("text"));
  put(dir + "/blank.jsonl", "\n\n");
  fs::create_directories(dir + "/emptydir");
  c.inputs = {input("a", dir + "/a.jsonl"), input("b", dir + "/blank.jsonl")};
  std::string msg = error_of([&] { prepare(c, dir + "/work"); });
  EXPECT_NE(msg.find("domain 'b' has no documents"), std::string::npos) << msg;
  EXPECT_NE(msg.find("blank.jsonl"), std::string::npos) << msg;
  c.inputs = {input("a", dir + "/emptydir")};
  EXPECT_THROW(prepare(c, dir + "/work"), std::runtime_error);
  c.inputs = {input("a", dir + "/does-not-exist.jsonl")};
  msg = error_of([&] { prepare(c, dir + "/work"); });
  EXPECT_NE(msg.find("does-not-exist.jsonl"), std::string::npos) << msg;
}

TEST(Prepare, FailureLeavesThePreviousStoreAndNoTemporaries) {
  std::string dir = fresh_dir("atomic");
  put(dir + "/a.jsonl", jsonl_line("first document") + jsonl_line("second document") + jsonl_line("third"));
  PrepareConfig c = config_with_tokenizer();
  c.inputs = {input("a", dir + "/a.jsonl")};
  prepare(c, dir + "/work");
  std::string before = read_file(dir + "/work/data.h5");
  put(dir + "/b.jsonl", jsonl_line("fine") + "{\"text\": \"broken\n");
  c.inputs.push_back(input("b", dir + "/b.jsonl"));
  EXPECT_THROW(prepare(c, dir + "/work"), std::runtime_error);
  EXPECT_EQ(read_file(dir + "/work/data.h5"), before);
  for (auto& e : fs::directory_iterator(dir + "/work")) {
    std::string name = e.path().filename().string();
    EXPECT_TRUE(name == "data.h5" || name == "data_stats.json") << "left behind: " << name;
  }
}

TEST(Prepare, TrainsTheTokenizerOnTheTrainSplitOnly) {
  // Each document is one made-up word repeated: BPE learns a word as a piece only when it saw it.
  std::string dir = fresh_dir("trainonly");
  std::mt19937 rng(5);
  std::vector<std::string> words;
  std::string data;
  for (int i = 0; i < 40; ++i) {
    std::string w;
    for (int k = 0; k < 7; ++k) w += static_cast<char>('a' + rng() % 26);
    words.push_back(w);
    std::string doc;
    for (int r = 0; r < 60; ++r) doc += w + " ";
    data += jsonl_line(doc + prose(300 + i, 300));
  }
  put(dir + "/a.jsonl", data);
  PrepareConfig c;
  c.inputs = {input("a", dir + "/a.jsonl")};
  c.split = {0.2, 0.2, 11};
  c.tokenizer.vocab_size = 600;
  c.threads = 2;
  PrepareStats st = prepare(c, dir + "/work");
  EXPECT_TRUE(st.tokenizer_trained);
  ASSERT_TRUE(fs::exists(dir + "/work/tokenizer.model"));
  Tokenizer tok = Tokenizer::load(dir + "/work/tokenizer.model");
  EXPECT_EQ(tok.sha256(), st.tokenizer_sha256);
  TokenStore ts = TokenStore::open(dir + "/work/data.h5");
  auto learned = [&](const std::string& w) {
    for (int id = 0; id < tok.vocab_size(); ++id)
      if (tok.piece_bytes(id).find(w) != std::string::npos) return true;
    return false;
  };
  int train_learned = 0, train_total = 0, held_out = 0;
  for (const char* split : kSplitNames) {
    for (const auto& doc : read_documents(ts, tok, "a", split)) {
      std::string w = doc.substr(0, 7);
      if (std::string(split) == "train") {
        ++train_total;
        train_learned += learned(w);
      } else {
        ++held_out;
        EXPECT_FALSE(learned(w)) << "a word only in " << split << " became a piece: " << w;
      }
    }
  }
  EXPECT_GT(held_out, 0);
  EXPECT_GT(train_learned, train_total / 2) << "the check above has no power if train words are not learned";
}

}  // namespace
