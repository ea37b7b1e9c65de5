// The LM codec end to end, on a tiny random Llama and a tokenizer trained here: every byte string
// round-trips (contract 1); the file does not depend on the thread count and decodes under any
// thread count (contract 2); a file is refused under another base, adapter or tokenizer, naming
// what it needs, and a corrupted, truncated or forged file is refused, never decoded to wrong
// bytes (contract 3); the coded size tracks the model's ideal code length. The last tests run the
// real TinyStories model from ../shared.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "adapters/adapter.h"
#include "runtime/archive_io.h"
#include "codec/container.h"
#include "codec/lm_codec.h"
#include "runtime/model_setup.h"
#include "runtime/routing.h"
#include "train/torch_base.h"
#include "common/fs.h"
#include "model/checkpoint.h"
#include "model/llama_tensors.h"
#include "model/tokenizer.h"

using namespace lorazip;
namespace engine = lorazip::engine;
namespace fs = std::filesystem;

namespace {

const std::string kTinyStories = std::string(LORAZIP_SHARED_DIR) + "/models/tinystories-260k-hf";

std::string temp_root() {
  static const std::string d =
      (fs::temp_directory_path() / ("lorazip_test_lm_codec_" + std::to_string(::getpid()))).string();
  return d;
}

class RemoveTempRoot : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(temp_root(), ec);
  }
};
const auto* const kRemoveTempRoot = ::testing::AddGlobalTestEnvironment(new RemoveTempRoot);

// Assistant-style text (paragraphs, lists, code, numbers); each seed gives different text.
std::string make_text(uint32_t seed, size_t n_bytes) {
  static const std::vector<std::string> words = {
      "the", "model", "answer", "a", "of", "to", "and", "is", "in", "that", "this", "for", "it", "with",
      "we", "can", "be", "each", "value", "function", "returns", "example", "first", "step", "result",
      "file", "number", "list", "you", "will", "which", "when", "should", "code", "output", "input",
      "error", "memory", "system", "question", "simple", "because", "however", "therefore", "between",
      "compression", "probability", "token", "story", "little", "water", "light", "small", "large"};
  static const std::vector<std::string> code = {
      "def solve(n):", "    return n * (n + 1) // 2", "for i in range(10):", "    print(i)",
      "if x is None:", "        raise ValueError(\"x\")", "int main() {", "  return 0;", "}"};
  std::mt19937 rng(seed);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  std::string out;
  while (out.size() < n_bytes) {
    const unsigned kind = rng() % 10;
    if (kind < 6) {
      for (int s = 0, ns = 2 + static_cast<int>(rng() % 4); s < ns; ++s) {
        std::string sent = pick(words);
        sent[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(sent[0])));
        for (int w = 0, nw = 4 + static_cast<int>(rng() % 10); w < nw; ++w) {
          sent += (rng() % 9 == 0) ? ", " : " ";
          sent += (rng() % 13 == 0) ? std::to_string(rng() % 1000) : pick(words);
        }
        out += sent + (rng() % 5 == 0 ? "? " : ". ");
      }
      out.back() = '\n';
      out += "\n";
    } else if (kind < 8) {
      for (int i = 0, n = 2 + static_cast<int>(rng() % 3); i < n; ++i)
        out += "- **" + pick(words) + "**: " + pick(words) + " " + pick(words) + "\n";
      out += "\n";
    } else {
      out += "```python\n";
      for (int i = 0, n = 2 + static_cast<int>(rng() % 4); i < n; ++i) out += pick(code) + "\n";
      out += "```\n\n";
    }
  }
  out.resize(n_bytes);
  return out;
}

std::string random_bytes(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

// A tokenizer trained on generated text; the vocabulary size is what SentencePiece gives.
std::unique_ptr<Tokenizer> train_tokenizer(const std::string& path, uint32_t seed, int vocab) {
  std::vector<std::string> docs;
  for (uint32_t i = 0; i < 24; ++i) docs.push_back(make_text(seed + i, 3000));
  TokenizerTrainOptions opt;
  opt.vocab_size = vocab;
  opt.threads = 1;
  Tokenizer::train(docs, opt, path);
  return std::make_unique<Tokenizer>(Tokenizer::load(path));
}

// Tiny Llama (GQA, context 64) with weights large enough that its distributions are far from
// uniform, as a trained model's are.
LlamaForCausalLM tiny_model(const Tokenizer& tok, uint64_t seed) {
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
  m->init_weights(seed, 0.25);
  m->eval();
  return m;
}

// Base model directory (HF layout with tokenizer.model), loaded the way the program loads it.
struct World {
  std::unique_ptr<Tokenizer> tok;
  std::string base_dir;
  LoadedModel base;
  std::unique_ptr<LmCodec> codec;  // base alone
};

World& world() {
  static std::unique_ptr<World> w;
  if (!w) {
    w = std::make_unique<World>();
    fs::create_directories(temp_root());
    w->tok = train_tokenizer(temp_root() + "/tok.model", 1, 400);
    LlamaForCausalLM m = tiny_model(*w->tok, 11);
    w->base_dir = temp_root() + "/base";
    save_hf_model(m, w->base_dir, w->tok->model_bytes());
    w->base = load_model(w->base_dir);
    // As CodecSet builds it: version 2, with the version-1 model and identity for older files.
    LoadedModel* b = &w->base;
    w->codec = std::make_unique<LmCodec>(w->base.engine_model(), *w->base.tokenizer, identity_for(w->base, nullptr),
                                         [b] { return b->version1_model(nullptr); },
                                         [b] { return version1_identity(*b, nullptr); });
  }
  return *w;
}

// A LoRA adapter with random (non-zero) B for the world's base, saved as a PEFT directory.
// libtorch's model of the world's base, loaded once (adapters are made on it).
LlamaForCausalLM& world_torch_model() {
  static LlamaForCausalLM m = load_torch_model(world().base);
  return m;
}

std::string make_adapter(const std::string& name, uint64_t seed) {
  World& w = world();
  const std::string dir = temp_root() + "/adapters/" + name;
  if (dir_exists(dir)) return dir;
  LoraConfig cfg;
  cfg.r = 4;
  cfg.seed = seed;
  LoraAdapter a(world_torch_model(), cfg);
  {
    torch::NoGradGuard ng;
    torch::manual_seed(seed);
    for (auto& [k, t] : a.state_dict())
      if (k.find("lora_B") != std::string::npos) t.copy_(torch::randn(t.sizes()) * 0.2);
  }
  AdapterInfo info;
  info.domain = name;
  info.base_fingerprint = w.base.fingerprint;
  info.tokenizer_sha256 = w.tok->sha256();
  a.save(dir, info);
  return dir;
}

struct AdaptedCodec {
  AdapterEntry entry;
  std::unique_ptr<LmCodec> codec;
};

// The codec for base + adapter, built the way CodecSet builds it (the adapter beside the weights).
AdaptedCodec adapted_codec_on(LoadedModel& base, const std::string& adapter_dir) {
  AdaptedCodec ac;
  std::shared_ptr<const LoadedAdapter> a = load_adapter(base, adapter_dir);
  ac.entry = a->entry;
  LoadedModel* b = &base;
  ac.codec = std::make_unique<LmCodec>(std::make_shared<const engine::Model>(base.weights, a->engine), *base.tokenizer,
                                       identity_for(base, &ac.entry), [b, a] { return b->version1_model(a.get()); });
  return ac;
}
AdaptedCodec adapted_codec(const std::string& adapter_dir) { return adapted_codec_on(world().base, adapter_dir); }

// context -1: the default W (a quarter of the chunk); 0: independent chunks.
LmCodecOptions opts(int64_t chunk, int64_t group, int threads, int64_t context = -1) {
  LmCodecOptions o;
  o.chunk_tokens = chunk;
  o.context_tokens = context;
  o.group_streams = group;
  o.threads = threads;
  return o;
}

// The std::runtime_error message of f(); a test failure if f returns or throws anything else.
std::string refusal_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected std::runtime_error, got another exception: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a refusal, but the call succeeded";
  return "";
}

// Decompressing `file` must either throw std::runtime_error or (only where `may_succeed`) give
// exactly `original`. Returns true when it was refused.
bool refused_or_exact(const LmCodec& codec, const std::string& file, const std::string& original, bool may_succeed,
                      const std::string& what) {
  std::string out;
  try {
    out = codec.decompress(file, "damaged.lrz", 1);
  } catch (const std::runtime_error&) {
    return true;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": wrong exception type: " << e.what();
    return true;
  }
  if (out != original) ADD_FAILURE() << what << ": a damaged file decoded to WRONG bytes (" << out.size() << " bytes)";
  else if (!may_succeed) ADD_FAILURE() << what << ": a damaged file was accepted";
  return false;
}

void expect_round_trip(const LmCodec& codec, const std::string& input, const LmCodecOptions& o, const std::string& what) {
  CodeStats cs, ds;
  const std::string file = codec.compress(input, o, &cs);
  const std::string back = codec.decompress(file, what, o.threads, &ds);
  EXPECT_EQ(back.size(), input.size()) << what;
  EXPECT_TRUE(back == input) << what << ": decompressed bytes differ from the input";
  EXPECT_EQ(cs.bytes, static_cast<int64_t>(input.size())) << what;
  EXPECT_EQ(cs.file_bytes, static_cast<int64_t>(file.size())) << what;
  EXPECT_EQ(ds.tokens, cs.tokens) << what;
  EXPECT_EQ(ds.payload_bytes, cs.payload_bytes) << what;
}

}  // namespace

// ---- contract 1: byte for byte ------------------------------------------------------------------

TEST(LmCodecRoundTrip, EdgeCaseInputs) {
  World& w = world();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"one byte 'a'", "a"},
      {"one NUL byte", std::string(1, '\0')},
      {"one byte 0xFF", "\xFF"},
      {"random binary 3000", random_bytes(5, 3000)},
      {"invalid UTF-8", "ok \xC3\x28 \xA0\xA1 \xE2\x82 \xF0\x28\x8C\x28 \xED\xA0\x80 \xC0\xAF end"},
      {"NUL bytes", std::string("a\0b\0\0c", 6) + std::string(40, '\0') + "tail"},
      {"CRLF", "line one\r\nline two\r\n\r\n- item\r\n\r"},
      {"whitespace runs", std::string(300, ' ') + "x" + std::string(200, '\t') + std::string(150, '\n') + " \n \t "},
      {"leading space", " the model"},
      {"emoji and CJK", "Done! \xF0\x9F\x8E\x89\xF0\x9F\x9A\x80 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB ok"},
      {"text", make_text(100, 2500)},
  };
  for (const auto& [name, input] : cases) expect_round_trip(*w.codec, input, opts(32, 3, 2), name);
}

TEST(LmCodecRoundTrip, EmptyInputHasNoChunks) {
  World& w = world();
  CodeStats s;
  const std::string file = w.codec->compress("", opts(0, 32, 1), &s);
  EXPECT_EQ(s.tokens, 0);
  EXPECT_EQ(s.chunks, 0);
  EXPECT_EQ(s.payload_bytes, 0);
  EXPECT_EQ(Container::parse(file, "empty").chunks.size(), 0u);
  EXPECT_EQ(w.codec->decompress(file, "empty", 1), "");
}

TEST(LmCodecRoundTrip, TokenCountAnExactMultipleOfTheChunk) {
  // Both modes: independent chunks of L tokens (W = 0), and L then L - W per chunk (W = 8).
  World& w = world();
  const int64_t chunk = 32;
  const std::string text = make_text(200, 4000);
  for (int64_t W : {0, 8}) {
    int found = 0;
    for (size_t n = 100; n < text.size() && found < 3; ++n) {
      const std::string prefix = text.substr(0, n);
      const int64_t t = static_cast<int64_t>(w.codec->tokenize(prefix).size());
      if (t < chunk || (t - chunk) % (chunk - W) != 0) continue;
      ++found;
      CodeStats s;
      const std::string file = w.codec->compress(prefix, opts(chunk, 3, 2, W), &s);
      EXPECT_EQ(chunk + (s.chunks - 1) * (chunk - W), s.tokens) << "W " << W;
      const Container c = Container::parse(file, "multiple");
      ASSERT_FALSE(c.chunks.empty());
      EXPECT_EQ(c.chunks.back().n_tokens, c.chunk_limit(c.chunks.size() - 1)) << "the last chunk is full, W " << W;
      EXPECT_EQ(w.codec->decompress(file, "multiple", 1), prefix) << n << " bytes, " << t << " tokens, W " << W;
      n += 200;  // next case: a different number of chunks
    }
    EXPECT_EQ(found, 3) << "no prefix with a token count fitting chunks of " << chunk << " with W " << W;
  }
}

TEST(LmCodecRoundTrip, GroupSizes) {
  World& w = world();
  const std::string text = make_text(300, 3000) + random_bytes(6, 200);
  for (int64_t group : {1, 3, 32, 1024}) {
    CodeStats s;
    const std::string file = w.codec->compress(text, opts(32, group, 2), &s);
    EXPECT_EQ(Container::parse(file, "g").group_streams, group);
    EXPECT_GT(s.chunks, 3) << "several chunks";
    EXPECT_EQ(w.codec->decompress(file, "group " + std::to_string(group), 1), text) << "group_streams " << group;
  }
}

TEST(LmCodecRoundTrip, DefaultChunkIsTheContextLessBos) {
  World& w = world();
  const std::string text = make_text(400, 2000);
  const std::string file = w.codec->compress(text, opts(0, 32, 0));
  EXPECT_EQ(Container::parse(file, "d").chunk_tokens, 63);
  EXPECT_EQ(w.codec->decompress(file, "d", 0), text);
}

TEST(LmCodecRoundTrip, TwoHundredKilobytesManyChunksAndGroups) {
  World& w = world();
  const std::string text = make_text(500, 200 * 1024);
  CodeStats cs, ds;
  const std::string file = w.codec->compress(text, opts(32, 32, 2), &cs);
  EXPECT_GT(cs.chunks, 4 * 32) << "at least four groups of 32 streams";
  const std::string back = w.codec->decompress(file, "200k", 2, &ds);
  EXPECT_TRUE(back == text);
  std::printf("200 KB: %lld tokens, %lld chunks, %.2f bits/token, compress %.2f s, decompress %.2f s\n",
              (long long)cs.tokens, (long long)cs.chunks, cs.coded_bits() / cs.tokens, cs.seconds, ds.seconds);
}

TEST(LmCodecRoundTrip, OptionsOutOfRangeAreCallerMistakes) {
  World& w = world();
  EXPECT_THROW(w.codec->compress("abc", opts(64, 32, 1)), std::invalid_argument);  // context 64 holds BOS + 63
  EXPECT_THROW(w.codec->compress("abc", opts(-1, 32, 1)), std::invalid_argument);
  EXPECT_THROW(w.codec->compress("abc", opts(32, 0, 1)), std::invalid_argument);
  EXPECT_THROW(w.codec->compress("abc", opts(32, 1025, 1)), std::invalid_argument);
  EXPECT_THROW(w.codec->compress("abc", opts(32, 4, 1, 32)), std::invalid_argument);  // W must be below the chunk
  EXPECT_THROW(w.codec->compress("abc", opts(0, 4, 1, 63)), std::invalid_argument);
}

// ---- context across chunks (W) and native tokenization -----------------------------------------

std::vector<std::pair<std::string, std::string>> edge_cases(const std::string& text) {
  return {
      {"empty", ""},
      {"one space", " "},
      {"leading space", " the model"},
      {"leading spaces", "   three spaces first"},
      {"leading newline", "\nafter a newline"},
      {"leading tab", "\tafter a tab"},
      {"U+2581 first", "\xE2\x96\x81word and more"},
      {"U+2581 alone", "\xE2\x96\x81"},
      {"space then U+2581", " \xE2\x96\x81 x \xE2\x96\x81\xE2\x96\x81"},
      {"invalid UTF-8 first", "\xFF\xC3\x28 then text \xED\xA0\x80"},
      {"NUL first", std::string("\0abc", 4)},
      {"text", text},
      {"text with a leading space", " " + text},
  };
}

TEST(LmCodecWindow, EdgeCasesRoundTripInBothModes) {
  World& w = world();
  for (int64_t W : {0, 8, 31})
    for (const auto& [name, input] : edge_cases(make_text(2100, 1500)))
      expect_round_trip(*w.codec, input, opts(32, 3, 2, W), name + ", W " + std::to_string(W));
}

TEST(LmCodecWindow, RecordedOnlyWhenItShapesTheFile) {
  World& w = world();
  const std::string long_text = make_text(2200, 1500), short_text = "short";
  const Container one = Container::parse(w.codec->compress(short_text, opts(32, 4, 1, 8)), "short");
  EXPECT_EQ(one.chunks.size(), 1u);
  EXPECT_EQ(one.context_tokens, 0);
  EXPECT_EQ(one.flags & kFlagChunkContext, 0u);
  EXPECT_TRUE(w.codec->compress(short_text, opts(32, 4, 1, 8)) == w.codec->compress(short_text, opts(32, 4, 1, 0)));
  const Container many = Container::parse(w.codec->compress(long_text, opts(32, 4, 1, 8)), "long");
  EXPECT_GT(many.chunks.size(), 2u);
  EXPECT_EQ(many.context_tokens, 8);
  EXPECT_NE(many.flags & kFlagChunkContext, 0u);
  EXPECT_EQ(many.chunks[0].n_tokens, 32u);
  EXPECT_EQ(many.chunks[1].n_tokens, 24u);
  EXPECT_EQ(Container::parse(w.codec->compress(long_text, opts(32, 4, 1)), "auto").context_tokens, 8) << "default: chunk / 4";
  EXPECT_EQ(Container::parse(w.codec->compress(long_text, opts(32, 4, 1, 0)), "w0").context_tokens, 0);
  // The dummy-prefix flag is never set for a tokenizer trained without the prefix (lorazip's own).
  EXPECT_EQ(many.flags & kFlagDummyPrefix, 0u);
}

TEST(LmCodecWindow, OnlyMinusOneMeansTheDefaultWindow) {
  World& w = world();
  const std::string text = make_text(2200, 1500);
  for (int64_t W : {-2, -8, -64}) {
    EXPECT_THROW(w.codec->compress(text, opts(32, 4, 1, W)), std::invalid_argument) << "W " << W;
    EXPECT_THROW(w.codec->ideal_bits(w.codec->tokenize(text), 32, W), std::invalid_argument) << "W " << W;
  }
}

TEST(LmCodecWindow, FileDoesNotDependOnThreadsAndIdealIsTheCodeLengthFunction) {
  World& w = world();
  const std::string text = make_text(2300, 6000) + random_bytes(8, 300);
  CodeStats s;
  const std::string f1 = w.codec->compress(text, opts(32, 4, 1, 12), &s);
  EXPECT_TRUE(w.codec->compress(text, opts(32, 4, 2, 12)) == f1);
  EXPECT_TRUE(w.codec->compress(text, opts(32, 4, 0, 12)) == f1);
  for (int t : {1, 2, 7}) EXPECT_EQ(w.codec->decompress(f1, "w", t), text) << "threads " << t;
  EXPECT_EQ(w.codec->ideal_bits(w.codec->tokenize(text), 32, 12), s.ideal_bits);
  const double slack = 0.01 * s.ideal_bits + 16.0 * static_cast<double>(s.chunks);
  EXPECT_NEAR(s.coded_bits(), s.ideal_bits, slack);
}

TEST(LmCodecWindow, ForgedWindowAndFlagsAreRefused) {
  World& w = world();
  const std::string text = make_text(2400, 900);
  const std::string file = w.codec->compress(text, opts(32, 4, 1, 8));
  const Container orig = Container::parse(file, "forged");
  ASSERT_GT(orig.chunks.size(), 3u);
  ASSERT_EQ(orig.context_tokens, 8);
  auto forged = [&](const std::function<void(Container&)>& change) {
    Container c = orig;
    change(c);
    return c.serialize();
  };
  auto expect_refused = [&](const std::string& what, const std::function<void(Container&)>& change) {
    refused_or_exact(*w.codec, forged(change), text, false, what);
  };
  // (W one more with the chunk sizes kept is refused by the container itself: test_container.)
  expect_refused("W one more (chunk sizes re-cut)", [](Container& c) {
    c.context_tokens = 9;
    for (size_t i = 1; i < c.chunks.size(); ++i) c.chunks[i].n_tokens = std::min<uint32_t>(c.chunks[i].n_tokens, 23);
  });
  expect_refused("W one less (chunk sizes re-cut)", [](Container& c) {
    c.context_tokens = 7;
    for (size_t i = 1; i + 1 < c.chunks.size(); ++i) c.chunks[i].n_tokens = 25;
  });
  expect_refused("W dropped (independent chunks)", [](Container& c) {
    c.context_tokens = 0;
    c.flags &= ~kFlagChunkContext;
  });
  expect_refused("W dropped, chunks re-cut to 32", [](Container& c) {
    c.context_tokens = 0;
    c.flags &= ~kFlagChunkContext;
    uint32_t total = 0;
    for (const auto& ch : c.chunks) total += ch.n_tokens;
    for (auto& ch : c.chunks) ch.n_tokens = std::min<uint32_t>(32, total), total -= ch.n_tokens;
  });
  const std::string msg = refusal_of([&] { w.codec->decompress(forged([](Container& c) { c.flags |= kFlagDummyPrefix; }), "dp.lrz", 1); });
  EXPECT_NE(msg.find("was not trained with a dummy prefix"), std::string::npos) << msg;
  // A single-chunk file that claims a window: never written, refused.
  Container single = Container::parse(w.codec->compress("short", opts(32, 4, 1, 8)), "s");
  single.context_tokens = 8;
  single.flags |= kFlagChunkContext;
  const std::string msg1 = refusal_of([&] { w.codec->decompress(single.serialize(), "s.lrz", 1); });
  EXPECT_NE(msg1.find("context_tokens 8"), std::string::npos) << msg1;
  // An independent-chunk file given a window: refused.
  const Container w0 = Container::parse(w.codec->compress(text, opts(32, 4, 1, 0)), "w0");
  Container w0f = w0;
  w0f.context_tokens = 8;
  w0f.flags |= kFlagChunkContext;
  for (size_t i = 1; i < w0f.chunks.size(); ++i) w0f.chunks[i].n_tokens = std::min<uint32_t>(w0f.chunks[i].n_tokens, 24);
  refused_or_exact(*w.codec, w0f.serialize(), text, false, "window added to independent chunks");
}

TEST(LmCodecRoundTrip, ModelWithoutBosIsRefused) {
  // Every stream starts from BOS; a config.json with "bos_token_id": null cannot be coded with.
  World& w = world();
  LlamaConfig c = w.base.config;
  c.bos_token_id = -1;
  LlamaForCausalLM m(c);
  EXPECT_THROW({ LmCodec bad(engine_model(m), *w.tok, identity_for(w.base, nullptr)); }, std::invalid_argument);
}

// ---- contract 2: one probability path -----------------------------------------------------------

TEST(LmCodecDeterminism, FileDoesNotDependOnThreadsAndDecodesUnderAny) {
  World& w = world();
  const std::string text = make_text(600, 8000) + random_bytes(7, 300);
  const std::string f1 = w.codec->compress(text, opts(32, 4, 1));
  const std::string f2 = w.codec->compress(text, opts(32, 4, 2));
  const std::string f2b = w.codec->compress(text, opts(32, 4, 2));
  const std::string f0 = w.codec->compress(text, opts(32, 4, 0));
  const std::string f8 = w.codec->compress(text, opts(32, 4, 8));  // more workers than cores: groups interleave
  EXPECT_TRUE(f1 == f2) << "compress with 1 and 2 threads gave different files";
  EXPECT_TRUE(f2 == f2b) << "compressing twice gave different files";
  EXPECT_TRUE(f1 == f0) << "compress with all cores differs from 1 thread";
  EXPECT_TRUE(f1 == f8) << "compress with 8 workers differs from 1 thread";
  EXPECT_EQ(w.codec->decompress(f2, "t2", 1), text) << "compressed with 2 threads, decompressed with 1";
  EXPECT_EQ(w.codec->decompress(f1, "t1", 2), text) << "compressed with 1 thread, decompressed with 2";
  EXPECT_EQ(w.codec->decompress(f1, "t1", 7), text) << "more workers than cores";
}

TEST(LmCodecDeterminism, EngineThreadsChangeNothing) {
  // One step of one stream is split over the engine's threads (by output columns and heads): the
  // thread count must not change a byte, in either direction.
  World& w = world();
  const std::string text = make_text(700, 6000);
  std::vector<std::string> files;
  for (int threads : {1, 2, 3}) files.push_back(w.codec->compress(text, opts(32, 8, threads)));
  EXPECT_TRUE(files[0] == files[1] && files[1] == files[2]);
  for (int threads : {1, 2, 3}) EXPECT_EQ(w.codec->decompress(files[0], "t", threads), text) << threads << " threads";
  engine::set_threads(0);
}

TEST(LmCodecBatch, FilesDecodedTogetherGiveTheBytesOfEachAlone) {
  // Files of three codecs (the base, two adapters beside the same weights), windowed and
  // independent chunks, decode in the same engine calls; a damaged one fails alone.
  World& w = world();
  AdaptedCodec c1 = adapted_codec(make_adapter("chat", 21)), c2 = adapted_codec(make_adapter("code", 22));
  struct Case {
    const LmCodec* codec;
    std::string text, file;
  };
  std::vector<Case> cases = {{w.codec.get(), make_text(900, 3000), ""},     {c1.codec.get(), make_text(901, 1200), ""},
                             {c2.codec.get(), make_text(902, 5000), ""},    {w.codec.get(), make_text(903, 200), ""},
                             {c1.codec.get(), make_text(904, 4000), ""},    {c2.codec.get(), "", ""}};
  for (size_t i = 0; i < cases.size(); ++i)
    cases[i].file = cases[i].codec->compress(cases[i].text, opts(32, 4, 1, i % 2 ? 8 : 0));  // windowed and independent
  std::string damaged = cases[1].file;
  damaged[damaged.size() / 2] ^= 0x10;
  std::vector<LmCodec::DecodeJob> jobs;
  for (size_t i = 0; i < cases.size(); ++i) jobs.push_back({cases[i].codec, cases[i].file, "f" + std::to_string(i)});
  jobs.push_back({cases[1].codec, damaged, "damaged"});
  for (int64_t group : {1, 3, 32}) {
    const std::vector<LmCodec::DecodeResult> r = LmCodec::decompress_many(jobs, 2, group);
    ASSERT_EQ(r.size(), jobs.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      EXPECT_FALSE(r[i].error) << "file " << i << ", group " << group;
      EXPECT_TRUE(r[i].data == cases[i].text) << "file " << i << ", group " << group;
      EXPECT_TRUE(r[i].data == cases[i].codec->decompress(cases[i].file, "alone", 1)) << i;
    }
    EXPECT_TRUE(r.back().error) << "the damaged file decoded, group " << group;
  }
  // A file given to the wrong codec is refused alone, by name.
  const std::vector<LmCodec::DecodeResult> r = LmCodec::decompress_many({{c2.codec.get(), cases[1].file, "wrong"},
                                                                          {w.codec.get(), cases[0].file, "right"}},
                                                                         1);
  ASSERT_TRUE(r[0].error);
  EXPECT_NE(refusal_of([&] { std::rethrow_exception(r[0].error); }).find("wrong"), std::string::npos);
  EXPECT_FALSE(r[1].error);
  EXPECT_TRUE(r[1].data == cases[0].text);
}

TEST(LmCodecBatch, IdealBitsOfSeveralAdaptersInOnePassEqualEachAlone) {
  World& w = world();
  AdaptedCodec c1 = adapted_codec(make_adapter("chat", 21)), c2 = adapted_codec(make_adapter("code", 22));
  const std::vector<int32_t> ids = w.codec->tokenize(make_text(905, 2500));
  const std::vector<const LmCodec*> all = {w.codec.get(), c1.codec.get(), c2.codec.get()};
  for (int64_t context : {0, 8}) {
    const std::vector<double> together = LmCodec::ideal_bits_many(all, ids, 32, context, 2);
    for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(together[i], all[i]->ideal_bits(ids, 32, context, 1)) << i;
    EXPECT_NE(together[0], together[1]);  // the adapters change the model
  }
}

TEST(LmCodecDeterminism, ReloadedBaseAndRemergedAdapterDecode) {
  // A new process loads the base and merges the adapter again; the files must decode the same.
  World& w = world();
  const std::string adir = make_adapter("chat", 21);
  const std::string text = make_text(800, 5000);
  AdaptedCodec a1 = adapted_codec(adir);
  const std::string file = a1.codec->compress(text, opts(32, 5, 2));

  LoadedModel again = load_model(w.base_dir);
  EXPECT_EQ(again.fingerprint, w.base.fingerprint);
  const int prev = at::get_num_threads();
  at::set_num_threads(2);  // the merge must not depend on this
  AdaptedCodec a2 = adapted_codec_on(again, adir);
  at::set_num_threads(prev);
  EXPECT_EQ(a2.entry.fingerprint, a1.entry.fingerprint);
  EXPECT_EQ(a2.codec->decompress(file, "adapted", 1), text);
  EXPECT_TRUE(a2.codec->compress(text, opts(32, 5, 1)) == file);
}

// ---- adapters and identity (contract 3) ---------------------------------------------------------

TEST(LmCodecAdapter, RoundTripAndTheAdapterChangesTheModel) {
  World& w = world();
  const std::string adir = make_adapter("chat", 21);
  AdaptedCodec ac = adapted_codec(adir);
  EXPECT_EQ(ac.entry.domain, "chat");
  EXPECT_EQ(ac.entry.fingerprint.size(), 64u);
  EXPECT_EQ(ac.codec->identity().adapter_fingerprint, ac.entry.fingerprint);

  const std::string text = make_text(900, 4000);
  CodeStats s;
  const std::string file = ac.codec->compress(text, opts(32, 4, 2), &s);
  const Container c = Container::parse(file, "a");
  EXPECT_EQ(c.adapter_mode, AdapterMode::Unmerged);  // arithmetic version 2: the adapter beside the weights
  EXPECT_EQ(c.adapter_fingerprint, ac.entry.fingerprint);
  EXPECT_EQ(c.adapter_domain, "chat");
  EXPECT_EQ(ac.codec->decompress(file, "a", 1), text);

  // The adapter really changes the model: another ideal code length.
  const std::vector<int32_t> ids = w.tok->encode(text);
  EXPECT_GT(std::fabs(ac.codec->ideal_bits(ids, 32, 0) - w.codec->ideal_bits(ids, 32, 0)), 1.0);
  // The base model itself is untouched.
  EXPECT_EQ(model_fingerprint(world_torch_model()), w.base.fingerprint);
}

// export --merged writes the weights arithmetic version 1 computes with for base + adapter, bit
// for bit (the engine's one LoRA delta): the written base alone gives the same logits as version
// 1's merge of the original base and the adapter, and only the adapted projections changed.
TEST(LmCodecAdapter, MergedExportIsTheEnginesMergeBitForBit) {
  World& w = world();
  const std::shared_ptr<const LoadedAdapter> a = load_adapter(w.base, make_adapter("chat", 21));
  const std::string out = temp_root() + "/merged-chat";
  const std::string fp = write_merged_base(w.base, peft_adapter_floats(a->view), out);
  LoadedModel merged = load_model(out);
  EXPECT_EQ(merged.fingerprint, fp);
  EXPECT_NE(fp, w.base.fingerprint);
  EXPECT_EQ(merged.tokenizer->sha256(), w.tok->sha256());

  const std::vector<int32_t> ids = w.tok->encode(make_text(400, 600));
  const int64_t T = std::min<int64_t>(static_cast<int64_t>(ids.size()), 48), V = w.base.config.vocab_size;
  auto logits = [&](const engine::Model& m) {
    std::vector<float> out_logits(static_cast<size_t>(T * V));
    m.forward(ids.data(), T, out_logits.data());
    return out_logits;
  };
  const std::vector<float> want = logits(*w.base.version1_model(a.get()));
  EXPECT_TRUE(logits(*merged.version1_model(nullptr)) == want) << "the export differs from version 1's merge";
  EXPECT_FALSE(logits(*w.base.version1_model(nullptr)) == want) << "the adapter should change the logits";

  // Every tensor an adapter module does not name is the base's, bit for bit.
  const StoredLlama before = read_hf_llama(w.base_dir), after = read_hf_llama(out);
  std::set<std::string> adapted;
  for (const PeftModuleView& m : a->view.modules) adapted.insert(m.name + ".weight");
  ASSERT_EQ(before.tensors.size(), after.tensors.size());
  for (const auto& [key, t] : before.tensors)
    EXPECT_EQ(stored_as_float32(t) == stored_as_float32(after.tensors.at(key)), adapted.count(key) == 0) << key;
}

// The one "fewest bits" rule (-A's choice, eval's routed figure): the smallest, the first of equal
// ones; -A picks the configuration whose ideal bits are fewest, the base on a tie.
TEST(LmCodecRouting, FewestBitsKeepsTheFirstOfEqualsAndMinusAPicksIt) {
  EXPECT_EQ(fewest_bits({3.0, 1.0, 1.0}), 1u);
  EXPECT_EQ(fewest_bits({2.0, 2.0}), 0u);
  EXPECT_EQ(fewest_bits({5.0}), 0u);
  EXPECT_THROW(fewest_bits({}), std::invalid_argument);

  World& w = world();
  CodecSet codecs(w.base);
  std::vector<AdapterEntry> candidates = {describe_adapter(make_adapter("chat", 21)), describe_adapter(make_adapter("code", 22))};
  const std::string text = make_text(500, 700);
  const std::vector<int32_t> ids = codecs.get("").tokenize(text);
  std::vector<double> bits = {codecs.get("").ideal_bits(ids, 32, 0)};
  for (const AdapterEntry& c : candidates) bits.push_back(codecs.get(c.dir).ideal_bits(ids, 32, 0));
  const size_t k = fewest_bits(bits);
  const RouteChoice r = route_by_ideal_bits(codecs, text, candidates, 32, 0);
  EXPECT_EQ(r.adapter_dir, k == 0 ? std::string() : candidates[k - 1].dir);
  EXPECT_EQ(r.ideal_bits, bits[k]);
  // The selector -A builds makes the same pick among every adapter of the directory, and codes with it.
  AdapterSelector selector(codecs, {"", temp_root() + "/adapters", ""});
  ASSERT_EQ(selector.kind(), AdapterSelector::Kind::FewestBits);
  const RouteChoice all = route_by_ideal_bits(codecs, text, list_adapters(temp_root() + "/adapters"), 32, 0);
  const AdapterSelector::Pick p = selector.pick(text, 32, 0);
  EXPECT_EQ(p.adapter_dir, all.adapter_dir);
  EXPECT_EQ(p.ideal_bits, all.ideal_bits);
  EXPECT_EQ(p.codec, &codecs.get(all.adapter_dir));
}

TEST(LmCodecAdapter, RefusedWithoutTheAdapterOrWithAnother) {
  World& w = world();
  AdaptedCodec chat = adapted_codec(make_adapter("chat", 21));
  AdaptedCodec code = adapted_codec(make_adapter("code", 22));
  ASSERT_NE(chat.entry.fingerprint, code.entry.fingerprint);
  const std::string text = make_text(1000, 1500);
  const std::string file = chat.codec->compress(text, opts(32, 4, 1));
  const std::string want = short_fp(chat.entry.fingerprint);
  ASSERT_EQ(want.size(), 12u);

  std::string msg = refusal_of([&] { w.codec->decompress(file, "story.lrz", 1); });
  EXPECT_NE(msg.find("story.lrz"), std::string::npos) << msg;
  EXPECT_NE(msg.find(want), std::string::npos) << "names the expected adapter: " << msg;
  EXPECT_NE(msg.find("chat"), std::string::npos) << "names its domain: " << msg;
  EXPECT_NE(msg.find("no adapter"), std::string::npos) << "says what was given: " << msg;

  msg = refusal_of([&] { code.codec->decompress(file, "story.lrz", 1); });
  EXPECT_NE(msg.find(want), std::string::npos) << msg;
  EXPECT_NE(msg.find(short_fp(code.entry.fingerprint)), std::string::npos) << "names the given adapter: " << msg;

  // A file made with the base alone is refused by a codec with an adapter.
  const std::string plain = w.codec->compress(text, opts(32, 4, 1));
  msg = refusal_of([&] { chat.codec->decompress(plain, "plain.lrz", 1); });
  EXPECT_NE(msg.find("no adapter"), std::string::npos) << msg;
  EXPECT_NE(msg.find(want), std::string::npos) << msg;
}

TEST(LmCodecAdapter, AnotherBaseIsRefusedNamingTheBase) {
  World& w = world();
  LlamaForCausalLM other = tiny_model(*w.tok, 12);
  const std::string dir = temp_root() + "/base2";
  save_hf_model(other, dir, w.tok->model_bytes());
  LoadedModel b2 = load_model(dir);
  ASSERT_NE(b2.fingerprint, w.base.fingerprint);
  EXPECT_EQ(b2.tokenizer->sha256(), w.tok->sha256());
  LmCodec codec2(b2.engine_model(), *b2.tokenizer, identity_for(b2, nullptr));

  const std::string text = make_text(1100, 1500);
  const std::string file = w.codec->compress(text, opts(32, 4, 1));
  std::string msg = refusal_of([&] { codec2.decompress(file, "x.lrz", 1); });
  EXPECT_NE(msg.find("base model"), std::string::npos) << msg;
  EXPECT_NE(msg.find(short_fp(w.base.fingerprint)), std::string::npos) << "names the expected base: " << msg;
  EXPECT_NE(msg.find(short_fp(b2.fingerprint)), std::string::npos) << msg;

  // An adapter file under the other base: the base is named first.
  AdaptedCodec chat = adapted_codec(make_adapter("chat", 21));
  const std::string afile = chat.codec->compress(text, opts(32, 4, 1));
  msg = refusal_of([&] { codec2.decompress(afile, "x.lrz", 1); });
  EXPECT_NE(msg.find(short_fp(w.base.fingerprint)), std::string::npos) << msg;
  // And the adapter itself refuses to load onto the other base.
  EXPECT_ANY_THROW(load_adapter(b2, make_adapter("chat", 21)));
}

TEST(LmCodecAdapter, AnotherTokenizerIsRefused) {
  World& w = world();
  std::unique_ptr<Tokenizer> tok2 = train_tokenizer(temp_root() + "/tok2.model", 77, w.tok->vocab_size());
  ASSERT_EQ(tok2->vocab_size(), w.tok->vocab_size());
  ASSERT_NE(tok2->sha256(), w.tok->sha256());
  CodecIdentity id = identity_for(w.base, nullptr);
  id.tokenizer_fingerprint = tok2->sha256();
  LmCodec codec2(w.base.engine_model(), *tok2, id);

  const std::string text = make_text(1200, 1500);
  const std::string file = w.codec->compress(text, opts(32, 4, 1));
  std::string msg = refusal_of([&] { codec2.decompress(file, "t.lrz", 1); });
  EXPECT_NE(msg.find("tokenizer"), std::string::npos) << msg;
  EXPECT_NE(msg.find(short_fp(w.tok->sha256())), std::string::npos) << "names the expected tokenizer: " << msg;

  // A tokenizer whose vocabulary does not fit the model is a caller's mistake.
  std::unique_ptr<Tokenizer> tok3 = train_tokenizer(temp_root() + "/tok3.model", 78, 360);
  EXPECT_THROW({ LmCodec bad(w.base.engine_model(), *tok3, id); }, std::invalid_argument);
}

// ---- contract 3: corrupted, truncated and forged files -------------------------------------------

TEST(LmCodecDamage, EverySingleByteFlipIsRefused) {
  World& w = world();
  const std::string text = make_text(1300, 1200);
  const std::string file = w.codec->compress(text, opts(32, 3, 1));
  const Container c = Container::parse(file, "f");
  const size_t payload_start = file.size() - c.payload_bytes();
  ASSERT_GT(c.chunks.size(), 3u);
  // Every header byte (preamble, fingerprints, chunk table, checksum) and every 7th payload byte.
  std::vector<size_t> positions;
  for (size_t i = 0; i < payload_start; ++i) positions.push_back(i);
  for (size_t i = payload_start; i < file.size(); i += 7) positions.push_back(i);
  positions.push_back(file.size() - 1);
  int refused = 0;
  for (size_t pos : positions)
    for (uint8_t x : {0x01, 0x80, 0xFF}) {
      std::string bad = file;
      bad[pos] = static_cast<char>(bad[pos] ^ x);
      refused += refused_or_exact(*w.codec, bad, text, false, "flip at " + std::to_string(pos));
    }
  EXPECT_EQ(refused, static_cast<int>(3 * positions.size()));
}

TEST(LmCodecDamage, EveryTruncationIsRefused) {
  World& w = world();
  const std::string text = make_text(1400, 800);
  const std::string file = w.codec->compress(text, opts(32, 3, 1));
  for (size_t n = 0; n < file.size(); ++n)
    refused_or_exact(*w.codec, file.substr(0, n), text, false, "truncated to " + std::to_string(n));
  // Trailing bytes too.
  refused_or_exact(*w.codec, file + "x", text, false, "one byte appended");
  refused_or_exact(*w.codec, file + file, text, false, "two files concatenated");
}

// Files whose checksums were recomputed after a change: what stands between them and wrong
// output is the codec's own checks and the checksum of the decoded bytes.
TEST(LmCodecDamage, ForgedFilesWithValidChecksumsAreRefused) {
  World& w = world();
  const std::string text = make_text(1500, 700);
  const std::string file = w.codec->compress(text, opts(32, 4, 1, 0));  // independent chunks; windowed: below
  const Container orig = Container::parse(file, "forged");
  ASSERT_GT(orig.chunks.size(), 4u);
  auto forge = [&](const std::function<void(Container&)>& change) {
    Container c = orig;
    change(c);
    return c.serialize();
  };
  auto expect_refused = [&](const std::string& what, const std::function<void(Container&)>& change) {
    refused_or_exact(*w.codec, forge(change), text, false, what);
  };

  // A payload byte flipped at the start or in the middle of a chunk changes what its stream
  // decodes to. The last byte of a stream (and bytes appended to it) may only carry the coder's
  // slack below the final interval: decoding it exactly is then right, not a failure.
  int refused_tail = 0, tails = 0;
  for (size_t ci = 0; ci < orig.chunks.size(); ++ci) {
    const size_t n = orig.chunks[ci].payload.size();
    for (size_t at : {size_t{0}, n / 2}) {
      if (at + 2 >= n) continue;  // too near the end: see below
      expect_refused("payload of chunk " + std::to_string(ci) + " byte " + std::to_string(at),
                     [&](Container& c) { c.chunks[ci].payload[at] = static_cast<char>(c.chunks[ci].payload[at] ^ 0x10); });
    }
    ++tails;
    refused_tail += refused_or_exact(*w.codec, forge([&](Container& c) { c.chunks[ci].payload[n - 1] ^= 0x01; }), text, true,
                                     "last payload byte of chunk " + std::to_string(ci));
  }
  std::printf("forged last-byte flips refused: %d of %d (the rest decoded exactly)\n", refused_tail, tails);
  refused_or_exact(*w.codec, forge([](Container& c) { c.chunks[0].payload += std::string(8, '\x5A'); }), text, true,
                   "payload extended");
  expect_refused("payload truncated", [](Container& c) { c.chunks[1].payload.resize(c.chunks[1].payload.size() / 2); });
  expect_refused("payload emptied", [](Container& c) { c.chunks[2].payload.clear(); });
  expect_refused("two chunks swapped", [](Container& c) { std::swap(c.chunks[0], c.chunks[1]); });
  expect_refused("last chunk dropped", [](Container& c) { c.chunks.pop_back(); });
  expect_refused("a chunk duplicated", [](Container& c) { c.chunks.push_back(c.chunks.back()); });
  expect_refused("middle chunk short", [](Container& c) { c.chunks[1].n_tokens -= 1; });
  expect_refused("chunk with zero tokens", [](Container& c) { c.chunks[1].n_tokens = 0; });
  expect_refused("last chunk longer or shorter", [&](Container& c) {
    c.chunks.back().n_tokens = static_cast<uint32_t>(std::min<int64_t>(c.chunks.back().n_tokens + 5, c.chunk_tokens));
    if (c.chunks.back().n_tokens == orig.chunks.back().n_tokens) c.chunks.back().n_tokens -= 1;
  });
  expect_refused("original length", [](Container& c) { c.original_bytes += 1; });
  expect_refused("original checksum", [](Container& c) { c.original_xxh64 ^= 1; });
  expect_refused("chunk length beyond the context", [](Container& c) { c.chunk_tokens = 64; });
  expect_refused("chunk limit 48 (re-cuts the tokens)", [](Container& c) { c.chunk_tokens = 48; });
  expect_refused("coder precision higher", [](Container& c) { c.total_bits += 1; });
  expect_refused("coder precision lower", [](Container& c) { c.total_bits -= 1; });
  expect_refused("unmerged adapter mode", [](Container& c) {
    c.adapter_mode = AdapterMode::Unmerged;
    c.adapter_fingerprint = std::string(64, 'a');
  });
  // Version 1 is another arithmetic (and adapter mode): the file decodes to other tokens.
  expect_refused("another engine arithmetic", [](Container& c) { c.arithmetic_version = 1; });
  expect_refused("an arithmetic not implemented", [](Container& c) { c.arithmetic_version = 3; });
  // The group size is the decoder's batch, which the engine's bits do not depend on: any decodes.
  for (int64_t g : {1, 2, 1024})
    EXPECT_EQ(w.codec->decompress(forge([&](Container& c) { c.group_streams = g; }), "g", 2), text) << "group_streams " << g;
}

TEST(LmCodecDamage, AnotherArithmeticVersionIsRefusedNamingIt) {
  World& w = world();
  const std::string text = make_text(1550, 500);
  Container c = Container::parse(w.codec->compress(text, opts(32, 4, 1)), "v");
  EXPECT_EQ(c.arithmetic_version, engine::kArithmeticVersion);
  c.arithmetic_version = 7;
  const std::string msg = refusal_of([&] { w.codec->decompress(c.serialize(), "v7.lrz", 1); });
  EXPECT_NE(msg.find("v7.lrz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("arithmetic version 7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("computes versions 1..2"), std::string::npos) << msg;
}

TEST(LmCodecDamage, DivergenceIsNamedInTheChecksumRefusal) {
  // A file whose probabilities are not the decoder's (here: coded under another base, relabelled
  // with this base's fingerprint) decodes to other tokens; the refusal says why.
  World& w = world();
  LlamaForCausalLM other = tiny_model(*w.tok, 13);
  LmCodec foreign(engine_model_v2(other), *w.tok, identity_for(w.base, nullptr));
  const std::string text = make_text(1560, 1500);
  const std::string msg = refusal_of([&] { w.codec->decompress(foreign.compress(text, opts(32, 4, 1)), "x.lrz", 1); });
  EXPECT_TRUE(msg.find("diverged") != std::string::npos || msg.find("probabilities are not this model's") != std::string::npos)
      << msg;
}

// ---- measured bits ----------------------------------------------------------------------------

TEST(LmCodecBits, CodedSizeTracksIdealAndTeacherForcedAgrees) {
  World& w = world();
  for (int64_t chunk : {32, 63}) {
    const std::string text = make_text(1600 + static_cast<uint32_t>(chunk), 6000);
    CodeStats s;
    const std::string file = w.codec->compress(text, opts(chunk, 8, 2), &s);
    ASSERT_GT(s.ideal_bits, 0);
    const double slack = 0.01 * s.ideal_bits + 16.0 * static_cast<double>(s.chunks);
    EXPECT_LE(s.coded_bits(), s.ideal_bits + slack) << "chunk " << chunk;
    EXPECT_GE(s.coded_bits(), s.ideal_bits - slack) << "chunk " << chunk;
    const std::vector<int32_t> ids = w.codec->tokenize(text);
    ASSERT_EQ(static_cast<int64_t>(ids.size()), s.tokens);
    const double tf = w.codec->ideal_bits(ids, chunk, -1);
    EXPECT_EQ(tf, s.ideal_bits) << "ideal_bits() and compress() must be one code-length function";
    EXPECT_EQ(s.file_bytes, static_cast<int64_t>(file.size()));
    EXPECT_GT(s.file_bytes, s.payload_bytes);
    std::printf("chunk %lld: %lld tokens, %lld chunks, ideal %.1f bits, coded %.0f bits (%+.3f%%), teacher-forced %.3f "
                "(relative difference %.1e)\n",
                (long long)chunk, (long long)s.tokens, (long long)s.chunks, s.ideal_bits, s.coded_bits(),
                100.0 * (s.coded_bits() / s.ideal_bits - 1.0), tf, tf / s.ideal_bits - 1.0);
  }
}

// ---- the real TinyStories model --------------------------------------------------------------------

TEST(LmCodecTinyStories, ReferenceStoryRoundTripsNearTheReferenceBits) {
  if (!file_exists(kTinyStories + "/config.json")) GTEST_SKIP() << "../shared not found: " << kTinyStories;
  LoadedModel base = load_model(kTinyStories);
  LmCodec codec(base.engine_model(), *base.tokenizer, identity_for(base, nullptr));
  const auto greedy = nlohmann::json::parse(read_file(kTinyStories + "/reference_greedy.json"));
  const auto ref = nlohmann::json::parse(read_file(kTinyStories + "/reference_logprobs.json"));
  std::vector<int32_t> ids;
  for (int64_t id : greedy.at("ids").get<std::vector<int64_t>>()) ids.push_back(static_cast<int32_t>(id));
  // decode() turns the first piece's "▁" into a space; the story itself (626 bytes) starts at "Once".
  const std::string spaced = base.tokenizer->decode(ids);
  ASSERT_EQ(spaced.substr(0, 5), " Once");
  const std::string text = spaced.substr(1);
  ASSERT_GT(text.size(), 500u);
  ASSERT_TRUE(base.tokenizer->trained_with_dummy_prefix()) << "llama2.c's tokenizer adds a dummy prefix";

  CodeStats cs;
  const std::string file = codec.compress(text, opts(0, 32, 2), &cs);
  EXPECT_EQ(codec.decompress(file, "story.lrz", 1), text);
  EXPECT_TRUE(codec.compress(text, opts(0, 32, 1)) == file) << "threads 1 vs 2";
  // The reference is an independent float64 forward over [BOS] + the same ids: the code length
  // of each id given the ones before it. The codec scores exactly those predictions when the story
  // re-tokenizes to the same ids and fits one chunk.
  ASSERT_TRUE(codec.tokenize(text) == ids) << "the story does not tokenize natively to the reference ids";
  ASSERT_TRUE(codec.tokenize(spaced) == ids) << "a leading space stands in for the dummy prefix";
  EXPECT_TRUE(cs.dummy_prefix);
  EXPECT_NE(Container::parse(file, "story").flags & kFlagDummyPrefix, 0u);
  ASSERT_EQ(cs.tokens, static_cast<int64_t>(ids.size()));
  ASSERT_EQ(cs.chunks, 1);
  // The native tokenization keeps the story at the model's own 255 tokens and ~328 bits.
  EXPECT_LE(cs.coded_bits(), 345.0) << "the story's payload";
  CodeStats ss;
  const std::string spaced_file = codec.compress(spaced, opts(0, 32, 2), &ss);
  EXPECT_EQ(codec.decompress(spaced_file, "spaced.lrz", 1), spaced);
  EXPECT_FALSE(ss.dummy_prefix);
  EXPECT_LE(ss.coded_bits(), 345.0) << "the story with its leading space";
  // Without the native tokenization (encode(), no prefix), for comparison.
  const std::vector<int32_t> plain = base.tokenizer->encode(text);
  const double plain_bits = codec.ideal_bits(plain, 0, -1);
  std::printf("story without the dummy prefix: %zu tokens, ideal %.1f bits; native: %lld tokens, ideal %.1f bits, coded %.0f bits\n",
              plain.size(), plain_bits, (long long)cs.tokens, cs.ideal_bits, cs.coded_bits());
  const auto& logprobs = ref.at("next_token_logprob_nats");
  ASSERT_EQ(logprobs.size(), ids.size());
  double ref_bits = 0;
  for (const auto& lp : logprobs) ref_bits -= lp.get<double>() / std::log(2.0);
  std::printf("TinyStories reference story: %lld bytes, %lld tokens | reference %.2f bits (float64), ideal %.2f bits (%+.4f%%), "
              "coded %.0f bits (%+.3f%% over ideal), file %lld bytes\n",
              (long long)cs.bytes, (long long)cs.tokens, ref_bits, cs.ideal_bits, 100.0 * (cs.ideal_bits / ref_bits - 1.0),
              cs.coded_bits(), 100.0 * (cs.coded_bits() / cs.ideal_bits - 1.0), (long long)cs.file_bytes);
  // Tolerances: float32 against float64 differs by ~1e-5 relative per token, so the ideal code
  // length must be within 0.5% of the reference; the coded payload adds the quantizer's cost and
  // the coder's flush, so it must be within 1% of the reference plus 64 bits.
  EXPECT_NEAR(cs.ideal_bits, ref_bits, 0.005 * ref_bits) << "the model's code length is not the reference's";
  EXPECT_NEAR(cs.coded_bits(), ref_bits, 0.01 * ref_bits + 64) << "the coded size is not near the reference code length";
}

TEST(LmCodecTinyStories, LongStoriesAcrossChunksAndGroups) {
  if (!file_exists(kTinyStories + "/config.json")) GTEST_SKIP() << "../shared not found: " << kTinyStories;
  LoadedModel base = load_model(kTinyStories);
  LmCodec codec(base.engine_model(), *base.tokenizer, identity_for(base, nullptr));
  const auto greedy = nlohmann::json::parse(read_file(kTinyStories + "/reference_greedy.json"));
  std::vector<int32_t> ids;
  for (int64_t id : greedy.at("ids").get<std::vector<int64_t>>()) ids.push_back(static_cast<int32_t>(id));
  std::string text;
  for (int i = 0; i < 12; ++i) text += base.tokenizer->decode(ids) + "\n\n";
  text += random_bytes(9, 100);
  const std::string f2 = codec.compress(text, opts(100, 3, 2));
  EXPECT_TRUE(codec.compress(text, opts(100, 3, 1)) == f2);
  EXPECT_EQ(codec.decompress(f2, "long.lrz", 1), text);
}

TEST(LmCodecTinyStories, DummyPrefixEdgeCasesRoundTripInBothModes) {
  if (!file_exists(kTinyStories + "/config.json")) GTEST_SKIP() << "../shared not found: " << kTinyStories;
  LoadedModel base = load_model(kTinyStories);
  LmCodec codec(base.engine_model(), *base.tokenizer, identity_for(base, nullptr));
  const std::string story = "Once upon a time, there was a little girl named Lily. She liked to play outside.\n";
  std::string text;
  for (int i = 0; i < 4; ++i) text += story;
  for (int64_t W : {0, 16})
    for (const auto& [name, input] : edge_cases(text)) {
      expect_round_trip(codec, input, opts(40, 4, 2, W), name + ", W " + std::to_string(W));
      CodeStats s;
      codec.compress(input, opts(40, 4, 1, W), &s);
      EXPECT_EQ(s.dummy_prefix, !input.empty() && input[0] != ' ') << name << ": the prefix exactly when it is native";
    }
}

TEST(LmCodecTinyStories, WindowedChunksSaveBitsOnALongDocument) {
  if (!file_exists(kTinyStories + "/config.json")) GTEST_SKIP() << "../shared not found: " << kTinyStories;
  LoadedModel base = load_model(kTinyStories);
  LmCodec codec(base.engine_model(), *base.tokenizer, identity_for(base, nullptr));
  const auto greedy = nlohmann::json::parse(read_file(kTinyStories + "/reference_greedy.json"));
  std::vector<int32_t> ids;
  for (int64_t id : greedy.at("ids").get<std::vector<int64_t>>()) ids.push_back(static_cast<int32_t>(id));
  // One long document: the story's sentences, rotated, so each chunk boundary falls mid-story.
  const std::string story = base.tokenizer->decode(ids).substr(1);
  std::string text;
  for (size_t i = 0; i < 4; ++i) text += story.substr(i * 97) + " " + story.substr(0, i * 97) + "\n";
  CodeStats s0, sw;
  const std::string f0 = codec.compress(text, opts(128, 8, 2, 0), &s0);
  const std::string fw = codec.compress(text, opts(128, 8, 2, 32), &sw);
  ASSERT_GT(sw.chunks, 5) << "a document several chunks long";
  std::printf("TinyStories long document: %lld tokens | W=0: %lld chunks, %.0f coded bits | W=32: %lld chunks, %.0f coded bits "
              "(%.2f%% fewer)\n",
              (long long)s0.tokens, (long long)s0.chunks, s0.coded_bits(), (long long)sw.chunks, sw.coded_bits(),
              100.0 * (1.0 - sw.coded_bits() / s0.coded_bits()));
  EXPECT_LT(sw.ideal_bits, s0.ideal_bits) << "the window must save ideal bits";
  EXPECT_LT(sw.coded_bits(), s0.coded_bits()) << "the window must save coded bits";
  for (int t : {1, 2, 0}) EXPECT_EQ(codec.decompress(fw, "windowed.lrz", t), text) << "threads " << t;
  EXPECT_TRUE(codec.compress(text, opts(128, 8, 1, 32)) == fw) << "threads 1 vs 2";
}

// ---- the compact file (container version 3) ------------------------------------------------------

LmCodecOptions compact_opts(int64_t chunk, int threads, int64_t context = -1) {
  LmCodecOptions o = opts(chunk, 4, threads, context);
  o.format = ContainerFormat::Compact;
  return o;
}

TEST(LmCodecCompact, EdgeCasesAndManyChunksRoundTrip) {
  World& w = world();
  AdaptedCodec chat = adapted_codec(make_adapter("chat", 21));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""}, {"one byte", "a"}, {"leading space", " the model"}, {"random binary 3000", random_bytes(5, 3000)},
      {"text", make_text(2100, 2500)}, {"NUL bytes", std::string("a\0b\0\0c", 6) + std::string(40, '\0')}};
  for (const auto& [name, input] : cases) {
    for (int64_t context : {int64_t{-1}, int64_t{0}, int64_t{5}}) {
      for (int64_t chunk : {int64_t{0}, int64_t{32}}) {
        for (const LmCodec* codec : {w.codec.get(), chat.codec.get()}) {
          const std::string what = name + " chunk " + std::to_string(chunk) + " context " + std::to_string(context);
          CodeStats cs;
          const std::string file = codec->compress(input, compact_opts(chunk, 2, context), &cs);
          EXPECT_EQ(container_version(file, "c"), kCompactVersion) << what;
          EXPECT_EQ(codec->decompress(file, "c", 1), input) << what;
          EXPECT_EQ(codec->compress(input, compact_opts(chunk, 1, context)), file) << what << ": depends on the thread count";
        }
      }
    }
  }
}

TEST(LmCodecCompact, OverheadWithAdapterIsAtMost12BytesOnShortText) {
  AdaptedCodec chat = adapted_codec(make_adapter("chat", 21));
  for (size_t n : {200, 1000, 3000}) {
    CodeStats s;
    const std::string file = chat.codec->compress(make_text(2200 + static_cast<uint32_t>(n), n), compact_opts(0, 1), &s);
    ASSERT_FALSE(s.stored) << n;
    const CompactFile f = CompactFile::parse(file, "c");
    EXPECT_TRUE(f.has_adapter);
    // Version 4: 12 bytes with one chunk; a count byte and a 1-2-byte length per further chunk.
    const int64_t more = static_cast<int64_t>(f.chunks.size()) - 1;
    EXPECT_LE(s.file_bytes - s.payload_bytes, 12 + (more > 0 ? 1 + 2 * more : 0)) << n << " bytes in " << f.chunks.size() << " chunks";
  }
}

TEST(LmCodecCompact, NeverMoreThanSixBytesOverStoring) {
  World& w = world();
  // Random bytes cost the model more than 8 bits a byte: the file holds them as they are.
  const std::string noise = random_bytes(31, 64 * 1024);
  CodeStats s;
  const std::string file = w.codec->compress(noise, compact_opts(0, 2), &s);
  EXPECT_TRUE(s.stored);
  EXPECT_EQ(file.size(), noise.size() + 6);
  EXPECT_TRUE(CompactFile::parse(file, "n").stored);
  CodeStats d;
  EXPECT_EQ(w.codec->decompress(file, "n", 1, &d), noise);
  EXPECT_TRUE(d.stored);
  // Text the model predicts is coded, not stored.
  CodeStats t;
  w.codec->compress(make_text(2300, 3000), compact_opts(0, 2), &t);
  EXPECT_FALSE(t.stored);
  EXPECT_LT(t.file_bytes, t.bytes);
}

TEST(LmCodecCompact, AnotherBaseAdapterOrTokenizerIsRefusedNamingWhich) {
  World& w = world();
  AdaptedCodec chat = adapted_codec(make_adapter("chat", 21));
  AdaptedCodec code = adapted_codec(make_adapter("code", 22));
  const std::string text = make_text(2400, 1500);
  const std::string afile = chat.codec->compress(text, compact_opts(0, 1));
  const std::string bfile = w.codec->compress(text, compact_opts(0, 1));
  char tag[8];
  std::snprintf(tag, sizeof tag, "%02x", fingerprint_tag8(chat.entry.fingerprint));  // version 4: 8 bits

  std::string msg = refusal_of([&] { w.codec->decompress(afile, "a.lz", 1); });
  EXPECT_NE(msg.find("a.lz"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::string("adapter whose fingerprint begins ") + tag), std::string::npos) << msg;
  EXPECT_NE(msg.find("no adapter"), std::string::npos) << msg;
  msg = refusal_of([&] { code.codec->decompress(afile, "a.lz", 1); });
  if (fingerprint_tag8(code.entry.fingerprint) != fingerprint_tag8(chat.entry.fingerprint))
    EXPECT_NE(msg.find(short_fp(code.entry.fingerprint)), std::string::npos) << msg;
  else  // the adapters share the 8-bit tag: decoding runs and the seal refuses
    EXPECT_NE(msg.find("fail the file's seal"), std::string::npos) << msg;
  msg = refusal_of([&] { chat.codec->decompress(bfile, "b.lz", 1); });
  EXPECT_NE(msg.find("no adapter"), std::string::npos) << msg;

  LlamaForCausalLM other = tiny_model(*w.tok, 12);
  const std::string dir = temp_root() + "/base2";
  if (!dir_exists(dir)) save_hf_model(other, dir, w.tok->model_bytes());
  LoadedModel b2 = load_model(dir);
  LmCodec codec2(b2.engine_model(), *b2.tokenizer, identity_for(b2, nullptr));
  if (fingerprint_tag16(b2.fingerprint) != fingerprint_tag16(w.base.fingerprint)) {
    msg = refusal_of([&] { codec2.decompress(bfile, "b.lz", 1); });
    EXPECT_NE(msg.find("base model"), std::string::npos) << msg;
    EXPECT_NE(msg.find(short_fp(b2.fingerprint)), std::string::npos) << msg;
  }
  // A base whose tag collides: forge the identity so the tags match; the seal refuses.
  CodecIdentity forged_id = identity_for(b2, nullptr);
  forged_id.base_fingerprint = w.base.fingerprint;
  LmCodec collided(b2.engine_model(), *b2.tokenizer, forged_id);
  msg = refusal_of([&] { collided.decompress(bfile, "b.lz", 1); });
  EXPECT_NE(msg.find("fail the file's seal"), std::string::npos) << msg;

  std::unique_ptr<Tokenizer> tok2 = train_tokenizer(temp_root() + "/tok2.model", 77, w.tok->vocab_size());
  CodecIdentity tid = identity_for(w.base, nullptr);
  tid.tokenizer_fingerprint = tok2->sha256();
  LmCodec tcodec(w.base.engine_model(), *tok2, tid);
  if (fingerprint_tag8(tok2->sha256()) != fingerprint_tag8(w.tok->sha256())) {
    msg = refusal_of([&] { tcodec.decompress(bfile, "t.lz", 1); });
    EXPECT_NE(msg.find("tokenizer"), std::string::npos) << msg;
  }
}

TEST(LmCodecCompact, EveryByteFlipAndTruncationIsRefused) {
  World& w = world();
  const std::string text = make_text(2500, 900);
  const std::string file = w.codec->compress(text, compact_opts(32, 1));
  ASSERT_GT(CompactFile::parse(file, "f").chunks.size(), 2u);
  for (size_t pos = 0; pos < file.size(); ++pos)
    for (uint8_t x : {0x01, 0x80}) {
      std::string bad = file;
      bad[pos] = static_cast<char>(bad[pos] ^ x);
      refused_or_exact(*w.codec, bad, text, false, "flip at " + std::to_string(pos));
    }
  for (size_t n = 0; n < file.size(); ++n) refused_or_exact(*w.codec, file.substr(0, n), text, false, "truncated to " + std::to_string(n));
}

TEST(LmCodecCompact, ForgedHeadersWithValidChecksumsAreRefused) {
  World& w = world();
  const std::string text = make_text(2600, 900);
  const std::string file = w.codec->compress(text, compact_opts(32, 1));
  const CompactFile good = CompactFile::parse(file, "f");
  ASSERT_EQ(good.version, kCompactVersion);
  // Version 4 forgeries keep the writer's seal (the seal covers what they change); version 3
  // forgeries get valid checksums, since its file checksum is checked before any field.
  for (int version : {kCompactVersion, kCompactVersionLegacy}) {
  SCOPED_TRACE("version " + std::to_string(version));
  CompactFile base = good;
  base.version = version;
  if (version == kCompactVersionLegacy) {
    base.original_bytes = text.size();
    base.original_check = check32(text);
    EXPECT_EQ(w.codec->decompress(base.serialize(), "v3", 1), text) << "a version-3 file of the same stream decodes";
  }
  auto forged = [&](const std::function<void(CompactFile&)>& change) {
    CompactFile f = base;
    change(f);
    return f.serialize();
  };
  const std::vector<std::pair<std::string, std::function<void(CompactFile&)>>> changes = {
      {"one token more", [](CompactFile& f) { f.n_tokens += 1; }},
      {"one token less", [](CompactFile& f) { f.n_tokens -= 1; }},
      {"a huge token count", [](CompactFile& f) { f.n_tokens = uint64_t{1} << 60; }},
      {"another chunk length", [](CompactFile& f) { f.chunk_tokens = 31; f.context_tokens = 8; }},
      {"chunks merged", [](CompactFile& f) { f.chunks[0] += f.chunks[1]; f.chunks.erase(f.chunks.begin() + 1); }},
      {"another original size (3) or seal (4)", [](CompactFile& f) { f.version == kCompactVersion ? (void)(*f.seal ^= 0x100) : (void)(f.original_bytes += 1); }},
      {"another content checksum (3) or seal (4)", [](CompactFile& f) { f.version == kCompactVersion ? (void)(*f.seal ^= 1) : (void)(f.original_check ^= 1); }},
      {"dummy prefix flipped", [](CompactFile& f) { f.dummy_prefix = !f.dummy_prefix; }},
      {"arithmetic version 1", [](CompactFile& f) { f.arithmetic_version = 1; }},
      {"arithmetic version 3", [](CompactFile& f) { f.arithmetic_version = 3; }},
      {"chunk longer than the model's context", [](CompactFile& f) { f.chunk_tokens = 64; f.context_tokens = 0; }},
  };
  for (const auto& [what, change] : changes) refused_or_exact(*w.codec, forged(change), text, false, what);
  }
}

// ---- archives (runtime/archive_io.h) ---------------------------------------------------------------

namespace {

// Records every byte range read through it.
class CountingFile : public ByteSource {
 public:
  explicit CountingFile(const std::string& path) : inner_(open_file_source(path)) {}
  uint64_t size() const override { return inner_->size(); }
  std::string read(uint64_t offset, size_t n) const override {
    reads.emplace_back(offset, offset + n);
    return inner_->read(offset, n);
  }
  mutable std::vector<std::pair<uint64_t, uint64_t>> reads;

 private:
  std::unique_ptr<ByteSource> inner_;
};

std::vector<ArchiveDocument> docs_of(const std::vector<std::string>& bodies) {
  std::vector<ArchiveDocument> docs;
  for (size_t i = 0; i < bodies.size(); ++i) docs.push_back(file_document("dir/doc" + std::to_string(i) + ".txt", bodies[i]));
  return docs;
}

// The archive calls with a selector of `adapters` over `codecs` (the base alone by default).
ArchiveWriteStats create_archive(const std::string& path, CodecSet& codecs, const std::vector<ArchiveDocument>& docs,
                                 const ArchiveCodingOptions& opt, const AdapterOptions& adapters = {}) {
  AdapterSelector selector(codecs, adapters);
  return archive_create(path, selector, docs, opt, true);
}
ArchiveWriteStats add_to_archive(const std::string& path, CodecSet& codecs, const std::vector<ArchiveDocument>& docs,
                                 const ArchiveCodingOptions& opt) {
  AdapterSelector selector(codecs, {});
  return archive_add(path, selector, docs, opt);
}
std::string extract_member(const ByteSource& src, const ArchiveLayout& L, size_t k, CodecSet& codecs, const std::string& path,
                           const AdapterOptions& adapters = {}, const TurnRendererFactory& renderers = nullptr) {
  AdapterSelector selector(codecs, adapters);
  return archive_extract_member(src, L, k, selector, 1, path, renderers);
}

std::vector<std::string> extract_all(const std::string& path, CodecSet& codecs, const std::string& adapters_dir = "") {
  auto src = open_file_source(path);
  const ArchiveLayout L = read_archive_layout(*src, path);
  std::vector<std::string> out;
  for (size_t k = 0; k < L.index.members.size(); ++k) out.push_back(extract_member(*src, L, k, codecs, path, {"", adapters_dir, ""}));
  return out;
}

std::string archive_path(const std::string& name) { return temp_root() + "/" + name; }

}  // namespace

// ---- Conditioned coding: a document coded given a context both sides hold ----------------------

// Token ids of the world's vocabulary (a prompt as the codec sees it: any ids, BOS first or not).
std::vector<int32_t> some_context(uint32_t seed, size_t n, bool bos_first) {
  World& w = world();
  std::vector<int32_t> ids = w.tok->encode(make_text(seed, 8 * n));
  ids.resize(std::min(ids.size(), n));
  if (bos_first) ids.insert(ids.begin(), w.tok->bos_id());
  return ids;
}

TEST(LmCodecContext, WindowDropsALeadingBosAndKeepsTheEnd) {
  const std::vector<int32_t> ctx = {1, 10, 11, 12, 13, 14, 15, 16, 17};
  EXPECT_EQ(context_window(ctx, 1, 100), (std::vector<int32_t>{10, 11, 12, 13, 14, 15, 16, 17}));
  EXPECT_EQ(context_window(ctx, 2, 100), ctx);  // 1 is not this model's BOS
  EXPECT_EQ(context_window(ctx, 1, 8), (std::vector<int32_t>{14, 15, 16, 17}));  // at most half the chunk
  EXPECT_EQ(context_window(ctx, 1, 9), (std::vector<int32_t>{14, 15, 16, 17}));
  EXPECT_TRUE(context_window({1}, 1, 64).empty());
  EXPECT_TRUE(context_window({}, 1, 64).empty());
  // The fingerprint is of every token, in order.
  EXPECT_EQ(context_fingerprint(ctx).size(), 64u);
  EXPECT_NE(context_fingerprint(ctx), context_fingerprint({1, 10, 11, 12, 13, 14, 15, 17, 16}));
  EXPECT_NE(context_fingerprint({}), context_fingerprint({0}));
  // The plan: chunk 0 reads the window and codes the rest of its positions.
  const std::vector<ChunkSpan> plan = plan_chunks(100, 32, 8, 10);
  ASSERT_GE(plan.size(), 2u);
  EXPECT_EQ(plan[0].context, 10);
  EXPECT_EQ(plan[0].n, 22);
  EXPECT_EQ(plan[1].start, 22u);
  EXPECT_EQ(plan[1].context, 8);
  EXPECT_EQ(plan[1].n, 24);
  EXPECT_THROW(plan_chunks(10, 32, 8, 32), std::invalid_argument);
}

// Chunking::resolve turns the options' "default" values into numbers once: chunk 0 = the model's
// positions - 1, window -1 = a quarter of the chunk; anything out of range is refused by name. An
// archive header with chunk_tokens 0 means the model's defaults whatever its context_tokens says.
TEST(LmCodecChunking, ResolvesTheDefaultsOnceAndRefusesWhatDoesNotFit) {
  const Chunking d = Chunking::resolve(513, 0, -1);
  EXPECT_EQ(d.chunk, 512);
  EXPECT_EQ(d.window, 128);
  const Chunking c = Chunking::resolve(513, 100, -1);
  EXPECT_EQ(c.chunk, 100);
  EXPECT_EQ(c.window, 25);
  EXPECT_EQ(Chunking::resolve(513, 100, 0).window, 0);
  EXPECT_EQ(Chunking::resolve(513, 0, 7).window, 7);
  EXPECT_EQ(c.independent().chunk, 100);
  EXPECT_EQ(c.independent().window, 0);
  for (auto [chunk, ctx, what] : std::vector<std::tuple<int64_t, int64_t, const char*>>{
           {513, -1, "chunk_tokens must be in 1..512"}, {-5, -1, "chunk_tokens must be in 1..512"},
           {100, 100, "context_tokens must be in 0..99"}, {100, -2, "context_tokens must be -1"}}) {
    try {
      Chunking::resolve(513, chunk, ctx);
      ADD_FAILURE() << "accepted chunk " << chunk << ", context " << ctx;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  }
  const Chunking a = Chunking::of_archive(513, 0, 3);  // chunk 0: the header's context is unused
  EXPECT_EQ(a.chunk, 512);
  EXPECT_EQ(a.window, 128);
  const Chunking b = Chunking::of_archive(513, 64, 0);
  EXPECT_EQ(b.chunk, 64);
  EXPECT_EQ(b.window, 0);
}

TEST(LmCodecContext, RoundTripsInBothFormatsEveryChunkModeAndAnyThreadCount) {
  World& w = world();
  AdaptedCodec chat = adapted_codec(make_adapter("chat", 21));
  const std::vector<std::pair<std::string, std::vector<int32_t>>> contexts = {
      {"empty", {}}, {"BOS only", {w.tok->bos_id()}}, {"short", some_context(71, 6, false)},
      {"BOS first", some_context(72, 12, true)}, {"longer than the window", some_context(73, 90, true)}};
  const std::vector<std::pair<std::string, std::string>> inputs = {
      {"empty", ""}, {"one byte", "a"}, {"text over chunks", make_text(2400, 1500)}, {"binary", random_bytes(9, 300)}};
  for (const auto& [cname, ctx] : contexts)
    for (const auto& [iname, input] : inputs)
      for (int64_t chunk : {int64_t{0}, int64_t{32}})
        for (int64_t context : {int64_t{-1}, int64_t{0}})
          for (const bool compact : {false, true})
            for (const LmCodec* codec : {w.codec.get(), chat.codec.get()}) {
              const std::string what = "context " + cname + ", input " + iname + ", chunk " + std::to_string(chunk) + ", W " +
                                       std::to_string(context) + (compact ? ", compact" : ", full");
              LmCodecOptions o = compact ? compact_opts(chunk, 2, context) : opts(chunk, 4, 2, context);
              o.context = &ctx;
              CodeStats cs;
              const std::string file = codec->compress(input, o, &cs);
              if (compact && !cs.stored) EXPECT_EQ(container_version(file, "c"), kCompactVersionContext) << what;
              if (!compact) {
                const Container c = Container::parse(file, "c");
                EXPECT_TRUE(c.flags & kFlagContext) << what;
                EXPECT_EQ(c.context_fingerprint, context_fingerprint(ctx)) << what;
                EXPECT_EQ(c.prefix_tokens, cs.prefix_tokens) << what;
              }
              const int64_t chunk_len = chunk > 0 ? chunk : 63;
              EXPECT_EQ(cs.prefix_tokens, static_cast<int64_t>(context_window(ctx, w.tok->bos_id(), chunk_len).size())) << what;
              CodeStats ds;
              EXPECT_EQ(codec->decompress(file, "c", 1, &ds, nullptr, &ctx), input) << what;
              o.threads = 1;
              EXPECT_EQ(codec->compress(input, o), file) << what << ": depends on the thread count";
              // The ideal code length given the context is what compress reports.
              if (!input.empty())
                EXPECT_EQ(codec->ideal_bits(codec->tokenize(input), chunk, context, 1, &ctx), cs.ideal_bits) << what;
            }
}

TEST(LmCodecContext, TheContextChangesTheBitsAndTheDecoderReadsIt) {
  World& w = world();
  const std::string text = make_text(2500, 600);
  const std::vector<int32_t> tokens = w.codec->tokenize(text);
  const std::vector<int32_t> a = some_context(81, 20, true), b = some_context(82, 20, true);
  const double plain = w.codec->ideal_bits(tokens, 0, -1);
  const double given_a = w.codec->ideal_bits(tokens, 0, -1, 1, &a);
  EXPECT_NE(given_a, plain);
  EXPECT_NE(given_a, w.codec->ideal_bits(tokens, 0, -1, 1, &b));
  // Decoding a file with another context of the same fingerprint is impossible, so check the
  // decoder really conditions: the conditioned payload is not the plain one.
  LmCodecOptions o = opts(0, 4, 1);
  const std::string plain_file = w.codec->compress(text, o);
  o.context = &a;
  const std::string given_file = w.codec->compress(text, o);
  EXPECT_NE(Container::parse(plain_file, "p").chunks[0].payload, Container::parse(given_file, "g").chunks[0].payload);
}

TEST(LmCodecContext, MissingWrongOrEditedContextIsRefusedNamingTheFingerprint) {
  World& w = world();
  const std::string text = make_text(2600, 400);
  const std::vector<int32_t> ctx = some_context(91, 15, true);
  std::vector<int32_t> edited = ctx;
  edited.back() = edited.back() == 5 ? 6 : 5;
  const std::string fp = context_fingerprint(ctx), edited_fp = context_fingerprint(edited);
  for (const bool compact : {false, true}) {
    LmCodecOptions o = compact ? compact_opts(0, 1) : opts(0, 4, 1);
    o.context = &ctx;
    const std::string file = w.codec->compress(text, o);
    o.context = nullptr;
    const std::string plain = w.codec->compress(text, o);
    const std::string named = compact ? fp.substr(0, 4) : fp.substr(0, 12);
    const std::string what = compact ? "compact" : "full";
    std::string msg = refusal_of([&] { w.codec->decompress(file, "x.lz", 1); });
    EXPECT_NE(msg.find("x.lz: coded given a context"), std::string::npos) << what << ": " << msg;
    EXPECT_NE(msg.find(named), std::string::npos) << what << ": " << msg;
    msg = refusal_of([&] { w.codec->decompress(file, "x.lz", 1, nullptr, nullptr, &edited); });
    EXPECT_NE(msg.find(named), std::string::npos) << what << ": " << msg;
    EXPECT_NE(msg.find(edited_fp.substr(0, 12)), std::string::npos) << what << ": " << msg;
    msg = refusal_of([&] { w.codec->decompress(plain, "p.lz", 1, nullptr, nullptr, &ctx); });
    EXPECT_NE(msg.find("p.lz: coded without a context"), std::string::npos) << what << ": " << msg;
  }
  // A stored file needs no context: it decodes with or without one.
  LmCodecOptions o = compact_opts(0, 1);
  o.context = &ctx;
  const std::string noise = random_bytes(93, 2000);
  CodeStats s;
  const std::string stored = w.codec->compress(noise, o, &s);
  ASSERT_TRUE(s.stored);
  EXPECT_EQ(container_version(stored, "s"), kCompactVersion);
  EXPECT_EQ(w.codec->decompress(stored, "s", 1), noise);
  EXPECT_EQ(w.codec->decompress(stored, "s", 1, nullptr, nullptr, &ctx), noise);
}

TEST(LmArchive, ZeroOneAndManyDocumentsWithEmptyAndBinaryMembersRoundTrip) {
  World& w = world();
  CodecSet codecs(w.base);
  ArchiveCodingOptions opt;
  opt.threads = 1;
  const std::vector<std::vector<std::string>> sets = {
      {},
      {make_text(3000, 700)},
      {"", make_text(3001, 300), random_bytes(3002, 2000), std::string(1, '\0'), "", make_text(3003, 90)},
  };
  for (size_t s = 0; s < sets.size(); ++s) {
    const std::string path = archive_path("set" + std::to_string(s) + ".lza");
    const ArchiveWriteStats st = create_archive(path, codecs, docs_of(sets[s]), opt);
    EXPECT_EQ(st.members, sets[s].size());
    EXPECT_EQ(extract_all(path, codecs), sets[s]) << "set " << s;
  }
  // The binary member is stored as it is; text is coded.
  auto src = open_file_source(archive_path("set2.lza"));
  const ArchiveLayout L = read_archive_layout(*src, "set2.lza");
  EXPECT_FALSE(L.index.members[2].coded);
  EXPECT_EQ(L.index.members[2].data_len, 2000u);
  EXPECT_TRUE(L.index.members[1].coded);
  EXPECT_EQ(L.index.members[1].name, "dir/doc1.txt");
}

TEST(LmArchive, TenThousandDocuments) {
  World& w = world();
  CodecSet codecs(w.base);
  std::vector<std::string> bodies;
  for (uint32_t i = 0; i < 10000; ++i) bodies.push_back(i % 97 == 0 ? std::string() : make_text(40000 + i, 8 + i % 40));
  const std::string path = archive_path("many.lza");
  ArchiveCodingOptions opt;
  opt.threads = 1;
  create_archive(path, codecs, docs_of(bodies), opt);
  EXPECT_EQ(extract_all(path, codecs), bodies);
}

TEST(LmArchive, ExtractingOneMemberReadsOnlyItsBytesAndSurvivesOthersDamage) {
  World& w = world();
  CodecSet codecs(w.base);
  std::vector<std::string> bodies;
  for (uint32_t i = 0; i < 8; ++i) bodies.push_back(make_text(5000 + i, 200 + 50 * i));
  bodies.push_back(random_bytes(5100, 400));  // a stored member
  const std::string path = archive_path("ra.lza");
  ArchiveCodingOptions opt;
  create_archive(path, codecs, docs_of(bodies), opt);
  const size_t k = 5;
  {
    CountingFile src(path);
    const ArchiveLayout L = read_archive_layout(src, path);
    const ArchiveMember& m = L.index.members[k];
    src.reads.clear();
    EXPECT_EQ(extract_member(src, L, k, codecs, path), bodies[k]);
    for (const auto& [from, to] : src.reads) EXPECT_TRUE(from >= m.offset && to <= m.offset + m.data_len) << from << ".." << to;
  }
  // Damage every other member's data: member k still extracts; each damaged one is refused by name.
  std::string bytes = read_file(path);
  auto src0 = open_file_source(path);
  const ArchiveLayout L = read_archive_layout(*src0, path);
  for (size_t j = 0; j < bodies.size(); ++j)
    if (j != k) bytes[static_cast<size_t>(L.index.members[j].offset + L.index.members[j].data_len / 2)] ^= 0x10;
  const std::string bad_path = archive_path("ra-damaged.lza");
  write_file_atomic(bad_path, bytes);
  auto src = open_file_source(bad_path);
  const ArchiveLayout L2 = read_archive_layout(*src, bad_path);
  EXPECT_EQ(extract_member(*src, L2, k, codecs, bad_path), bodies[k]);
  ASSERT_FALSE(L2.index.members.back().coded);
  for (size_t j = 0; j < bodies.size(); ++j) {
    if (j == k) continue;
    const std::string msg = refusal_of([&] { extract_member(*src, L2, j, codecs, bad_path); });
    EXPECT_NE(msg.find("member '" + L2.index.members[j].name + "'"), std::string::npos) << msg;
  }
}

TEST(LmArchive, AppendingKeepsTheOldBytesAndAddsMembers) {
  World& w = world();
  CodecSet codecs(w.base);
  const std::string path = archive_path("append.lza");
  ArchiveCodingOptions opt;
  std::vector<std::string> first = {make_text(6000, 300), "", random_bytes(6001, 100)};
  create_archive(path, codecs, docs_of(first), opt);
  const std::string before = read_file(path);
  std::vector<std::string> second = {make_text(6002, 400), make_text(6003, 50)};
  std::vector<ArchiveDocument> more = docs_of(second);
  for (auto& d : more) d.name = "more/" + d.name;
  add_to_archive(path, codecs, more, opt);
  const std::string after = read_file(path);
  ASSERT_GT(after.size(), before.size());
  EXPECT_EQ(after.substr(0, before.size()), before) << "appending rewrote earlier bytes";
  std::vector<std::string> all = first;
  all.insert(all.end(), second.begin(), second.end());
  EXPECT_EQ(extract_all(path, codecs), all);
  add_to_archive(path, codecs, docs_of({"third time"}), opt);
  all.push_back("third time");
  EXPECT_EQ(extract_all(path, codecs), all);
  // A JSONL record cannot join an archive of files; the archive is left as it was.
  const std::string kept = read_file(path);
  EXPECT_THROW(add_to_archive(path, codecs, documents_from_jsonl("{\"text\": \"x\"}\n"), opt), std::invalid_argument);
  EXPECT_EQ(read_file(path), kept);
}

TEST(LmArchive, BothVersionsRoundTripWithExplicitChunkingAndAppendInTheirOwnVersion) {
  World& w = world();
  CodecSet codecs(w.base);
  for (int version : {kArchiveVersion, kArchiveVersionLegacy}) {
    SCOPED_TRACE("archive version " + std::to_string(version));
    const std::string path = archive_path("v" + std::to_string(version) + ".lza");
    ArchiveCodingOptions opt;
    opt.version = version;
    opt.chunk_tokens = 40;  // several chunks a document, written into the header
    opt.context_tokens = 8;
    std::vector<std::string> bodies = {make_text(6100, 400), "", random_bytes(6101, 80), make_text(6102, 120)};
    create_archive(path, codecs, docs_of(bodies), opt);
    {
      auto src = open_file_source(path);
      const ArchiveLayout L = read_archive_layout(*src, path);
      EXPECT_EQ(L.header.version, version);
      EXPECT_EQ(L.header.chunk_tokens, 40);
      EXPECT_GT(L.index.members[0].chunk_lens.size(), 1u);
      // Version 1 records a coded member's length; version 2 leaves it to the member's seal.
      EXPECT_EQ(L.index.members[0].original_bytes, version == kArchiveVersion ? 0u : bodies[0].size());
    }
    EXPECT_EQ(extract_all(path, codecs), bodies);
    opt.version = kArchiveVersion;  // add keeps the archive's own version whatever this says
    add_to_archive(path, codecs, docs_of({make_text(6103, 200)}), opt);
    bodies.push_back(make_text(6103, 200));
    auto src = open_file_source(path);
    EXPECT_EQ(read_archive_layout(*src, path).header.version, version);
    EXPECT_EQ(extract_all(path, codecs), bodies);
  }
}

TEST(LmArchive, JsonlRoundTripsByteForByte) {
  World& w = world();
  CodecSet codecs(w.base);
  std::string jsonl;
  for (uint32_t i = 0; i < 20; ++i)
    jsonl += "{\"text\": " + json_string_literal(make_text(7000 + i, 100 + 30 * i), i % 2) + ", \"prompt\": \"p" + std::to_string(i) +
             "\", \"model\": \"m\"}\n";
  jsonl += "not json at all\n\n{\"text\": \"\\u00E9 upper-case escape\"}\n{\"text\": \"last, no newline\"}";
  const std::string path = archive_path("records.lza");
  ArchiveCodingOptions opt;
  create_archive(path, codecs, documents_from_jsonl(jsonl), opt);
  std::string back;
  for (const auto& line : extract_all(path, codecs)) back += line;
  EXPECT_EQ(back, jsonl);
  // Appending records continues the JSONL file.
  add_to_archive(path, codecs, documents_from_jsonl("{\"text\": \"appended\"}\n"), opt);
  back.clear();
  for (const auto& line : extract_all(path, codecs)) back += line;
  EXPECT_EQ(back, jsonl + "{\"text\": \"appended\"}\n");
}

// ---- Conversation archives: each record's turns coded given the turns before them ---------------

namespace {

// The plain template (as gen's renderer has it): each earlier turn's text and "\n\n", tokenized
// turn by turn with the world's tokenizer.
struct PlainTurns : TurnRenderer {
  std::vector<int32_t> context(const std::vector<ConversationTurn>& before, const std::string&) const override {
    std::vector<int32_t> out;
    for (const auto& t : before) {
      const std::vector<int32_t> ids = world().tok->encode(t.text + "\n\n");
      out.insert(out.end(), ids.begin(), ids.end());
    }
    return out;
  }
};
TurnRendererFactory plain_renderers() {
  return [](ArchiveTurnTemplate) { return std::unique_ptr<TurnRenderer>(new PlainTurns); };
}

// A "messages" record of n turns: roles alternating, every third turn empty, Unicode in every
// other one, invalid UTF-8 in turn 1 (ensure_ascii false keeps the bytes as they are).
std::string conversation_line(uint32_t seed, size_t n, size_t bytes_per_turn, bool ascii) {
  std::string line = "{\"id\": " + std::to_string(seed) + ", \"messages\": [";
  for (size_t k = 0; k < n; ++k) {
    std::string content = k % 3 == 2 ? "" : make_text(seed * 100 + static_cast<uint32_t>(k), bytes_per_turn);
    if (k % 2 == 0 && !content.empty()) content += " caf\xC3\xA9 \xF0\x9F\x9A\x80";
    if (k == 1 && !ascii) content += " \xFF\xFE bytes";
    line += std::string(k ? ", " : "") + "{\"role\": \"" + (k % 2 ? "assistant" : "user") + "\", \"content\": " + json_string_literal(content, ascii) + "}";
  }
  return line + "], \"extra\": {\"kept\": [1, \"as it is\"]}}";
}

std::string extract_jsonl(const std::string& path, CodecSet& codecs) {
  auto src = open_file_source(path);
  const ArchiveLayout L = read_archive_layout(*src, path);
  std::vector<size_t> records;
  for (size_t k = 0; k < L.index.members.size(); ++k)
    if (!L.index.members[k].same_record) records.push_back(k);
  std::string out;
  AdapterSelector base_only(codecs, {});
  for (auto& e : archive_extract_members(*src, L, records, base_only, 1, path, nullptr, plain_renderers())) {
    if (e.error) std::rethrow_exception(e.error);
    out += e.doc;
  }
  return out;
}

}  // namespace

TEST(LmArchive, ConversationsRoundTripByteForByte) {
  World& w = world();
  CodecSet codecs(w.base);
  std::string jsonl;
  for (size_t n : {1u, 2u, 20u}) jsonl += conversation_line(static_cast<uint32_t>(n), n, 120, n == 2) + "\n";
  // A record longer than the model's 64 positions (the archive codes in 40-position chunks), the data's own
  // prompt/text shape, a lone text, a line that is not JSON, an empty line, no final newline.
  jsonl += conversation_line(40, 3, 900, false) + "\n";
  jsonl += "{\"text\": " + json_string_literal(make_text(41, 300), false) + ", \"prompt\": \"Tell me.\", \"model\": \"m\"}\n";
  jsonl += "{\"text\": \"alone\", \"n\": 1}\nnot json at all\n\n{\"prompt\": \"\", \"response\": \"last, no newline\"}";
  const std::vector<ArchiveDocument> docs = documents_from_jsonl(jsonl, true);
  ASSERT_EQ(docs.size(), 9u);
  EXPECT_EQ(docs[2].turns.size(), 20u);
  EXPECT_EQ(docs[4].turns.size(), 2u);
  EXPECT_TRUE(docs[5].turns.empty());
  ArchiveCodingOptions opt;
  opt.conversations = true;
  opt.renderers = plain_renderers();
  opt.chunk_tokens = 40;
  opt.context_tokens = 10;
  const std::string path = archive_path("conversations.lza");
  const ArchiveWriteStats st = create_archive(path, codecs, docs, opt);
  EXPECT_EQ(st.records, 9u);
  EXPECT_EQ(st.members, 1u + 2 + 20 + 3 + 2 + 1 + 1 + 1 + 2);
  EXPECT_EQ(extract_jsonl(path, codecs), jsonl);
  // Any member of a record gives the whole record, once.
  auto src = open_file_source(path);
  const ArchiveLayout L = read_archive_layout(*src, path);
  EXPECT_TRUE(L.header.flags & kArchiveConversations);
  const size_t last_of_20 = 1 + 2 + 19;
  ASSERT_TRUE(L.index.members[last_of_20].same_record);
  EXPECT_EQ(extract_member(*src, L, last_of_20, codecs, path, {}, plain_renderers()), conversation_line(20, 20, 120, false) + "\n");
  // Decoding a conversation archive needs a renderer; appending continues it turn by turn.
  EXPECT_THROW(extract_member(*src, L, 0, codecs, path), std::invalid_argument);
  const std::string more = conversation_line(50, 4, 80, true) + "\n";
  add_to_archive(path, codecs, documents_from_jsonl(more, true), opt);
  EXPECT_EQ(extract_jsonl(path, codecs), jsonl + more);
}

TEST(LmArchive, ConversationTurnsAreCodedGivenTheTurnsBeforeThem) {
  World& w = world();
  CodecSet codecs(w.base);
  const std::string prompt = make_text(61, 400), response = make_text(62, 500);
  const std::string line = "{\"prompt\": " + json_string_literal(prompt, false) + ", \"response\": " + json_string_literal(response, false) + "}\n";
  ArchiveCodingOptions opt;
  opt.conversations = true;
  opt.renderers = plain_renderers();
  const std::string path = archive_path("turns.lza");
  create_archive(path, codecs, documents_from_jsonl(line, true), opt);
  auto src = open_file_source(path);
  const ArchiveLayout L = read_archive_layout(*src, path);
  ASSERT_EQ(L.index.members.size(), 2u);
  const ArchiveMember &p = L.index.members[0], &r = L.index.members[1];
  EXPECT_EQ(p.role, "user");
  EXPECT_EQ(r.role, "assistant");
  ASSERT_TRUE(p.coded && r.coded);
  // The prompt from BOS alone (plain renders nothing before the first turn); the response is the
  // codec's file given the prompt's plain rendering: the same chunks, byte for byte.
  const std::vector<int32_t> ctx = w.tok->encode(prompt + "\n\n");
  LmCodecOptions co;
  co.format = ContainerFormat::Compact;
  co.threads = 1;
  const CompactFile alone = CompactFile::parse(w.codec->compress(prompt, co), "p");
  co.context = &ctx;
  const CompactFile given = CompactFile::parse(w.codec->compress(response, co), "r");
  EXPECT_EQ(given.version, kCompactVersionContext);
  std::string given_data, alone_data;
  for (const auto& c : given.chunks) given_data += c;
  for (const auto& c : alone.chunks) alone_data += c;
  EXPECT_EQ(read_member_data(*src, r), given_data);
  EXPECT_EQ(read_member_data(*src, p), alone_data);
  // A reader that renders the turns otherwise gets a refusal, never other text.
  const TurnRendererFactory other = [](ArchiveTurnTemplate) {
    struct Shifted : TurnRenderer {
      std::vector<int32_t> context(const std::vector<ConversationTurn>& before, const std::string& role) const override {
        std::vector<int32_t> c = PlainTurns().context(before, role);
        if (!c.empty()) c.back() = c.back() == 5 ? 6 : 5;
        return c;
      }
    };
    return std::unique_ptr<TurnRenderer>(new Shifted);
  };
  const std::string msg = refusal_of([&] { extract_member(*src, L, 1, codecs, path, {}, other); });
  EXPECT_NE(msg.find("turns.lza: member 'line 1' turn 1"), std::string::npos) << msg;
  // -A: each turn takes the cheaper of the base and the adapters given its context; all extract.
  make_adapter("chat", 21);
  const std::string jsonl = line + conversation_line(70, 5, 200, false) + "\n";
  create_archive(path, codecs, documents_from_jsonl(jsonl, true), opt, {"", temp_root() + "/adapters", ""});
  auto src2 = open_file_source(path);
  const ArchiveLayout L2 = read_archive_layout(*src2, path);
  std::string back;
  for (size_t k = 0; k < L2.index.members.size(); ++k)
    if (!L2.index.members[k].same_record)
      back += extract_member(*src2, L2, k, codecs, path, {"", temp_root() + "/adapters", ""}, plain_renderers());
  EXPECT_EQ(back, jsonl);
}

TEST(LmArchive, PerDocumentAdaptersAreFoundOnExtract) {
  World& w = world();
  CodecSet codecs(w.base);
  const std::string chat = make_adapter("chat", 21);
  std::vector<std::string> bodies;
  for (uint32_t i = 0; i < 6; ++i) bodies.push_back(make_text(8000 + i, 300));
  const std::string path = archive_path("adapted.lza");
  create_archive(path, codecs, docs_of(bodies), {}, {chat, "", ""});
  auto src = open_file_source(path);
  const ArchiveLayout L = read_archive_layout(*src, path);
  ASSERT_EQ(L.index.adapters.size(), 1u);
  EXPECT_EQ(L.index.adapters[0].domain, "chat");
  EXPECT_EQ(extract_all(path, codecs, temp_root() + "/adapters"), bodies);
  // Without the adapter, the member is refused by name.
  const std::string msg = refusal_of([&] { extract_member(*src, L, 0, codecs, path); });
  EXPECT_NE(msg.find("doc0.txt"), std::string::npos) << msg;
  // -A routing: each document gets the cheaper of the base and the adapter; all extract.
  create_archive(path, codecs, docs_of(bodies), {}, {"", temp_root() + "/adapters", ""});
  EXPECT_EQ(extract_all(path, codecs, temp_root() + "/adapters"), bodies);
}
