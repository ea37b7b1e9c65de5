// Interop helper (scripts/interop_llamacpp.sh): the coding engine's next-token log-probabilities for
// given texts or token ids, so a script can compare them with llama.cpp's on the same ids; and a
// random-but-nonzero LoRA adapter in PEFT format, so the GGUF export can be checked in llama.cpp.
// Not a test by itself.
//
// Usage: engine_logprobs -m BASE [-a ADAPTER_DIR] [--max-tokens N] [--top K] [--threads T] IN.jsonl OUT.jsonl
//   IN.jsonl: one {"text": "..."} (tokenized by the base's tokenizer) or {"ids": [...]} per line.
//   OUT.jsonl: one {"ids": [bos, t1, ...], "logprobs": [...], "bits": [...]} per line, where ids
//   starts with BOS (as every stream the codec codes does) and holds at most N tokens after it;
//   logprobs[i] = ln p(ids[i+1] | ids[0..i]) (log-softmax of the engine's float32 logits, in
//   double); bits[i] = engine::code_length_bits of the engine's softmax, i.e. what the codec pays;
//   with --top K also "top": per position [[id, logprob], ...] of the K most likely tokens.
// Usage: engine_logprobs -m BASE --make-adapter DIR [--rank R] [--alpha A] [--b-std S] [--seed N]
//   writes a PEFT adapter (all seven projections) whose A is LoraAdapter's seeded initialisation
//   and whose B is N(0, S^2) from the same seed (instead of zero), bound to BASE.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "adapters/adapter.h"
#include "common/threads.h"
#include "codec/engine/engine.h"
#include "runtime/model_setup.h"
#include "train/torch_base.h"

namespace {

struct Options {
  std::string base, adapter, make_adapter, in, out;
  int64_t max_tokens = 256, top = 0, rank = 8;
  int threads = 0;
  double alpha = 16.0, b_std = 0.02;
  uint64_t seed = 1;
};

Options parse(int argc, char** argv) {
  Options o;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "-m") o.base = next();
    else if (a == "-a") o.adapter = next();
    else if (a == "--make-adapter") o.make_adapter = next();
    else if (a == "--max-tokens") o.max_tokens = std::stoll(next());
    else if (a == "--top") o.top = std::stoll(next());
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--rank") o.rank = std::stoll(next());
    else if (a == "--alpha") o.alpha = std::stod(next());
    else if (a == "--b-std") o.b_std = std::stod(next());
    else if (a == "--seed") o.seed = std::stoull(next());
    else if (!a.empty() && a[0] == '-') throw std::invalid_argument("unknown option " + a);
    else pos.push_back(a);
  }
  if (o.base.empty()) throw std::invalid_argument("-m BASE is required");
  if (o.make_adapter.empty()) {
    if (pos.size() != 2) throw std::invalid_argument("expected IN.jsonl OUT.jsonl");
    o.in = pos[0];
    o.out = pos[1];
  } else if (!pos.empty()) {
    throw std::invalid_argument("--make-adapter takes no IN/OUT files");
  }
  if (o.max_tokens < 1 || o.top < 0) throw std::invalid_argument("--max-tokens must be >= 1 and --top >= 0");
  return o;
}

void make_adapter(lorazip::LoadedModel& base, const Options& o) {
  lorazip::LoraConfig cfg;
  cfg.r = o.rank;
  cfg.alpha = o.alpha;
  cfg.seed = o.seed;
  lorazip::LlamaForCausalLM tm = lorazip::load_torch_model(base);
  lorazip::LoraAdapter a(tm, cfg);
  torch::manual_seed(o.seed);
  std::map<std::string, at::Tensor> sd = a.state_dict();
  for (auto& [key, t] : sd)
    if (key.find("lora_B") != std::string::npos) t = torch::randn(t.sizes(), torch::kFloat32) * o.b_std;
  a.load_state_dict(sd);
  lorazip::AdapterInfo info;
  info.domain = "interop-random";
  info.base_model_name_or_path = o.base;
  info.base_fingerprint = base.fingerprint;
  info.tokenizer_sha256 = base.tokenizer->sha256();
  a.save(o.make_adapter, info);
  std::fprintf(stderr, "[engine_logprobs] wrote %s: %lld parameters, r %lld, alpha %g, B ~ N(0, %g^2), seed %llu\n",
               o.make_adapter.c_str(), static_cast<long long>(a.num_parameters()), static_cast<long long>(o.rank), o.alpha,
               o.b_std, static_cast<unsigned long long>(o.seed));
}

nlohmann::json score(const lorazip::engine::Model& model, const std::vector<int32_t>& ids, int64_t top) {
  const int64_t T = static_cast<int64_t>(ids.size());
  const int64_t V = model.config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(T * V)), probs(static_cast<size_t>(V));
  model.forward(ids.data(), T, logits.data());
  std::vector<double> lp;
  std::vector<double> bits;
  nlohmann::json tops = nlohmann::json::array();
  for (int64_t t = 0; t + 1 < T; ++t) {
    const float* row = logits.data() + t * V;
    const float mx = *std::max_element(row, row + V);
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
    const double lse = mx + std::log(sum);
    const int32_t next = ids[static_cast<size_t>(t + 1)];
    lp.push_back(static_cast<double>(row[next]) - lse);
    lorazip::engine::softmax(row, V, probs.data());
    bits.push_back(lorazip::engine::code_length_bits(probs[static_cast<size_t>(next)]));
    if (top > 0) {
      std::vector<int32_t> order(static_cast<size_t>(V));
      for (int64_t v = 0; v < V; ++v) order[static_cast<size_t>(v)] = static_cast<int32_t>(v);
      const int64_t k = std::min(top, V);
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t x, int32_t y) { return row[x] > row[y]; });
      nlohmann::json r = nlohmann::json::array();
      for (int64_t i = 0; i < k; ++i) r.push_back({order[static_cast<size_t>(i)], static_cast<double>(row[order[static_cast<size_t>(i)]]) - lse});
      tops.push_back(r);
    }
  }
  nlohmann::json out = {{"ids", ids}, {"logprobs", lp}, {"bits", bits}};
  if (top > 0) out["top"] = tops;
  return out;
}

void run(lorazip::LoadedModel& base, const Options& o) {
  std::unique_ptr<lorazip::LoraAdapter> adapter;
  lorazip::LlamaForCausalLM tm = lorazip::load_torch_model(base);
  if (!o.adapter.empty()) adapter = std::make_unique<lorazip::LoraAdapter>(lorazip::LoraAdapter::load(o.adapter, tm));
  const std::shared_ptr<const lorazip::engine::Model> model = lorazip::engine_model(tm, adapter.get());
  const int32_t bos = base.tokenizer->bos_id();
  if (bos < 0) throw std::invalid_argument("base '" + o.base + "' has no BOS token; the codec needs one");

  std::ifstream in(o.in);
  if (!in) throw std::runtime_error("cannot read " + o.in);
  std::vector<std::vector<int32_t>> docs;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line);
    std::vector<int32_t> body = j.contains("ids") ? j.at("ids").get<std::vector<int32_t>>()
                                                  : base.tokenizer->encode(j.at("text").get<std::string>());
    if (static_cast<int64_t>(body.size()) > o.max_tokens) body.resize(static_cast<size_t>(o.max_tokens));
    std::vector<int32_t> ids{bos};
    ids.insert(ids.end(), body.begin(), body.end());
    for (const int32_t id : ids)
      if (id < 0 || id >= model->config().vocab_size)
        throw std::invalid_argument("token id " + std::to_string(id) + " in " + o.in + " is outside the vocabulary");
    docs.push_back(std::move(ids));
  }
  std::vector<nlohmann::json> results(docs.size());
  lorazip::parallel_for(docs.size(), o.threads, [&](size_t i) { results[i] = score(*model, docs[i], o.top); });
  std::ofstream out(o.out);
  if (!out) throw std::runtime_error("cannot write " + o.out);
  for (const auto& r : results) out << r.dump() << "\n";
  if (!out) throw std::runtime_error("failed writing " + o.out);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    torch::set_num_threads(1);
    lorazip::LoadedModel base = lorazip::load_model(o.base);
    if (!o.make_adapter.empty()) make_adapter(base, o);
    else run(base, o);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "engine_logprobs: " << e.what() << "\n";
    return 1;
  }
}
