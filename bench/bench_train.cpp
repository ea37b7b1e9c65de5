// Training throughput on random weights and random tokens: a LoRA step against a full
// fine-tuning step on the same batch, each in a fresh child process so that its peak resident
// memory (VmHWM) is its own, and the achieved FLOP/s as a fraction of a large matmul's.
// Sizes: model-small (vocab 4096, hidden 256, 4 layers, 8/4 heads, intermediate 688, untied) and
// smollm (SmolLM2-135M's shape: vocab 49152, hidden 576, 30 layers, 9/3 heads, intermediate 1536, tied).
//
//   bench_train [--size small|smollm] [--threads N] [--batch B] [--seq T] [--steps S] [--rank R] [--top K]
//               (--top K: also a LoRA step with adapters on the top K layers only, lora.layers: top K)
//   bench_train --side-by-side [--peer PATH] [--steps S]   lorazip vs the PyTorch-Python peer
//               (bench/peer_torch_lora.py of ../shared), both sizes, 1 and 2 threads, one table
//   bench_train --ddp [--size S] [--batch B] [--seq T] [--steps S]   the trainer (train_lora and
//               pretrain on random tokens) as 1 process x 1 thread, 1 process x 2 threads and
//               2 data-parallel processes x 1 thread (c10d/Gloo on localhost, global batch B split
//               B/2 per rank): tokens/s and all-reduce seconds per step (rank 0's, waiting included)
//   bench_train --quality [--threads 1]   a fixed-seed 200-step LoRA run on a learnable synthetic
//               token process; prints the validation bits/token (compare before / after a change)
//
// FLOPs per token (N = parameters of every matmul: the 7 projections per layer + lm_head; the
// embedding lookup is not a matmul; A = attention score+mix FLOPs of one forward per token =
// 4 * layers * T * heads * head_dim, the full T x T product the model computes):
//   full fine-tuning: 6 N + 3 A              (forward 2N, input gradients 2N, weight gradients 2N)
//   LoRA:             4 N + 6 N_lora + 3 A   (no weight gradients for the frozen base)
#include <sys/wait.h>
#include <unistd.h>

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/alloc.h"
#include "bench/run_self.h"
#include "adapters/adapter.h"
#include "model/config.h"
#include "model/llama.h"
#include "train/distributed.h"
#include "train/train.h"

using namespace lorazip;

namespace {

struct Args {
  std::string size = "small";  // "small" or "smollm"
  int threads = 0;
  int64_t batch = 8;
  int64_t seq = 256;
  int64_t steps = 10;
  int64_t rank = 8;
  int64_t top = 0;   // --top K: LoRA on the top K layers (0 = every layer)
  std::string mode;  // internal: "lora", "full", "matmul"; "quality" (--quality)
  bool side_by_side = false;
  bool ddp = false;  // --ddp
  bool plain_loss = false;  // --plain-loss: cross_entropy over whole logits instead of linear_cross_entropy
  std::string peer;  // the peer script; empty = the default next to the source tree
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
      return argv[++i];
    };
    if (k == "--threads") a.threads = std::stoi(next());
    else if (k == "--batch") a.batch = std::stoll(next());
    else if (k == "--seq") a.seq = std::stoll(next());
    else if (k == "--steps") a.steps = std::stoll(next());
    else if (k == "--rank") a.rank = std::stoll(next());
    else if (k == "--top") a.top = std::stoll(next());
    else if (k == "--mode") a.mode = next();
    else if (k == "--size") a.size = next();
    else if (k == "--peer") a.peer = next();
    else if (k == "--side-by-side") a.side_by_side = true;
    else if (k == "--ddp") a.ddp = true;
    else if (k == "--plain-loss") a.plain_loss = true;
    else if (k == "--quality") a.mode = "quality";
    else if (k == "-h" || k == "--help") {
      std::printf("usage: bench_train [--size small|smollm] [--threads N (0 = all cores)] [--batch B] [--seq T] [--steps S] [--rank R] [--top K]\n"
                  "       bench_train --side-by-side [--peer PATH] [--steps S]\n"
                  "       bench_train --quality [--threads N]\n"
                  "       bench_train --ddp [--size S] [--batch B] [--seq T] [--steps S]\n");
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown argument " + k);
    }
  }
  if (a.size != "small" && a.size != "smollm")
    throw std::invalid_argument("--size must be small or smollm, got '" + a.size + "'");
  return a;
}

LlamaConfig bench_config(const std::string& size, int64_t seq) {
  LlamaConfig c;
  if (size == "smollm") {  // SmolLM2-135M's shape
    c.vocab_size = 49152;
    c.hidden_size = 576;
    c.num_hidden_layers = 30;
    c.num_attention_heads = 9;
    c.num_key_value_heads = 3;
    c.intermediate_size = 1536;
    c.tie_word_embeddings = true;
  } else {  // configs/model-small.yaml
    c.vocab_size = 4096;
    c.hidden_size = 256;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 4;
    c.intermediate_size = 688;
  }
  c.max_position_embeddings = std::max<int64_t>(seq, 512);
  return c;
}

int64_t vm_hwm_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Child: one kind of measurement, printed as "key=value ..." on stdout.
int run_mode(const Args& a) {
  set_torch_threads(a.threads);
  if (a.mode == "matmul") {
    const int64_t n = 2048;
    torch::Tensor x = torch::randn({n, n}), y = torch::randn({n, n});
    torch::mm(x, y);
    int64_t reps = 0;
    double t0 = now_s(), t = 0;
    while ((t = now_s() - t0) < 2.0 || reps < 3) {
      torch::Tensor z = torch::mm(x, y);
      ++reps;
    }
    std::printf("flops_per_s=%.6g hwm_kib=%lld\n", 2.0 * n * n * n * reps / t, (long long)vm_hwm_kib());
    return 0;
  }
  const LlamaConfig cfg = bench_config(a.size, a.seq);
  LlamaForCausalLM model(cfg);
  model->init_weights(0);
  model->train();
  std::vector<torch::Tensor> params;
  std::unique_ptr<LoraAdapter> adapter;
  if (a.mode == "lora") {
    for (auto& p : model->parameters()) p.set_requires_grad(false);
    LoraConfig lc;
    lc.r = a.rank;
    lc.top_layers = a.top;
    adapter = std::make_unique<LoraAdapter>(model, lc);
    adapter->attach(model);
    params = adapter->parameters();
  } else if (a.mode == "full") {
    params = model->parameters();
  } else {
    throw std::invalid_argument("unknown mode " + a.mode);
  }
  int64_t n_trainable = 0;
  for (auto& p : params) n_trainable += p.numel();
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-3).betas({0.9, 0.95}));

  torch::manual_seed(1);
  torch::Tensor batch = torch::randint(cfg.vocab_size, {a.batch, a.seq + 1}, torch::kInt64);
  torch::Tensor input = batch.narrow(1, 0, a.seq), target = batch.narrow(1, 1, a.seq).reshape({-1});
  double t_fwd = 0, t_bwd = 0, t_opt = 0;
  auto step = [&]() {
    double t0 = now_s();
    opt.zero_grad();
    // As the trainer does: the LM head and the loss fused, in row chunks (mean over the targets).
    torch::Tensor hidden = model->forward_hidden(input);  // (B, T, C)
    torch::Tensor loss =
        a.plain_loss ? torch::nn::functional::cross_entropy(torch::linear(hidden, model->lm_head_weight()).view({-1, cfg.vocab_size}), target)
                     : linear_cross_entropy(hidden.view({-1, cfg.hidden_size}), model->lm_head_weight(), target) /
                           static_cast<double>(target.numel());
    double t1 = now_s();
    loss.backward();
    double t2 = now_s();
    // As the trainer does: clipping and AdamW on one thread (see train/train.cpp).
    const int threads = at::get_num_threads();
    at::set_num_threads(1);
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    opt.step();
    at::set_num_threads(threads);
    double t3 = now_s();
    t_fwd += t1 - t0, t_bwd += t2 - t1, t_opt += t3 - t2;
  };
  step();  // warm-up: allocations, optimizer state
  t_fwd = t_bwd = t_opt = 0;
  double t0 = now_s();
  const std::clock_t c0 = std::clock();  // process CPU time: on a busy machine, steadier than wall time
  for (int64_t s = 0; s < a.steps; ++s) step();
  double t = now_s() - t0;
  const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  std::printf("tokens_per_s=%.6g step_s=%.6g fwd_s=%.6g bwd_s=%.6g opt_s=%.6g cpu_step_s=%.6g trainable=%lld hwm_kib=%lld threads=%d\n",
              static_cast<double>(a.batch * a.seq * a.steps) / t, t / a.steps, t_fwd / a.steps, t_bwd / a.steps,
              t_opt / a.steps, cpu / a.steps, (long long)n_trainable, (long long)vm_hwm_kib(), at::get_num_threads());
  return 0;
}

// Key=value pairs of a line such as "tokens_per_s=123 hwm_kib=456".
std::map<std::string, double> parse_kv(const std::string& out) {
  std::map<std::string, double> kv;
  std::istringstream in(out);
  std::string tok;
  while (in >> tok) {
    auto eq = tok.find('=');
    if (eq != std::string::npos) kv[tok.substr(0, eq)] = std::stod(tok.substr(eq + 1));
  }
  return kv;
}

std::map<std::string, double> run_child(const Args& a, const std::string& mode) {
  std::vector<std::string> args{"bench_train", "--mode", mode, "--size", a.size, "--threads", std::to_string(a.threads),
                                "--batch", std::to_string(a.batch), "--seq", std::to_string(a.seq), "--steps",
                                std::to_string(a.steps), "--rank", std::to_string(a.rank), "--top", std::to_string(a.top)};
  if (a.plain_loss) args.push_back("--plain-loss");
  return parse_kv(run_self(args, "child '" + mode + "'"));
}

// ---- data parallelism: the real trainer on 1 or 2 processes ---------------------------------------

// Child "ddp-lora" / "ddp-full": one rank (or the only process) of train_lora / pretrain on random
// documents, steps+1 steps (the first is not timed), no validation, checkpoint only at the end.
// Rank 0 prints tokens_per_s (global tokens over the timed steps' wall time) and comm_s per step.
int run_ddp_rank(const Args& a) {
  set_torch_threads(a.threads);
  std::shared_ptr<DistGroup> group = init_process_group_from_env(600);
  const LlamaConfig cfg = bench_config(a.size, a.seq);
  TrainData data;
  data.train.offsets.push_back(0);
  std::mt19937_64 rng(11);
  const int64_t docs = std::max<int64_t>(16, 2 * a.batch * (a.steps + 1));
  for (int64_t d = 0; d < docs; ++d) {
    for (int64_t t = 0; t < a.seq; ++t) data.train.tokens.push_back(3 + static_cast<int32_t>(rng() % (cfg.vocab_size - 3)));
    data.train.offsets.push_back(data.train.tokens.size());
    data.train.byte_lengths.push_back(static_cast<uint64_t>(a.seq) * 4);
  }
  char dir[] = "/tmp/bench_train_ddp_XXXXXX";
  if (!::mkdtemp(dir)) throw std::runtime_error("cannot create a temporary directory");
  RunOptions ro;
  ro.run_dir = std::string(dir) + "/run";
  ro.threads = a.threads;
  ro.dist = group;
  std::vector<double> elapsed, comm;
  ro.on_step = [&](const nlohmann::json& line) {
    elapsed.push_back(line.at("elapsed_s").get<double>());
    comm.push_back(line.value("comm_s", 0.0));
  };
  auto loop = [&](LoopConfig& c) {
    c.steps = a.steps + 1;
    c.batch_size = a.batch;
    c.seq_len = a.seq;
    c.warmup_steps = 0;
    c.eval_every = 0;
    c.checkpoint_every = 0;
  };
  if (a.mode == "ddp-lora") {
    LlamaForCausalLM base(cfg);
    base->init_weights(1);
    LoraConfig lora;
    lora.r = a.rank;
    TrainConfig tc;
    loop(tc);
    train_lora(base, lora, tc, data, AdapterInfo{}, std::string(dir) + "/out", ro);
  } else {
    PretrainConfig pc;
    loop(pc);
    pretrain(cfg, pc, data, "", std::string(dir) + "/out", ro);
  }
  if (!group || group->rank() == 0) {
    const double timed_s = elapsed.back() - elapsed.front();
    double comm_s = 0;
    for (size_t i = 1; i < comm.size(); ++i) comm_s += comm[i];
    std::printf("tokens_per_s=%.6g step_s=%.6g comm_s=%.6g\n", static_cast<double>(a.batch * a.seq * a.steps) / timed_s,
                timed_s / a.steps, comm_s / a.steps);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}

// Runs `world` copies of this program as the ranks of one job on localhost; returns rank 0's output.
std::map<std::string, double> run_ranks(const Args& a, const std::string& mode, int world, int threads) {
  std::vector<std::string> args{"bench_train", "--mode", mode, "--size", a.size, "--threads", std::to_string(threads),
                                "--batch", std::to_string(a.batch), "--seq", std::to_string(a.seq), "--steps",
                                std::to_string(a.steps), "--rank", std::to_string(a.rank)};
  if (world == 1) return parse_kv(run_self(args, "child '" + mode + "'"));
  const int port = 29700 + static_cast<int>(::getpid() % 200);
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe() failed");
  std::fflush(stdout);
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork() failed");
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      if (r == 0) dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      for (auto& s : args) argv.push_back(s.data());
      argv.push_back(nullptr);
      execv("/proc/self/exe", argv.data());
      _exit(127);
    }
    pids.push_back(pid);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  for (pid_t p : pids) {
    int status = 0;
    waitpid(p, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error("a data-parallel rank failed (status " + std::to_string(status) + ")");
  }
  return parse_kv(out);
}

int run_ddp(const Args& a) {
  const LlamaConfig cfg = bench_config(a.size, a.seq);
  std::printf("bench_train --ddp: %s, %lld params, global batch %lld x seq %lld, %lld timed steps (after one untimed), "
              "the trainer (train_lora / pretrain), random tokens, no validation\n\n",
              a.size == "small" ? "model-small" : "smollm", (long long)cfg.num_parameters(), (long long)a.batch, (long long)a.seq,
              (long long)a.steps);
  std::printf("| step | processes x threads | tokens/s | s/step | all-reduce s/step | vs 1 x 1 |\n|---|---|---:|---:|---:|---:|\n");
  for (const char* kind : {"lora", "full"}) {
    const std::string mode = std::string("ddp-") + kind;
    auto one = run_ranks(a, mode, 1, 1);
    auto two_threads = run_ranks(a, mode, 1, 2);
    auto two_procs = run_ranks(a, mode, 2, 1);
    auto row = [&](const char* who, std::map<std::string, double>& r, bool dist) {
      char comm[32] = "-";
      if (dist) std::snprintf(comm, sizeof comm, "%.3f", r["comm_s"]);
      std::printf("| %s | %s | %.0f | %.3f | %s | %.2fx |\n", kind == std::string("lora") ? "LoRA" : "full", who, r["tokens_per_s"],
                  r["step_s"], comm, r["tokens_per_s"] / one["tokens_per_s"]);
    };
    row("1 x 1", one, false);
    row("1 x 2", two_threads, false);
    row("2 x 1 (Gloo)", two_procs, true);
  }
  return 0;
}

// ---- quality: the trained result of a fixed-seed LoRA run ---------------------------------------

// A learnable token process over the first min(vocab, 256) ids: each token follows its predecessor
// through a fixed random permutation with probability 3/4, else it is uniform (8 bits/token for a
// model that knows nothing of it, ~2.8 for one that knows it all). The permutation is the same for
// every stream; `seed` picks the stream, so training and validation streams differ only by seed.
torch::Tensor synthetic_tokens(int64_t rows, int64_t len, int64_t vocab_in, uint64_t seed) {
  const int64_t vocab = std::min<int64_t>(vocab_in, 256);
  std::mt19937_64 perm_rng(7);
  std::vector<int64_t> perm(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) perm[static_cast<size_t>(i)] = i;
  std::shuffle(perm.begin(), perm.end(), perm_rng);
  std::mt19937_64 rng(seed);
  torch::Tensor t = torch::empty({rows, len}, torch::kInt64);
  auto acc = t.accessor<int64_t, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    int64_t prev = static_cast<int64_t>(rng() % static_cast<uint64_t>(vocab));
    for (int64_t i = 0; i < len; ++i) {
      acc[r][i] = prev;
      prev = (rng() % 4 != 0) ? perm[static_cast<size_t>(prev)] : static_cast<int64_t>(rng() % static_cast<uint64_t>(vocab));
    }
  }
  return t;
}

// 200 LoRA steps (r=8 on all projections, AdamW lr 3e-3, clip 1.0) of batch x seq tokens on a
// random-weight model, then the validation bits/token on 16 held-out sequences.
int run_quality(const Args& a) {
  set_torch_threads(a.threads);
  const LlamaConfig cfg = bench_config(a.size, a.seq);
  LlamaForCausalLM model(cfg);
  model->init_weights(0);
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  LoraConfig lc;
  lc.r = a.rank;
  LoraAdapter adapter(model, lc);
  adapter.attach(model);
  std::vector<torch::Tensor> params = adapter.parameters();
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(3e-3).betas({0.9, 0.95}));
  const int64_t steps = 200;
  auto bits = [&](const torch::Tensor& seqs) {  // mean next-token bits over (rows, seq + 1) tokens
    torch::Tensor target = seqs.narrow(1, 1, a.seq).reshape({-1});
    torch::Tensor hidden = model->forward_hidden(seqs.narrow(1, 0, a.seq)).reshape({-1, cfg.hidden_size});
    if (a.plain_loss)
      return torch::nn::functional::cross_entropy(torch::linear(hidden, model->lm_head_weight()), target) / std::log(2.0);
    return linear_cross_entropy(hidden, model->lm_head_weight(), target) / static_cast<double>(target.numel()) / std::log(2.0);
  };
  model->train();
  double t0 = now_s(), last_train = 0;
  for (int64_t s = 0; s < steps; ++s) {
    opt.zero_grad();
    torch::Tensor loss = bits(synthetic_tokens(a.batch, a.seq + 1, cfg.vocab_size, 1000 + static_cast<uint64_t>(s)));
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    opt.step();
    last_train = loss.item<double>();
  }
  const double train_s = now_s() - t0;
  model->eval();
  torch::NoGradGuard no_grad;
  const double val = bits(synthetic_tokens(16, a.seq + 1, cfg.vocab_size, 1)).item<double>();
  std::printf("quality: %lld LoRA steps of %lldx%lld tokens (size %s, r=%lld, %d threads) in %.1f s: "
              "last train %.4f bits/token, val_bits_per_token=%.6f\n",
              (long long)steps, (long long)a.batch, (long long)a.seq, a.size.c_str(), (long long)a.rank,
              at::get_num_threads(), train_s, last_train, val);
  return 0;
}

// ---- side by side with the PyTorch-Python peer -----------------------------------------------------

#ifndef LORAZIP_SOURCE_DIR
#define LORAZIP_SOURCE_DIR "."
#endif

std::string run_command(const std::string& cmd, int* status) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) throw std::runtime_error("cannot run: " + cmd);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  *status = pclose(f);
  return out;
}

// "peer lora: 510 tokens/s, 4.019 s/step, peak RSS 853 MiB, ..." -> tokens_per_s, hwm_kib.
std::map<std::string, double> run_peer(const std::string& script, const Args& a, const LlamaConfig& c,
                                       const std::string& mode) {
  std::ostringstream cmd;
  cmd << "/usr/bin/python3 '" << script << "' --mode " << mode << " --threads " << a.threads << " --hidden "
      << c.hidden_size << " --layers " << c.num_hidden_layers << " --heads " << c.num_attention_heads << " --kv-heads "
      << c.num_key_value_heads << " --intermediate " << c.intermediate_size << " --vocab " << c.vocab_size << " --seq "
      << a.seq << " --batch " << a.batch << " --rank " << a.rank << " --steps " << a.steps << " 2>&1";
  int status = 0;
  const std::string out = run_command(cmd.str(), &status);
  std::map<std::string, double> kv;
  double tps = 0, sps = 0, rss = 0;
  const auto at = out.find("peer " + mode + ":");
  if (status != 0 || at == std::string::npos ||
      std::sscanf(out.c_str() + at + mode.size() + 6, " %lf tokens/s, %lf s/step, peak RSS %lf MiB", &tps, &sps, &rss) != 3)
    throw std::runtime_error("peer '" + mode + "' failed: " + cmd.str() + "\n" + out);
  kv["tokens_per_s"] = tps;
  kv["hwm_kib"] = rss * 1024.0;
  return kv;
}

int run_side_by_side(Args a) {
  std::string script = a.peer.empty() ? std::string(LORAZIP_SOURCE_DIR) + "/../shared/bench/peer_torch_lora.py" : a.peer;
  bool peer = true;
  if (access(script.c_str(), R_OK) != 0) {
    std::printf("peer skipped: %s is not readable (give its path with --peer)\n", script.c_str());
    peer = false;
  } else {
    int status = 0;
    run_command("/usr/bin/python3 -c 'import torch' 2>&1", &status);
    if (status != 0) {
      std::printf("peer skipped: /usr/bin/python3 cannot import torch (Debian: apt-get install python3-torch)\n");
      peer = false;
    }
  }
  const int64_t small_steps = a.steps;
  std::printf("| size | batch | threads | step | lorazip tokens/s | peer tokens/s | ratio | lorazip peak RSS MiB | peer peak RSS MiB |\n");
  std::printf("|---|---|---:|---|---:|---:|---:|---:|---:|\n");
  for (const char* size : {"small", "smollm"}) {
    a.size = size;
    const bool big = a.size == "smollm";
    a.batch = big ? 1 : 8;
    a.seq = 256;
    a.steps = big ? std::max<int64_t>(1, small_steps / 3) : small_steps;
    const LlamaConfig cfg = bench_config(a.size, a.seq);
    for (int threads : {1, 2}) {
      a.threads = threads;
      std::map<std::string, std::map<std::string, double>> ours, theirs;
      for (const char* mode : {"lora", "full"}) {  // interleaved: ours, peer, ours, peer
        ours[mode] = run_child(a, mode);
        if (peer) theirs[mode] = run_peer(script, a, cfg, mode);
        auto& o = ours[mode];
        auto& t = theirs[mode];
        char tp[32] = "-", ratio[32] = "-", trss[32] = "-";
        if (peer) {
          std::snprintf(tp, sizeof tp, "%.0f", t["tokens_per_s"]);
          std::snprintf(ratio, sizeof ratio, "%.2fx", o["tokens_per_s"] / t["tokens_per_s"]);
          std::snprintf(trss, sizeof trss, "%.0f", t["hwm_kib"] / 1024.0);
        }
        std::printf("| %s | %lldx%lld | %d | %s | %.0f | %s | %s | %.0f | %s |\n", size, (long long)a.batch,
                    (long long)a.seq, threads, mode, o["tokens_per_s"], tp, ratio, o["hwm_kib"] / 1024.0, trss);
        std::fflush(stdout);
      }
      std::printf("| %s | %lldx%lld | %d | LoRA / full | %.2fx | %s | | %.2fx | |\n", size, (long long)a.batch,
                  (long long)a.seq, threads, ours["lora"]["tokens_per_s"] / ours["full"]["tokens_per_s"],
                  peer ? (std::to_string(theirs["lora"]["tokens_per_s"] / theirs["full"]["tokens_per_s"]).substr(0, 4) + "x").c_str() : "-",
                  ours["lora"]["hwm_kib"] / ours["full"]["hwm_kib"]);
      std::fflush(stdout);
    }
  }
  std::printf("(peer: /usr/bin/python3 %s; its lm_head is untied at every size)\n", script.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator_for_training();  // as lorazip does (LORAZIP_MALLOC_TUNING=0 for glibc's defaults)
  try {
    Args a = parse(argc, argv);
    if (a.mode == "quality") return run_quality(a);
    if (a.mode == "ddp-lora" || a.mode == "ddp-full") return run_ddp_rank(a);
    if (a.ddp) return run_ddp(a);
    if (!a.mode.empty()) return run_mode(a);
    if (a.side_by_side) return run_side_by_side(a);

    const LlamaConfig cfg = bench_config(a.size, a.seq);
    const int64_t C = cfg.hidden_size, L = cfg.num_hidden_layers, I = cfg.intermediate_size;
    const int64_t Hq = cfg.num_attention_heads * cfg.resolved_head_dim();
    const int64_t Hkv = cfg.num_key_value_heads * cfg.resolved_head_dim();
    const double n_proj = static_cast<double>(L * (C * Hq + 2 * C * Hkv + Hq * C + 3 * C * I));
    const double n_mm = n_proj + static_cast<double>(cfg.vocab_size * C);
    const double n_lora = static_cast<double>(L * a.rank * ((C + Hq) + 2 * (C + Hkv) + (Hq + C) + 3 * (C + I)));
    const double attn = 4.0 * L * a.seq * Hq;
    const double flops_full = 6 * n_mm + 3 * attn, flops_lora = 4 * n_mm + 6 * n_lora + 3 * attn;

    Args every_layer = a;
    every_layer.top = 0;
    auto mm = run_child(a, "matmul");
    auto lora = run_child(every_layer, "lora");
    std::map<std::string, double> lora_top;
    if (a.top > 0) lora_top = run_child(a, "lora");
    auto full = run_child(a, "full");
    const double peak = mm["flops_per_s"];

    std::printf("bench_train: %s (vocab %lld, hidden %lld, %lld layers, %lld/%lld heads, intermediate %lld%s), %lld params,\n",
                a.size == "small" ? "model-small" : "smollm", (long long)cfg.vocab_size, (long long)C, (long long)L,
                (long long)cfg.num_attention_heads, (long long)cfg.num_key_value_heads, (long long)I,
                cfg.tie_word_embeddings ? ", tied" : "", (long long)cfg.num_parameters());
    std::printf("  batch %lld x seq %lld = %lld tokens/step, %lld timed steps, %d threads, LoRA r=%lld on all 7 projections\n",
                (long long)a.batch, (long long)a.seq, (long long)(a.batch * a.seq), (long long)a.steps,
                (int)lora["threads"], (long long)a.rank);
    std::printf("  reference: 2048^3 float32 matmul = %.1f GFLOP/s (peak RSS %.0f MiB)\n\n", peak / 1e9,
                mm["hwm_kib"] / 1024.0);
    std::printf("| step | trainable params | tokens/s | s/step (fwd+loss / bwd / clip+AdamW) | peak RSS (MiB) | "
                "GFLOP/token | GFLOP/s | of matmul |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    auto row = [&](const char* name, std::map<std::string, double>& r, double fpt) {
      double achieved = fpt * r["tokens_per_s"];
      std::printf("| %s | %.0f | %.0f | %.3f (%.3f / %.3f / %.3f) | %.0f | %.4f | %.1f | %.1f%% |\n", name, r["trainable"],
                  r["tokens_per_s"], r["step_s"], r["fwd_s"], r["bwd_s"], r["opt_s"], r["hwm_kib"] / 1024.0, fpt / 1e9,
                  achieved / 1e9, 100.0 * achieved / peak);
    };
    row("LoRA", lora, flops_lora);
    if (a.top > 0) {
      // The top K layers: the forward is the whole model's; backward and the side paths only K layers'.
      const double k = static_cast<double>(a.top) / static_cast<double>(L);
      const double flops_top = 2 * n_mm + 2 * (k * n_proj + static_cast<double>(cfg.vocab_size * C)) + 6 * k * n_lora + (1 + 2 * k) * attn;
      const std::string name = "LoRA, top " + std::to_string(a.top) + " layers";
      row(name.c_str(), lora_top, flops_top);
    }
    row("full fine-tuning", full, flops_full);
    std::printf("\nLoRA / full: %.2fx tokens/s, %.2fx peak RSS\n", lora["tokens_per_s"] / full["tokens_per_s"],
                lora["hwm_kib"] / full["hwm_kib"]);
    if (a.top > 0)
      std::printf("LoRA top %lld / LoRA every layer: %.2fx tokens/s, %.2fx peak RSS\n", (long long)a.top,
                  lora_top["tokens_per_s"] / lora["tokens_per_s"], lora_top["hwm_kib"] / lora["hwm_kib"]);
    std::printf("FLOPs/token: full = 6N + 3A, LoRA = 4N + 6N_lora + 3A; N = %.0f matmul params, N_lora = %.0f, "
                "A = 4*layers*T*hidden = %.0f\n",
                n_mm, n_lora, attn);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
}
