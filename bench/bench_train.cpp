// Training throughput of the model-small size (vocab 4096, hidden 256, 4 layers, 8 heads, 4 kv
// heads, intermediate 688) on random weights and random tokens: a LoRA step against a full
// fine-tuning step on the same batch, each in a fresh child process so that its peak resident
// memory (VmHWM) is its own, and the achieved FLOP/s as a fraction of a large matmul's.
//
//   bench_train [--threads N] [--batch B] [--seq T] [--steps S] [--rank R]
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
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/run_self.h"
#include "adapters/adapter.h"
#include "model/config.h"
#include "model/llama.h"

using namespace lorazip;

namespace {

struct Args {
  int threads = 0;
  int64_t batch = 8;
  int64_t seq = 256;
  int64_t steps = 10;
  int64_t rank = 8;
  std::string mode;  // internal: "lora", "full", "matmul"
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
    else if (k == "--mode") a.mode = next();
    else if (k == "-h" || k == "--help") {
      std::printf("usage: bench_train [--threads N (0 = all cores)] [--batch B] [--seq T] [--steps S] [--rank R]\n");
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown argument " + k);
    }
  }
  return a;
}

LlamaConfig small_config(int64_t seq) {
  LlamaConfig c;
  c.vocab_size = 4096;
  c.hidden_size = 256;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.intermediate_size = 688;
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
  const LlamaConfig cfg = small_config(a.seq);
  LlamaForCausalLM model(cfg);
  model->init_weights(0);
  model->train();
  std::vector<torch::Tensor> params;
  std::unique_ptr<LoraAdapter> adapter;
  if (a.mode == "lora") {
    for (auto& p : model->parameters()) p.set_requires_grad(false);
    LoraConfig lc;
    lc.r = a.rank;
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
    torch::Tensor logits = model->forward(input);  // (B, T, V)
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits.view({-1, cfg.vocab_size}), target);
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
  for (int64_t s = 0; s < a.steps; ++s) step();
  double t = now_s() - t0;
  std::printf("tokens_per_s=%.6g step_s=%.6g fwd_s=%.6g bwd_s=%.6g opt_s=%.6g trainable=%lld hwm_kib=%lld threads=%d\n",
              static_cast<double>(a.batch * a.seq * a.steps) / t, t / a.steps, t_fwd / a.steps, t_bwd / a.steps,
              t_opt / a.steps, (long long)n_trainable, (long long)vm_hwm_kib(), at::get_num_threads());
  return 0;
}

std::map<std::string, double> run_child(const char* self, const Args& a, const std::string& mode) {
  const std::string out =
      run_self({self, "--mode", mode, "--threads", std::to_string(a.threads), "--batch", std::to_string(a.batch), "--seq",
                std::to_string(a.seq), "--steps", std::to_string(a.steps), "--rank", std::to_string(a.rank)},
               "child '" + mode + "'");
  std::map<std::string, double> kv;
  std::istringstream in(out);
  std::string tok;
  while (in >> tok) {
    auto eq = tok.find('=');
    if (eq != std::string::npos) kv[tok.substr(0, eq)] = std::stod(tok.substr(eq + 1));
  }
  return kv;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parse(argc, argv);
    if (!a.mode.empty()) return run_mode(a);

    const LlamaConfig cfg = small_config(a.seq);
    const int64_t C = cfg.hidden_size, L = cfg.num_hidden_layers, I = cfg.intermediate_size;
    const int64_t Hq = cfg.num_attention_heads * cfg.resolved_head_dim();
    const int64_t Hkv = cfg.num_key_value_heads * cfg.resolved_head_dim();
    const double n_proj = static_cast<double>(L * (C * Hq + 2 * C * Hkv + Hq * C + 3 * C * I));
    const double n_mm = n_proj + static_cast<double>(cfg.vocab_size * C);
    const double n_lora = static_cast<double>(L * a.rank * ((C + Hq) + 2 * (C + Hkv) + (Hq + C) + 3 * (C + I)));
    const double attn = 4.0 * L * a.seq * Hq;
    const double flops_full = 6 * n_mm + 3 * attn, flops_lora = 4 * n_mm + 6 * n_lora + 3 * attn;

    auto mm = run_child(argv[0], a, "matmul");
    auto lora = run_child(argv[0], a, "lora");
    auto full = run_child(argv[0], a, "full");
    const double peak = mm["flops_per_s"];

    std::printf("bench_train: model-small (vocab 4096, hidden 256, 4 layers, 8/4 heads, intermediate 688), %lld params,\n",
                (long long)cfg.num_parameters());
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
    row("full fine-tuning", full, flops_full);
    std::printf("\nLoRA / full: %.2fx tokens/s, %.2fx peak RSS\n", lora["tokens_per_s"] / full["tokens_per_s"],
                lora["hwm_kib"] / full["hwm_kib"]);
    std::printf("FLOPs/token: full = 6N + 3A, LoRA = 4N + 6N_lora + 3A; N = %.0f matmul params, N_lora = %.0f, "
                "A = 4*layers*T*hidden = %.0f\n",
                n_mm, n_lora, attn);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
}
