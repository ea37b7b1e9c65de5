// ddp_worker: one rank of a data-parallel training run for tests/test_ddp.cpp. It trains a tiny
// Llama (LoRA or pretraining) on synthetic counting documents with train/train.h, joining the job
// described by RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT (alone when they are unset), exactly
// as `lorazip train` does; it can kill or stop itself at a step to test fault handling.
//
//   ddp_worker lora|pretrain OUT_DIR RUN_DIR [--batch B] [--steps S] [--checkpoint-every N]
//              [--timeout S] [--resume] [--die RANK:STEP] [--hang RANK:STEP]
// Exit status: 0 done, 1 runtime error, 2 invalid argument (the message on stderr).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "adapters/adapter.h"
#include "model/llama.h"
#include "train/distributed.h"
#include "train/packing.h"
#include "train/train.h"

using namespace lorazip;

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

// Documents counting upwards modulo 50 (ids 3..52) from a random start.
DocSet counting_docs(int n_docs, uint64_t seed, int min_len, int max_len) {
  DocSet d;
  d.offsets.push_back(0);
  uint64_t s = seed;
  auto next = [&]() { return s = mix_seed(s, 17); };
  for (int i = 0; i < n_docs; ++i) {
    int len = min_len + static_cast<int>(next() % static_cast<uint64_t>(max_len - min_len + 1));
    int start = static_cast<int>(next() % 50);
    for (int t = 0; t < len; ++t) d.tokens.push_back(3 + (start + t) % 50);
    d.offsets.push_back(d.tokens.size());
    d.byte_lengths.push_back(static_cast<uint64_t>(len) * 3);
  }
  return d;
}

// "RANK:STEP" -> {rank, step}; {-1, 0} when absent.
std::pair<int, int64_t> parse_at(const std::string& v) {
  const size_t c = v.find(':');
  if (c == std::string::npos) throw std::invalid_argument("expected RANK:STEP, got '" + v + "'");
  return {std::stoi(v.substr(0, c)), std::stoll(v.substr(c + 1))};
}

int run(int argc, char** argv) {
  if (argc < 4) throw std::invalid_argument("usage: ddp_worker lora|pretrain OUT_DIR RUN_DIR [options]");
  const std::string mode = argv[1], out_dir = argv[2], run_dir = argv[3];
  int64_t batch = 4, steps = 8, checkpoint_every = 2;
  double timeout_s = 60;
  bool resume = false;
  std::pair<int, int64_t> die{-1, 0}, hang{-1, 0};
  for (int i = 4; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--batch") batch = std::stoll(value());
    else if (a == "--steps") steps = std::stoll(value());
    else if (a == "--checkpoint-every") checkpoint_every = std::stoll(value());
    else if (a == "--timeout") timeout_s = std::stod(value());
    else if (a == "--resume") resume = true;
    else if (a == "--die") die = parse_at(value());
    else if (a == "--hang") hang = parse_at(value());
    else throw std::invalid_argument("unknown option " + a);
  }
  set_torch_threads(1);
  std::shared_ptr<DistGroup> group = init_process_group_from_env(timeout_s);
  const int rank = group ? group->rank() : 0;

  TrainData data;
  data.train = counting_docs(60, 11, 5, 40);
  data.val = counting_docs(12, 12, 5, 40);
  RunOptions ro;
  ro.run_dir = run_dir;
  ro.resume = resume;
  ro.threads = 1;
  ro.dist = group;
  ro.on_step = [&](const nlohmann::json& line) {
    const int64_t step = line.at("step").get<int64_t>();
    if (rank == die.first && step == die.second) ::raise(SIGKILL);
    if (rank == hang.first && step == hang.second) ::raise(SIGSTOP);
  };

  TrainResult r;
  if (mode == "lora") {
    LlamaForCausalLM base(tiny_config());
    base->init_weights(1);
    LoraConfig lora;
    lora.r = 4;
    lora.alpha = 8;
    TrainConfig cfg;
    cfg.steps = steps;
    cfg.batch_size = batch;
    cfg.seq_len = 16;
    cfg.lr = 1e-2;
    cfg.min_lr = 1e-3;
    cfg.warmup_steps = 2;
    cfg.eval_every = 2;
    cfg.checkpoint_every = checkpoint_every;
    cfg.seed = 3;
    AdapterInfo info;
    info.domain = "counting";
    r = train_lora(base, lora, cfg, data, info, out_dir, ro);
  } else if (mode == "pretrain") {
    PretrainConfig cfg;
    cfg.steps = steps;
    cfg.batch_size = batch;
    cfg.seq_len = 16;
    cfg.lr = 5e-3;
    cfg.min_lr = 5e-4;
    cfg.warmup_steps = 2;
    cfg.eval_every = 3;
    cfg.checkpoint_every = checkpoint_every;
    cfg.seed = 5;
    r = pretrain(tiny_config(), cfg, data, "", out_dir, ro);
  } else {
    throw std::invalid_argument("mode must be lora or pretrain, got '" + mode + "'");
  }
  std::fprintf(stderr, "ddp_worker rank %d: %ld steps, val %.6f bits/token, stop %s\n", rank, static_cast<long>(r.steps),
               r.final_val_bits_per_token, r.stop_reason.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "ddp_worker: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ddp_worker: %s\n", e.what());
    return 1;
  }
}
