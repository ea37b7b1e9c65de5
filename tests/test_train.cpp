// The trainer: the code-length evaluation convention, stateless packing, the schedule, LoRA
// training that leaves the base untouched and lowers bits/token, pretraining, and resume after an
// interruption ending with exactly the tensors of an uninterrupted run.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "adapters/adapter.h"
#include "common/fs.h"
#include "common/yaml_strict.h"
#include "model/checkpoint.h"
#include "model/llama.h"
#include "train/evaluate.h"
#include "train/packing.h"
#include "train/train.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

LlamaConfig tiny_config() {
  LlamaConfig c;
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 32;
  return c;
}

LlamaForCausalLM tiny_model(uint64_t seed = 1) {
  LlamaForCausalLM m(tiny_config());
  m->init_weights(seed);
  return m;
}

// Documents that count upwards by `stride` modulo 50 (ids 3..52) from a random start: easy to learn.
DocSet counting_docs(int n_docs, uint64_t seed, int min_len, int max_len, int stride = 1) {
  DocSet d;
  d.offsets.push_back(0);
  uint64_t s = seed;
  auto next = [&]() { return s = mix_seed(s, 17); };
  for (int i = 0; i < n_docs; ++i) {
    int len = min_len + static_cast<int>(next() % static_cast<uint64_t>(max_len - min_len + 1));
    int start = static_cast<int>(next() % 50);
    for (int t = 0; t < len; ++t) d.tokens.push_back(3 + (start + stride * t) % 50);
    d.offsets.push_back(d.tokens.size());
    d.byte_lengths.push_back(static_cast<uint64_t>(len) * 3);
  }
  return d;
}

TrainData counting_data() {
  TrainData data;
  data.train = counting_docs(60, 11, 5, 40);
  data.val = counting_docs(12, 12, 5, 40);
  return data;
}

std::string temp_dir(const std::string& name) {
  std::string d = (fs::temp_directory_path() / ("lorazip_test_train_" + name + "_" + std::to_string(::getpid()))).string();
  fs::remove_all(d);
  return d;
}

// Direct reference for one chunk: -log2 p of each token given BOS + the chunk's earlier tokens.
double chunk_bits(LlamaForCausalLM& m, const std::vector<int64_t>& chunk) {
  std::vector<int64_t> in = {1};
  in.insert(in.end(), chunk.begin(), chunk.end() - 1);
  torch::NoGradGuard ng;
  torch::Tensor logp = torch::log_softmax(m->forward(torch::tensor(in).unsqueeze(0)), -1)[0];  // (T, V)
  double bits = 0;
  for (size_t t = 0; t < chunk.size(); ++t) bits -= logp[t][chunk[t]].item<double>() / std::log(2.0);
  return bits;
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A tiny base pretrained for 40 steps on documents counting by `stride` (written to `base_dir`; its
// run directory removed afterwards).
void pretrain_counting_base(const std::string& base_dir, const std::string& run_dir, int stride) {
  TrainData counting;
  counting.train = counting_docs(60, 21, 5, 40, stride);
  PretrainConfig pc;
  pc.steps = 40;
  pc.batch_size = 4;
  pc.seq_len = 32;
  pc.lr = 1e-2;
  pc.min_lr = 1e-3;
  pc.warmup_steps = 4;
  RunOptions po;
  po.run_dir = run_dir;
  pretrain(tiny_config(), pc, counting, "", base_dir, po);
  fs::remove_all(po.run_dir);
}

}  // namespace

TEST(Evaluate, DocumentBitsFollowTheChunkConvention) {
  auto m = tiny_model();
  DocSet docs = counting_docs(3, 5, 10, 10);
  // A long document: with context 16, chunks of 15 tokens, each started from BOS.
  for (int t = 0; t < 40; ++t) docs.tokens.push_back(3 + (t * 7) % 50);
  docs.offsets.push_back(docs.tokens.size());
  docs.byte_lengths.push_back(40);
  // An empty document costs nothing.
  docs.offsets.push_back(docs.tokens.size());
  docs.byte_lengths.push_back(0);

  auto bits = document_bits(m, docs, /*context=*/16, /*batch_tokens=*/4096);
  ASSERT_EQ(bits.size(), 5u);
  for (size_t d = 0; d < 3; ++d) {
    std::vector<int64_t> chunk(docs.doc(d), docs.doc(d) + docs.doc_len(d));
    EXPECT_NEAR(bits[d].bits, chunk_bits(m, chunk), 1e-4 * bits[d].bits);
    EXPECT_EQ(bits[d].tokens, 10);
  }
  double want = 0;
  for (size_t off = 0; off < 40; off += 15) {
    std::vector<int64_t> chunk(docs.doc(3) + off, docs.doc(3) + std::min<size_t>(off + 15, 40));
    want += chunk_bits(m, chunk);
  }
  EXPECT_NEAR(bits[3].bits, want, 1e-4 * want);
  EXPECT_EQ(bits[3].tokens, 40);
  EXPECT_EQ(bits[4].bits, 0.0);
  EXPECT_EQ(bits[4].tokens, 0);

  EvalSummary s = evaluate(m, docs, EvalOptions{16, 4096, -1});
  EXPECT_NEAR(s.bits_per_token(), mean_bits_per_token(bits), 1e-9);
  EXPECT_EQ(s.bytes, 3u * 30 + 40);
  EXPECT_NEAR(s.bits_per_byte(), s.bits / 130.0, 1e-12);
}

TEST(Evaluate, ResultsDoNotDependOnBatching) {
  auto m = tiny_model();
  DocSet docs = counting_docs(25, 9, 1, 70);
  auto one_by_one = document_bits(m, docs, 32, 1);  // one chunk per forward pass
  auto batched = document_bits(m, docs, 32, 100000);
  ASSERT_EQ(one_by_one.size(), batched.size());
  for (size_t d = 0; d < docs.num_docs(); ++d) EXPECT_NEAR(one_by_one[d].bits, batched[d].bits, 1e-5 * batched[d].bits);
  // A subset comes back in the order asked for.
  auto sub = document_bits(m, docs, 32, 512, {7, 2});
  EXPECT_NEAR(sub[0].bits, batched[7].bits, 1e-5 * batched[7].bits);
  EXPECT_NEAR(sub[1].bits, batched[2].bits, 1e-5 * batched[2].bits);
  // Evaluation leaves the model's mode alone.
  m->train();
  document_bits(m, docs, 32, 512, {0});
  EXPECT_TRUE(m->is_training());
}

TEST(Packing, WindowsArePureFunctionsOfSeedAndIndex) {
  DocSet docs = counting_docs(7, 3, 1, 9);
  PackedStream a(docs, 1, 42), b(docs, 1, 42), c(docs, 1, 43);
  const int64_t T = 8;
  std::vector<int32_t> wa(T + 1), wb(T + 1), wc(T + 1), next(T + 1);
  std::vector<uint8_t> fa(T + 1), fb(T + 1), fc(T + 1), fn(T + 1);
  bool any_diff = false;
  for (int64_t g : {30, 0, 5, 29, 1000, 3}) {  // any order: no iterator state
    a.window(g, T + 1, T, wa.data(), fa.data());
    b.window(g, T + 1, T, wb.data(), fb.data());
    c.window(g, T + 1, T, wc.data(), fc.data());
    EXPECT_EQ(wa, wb);
    EXPECT_EQ(fa, fb);
    any_diff = any_diff || wa != wc;
    // Consecutive windows overlap by exactly one token (stride T, length T+1).
    a.window(g + 1, T + 1, T, next.data(), fn.data());
    EXPECT_EQ(wa[T], next[0]);
    for (int64_t t = 0; t <= T; ++t) EXPECT_EQ(fa[t] != 0, wa[t] == 1);
  }
  EXPECT_TRUE(any_diff);  // another seed gives another order
  // Each epoch is a permutation of all documents, and different epochs differ.
  auto e0 = a.epoch_order(0), e1 = a.epoch_order(1);
  EXPECT_EQ(std::set<uint32_t>(e0.begin(), e0.end()).size(), docs.num_docs());
  EXPECT_NE(e0, e1);
  // The stream of one epoch is BOS + document for each document of the epoch's order.
  std::vector<int32_t> expect;
  for (uint32_t d : e0) {
    expect.push_back(1);
    expect.insert(expect.end(), docs.doc(d), docs.doc(d) + docs.doc_len(d));
  }
  std::vector<int32_t> got(expect.size());
  std::vector<uint8_t> flags(expect.size());
  a.window(0, static_cast<int64_t>(expect.size()), 1, got.data(), flags.data());
  EXPECT_EQ(got, expect);
}

// Conditioned training: contexts are read after BOS and never targets, in packing and in evaluation.
TEST(Packing, ContextsComeAfterBosAndAreNeverTargets) {
  DocSet docs = counting_docs(5, 4, 2, 6);
  std::vector<std::vector<int32_t>> ctx = {{60, 61}, {}, {62}, {63, 60, 61}, {}};
  docs.set_contexts(ctx);
  PackedStream a(docs, 1, 7);
  EXPECT_EQ(a.epoch_tokens(), static_cast<int64_t>(docs.tokens.size() + 6 + docs.num_docs()));
  std::vector<int32_t> expect;
  std::vector<uint8_t> expect_flags;
  for (uint32_t d : a.epoch_order(0)) {
    expect.push_back(1);
    expect_flags.push_back(1);
    for (int32_t t : ctx[d]) expect.push_back(t), expect_flags.push_back(1);
    for (size_t k = 0; k < docs.doc_len(d); ++k) expect.push_back(docs.doc(d)[k]), expect_flags.push_back(0);
  }
  std::vector<int32_t> got(expect.size());
  std::vector<uint8_t> flags(expect.size());
  a.window(0, static_cast<int64_t>(expect.size()), 1, got.data(), flags.data());
  EXPECT_EQ(got, expect);
  EXPECT_EQ(flags, expect_flags);
  // Concatenation keeps each document's context; a set without contexts joins with empty ones.
  DocSet plain = counting_docs(2, 9, 2, 4);
  const DocSet both = concat_docsets({&docs, &plain});
  ASSERT_TRUE(both.has_contexts());
  EXPECT_EQ(both.context_len(3), 3u);
  EXPECT_EQ(both.context(3)[0], 63);
  EXPECT_EQ(both.context_len(5), 0u);
  EXPECT_EQ(both.context_len(6), 0u);
  EXPECT_THROW(docs.set_contexts({{1}}), std::invalid_argument);
}

TEST(Evaluate, ContextsAreReadFirstAndNotCounted) {
  auto m = tiny_model();
  DocSet docs = counting_docs(2, 5, 10, 10);
  for (int t = 0; t < 40; ++t) docs.tokens.push_back(3 + (t * 7) % 50);  // longer than one chunk
  docs.offsets.push_back(docs.tokens.size());
  docs.byte_lengths.push_back(40);
  // Document 2's context is longer than half a chunk (15 / 2 = 7): its last 7 tokens are read.
  const std::vector<int32_t> long_ctx = {40, 41, 42, 43, 44, 45, 46, 47, 48, 49};
  docs.set_contexts({{55, 56, 57}, {}, long_ctx});
  auto bits = document_bits(m, docs, /*context=*/16, /*batch_tokens=*/4096);
  // The reference: BOS + context + document, summed over the document's positions only.
  auto given_bits = [&](const std::vector<int64_t>& ctx, const std::vector<int64_t>& chunk) {
    std::vector<int64_t> all = ctx;
    all.insert(all.end(), chunk.begin(), chunk.end());
    std::vector<int64_t> in = {1};
    in.insert(in.end(), all.begin(), all.end() - 1);
    torch::NoGradGuard ng;
    torch::Tensor logp = torch::log_softmax(m->forward(torch::tensor(in).unsqueeze(0)), -1)[0];
    double b = 0;
    for (size_t t = ctx.size(); t < all.size(); ++t) b -= logp[static_cast<int64_t>(t)][all[t]].item<double>() / std::log(2.0);
    return b;
  };
  std::vector<int64_t> d0(docs.doc(0), docs.doc(0) + 10), d1(docs.doc(1), docs.doc(1) + 10);
  EXPECT_NEAR(bits[0].bits, given_bits({55, 56, 57}, d0), 1e-4 * bits[0].bits);
  EXPECT_NEAR(bits[1].bits, chunk_bits(m, d1), 1e-4 * bits[1].bits);
  EXPECT_GT(std::abs(bits[0].bits - chunk_bits(m, d0)), 1e-3) << "the context changed nothing";
  // Document 2: the first chunk reads 7 context tokens and codes 8; then chunks of 15 from BOS.
  const std::vector<int64_t> tail(long_ctx.end() - 7, long_ctx.end());
  double want = given_bits(tail, std::vector<int64_t>(docs.doc(2), docs.doc(2) + 8));
  for (size_t off = 8; off < 40; off += 15)
    want += chunk_bits(m, std::vector<int64_t>(docs.doc(2) + off, docs.doc(2) + std::min<size_t>(off + 15, 40)));
  EXPECT_NEAR(bits[2].bits, want, 1e-4 * want);
  EXPECT_EQ(bits[2].tokens, 40);
}

TEST(Schedule, WarmupThenCosineToMinLr) {
  LoopConfig c;
  c.steps = 100;
  c.warmup_steps = 10;
  c.lr = 1e-3;
  c.min_lr = 1e-4;
  EXPECT_NEAR(learning_rate(c, 0), 1e-4, 1e-12);
  EXPECT_NEAR(learning_rate(c, 9), 1e-3, 1e-12);
  EXPECT_NEAR(learning_rate(c, 10), 1e-3, 1e-12);
  EXPECT_NEAR(learning_rate(c, 99), 1e-4, 1e-12);
  for (int s = 11; s < 100; ++s) EXPECT_LE(learning_rate(c, s), learning_rate(c, s - 1) + 1e-15);
}

TEST(TrainLora, OnlyLoraChangesAndBitsGoDown) {
  // The base is pretrained on another "domain" (counting by 3); the adapter learns counting by 1.
  const std::string dir = temp_dir("lora"), run = temp_dir("lora_run");
  pretrain_counting_base(dir + "/base", run + "_base", 3);
  LlamaForCausalLM base = load_hf_model(dir + "/base");
  std::map<std::string, torch::Tensor> before;
  for (auto& p : base->named_parameters()) before.emplace(p.key(), p.value().detach().clone());
  const std::string fp = model_fingerprint(base);

  TrainData data = counting_data();
  LoraConfig lora;
  lora.r = 4;
  TrainConfig cfg;
  cfg.steps = 60;
  cfg.batch_size = 4;
  cfg.seq_len = 32;
  cfg.lr = 1e-2;
  cfg.min_lr = 1e-3;
  cfg.warmup_steps = 4;
  cfg.eval_every = 10;
  cfg.checkpoint_every = 20;
  AdapterInfo info;
  info.domain = "counting";
  info.base_model_name_or_path = "tiny";
  RunOptions opt;
  opt.run_dir = run;
  TrainResult r = train_lora(base, lora, cfg, data, info, dir + "/counting", opt);

  // The base is bit-identical, has no side path left, and its parameters train again.
  for (auto& p : base->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), before.at(p.key()))) << p.key();
    EXPECT_TRUE(p.value().requires_grad()) << p.key();
  }
  for (const auto& [name, lin] : base->projections()) EXPECT_FALSE(lin->lora_A.defined()) << name;
  EXPECT_EQ(model_fingerprint(base), fp);

  EXPECT_EQ(r.steps, 60);
  EXPECT_EQ(r.stop_reason, "steps");
  EXPECT_EQ(r.tokens, 60 * 4 * 32);
  ASSERT_TRUE(std::isfinite(r.base_val_bits_per_token));
  EXPECT_LT(r.best_val_bits_per_token, 0.8 * r.base_val_bits_per_token)
      << "base " << r.base_val_bits_per_token << " best " << r.best_val_bits_per_token;

  // The saved adapter is the best one and reproduces the best validation figure.
  AdapterInfo saved = LoraAdapter::read_info(dir + "/counting");
  EXPECT_EQ(saved.domain, "counting");
  EXPECT_EQ(saved.base_fingerprint, fp);
  EXPECT_EQ(saved.steps, r.best_step);
  EXPECT_DOUBLE_EQ(saved.val_bits_per_token, r.best_val_bits_per_token);
  LoraAdapter a = LoraAdapter::load(dir + "/counting", base);
  a.attach(base);
  EvalSummary s = evaluate(base, data.val);
  EXPECT_NEAR(s.bits_per_token(), r.best_val_bits_per_token, 1e-6 * r.best_val_bits_per_token);
  a.detach();

  // metrics.jsonl: step 0 (the base) and one line per step; copied next to the adapter.
  auto lines = read_metrics(run + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), 61u);
  EXPECT_EQ(lines[0]["step"], 0);
  EXPECT_EQ(lines[60]["step"], 60);
  for (const char* k : {"lr", "train_bits_per_token", "val_bits_per_token", "val_bits_per_byte", "tokens_per_s", "elapsed_s"})
    EXPECT_TRUE(lines[60].contains(k)) << k;
  EXPECT_FALSE(lines[5].contains("val_bits_per_token"));
  EXPECT_TRUE(file_exists(dir + "/counting/metrics.jsonl"));
  fs::remove_all(dir);
  fs::remove_all(run);
}

// A base pretrained on counting runs; documents that start by repeating their context's one token
// and then count on. Trained on conditioned loss, the adapter learns to read the context (where
// the base would count on, it repeats); trained from BOS alone on the same documents it never sees
// the context, and codes the documents given it worse.
TEST(TrainLora, ConditionedLossLearnsFromTheContext) {
  const std::string dir = temp_dir("cond");
  pretrain_counting_base(dir + "/base", dir + "_base_run", 1);
  auto with_contexts = [](DocSet d) {
    std::vector<std::vector<int32_t>> ctx(d.num_docs());
    for (size_t k = 0; k < d.num_docs(); ++k) ctx[k] = {d.doc(k)[0]};
    d.set_contexts(ctx);
    return d;
  };
  TrainData given;
  given.train = with_contexts(counting_docs(200, 31, 2, 4));
  given.val = with_contexts(counting_docs(40, 32, 2, 4));
  TrainData alone;
  alone.train = counting_docs(200, 31, 2, 4);
  alone.val = given.val;  // both validated given the contexts: what the codec will code
  LoraConfig lora;
  lora.r = 8;
  TrainConfig cfg;
  cfg.steps = 80;
  cfg.batch_size = 8;
  cfg.seq_len = 32;
  cfg.lr = 1e-2;
  cfg.min_lr = 1e-3;
  cfg.warmup_steps = 4;
  cfg.eval_every = 20;
  cfg.checkpoint_every = 40;
  AdapterInfo info;
  info.domain = "counting";
  info.base_model_name_or_path = "tiny";
  std::vector<TrainResult> r;
  for (const TrainData* data : {&given, &alone}) {
    LlamaForCausalLM base = load_hf_model(dir + "/base");
    RunOptions opt;
    opt.run_dir = dir + "/run" + std::to_string(r.size());
    r.push_back(train_lora(base, lora, cfg, *data, info, dir + "/a" + std::to_string(r.size()), opt));
  }
  fs::remove_all(dir);
  EXPECT_DOUBLE_EQ(r[0].base_val_bits_per_token, r[1].base_val_bits_per_token);
  EXPECT_LT(r[0].best_val_bits_per_token, 0.8 * r[1].best_val_bits_per_token)
      << "conditioned " << r[0].best_val_bits_per_token << ", from BOS alone " << r[1].best_val_bits_per_token << ", base "
      << r[0].base_val_bits_per_token;
}

TEST(TrainLora, ResumeAfterInterruptionGivesTheSameAdapter) {
  auto base = tiny_model();
  TrainData data = counting_data();
  LoraConfig lora;
  lora.r = 4;
  lora.dropout = 0.1;  // the per-step dropout seed must survive the resume too
  TrainConfig cfg;
  cfg.steps = 14;
  cfg.batch_size = 3;
  cfg.seq_len = 24;
  cfg.grad_accum = 2;
  cfg.warmup_steps = 3;
  cfg.eval_every = 4;
  cfg.checkpoint_every = 4;
  cfg.early_stopping_patience = 0;
  cfg.seed = 9;
  const std::string root = temp_dir("resume");
  AdapterInfo info;
  info.domain = "counting";

  RunOptions whole;
  whole.run_dir = root + "/run_whole";
  TrainResult a = train_lora(base, lora, cfg, data, info, root + "/whole", whole);

  RunOptions cut;
  cut.run_dir = root + "/run_cut";
  cut.halt_after_step = 10;  // "killed" after step 10; the last checkpoint is step 8
  TrainResult h = train_lora(base, lora, cfg, data, info, root + "/cut", cut);
  EXPECT_EQ(h.stop_reason, "halted");
  EXPECT_FALSE(fs::exists(root + "/cut"));
  cut.halt_after_step = 0;
  cut.resume = true;
  TrainResult b = train_lora(base, lora, cfg, data, info, root + "/cut", cut);
  EXPECT_TRUE(b.resumed);
  EXPECT_EQ(b.steps, 14);

  EXPECT_EQ(read_file(root + "/whole/adapter_model.safetensors"), read_file(root + "/cut/adapter_model.safetensors"));
  EXPECT_EQ(a.best_step, b.best_step);
  EXPECT_EQ(a.best_val_bits_per_token, b.best_val_bits_per_token);
  EXPECT_EQ(a.final_val_bits_per_token, b.final_val_bits_per_token);
  EXPECT_EQ(a.final_train_bits_per_token, b.final_train_bits_per_token);
  EXPECT_EQ(a.tokens, b.tokens);
  // The metrics agree line by line (apart from timings) and have no duplicated steps.
  auto la = read_metrics(whole.run_dir + "/metrics.jsonl"), lb = read_metrics(cut.run_dir + "/metrics.jsonl");
  ASSERT_EQ(la.size(), lb.size());
  for (size_t i = 0; i < la.size(); ++i) {
    for (auto* j : {&la[i], &lb[i]}) j->erase("tokens_per_s"), j->erase("elapsed_s");
    EXPECT_EQ(la[i], lb[i]) << i;
  }

  // A checkpoint from another config is refused, naming the file.
  TrainConfig other = cfg;
  other.lr = 5e-3;
  std::string e = error_of([&] { train_lora(base, lora, other, data, info, root + "/cut", cut); });
  EXPECT_NE(e.find("checkpoint.pt"), std::string::npos) << e;
  fs::remove_all(root);
}

// A real kill -9: the test re-runs its own binary as a child that trains and SIGKILLs itself
// right after step 9's metrics line (its last checkpoint is step 6); the parent resumes the run.
namespace {
TrainConfig kill_test_config() {
  TrainConfig cfg;
  cfg.steps = 12;
  cfg.batch_size = 3;
  cfg.seq_len = 32;
  cfg.warmup_steps = 2;
  cfg.eval_every = 3;
  cfg.checkpoint_every = 3;
  cfg.seed = 4;
  return cfg;
}
}  // namespace

TEST(TrainLora, KilledProcessResumesToTheSameAdapter) {
  auto base = tiny_model();
  TrainData data = counting_data();
  LoraConfig lora;
  lora.r = 4;
  const TrainConfig cfg = kill_test_config();
  if (const char* child_root = std::getenv("LORAZIP_TEST_KILL_CHILD")) {
    RunOptions opt;
    opt.threads = 1;
    opt.run_dir = std::string(child_root) + "/run_killed";
    opt.on_step = [](const nlohmann::json& line) {
      if (line["step"] == 9) ::kill(::getpid(), SIGKILL);
    };
    train_lora(base, lora, cfg, data, AdapterInfo{}, std::string(child_root) + "/killed", opt);
    FAIL() << "the child should have been killed";
  }
  const std::string root = temp_dir("kill");
  fs::create_directories(root);
  // The same thread count on both sides of the kill (the contract is same machine, same threads).
  const int threads_before = at::get_num_threads();
  RunOptions whole;
  whole.threads = 1;
  whole.run_dir = root + "/run_whole";
  TrainResult a = train_lora(base, lora, cfg, data, AdapterInfo{}, root + "/whole", whole);

  std::string filter = "--gtest_filter=TrainLora.KilledProcessResumesToTheSameAdapter";
  // The child inherits this process's environment (OPENBLAS_CORETYPE and the like pick the kernels
  // whose floats both runs must share), plus the kill switch and one OpenMP thread.
  std::vector<std::string> env_strings = {"LORAZIP_TEST_KILL_CHILD=" + root, "OMP_NUM_THREADS=1"};
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    if (kv.rfind("LORAZIP_TEST_KILL_CHILD=", 0) != 0 && kv.rfind("OMP_NUM_THREADS=", 0) != 0) env_strings.push_back(kv);
  }
  std::vector<char*> envp;
  for (auto& kv : env_strings) envp.push_back(kv.data());
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>("test_train"), filter.data(), nullptr};
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execve("/proc/self/exe", argv, envp.data());
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  EXPECT_FALSE(fs::exists(root + "/killed"));
  EXPECT_EQ(read_metrics(root + "/run_killed/metrics.jsonl").back()["step"], 9);

  RunOptions resume;
  resume.threads = 1;
  resume.run_dir = root + "/run_killed";
  resume.resume = true;
  TrainResult b = train_lora(base, lora, cfg, data, AdapterInfo{}, root + "/killed", resume);
  at::set_num_threads(threads_before);
  EXPECT_TRUE(b.resumed);
  EXPECT_EQ(read_file(root + "/whole/adapter_model.safetensors"), read_file(root + "/killed/adapter_model.safetensors"));
  EXPECT_EQ(a.best_val_bits_per_token, b.best_val_bits_per_token);
  auto la = read_metrics(whole.run_dir + "/metrics.jsonl"), lb = read_metrics(resume.run_dir + "/metrics.jsonl");
  ASSERT_EQ(la.size(), lb.size());
  for (size_t i = 0; i < la.size(); ++i) EXPECT_EQ(la[i]["train_bits_per_token"], lb[i]["train_bits_per_token"]) << i;
  fs::remove_all(root);
}

TEST(TrainLora, EarlyStoppingKeepsTheBestAdapter) {
  auto base = tiny_model();
  TrainData data = counting_data();
  LoraConfig lora;
  TrainConfig cfg;
  cfg.steps = 60;
  cfg.batch_size = 2;
  cfg.seq_len = 16;
  cfg.lr = 0.5;  // far too high: validation gets worse quickly
  cfg.min_lr = 0.5;
  cfg.warmup_steps = 0;
  cfg.eval_every = 2;
  cfg.early_stopping_patience = 2;
  const std::string root = temp_dir("early");
  RunOptions opt;
  opt.run_dir = root + "/run";
  TrainResult r = train_lora(base, lora, cfg, data, AdapterInfo{}, root + "/a", opt);
  EXPECT_EQ(r.stop_reason, "early_stopping");
  EXPECT_LT(r.steps, 60);
  EXPECT_LE(r.best_val_bits_per_token, r.final_val_bits_per_token);
  EXPECT_LE(r.best_val_bits_per_token, r.base_val_bits_per_token);
  LoraAdapter a = LoraAdapter::load(root + "/a", base);
  a.attach(base);
  EXPECT_NEAR(evaluate(base, data.val).bits_per_token(), r.best_val_bits_per_token, 1e-6 * r.best_val_bits_per_token);
  a.detach();
  fs::remove_all(root);
}

TEST(Pretrain, LearnsWritesAnHfDirectoryAndResumesExactly) {
  LlamaConfig mc = tiny_config();
  TrainData data = counting_data();
  PretrainConfig cfg;
  cfg.steps = 30;
  cfg.batch_size = 4;
  cfg.seq_len = 32;
  cfg.lr = 1e-2;
  cfg.min_lr = 1e-3;
  cfg.warmup_steps = 5;
  cfg.eval_every = 10;
  cfg.checkpoint_every = 10;
  const std::string root = temp_dir("pretrain");
  RunOptions opt;
  opt.run_dir = root + "/run";
  TrainResult r = pretrain(mc, cfg, data, "", root + "/base", opt);
  EXPECT_EQ(r.steps, 30);
  EXPECT_LT(r.final_val_bits_per_token, 0.6 * std::log2(64.0));  // far below a uniform guess
  LlamaForCausalLM m = load_hf_model(root + "/base");
  EXPECT_NEAR(evaluate(m, data.val, EvalOptions{0, 8192, -1}, spread_indices(data.val.num_docs(), cfg.eval_docs))
                  .bits_per_token(),
              r.final_val_bits_per_token, 1e-6 * r.final_val_bits_per_token);

  RunOptions cut;
  cut.run_dir = root + "/run_cut";
  cut.halt_after_step = 15;
  pretrain(mc, cfg, data, "", root + "/base_cut", cut);
  cut.halt_after_step = 0;
  cut.resume = true;
  TrainResult b = pretrain(mc, cfg, data, "", root + "/base_cut", cut);
  EXPECT_TRUE(b.resumed);
  EXPECT_EQ(read_file(root + "/base/model.safetensors"), read_file(root + "/base_cut/model.safetensors"));
  EXPECT_EQ(r.final_val_bits_per_token, b.final_val_bits_per_token);
  fs::remove_all(root);
}

TEST(TrainConfigYaml, SectionsAreStrict) {
  YamlMap root = YamlMap::load_string(
      "train:\n  steps: 10\n  lr: 0.01\n  early_stopping_patience: 3\n"
      "pretrain:\n  domains: [chat, creative]\n  steps: 5\n  time_limit_s: 60\n",
      "t.yaml");
  YamlMap t = root.sub("train");
  TrainConfig tc = TrainConfig::from_yaml(t, ".");
  EXPECT_EQ(tc.steps, 10);
  EXPECT_EQ(tc.early_stopping_patience, 3);
  YamlMap p = root.sub("pretrain");
  PretrainConfig pc = PretrainConfig::from_yaml(p, ".");
  EXPECT_EQ(pc.domains, (std::vector<std::string>{"chat", "creative"}));
  EXPECT_EQ(pc.time_limit_s, 60);

  YamlMap bad = YamlMap::load_string("train:\n  steps: 10\n  learning_rate: 0.1\n", "t.yaml");
  YamlMap bt = bad.sub("train");
  std::string e = error_of([&] { TrainConfig::from_yaml(bt, "."); });
  EXPECT_NE(e.find("learning_rate"), std::string::npos) << e;
  YamlMap neg = YamlMap::load_string("train:\n  min_lr: 0.5\n  lr: 0.1\n", "t.yaml");
  YamlMap nt = neg.sub("train");
  e = error_of([&] { TrainConfig::from_yaml(nt, "."); });
  EXPECT_NE(e.find("train.min_lr"), std::string::npos) << e;
}

// ---- linear_cross_entropy: the fused, chunked LM head + loss ------------------------------------

// Value and gradients (hidden and weight) equal plain cross_entropy(linear(h, W)) with reduction
// sum and ignore_index, in float64 so that only a wrong formula can fail; chunk sizes that do and
// do not divide N, and 0 (the automatic size).
TEST(TrainLinearCrossEntropy, MatchesPlainOpsValueAndGradients) {
  torch::manual_seed(3);
  const int64_t N = 13, C = 6, V = 11;
  for (int64_t chunk : {0, 1, 4, 13, 64}) {
    torch::Tensor h = torch::randn({N, C}, torch::kDouble).requires_grad_(true);
    torch::Tensor w = torch::randn({V, C}, torch::kDouble).requires_grad_(true);
    torch::Tensor t = torch::randint(V, {N}, torch::kInt64);
    t[2] = -100;
    t[7] = -100;
    torch::Tensor fused = lorazip::linear_cross_entropy(h, w, t, -100, chunk);
    fused.mul(0.7).backward();  // a non-unit upstream gradient
    torch::Tensor gh = h.grad().clone(), gw = w.grad().clone();
    h.grad().zero_();
    w.grad().zero_();
    torch::Tensor plain = torch::nn::functional::cross_entropy(
        torch::linear(h, w), t, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum).ignore_index(-100));
    plain.mul(0.7).backward();
    EXPECT_NEAR(fused.item<double>(), plain.item<double>(), 1e-10) << "chunk " << chunk;
    EXPECT_TRUE(torch::allclose(gh, h.grad(), 1e-10, 1e-12)) << "chunk " << chunk;
    EXPECT_TRUE(torch::allclose(gw, w.grad(), 1e-10, 1e-12)) << "chunk " << chunk;
  }
}

// A frozen weight gets no gradient and the hidden gradient is still right; under NoGradGuard the
// value is unchanged.
TEST(TrainLinearCrossEntropy, FrozenWeightAndNoGrad) {
  torch::manual_seed(4);
  torch::Tensor h = torch::randn({9, 5}, torch::kDouble).requires_grad_(true);
  torch::Tensor w = torch::randn({7, 5}, torch::kDouble);
  torch::Tensor t = torch::randint(7, {9}, torch::kInt64);
  lorazip::linear_cross_entropy(h, w, t, -100, 4).backward();
  EXPECT_FALSE(w.grad().defined());
  torch::Tensor gh = h.grad().clone();
  h.grad().zero_();
  torch::nn::functional::cross_entropy(torch::linear(h, w), t,
                                       torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
      .backward();
  EXPECT_TRUE(torch::allclose(gh, h.grad(), 1e-10, 1e-12));
  torch::NoGradGuard no_grad;
  EXPECT_NEAR(lorazip::linear_cross_entropy(h, w, t).item<double>(),
              torch::nn::functional::cross_entropy(torch::linear(h, w), t,
                                                   torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                  .item<double>(),
              1e-10);
  EXPECT_THROW(lorazip::linear_cross_entropy(h, w, torch::full({9}, 7, torch::kInt64)), std::invalid_argument);
  EXPECT_THROW(lorazip::linear_cross_entropy(h, w, t, -100, -1), std::invalid_argument);
}

// Training devices (docs/training.md, 'CUDA'): cpu always; cuda only on a CUDA build with a GPU,
// refused otherwise with a message that says which of the two is missing.
TEST(TrainDevice, CpuResolvesAndUnknownOrUnavailableDevicesAreRefused) {
  EXPECT_EQ(resolve_training_device("cpu", 0), "cpu");
  EXPECT_EQ(resolve_training_device("cpu", 3), "cpu");
  try {
    resolve_training_device("tpu", 0);
    ADD_FAILURE() << "device tpu accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'tpu' is not known"), std::string::npos) << e.what();
  }
#ifndef LORAZIP_CUDA
  try {
    resolve_training_device("cuda", 0);
    ADD_FAILURE() << "device cuda accepted by a build without CUDA";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("built against a libtorch without CUDA"), std::string::npos) << e.what();
  }
#else
  if (!torch::cuda::is_available()) {
    EXPECT_THROW(resolve_training_device("cuda", 0), std::invalid_argument);
  } else {
    EXPECT_EQ(resolve_training_device("cuda", 0), "cuda:0");
    EXPECT_THROW(resolve_training_device("cuda", static_cast<int>(torch::cuda::device_count())), std::invalid_argument);
  }
#endif
}
