// Deterministic generation (gen/generate.h) and chat templates (gen/chat.h) on a tiny engine model:
// the same tokens on every kernel path and thread count, greedy = teacher-forced argmax at every
// step, stop tokens and max_tokens honoured, sampling reproducible per seed; ChatML recognised
// (SmolLM2's template) and other templates refused by name. Torch-free, a few seconds.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gen/chat.h"
#include "gen/context.h"
#include "gen/generate.h"
#include "model/gguf.h"
#include "model/gguf_tokenizer.h"
#include "tests/gen_tiny.h"

using namespace lorazip;
using namespace lorazip::gen;

namespace {

std::vector<int32_t> prompt_of(const std::string& text) {
  std::vector<int32_t> p = {test::kImStart};
  for (unsigned char c : text) p.push_back(c);
  return p;
}

SamplingOptions sampled(uint64_t seed, int64_t max_tokens) {
  SamplingOptions o;
  o.temperature = 0.9;
  o.top_k = 40;
  o.top_p = 0.95;
  o.seed = seed;
  o.max_tokens = max_tokens;
  return o;
}

// SmolLM2-135M-Instruct's tokenizer.chat_template, verbatim.
const char* kSmolTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + "
    "message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\n' }}{% endif %}";

}  // namespace

TEST(Generate, SameTokensOnEveryKernelPathAndThreadCount) {
  const std::vector<std::vector<int32_t>> prompts = {prompt_of("What is 2+3?"), prompt_of("Count: 1, 2,"), prompt_of("What is 2+3?")};
  std::vector<std::vector<int32_t>> reference;
  int paths = 0;
  for (engine::Isa isa : {engine::Isa::Scalar, engine::Isa::Sse2, engine::Isa::Avx2, engine::Isa::Avx512, engine::Isa::Neon}) {
    if (!engine::isa_available(isa)) continue;
    engine::set_isa(isa);
    auto model = test::tiny_model();  // the model binds the path chosen when it is built
    for (int threads : {1, 2, 3}) {
      std::vector<Generation> g = generate(*model, prompts, sampled(11, 40), threads);
      std::vector<Generation> s = sample(*model, prompts[1], 5, sampled(12, 30), threads);
      std::vector<std::vector<int32_t>> got;
      for (const auto& x : g) got.push_back(x.tokens);
      for (const auto& x : s) got.push_back(x.tokens);
      if (reference.empty()) reference = got;
      EXPECT_EQ(got, reference) << engine::isa_name(isa) << " with " << threads << " threads";
    }
    ++paths;
  }
  engine::set_isa(engine::select_isa());
  EXPECT_GE(paths, 1);
  // Streams 0 and 2 share a prompt but not a seed; samples of one prompt differ from each other.
  EXPECT_NE(reference[0], reference[2]);
  EXPECT_NE(reference[3], reference[4]);
}

TEST(Generate, GreedyIsTheTeacherForcedArgmaxAtEveryStep) {
  auto model = test::tiny_model();
  const std::vector<int32_t> prompt = prompt_of("Problem: add 12 and 30.");
  SamplingOptions o;
  o.max_tokens = 48;
  const Generation g = generate(*model, {prompt}, o, 1)[0];
  ASSERT_EQ(g.tokens.size(), 48u);
  EXPECT_EQ(g.positions, static_cast<int64_t>(prompt.size() + 47));
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), g.tokens.begin(), g.tokens.end());
  const int64_t V = model->config().vocab_size, T = static_cast<int64_t>(all.size());
  std::vector<float> logits(static_cast<size_t>(T * V));
  model->forward(all.data(), T, logits.data());
  for (size_t j = 0; j < g.tokens.size(); ++j) {
    const float* row = logits.data() + (prompt.size() - 1 + j) * V;
    int32_t best = 0;
    for (int32_t v = 1; v < V; ++v)
      if (row[v] > row[best]) best = v;
    ASSERT_EQ(g.tokens[j], best) << "step " << j;
  }
  // top_k = 1 at any temperature is greedy too.
  SamplingOptions k1 = sampled(5, 48);
  k1.top_k = 1;
  EXPECT_EQ(generate(*model, {prompt}, k1, 1)[0].tokens, g.tokens);
}

TEST(Generate, StopTokensAndMaxTokensAreHonoured) {
  auto model = test::tiny_model();
  const std::vector<int32_t> prompt = prompt_of("List: ");
  SamplingOptions o = sampled(3, 60);
  const Generation full = generate(*model, {prompt}, o, 1)[0];
  ASSERT_GE(full.tokens.size(), 6u);
  // Stopping at the 5th token's id ends the output right before its first occurrence.
  const int32_t stop = full.tokens[4];
  size_t first = 0;
  while (full.tokens[first] != stop) ++first;
  o.stop_tokens = {stop};
  const Generation cut = generate(*model, {prompt}, o, 1)[0];
  EXPECT_TRUE(cut.stopped);
  EXPECT_EQ(cut.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + static_cast<std::ptrdiff_t>(first)));
  o.stop_tokens.clear();
  o.max_tokens = 7;
  const Generation short_run = generate(*model, {prompt}, o, 1)[0];
  EXPECT_FALSE(short_run.stopped);
  EXPECT_EQ(short_run.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + 7));
  o.max_tokens = 0;
  EXPECT_TRUE(generate(*model, {prompt}, o, 1)[0].tokens.empty());
}

TEST(Generate, ContextLimitEndsGeneration) {
  test::TinyWeights w(7);
  w.cfg.max_position_embeddings = 20;
  engine::Model model(w.cfg, w.map);
  SamplingOptions o;
  o.max_tokens = 100;
  const Generation g = generate(model, {prompt_of("0123456789")}, o, 1)[0];  // 11 prompt tokens
  EXPECT_EQ(g.tokens.size(), 10u);  // positions 11..19 are fed, the 10th token needs none
  EXPECT_FALSE(g.stopped);
}

TEST(Generate, RefusesBadRequests) {
  auto model = test::tiny_model();
  SamplingOptions o;
  EXPECT_THROW(generate(*model, {{}}, o), std::invalid_argument);
  EXPECT_THROW(generate(*model, {{999}}, o), std::invalid_argument);
  o.temperature = -1;
  EXPECT_THROW(generate(*model, {{1}}, o), std::invalid_argument);
  o.temperature = 1;
  o.top_p = 0;
  EXPECT_THROW(generate(*model, {{1}}, o), std::invalid_argument);
  o.top_p = 1;
  o.stop_tokens = {test::kTinyVocab};
  EXPECT_THROW(generate(*model, {{1}}, o), std::invalid_argument);
}

TEST(Generate, SeededSamplingFollowsTheDocumentedDraw) {
  // Two tokens with logits ln 3 and 0 at temperature 1 -> probs 0.75, 0.25 (floats), integer
  // weights floor(p * 2^32); the draw r = next() % total picks token 0 iff r < w0.
  const float logits[2] = {1.0986123f, 0.0f};
  SamplingOptions o;
  o.temperature = 1;
  float probs[2];
  engine::softmax(logits, 2, probs);
  const uint64_t w0 = static_cast<uint64_t>(probs[0] * 4294967296.0f), w1 = static_cast<uint64_t>(probs[1] * 4294967296.0f);
  int zeros = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Rng a{seed}, b{seed};
    const int32_t t = pick_token(logits, 2, o, a);
    EXPECT_EQ(t, b.next() % (w0 + w1) < w0 ? 0 : 1);
    zeros += t == 0;
  }
  EXPECT_GT(zeros, 120);  // about 150 expected
  EXPECT_LT(zeros, 180);
}

TEST(ChatTemplate, RecognisesSmolLM2sChatML) {
  const std::vector<std::string> vocab = test::tiny_vocab();
  const ChatTemplate t = ChatTemplate::parse(kSmolTemplate, vocab, "smol");
  EXPECT_EQ(t.im_start(), test::kImStart);
  EXPECT_EQ(t.im_end(), test::kImEnd);
  EXPECT_EQ(t.default_system(), "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  auto tok = test::tiny_tokenizer();
  const std::vector<int32_t> ids = t.apply(*tok, {{"user", "Hi"}}, true);
  // <s>system\n...<e>\n<s>user\nHi<e>\n<s>assistant\n
  std::string text;
  for (int32_t id : ids) text += id == test::kImStart ? "<S>" : id == test::kImEnd ? "<E>" : std::string(1, static_cast<char>(id));
  EXPECT_EQ(text, "<S>system\n" + t.default_system() + "<E>\n<S>user\nHi<E>\n<S>assistant\n");
  // A system message of one's own replaces the default; markers inside content stay plain bytes.
  const std::vector<int32_t> own = t.apply(*tok, {{"system", "S"}, {"user", "<|im_end|>"}}, false);
  int markers = 0;
  for (int32_t id : own) markers += id >= 256;
  EXPECT_EQ(markers, 4);
  EXPECT_EQ(t.stop_tokens(), std::vector<int32_t>{test::kImEnd});
}

TEST(ChatTemplate, AcceptsPlainChatMLAndRefusesOthersByName) {
  const std::vector<std::string> vocab = test::tiny_vocab();
  const std::string plain =
      "{%- for message in messages %}{{- \"<|im_start|>\" + message.role + \"\\n\" + message.content + \"<|im_end|>\\n\" }}"
      "{%- endfor %}\n{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}";
  EXPECT_EQ(ChatTemplate::parse(plain, vocab, "plain").default_system(), "");
  const std::string llama3 =
      "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + "
      "'<|eot_id|>' }}{% endfor %}";
  try {
    ChatTemplate::parse(llama3, vocab, "llama3.gguf");
    FAIL() << "a Llama 3 template was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("llama3.gguf"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not recognised"), std::string::npos) << e.what();
  }
  for (const std::string& bad : {std::string("{% for message in messages %}"), std::string("hello"), std::string("{{ 'a' + "),
                                 std::string(kSmolTemplate) + "{{ raise_exception('x') }}", std::string("{{ '\\q' }}")})
    EXPECT_THROW(ChatTemplate::parse(bad, vocab, "bad"), std::runtime_error) << bad;
  std::vector<std::string> no_markers(vocab.begin(), vocab.begin() + 256);
  EXPECT_THROW(ChatTemplate::parse(kSmolTemplate, no_markers, "nomarkers"), std::runtime_error);
}

TEST(ChatTemplate, ReadsTheCachedSmolLM2Gguf) {
  const char* home = std::getenv("HOME");
  const std::string path = std::string(home ? home : "") + "/.cache/lorazip/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) GTEST_SKIP() << "no " << path << " (scripts/fetch_smollm2.sh downloads it)";
  std::fclose(f);
  const ChatTemplate t = ChatTemplate::from_gguf(GgufFile::open(path));
  EXPECT_EQ(t.im_start(), 1);
  EXPECT_EQ(t.im_end(), 2);
  EXPECT_FALSE(t.default_system().empty());
}

// The context of conditioned coding: a prompt rendered as a user turn (gen/context.h).
TEST(ContextTemplate, PlainChatMLAndAutoRenderAsDocumented) {
  auto tok = test::tiny_tokenizer();
  auto text_of = [](const std::vector<int32_t>& ids) {
    std::string t;
    for (int32_t id : ids) t += id == test::kImStart ? "<S>" : id == test::kImEnd ? "<E>" : std::string(1, static_cast<char>(id));
    return t;
  };
  const std::string prompt = "Add 2 and 3.<|im_end|>";  // a marker's text in the prompt stays bytes
  const gen::RenderedContext chat = gen::render_context("no-such-base", *tok, prompt, gen::ContextTemplate::ChatML);
  EXPECT_EQ(text_of(chat.tokens), "<S>user\n" + prompt + "<E>\n<S>assistant\n");
  EXPECT_EQ(chat.template_name, "chatml");
  int markers = 0;
  for (int32_t id : chat.tokens) markers += id >= 256;
  EXPECT_EQ(markers, 3);
  const gen::RenderedContext plain = gen::render_context("no-such-base", *tok, prompt, gen::ContextTemplate::Plain);
  EXPECT_EQ(plain.tokens, tok->encode(prompt + "\n\n"));
  EXPECT_EQ(plain.template_name, "plain");
  // auto: a base that is not a GGUF (so has no chat template lorazip reads) renders plain.
  EXPECT_EQ(gen::render_context("no-such-base", *tok, prompt, gen::ContextTemplate::Auto).tokens, plain.tokens);
  EXPECT_EQ(gen::parse_context_template("chatml"), gen::ContextTemplate::ChatML);
  EXPECT_THROW(gen::parse_context_template("llama3"), std::invalid_argument);
  // ChatML needs the markers in the vocabulary, and says so naming the base.
  BpeDefinition d;
  d.tokens = test::tiny_vocab();
  d.tokens.resize(256);
  d.types.assign(256, kBpeNormal);
  const Tokenizer bytes_only = Tokenizer::from_bpe(d, "bytes");
  try {
    gen::render_context("base-dir", bytes_only, prompt, gen::ContextTemplate::ChatML);
    FAIL() << "ChatML rendered without markers";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("base-dir: the vocabulary has no <|im_start|> token"), std::string::npos) << e.what();
  }
}

TEST(ContextTemplate, AutoUsesTheCachedSmolLM2sOwnTemplate) {
  const char* home = std::getenv("HOME");
  const std::string path = std::string(home ? home : "") + "/.cache/lorazip/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) GTEST_SKIP() << "no " << path << " (scripts/fetch_smollm2.sh downloads it)";
  std::fclose(f);
  const Tokenizer tok = load_tokenizer(path);
  const gen::RenderedContext r = gen::render_context(path, tok, "Hi", gen::ContextTemplate::Auto);
  const ChatTemplate t = ChatTemplate::from_gguf(GgufFile::open(path));
  EXPECT_EQ(r.tokens, t.user_prompt(tok, "Hi"));
  EXPECT_EQ(r.tokens.front(), 1);  // <|im_start|> of the default system message
  EXPECT_NE(r.template_name.find("system message"), std::string::npos) << r.template_name;
}
