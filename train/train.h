// The trainer: full-parameter pretraining of a fresh Llama, and LoRA training of a domain adapter on
// a frozen base. Both minimise code length: mean cross-entropy of next-token prediction, reported
// in bits per token (nats / ln 2) and bits per byte (see train/evaluate.h for the convention).
//
// Shared machinery: AdamW (beta1 0.9, beta2 0.95, eps 1e-8) with linear warm-up then cosine decay
// to min_lr, global-norm gradient clipping, gradient accumulation, and sequence packing: documents
// are joined BOS-separated, in a per-epoch shuffled order, into one stream cut into windows of
// seq_len + 1 tokens (stride seq_len). BOS separators are inputs, never targets. Which windows
// step s uses is a pure function of (seed, s), and dropout is reseeded from (seed, s) at every
// step, so a resumed run needs no iterator state.
//
// Faults: run_dir/checkpoint.pt (trainable tensors, AdamW state, step, counters, best adapter) is
// replaced atomically every checkpoint_every steps and at the end. With resume=true a run killed at
// any point continues from the last checkpoint and ends with exactly the tensors and metrics of an
// uninterrupted run on the same machine and thread count. A checkpoint written for another config,
// base model or corpus is refused.
//
// Outputs: run_dir/metrics.jsonl (one JSON object per step: step, lr, train_bits_per_token,
// grad_norm, tokens_per_s, elapsed_s; on evaluation steps also val_bits_per_token and
// val_bits_per_byte), copied into the output directory at the end.
//   pretrain   -> out_dir: Hugging Face Llama directory (config.json, model.safetensors, tokenizer.model)
//   train_lora -> adapter_dir: PEFT directory (adapter_config.json, adapter_model.safetensors,
//                 lorazip.json) holding the adapter with the best validation bits/token.
// Torch-free header.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/token_store.h"

namespace lorazip {

class YamlMap;
class LlamaForCausalLM;
struct LlamaConfig;
struct LoraConfig;
struct AdapterInfo;
class TokenStore;
class DistGroup;

// Loop settings shared by `pretrain:` and `train:`.
struct LoopConfig {
  int64_t steps = 1000;            // optimizer steps, >= 1
  int64_t batch_size = 8;          // sequences per micro-batch, >= 1
  int64_t seq_len = 0;             // tokens per sequence, 2..max_position_embeddings; 0 = max_position_embeddings
  double lr = 1e-3;                // peak learning rate, > 0
  double min_lr = 1e-4;            // end of the cosine decay, 0..lr
  int64_t warmup_steps = 50;       // linear warm-up from lr/warmup_steps to lr, >= 0 (capped at steps)
  double weight_decay = 0.0;       // AdamW decoupled decay (matrices only in pretraining), >= 0
  double grad_clip = 1.0;          // max global gradient norm; 0 = off
  int64_t grad_accum = 1;          // micro-batches per optimizer step, >= 1
  int64_t eval_every = 100;        // steps between validation passes; 0 = only at the end
  int64_t eval_docs = 64;          // validation documents per pass (evenly spread); 0 = all
  int64_t checkpoint_every = 100;  // steps between checkpoints; 0 = only at the end
  uint64_t seed = 0;               // data order, dropout and (pretraining) initialisation
  double time_limit_s = 0;         // stop (and finish normally) once this much training time has passed; 0 = off

  // std::invalid_argument naming "<section>.<field>" for a value out of range.
  void validate(const std::string& section) const;
  nlohmann::json to_json() const;
};

// `pretrain:` section: full-parameter training of a fresh model on the train split of `domains`.
struct PretrainConfig : LoopConfig {
  std::vector<std::string> domains;  // token-store domains to train on; empty = all of them

  PretrainConfig();
  // m is the section (m.sub("pretrain")); strict: calls m.finish().
  static PretrainConfig from_yaml(YamlMap& m, const std::string& base_dir);
  nlohmann::json to_json() const;
};

// `train:` section: a LoRA adapter for one domain on a frozen base.
struct TrainConfig : LoopConfig {
  int64_t early_stopping_patience = 0;  // stop after this many evaluations without a new best; 0 = off
  // Conditioned loss: each response is trained on (and validated) given its prompt, rendered as
  // eval.context_template renders it, the prompt's tokens masked out of the loss (the job attaches
  // them as DocSet contexts; documents without a prompt train from BOS alone).
  bool conditioned = false;

  TrainConfig();
  static TrainConfig from_yaml(YamlMap& m, const std::string& base_dir);  // strict, calls m.finish()
  nlohmann::json to_json() const;
};

// Documents to train on and to validate with (several domains may be concatenated).
struct TrainData {
  DocSet train;
  DocSet val;  // may be empty: then no validation figures (NaN) and the last adapter is kept
};

// Concatenates document sets (tokens, offsets, byte lengths).
DocSet concat_docsets(const std::vector<const DocSet*>& sets);
// Train and val splits of `domains` (all domains of the store when empty) from a token store.
// std::invalid_argument naming the domain when it is not in the store.
TrainData load_train_data(const TokenStore& store, const std::vector<std::string>& domains);

struct RunOptions {
  std::string run_dir;            // required: metrics.jsonl and checkpoint.pt go here (created)
  bool resume = false;            // continue from run_dir/checkpoint.pt when it exists
  int threads = 0;                // intra-op threads for this run; 0 = leave the process setting
  int64_t eval_batch_tokens = 8192;  // padded positions per validation forward pass
  // For tests and tools: return right after this step (>= 1), without a final checkpoint or any
  // output, as if the process had been killed there. 0 = off.
  int64_t halt_after_step = 0;
  // Called after every step with that step's metrics line (the JSON written to metrics.jsonl).
  std::function<void(const nlohmann::json&)> on_step;
  // Data parallelism (train/distributed.h); null = this process trains alone. With N ranks each
  // rank computes batch_size / N sequences of every micro-batch (batch_size must divide), the
  // gradients are summed over the ranks before clipping, and rank 0 alone writes run_dir and the
  // outputs. Every rank must call with the same config and data.
  std::shared_ptr<DistGroup> dist;
  // Where the model, the batches and the validation passes compute: "cpu", or "cuda" on a lorazip
  // built with LORAZIP_CUDA (each data-parallel rank then takes GPU LOCAL_RANK). Checkpoints and the
  // outputs are written from CPU copies, so a run may resume on the other device.
  std::string device = "cpu";
};

// The device `name` ("cpu" or "cuda") resolves to for a process with LOCAL_RANK local_rank, as
// "cpu" or "cuda:N". std::invalid_argument when the name is unknown, when this lorazip is built
// against a libtorch without CUDA, or when the GPU is not there; the message says which.
std::string resolve_training_device(const std::string& name, int local_rank);

struct TrainResult {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  int64_t steps = 0;                      // optimizer steps completed (including before a resume)
  int64_t tokens = 0;                     // input tokens processed (including before a resume)
  double seconds = 0;                     // training time (including before a resume)
  double final_train_bits_per_token = kNaN;  // mean over the last eval interval
  double final_val_bits_per_token = kNaN;    // at the last step
  double final_val_bits_per_byte = kNaN;
  double best_val_bits_per_token = kNaN;     // the kept adapter's (LoRA); the best seen (pretrain)
  double best_val_bits_per_byte = kNaN;
  int64_t best_step = 0;
  double base_val_bits_per_token = kNaN;  // LoRA: the base alone (step 0) on the same val docs
  double base_val_bits_per_byte = kNaN;
  std::string stop_reason;                // "steps", "early_stopping", "time_limit", "halted"
  bool resumed = false;                   // continued from a checkpoint
  std::string output_dir;                 // what was written (empty when halted)
};

// Trains a fresh model of size `model_cfg` (init_weights(cfg.seed)) on data.train and writes a
// Hugging Face directory to out_dir (final weights; `tokenizer_model_bytes` becomes tokenizer.model
// when non-empty). std::invalid_argument for a bad config (seq_len beyond the model's positions,
// a token id outside the vocabulary, too little data), std::runtime_error for I/O.
TrainResult pretrain(const LlamaConfig& model_cfg, const PretrainConfig& cfg, const TrainData& data,
                     const std::string& tokenizer_model_bytes, const std::string& out_dir, const RunOptions& opt);

// Trains a LoRA adapter (lora, seeded by lora.seed) on `base`, whose own parameters stay frozen and
// bit-identical; only the adapter's tensors get gradients and optimizer state. Evaluates the base
// at step 0 and then every eval_every steps, keeps the adapter with the lowest validation
// bits/token, and saves it to adapter_dir as a PEFT directory. `info` supplies domain,
// base_model_name_or_path and tokenizer_sha256 for lorazip.json (the rest is filled in). On return
// the adapter is detached and `base` is as it was.
TrainResult train_lora(LlamaForCausalLM& base, const LoraConfig& lora, const TrainConfig& cfg, const TrainData& data,
                       const AdapterInfo& info, const std::string& adapter_dir, const RunOptions& opt);

// The learning rate at 0-based step `step` (warm-up then cosine to min_lr at the last step).
double learning_rate(const LoopConfig& cfg, int64_t step);

}  // namespace lorazip
