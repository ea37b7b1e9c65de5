// Tokenizer tests: decode(encode(b)) == b for every byte string, with a model trained here and with
// the Llama-family TinyStories tokenizer; compact encoding of ordinary text; training determinism;
// clear load errors; concurrent use; and coexistence with libtorch in one process.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/hash.h"
#include "model/hf_tokenizer.h"
#include "model/tokenizer.h"

#ifdef LORAZIP_TEST_WITH_TORCH
#include <ATen/ATen.h>
#endif

namespace fs = std::filesystem;
using lorazip::Tokenizer;
using lorazip::TokenizerTrainOptions;

namespace {

const std::string kTinyStories = std::string(LORAZIP_SHARED_DIR) + "/models/tinystories-260k-hf/tokenizer.model";

std::string temp_dir() {
  static const std::string dir = [] {
    fs::path p = fs::temp_directory_path() / ("lorazip_test_tokenizer_" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p.string();
  }();
  return dir;
}

// Removes the temporary directory when the test program ends.
class RemoveTempDir : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(temp_dir(), ec);
  }
};
const auto* const kRemoveTempDir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

// Assistant-style text: paragraphs of sentences, a bullet list, a code block with indentation,
// numbers. Different seeds give different text in the same style.
std::string make_text(uint32_t seed, size_t n_bytes) {
  static const std::vector<std::string> words = {
      "the", "model", "data", "a", "of", "to", "and", "is", "in", "that", "this", "for", "it", "with", "as",
      "we", "can", "be", "on", "each", "value", "function", "returns", "example", "first", "second", "time",
      "step", "result", "file", "number", "list", "you", "your", "will", "which", "when", "should", "use",
      "code", "output", "input", "error", "memory", "process", "system", "problem", "answer", "question",
      "simple", "important", "because", "however", "therefore", "another", "between", "different",
      "training", "language", "compression", "probability", "token", "sentence", "story", "little",
      "happy", "friend", "garden", "water", "light", "small", "large", "new", "old", "good", "better"};
  static const std::vector<std::string> code = {
      "def compute(x):", "    return x * 2", "for i in range(10):", "    print(i)", "if value is None:",
      "        raise ValueError(\"missing value\")", "int main() {", "  return 0;", "}", "    total += item"};
  std::mt19937 rng(seed);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  std::string out;
  while (out.size() < n_bytes) {
    const unsigned kind = rng() % 10;
    if (kind < 6) {
      for (int s = 0, ns = 2 + static_cast<int>(rng() % 4); s < ns; ++s) {
        std::string sent = pick(words);
        sent[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(sent[0])));
        for (int w = 0, nw = 5 + static_cast<int>(rng() % 12); w < nw; ++w) {
          sent += (rng() % 9 == 0) ? ", " : " ";
          sent += (rng() % 15 == 0) ? std::to_string(rng() % 2000) : pick(words);
        }
        out += sent + (rng() % 6 == 0 ? "? " : ". ");
      }
      out.back() = '\n';
      out += "\n";
    } else if (kind < 8) {
      for (int i = 0, n = 2 + static_cast<int>(rng() % 3); i < n; ++i)
        out += "- " + pick(words) + " " + pick(words) + ": " + pick(words) + " " + pick(words) + "\n";
      out += "\n";
    } else {
      out += "```python\n";
      for (int i = 0, n = 2 + static_cast<int>(rng() % 4); i < n; ++i) out += pick(code) + "\n";
      out += "```\n\n";
    }
  }
  return out;
}

std::vector<std::string> make_docs(uint32_t seed, int n_docs, size_t doc_bytes) {
  std::vector<std::string> docs;
  for (int i = 0; i < n_docs; ++i) docs.push_back(make_text(seed + static_cast<uint32_t>(i), doc_bytes));
  return docs;
}

std::string trained_path(const std::string& type) { return temp_dir() + "/trained_" + type + ".model"; }

// Trains (once per process) a small model on generated text.
const Tokenizer& trained(const std::string& type = "bpe") {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& t = cache[type];
  if (!t) {
    TokenizerTrainOptions opt;
    opt.vocab_size = 576;
    opt.model_type = type;
    opt.threads = 2;
    Tokenizer::train(make_docs(1, 40, 4000), opt, trained_path(type));
    t = std::make_unique<Tokenizer>(Tokenizer::load(trained_path(type)));
  }
  return *t;
}

bool have_tinystories() { return lorazip::file_exists(kTinyStories); }

const Tokenizer& tinystories() {
  static const Tokenizer t = Tokenizer::load(kTinyStories);
  return t;
}

#define SKIP_WITHOUT_TINYSTORIES()                                                          \
  if (!have_tinystories())                                                                  \
  GTEST_SKIP() << "../shared not found: " << kTinyStories                                   \
               << " is absent, so the Llama-family tokenizer checks are skipped"

std::string hex(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

void expect_round_trip(const Tokenizer& t, const std::string& s, const std::string& what) {
  const std::vector<int32_t> ids = t.encode(s);
  for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < t.vocab_size()) << what << ": id " << id;
  const std::string back = t.decode(ids);
  if (back != s) FAIL() << what << ": round trip changed the bytes\n  in:  " << hex(s) << "\n  out: " << hex(back);
}

// Each tokenizer under test: the trained BPE and unigram models, and TinyStories when present.
std::vector<std::pair<std::string, const Tokenizer*>> all_tokenizers() {
  std::vector<std::pair<std::string, const Tokenizer*>> v = {{"trained-bpe", &trained("bpe")},
                                                             {"trained-unigram", &trained("unigram")}};
  if (have_tinystories()) v.emplace_back("tinystories", &tinystories());
  return v;
}

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

const std::vector<std::string>& edge_cases() {
  static const std::vector<std::string> v = {
      "",
      std::string(1, '\0'),
      std::string("a\0b\0\0c", 6),
      "\r\n",
      "line one\r\nline two\r\n",
      "\t\tindented\twith\ttabs\t",
      std::string(1000, ' '),
      " leading space",
      "   three leading spaces",
      "trailing spaces   ",
      "\n",
      "\n\n\n\n\n",
      " \n \n ",
      "double  space   triple    quad",
      "\xE2\x96\x81",                       // U+2581 itself, SentencePiece's space mark
      "a\xE2\x96\x81\xE2\x96\x81 b \xE2\x96\x81",
      "\xEF\xBF\xBD",                       // U+FFFD, a real replacement character
      "\xEF\xBB\xBFwith BOM",
      "ab\xFF" "cd",
      "\xFF",
      "\xFE\xFF\xFF\xFE",
      "\x80",                               // lone continuation byte
      "x\x80\x81\xBFy",
      "\xC0\xAF",                           // overlong '/'
      "\xE0\x80\xAF",                       // overlong, 3 bytes
      "\xF0\x80\x80\xAF",                   // overlong, 4 bytes
      "\xED\xA0\x80",                       // UTF-16 high surrogate encoded in UTF-8
      "\xED\xB0\x80\xED\xA0\x80",
      "\xF4\x90\x80\x80",                   // above U+10FFFF
      "\xF8\x88\x80\x80\x80",               // 5-byte form
      "end\xE2\x82",                        // truncated 3-byte sequence at the end
      "end\xF0\x9F\x98",                    // truncated emoji at the end
      "\xC3",
      "caf\xC3\xA9 na\xC3\xAFve \xE2\x80\x94 r\xC3\xA9sum\xC3\xA9",
      "emoji \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD and family \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9",
      "e\xCC\x81\xCC\x82\xCC\x83 combining",
      "\xE4\xB8\xAD\xE6\x96\x87\xE6\xB5\x8B\xE8\xAF\x95",  // CJK
      "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D \xD8\xB3\xD9\x84\xD8\xA7\xD9\x85",  // Hebrew, Arabic (RTL)
      "\xE2\x80\x8F\xE2\x80\xAE reversed \xE2\x80\xAC",  // bidi controls
      "<s></s><unk><0x41>",                // text that spells special pieces
      "\x01\x02\x03\x1B[31mred\x1B[0m\x7F",
      "1234567890 3.14159 -42 1e-9",
  };
  return v;
}

}  // namespace

TEST(Tokenizer, EdgeCasesRoundTrip) {
  for (const auto& [name, t] : all_tokenizers())
    for (size_t i = 0; i < edge_cases().size(); ++i)
      expect_round_trip(*t, edge_cases()[i], name + " edge case " + std::to_string(i));
}

TEST(Tokenizer, LongLinesRoundTrip) {
  // Lines far longer than one SentencePiece call (runs are handed over in pieces of a few kB):
  // prose without newlines, one endless word, and multi-byte characters without any space.
  std::string prose = make_text(31, 30000);
  for (char& c : prose)
    if (c == '\n') c = ' ';
  std::string cjk;
  while (cjk.size() < 20000) cjk += "\xE4\xB8\xAD\xE6\x96\x87\xF0\x9F\x98\x80\xC3\xA9";
  const std::vector<std::string> lines = {prose, std::string(20000, 'a'), cjk, std::string(9000, ' ') + "x",
                                          "x" + std::string(9000, ' ')};
  for (const auto& [name, t] : all_tokenizers())
    for (size_t i = 0; i < lines.size(); ++i) expect_round_trip(*t, lines[i], name + " long line " + std::to_string(i));
}

TEST(Tokenizer, EmptyStringIsNoTokens) {
  for (const auto& [name, t] : all_tokenizers()) {
    EXPECT_TRUE(t->encode("").empty()) << name;
    EXPECT_EQ(t->decode(std::vector<int32_t>{}), "") << name;
  }
}

TEST(Tokenizer, RandomBytesRoundTrip) {
  std::mt19937 rng(7);
  for (const auto& [name, t] : all_tokenizers()) {
    for (int i = 0; i < 300; ++i) {
      // Mostly short strings, some up to 10 kB; a third drawn from a small alphabet so that valid
      // UTF-8 runs, spaces and newlines appear among the invalid bytes.
      const size_t len = (i % 10 == 0) ? rng() % 10001 : rng() % 64;
      std::string s(len, '\0');
      const bool small_alphabet = i % 3 == 0;
      static const char alpha[] = {' ', 'a', 'e', '\n', '\xC3', '\xA9', '\xE2', '\x96', '\x81', '\0', '\xFF', 't'};
      for (char& c : s) c = small_alphabet ? alpha[rng() % sizeof alpha] : static_cast<char>(rng() & 0xFF);
      expect_round_trip(*t, s, name + " random bytes #" + std::to_string(i));
      if (HasFatalFailure()) return;
    }
  }
}

TEST(Tokenizer, RandomUnicodeRoundTrip) {
  // Code point ranges: ASCII, Latin-1, combining marks, Greek/Cyrillic, Hebrew/Arabic, Devanagari,
  // general punctuation (incl. zero-width and bidi marks), block elements (incl. U+2581), CJK,
  // Hangul, private use, specials (U+FFFD, U+FEFF, U+FFFE/FFFF), emoji, supplementary planes.
  static const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0x00, 0x7F},       {0xA0, 0xFF},       {0x300, 0x36F},     {0x370, 0x4FF},     {0x590, 0x6FF},
      {0x900, 0x97F},     {0x2000, 0x206F},   {0x2580, 0x259F},   {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3},
      {0xE000, 0xE0FF},   {0xFE00, 0xFFFF},   {0x1F300, 0x1FAFF}, {0x10000, 0x1007F}, {0x10FF00, 0x10FFFF}};
  std::mt19937 rng(11);
  for (const auto& [name, t] : all_tokenizers()) {
    for (int i = 0; i < 200; ++i) {
      std::string s;
      const int n = static_cast<int>(rng() % (i % 10 == 0 ? 2000 : 60));
      for (int k = 0; k < n; ++k) {
        if (rng() % 4 == 0) {
          s += " ";
          continue;
        }
        const auto& r = ranges[rng() % ranges.size()];
        uint32_t cp = r.first + rng() % (r.second - r.first + 1);
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
        s += utf8(cp);
      }
      expect_round_trip(*t, s, name + " random unicode #" + std::to_string(i));
      if (HasFatalFailure()) return;
    }
  }
}

TEST(Tokenizer, GeneratedTextRoundTripsAndIsCompact) {
  const std::string text = make_text(9999, 50000);  // held out: not among the training seeds
  for (const auto& [name, t] : all_tokenizers()) {
    const auto ids = t->encode(text);
    ASSERT_EQ(t->decode(ids), text) << name;
    const double bpt = static_cast<double>(text.size()) / static_cast<double>(ids.size());
    std::printf("[ bytes/token ] %-16s %.2f on %zu bytes of generated assistant-style text\n", name.c_str(), bpt,
                text.size());
    // Byte fallback would give 1.0; a working segmentation packs several bytes per token.
    if (name.rfind("trained", 0) == 0) EXPECT_GT(bpt, 2.5) << name;
  }
}

TEST(Tokenizer, TinyStoriesEncodesStoriesCompactly) {
  SKIP_WITHOUT_TINYSTORIES();
  const std::string story =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
      "One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
      "Lily asked her mom, \"Can you help me get the ball?\" Her mom smiled and said, \"Yes, of course!\"\n";
  const auto ids = tinystories().encode(story);
  EXPECT_EQ(tinystories().decode(ids), story);
  const double bpt = static_cast<double>(story.size()) / static_cast<double>(ids.size());
  std::printf("[ bytes/token ] tinystories      %.2f on a %zu-byte story\n", bpt, story.size());
  EXPECT_GT(bpt, 2.0);
  // No dummy prefix: the first word is encoded without a leading space.
  EXPECT_EQ(tinystories().piece_bytes(ids[0]).front(), 'O');
  EXPECT_EQ(tinystories().bos_id(), 1);
  EXPECT_EQ(tinystories().eos_id(), 2);
  EXPECT_EQ(tinystories().vocab_size(), 512);
}

TEST(Tokenizer, NewlineSplitsEncodingIndependently) {
  const std::string a = "First line with  words ", b = " second\tline";
  for (const auto& [name, t] : all_tokenizers()) {
    auto left = t->encode(a), right = t->encode(b), joined = t->encode(a + "\n" + b);
    ASSERT_EQ(t->encode("\n").size(), 1u) << name;
    left.push_back(t->encode("\n")[0]);
    left.insert(left.end(), right.begin(), right.end());
    EXPECT_EQ(joined, left) << name;
  }
}

TEST(Tokenizer, PieceBytesAndSpecialIds) {
  for (const auto& [name, t] : all_tokenizers()) {
    for (int b = 0; b < 256; ++b) EXPECT_EQ(t->piece_bytes(t->byte_id(static_cast<uint8_t>(b))), std::string(1, static_cast<char>(b))) << name;
    EXPECT_EQ(t->piece_bytes(t->bos_id()), "") << name;
    EXPECT_EQ(t->piece_bytes(t->eos_id()), "") << name;
    EXPECT_EQ(t->decode({t->bos_id(), t->byte_id('h'), t->byte_id('i'), t->eos_id()}), "hi") << name;
    EXPECT_THROW(t->piece_bytes(-1), std::invalid_argument) << name;
    EXPECT_THROW(t->piece_bytes(t->vocab_size()), std::invalid_argument) << name;
  }
}

// tokenizer_config.json for a SentencePiece model: the slow/fast Llama classes, BOS added, and
// add_prefix_space as the model was trained (without it transformers 4.x's fast tokenizer puts
// "\u2581" before the first word of a model trained without a dummy prefix, as lorazip's are).
TEST(Tokenizer, HfTokenizerConfigStatesBosEosAndPrefix) {
  const Tokenizer& t = trained("bpe");
  EXPECT_EQ(t.token_text(t.bos_id()), "<s>");
  EXPECT_EQ(t.token_text(t.eos_id()), "</s>");
  EXPECT_EQ(t.token_text(t.unk_id()), "<unk>");
  EXPECT_EQ(t.token_text(t.byte_id('\n')), "<0x0A>");
  const auto files = lorazip::hf_tokenizer_files(t, 512);
  const nlohmann::json c = nlohmann::json::parse(files.at("tokenizer_config.json"));
  EXPECT_EQ(c.at("tokenizer_class"), "LlamaTokenizer");
  EXPECT_EQ(c.at("bos_token"), "<s>");
  EXPECT_EQ(c.at("eos_token"), "</s>");
  EXPECT_EQ(c.at("unk_token"), "<unk>");
  EXPECT_EQ(c.at("add_bos_token"), true);
  EXPECT_EQ(c.at("add_eos_token"), false);
  EXPECT_EQ(c.at("add_prefix_space"), false);
  EXPECT_EQ(c.at("legacy"), true);
  EXPECT_EQ(c.at("model_max_length"), 512);
  EXPECT_EQ(nlohmann::json::parse(files.at("special_tokens_map.json")),
            (nlohmann::json{{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}}));
  if (!have_tinystories()) return;  // the dummy-prefix case needs a Llama-family tokenizer.model
  ASSERT_TRUE(tinystories().trained_with_dummy_prefix());
  EXPECT_EQ(nlohmann::json::parse(lorazip::hf_tokenizer_files(tinystories(), 512).at("tokenizer_config.json")).at("add_prefix_space"),
            true);
}

TEST(Tokenizer, FingerprintIsOfTheOriginalFile) {
  const Tokenizer& t = trained("bpe");
  const std::string bytes = lorazip::read_file(trained_path("bpe"));
  EXPECT_EQ(t.sha256(), lorazip::sha256_hex(bytes));
  EXPECT_EQ(trained("bpe").model_bytes(), bytes);
  EXPECT_EQ(trained("bpe").vocab_size(), 576);
  if (have_tinystories()) EXPECT_EQ(tinystories().sha256(), lorazip::sha256_file(kTinyStories));
  // from_bytes of the same bytes is the same tokenizer.
  const Tokenizer again = Tokenizer::from_bytes(bytes, "copy");
  const std::string text = make_text(5, 3000);
  EXPECT_EQ(again.encode(text), trained("bpe").encode(text));
}

TEST(Tokenizer, TrainingIsDeterministic) {
  // Same documents and options -> the same file. A BPE model is also the same for any thread count
  // (the shim leaves num_threads out of the stored trainer_spec); a unigram model's EM sums depend on
  // how the work is split, so it is reproducible only for the same thread count.
  const auto docs = make_docs(1, 40, 4000);
  for (const std::string type : {"bpe", "unigram"}) {
    TokenizerTrainOptions opt;
    opt.vocab_size = 576;
    opt.model_type = type;
    opt.threads = type == "bpe" ? 1 : 2;
    trained(type);  // the reference, trained with 2 threads
    const std::string again = temp_dir() + "/again_" + type + ".model";
    Tokenizer::train(docs, opt, again);
    EXPECT_EQ(lorazip::sha256_file(again), lorazip::sha256_file(trained_path(type)))
        << type << ": training twice on the same documents gave different models";
  }
}

TEST(Tokenizer, TrainingSamplesWhenCapped) {
  TokenizerTrainOptions opt;
  opt.vocab_size = 400;
  opt.max_sentences = 200;
  opt.threads = 1;
  const std::string out = temp_dir() + "/capped.model";
  Tokenizer::train(make_docs(3, 20, 4000), opt, out);
  const Tokenizer t = Tokenizer::load(out);
  EXPECT_EQ(t.vocab_size(), 400);
  expect_round_trip(t, make_text(77, 2000), "capped");
}

TEST(Tokenizer, TrainingRejectsBadOptions) {
  TokenizerTrainOptions opt;
  const auto docs = make_docs(1, 2, 1000);
  const std::string out = temp_dir() + "/bad.model";
  opt.model_type = "wordpiece";
  EXPECT_THROW(Tokenizer::train(docs, opt, out), std::invalid_argument);
  opt = {};
  opt.vocab_size = 100;
  EXPECT_THROW(Tokenizer::train(docs, opt, out), std::invalid_argument);
  opt = {};
  EXPECT_THROW(Tokenizer::train({"", "\n\n"}, opt, out), std::invalid_argument);
  // A vocabulary the corpus cannot fill is SentencePiece's error, passed on with the output path.
  opt.vocab_size = 50000;
  try {
    Tokenizer::train({"tiny corpus"}, opt, out);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(out), std::string::npos) << e.what();
  }
  EXPECT_FALSE(lorazip::file_exists(out));
}

TEST(Tokenizer, LoadErrorsNameTheFile) {
  const std::string junk = temp_dir() + "/junk.model";
  lorazip::write_file_atomic(junk, "this is not a tokenizer");
  try {
    Tokenizer::load(junk);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(junk), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tokenizer::load(temp_dir() + "/missing.model"), std::runtime_error);
}

TEST(Tokenizer, DamagedModelsAreRefused) {
  // Truncations and byte flips of a real model, and random bytes: each either loads (a flip can
  // land in a score) and then still round-trips, or fails with std::runtime_error; never a crash.
  const std::string good = trained("bpe").model_bytes();
  std::mt19937 rng(5);
  std::vector<std::string> damaged;
  for (size_t cut : {size_t(1), size_t(2), size_t(10), good.size() / 3, good.size() / 2, good.size() - 1})
    damaged.push_back(good.substr(0, cut));
  for (int i = 0; i < 40; ++i) {
    std::string d = good;
    d[rng() % d.size()] ^= static_cast<char>(1 + rng() % 255);
    damaged.push_back(d);
  }
  for (int i = 0; i < 20; ++i) {
    std::string d(rng() % 2000, '\0');
    for (char& c : d) c = static_cast<char>(rng());
    damaged.push_back(d);
  }
  int refused = 0;
  for (size_t i = 0; i < damaged.size(); ++i) {
    try {
      const Tokenizer t = Tokenizer::from_bytes(damaged[i], "damaged-" + std::to_string(i));
      expect_round_trip(t, "Some text, \xFF and \xE2\x96\x81 too.\n", "damaged model " + std::to_string(i));
    } catch (const std::runtime_error& e) {
      ++refused;
      EXPECT_NE(std::string(e.what()).find("damaged-" + std::to_string(i)), std::string::npos) << e.what();
    }
  }
  EXPECT_GE(refused, 26);  // every truncation and every random blob at least
}

// Rewrites a serialized ModelProto so that byte pieces (type 6) become normal pieces (type 1): a
// model SentencePiece accepts but whose bytes cannot all be represented.
std::string without_byte_pieces(const std::string& model) {
  auto varint = [](const std::string& b, size_t& i) {
    uint64_t v = 0;
    for (int s = 0;; s += 7) {
      const uint8_t c = static_cast<uint8_t>(b[i++]);
      v |= static_cast<uint64_t>(c & 0x7f) << s;
      if (c < 0x80) return v;
    }
  };
  std::string out;
  size_t i = 0;
  while (i < model.size()) {
    const size_t start = i;
    const uint64_t tag = varint(model, i);
    if ((tag & 7) == 2) {
      const size_t len = static_cast<size_t>(varint(model, i));
      std::string payload = model.substr(i, len);
      i += len;
      if ((tag >> 3) == 1 && payload.size() >= 2 && payload.substr(payload.size() - 2) == std::string("\x18\x06")) {
        payload.back() = '\x01';
      }
      out += model.substr(start, i - start - len) + payload;
    } else if ((tag & 7) == 0) {
      varint(model, i);
      out += model.substr(start, i - start);
    } else {
      i += (tag & 7) == 5 ? 4 : 8;
      out += model.substr(start, i - start);
    }
  }
  return out;
}

TEST(Tokenizer, LoadRefusesModelsWithoutByteFallback) {
  const std::string edited = without_byte_pieces(trained("bpe").model_bytes());
  ASSERT_NE(edited, trained("bpe").model_bytes());
  try {
    Tokenizer::from_bytes(edited, "no-bytes.model");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("no-bytes.model"), std::string::npos) << msg;
    EXPECT_NE(msg.find("byte"), std::string::npos) << msg;
  }
}

TEST(Tokenizer, ConcurrentEncodeDecode) {
  const Tokenizer& t = trained("bpe");
  std::vector<std::string> texts;
  for (int i = 0; i < 8; ++i) texts.push_back(make_text(100 + i, 20000) + "\xFF\xE2\x96\x81");
  std::vector<std::vector<int32_t>> expect;
  for (const auto& s : texts) expect.push_back(t.encode(s));
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w)
    threads.emplace_back([&, w] {
      int good = 1;
      for (int rep = 0; rep < 3; ++rep)
        for (size_t i = 0; i < texts.size(); ++i) {
          const auto ids = t.encode(texts[i]);
          good &= ids == expect[i] && t.decode(ids) == texts[i];
        }
      ok[static_cast<size_t>(w)] = good;
    });
  for (auto& th : threads) th.join();
  for (int w = 0; w < 4; ++w) EXPECT_EQ(ok[static_cast<size_t>(w)], 1) << "thread " << w;
}

#ifdef LORAZIP_TEST_WITH_TORCH
// The program links libtorch (and with it protobuf 3.21) while SentencePiece brings its own
// protobuf; both must work in this one process, in either order of first use.
TEST(Tokenizer, WorksBesideLibtorch) {
  const at::Tensor before = at::arange(10, at::kFloat).sum();
  EXPECT_FLOAT_EQ(before.item<float>(), 45.0f);
  const std::string text = make_text(42, 5000);
  EXPECT_EQ(trained("bpe").decode(trained("bpe").encode(text)), text);
  if (have_tinystories()) EXPECT_EQ(tinystories().decode(tinystories().encode(text)), text);
  const at::Tensor ids = at::tensor(std::vector<int64_t>{1, 2, 3});
  EXPECT_EQ(ids.sum().item<int64_t>(), 6);
}
#endif
