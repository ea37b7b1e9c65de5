// Byte-level BPE tokenizer tests: merge order and ties on a hand-made vocabulary, each
// pre-tokenizer's splits on hand-written cases, lossless round trips of hostile bytes, control
// tokens never produced, tokenizer.json round trips and refusals, and, when the SmolLM2 vocabulary
// exported by scripts/export_gguf_vocab.py is present, the ids llama.cpp gives.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "model/bpe_tokenizer.h"
#include "model/gguf_tokenizer.h"
#include "model/hf_tokenizer.h"
#include "model/tokenizer.h"

namespace fs = std::filesystem;
using lorazip::BpeDefinition;
using lorazip::BpePre;
using lorazip::Tokenizer;

namespace {

// GPT-2's symbol for a byte (the same table the tokenizer uses, written out independently).
std::string symbol_of(uint8_t b) {
  uint32_t cp = b;
  const bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  if (!self) {
    uint32_t k = 0;
    for (int x = 0; x < b; ++x) {
      const bool s = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
      if (!s) ++k;
    }
    cp = 0x100 + k;
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

std::string symbols(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) out += symbol_of(c);
  return out;
}

// A tiny vocabulary: ids 0..255 are the bytes, then `extra` normal tokens (given as raw bytes),
// then a control token "<|x|>".
BpeDefinition tiny(const std::vector<std::string>& merges_raw, const std::vector<std::string>& extra,
                   const std::string& pre = "gpt2") {
  BpeDefinition d;
  for (int b = 0; b < 256; ++b) {
    d.tokens.push_back(symbol_of(static_cast<uint8_t>(b)));
    d.types.push_back(lorazip::kBpeNormal);
  }
  for (const std::string& t : extra) {
    d.tokens.push_back(symbols(t));
    d.types.push_back(lorazip::kBpeNormal);
  }
  d.tokens.push_back("<|x|>");
  d.types.push_back(lorazip::kBpeControl);
  for (const std::string& m : merges_raw) {
    const size_t sp = m.find(' ', 1);
    d.merges.push_back(symbols(m.substr(0, sp)) + " " + symbols(m.substr(sp + 1)));
  }
  d.pre = pre;
  d.eos_id = static_cast<int32_t>(d.tokens.size() - 1);
  return d;
}

int id_of(const BpeDefinition& d, const std::string& raw) {
  const std::string s = symbols(raw);
  for (size_t i = 0; i < d.tokens.size(); ++i)
    if (d.tokens[i] == s && d.types[i] == lorazip::kBpeNormal) return static_cast<int>(i);
  return -1;
}

std::vector<std::string> split(BpePre pre, const std::string& text) {
  std::vector<std::string> out;
  for (std::string_view p : lorazip::bpe_pretokenize(pre, text)) out.emplace_back(p);
  return out;
}

using Pieces = std::vector<std::string>;

// Byte strings every tokenizer must give back exactly.
std::vector<std::string> edge_cases() {
  return {"",
          std::string(1, '\0'),
          std::string("a\0b", 3),
          " ",
          "\n",
          "\r\n",
          "\r\n\r\n  \r\n",
          std::string(5000, ' '),
          std::string(3000, '\n'),
          std::string(2000, '\t') + "x",
          "   leading and trailing   ",
          "\xFF\xFE\x80\xC0\xC1\xF5",
          "abc\xE2\x82",      // truncated sequence at the end
          "\xED\xA0\x80",     // UTF-16 surrogate in UTF-8
          "\xF4\x90\x80\x80", // above U+10FFFF
          "\xC0\xAF",         // overlong '/'
          "emoji \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD done",
          "<|im_end|><|x|><|endoftext|>",
          "I'm can't we'VE they'll 'S 'd''s",
          "12345678901234567890 1.5e-10 \xD9\xA3\xD9\xA4",
          "\xE4\xB8\xAD\xE6\x96\x87 \xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xCE\xB3\xCE\xB5\xCE\xB9\xCE\xAC",
          "\xE2\x80\xA8\xE3\x80\x80\xC2\xA0\xC2\x85 mixed spaces",
          "tab\tsep\x0Bvt\x0C ff"};
}

std::string random_bytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

std::string random_unicode(std::mt19937& rng, size_t n_chars) {
  static const uint32_t pool[] = {' ', ' ', '\n', '\t', '\r', 'a', 'Z', '7', '\'', 's', '.', 0xA0, 0x85, 0x3000,
                                  0xE9, 0x4E2D, 0x0663, 0x1F600, 0x1F3FD, 0x200D, 0x2028, 0xFEFF, 0x10FFFF, 0xE000};
  std::string s;
  for (size_t i = 0; i < n_chars; ++i) {
    uint32_t cp = rng() % 3 == 0 ? pool[rng() % (sizeof pool / sizeof pool[0])] : rng() % 0x110000;
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
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
  }
  return s;
}

void expect_round_trips(const Tokenizer& t, const std::string& b) {
  const std::vector<int32_t> ids = t.encode(b);
  ASSERT_EQ(t.decode(ids), b) << "input of " << b.size() << " bytes";
}

// ---- The SmolLM2 vocabulary: the cached GGUF itself (scripts/fetch_smollm2.sh), read by lorazip's
// own GGUF reader, or an export of it (scripts/export_gguf_vocab.py) named by LORAZIP_BPE_VOCAB_JSON.
std::string smollm_cache_path(const std::string& file) {
  const char* cache = std::getenv("LORAZIP_CACHE");
  const char* home = std::getenv("HOME");
  const std::string dir = cache && *cache ? cache : std::string(home ? home : "") + "/.cache/lorazip";
  return dir + "/" + file;
}

std::string smollm_vocab_path() {
  if (const char* p = std::getenv("LORAZIP_BPE_VOCAB_JSON"); p && *p) return p;
  return smollm_cache_path("SmolLM2-135M-Instruct.Q4_1.gguf");
}

BpeDefinition definition_from_export(const std::string& path) {
  const nlohmann::json j = nlohmann::json::parse(lorazip::read_file(path));
  BpeDefinition d;
  d.tokens = j.at("tokens").get<std::vector<std::string>>();
  d.types = j.at("types").get<std::vector<int32_t>>();
  d.merges = j.at("merges").get<std::vector<std::string>>();
  d.bos_id = j.at("bos").get<int32_t>();
  d.eos_id = j.at("eos").get<int32_t>();
  d.add_bos = j.at("add_bos").get<bool>();
  d.pre = j.at("pre").get<std::string>();
  return d;
}

const Tokenizer* smollm() {
  static const std::unique_ptr<Tokenizer> t = []() -> std::unique_ptr<Tokenizer> {
    const std::string path = smollm_vocab_path();
    if (!lorazip::file_exists(path)) return nullptr;
    if (lorazip::is_gguf_path(path)) return std::make_unique<Tokenizer>(lorazip::load_tokenizer(path));
    return std::make_unique<Tokenizer>(Tokenizer::from_bpe(definition_from_export(path), path));
  }();
  return t.get();
}

#define REQUIRE_SMOLLM()                                                                    \
  const Tokenizer* sm = smollm();                                                           \
  if (!sm)                                                                                  \
  GTEST_SKIP() << "SmolLM2 vocabulary not found at " << smollm_vocab_path()                 \
               << " (fetch it: bash scripts/fetch_smollm2.sh; or point LORAZIP_BPE_VOCAB_JSON " \
                  "at an export made by scripts/export_gguf_vocab.py)"

std::string temp_dir() {
  static const std::string dir = [] {
    fs::path p = fs::temp_directory_path() / ("lorazip_test_bpe_" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p.string();
  }();
  return dir;
}
class RemoveTempDir : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(temp_dir(), ec);
  }
};
const auto* const kRemoveTempDir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

}  // namespace

// ---- Merges ---------------------------------------------------------------------------------
TEST(BpeMerge, LowestRankMergesFirstWherever) {
  // "b c" has the lower rank, so it wins although "a b" is further left.
  BpeDefinition d = tiny({"b c", "a b"}, {"ab", "bc"});
  Tokenizer t = Tokenizer::from_bpe(d, "tiny");
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{'a', id_of(d, "bc")}));
  d = tiny({"a b", "b c"}, {"ab", "bc"});
  t = Tokenizer::from_bpe(d, "tiny");
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{id_of(d, "ab"), 'c'}));
}

TEST(BpeMerge, EqualRanksMergeLeftmostFirst) {
  const BpeDefinition d = tiny({"a a", "aa aa"}, {"aa", "aaaa"});
  const Tokenizer t = Tokenizer::from_bpe(d, "tiny");
  EXPECT_EQ(t.encode("aaa"), (std::vector<int32_t>{id_of(d, "aa"), 'a'}));
  EXPECT_EQ(t.encode("aaaa"), (std::vector<int32_t>{id_of(d, "aaaa")}));
  EXPECT_EQ(t.encode("aaaaa"), (std::vector<int32_t>{id_of(d, "aaaa"), 'a'}));
}

TEST(BpeMerge, MergedSymbolsMergeAgainInRankOrder) {
  const BpeDefinition d = tiny({"h e", "l l", "he ll", "hell o"}, {"he", "ll", "hell", "hello"});
  const Tokenizer t = Tokenizer::from_bpe(d, "tiny");
  EXPECT_EQ(t.encode("hello"), (std::vector<int32_t>{id_of(d, "hello")}));
  EXPECT_EQ(t.encode("hellx"), (std::vector<int32_t>{id_of(d, "hell"), 'x'}));
}

TEST(BpeMerge, MergeResultMissingFromVocabularyIsSpelledAsBytes) {
  const BpeDefinition d = tiny({"x y"}, {});
  const Tokenizer t = Tokenizer::from_bpe(d, "tiny");
  EXPECT_EQ(t.encode("xy"), (std::vector<int32_t>{'x', 'y'}));
}

TEST(BpeMerge, IgnoreMergesTakesAWholePieceThatIsAToken) {
  // No merge leads to "xyz", but it is a token: with ignore_merges the piece is taken whole.
  BpeDefinition d = tiny({"x y"}, {"xy", "xyz"});
  EXPECT_EQ(Tokenizer::from_bpe(d, "tiny").encode("xyz"), (std::vector<int32_t>{id_of(d, "xy"), 'z'}));
  d.ignore_merges = true;
  EXPECT_EQ(Tokenizer::from_bpe(d, "tiny").encode("xyz"), (std::vector<int32_t>{id_of(d, "xyz")}));
  d.ignore_merges.reset();
  d.pre = "llama-bpe";  // llama.cpp turns it on for llama-bpe
  EXPECT_EQ(Tokenizer::from_bpe(d, "tiny").encode("xyz"), (std::vector<int32_t>{id_of(d, "xyz")}));
}

// ---- Pre-tokenizers -------------------------------------------------------------------------
TEST(BpePretokenize, Gpt2Splits) {
  const BpePre g = BpePre::kGpt2;
  EXPECT_EQ(split(g, "Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split(g, "I'm don't they're we've I'll he'd it's"),
            (Pieces{"I", "'m", " don", "'t", " they", "'re", " we", "'ve", " I", "'ll", " he", "'d", " it", "'s"}));
  EXPECT_EQ(split(g, "'S"), (Pieces{"'", "S"}));  // case-sensitive contractions
  EXPECT_EQ(split(g, "abc123 456"), (Pieces{"abc", "123", " 456"}));
  EXPECT_EQ(split(g, "a  b"), (Pieces{"a", " ", " b"}));
  EXPECT_EQ(split(g, "a\n\nb"), (Pieces{"a", "\n", "\n", "b"}));
  EXPECT_EQ(split(g, "x   "), (Pieces{"x", "   "}));
  EXPECT_EQ(split(g, "   x"), (Pieces{"  ", " x"}));
  EXPECT_EQ(split(g, "a, b!? (c)"), (Pieces{"a", ",", " b", "!?", " (", "c", ")"}));
  EXPECT_EQ(split(g, "h\xC3\xA9llo w\xC3\xB6rld"), (Pieces{"h\xC3\xA9llo", " w\xC3\xB6rld"}));
  EXPECT_EQ(split(g, "\xE6\x97\xA5\xE6\x9C\xAC \xD0\xBC\xD0\xB8\xD1\x80"),
            (Pieces{"\xE6\x97\xA5\xE6\x9C\xAC", " \xD0\xBC\xD0\xB8\xD1\x80"}));
  EXPECT_EQ(split(g, "hi \xF0\x9F\x98\x80\xF0\x9F\x98\x80!"), (Pieces{"hi", " \xF0\x9F\x98\x80\xF0\x9F\x98\x80!"}));
  EXPECT_EQ(split(g, "\xD9\xA3\xD9\xA4x"), (Pieces{"\xD9\xA3\xD9\xA4", "x"}));  // Arabic-Indic digits are \p{N}
  EXPECT_EQ(split(g, "a\t\tb"), (Pieces{"a", "\t", "\t", "b"}));  // only ' ' joins a word
  EXPECT_EQ(split(g, "a\xC2\xA0\xC2\xA0" "b"), (Pieces{"a", "\xC2\xA0", "\xC2\xA0", "b"}));  // NBSP is \s
  EXPECT_EQ(split(g, ""), (Pieces{}));
}

TEST(BpePretokenize, SmolLMSplitsEveryDigitAlone) {
  const BpePre s = BpePre::kSmolLM;
  EXPECT_EQ(split(s, "Hello world! 123"), (Pieces{"Hello", " world", "!", " ", "1", "2", "3"}));
  EXPECT_EQ(split(s, "x1.5"), (Pieces{"x", "1", ".", "5"}));
  EXPECT_EQ(split(s, "abc 123"), (Pieces{"abc", " ", "1", "2", "3"}));
  EXPECT_EQ(split(s, "\xD9\xA3\xD9\xA4"), (Pieces{"\xD9\xA3", "\xD9\xA4"}));
  EXPECT_EQ(split(s, "I'm  ok"), (Pieces{"I", "'m", " ", " ok"}));
}

TEST(BpePretokenize, Llama3Splits) {
  const BpePre l = BpePre::kLlama3;
  EXPECT_EQ(split(l, "12345 1234567"), (Pieces{"123", "45", " ", "123", "456", "7"}));
  EXPECT_EQ(split(l, "Hello, world!\n\nBye"), (Pieces{"Hello", ",", " world", "!\n\n", "Bye"}));
  EXPECT_EQ(split(l, "I'M they'Re"), (Pieces{"I", "'M", " they", "'Re"}));  // case-insensitive
  EXPECT_EQ(split(l, "\t\tfoo"), (Pieces{"\t", "\tfoo"}));
  EXPECT_EQ(split(l, "(foo)"), (Pieces{"(foo", ")"}));  // one non-letter joins the letters after it
  EXPECT_EQ(split(l, "line1\r\nline2"), (Pieces{"line", "1", "\r\n", "line", "2"}));
  EXPECT_EQ(split(l, "a  \n  b"), (Pieces{"a", "  \n", " ", " b"}));
  EXPECT_EQ(split(l, "x   "), (Pieces{"x", "   "}));
  EXPECT_EQ(split(l, "  ...\n\nz"), (Pieces{" ", " ...\n\n", "z"}));
  EXPECT_EQ(split(l, "\xE4\xBD\xA0\xE5\xA5\xBD\xF0\x9F\x98\x80"), (Pieces{"\xE4\xBD\xA0\xE5\xA5\xBD", "\xF0\x9F\x98\x80"}));
}

TEST(BpePretokenize, InvalidBytesAreUnitsOfTheirOwn) {
  EXPECT_EQ(split(BpePre::kGpt2, "a\xFF" "b"), (Pieces{"a", "\xFF", "b"}));
  EXPECT_EQ(split(BpePre::kGpt2, "a \xFF\xFE!"), (Pieces{"a", " \xFF\xFE!"}));
  EXPECT_EQ(split(BpePre::kGpt2, "\xC3"), (Pieces{"\xC3"}));
  EXPECT_EQ(split(BpePre::kLlama3, "\xE2\x82" "abc"), (Pieces{"\xE2\x82", "abc"}));
}

TEST(BpePretokenize, PiecesConcatenateToTheInput) {
  std::mt19937 rng(7);
  for (BpePre pre : {BpePre::kGpt2, BpePre::kSmolLM, BpePre::kLlama3}) {
    for (int i = 0; i < 300; ++i) {
      const std::string s = i % 2 ? random_bytes(rng, rng() % 200) : random_unicode(rng, rng() % 100);
      std::string joined;
      for (const std::string& p : split(pre, s)) {
        EXPECT_FALSE(p.empty());
        joined += p;
      }
      ASSERT_EQ(joined, s) << lorazip::bpe_pre_name(pre);
    }
  }
}

// ---- Lossless ---------------------------------------------------------------------------------
TEST(BpeLossless, EdgeCasesRoundTripOnEveryPreTokenizer) {
  for (const char* pre : {"gpt2", "smollm", "llama-bpe"}) {
    const Tokenizer t = Tokenizer::from_bpe(tiny({"a b", "Ġ t", "i n", "Ġt he"}, {"ab", " t", "in", " the"}, pre), pre);
    for (const std::string& s : edge_cases()) expect_round_trips(t, s);
  }
}

TEST(BpeLossless, RandomBytesAndUnicodeRoundTrip) {
  const Tokenizer t = Tokenizer::from_bpe(tiny({"a b", "ab c"}, {"ab", "abc"}), "tiny");
  std::mt19937 rng(11);
  for (int i = 0; i < 200; ++i) {
    expect_round_trips(t, random_bytes(rng, rng() % 500));
    expect_round_trips(t, random_unicode(rng, rng() % 200));
  }
}

TEST(BpeLossless, EmptyStringIsNoTokens) {
  const Tokenizer t = Tokenizer::from_bpe(tiny({}, {}), "tiny");
  EXPECT_TRUE(t.encode("").empty());
  EXPECT_EQ(t.decode(std::vector<int32_t>{}), "");
}

TEST(BpeLossless, ControlTokensAreNeverProducedFromText) {
  const BpeDefinition d = tiny({"< |", "<| x", "<|x |", "<|x| >"}, {"<|", "<|x", "<|x|"});
  const Tokenizer t = Tokenizer::from_bpe(d, "tiny");
  const int control = static_cast<int>(d.tokens.size() - 1);
  for (const std::string& s : {std::string("<|x|>"), std::string("a<|x|>b<|x|>")})
    for (int32_t id : t.encode(s)) EXPECT_NE(id, control) << s;
  EXPECT_EQ(t.piece_bytes(control), "");  // decodes to nothing
}

TEST(BpeLossless, UserDefinedTokensAreSplitOutWhereTheyOccur) {
  BpeDefinition d = tiny({}, {});
  d.tokens.push_back("<user>");
  d.types.push_back(lorazip::kBpeUserDefined);
  d.tokens.push_back("<user>x");  // longer one is matched first
  d.types.push_back(lorazip::kBpeUserDefined);
  const int32_t u = static_cast<int32_t>(d.tokens.size() - 2), ux = u + 1;
  const Tokenizer t = Tokenizer::from_bpe(d, "tiny");
  EXPECT_EQ(t.encode("a<user>b<user>x"), (std::vector<int32_t>{'a', u, 'b', ux}));
  expect_round_trips(t, "<user<user>><user>x<user>");
}

// ---- Loading and refusals ---------------------------------------------------------------------
TEST(BpeLoad, BadDefinitionsAreRefused) {
  auto refuses = [](BpeDefinition d, const char* what) {
    try {
      Tokenizer::from_bpe(std::move(d), "def");
      ADD_FAILURE() << "accepted: " << what;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  BpeDefinition d = tiny({}, {});
  d.types[5] = 9;
  refuses(d, "type 9");
  d = tiny({}, {});
  d.types.pop_back();
  refuses(d, "token types");
  d = tiny({}, {});
  d.bos_id = 100000;
  refuses(d, "bos token id");
  d = tiny({}, {});
  d.pre = "qwen2";
  refuses(d, "'qwen2' is not supported");
  d = tiny({}, {});
  d.merges.push_back("nospace");
  refuses(d, "merge 0");
  d = tiny({}, {});
  d.tokens[300 - 44] = std::string("\xFF");
  refuses(d, "not valid UTF-8");
}

TEST(BpeLoad, TokenizerJsonRoundTripKeepsTokenizerAndFingerprint) {
  BpeDefinition d = tiny({"a b", "ab c"}, {"ab", "abc"}, "smollm");
  d.tokens.push_back("<user>");
  d.types.push_back(lorazip::kBpeUserDefined);
  d.tokens.push_back(symbols("ab"));  // a second id with the same text
  d.types.push_back(lorazip::kBpeNormal);
  d.tokens.push_back("<unused0>");
  d.types.push_back(lorazip::kBpeUnused);
  d.bos_id = 3;
  d.add_bos = true;
  const Tokenizer a = Tokenizer::from_bpe(d, "def");
  ASSERT_TRUE(a.is_bpe());
  EXPECT_STREQ(Tokenizer::model_file_name(a.model_bytes()), "tokenizer.json");
  const std::string path = temp_dir() + "/tokenizer.json";
  lorazip::write_file_atomic(path, a.model_bytes());
  const Tokenizer b = Tokenizer::load(path);
  EXPECT_EQ(b.sha256(), a.sha256());
  EXPECT_EQ(b.vocab_size(), a.vocab_size());
  EXPECT_EQ(b.bos_id(), 3);
  EXPECT_EQ(b.eos_id(), a.eos_id());
  const BpeDefinition back = lorazip::parse_tokenizer_json(a.model_bytes(), "json");
  EXPECT_EQ(back.tokens, d.tokens);
  EXPECT_EQ(back.types, d.types);
  EXPECT_EQ(back.merges, d.merges);
  std::mt19937 rng(3);
  for (int i = 0; i < 50; ++i) {
    const std::string s = random_unicode(rng, 60) + "abc<user>12";
    EXPECT_EQ(b.encode(s), a.encode(s));
  }
}

// What transformers reads beside tokenizer.json: PreTrainedTokenizerFast, the special tokens by
// their text, and BOS from the post-processor (lorazip codes every stream from BOS).
TEST(BpeLoad, HfTokenizerFilesAddBosAsLorazipCodes) {
  BpeDefinition d = tiny({"a b"}, {"ab"}, "smollm");
  d.tokens.push_back("<|im_start|>");
  d.types.push_back(lorazip::kBpeControl);
  d.tokens.push_back("<|im_end|>");
  d.types.push_back(lorazip::kBpeControl);
  d.bos_id = static_cast<int32_t>(d.tokens.size()) - 2;
  d.eos_id = d.bos_id + 1;
  const Tokenizer t = Tokenizer::from_bpe(d, "def");
  EXPECT_EQ(t.token_text(d.bos_id), "<|im_start|>");
  EXPECT_EQ(t.token_text(0), d.tokens[0]);
  EXPECT_EQ(t.unk_id(), -1);
  EXPECT_THROW(t.token_text(t.vocab_size()), std::invalid_argument);

  const auto files = lorazip::hf_tokenizer_files(t, 2048);
  ASSERT_EQ(files.size(), 2u);
  const nlohmann::json c = nlohmann::json::parse(files.at("tokenizer_config.json"));
  EXPECT_EQ(c.at("tokenizer_class"), "PreTrainedTokenizerFast");
  EXPECT_EQ(c.at("bos_token"), "<|im_start|>");
  EXPECT_EQ(c.at("eos_token"), "<|im_end|>");
  EXPECT_TRUE(c.at("unk_token").is_null());
  EXPECT_EQ(c.at("add_bos_token"), true);
  EXPECT_EQ(c.at("add_eos_token"), false);
  EXPECT_EQ(c.at("model_max_length"), 2048);
  const nlohmann::json m = nlohmann::json::parse(files.at("special_tokens_map.json"));
  EXPECT_EQ(m, (nlohmann::json{{"bos_token", "<|im_start|>"}, {"eos_token", "<|im_end|>"}}));

  const nlohmann::json j = nlohmann::json::parse(t.model_bytes());
  const nlohmann::json& post = j.at("post_processor");
  EXPECT_EQ(post.at("type"), "TemplateProcessing");
  EXPECT_EQ(post.at("single").at(0).at("SpecialToken").at("id"), "<|im_start|>");
  EXPECT_EQ(post.at("single").at(1).at("Sequence").at("id"), "A");
  EXPECT_EQ(post.at("special_tokens").at("<|im_start|>").at("ids"), nlohmann::json::array({d.bos_id}));
  // Loadable by Hugging Face's tokenizers before 0.20 too (and by any version: it refuses unknown
  // top-level keys): merges as "a b" strings, lorazip's own key inside "model".
  EXPECT_FALSE(j.contains("lorazip"));
  EXPECT_EQ(j.at("model").at("lorazip").at("bos_id"), d.bos_id);
  for (const auto& merge : j.at("model").at("merges")) EXPECT_TRUE(merge.is_string()) << merge;
  // A file with the key at the top level (as lorazip wrote before) still loads the same.
  nlohmann::json old = j;
  old["lorazip"] = old["model"]["lorazip"];
  old["model"].erase("lorazip");
  const Tokenizer from_old = Tokenizer::from_bytes(old.dump(), "old");
  EXPECT_EQ(from_old.bos_id(), d.bos_id);
  EXPECT_EQ(from_old.sha256(), t.sha256());
  // Without a BOS there is nothing to add.
  d.bos_id = -1;
  const Tokenizer none = Tokenizer::from_bpe(d, "def");
  EXPECT_TRUE(nlohmann::json::parse(none.model_bytes()).at("post_processor").is_null());
  EXPECT_EQ(nlohmann::json::parse(lorazip::hf_tokenizer_files(none, 8).at("tokenizer_config.json")).at("add_bos_token"), false);
}

TEST(BpeLoad, FingerprintChangesWithTheDefinition) {
  const std::string base = Tokenizer::from_bpe(tiny({"a b", "b c"}, {"ab", "bc"}), "x").sha256();
  EXPECT_EQ(Tokenizer::from_bpe(tiny({"a b", "b c"}, {"ab", "bc"}), "y").sha256(), base);
  EXPECT_NE(Tokenizer::from_bpe(tiny({"b c", "a b"}, {"ab", "bc"}), "x").sha256(), base);  // merge order
  EXPECT_NE(Tokenizer::from_bpe(tiny({"a b", "b c"}, {"ab", "bc"}, "smollm"), "x").sha256(), base);
  BpeDefinition d = tiny({"a b", "b c"}, {"ab", "bc"});
  d.eos_id = 5;
  EXPECT_NE(Tokenizer::from_bpe(d, "x").sha256(), base);
  // an alias of the same pre-tokenizer is the same tokenizer
  EXPECT_EQ(Tokenizer::from_bpe(tiny({"a b", "b c"}, {"ab", "bc"}, "gpt-2"), "x").sha256(), base);
}

namespace {
// A small valid tokenizer.json, edited by each refusal case.
nlohmann::json tiny_json() {
  return nlohmann::json::parse(Tokenizer::from_bpe(tiny({"a b"}, {"ab"}), "t").model_bytes());
}
void expect_json_refused(const nlohmann::json& j, const std::string& what) {
  try {
    lorazip::parse_tokenizer_json(j.dump(), "tok.json");
    ADD_FAILURE() << "accepted; expected: " << what;
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tok.json"), std::string::npos) << m;
    EXPECT_NE(m.find(what), std::string::npos) << m;
  }
}
}  // namespace

TEST(BpeLoad, TokenizerJsonRefusesWhatItCannotReproduce) {
  ASSERT_NO_THROW(lorazip::parse_tokenizer_json(tiny_json().dump(), "tok.json"));
  nlohmann::json j = tiny_json();
  j["normalizer"] = {{"type", "NFC"}};
  expect_json_refused(j, "NFC");
  j = tiny_json();
  j["model"]["byte_fallback"] = true;
  expect_json_refused(j, "byte_fallback");
  j = tiny_json();
  j["model"]["type"] = "WordPiece";
  expect_json_refused(j, "WordPiece");
  j = tiny_json();
  j["pre_tokenizer"]["add_prefix_space"] = true;
  expect_json_refused(j, "add_prefix_space");
  j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_json_refused(j, "Whitespace");
  j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"}, {"pattern", {{"Regex", "\\p{L}+"}}}, {"behavior", "Isolated"}},
                          {{"type", "ByteLevel"}, {"use_regex", false}}}}};
  expect_json_refused(j, "Split regex");
  j = tiny_json();
  j["model"]["vocab"]["zz"] = 100000;
  expect_json_refused(j, "100000");
  j = tiny_json();
  j["model"]["vocab"].erase(symbol_of('q'));
  expect_json_refused(j, "token id 113 is missing");
  j = tiny_json();
  j["model"]["merges"].push_back(7);
  expect_json_refused(j, "merge 1");
  j = tiny_json();
  j["model"]["continuing_subword_prefix"] = "##";
  expect_json_refused(j, "continuing_subword_prefix");
  try {
    lorazip::parse_tokenizer_json("{\"model\": [1, 2", "tok.json");
    ADD_FAILURE() << "accepted truncated JSON";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
}

TEST(BpeLoad, HuggingFaceLayoutsAreRecognised) {
  // Merges as "a b" strings (older files) and the Llama 3 Split + ByteLevel sequence.
  nlohmann::json j = tiny_json();
  j["model"]["merges"] = {symbols("a") + " " + symbols("b")};
  j["model"]["ignore_merges"] = true;
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern",
          {{"Regex",
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
            "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
  j.erase("lorazip");
  j["model"].erase("lorazip");
  const BpeDefinition d = lorazip::parse_tokenizer_json(j.dump(), "tok.json");
  EXPECT_EQ(d.pre, "llama-bpe");
  EXPECT_EQ(d.merges, (std::vector<std::string>{symbols("a") + " " + symbols("b")}));
  EXPECT_EQ(d.bos_id, -1);
  EXPECT_TRUE(d.ignore_merges.value_or(false));
  const Tokenizer t = Tokenizer::from_bytes(j.dump(), "tok.json");
  EXPECT_EQ(t.decode(t.encode("12345 ab")), "12345 ab");
}

// ---- The real SmolLM2 vocabulary ---------------------------------------------------------------
TEST(BpeSmolLM2, MatchesLlamaCppTestVectors) {
  REQUIRE_SMOLLM();
  EXPECT_EQ(sm->vocab_size(), 49152);
  EXPECT_EQ(sm->encode("The capital of France is"), (std::vector<int32_t>{504, 3575, 282, 4649, 314}));
  EXPECT_EQ(sm->encode("Hello world! 123"), (std::vector<int32_t>{19556, 905, 17, 216, 33, 34, 35}));
  EXPECT_EQ(sm->encode("\n"), (std::vector<int32_t>{198}));
}

TEST(BpeSmolLM2, ByteTableAndSpecialIds) {
  REQUIRE_SMOLLM();
  EXPECT_EQ(sm->bos_id(), 1);
  EXPECT_EQ(sm->eos_id(), 2);
  EXPECT_EQ(sm->piece_bytes(sm->byte_id('\n')), "\n");
  // SmolLM2's vocabulary lacks 21 byte symbols; encode escapes those bytes (see BpeEncoder).
  const std::vector<int> missing = {0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2, 0xF5,
                                    0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF};
  for (int b = 0; b < 256; ++b) {
    const bool absent = std::find(missing.begin(), missing.end(), b) != missing.end();
    if (absent) {
      EXPECT_EQ(sm->byte_id(static_cast<uint8_t>(b)), -1) << b;
    } else {
      EXPECT_EQ(sm->piece_bytes(sm->byte_id(static_cast<uint8_t>(b))), std::string(1, static_cast<char>(b))) << b;
    }
  }
  EXPECT_EQ(sm->encode("\x04"), (std::vector<int32_t>{16, sm->byte_id(0x00)}));  // escape: <empty_output>
  EXPECT_EQ(sm->piece_bytes(905), " world");
  EXPECT_EQ(sm->piece_bytes(2), "");  // <|im_end|> is a control token
}

TEST(BpeSmolLM2, EdgeCasesAndRandomInputRoundTrip) {
  REQUIRE_SMOLLM();
  for (const std::string& s : edge_cases()) expect_round_trips(*sm, s);
  std::mt19937 rng(5);
  for (int i = 0; i < 100; ++i) {
    expect_round_trips(*sm, random_bytes(rng, rng() % 400));
    expect_round_trips(*sm, random_unicode(rng, rng() % 200));
  }
}

TEST(BpeSmolLM2, ControlTokenTextIsOrdinaryBytes) {
  REQUIRE_SMOLLM();
  const std::string s = "<|im_start|>user\nhi<|im_end|>\n<|endoftext|><repo_name>";
  for (int32_t id : sm->encode(s)) EXPECT_GE(id, 17) << "control token produced from text";
  expect_round_trips(*sm, s);
}

TEST(BpeSmolLM2, TokenizerJsonGivesTheSameTokenizer) {
  REQUIRE_SMOLLM();
  const Tokenizer j = Tokenizer::from_bytes(sm->model_bytes(), "smollm2 tokenizer.json");
  EXPECT_EQ(j.sha256(), sm->sha256());
  EXPECT_EQ(j.bos_id(), 1);
  const std::string s = "Hello world! 123\n\tdef f(x):\n\t\treturn x**2  # \xF0\x9F\x98\x80";
  EXPECT_EQ(j.encode(s), sm->encode(s));
}

TEST(BpeSmolLM2, LlmTextDocumentsRoundTrip) {
  REQUIRE_SMOLLM();
  const fs::path root = fs::path(LORAZIP_SHARED_DIR) / "data" / "llm-text";
  if (!fs::is_directory(root)) GTEST_SKIP() << "../shared/data/llm-text not found at " << root;
  size_t docs = 0, bytes = 0, tokens = 0;
  for (const auto& dom : fs::directory_iterator(root)) {
    if (!dom.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(dom.path())) {
      if (f.path().extension() != ".jsonl") continue;
      std::ifstream in(f.path());
      std::string line;
      for (int k = 0; k < 20 && std::getline(in, line); ++k) {
        const nlohmann::json rec = nlohmann::json::parse(line, nullptr, false);
        if (!rec.is_object() || !rec.contains("text") || !rec["text"].is_string()) continue;
        const std::string text = rec["text"].get<std::string>();
        const std::vector<int32_t> ids = sm->encode(text);
        ASSERT_EQ(sm->decode(ids), text) << f.path();
        ++docs;
        bytes += text.size();
        tokens += ids.size();
      }
    }
  }
  ASSERT_GT(docs, 0u);
  // Ordinary English/code text: a 49k vocabulary gives well over 2 bytes per token.
  EXPECT_GT(static_cast<double>(bytes) / static_cast<double>(tokens), 2.5);
}

// ---- Vocabularies without every byte ------------------------------------------------------------
TEST(BpeLossless, MissingBytesAreEscapedAndDecodedBack) {
  BpeDefinition d = tiny({}, {});
  // Drop the tokens for 0x04 and 0xFF (make them unusable as normal tokens).
  d.types[0x04] = lorazip::kBpeUnused;
  d.types[0xFF] = lorazip::kBpeUnused;
  const Tokenizer t = Tokenizer::from_bpe(d, "tiny");
  EXPECT_EQ(t.byte_id(0x04), -1);
  EXPECT_EQ(t.byte_id(0xFF), -1);
  // Escape: the highest-id control/unknown/unused token that is not bos/eos (the control token
  // <|x|> is eos here, so 0xFF's unused slot), then the k-th present byte: 0x00 for 0x04, 0x01 for 0xFF.
  EXPECT_EQ(t.encode("\x04"), (std::vector<int32_t>{0xFF, 0x00}));
  EXPECT_EQ(t.encode("a\xFF"), (std::vector<int32_t>{'a', 0xFF, 0x01}));
  expect_round_trips(t, std::string("\x04\xFF\x00\x01 \x04x\xFF", 9));
  std::mt19937 rng(9);
  for (int i = 0; i < 100; ++i) expect_round_trips(t, random_bytes(rng, rng() % 300));
}

TEST(BpeLoad, MissingBytesWithoutAnEscapeTokenAreRefused) {
  BpeDefinition d = tiny({}, {});
  d.types.back() = lorazip::kBpeNormal;  // no control token left
  d.eos_id = -1;
  d.tokens[0x0A] = "zz";  // 0x0A's symbol is gone
  try {
    Tokenizer::from_bpe(d, "vocab.gguf");
    FAIL() << "expected a refusal";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.gguf"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("byte 0x0A"), std::string::npos) << e.what();
  }
}

TEST(BpeLoad, FuzzSeedsAreLoadableTokenizers) {
  // The fuzz target starts from these; each must load and round-trip so mutations explore
  // the tokenizer behind the parser, not only the parser's refusals.
  const fs::path dir = fs::path(LORAZIP_SOURCE_DIR) / "model" / "fuzz" / "corpus";
  size_t n = 0;
  for (const auto& f : fs::directory_iterator(dir)) {
    const Tokenizer t = Tokenizer::load(f.path().string());
    for (const std::string& s : edge_cases()) expect_round_trips(t, s);
    ++n;
  }
  EXPECT_GE(n, 4u);
}
