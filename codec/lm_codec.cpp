#include "codec/lm_codec.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "codec/quantize.h"
#include "codec/range_coder.h"
#include "common/hash.h"

namespace lorazip {
namespace {

struct Group {
  size_t first_chunk = 0;
  size_t n_streams = 0;
};

std::vector<Group> make_groups(size_t n_chunks, int64_t group_streams) {
  std::vector<Group> groups;
  for (size_t c = 0; c < n_chunks; c += static_cast<size_t>(group_streams))
    groups.push_back({c, std::min<size_t>(static_cast<size_t>(group_streams), n_chunks - c)});
  return groups;
}

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

// Runs fn(group_index) for every group on `threads` workers, each pinned to one intra-op thread.
// The first exception stops the remaining work and is rethrown on the caller's thread.
template <class Fn>
void run_groups(size_t n_groups, int threads, Fn fn) {
  int prev = at::get_num_threads();
  at::set_num_threads(1);
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto worker = [&] {
    at::set_num_threads(1);  // this thread's OpenMP/BLAS team: one thread
    torch::NoGradGuard no_grad;
    for (;;) {
      size_t g = next.fetch_add(1);
      if (g >= n_groups) return;
      {
        std::lock_guard<std::mutex> lock(error_mu);
        if (error) return;
      }
      try {
        fn(g);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
        return;
      }
    }
  };
  int n = std::max(1, std::min<int>(threads, static_cast<int>(n_groups)));
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  at::set_num_threads(prev);
  if (error) std::rethrow_exception(error);
}

// The one probability path, shared by the encoder and the decoder: the streams of group `g`
// advance in lock-step through LlamaForCausalLM::step(), all starting from BOS at position 0; a
// stream that has ended is fed BOS so the batch shape never changes. For stream s at position i
// (i < its token count) `code(s, i, row)` gets the float32 softmax row and returns the token that
// was coded there, which is fed back as the stream's next input.
template <class Code>
void run_lockstep(LlamaForCausalLM& model, const std::vector<ContainerChunk>& chunks, const Group& g, int64_t bos,
                  int64_t vocab, Code code) {
  const int64_t B = static_cast<int64_t>(g.n_streams);
  int64_t longest = 0;
  for (size_t s = 0; s < g.n_streams; ++s) longest = std::max<int64_t>(longest, chunks[g.first_chunk + s].n_tokens);
  KVCache cache = model->new_cache(B, std::max<int64_t>(longest, 1));
  torch::Tensor input = torch::full({B}, bos, torch::kInt64);
  for (int64_t i = 0; i < longest; ++i) {
    torch::Tensor probs = torch::softmax(model->step(input, cache).to(torch::kFloat32), -1).contiguous();
    const float* p = probs.data_ptr<float>();
    int64_t* in = input.data_ptr<int64_t>();
    for (int64_t s = 0; s < B; ++s)
      in[s] = i < chunks[g.first_chunk + s].n_tokens ? code(static_cast<size_t>(s), i, p + s * vocab) : bos;
  }
}

}  // namespace

std::string short_fp(const std::string& fp) { return fp.size() > 12 ? fp.substr(0, 12) : (fp.empty() ? "(none)" : fp); }

LmCodec::LmCodec(LlamaForCausalLM model, const Tokenizer& tokenizer, CodecIdentity identity)
    : model_(std::move(model)), tok_(tokenizer), id_(std::move(identity)) {
  if (tok_.vocab_size() != model_->config().vocab_size)
    throw std::invalid_argument("tokenizer has " + std::to_string(tok_.vocab_size()) + " pieces but the model's vocab_size is " +
                                std::to_string(model_->config().vocab_size));
  if (model_->config().bos_token_id < 0)
    throw std::invalid_argument("the model has no bos_token_id (null in config.json), but every coded stream starts from BOS");
  model_->eval();
}

void LmCodec::check_identity(const Container& c, const CodecIdentity& id, const std::string& name) {
  if (c.base_fingerprint != id.base_fingerprint)
    throw std::runtime_error(name + ": compressed with base model " + short_fp(c.base_fingerprint) +
                             ", but the given base model is " + short_fp(id.base_fingerprint) +
                             " (pass the same -m directory that compressed it)");
  if (c.tokenizer_fingerprint != id.tokenizer_fingerprint)
    throw std::runtime_error(name + ": compressed with tokenizer " + short_fp(c.tokenizer_fingerprint) +
                             ", but the given model's tokenizer.model is " + short_fp(id.tokenizer_fingerprint));
  if (c.adapter_fingerprint != id.adapter_fingerprint) {
    std::string want = c.adapter_fingerprint.empty()
                           ? std::string("no adapter")
                           : "adapter " + short_fp(c.adapter_fingerprint) +
                                 (c.adapter_domain.empty() ? "" : " (domain '" + c.adapter_domain + "')");
    std::string have = id.adapter_fingerprint.empty()
                           ? std::string("no adapter")
                           : "adapter " + short_fp(id.adapter_fingerprint) +
                                 (id.adapter_domain.empty() ? "" : " (domain '" + id.adapter_domain + "')");
    throw std::runtime_error(name + ": compressed with " + want + ", but decompressing with " + have +
                             (c.adapter_fingerprint.empty() ? " (drop -a)" : " (pass -a with that adapter, or -A with a directory holding it)"));
  }
}

double LmCodec::ideal_bits(const std::vector<int32_t>& tokens, int64_t chunk_tokens) const {
  const LlamaConfig& cfg = model_->config();
  const int64_t chunk = chunk_tokens > 0 ? chunk_tokens : cfg.max_position_embeddings - 1;
  torch::NoGradGuard no_grad;
  auto model = model_;
  double bits = 0;
  const int64_t per_batch = 8;
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(chunk * per_batch)) {
    size_t end = std::min(tokens.size(), start + static_cast<size_t>(chunk * per_batch));
    int64_t n_chunks = static_cast<int64_t>((end - start + chunk - 1) / chunk);
    // [n_chunks, chunk + 1]: BOS then the chunk; short last chunk padded (its padding is not scored).
    torch::Tensor x = torch::full({n_chunks, chunk + 1}, cfg.bos_token_id, torch::kInt64);
    torch::Tensor mask = torch::zeros({n_chunks, chunk}, torch::kFloat32);
    auto xa = x.accessor<int64_t, 2>();
    auto ma = mask.accessor<float, 2>();
    for (size_t i = start; i < end; ++i) {
      int64_t c = static_cast<int64_t>((i - start) / chunk), k = static_cast<int64_t>((i - start) % chunk);
      xa[c][k + 1] = tokens[i];
      ma[c][k] = 1.0f;
    }
    torch::Tensor logp = torch::log_softmax(model->forward(x.narrow(1, 0, chunk)).to(torch::kFloat32), -1);
    torch::Tensor picked = logp.gather(2, x.narrow(1, 1, chunk).unsqueeze(2)).squeeze(2);
    bits -= (picked * mask).sum().item<double>() / std::log(2.0);
  }
  return bits;
}

std::string LmCodec::compress(std::string_view input, const LmCodecOptions& opt, CodeStats* stats) const {
  auto t0 = std::chrono::steady_clock::now();
  const LlamaConfig& cfg = model_->config();
  int64_t chunk = opt.chunk_tokens != 0 ? opt.chunk_tokens : cfg.max_position_embeddings - 1;  // negative: refused below
  if (chunk < 1 || chunk > cfg.max_position_embeddings - 1)
    throw std::invalid_argument("chunk_tokens must be in 1.." + std::to_string(cfg.max_position_embeddings - 1) +
                                " for this model (its context is " + std::to_string(cfg.max_position_embeddings) + ")");
  if (opt.group_streams < 1 || opt.group_streams > 1024)
    throw std::invalid_argument("group_streams must be in 1..1024, got " + std::to_string(opt.group_streams));

  std::vector<int32_t> tokens = tok_.encode(input);
  const int bits = choose_total_bits(cfg.vocab_size);
  const int64_t V = cfg.vocab_size;

  Container c;
  c.base_fingerprint = id_.base_fingerprint;
  c.tokenizer_fingerprint = id_.tokenizer_fingerprint;
  c.adapter_fingerprint = id_.adapter_fingerprint;
  c.adapter_domain = id_.adapter_domain;
  c.adapter_mode = id_.adapter_fingerprint.empty() ? AdapterMode::None : AdapterMode::Merged;
  c.total_bits = bits;
  c.chunk_tokens = chunk;
  c.group_streams = opt.group_streams;
  c.original_bytes = input.size();
  c.original_xxh64 = xxh64(input);

  size_t n_chunks = (tokens.size() + chunk - 1) / chunk;
  c.chunks.resize(n_chunks);
  for (size_t i = 0; i < n_chunks; ++i)
    c.chunks[i].n_tokens = static_cast<uint32_t>(std::min<size_t>(chunk, tokens.size() - i * chunk));

  std::vector<Group> groups = make_groups(n_chunks, opt.group_streams);
  std::vector<double> group_ideal(groups.size(), 0.0);
  const int64_t bos = cfg.bos_token_id;
  auto model = model_;

  run_groups(groups.size(), resolve_threads(opt.threads), [&](size_t gi) {
    const Group& g = groups[gi];
    std::vector<RangeEncoder> enc(g.n_streams);
    std::vector<uint32_t> cdf(V + 1);
    double ideal = 0;
    run_lockstep(model, c.chunks, g, bos, V, [&](size_t s, int64_t i, const float* row) -> int32_t {
      int32_t t = tokens[(g.first_chunk + s) * chunk + i];
      quantize_cdf(row, V, bits, cdf.data());
      enc[s].encode(cdf[t], cdf[t + 1] - cdf[t], bits);
      ideal -= std::log2(std::max(static_cast<double>(row[t]), 1e-300));
      return t;
    });
    for (size_t s = 0; s < g.n_streams; ++s) c.chunks[g.first_chunk + s].payload = enc[s].finish();
    group_ideal[gi] = ideal;
  });

  std::string out = c.serialize();
  if (stats) {
    stats->bytes = static_cast<int64_t>(input.size());
    stats->tokens = static_cast<int64_t>(tokens.size());
    stats->chunks = static_cast<int64_t>(n_chunks);
    stats->ideal_bits = 0;
    for (double b : group_ideal) stats->ideal_bits += b;
    stats->payload_bytes = 0;
    for (const auto& ch : c.chunks) stats->payload_bytes += static_cast<int64_t>(ch.payload.size());
    stats->file_bytes = static_cast<int64_t>(out.size());
    stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return out;
}

std::string LmCodec::decompress(std::string_view file, const std::string& name, int threads, CodeStats* stats) const {
  auto t0 = std::chrono::steady_clock::now();
  Container c = Container::parse(file, name);
  check_identity(c, id_, name);
  const LlamaConfig& cfg = model_->config();
  const int64_t V = cfg.vocab_size;
  if (c.adapter_mode != (c.adapter_fingerprint.empty() ? AdapterMode::None : AdapterMode::Merged))
    throw std::runtime_error(name + ": adapter mode '" + adapter_mode_name(c.adapter_mode) + "' is not one this version of lorazip codes with");
  if (c.chunk_tokens < 1 || c.chunk_tokens > cfg.max_position_embeddings - 1)
    throw std::runtime_error(name + ": chunk length " + std::to_string(c.chunk_tokens) + " exceeds this model's context");
  if (c.total_bits != choose_total_bits(V))
    throw std::runtime_error(name + ": coder precision " + std::to_string(c.total_bits) + " bits does not match this model's " +
                             std::to_string(choose_total_bits(V)));
  if (c.group_streams < 1 || c.group_streams > 1024)
    throw std::runtime_error(name + ": invalid stream group size " + std::to_string(c.group_streams));
  for (size_t i = 0; i < c.chunks.size(); ++i) {
    uint32_t n = c.chunks[i].n_tokens;
    bool last = i + 1 == c.chunks.size();
    if (n == 0 || n > static_cast<uint64_t>(c.chunk_tokens) || (!last && n != c.chunk_tokens))
      throw std::runtime_error(name + ": chunk " + std::to_string(i) + " has an invalid token count " + std::to_string(n));
  }
  const int bits = c.total_bits;
  const int64_t chunk = c.chunk_tokens;
  std::vector<int32_t> tokens(c.chunks.empty() ? 0 : (c.chunks.size() - 1) * chunk + c.chunks.back().n_tokens);
  std::vector<Group> groups = make_groups(c.chunks.size(), c.group_streams);
  const int64_t bos = cfg.bos_token_id;
  auto model = model_;

  run_groups(groups.size(), resolve_threads(threads), [&](size_t gi) {
    const Group& g = groups[gi];
    std::vector<RangeDecoder> dec;
    dec.reserve(g.n_streams);
    for (size_t s = 0; s < g.n_streams; ++s) {
      const std::string& pl = c.chunks[g.first_chunk + s].payload;
      dec.emplace_back(reinterpret_cast<const uint8_t*>(pl.data()), pl.size());
    }
    std::vector<uint32_t> cdf(V + 1);
    run_lockstep(model, c.chunks, g, bos, V, [&](size_t s, int64_t i, const float* row) -> int32_t {
      quantize_cdf(row, V, bits, cdf.data());
      int t = find_symbol(cdf.data(), static_cast<int>(V), dec[s].target(bits));
      dec[s].consume(cdf[t], cdf[t + 1] - cdf[t], bits);
      tokens[(g.first_chunk + s) * chunk + i] = t;
      return t;
    });
    for (size_t s = 0; s < g.n_streams; ++s)
      if (dec[s].overrun())
        throw std::runtime_error(name + ": chunk " + std::to_string(g.first_chunk + s) +
                                 " ended early (truncated or corrupted stream)");
  });

  std::string out = tok_.decode(tokens);
  if (out.size() != c.original_bytes || xxh64(out) != c.original_xxh64)
    throw std::runtime_error(name + ": decoded bytes fail the checksum (" + std::to_string(out.size()) + " bytes, expected " +
                             std::to_string(c.original_bytes) +
                             "); the file is corrupted, or this machine computes the model's floats differently from the one that compressed it");
  if (stats) {
    stats->bytes = static_cast<int64_t>(out.size());
    stats->tokens = static_cast<int64_t>(tokens.size());
    stats->chunks = static_cast<int64_t>(c.chunks.size());
    stats->payload_bytes = 0;
    for (const auto& ch : c.chunks) stats->payload_bytes += static_cast<int64_t>(ch.payload.size());
    stats->file_bytes = static_cast<int64_t>(file.size());
    stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return out;
}

}  // namespace lorazip
