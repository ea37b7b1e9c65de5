// A llama GGUF file as a lorazip base: the time and peak resident memory (VmHWM) of parsing it and
// of loading it into a float32 LlamaForCausalLM, then LoRA training steps on it (random tokens:
// speed and memory do not depend on their values) with tokens/s and the peak memory after them.
//
//   bench_gguf FILE.gguf [--threads N] [--batch B] [--seq T] [--steps S] [--rank R]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "adapters/adapter.h"
#include "model/gguf.h"
#include "model/gguf_llama.h"
#include "model/gguf_model.h"

using namespace lorazip;

namespace {

long long kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string f = std::string(field) + ":";
  while (std::getline(in, line))
    if (line.rfind(f, 0) == 0) return std::stoll(line.substr(f.size()));
  return -1;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_gguf FILE.gguf [--threads N] [--batch B] [--seq T] [--steps S] [--rank R]\n");
    return 2;
  }
  const std::string path = argv[1];
  int threads = 0;
  int64_t batch = 4, seq = 256, steps = 5, rank = 16;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const long long v = std::stoll(argv[i + 1]);
    if (k == "--threads") threads = static_cast<int>(v);
    else if (k == "--batch") batch = v;
    else if (k == "--seq") seq = v;
    else if (k == "--steps") steps = v;
    else if (k == "--rank") rank = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  try {
    const int nt = set_torch_threads(threads);
    double t0 = now();
    GgufFile f = GgufFile::open(path);
    const double t_parse = now() - t0;
    const long long rss_parse = kb("VmHWM");
    LlamaConfig c = llama_config_from_gguf(f);
    std::printf("file %s: GGUF v%u, %zu tensors, %zu metadata keys\n", path.c_str(), f.version(), f.tensors().size(),
                f.metadata().size());
    std::printf("config: layers %lld, hidden %lld, heads %lld/%lld, intermediate %lld, vocab %lld, tied %d, rope_theta %g, "
                "context %lld, rms_eps %g, bos %lld, eos %lld, add_bos %s\n",
                (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)c.num_attention_heads,
                (long long)c.num_key_value_heads, (long long)c.intermediate_size, (long long)c.vocab_size,
                c.tie_word_embeddings ? 1 : 0, c.rope_theta, (long long)c.max_position_embeddings, c.rms_norm_eps,
                (long long)c.bos_token_id, (long long)c.eos_token_id,
                f.has("tokenizer.ggml.add_bos_token") ? (f.get_bool("tokenizer.ggml.add_bos_token") ? "true" : "false") : "absent");
    t0 = now();
    LlamaForCausalLM m = load_gguf_model(f);
    const double t_load = now() - t0;
    const long long rss_load = kb("VmHWM");
    std::printf("parse %.3f s (VmHWM %lld MB); parse + load to float32 %.2f s (VmHWM %lld MB), %lld parameters, %d threads\n",
                t_parse, rss_parse / 1024, t_parse + t_load, rss_load / 1024, (long long)c.num_parameters(), nt);

    for (auto& p : m->parameters()) p.set_requires_grad(false);
    LoraConfig lc;
    lc.r = rank;
    lc.alpha = 2.0 * rank;
    LoraAdapter a(m, lc);
    a.set_trainable(true);
    a.attach(m);
    m->train();
    torch::optim::AdamW opt(a.parameters(), torch::optim::AdamWOptions(1e-3));
    torch::manual_seed(1);
    double t_steps = 0;
    for (int64_t s = 0; s < steps + 1; ++s) {  // step 0 warms up and is not timed
      torch::Tensor x = torch::randint(0, c.vocab_size, {batch, seq + 1}, torch::kLong);
      const double ts = now();
      torch::Tensor logits = m->forward(x.slice(1, 0, seq));  // (B, T, V)
      torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, c.vocab_size}), x.slice(1, 1).reshape({-1}));
      opt.zero_grad();
      loss.backward();
      opt.step();
      if (s > 0) t_steps += now() - ts;
    }
    std::printf("LoRA r=%lld on all 7 projections (%lld trainable): %lld steps of %lld x %lld tokens, %.2f s/step, %.0f tokens/s; "
                "VmHWM %lld MB\n",
                (long long)rank, (long long)a.num_parameters(), (long long)steps, (long long)batch, (long long)seq,
                t_steps / steps, steps * batch * seq / t_steps, kb("VmHWM") / 1024);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gguf: %s\n", e.what());
    return 1;
  }
  return 0;
}
