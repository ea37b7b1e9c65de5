// lorazip 0.1's coding path, kept for bench_codec only: the same chunks and groups as the LM codec,
// but every distribution from libtorch (LlamaForCausalLM::step with BLAS projections, torch::softmax),
// whose bits depend on the CPU and the BLAS kernel. bench_codec times it beside the engine, and
// times a teacher-forced libtorch forward of the same chunks.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "codec/engine/engine.h"
#include "codec/quantize.h"
#include "codec/range_coder.h"
#include "model/llama.h"

namespace lorazip::bench {

struct TorchPathTimes {
  double compress_s = 0, decompress_s = 0, forward_s = 0;
  bool round_trip_ok = false;
};

// Encodes `tokens` in chunks of `chunk` with groups of `group` streams stepped in lock-step on
// `threads` workers (one intra-op thread each, as lorazip 0.1 did), decodes the payloads the same
// way, and runs one teacher-forced forward over the chunks (batches of 8, `threads` intra-op threads).
inline TorchPathTimes run_torch_path(LlamaForCausalLM model, const std::vector<int32_t>& tokens, int64_t chunk, int64_t group,
                                     int threads) {
  using clock = std::chrono::steady_clock;
  const LlamaConfig& cfg = model->config();
  const int64_t V = cfg.vocab_size, bos = cfg.bos_token_id;
  const int bits = choose_total_bits(V);
  const size_t n_chunks = (tokens.size() + chunk - 1) / chunk;
  auto chunk_len = [&](size_t c) { return static_cast<int64_t>(std::min<size_t>(chunk, tokens.size() - c * chunk)); };
  const size_t n_groups = (n_chunks + group - 1) / group;
  std::vector<std::string> payloads(n_chunks);
  std::vector<int32_t> decoded(tokens.size());
  model->eval();

  // One group in lock-step; `code(stream, position, probs)` returns the token to feed back.
  auto lockstep = [&](size_t gi, auto code) {
    const size_t first = gi * group, n = std::min<size_t>(group, n_chunks - first);
    int64_t longest = 0;
    for (size_t s = 0; s < n; ++s) longest = std::max(longest, chunk_len(first + s));
    KVCache cache = model->new_cache(static_cast<int64_t>(n), longest);
    torch::Tensor input = torch::full({static_cast<int64_t>(n)}, bos, torch::kInt64);
    for (int64_t i = 0; i < longest; ++i) {
      torch::Tensor probs = torch::softmax(model->step(input, cache), -1).contiguous();
      const float* p = probs.data_ptr<float>();
      int64_t* in = input.data_ptr<int64_t>();
      for (size_t s = 0; s < n; ++s) in[s] = i < chunk_len(first + s) ? code(first + s, i, p + s * V) : bos;
    }
  };
  auto run_workers = [&](auto fn) {
    const int prev = at::get_num_threads();
    at::set_num_threads(1);
    engine::parallel_for(n_groups, threads, [&](size_t gi) {
      at::set_num_threads(1);
      torch::NoGradGuard ng;
      fn(gi);
    });
    at::set_num_threads(prev);
  };

  TorchPathTimes t;
  auto t0 = clock::now();
  run_workers([&](size_t gi) {
    const size_t first = gi * group, n = std::min<size_t>(group, n_chunks - first);
    std::vector<RangeEncoder> enc(n);
    std::vector<uint32_t> cdf(static_cast<size_t>(V + 1));
    lockstep(gi, [&](size_t c, int64_t i, const float* row) -> int64_t {
      const int32_t tok = tokens[c * chunk + i];
      quantize_cdf(row, V, bits, cdf.data());
      enc[c - first].encode(cdf[tok], cdf[tok + 1] - cdf[tok], bits);
      return tok;
    });
    for (size_t s = 0; s < n; ++s) payloads[first + s] = enc[s].finish();
  });
  t.compress_s = std::chrono::duration<double>(clock::now() - t0).count();

  t0 = clock::now();
  run_workers([&](size_t gi) {
    const size_t first = gi * group, n = std::min<size_t>(group, n_chunks - first);
    std::vector<RangeDecoder> dec;
    for (size_t s = 0; s < n; ++s)
      dec.emplace_back(reinterpret_cast<const uint8_t*>(payloads[first + s].data()), payloads[first + s].size());
    std::vector<uint32_t> cdf(static_cast<size_t>(V + 1));
    lockstep(gi, [&](size_t c, int64_t i, const float* row) -> int64_t {
      quantize_cdf(row, V, bits, cdf.data());
      const int tok = find_symbol(cdf.data(), static_cast<int>(V), dec[c - first].target(bits));
      dec[c - first].consume(cdf[tok], cdf[tok + 1] - cdf[tok], bits);
      decoded[c * chunk + i] = tok;
      return tok;
    });
  });
  t.decompress_s = std::chrono::duration<double>(clock::now() - t0).count();
  t.round_trip_ok = decoded == tokens;

  // Teacher-forced: [BOS, chunk[:-1]] rows, 8 chunks a forward, log-softmax as lorazip 0.1's ideal_bits.
  const int prev = at::get_num_threads();
  at::set_num_threads(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  t0 = clock::now();
  {
    torch::NoGradGuard ng;
    for (size_t c0 = 0; c0 < n_chunks; c0 += 8) {
      const int64_t nb = static_cast<int64_t>(std::min<size_t>(8, n_chunks - c0));
      torch::Tensor x = torch::full({nb, chunk}, bos, torch::kInt64);
      auto xa = x.accessor<int64_t, 2>();
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t i = 1; i < chunk_len(c0 + b); ++i) xa[b][i] = tokens[(c0 + b) * chunk + i - 1];
      torch::Tensor logp = torch::log_softmax(model->forward(x), -1);
      (void)logp.sum().item<double>();
    }
  }
  t.forward_s = std::chrono::duration<double>(clock::now() - t0).count();
  at::set_num_threads(prev);
  return t;
}

}  // namespace lorazip::bench
