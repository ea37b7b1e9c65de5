// The LM codec on the coding engine: chunking, the encoder and decoder as streams of the stream
// runner (several files in the same engine calls), the one code-length function, and the checks a
// file must pass.
#include "codec/lm_codec.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <stdexcept>

#include "codec/quantize.h"
#include "codec/range_coder.h"
#include "codec/stream_runner.h"
#include "common/hash.h"
#include "common/progress.h"

namespace lorazip {
namespace {

constexpr int64_t kSlice = 64;     // positions a teacher-forced stream feeds in one engine call
constexpr int64_t kMaxRows = 256;  // rows an engine call takes in all (bounds memory: kMaxRows x V logits)

int64_t resolve_chunk(const engine::Config& cfg, int64_t chunk_tokens, int64_t& context_tokens) {
  const Chunking c = Chunking::resolve(cfg.max_position_embeddings, chunk_tokens, context_tokens);
  context_tokens = c.window;
  return c.chunk;
}

// One chunk teacher-forced: the stream reads BOS, then the `ctx` context tokens seq[0..ctx), then
// the chunk's tokens seq[ctx..ctx+n); the input at position i is BOS for i = 0, else seq[i - 1].
// fn(j, token, probs) gets the distribution of seq[ctx + j], j in [0, n); the context rows need no
// logits.
class ForcedTask : public StreamTask {
 public:
  using Fn = std::function<void(int64_t, int32_t, const float*)>;
  ForcedTask(const int32_t* seq, int64_t ctx, int64_t n, int32_t bos, const engine::Adapter* adapter, Fn fn)
      : seq_(seq), ctx_(ctx), n_(n), bos_(bos), adapter_(adapter), fn_(std::move(fn)) {}
  int64_t positions() const override { return ctx_ + n_; }
  const engine::Adapter* adapter() const override { return adapter_; }
  void next_rows(int64_t max_rows, std::vector<int32_t>& tokens, std::vector<char>& want) override {
    for (int64_t r = 0; r < max_rows && fed_ < ctx_ + n_; ++r, ++fed_) {
      tokens.push_back(fed_ == 0 ? bos_ : seq_[fed_ - 1]);
      want.push_back(fed_ >= ctx_);
    }
  }
  void consume(const float* probs) override {
    fn_(consumed_, seq_[ctx_ + consumed_], probs);
    ++consumed_;
  }
  bool done() const override { return consumed_ == n_ && fed_ == ctx_ + n_; }

 private:
  const int32_t* seq_;
  int64_t ctx_, n_;
  int32_t bos_;
  const engine::Adapter* adapter_;
  Fn fn_;
  int64_t fed_ = 0, consumed_ = 0;
};

// Teacher-forced chunks of documents: every chunk is ready at once.
class ForcedSource : public StreamSource {
 public:
  explicit ForcedSource(std::vector<std::unique_ptr<StreamTask>> tasks) : tasks_(std::move(tasks)) {}
  std::unique_ptr<StreamTask> next_task() override { return next_ < tasks_.size() ? std::move(tasks_[next_++]) : nullptr; }
  bool exhausted() const override { return error || next_ >= tasks_.size(); }
  void fail(std::exception_ptr e) override {
    if (!error) error = e;
  }
  std::exception_ptr error;

 private:
  std::vector<std::unique_ptr<StreamTask>> tasks_;
  size_t next_ = 0;
};

// One chunk decoded: reads BOS and the `ctx` context tokens (decoded before), then steps, each
// decoded token fed back as the next input; the chunk's tokens land in out[0..n).
class DecodeTask : public StreamTask {
 public:
  DecodeTask(const int32_t* context, int64_t ctx, int64_t n, int32_t bos, const engine::Adapter* adapter,
             const std::string& payload, int bits, int64_t V, int32_t* out)
      : context_(context), ctx_(ctx), n_(n), bos_(bos), adapter_(adapter), bits_(bits), V_(V), out_(out),
        dec_(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()) {}
  int64_t positions() const override { return ctx_ + n_; }
  const engine::Adapter* adapter() const override { return adapter_; }
  void next_rows(int64_t max_rows, std::vector<int32_t>& tokens, std::vector<char>& want) override {
    if (prefix_ <= ctx_) {  // BOS and the context, teacher-forced; the last of them predicts token 0
      for (int64_t r = 0; r < max_rows && prefix_ <= ctx_; ++r, ++prefix_) {
        tokens.push_back(prefix_ == 0 ? bos_ : context_[prefix_ - 1]);
        want.push_back(prefix_ == ctx_);
      }
      return;
    }
    if (pending_) {
      tokens.push_back(out_[decoded_ - 1]);
      want.push_back(1);
      pending_ = false;
    }
  }
  void consume(const float* probs) override {
    thread_local std::vector<uint32_t> cdf;
    cdf.resize(static_cast<size_t>(V_ + 1));
    quantize_cdf(probs, V_, bits_, cdf.data());
    const int t = find_symbol(cdf.data(), static_cast<int>(V_), dec_.target(bits_));
    dec_.consume(cdf[t], cdf[t + 1] - cdf[t], bits_);
    out_[decoded_++] = t;
    pending_ = decoded_ < n_;
  }
  bool done() const override { return decoded_ == n_; }
  bool overrun() const { return dec_.overrun(); }

 private:
  const int32_t* context_;
  int64_t ctx_, n_;
  int32_t bos_;
  const engine::Adapter* adapter_;
  int bits_;
  int64_t V_;
  int32_t* out_;
  RangeDecoder dec_;
  int64_t prefix_ = 0, decoded_ = 0;
  bool pending_ = false;
};

}  // namespace

Chunking Chunking::resolve(int64_t max_positions, int64_t chunk_tokens, int64_t context_tokens) {
  const int64_t chunk = chunk_tokens != 0 ? chunk_tokens : max_positions - 1;  // negative: refused below
  if (chunk < 1 || chunk > max_positions - 1)
    throw std::invalid_argument("chunk_tokens must be in 1.." + std::to_string(max_positions - 1) + " for this model (its context is " +
                                std::to_string(max_positions) + ")");
  const int64_t window = resolve_context_tokens(chunk, context_tokens);
  if (window >= chunk)
    throw std::invalid_argument("context_tokens must be in 0.." + std::to_string(chunk - 1) + " (below the chunk length " +
                                std::to_string(chunk) + "), got " + std::to_string(window));
  return {chunk, window};
}

Chunking Chunking::of_archive(int64_t max_positions, int64_t header_chunk_tokens, int64_t header_context_tokens) {
  return header_chunk_tokens > 0 ? resolve(max_positions, header_chunk_tokens, header_context_tokens)
                                 : resolve(max_positions, 0, kDefaultContextTokens);
}

int64_t resolve_context_tokens(int64_t chunk_tokens, int64_t context_tokens) {
  if (context_tokens < -1)  // only -1 means "automatic": a typo like -64 must not silently become it
    throw std::invalid_argument("context_tokens must be -1 (a quarter of the chunk), 0 (independent chunks) or a count "
                                "below the chunk length, got " + std::to_string(context_tokens));
  return context_tokens == -1 ? chunk_tokens / kAutoContextDivisor : context_tokens;
}

std::vector<ChunkSpan> plan_chunks(size_t n_tokens, int64_t chunk_tokens, int64_t context_tokens, int64_t prefix_tokens) {
  if (chunk_tokens < 1 || context_tokens < 0 || context_tokens >= chunk_tokens)
    throw std::invalid_argument("plan_chunks: need chunk_tokens >= 1 and 0 <= context_tokens < chunk_tokens, got " +
                                std::to_string(chunk_tokens) + " and " + std::to_string(context_tokens));
  if (prefix_tokens < 0 || prefix_tokens >= chunk_tokens)
    throw std::invalid_argument("plan_chunks: need 0 <= prefix_tokens < chunk_tokens, got " + std::to_string(prefix_tokens) +
                                " and " + std::to_string(chunk_tokens));
  std::vector<ChunkSpan> out;
  size_t start = 0;
  while (start < n_tokens) {
    const int64_t ctx = start == 0 ? prefix_tokens : context_tokens;
    const int64_t n = static_cast<int64_t>(std::min<size_t>(static_cast<size_t>(chunk_tokens - ctx), n_tokens - start));
    out.push_back({start, n, ctx});
    start += static_cast<size_t>(n);
  }
  return out;
}

std::string context_fingerprint(const std::vector<int32_t>& context) {
  std::string bytes;
  bytes.reserve(context.size() * 4);
  for (int32_t id : context)
    for (int k = 0; k < 4; ++k) bytes.push_back(static_cast<char>((static_cast<uint32_t>(id) >> (8 * k)) & 0xFF));
  return sha256_hex(bytes);
}

std::vector<int32_t> context_window(const std::vector<int32_t>& context, int32_t bos, int64_t chunk_tokens) {
  size_t begin = !context.empty() && context[0] == bos ? 1 : 0;
  const size_t keep = static_cast<size_t>(std::max<int64_t>(chunk_tokens, 0) / 2);
  if (context.size() - begin > keep) begin = context.size() - keep;
  return std::vector<int32_t>(context.begin() + static_cast<std::ptrdiff_t>(begin), context.end());
}

namespace {

// A document behind its context window (conditioned coding) in one buffer; plain documents are
// used where they lie.
struct Staged {
  std::vector<int32_t> all;  // window + document (conditioned only)
  const int32_t* doc = nullptr;
  size_t size = 0;
  int64_t prefix = 0;
};
Staged stage(const int32_t* doc, size_t n, const std::vector<int32_t>* window) {
  Staged st;
  st.size = n;
  if (!window) {
    st.doc = doc;
    return st;
  }
  st.all.reserve(window->size() + n);
  st.all.assign(window->begin(), window->end());
  st.all.insert(st.all.end(), doc, doc + n);
  st.prefix = static_cast<int64_t>(window->size());
  st.doc = st.all.data() + window->size();
  return st;
}

// Ideal code lengths of (document, adapter) jobs under `model`'s weights, every chunk of every job
// teacher-forced in the same engine calls; per job, chunks summed in order.
// `contexts`: per document, the context it is scored given (nullptr: from BOS alone); empty: none.
std::vector<double> score_jobs(const engine::Model& model, const std::vector<TokenSpan>& docs,
                               const std::vector<const engine::Adapter*>& adapters, int64_t chunk_tokens, int64_t context_tokens,
                               int threads, const std::vector<const std::vector<int32_t>*>& contexts) {
  const engine::Config& cfg = model.config();
  const int64_t chunk = resolve_chunk(cfg, chunk_tokens, context_tokens);  // resolves context_tokens too
  if (cfg.bos_token_id < 0 || cfg.bos_token_id >= cfg.vocab_size)
    throw std::invalid_argument("code_length_bits: the model has no usable bos_token_id, but every coded stream starts from BOS");
  if (threads > 0) engine::set_threads(threads);
  if (!contexts.empty() && contexts.size() != docs.size())
    throw std::invalid_argument("code_length_bits: " + std::to_string(contexts.size()) + " contexts for " + std::to_string(docs.size()) +
                                " documents");
  std::vector<Staged> staged;
  staged.reserve(docs.size());
  std::vector<std::vector<ChunkSpan>> plans;
  size_t n_pieces = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    const std::vector<int32_t>* context = contexts.empty() ? nullptr : contexts[i];
    std::vector<int32_t> window;
    if (context) window = context_window(*context, static_cast<int32_t>(cfg.bos_token_id), chunk);
    staged.push_back(stage(docs[i].data, docs[i].size, context ? &window : nullptr));
    plans.push_back(plan_chunks(docs[i].size, chunk, context_tokens, staged.back().prefix));
    n_pieces += plans.back().size();
  }
  struct Piece {
    size_t doc;
    double bits = 0;
  };
  std::vector<Piece> pieces;
  pieces.reserve(n_pieces);  // the tasks keep pointers into it
  std::vector<std::unique_ptr<StreamTask>> tasks;
  for (size_t d = 0; d < docs.size(); ++d)
    for (const ChunkSpan& c : plans[d]) {
      const int32_t* seq = staged[d].doc + c.start - static_cast<size_t>(c.context);
      pieces.push_back({d});
      Piece* p = &pieces.back();
      tasks.push_back(std::make_unique<ForcedTask>(seq, c.context, c.n, static_cast<int32_t>(cfg.bos_token_id), adapters[d],
                                                   [p](int64_t, int32_t t, const float* probs) {
                                                     p->bits += engine::code_length_bits(probs[t]);
                                                   }));
    }
  ForcedSource source(std::move(tasks));
  RunnerOptions ro;
  ro.max_rows = kMaxRows;
  ro.prefill_rows = kSlice;
  run_streams(model, {&source}, ro);
  if (source.error) std::rethrow_exception(source.error);
  std::vector<double> out(docs.size(), 0.0);
  for (const Piece& p : pieces) out[p.doc] += p.bits;  // chunk order within a document
  return out;
}

}  // namespace

std::vector<double> code_length_bits(const engine::Model& model, const std::vector<TokenSpan>& docs, int64_t chunk_tokens,
                                     int64_t context_tokens, int threads, const std::vector<int32_t>* context) {
  return score_jobs(model, docs, std::vector<const engine::Adapter*>(docs.size(), model.adapter()), chunk_tokens, context_tokens,
                    threads, context ? std::vector<const std::vector<int32_t>*>(docs.size(), context)
                                     : std::vector<const std::vector<int32_t>*>());
}

std::vector<double> code_length_bits(const engine::Model& model, const std::vector<TokenSpan>& docs, int64_t chunk_tokens,
                                     int64_t context_tokens, int threads, const std::vector<const std::vector<int32_t>*>& contexts) {
  return score_jobs(model, docs, std::vector<const engine::Adapter*>(docs.size(), model.adapter()), chunk_tokens, context_tokens,
                    threads, contexts);
}

std::vector<double> LmCodec::ideal_bits_many(const std::vector<const LmCodec*>& codecs, const std::vector<int32_t>& tokens,
                                             int64_t chunk_tokens, int64_t context_tokens, int threads,
                                             const std::vector<int32_t>* context) {
  std::vector<double> out(codecs.size(), 0.0);
  if (codecs.empty()) return out;
  // Codecs over one base's weights (version 2) score together; any other scores alone.
  const engine::Model& first = codecs[0]->model();
  bool together = first.arithmetic_version() == 2;
  for (const LmCodec* c : codecs)
    together = together && c->model().arithmetic_version() == 2 && &c->model().weights() == &first.weights();
  if (!together) {
    for (size_t i = 0; i < codecs.size(); ++i) out[i] = codecs[i]->ideal_bits(tokens, chunk_tokens, context_tokens, threads, context);
    return out;
  }
  const engine::Model base(first.weights_ptr());
  std::vector<TokenSpan> docs(codecs.size(), TokenSpan{tokens.data(), tokens.size()});
  std::vector<const engine::Adapter*> adapters;
  for (const LmCodec* c : codecs) adapters.push_back(c->model().adapter());
  return score_jobs(base, docs, adapters, chunk_tokens, context_tokens, threads,
                    context ? std::vector<const std::vector<int32_t>*>(docs.size(), context) : std::vector<const std::vector<int32_t>*>());
}

std::string short_fp(const std::string& fp) { return fp.size() > 12 ? fp.substr(0, 12) : (fp.empty() ? "(none)" : fp); }

LmCodec::LmCodec(std::shared_ptr<const engine::Model> model, const Tokenizer& tokenizer, CodecIdentity identity,
                 Version1Model version1, Version1Identity version1_identity)
    : model_(std::move(model)),
      tok_(tokenizer),
      id_(std::move(identity)),
      version1_(std::move(version1)),
      version1_identity_(std::move(version1_identity)) {
  if (!model_) throw std::invalid_argument("LmCodec: no model");
  const engine::Config& cfg = model_->config();
  if (tok_.vocab_size() != cfg.vocab_size)
    throw std::invalid_argument("tokenizer has " + std::to_string(tok_.vocab_size()) + " pieces but the model's vocab_size is " +
                                std::to_string(cfg.vocab_size));
  if (cfg.bos_token_id < 0 || cfg.bos_token_id >= cfg.vocab_size)
    throw std::invalid_argument("the model has no bos_token_id (null in config.json), but every coded stream starts from BOS");
}

CodecIdentity LmCodec::identity_for_version(int v) const { return v == 1 && version1_identity_ ? version1_identity_() : id_; }

std::shared_ptr<const engine::Model> LmCodec::model_for(int v, const std::string& name) const {
  if (model_->computes_version(v)) return model_;
  if (v == 1 && version1_) {
    std::lock_guard<std::mutex> lock(v1_mu_);
    if (!v1_model_) v1_model_ = version1_();
    return v1_model_;
  }
  if (v >= engine::kOldestArithmeticVersion && v <= engine::kArithmeticVersion)
    throw std::runtime_error(name + ": coded with engine arithmetic version " + std::to_string(v) + ", but this codec computes version " +
                             std::to_string(model_->arithmetic_version()) + " only (it was built without a version-" +
                             std::to_string(v) + " model)");
  throw std::runtime_error(name + ": coded with engine arithmetic version " + std::to_string(v) +
                           ", but this lorazip computes versions " + std::to_string(engine::kOldestArithmeticVersion) +
                           ".." + std::to_string(engine::kArithmeticVersion) +
                           " (decompress it with the lorazip that wrote it)");
}

void LmCodec::check_identity(const Container& c, const CodecIdentity& id, const std::string& name) {
  if (c.base_fingerprint != id.base_fingerprint)
    throw std::runtime_error(name + ": compressed with base model " + short_fp(c.base_fingerprint) +
                             ", but the given base model is " + short_fp(id.base_fingerprint) +
                             " (pass the same -m base, directory or GGUF file, that compressed it)");
  if (c.tokenizer_fingerprint != id.tokenizer_fingerprint)
    throw std::runtime_error(name + ": compressed with tokenizer " + short_fp(c.tokenizer_fingerprint) +
                             ", but the given model's tokenizer is " + short_fp(id.tokenizer_fingerprint));
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

void LmCodec::check_identity(const CompactFile& f, const CodecIdentity& id, const std::string& name) {
  if (f.stored) return;
  auto hex = [](uint32_t v, int digits) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%0*x", digits, v);
    return std::string(buf);
  };
  if (f.base_tag != fingerprint_tag16(id.base_fingerprint))
    throw std::runtime_error(name + ": compressed with a base model whose fingerprint begins " + hex(f.base_tag, 4) +
                             ", but the given base model is " + short_fp(id.base_fingerprint) +
                             " (pass the same -m base, directory or GGUF file, that compressed it)");
  if (f.tokenizer_tag != fingerprint_tag8(id.tokenizer_fingerprint))
    throw std::runtime_error(name + ": compressed with a tokenizer whose fingerprint begins " + hex(f.tokenizer_tag, 2) +
                             ", but the given model's tokenizer is " + short_fp(id.tokenizer_fingerprint));
  const bool id_adapter = !id.adapter_fingerprint.empty();
  if (f.has_adapter != id_adapter || (id_adapter && f.adapter_tag != f.adapter_tag_for(id.adapter_fingerprint))) {
    const std::string want =
        f.has_adapter ? "an adapter whose fingerprint begins " + hex(f.adapter_tag, f.adapter_tag_digits()) : std::string("no adapter");
    const std::string have = id_adapter ? "adapter " + short_fp(id.adapter_fingerprint) +
                                              (id.adapter_domain.empty() ? "" : " (domain '" + id.adapter_domain + "')")
                                        : std::string("no adapter");
    throw std::runtime_error(name + ": compressed with " + want + ", but decompressing with " + have +
                             (f.has_adapter ? " (pass -a with that adapter, or -A with a directory holding it)" : " (drop -a)"));
  }
}

std::vector<int32_t> LmCodec::tokenize(std::string_view input) const {
  bool prefixed = false;
  return tok_.encode_native(input, &prefixed);
}

double LmCodec::ideal_bits(const std::vector<int32_t>& tokens, int64_t chunk_tokens, int64_t context_tokens, int threads,
                          const std::vector<int32_t>* context) const {
  return code_length_bits(*model_, {{tokens.data(), tokens.size()}}, chunk_tokens, context_tokens, threads, context)[0];
}

std::string LmCodec::compress(std::string_view input, const LmCodecOptions& opt, CodeStats* stats) const {
  auto t0 = std::chrono::steady_clock::now();
  const engine::Config& cfg = model_->config();
  int64_t context_tokens = opt.context_tokens;
  const int64_t chunk = resolve_chunk(cfg, opt.chunk_tokens, context_tokens);
  if (opt.group_streams < 1 || opt.group_streams > 1024)
    throw std::invalid_argument("group_streams must be in 1..1024, got " + std::to_string(opt.group_streams));
  if (opt.arithmetic_version != 0 && (opt.arithmetic_version < engine::kOldestArithmeticVersion ||
                                      opt.arithmetic_version > engine::kArithmeticVersion))
    throw std::invalid_argument("arithmetic_version must be 0 (the model's), or " + std::to_string(engine::kOldestArithmeticVersion) +
                                ".." + std::to_string(engine::kArithmeticVersion) + ", got " + std::to_string(opt.arithmetic_version));
  const int version = opt.arithmetic_version == 0 ? model_->arithmetic_version() : opt.arithmetic_version;
  const std::shared_ptr<const engine::Model> model = model_for(version, "compress");
  const CodecIdentity id = identity_for_version(version);
  if (opt.threads > 0) engine::set_threads(opt.threads);

  bool dummy_prefix = false;
  std::vector<int32_t> tokens = tok_.encode_native(input, &dummy_prefix);
  std::vector<int32_t> window;
  if (opt.context) window = context_window(*opt.context, static_cast<int32_t>(cfg.bos_token_id), chunk);
  const Staged staged = stage(tokens.data(), tokens.size(), opt.context ? &window : nullptr);
  const std::vector<ChunkSpan> plan = plan_chunks(tokens.size(), chunk, context_tokens, staged.prefix);
  const std::string context_fp = opt.context ? context_fingerprint(*opt.context) : std::string();
  const int bits = choose_total_bits(cfg.vocab_size);
  const int64_t V = cfg.vocab_size;
  if (opt.progress) opt.progress->set_total(static_cast<int64_t>(tokens.size()));

  Container c;
  c.base_fingerprint = id.base_fingerprint;
  c.tokenizer_fingerprint = id.tokenizer_fingerprint;
  c.adapter_fingerprint = id.adapter_fingerprint;
  c.adapter_domain = id.adapter_domain;
  c.adapter_mode = id.adapter_fingerprint.empty() ? AdapterMode::None : version == 1 ? AdapterMode::Merged : AdapterMode::Unmerged;
  c.arithmetic_version = version;
  c.total_bits = bits;
  c.chunk_tokens = chunk;
  // W is recorded only when it shapes the file (more than one chunk), so a short input gives the
  // same bytes whatever W was asked for.
  c.context_tokens = plan.size() > 1 ? context_tokens : 0;
  c.flags = (dummy_prefix ? kFlagDummyPrefix : 0u) | (c.context_tokens > 0 ? kFlagChunkContext : 0u) |
            (opt.context ? kFlagContext : 0u);
  c.context_fingerprint = context_fp;
  c.prefix_tokens = staged.prefix;
  c.group_streams = opt.group_streams;
  c.original_bytes = input.size();
  c.original_xxh64 = xxh64(input);

  const size_t n_chunks = plan.size();
  c.chunks.resize(n_chunks);
  for (size_t i = 0; i < n_chunks; ++i) c.chunks[i].n_tokens = static_cast<uint32_t>(plan[i].n);

  // Each chunk teacher-forced on its own (with its context, all known here): the same
  // distributions the decoder's stepping gives.
  std::vector<double> chunk_ideal(n_chunks, 0.0);
  std::vector<RangeEncoder> enc(n_chunks);
  std::vector<std::unique_ptr<StreamTask>> tasks;
  for (size_t ci = 0; ci < n_chunks; ++ci) {
    const ChunkSpan& sp = plan[ci];
    const int32_t* seq = staged.doc + sp.start - static_cast<size_t>(sp.context);
    RangeEncoder* e = &enc[ci];
    double* ideal = &chunk_ideal[ci];
    tasks.push_back(std::make_unique<ForcedTask>(seq, sp.context, sp.n, static_cast<int32_t>(cfg.bos_token_id),
                                                 model->adapter(), [e, ideal, bits, V](int64_t, int32_t t, const float* probs) {
                                                   thread_local std::vector<uint32_t> cdf;
                                                   cdf.resize(static_cast<size_t>(V + 1));
                                                   quantize_cdf(probs, V, bits, cdf.data());
                                                   e->encode(cdf[t], cdf[t + 1] - cdf[t], bits);
                                                   *ideal += engine::code_length_bits(probs[t]);
                                                 }));
  }
  ForcedSource source(std::move(tasks));
  RunnerOptions ro;
  ro.max_streams = opt.group_streams;
  ro.max_rows = kMaxRows;
  ro.prefill_rows = kSlice;
  if (opt.progress) ro.on_rows = [&](int64_t n) { opt.progress->add(n); };
  run_streams(*model, {&source}, ro);
  if (source.error) std::rethrow_exception(source.error);
  for (size_t ci = 0; ci < n_chunks; ++ci) c.chunks[ci].payload = enc[ci].finish();

  std::string out;
  bool stored = false;
  if (opt.format == ContainerFormat::Full) {
    out = c.serialize();
  } else {
    CompactFile f;
    if (opt.context) {
      f.version = kCompactVersionContext;
      f.context_tag = fingerprint_tag16(context_fp);
    }
    f.dummy_prefix = dummy_prefix;
    f.arithmetic_version = c.arithmetic_version;
    f.base_tag = fingerprint_tag16(id.base_fingerprint);
    f.tokenizer_tag = fingerprint_tag8(id.tokenizer_fingerprint);
    f.has_adapter = !id.adapter_fingerprint.empty();
    f.adapter_tag = f.adapter_tag_for(id.adapter_fingerprint);
    // The model's defaults need no bytes; anything else is written out.
    int64_t default_context = -1;
    const int64_t default_chunk = resolve_chunk(cfg, 0, default_context);
    if (chunk != default_chunk || (plan.size() > 1 && context_tokens != default_context)) {
      f.chunk_tokens = chunk;
      f.context_tokens = context_tokens;
    }
    f.n_tokens = tokens.size();
    for (auto& ch : c.chunks) f.chunks.push_back(std::move(ch.payload));
    out = f.serialize_sealed(input);
    for (size_t i = 0; i < n_chunks; ++i) c.chunks[i].payload = std::move(f.chunks[i]);
    // Never worse than storing: keep the input itself when the model's code is not shorter.
    CompactFile raw;
    raw.stored = true;
    raw.stored_bytes = std::string(input);
    std::string stored_file = raw.serialize();
    if (stored_file.size() <= out.size()) {
      out = std::move(stored_file);
      stored = true;
    }
  }
  if (stats) {
    stats->stored = stored;
    stats->format_version = opt.format == ContainerFormat::Full ? kContainerVersion
                            : stored || !opt.context                 ? kCompactVersion
                                                                     : kCompactVersionContext;
    stats->prefix_tokens = staged.prefix;
    stats->context_fingerprint = context_fp;
    stats->bytes = static_cast<int64_t>(input.size());
    stats->tokens = static_cast<int64_t>(tokens.size());
    stats->chunks = static_cast<int64_t>(n_chunks);
    stats->context_tokens = c.context_tokens;
    stats->dummy_prefix = dummy_prefix;
    stats->ideal_bits = 0;
    for (double b : chunk_ideal) stats->ideal_bits += b;  // chunk order, as code_length_bits sums
    stats->payload_bytes = 0;
    for (const auto& ch : c.chunks) stats->payload_bytes += static_cast<int64_t>(ch.payload.size());
    stats->file_bytes = static_cast<int64_t>(out.size());
    stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return out;
}


Container LmCodec::expand(const CompactFile& f, const CodecIdentity& id, const std::string& name,
                          const std::vector<int32_t>* given) const {
  const engine::Config& cfg = model_->config();
  Container c;
  c.base_fingerprint = id.base_fingerprint;
  c.tokenizer_fingerprint = id.tokenizer_fingerprint;
  c.adapter_fingerprint = id.adapter_fingerprint;
  c.adapter_domain = id.adapter_domain;
  c.adapter_mode = id.adapter_fingerprint.empty() ? AdapterMode::None
                   : f.arithmetic_version == 1 ? AdapterMode::Merged
                                               : AdapterMode::Unmerged;
  c.arithmetic_version = f.arithmetic_version;
  c.total_bits = choose_total_bits(cfg.vocab_size);
  c.group_streams = LmCodecOptions{}.group_streams;  // the decoder's batch: speed only
  c.flags = f.dummy_prefix ? kFlagDummyPrefix : 0u;
  c.original_bytes = f.original_bytes;
  int64_t context = f.chunk_tokens > 0 ? f.context_tokens : -1;
  if (f.chunk_tokens > cfg.max_position_embeddings - 1)
    throw std::runtime_error(name + ": chunk length " + std::to_string(f.chunk_tokens) + " exceeds this model's context");
  const int64_t chunk = resolve_chunk(cfg, f.chunk_tokens, context);
  c.chunk_tokens = chunk;
  if (f.version == kCompactVersionContext) {  // prepare() checked that `given` is there and matches the tag
    c.flags |= kFlagContext;
    c.context_fingerprint = context_fingerprint(*given);
    c.prefix_tokens = static_cast<int64_t>(context_window(*given, static_cast<int32_t>(cfg.bos_token_id), chunk).size());
  }
  // The token count must be what the recorded chunks can hold before the plan is laid out, so a
  // forged count cannot make the reader allocate more than the file's size allows.
  const uint64_t n_chunks = f.chunks.size();
  const uint64_t room =
      n_chunks == 0 ? 0 : static_cast<uint64_t>(chunk - c.prefix_tokens) + (n_chunks - 1) * static_cast<uint64_t>(chunk - context);
  if (f.n_tokens > room)
    throw std::runtime_error(name + ": " + std::to_string(f.n_tokens) + " tokens cannot fit " + std::to_string(n_chunks) +
                             " chunks of this model (the header was altered)");
  const std::vector<ChunkSpan> plan = plan_chunks(static_cast<size_t>(f.n_tokens), chunk, context, c.prefix_tokens);
  if (plan.size() != n_chunks)
    throw std::runtime_error(name + ": " + std::to_string(f.n_tokens) + " tokens make " + std::to_string(plan.size()) +
                             " chunks under this model, but the file has " + std::to_string(n_chunks) + " (the header was altered)");
  c.context_tokens = plan.size() > 1 ? context : 0;
  if (c.context_tokens > 0) c.flags |= kFlagChunkContext;
  c.chunks.resize(plan.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    c.chunks[i].n_tokens = static_cast<uint32_t>(plan[i].n);
    c.chunks[i].payload = f.chunks[i];
  }
  return c;
}

struct LmCodec::Prepared {
  bool stored = false;
  std::string stored_bytes;
  int version = 0;          // container version (2 full; 3, 4, 5 compact)
  int compact_version = 0;  // the compact file's version (3, 4 or 5), 0 for a full container
  size_t prefix = 0;        // conditioned: the context window stands in tokens[0 .. prefix)
  uint32_t original_check = 0;  // compact version 3: check32 of the original
  Container c;
  std::shared_ptr<const engine::Model> model;
  std::vector<size_t> start;    // chunk i's tokens at tokens[start[i] .. start[i + 1])
  std::vector<int32_t> tokens;  // the context window, then the decoded tokens
  double seconds0 = 0;
};

LmCodec::Prepared LmCodec::prepare(std::string_view file, const std::string& name, const std::vector<int32_t>* context) const {
  Prepared p;
  p.version = container_version(file, name);
  const std::string given_fp = context ? context_fingerprint(*context) : std::string();
  // A conditioned file needs the context it was coded given, and a plain one refuses a context:
  // decoding with any other would give other bytes.
  // `recorded`: the file's fingerprint (full container) or its first hex digits (compact tag).
  auto check_context = [&](bool conditioned, const std::string& recorded) {
    const std::string what = recorded.size() < 64 ? "whose fingerprint begins " + recorded : short_fp(recorded);
    if (conditioned && !context)
      throw std::runtime_error(name + ": coded given a context (" + what +
                               "), which decoding needs too: give the same prompt (--context-file, and the same --template)");
    if (!conditioned && context)
      throw std::runtime_error(name + ": coded without a context, but decoding was given one (" + short_fp(given_fp) +
                               "): drop --context-file");
    if (conditioned && given_fp.compare(0, recorded.size(), recorded) != 0)
      throw std::runtime_error(name + ": coded given the context " + what + ", but the context given is " + short_fp(given_fp) +
                               " (another prompt, template, system message or tokenizer)");
  };
  if (is_compact_version(p.version)) {
    const CompactFile f = CompactFile::parse(file, name);
    const CodecIdentity id = identity_for_version(f.stored ? 0 : f.arithmetic_version);
    check_identity(f, id, name);
    if (f.stored) {
      p.stored = true;
      p.stored_bytes = f.stored_bytes;
      return p;
    }
    char tag[8];
    std::snprintf(tag, sizeof tag, "%04x", f.context_tag);
    check_context(f.version == kCompactVersionContext, tag);
    // Versions 5, 4 and 3 decode alike; only the integrity check differs (v4, v5: a seal over the
    // header and the decoded bytes, v3: the content's length and checksum).
    p.compact_version = f.version;
    p.original_check = f.original_check;
    p.c = expand(f, id, name, context);
  } else {
    p.c = Container::parse(file, name);
    check_identity(p.c, identity_for_version(p.c.arithmetic_version), name);
    check_context((p.c.flags & kFlagContext) != 0, p.c.context_fingerprint);
  }
  const Container& c = p.c;
  const engine::Config& cfg = model_->config();
  const int64_t V = cfg.vocab_size;
  p.model = model_for(c.arithmetic_version, name);
  const AdapterMode want = c.adapter_fingerprint.empty() ? AdapterMode::None
                           : c.arithmetic_version == 1   ? AdapterMode::Merged
                                                         : AdapterMode::Unmerged;
  if (c.adapter_mode != want)
    throw std::runtime_error(name + ": adapter mode '" + adapter_mode_name(c.adapter_mode) + "' does not go with arithmetic version " +
                             std::to_string(c.arithmetic_version) + " (version 1 merges an adapter, version 2 keeps it "
                             "beside the weights); the header was altered");
  if (c.chunk_tokens < 1 || c.chunk_tokens > cfg.max_position_embeddings - 1)
    throw std::runtime_error(name + ": chunk length " + std::to_string(c.chunk_tokens) + " exceeds this model's context");
  if (c.total_bits != choose_total_bits(V))
    throw std::runtime_error(name + ": coder precision " + std::to_string(c.total_bits) + " bits does not match this model's " +
                             std::to_string(choose_total_bits(V)));
  if (c.group_streams < 1 || c.group_streams > 1024)
    throw std::runtime_error(name + ": invalid stream group size " + std::to_string(c.group_streams));
  if (c.context_tokens > 0 && c.chunks.size() < 2)
    throw std::runtime_error(name + ": records context_tokens " + std::to_string(c.context_tokens) + " but has " +
                             std::to_string(c.chunks.size()) + " chunk(s); this lorazip writes the chunk context only "
                             "for files of two or more chunks (the header was altered)");
  if ((c.flags & kFlagDummyPrefix) && !tok_.trained_with_dummy_prefix())
    throw std::runtime_error(name + ": flag bit 0 (dummy prefix) is set, but this tokenizer was not trained with a "
                             "dummy prefix, so lorazip never writes it for this model (the header was altered)");
  if (c.chunks.empty() && (c.flags & kFlagDummyPrefix))
    throw std::runtime_error(name + ": the dummy-prefix flag is set on a file without tokens (the header was altered)");
  for (size_t i = 0; i < c.chunks.size(); ++i) {
    uint32_t n = c.chunks[i].n_tokens;
    bool last = i + 1 == c.chunks.size();
    if (n == 0 || n > static_cast<uint64_t>(c.chunk_limit(i)) || (!last && n != c.chunk_limit(i)))
      throw std::runtime_error(name + ": chunk " + std::to_string(i) + " has an invalid token count " + std::to_string(n) +
                               " (chunk_tokens " + std::to_string(c.chunk_tokens) + ", context_tokens " +
                               std::to_string(c.context_tokens) + ")");
  }
  std::vector<int32_t> window;
  if (c.flags & kFlagContext) {
    window = context_window(*context, static_cast<int32_t>(cfg.bos_token_id), c.chunk_tokens);
    if (static_cast<int64_t>(window.size()) != c.prefix_tokens)
      throw std::runtime_error(name + ": records a context window of " + std::to_string(c.prefix_tokens) +
                               " tokens, but the given context (the same fingerprint) makes " + std::to_string(window.size()) +
                               " under chunk length " + std::to_string(c.chunk_tokens) + " (the header was altered)");
  }
  p.prefix = window.size();
  p.start.assign(c.chunks.size() + 1, p.prefix);
  for (size_t i = 0; i < c.chunks.size(); ++i) p.start[i + 1] = p.start[i] + c.chunks[i].n_tokens;
  p.tokens.assign(p.start.back(), 0);
  std::copy(window.begin(), window.end(), p.tokens.begin());
  return p;
}

std::string LmCodec::finish(const Prepared& p, std::string_view file, const std::string& name, CodeStats* stats) const {
  std::string out;
  const Container& c = p.c;
  if (p.stored) {
    out = p.stored_bytes;
  } else {
    out = tok_.decode_native(p.tokens.data() + p.prefix, p.tokens.size() - p.prefix, (c.flags & kFlagDummyPrefix) != 0);
    if (p.compact_version == kCompactVersion || p.compact_version == kCompactVersionContext) {
      if (!CompactFile::seal_matches(file, out))
        throw std::runtime_error(name + ": decoded bytes fail the file's seal (" + std::to_string(out.size()) +
                                 " bytes decoded): the file was corrupted, truncated or had bytes appended, or decoding "
                                 "diverged from encoding because the model is not the one the file was coded with (another "
                                 "base, adapter or tokenizer whose fingerprint begins with the same tag, or a lorazip whose "
                                 "engine computes differently)");
    } else if (p.compact_version != 0) {
      if (out.size() != c.original_bytes || check32(out) != p.original_check)
        throw std::runtime_error(name + ": decoded bytes fail the checksum (" + std::to_string(out.size()) + " bytes, expected " +
                                 std::to_string(c.original_bytes) +
                                 "): decoding diverged from encoding, so the model is not the one the file was coded with "
                                 "(another base, adapter or tokenizer whose fingerprint begins with the same tag, or a "
                                 "lorazip whose engine computes differently) or the file was altered and its checksum forged");
    } else if (out.size() != c.original_bytes || xxh64(out) != c.original_xxh64) {
      throw std::runtime_error(name + ": decoded bytes fail the checksum (" + std::to_string(out.size()) + " bytes, expected " +
                               std::to_string(c.original_bytes) +
                               "): decoding diverged from encoding, so the probabilities differ from the encoder's (weights "
                               "other than the fingerprints say, or a lorazip whose engine computes differently) or the "
                               "payload was altered and its checksum forged");
    }
  }
  if (stats) {
    stats->bytes = static_cast<int64_t>(out.size());
    stats->tokens = 0;
    for (const auto& ch : c.chunks) stats->tokens += ch.n_tokens;
    stats->chunks = static_cast<int64_t>(c.chunks.size());
    stats->context_tokens = c.context_tokens;
    stats->dummy_prefix = (c.flags & kFlagDummyPrefix) != 0;
    stats->payload_bytes = 0;
    for (const auto& ch : c.chunks) stats->payload_bytes += static_cast<int64_t>(ch.payload.size());
    stats->file_bytes = static_cast<int64_t>(file.size());
    stats->stored = p.stored;
    stats->format_version = p.version;
    stats->prefix_tokens = c.prefix_tokens;
    stats->context_fingerprint = c.context_fingerprint;
  }
  return out;
}

namespace {

// One file's chunks as decode tasks: all at once for independent chunks, one after another for
// windowed ones (chunk i reads the tokens chunk i - 1 decoded).
class DecodeSource : public StreamSource {
 public:
  DecodeSource(const Container& c, std::vector<int32_t>& tokens, const std::vector<size_t>& start, const engine::Adapter* adapter,
               int32_t bos, int64_t V, std::string name)
      : c_(c), tokens_(tokens), start_(start), adapter_(adapter), bos_(bos), V_(V), name_(std::move(name)) {}
  std::unique_ptr<StreamTask> next_task() override {
    if (error || next_ >= c_.chunks.size()) return nullptr;
    if (c_.context_tokens > 0 && in_flight_ > 0) return nullptr;
    const size_t i = next_++;
    const int64_t ctx = i == 0 ? c_.prefix_tokens : c_.context_tokens;  // chunk 0: the context window
    ++in_flight_;
    auto t = std::make_unique<Task>(tokens_.data() + start_[i] - static_cast<size_t>(ctx), ctx, c_.chunks[i].n_tokens, bos_,
                                    adapter_, c_.chunks[i].payload, c_.total_bits, V_, tokens_.data() + start_[i]);
    t->chunk = i;
    return t;
  }
  bool exhausted() const override { return error || next_ >= c_.chunks.size(); }
  void fail(std::exception_ptr e) override {
    if (!error) error = e;
  }
  void task_done(StreamTask& t) override {
    --in_flight_;
    const Task& d = static_cast<const Task&>(t);
    if (d.overrun())
      throw std::runtime_error(name_ + ": chunk " + std::to_string(d.chunk) +
                               ": the coded stream ran out before its tokens were decoded (the file is truncated or "
                               "corrupted, or its probabilities are not this model's: another model, adapter or engine)");
  }
  std::exception_ptr error;

 private:
  struct Task : DecodeTask {
    using DecodeTask::DecodeTask;
    size_t chunk = 0;
  };
  const Container& c_;
  std::vector<int32_t>& tokens_;
  const std::vector<size_t>& start_;
  const engine::Adapter* adapter_;
  int32_t bos_;
  int64_t V_;
  std::string name_;
  size_t next_ = 0;
  int in_flight_ = 0;
};

}  // namespace

std::vector<LmCodec::DecodeResult> LmCodec::decompress_many(const std::vector<DecodeJob>& jobs, int threads,
                                                            int64_t group_streams, ProgressMeter* progress) {
  const auto t0 = std::chrono::steady_clock::now();
  if (group_streams < 1 || group_streams > 1024)
    throw std::invalid_argument("group_streams must be in 1..1024, got " + std::to_string(group_streams));
  if (threads > 0) engine::set_threads(threads);
  std::vector<DecodeResult> results(jobs.size());
  std::vector<Prepared> prepared(jobs.size());
  std::vector<bool> ok(jobs.size(), false);
  for (size_t i = 0; i < jobs.size(); ++i) {
    try {
      prepared[i] = jobs[i].codec->prepare(jobs[i].file, jobs[i].name, jobs[i].context);
      ok[i] = true;
    } catch (...) {
      results[i].error = std::current_exception();
    }
  }
  // Files whose models share their weights and arithmetic decode in the same engine calls, each
  // task with its own adapter.
  std::map<std::pair<const void*, int>, std::vector<size_t>> groups;
  for (size_t i = 0; i < jobs.size(); ++i)
    if (ok[i] && !prepared[i].stored) {
      const engine::Model& m = *prepared[i].model;
      const void* key = m.arithmetic_version() == 1 ? static_cast<const void*>(&m) : static_cast<const void*>(&m.weights());
      groups[{key, m.arithmetic_version()}].push_back(i);
    }
  for (const auto& [key, members] : groups) {
    const engine::Model& first = *prepared[members[0]].model;
    const engine::Model runner_model = first.arithmetic_version() == 1 ? first : engine::Model(first.weights_ptr());
    std::vector<std::unique_ptr<DecodeSource>> sources;
    std::vector<StreamSource*> ptrs;
    for (size_t i : members) {
      Prepared& p = prepared[i];
      const engine::Config& cfg = p.model->config();
      sources.push_back(std::make_unique<DecodeSource>(p.c, p.tokens, p.start, p.model->adapter(),
                                                       static_cast<int32_t>(cfg.bos_token_id), cfg.vocab_size, jobs[i].name));
      ptrs.push_back(sources.back().get());
    }
    RunnerOptions ro;
    ro.max_streams = group_streams;
    ro.max_rows = kMaxRows;
    ro.prefill_rows = kSlice;
    if (progress) ro.on_rows = [progress](int64_t n) { progress->add(n); };
    run_streams(runner_model, ptrs, ro);
    for (size_t k = 0; k < members.size(); ++k)
      if (sources[k]->error) {
        results[members[k]].error = sources[k]->error;
        ok[members[k]] = false;
      }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!ok[i]) continue;
    try {
      results[i].data = jobs[i].codec->finish(prepared[i], jobs[i].file, jobs[i].name, &results[i].stats);
      results[i].stats.seconds = seconds;
    } catch (...) {
      results[i].error = std::current_exception();
    }
  }
  return results;
}

std::string LmCodec::decompress(std::string_view file, const std::string& name, int threads, CodeStats* stats,
                                ProgressMeter* progress, const std::vector<int32_t>* context) const {
  std::vector<DecodeResult> r = decompress_many({{this, file, name, context}}, threads, 32, progress);
  if (r[0].error) std::rethrow_exception(r[0].error);
  if (stats) *stats = r[0].stats;
  return std::move(r[0].data);
}

int64_t LmCodec::token_count(std::string_view file) {
  try {
    const int version = container_version(file, "file");
    if (is_compact_version(version)) {
      const CompactFile f = CompactFile::parse(file, "file");
      return f.stored ? 0 : static_cast<int64_t>(f.n_tokens);
    }
    const Container c = Container::parse(file, "file");
    int64_t n = 0;
    for (const auto& ch : c.chunks) n += ch.n_tokens;
    return n;
  } catch (...) {
    return 0;
  }
}

}  // namespace lorazip
