// The training loop shared by pretraining and LoRA training (optimizer, schedule, packing,
// evaluation, metrics, checkpoints and resume), and the two entry points built on it.
#include "train/train.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "adapters/adapter.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/llama.h"
#include "train/distributed.h"
#include "train/evaluate.h"
#include "train/packing.h"

namespace lorazip {

// ---- data ----------------------------------------------------------------------------------

DocSet concat_docsets(const std::vector<const DocSet*>& sets) {
  DocSet out;
  out.offsets.push_back(0);
  const bool contexts = std::any_of(sets.begin(), sets.end(), [](const DocSet* s) { return s->has_contexts(); });
  if (contexts) out.context_offsets.push_back(0);
  for (const DocSet* s : sets) {
    if (s->num_docs() == 0) continue;
    const uint64_t base = out.tokens.size();
    out.tokens.insert(out.tokens.end(), s->tokens.begin(), s->tokens.end());
    for (size_t d = 1; d < s->offsets.size(); ++d) out.offsets.push_back(base + s->offsets[d]);
    out.byte_lengths.insert(out.byte_lengths.end(), s->byte_lengths.begin(), s->byte_lengths.end());
    if (!contexts) continue;
    // A set without contexts joins with empty ones.
    for (size_t d = 0; d < s->num_docs(); ++d) {
      if (s->has_contexts()) out.context_tokens.insert(out.context_tokens.end(), s->context(d), s->context(d) + s->context_len(d));
      out.context_offsets.push_back(out.context_tokens.size());
    }
  }
  return out;
}

TrainData load_train_data(const TokenStore& store, const std::vector<std::string>& domains) {
  std::vector<std::string> names = domains.empty() ? store.domains() : domains;
  std::vector<std::string> have = store.domains();
  std::vector<DocSet> train, val;
  for (const auto& d : names) {
    if (std::find(have.begin(), have.end(), d) == have.end()) {
      std::string list;
      for (const auto& h : have) list += (list.empty() ? "" : ", ") + h;
      throw std::invalid_argument("domain '" + d + "' is not in the token store " + store.path() + " (it has: " + list + ")");
    }
    train.push_back(store.read(d, "train"));
    if (store.has(d, "val")) val.push_back(store.read(d, "val"));
  }
  std::vector<const DocSet*> tp, vp;
  for (const auto& s : train) tp.push_back(&s);
  for (const auto& s : val) vp.push_back(&s);
  TrainData data;
  data.train = concat_docsets(tp);
  data.val = concat_docsets(vp);
  return data;
}

// ---- the loop ------------------------------------------------------------------------------

namespace {

constexpr double kLn2 = 0.69314718055994530942;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

nlohmann::json jnum(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
double jget(const nlohmann::json& j, const char* k) {
  return j.contains(k) && j[k].is_number() ? j[k].get<double>() : kNaN;
}

uint64_t docset_hash(const DocSet& d) {
  uint64_t h = xxh64(d.tokens.data(), d.tokens.size() * sizeof(int32_t));
  h = xxh64(d.offsets.data(), d.offsets.size() * sizeof(uint64_t), h);
  h = xxh64(d.byte_lengths.data(), d.byte_lengths.size() * sizeof(uint64_t), h);
  if (!d.has_contexts()) return h;  // as before contexts existed, so older checkpoints resume
  h = xxh64(d.context_tokens.data(), d.context_tokens.size() * sizeof(int32_t), h);
  return xxh64(d.context_offsets.data(), d.context_offsets.size() * sizeof(uint64_t), h);
}

// What the loop trains, and how it saves what is not an optimizer parameter.
struct Trainable {
  std::vector<std::string> names;  // checkpoint keys, one per tensor
  std::vector<torch::Tensor> tensors;
  std::vector<bool> decay;         // weight decay applies
  // Extra state in the checkpoint (the best adapter) and the callback for a new best.
  std::function<void(torch::serialize::OutputArchive&)> save_extra;
  std::function<void(torch::serialize::InputArchive&)> load_extra;
  std::function<void()> on_new_best;
};

// Everything a checkpoint must restore besides tensors, so that a resumed run continues exactly.
struct LoopState {
  int64_t step = 0;  // optimizer steps done
  int64_t tokens = 0;
  double elapsed_s = 0;
  double best_val = std::numeric_limits<double>::infinity();
  double best_val_bpb = kNaN;
  double best_train = kNaN;
  int64_t best_step = 0;
  int64_t evals_since_best = 0;
  double base_val = kNaN, base_val_bpb = kNaN;
  double last_val = kNaN, last_val_bpb = kNaN;
  double last_interval_train = kNaN;
  std::vector<double> interval_train;  // step losses since the last evaluation (bits/token)
  std::string stop_reason;

  nlohmann::json to_json() const {
    return {{"step", step},
            {"tokens", tokens},
            {"elapsed_s", elapsed_s},
            {"best_val", jnum(best_val)},
            {"best_val_bpb", jnum(best_val_bpb)},
            {"best_train", jnum(best_train)},
            {"best_step", best_step},
            {"evals_since_best", evals_since_best},
            {"base_val", jnum(base_val)},
            {"base_val_bpb", jnum(base_val_bpb)},
            {"last_val", jnum(last_val)},
            {"last_val_bpb", jnum(last_val_bpb)},
            {"last_interval_train", jnum(last_interval_train)},
            {"interval_train", interval_train},
            {"stop_reason", stop_reason}};
  }
  static LoopState from_json(const nlohmann::json& j) {
    LoopState s;
    s.step = j.at("step").get<int64_t>();
    s.tokens = j.at("tokens").get<int64_t>();
    s.elapsed_s = j.at("elapsed_s").get<double>();
    s.best_val = j.at("best_val").is_null() ? std::numeric_limits<double>::infinity() : j["best_val"].get<double>();
    s.best_val_bpb = jget(j, "best_val_bpb");
    s.best_train = jget(j, "best_train");
    s.best_step = j.at("best_step").get<int64_t>();
    s.evals_since_best = j.at("evals_since_best").get<int64_t>();
    s.base_val = jget(j, "base_val");
    s.base_val_bpb = jget(j, "base_val_bpb");
    s.last_val = jget(j, "last_val");
    s.last_val_bpb = jget(j, "last_val_bpb");
    s.last_interval_train = jget(j, "last_interval_train");
    s.interval_train = j.at("interval_train").get<std::vector<double>>();
    s.stop_reason = j.value("stop_reason", std::string());
    return s;
  }
};

// Moves a model (and the extra tensors given, e.g. a LoRA adapter's) to a device for a run and
// back to the CPU on every exit path; Module::to and set_data keep every handle to the tensors
// (optimizer, adapter, projections) pointing at the moved data.
class DeviceScope {
 public:
  DeviceScope(LlamaForCausalLM& model, std::vector<torch::Tensor> extra, const torch::Device& dev)
      : model_(model), extra_(std::move(extra)), dev_(dev) {
    if (dev_.is_cpu()) return;
    move(dev_);
  }
  ~DeviceScope() {
    if (dev_.is_cpu()) return;
    try {
      move(torch::kCPU);
    } catch (...) {
    }
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  void move(const torch::Device& to) {
    torch::NoGradGuard ng;
    model_->to(to);
    for (auto& t : extra_) t.set_data(t.to(to));
  }
  LlamaForCausalLM& model_;
  std::vector<torch::Tensor> extra_;
  torch::Device dev_;
};

class Loop {
 public:
  Loop(const char* kind, LlamaForCausalLM& model, const LoopConfig& cfg, int64_t patience, const TrainData& data,
       Trainable& tr, const RunOptions& opt, std::string fingerprint, bool eval_at_start)
      : kind_(kind), model_(model), cfg_(cfg), patience_(patience), data_(data), tr_(tr), opt_(opt),
        fingerprint_(std::move(fingerprint)), eval_at_start_(eval_at_start),
        dev_(resolve_training_device(opt.device, opt.dist ? opt.dist->options().local_rank : 0)) {
    const LlamaConfig& mc = model->config();
    seq_len_ = cfg.seq_len > 0 ? cfg.seq_len : mc.max_position_embeddings;
    if (seq_len_ > mc.max_position_embeddings)
      throw std::invalid_argument(std::string(kind) + ".seq_len " + std::to_string(seq_len_) +
                                  " exceeds the model's max_position_embeddings " +
                                  std::to_string(mc.max_position_embeddings));
    if (seq_len_ < mc.max_position_embeddings)
      log_info(std::string(kind) + ": seq_len " + std::to_string(seq_len_) + " < context " +
               std::to_string(mc.max_position_embeddings) +
               "; positions beyond seq_len are not trained but evaluation and the codec use them");
    if (data.train.tokens.empty())
      throw std::invalid_argument(std::string(kind) + ": the training data has no tokens");
    if (opt.run_dir.empty()) throw std::invalid_argument(std::string(kind) + ": RunOptions.run_dir is required");
    ckpt_path_ = opt.run_dir + "/checkpoint.pt";
    metrics_path_ = opt.run_dir + "/metrics.jsonl";
    val_idx_ = spread_indices(data.val.num_docs(), cfg.eval_docs);
    if (val_idx_.empty()) log_info(std::string(kind) + ": no validation documents; validation figures will be empty");
    if (opt.dist) {
      dist_ = opt.dist.get();
      rank_ = dist_->rank();
      world_ = dist_->world_size();
      if (cfg.batch_size % world_ != 0)
        throw std::invalid_argument(std::string(kind) + ".batch_size " + std::to_string(cfg.batch_size) +
                                    " is not a multiple of the " + std::to_string(world_) +
                                    " data-parallel processes (WORLD_SIZE): each rank computes batch_size / WORLD_SIZE "
                                    "sequences of every micro-batch; choose a batch_size that divides");
    }

    std::vector<torch::Tensor> dec, nodec;
    for (size_t i = 0; i < tr.tensors.size(); ++i) (tr.decay[i] ? dec : nodec).push_back(tr.tensors[i]);
    for (const auto& t : tr.tensors) trainable_numel_ += t.numel();
    auto options = [&](double wd) {
      return torch::optim::AdamWOptions(cfg.lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(wd);
    };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    if (!dec.empty())
      groups.emplace_back(dec, std::make_unique<torch::optim::AdamWOptions>(options(cfg.weight_decay)));
    if (!nodec.empty()) groups.emplace_back(nodec, std::make_unique<torch::optim::AdamWOptions>(options(0.0)));
    optim_ = std::make_unique<torch::optim::AdamW>(groups, options(cfg.weight_decay));
  }

  TrainResult run() {
    if (opt_.threads > 0) set_torch_threads(opt_.threads);
    std::error_code ec;
    std::filesystem::create_directories(opt_.run_dir, ec);
    if (ec) throw std::runtime_error("cannot create run directory " + opt_.run_dir + ": " + ec.message());

    TrainResult res;
    if (opt_.resume && file_exists(ckpt_path_)) {
      load_checkpoint();
      res.resumed = true;
      if (leader()) trim_metrics(st_.step);
      log_info(std::string(kind_) + ": resuming from " + ckpt_path_ + " at step " + std::to_string(st_.step) + "/" +
               std::to_string(cfg_.steps));
    } else if (leader()) {
      write_file_atomic(metrics_path_, "");
    }
    if (dist_) check_ranks_agree();
    // Rank 0 alone writes the run directory (metrics, checkpoints) and the progress bar.
    if (leader()) {
      metrics_ = std::fopen(metrics_path_.c_str(), "a");
      if (!metrics_) throw std::runtime_error("cannot open " + metrics_path_ + " for appending");
    }
    struct Closer {
      FILE*& f;
      ~Closer() {
        if (f) std::fclose(f), f = nullptr;
      }
    } closer{metrics_};

    const bool was_training = model_->is_training();
    model_->train();
    PackedStream stream(data_.train, static_cast<int32_t>(model_->config().bos_token_id), cfg_.seed);

    if (st_.step == 0 && eval_at_start_ && !res.resumed) {
      evaluate_now();
      st_.base_val = st_.last_val;
      st_.base_val_bpb = st_.last_val_bpb;
      if (std::isfinite(st_.last_val)) {  // the untrained adapter (= the base) is the first best
        st_.best_val = st_.last_val;
        st_.best_val_bpb = st_.last_val_bpb;
        st_.best_step = 0;
        if (tr_.on_new_best) tr_.on_new_best();
      }
      write_metrics({{"step", 0}, {"val_bits_per_token", jnum(st_.last_val)}, {"val_bits_per_byte", jnum(st_.last_val_bpb)}});
    }

    std::optional<Progress> bar;
    if (leader()) bar.emplace(kind_, cfg_.steps);
    const double elapsed_before = st_.elapsed_s;
    auto t0 = std::chrono::steady_clock::now();
    elapsed_before_ = elapsed_before;
    t0_ = t0;
    // An early-stopped run stays stopped; one that ran out of time may continue when resumed.
    bool stop = st_.stop_reason == "early_stopping";
    if (!stop) st_.stop_reason.clear();
    while (!stop && st_.step < cfg_.steps) {
      if (cfg_.time_limit_s > 0 && st_.elapsed_s >= cfg_.time_limit_s && st_.step > 0) {
        st_.stop_reason = "time_limit";
        break;
      }
      auto ts = std::chrono::steady_clock::now();
      double grad_norm = 0;
      const double lr = learning_rate(cfg_, st_.step);
      const double comm_before = dist_ ? dist_->comm_seconds() : 0.0;
      const double bits = train_step(stream, lr, &grad_norm);
      ++st_.step;
      const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
      const int64_t step_tokens = cfg_.batch_size * cfg_.grad_accum * seq_len_;  // all ranks together
      st_.tokens += step_tokens;
      st_.elapsed_s = elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      // Data-parallel: rank 0's clock, shared in the step's all-reduce, so every rank takes the same
      // time-limit decision.
      if (dist_) st_.elapsed_s = shared_elapsed_;
      st_.interval_train.push_back(bits);

      bool time_up = cfg_.time_limit_s > 0 && st_.elapsed_s >= cfg_.time_limit_s;
      bool last = st_.step == cfg_.steps || time_up;
      nlohmann::json line = {{"step", st_.step},
                             {"lr", lr},
                             {"train_bits_per_token", bits},
                             {"grad_norm", jnum(grad_norm)},
                             {"tokens_per_s", step_tokens / std::max(step_s, 1e-9)},
                             {"elapsed_s", st_.elapsed_s}};
      if (dist_) {
        line["world_size"] = world_;
        line["comm_s"] = dist_->comm_seconds() - comm_before;  // rank 0's time in this step's all-reduces
      }
      if (last || (cfg_.eval_every > 0 && st_.step % cfg_.eval_every == 0)) {
        evaluate_now();
        line["val_bits_per_token"] = jnum(st_.last_val);
        line["val_bits_per_byte"] = jnum(st_.last_val_bpb);
        if (std::isfinite(st_.last_val) && st_.last_val < st_.best_val) {
          st_.best_val = st_.last_val;
          st_.best_val_bpb = st_.last_val_bpb;
          st_.best_train = st_.last_interval_train;
          st_.best_step = st_.step;
          st_.evals_since_best = 0;
          if (tr_.on_new_best) tr_.on_new_best();
        } else if (std::isfinite(st_.last_val)) {
          ++st_.evals_since_best;
          if (patience_ > 0 && st_.evals_since_best >= patience_) {
            st_.stop_reason = "early_stopping";
            stop = true;
          }
        }
      }
      if (time_up && !stop) {
        st_.stop_reason = "time_limit";
        stop = true;
      }
      write_metrics(line);
      if (opt_.on_step) opt_.on_step(line);

      // "val -" until the first evaluation: there is no validation figure yet, not a NaN one.
      char val[32] = "-";
      if (std::isfinite(st_.last_val)) std::snprintf(val, sizeof val, "%.3f b/t", st_.last_val);
      char detail[200];
      std::snprintf(detail, sizeof detail, "train %.3f b/t | val %s | %.0f tok/s", bits, val, step_tokens / std::max(step_s, 1e-9));
      if (bar) bar->update(st_.step, detail);

      bool final_step = stop || st_.step == cfg_.steps;
      if (final_step || (cfg_.checkpoint_every > 0 && st_.step % cfg_.checkpoint_every == 0)) {
        if (final_step && st_.stop_reason.empty()) st_.stop_reason = "steps";
        if (leader()) save_checkpoint();
      }
      if (opt_.halt_after_step > 0 && st_.step == opt_.halt_after_step && !final_step) {
        model_->train(was_training);
        res.stop_reason = "halted";
        fill(res);
        return res;
      }
    }
    if (st_.stop_reason.empty()) st_.stop_reason = "steps";
    if (bar) bar->finish("val " + (std::isfinite(st_.last_val) ? std::to_string(st_.last_val) : std::string("n/a")) +
               " b/t, best " + (std::isfinite(st_.best_val) ? std::to_string(st_.best_val) : std::string("n/a")) +
               " at step " + std::to_string(st_.best_step));
    model_->train(was_training);
    fill(res);
    res.stop_reason = st_.stop_reason;
    return res;
  }

  const std::string& metrics_path() const { return metrics_path_; }
  const LoopState& state() const { return st_; }

 private:
  bool leader() const { return rank_ == 0; }

  // Data-parallel start: every rank must stand at the same step (a rank that cannot see rank 0's
  // checkpoint would start over while the others resume).
  void check_ranks_agree() {
    double v[2] = {static_cast<double>(st_.step), -static_cast<double>(st_.step)};
    dist_->all_reduce_max(v, 2, st_.step);
    if (v[0] != -v[1])
      throw std::runtime_error(std::string(kind_) + ": the data-parallel ranks start at different steps (" +
                               std::to_string(static_cast<int64_t>(-v[1])) + " to " + std::to_string(static_cast<int64_t>(v[0])) +
                               "): with --resume every rank must read rank 0's checkpoint " + ckpt_path_ +
                               " (the run directory must be on a file system all ranks share)");
  }

  void fill(TrainResult& r) const {
    r.steps = st_.step;
    r.tokens = st_.tokens;
    r.seconds = st_.elapsed_s;
    r.final_train_bits_per_token = st_.last_interval_train;
    r.final_val_bits_per_token = st_.last_val;
    r.final_val_bits_per_byte = st_.last_val_bpb;
    r.best_val_bits_per_token = std::isfinite(st_.best_val) ? st_.best_val : kNaN;
    r.best_val_bits_per_byte = st_.best_val_bpb;
    r.best_step = st_.best_step;
    r.base_val_bits_per_token = st_.base_val;
    r.base_val_bits_per_byte = st_.base_val_bpb;
  }

  // One optimizer step over grad_accum micro-batches; returns the step's bits/token.
  double train_step(PackedStream& stream, double lr, double* grad_norm) {
    for (auto& g : optim_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    // Dropout: reseeded from (seed, step); each data-parallel rank draws its own masks.
    const uint64_t dropout_seed = mix_seed(cfg_.seed, 0x5eed0000ULL + static_cast<uint64_t>(st_.step));
    torch::manual_seed(world_ > 1 ? mix_seed(dropout_seed, static_cast<uint64_t>(rank_)) : dropout_seed);
    optim_->zero_grad();
    // This rank's rows of each micro-batch: [b0, b0 + Bl) of the global batch B.
    const int64_t B = cfg_.batch_size, T = seq_len_, A = cfg_.grad_accum;
    const int64_t Bl = B / world_, b0 = rank_ * Bl;
    const int64_t C = model_->config().hidden_size;

    // Build every micro-batch first: the loss is normalised by the step's total target count.
    std::vector<torch::Tensor> inputs, targets;
    int64_t n_targets = 0;
    std::vector<int32_t> win(T + 1);
    std::vector<uint8_t> is_bos(T + 1);
    for (int64_t m = 0; m < A; ++m) {
      torch::Tensor in = torch::empty({Bl, T}, torch::kInt64), tg = torch::empty({Bl, T}, torch::kInt64);
      auto ia = in.accessor<int64_t, 2>();
      auto ta = tg.accessor<int64_t, 2>();
      // Every rank reads all B windows to count the step's targets (the loss's normaliser) without
      // a round of communication, and keeps its own rows.
      for (int64_t b = 0; b < B; ++b) {
        const int64_t g = (st_.step * A + m) * B + b;  // global window index: pure function of (seed, step)
        stream.window(g, T + 1, T, win.data(), is_bos.data());
        const bool mine = b >= b0 && b < b0 + Bl;
        for (int64_t t = 0; t < T; ++t) {
          if (mine) {
            ia[b - b0][t] = win[t];
            // A BOS separator is never a target: the codec never codes one.
            ta[b - b0][t] = is_bos[t + 1] ? -100 : win[t + 1];
          }
          n_targets += is_bos[t + 1] ? 0 : 1;
        }
      }
      inputs.push_back(in.to(dev_));
      targets.push_back(tg.to(dev_));
    }
    if (n_targets == 0) throw std::invalid_argument(std::string(kind_) + ": a training step has no target tokens");
    double nats = 0;
    for (int64_t m = 0; m < A; ++m) {
      // The LM head and the loss fused, in row chunks: the (B*T, V) logits never exist at once.
      torch::Tensor hidden = model_->forward_hidden(inputs[m]);  // (Bl, T, C)
      torch::Tensor loss_sum =
          linear_cross_entropy(hidden.view({Bl * T, C}), model_->lm_head_weight(), targets[m].view({Bl * T}), -100);
      (loss_sum / static_cast<double>(n_targets)).backward();
      nats += loss_sum.item<double>();
    }
    if (dist_) {
      // The loss is this rank's share of the global mean, so the sum over ranks is the gradient of
      // one process with the whole batch (up to float summation order). Only trainable tensors travel.
      std::vector<torch::Tensor> grads;
      for (auto& t : tr_.tensors) {
        if (!t.grad().defined()) t.mutable_grad() = torch::zeros_like(t);
        grads.push_back(t.grad());
      }
      dist_->all_reduce_sum(grads, st_.step + 1);  // labelled with the step's number in metrics.jsonl
      const double now = elapsed_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
      double v[2] = {nats, leader() ? now : 0.0};
      dist_->all_reduce_sum(v, 2, st_.step + 1);
      nats = v[0];
      shared_elapsed_ = v[1];
    }
    // Clipping and AdamW are a few hundred small elementwise kernels; below ~50M trainable values
    // one thread does them in milliseconds, while an OpenMP team on a busy machine can spend
    // seconds in barriers (measured: 2.4 s vs 0.04 s per step for 5M parameters on 2 loaded cores).
    const int threads = at::get_num_threads();
    if (trainable_numel_ < 50'000'000 && threads > 1) at::set_num_threads(1);
    // max_norm = inf only measures the norm.
    *grad_norm = torch::nn::utils::clip_grad_norm_(
        tr_.tensors, cfg_.grad_clip > 0 ? cfg_.grad_clip : std::numeric_limits<double>::infinity());
    optim_->step();
    if (at::get_num_threads() != threads) at::set_num_threads(threads);
    return nats / static_cast<double>(n_targets) / kLn2;
  }

  void evaluate_now() {
    if (!st_.interval_train.empty()) {
      double s = 0;
      for (double v : st_.interval_train) s += v;
      st_.last_interval_train = s / static_cast<double>(st_.interval_train.size());
      st_.interval_train.clear();
    }
    if (val_idx_.empty()) return;
    EvalOptions eo;
    eo.batch_tokens = opt_.eval_batch_tokens;
    EvalSummary s;
    if (!dist_) {
      s = evaluate(model_, data_.val, eo, val_idx_);
    } else {
      // Data-parallel: rank r codes validation documents r, r + N, ...; the totals are summed.
      std::vector<size_t> mine;
      for (size_t i = static_cast<size_t>(rank_); i < val_idx_.size(); i += static_cast<size_t>(world_)) mine.push_back(val_idx_[i]);
      if (!mine.empty()) s = evaluate(model_, data_.val, eo, mine);
      double v[3] = {s.bits, static_cast<double>(s.tokens), static_cast<double>(s.bytes)};
      dist_->all_reduce_sum(v, 3, st_.step);
      s.bits = v[0];
      s.tokens = static_cast<int64_t>(v[1]);
      s.bytes = static_cast<uint64_t>(v[2]);
    }
    st_.last_val = s.bits_per_token();
    st_.last_val_bpb = s.bits_per_byte();
  }

  void write_metrics(const nlohmann::json& line) {
    if (!metrics_) return;  // not rank 0
    std::string s = line.dump() + "\n";
    if (std::fwrite(s.data(), 1, s.size(), metrics_) != s.size() || std::fflush(metrics_) != 0)
      throw std::runtime_error("cannot write " + metrics_path_);
  }

  // After a resume: keep only the metrics lines of steps the checkpoint covers.
  void trim_metrics(int64_t upto) {
    std::string kept;
    if (file_exists(metrics_path_)) {
      std::istringstream in(read_file(metrics_path_));
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty()) continue;
        try {
          auto j = nlohmann::json::parse(line);
          if (j.at("step").get<int64_t>() > upto) continue;
        } catch (const std::exception&) {
          continue;  // a line cut by the kill
        }
        kept += line + "\n";
      }
    }
    write_file_atomic(metrics_path_, kept);
  }

  void save_checkpoint() {
    torch::serialize::OutputArchive ar;
    nlohmann::json meta = {{"format", "lorazip-checkpoint"},
                           {"version", 1},
                           {"kind", kind_},
                           {"fingerprint", fingerprint_},
                           {"world_size", world_},
                           {"state", st_.to_json()}};
    ar.write("meta", c10::IValue(meta.dump()));
    for (size_t i = 0; i < tr_.tensors.size(); ++i) ar.write("t." + tr_.names[i], tr_.tensors[i].detach().to(torch::kCPU), true);
    torch::serialize::OutputArchive oa;
    optim_->save(oa);
    ar.write("optimizer", oa);
    if (tr_.save_extra) {
      torch::serialize::OutputArchive ea;
      tr_.save_extra(ea);
      ar.write("extra", ea);
    }
    AtomicPath out(ckpt_path_);
    ar.save_to(out.tmp());
    out.commit();
  }

  void load_checkpoint() {
    torch::serialize::InputArchive ar;
    try {
      ar.load_from(ckpt_path_, dev_);  // tensors (optimizer state too) land on this run's device
    } catch (const c10::Error& e) {
      throw std::runtime_error(ckpt_path_ + ": cannot read the checkpoint (" + std::string(e.what_without_backtrace()) +
                               "); delete it to start over");
    }
    c10::IValue mv;
    ar.read("meta", mv);
    nlohmann::json meta = nlohmann::json::parse(mv.toStringRef());
    if (meta.value("format", "") != "lorazip-checkpoint" || meta.value("kind", "") != kind_)
      throw std::runtime_error(ckpt_path_ + ": not a lorazip " + std::string(kind_) + " checkpoint");
    if (meta.value("fingerprint", "") != fingerprint_)
      throw std::runtime_error(ckpt_path_ + ": written for another config, model or corpus (fingerprint " +
                               meta.value("fingerprint", "") + ", this run " + fingerprint_ +
                               "); run without --resume or delete the checkpoint to start over");
    const int saved_world = meta.value("world_size", 1);
    if (saved_world != world_)
      throw std::runtime_error(ckpt_path_ + ": written by a run on " + std::to_string(saved_world) +
                               " data-parallel process(es) (WORLD_SIZE), this run has " + std::to_string(world_) +
                               "; resume with the same number of processes (torchrun --nproc_per_node=" +
                               std::to_string(saved_world) + " ...), or run without --resume to start over");
    st_ = LoopState::from_json(meta.at("state"));
    torch::NoGradGuard ng;
    for (size_t i = 0; i < tr_.tensors.size(); ++i) {
      torch::Tensor t;
      ar.read("t." + tr_.names[i], t, true);
      if (t.sizes() != tr_.tensors[i].sizes())
        throw std::runtime_error(ckpt_path_ + ": tensor " + tr_.names[i] + " has another shape than the model's");
      tr_.tensors[i].copy_(t);
    }
    torch::serialize::InputArchive oa;
    ar.read("optimizer", oa);
    optim_->load(oa);
    if (tr_.load_extra) {
      torch::serialize::InputArchive ea;
      ar.read("extra", ea);
      tr_.load_extra(ea);
    }
  }

  const char* kind_;
  LlamaForCausalLM& model_;
  const LoopConfig& cfg_;
  int64_t patience_;
  const TrainData& data_;
  Trainable& tr_;
  const RunOptions& opt_;
  std::string fingerprint_;
  bool eval_at_start_;
  torch::Device dev_;  // where the model and the batches are (RunOptions::device)
  int64_t seq_len_ = 0;
  int64_t trainable_numel_ = 0;
  std::string ckpt_path_, metrics_path_;
  std::vector<size_t> val_idx_;
  std::unique_ptr<torch::optim::AdamW> optim_;
  LoopState st_;
  FILE* metrics_ = nullptr;
  DistGroup* dist_ = nullptr;  // null: this process trains alone
  int rank_ = 0, world_ = 1;
  double elapsed_before_ = 0;  // training time before this run() (resume)
  std::chrono::steady_clock::time_point t0_;
  double shared_elapsed_ = 0;  // rank 0's elapsed time at the last step's all-reduce
};

void copy_metrics(const std::string& from, const std::string& to_dir) {
  if (file_exists(from)) write_file_atomic(to_dir + "/metrics.jsonl", read_file(from));
}

}  // namespace

// ---- pretrain ------------------------------------------------------------------------------

TrainResult pretrain(const LlamaConfig& model_cfg, const PretrainConfig& cfg, const TrainData& data,
                     const std::string& tokenizer_model_bytes, const std::string& out_dir, const RunOptions& opt) {
  cfg.validate("pretrain");
  if (out_dir.empty()) throw std::invalid_argument("pretrain: the output directory is empty");
  if (opt.threads > 0) set_torch_threads(opt.threads);
  LlamaForCausalLM model(model_cfg);
  model->init_weights(cfg.seed);  // on the CPU: the same initial weights on every device
  const torch::Device dev(resolve_training_device(opt.device, opt.dist ? opt.dist->options().local_rank : 0));
  std::optional<DeviceScope> on_device;
  on_device.emplace(model, std::vector<torch::Tensor>{}, dev);

  Trainable tr;
  for (auto& p : model->named_parameters(/*recurse=*/true)) {
    tr.names.push_back(p.key());
    tr.tensors.push_back(p.value());
    tr.decay.push_back(p.value().dim() >= 2);  // matrices decay; norms and biases do not
  }

  nlohmann::json fp = {{"kind", "pretrain"},
                       {"model", model_cfg.to_hf_json()},
                       {"loop", cfg.to_json()},
                       {"train", docset_hash(data.train)},
                       {"val", docset_hash(data.val)}};
  fp["loop"].erase("time_limit_s");  // these may change between a run and its resume
  fp["loop"].erase("checkpoint_every");
  log_info("pretrain: " + std::to_string(model_cfg.num_parameters()) + " parameters, config " + cfg.to_json().dump());

  Loop loop("pretrain", model, cfg, 0, data, tr, opt, sha256_hex(fp.dump()), /*eval_at_start=*/false);
  TrainResult res = loop.run();
  if (res.stop_reason == "halted") return res;
  on_device.reset();  // back on the CPU for writing

  if (!opt.dist || opt.dist->rank() == 0) {
    save_hf_model(model, out_dir, tokenizer_model_bytes);
    copy_metrics(loop.metrics_path(), out_dir);
    log_info("pretrain: wrote " + out_dir);
  }
  if (opt.dist) opt.dist->barrier("rank 0 writing " + out_dir);
  res.output_dir = out_dir;
  return res;
}

// ---- LoRA ----------------------------------------------------------------------------------

TrainResult train_lora(LlamaForCausalLM& base, const LoraConfig& lora, const TrainConfig& cfg, const TrainData& data,
                       const AdapterInfo& info_in, const std::string& adapter_dir, const RunOptions& opt) {
  cfg.validate("train");
  if (adapter_dir.empty()) throw std::invalid_argument("train: the adapter directory is empty");
  if (opt.threads > 0) set_torch_threads(opt.threads);
  for (const auto& [name, lin] : base->projections())
    if (lin->lora_A.defined())
      throw std::invalid_argument("train: the base model already has an adapter on " + name + "; detach it first");

  // The base's identity as the caller's loader named it (load_model), else its float32 fingerprint.
  const std::string base_fp = info_in.base_fingerprint.empty() ? model_fingerprint(base) : info_in.base_fingerprint;
  LoraAdapter adapter(base, lora);

  // Freeze the base (restored on every exit path).
  std::vector<std::pair<torch::Tensor, bool>> frozen;
  for (auto& p : base->parameters()) {
    frozen.emplace_back(p, p.requires_grad());
    p.set_requires_grad(false);
  }
  struct Restore {
    std::vector<std::pair<torch::Tensor, bool>>& f;
    LoraAdapter& a;
    ~Restore() {
      a.detach();
      for (auto& [t, rg] : f) t.set_requires_grad(rg);
    }
  } restore{frozen, adapter};
  adapter.attach(base);
  // The base and the adapter on the run's device until the best adapter is chosen (declared after
  // `restore`, so it moves them back first).
  std::vector<torch::Tensor> adapter_tensors;
  for (const auto& [k, t] : adapter.state_dict()) adapter_tensors.push_back(t);
  std::optional<DeviceScope> on_device;
  on_device.emplace(base, adapter_tensors,
                    torch::Device(resolve_training_device(opt.device, opt.dist ? opt.dist->options().local_rank : 0)));

  Trainable tr;
  std::map<std::string, torch::Tensor> best;
  for (const auto& [k, t] : adapter.state_dict()) {
    tr.names.push_back(k);
    tr.tensors.push_back(t);
    tr.decay.push_back(true);
  }
  tr.on_new_best = [&]() {
    best.clear();
    for (const auto& [k, t] : adapter.state_dict()) best.emplace(k, t.detach().clone());
  };
  tr.save_extra = [&](torch::serialize::OutputArchive& ar) {
    for (const auto& [k, t] : best) ar.write("best." + k, t, true);
  };
  tr.load_extra = [&](torch::serialize::InputArchive& ar) {
    best.clear();
    for (const auto& k : tr.names) {
      torch::Tensor t;
      if (ar.try_read("best." + k, t, true)) best.emplace(k, t);
    }
  };

  nlohmann::json fp = {{"kind", "train"},          {"base", base_fp},
                       {"lora", lora.to_json()},   {"loop", cfg.to_json()},
                       {"train", docset_hash(data.train)}, {"val", docset_hash(data.val)}};
  fp["loop"].erase("time_limit_s");
  fp["loop"].erase("checkpoint_every");
  log_info("train: LoRA r=" + std::to_string(lora.r) + " on " + std::to_string(adapter.modules().size()) +
           " projections, " + std::to_string(adapter.num_parameters()) + " trainable parameters; config " +
           cfg.to_json().dump());

  Loop loop("train", base, cfg, cfg.early_stopping_patience, data, tr, opt, sha256_hex(fp.dump()),
            /*eval_at_start=*/true);
  TrainResult res = loop.run();
  if (res.stop_reason == "halted") return res;
  on_device.reset();  // base and adapter back on the CPU for writing

  // Keep the best adapter by validation bits/token (the last one when there is no validation set).
  AdapterInfo info = info_in;
  info.base_fingerprint = base_fp;
  info.steps = res.steps;
  info.train_bits_per_token = res.final_train_bits_per_token;
  info.val_bits_per_token = res.final_val_bits_per_token;
  info.val_bits_per_byte = res.final_val_bits_per_byte;
  if (!best.empty() && std::isfinite(res.best_val_bits_per_token)) {
    adapter.load_state_dict(best);
    info.steps = res.best_step;
    info.train_bits_per_token = loop.state().best_train;
    info.val_bits_per_token = res.best_val_bits_per_token;
    info.val_bits_per_byte = res.best_val_bits_per_byte;
  }
  info.base_val_bits_per_token = res.base_val_bits_per_token;
  nlohmann::json cfg_json = info.config.is_object() ? info.config : nlohmann::json::object();
  cfg_json["train"] = cfg.to_json();
  info.config = cfg_json;
  if (!opt.dist || opt.dist->rank() == 0) {
    adapter.save(adapter_dir, info);
    copy_metrics(loop.metrics_path(), adapter_dir);
  }
  if (opt.dist) opt.dist->barrier("rank 0 writing " + adapter_dir);
  res.output_dir = adapter_dir;
  if (!opt.dist || opt.dist->rank() == 0)
    log_info("train: wrote " + adapter_dir + " (step " + std::to_string(info.steps) + ", val " +
             std::to_string(info.val_bits_per_token) + " bits/token, base " +
             std::to_string(res.base_val_bits_per_token) + ")");
  return res;
}

// ---- devices -------------------------------------------------------------------------------

std::string resolve_training_device(const std::string& name, int local_rank) {
  if (name == "cpu") return "cpu";
  if (name != "cuda")
    throw std::invalid_argument("device '" + name + "' is not known: use cpu or cuda");
#ifndef LORAZIP_CUDA
  throw std::invalid_argument(
      "device cuda: this lorazip is built against a libtorch without CUDA (Debian's libtorch-dev is CPU-only; "
      "docs/training.md, 'CUDA', gives the steps for a CUDA build with scripts/build_cuda.sh); use device cpu");
#else
  if (!torch::cuda::is_available())
    throw std::invalid_argument("device cuda: no CUDA GPU is visible to this process (driver missing, or "
                                "CUDA_VISIBLE_DEVICES empty); use device cpu");
  const int n = static_cast<int>(torch::cuda::device_count());
  if (local_rank < 0 || local_rank >= n)
    throw std::invalid_argument("device cuda: LOCAL_RANK " + std::to_string(local_rank) + " has no GPU of its own (" +
                                std::to_string(n) + " visible); start at most " + std::to_string(n) +
                                " processes per machine (torchrun --nproc_per_node)");
  return "cuda:" + std::to_string(local_rank);
#endif
}

}  // namespace lorazip
