// The trainer's configs (the `pretrain:` and `train:` sections of the job's YAML: strict reading,
// validation, resolved JSON) and the learning-rate schedule they describe. Torch-free.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "common/yaml_strict.h"
#include "train/train.h"

namespace lorazip {
namespace {

void read_loop(YamlMap& m, LoopConfig& c) {
  m.get("steps", c.steps);
  m.get("batch_size", c.batch_size);
  m.get("seq_len", c.seq_len);
  m.get("lr", c.lr);
  m.get("min_lr", c.min_lr);
  m.get("warmup_steps", c.warmup_steps);
  m.get("weight_decay", c.weight_decay);
  m.get("grad_clip", c.grad_clip);
  m.get("grad_accum", c.grad_accum);
  m.get("eval_every", c.eval_every);
  m.get("eval_docs", c.eval_docs);
  m.get("checkpoint_every", c.checkpoint_every);
  m.get("seed", c.seed);
  m.get("time_limit_s", c.time_limit_s);
}

std::string section_source(const YamlMap& m) { return m.file().empty() ? m.path() : m.file() + ": " + m.path(); }

}  // namespace

void LoopConfig::validate(const std::string& s) const {
  auto bad = [&](const std::string& field, const std::string& msg) {
    throw std::invalid_argument(s + "." + field + " " + msg);
  };
  if (steps < 1) bad("steps", "must be >= 1, got " + std::to_string(steps));
  if (batch_size < 1) bad("batch_size", "must be >= 1, got " + std::to_string(batch_size));
  if (seq_len != 0 && seq_len < 2) bad("seq_len", "must be >= 2 (or 0 for the model's context), got " + std::to_string(seq_len));
  if (!(lr > 0)) bad("lr", "must be > 0");
  if (!(min_lr >= 0 && min_lr <= lr)) bad("min_lr", "must be in [0, lr]");
  if (warmup_steps < 0) bad("warmup_steps", "must be >= 0");
  if (!(weight_decay >= 0)) bad("weight_decay", "must be >= 0");
  if (!(grad_clip >= 0)) bad("grad_clip", "must be >= 0 (0 = off)");
  if (grad_accum < 1) bad("grad_accum", "must be >= 1");
  if (eval_every < 0) bad("eval_every", "must be >= 0 (0 = only at the end)");
  if (eval_docs < 0) bad("eval_docs", "must be >= 0 (0 = all)");
  if (checkpoint_every < 0) bad("checkpoint_every", "must be >= 0 (0 = only at the end)");
  if (!(time_limit_s >= 0)) bad("time_limit_s", "must be >= 0 (0 = off)");
}

nlohmann::json LoopConfig::to_json() const {
  return {{"steps", steps},
          {"batch_size", batch_size},
          {"seq_len", seq_len},
          {"lr", lr},
          {"min_lr", min_lr},
          {"warmup_steps", warmup_steps},
          {"weight_decay", weight_decay},
          {"grad_clip", grad_clip},
          {"grad_accum", grad_accum},
          {"eval_every", eval_every},
          {"eval_docs", eval_docs},
          {"checkpoint_every", checkpoint_every},
          {"seed", seed},
          {"time_limit_s", time_limit_s}};
}

PretrainConfig::PretrainConfig() {
  steps = 2000;
  batch_size = 16;
  lr = 2e-3;
  min_lr = 2e-4;
  warmup_steps = 100;
  weight_decay = 0.1;
  eval_every = 200;
  checkpoint_every = 200;
}

PretrainConfig PretrainConfig::from_yaml(YamlMap& m, const std::string& /*base_dir*/) {
  PretrainConfig c;
  m.get("domains", c.domains);
  read_loop(m, c);
  m.finish();
  c.validate(section_source(m));
  return c;
}

nlohmann::json PretrainConfig::to_json() const {
  nlohmann::json j = LoopConfig::to_json();
  j["domains"] = domains;
  return j;
}

TrainConfig::TrainConfig() {
  steps = 300;
  batch_size = 8;
  lr = 2e-3;
  min_lr = 2e-4;
  warmup_steps = 20;
  weight_decay = 0.0;
  eval_every = 50;
  checkpoint_every = 50;
}

TrainConfig TrainConfig::from_yaml(YamlMap& m, const std::string& /*base_dir*/) {
  TrainConfig c;
  read_loop(m, c);
  m.get("early_stopping_patience", c.early_stopping_patience);
  m.get("conditioned", c.conditioned);
  m.finish();
  c.validate(section_source(m));
  if (c.early_stopping_patience < 0)
    throw std::invalid_argument(section_source(m) + ".early_stopping_patience must be >= 0 (0 = off)");
  return c;
}

nlohmann::json TrainConfig::to_json() const {
  nlohmann::json j = LoopConfig::to_json();
  j["early_stopping_patience"] = early_stopping_patience;
  j["conditioned"] = conditioned;
  return j;
}

double learning_rate(const LoopConfig& c, int64_t step) {
  const int64_t warmup = std::min(c.warmup_steps, c.steps);
  if (warmup > 0 && step < warmup) return c.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const int64_t decay_steps = c.steps - warmup;
  if (decay_steps <= 1) return c.lr;
  double progress = static_cast<double>(step - warmup) / static_cast<double>(decay_steps - 1);
  progress = std::min(1.0, std::max(0.0, progress));
  return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace lorazip
