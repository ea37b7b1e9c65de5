// The LM codec on the coding engine: chunking, the encoder (teacher-forced chunks) and the decoder
// (lock-step groups), the one code-length function, and the checks a file must pass.
#include "codec/lm_codec.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "codec/quantize.h"
#include "codec/range_coder.h"
#include "common/hash.h"

namespace lorazip {
namespace {

constexpr int64_t kSlice = 64;  // positions a teacher-forced engine call appends (bounds memory: kSlice x V)

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

// One chunk teacher-forced: the stream reads BOS, then the `ctx` context tokens seq[0..ctx), then
// the chunk's tokens seq[ctx..ctx+n); the input at position i is BOS for i = 0, else seq[i - 1].
// fn(j, probs) gets the distribution of seq[ctx + j], j in [0, n). The context positions' logits
// are computed and dropped (extend returns every row).
template <class Fn>
void teacher_forced_chunk(const engine::Model& m, const int32_t* seq, int64_t ctx, int64_t n, int64_t bos, Fn fn) {
  const int64_t V = m.config().vocab_size;
  const int64_t total = ctx + n;
  engine::Cache cache = m.new_cache(1, total);
  std::vector<int32_t> in(static_cast<size_t>(kSlice));
  std::vector<float> logits(static_cast<size_t>(kSlice * V)), probs(static_cast<size_t>(V));
  for (int64_t t0 = 0; t0 < total; t0 += kSlice) {
    const int64_t T = std::min(kSlice, total - t0);
    for (int64_t t = 0; t < T; ++t) in[static_cast<size_t>(t)] = t0 + t == 0 ? static_cast<int32_t>(bos) : seq[t0 + t - 1];
    m.extend(in.data(), T, cache, 0, logits.data());
    for (int64_t t = 0; t < T; ++t) {
      if (t0 + t < ctx) continue;
      engine::softmax(logits.data() + t * V, V, probs.data());
      fn(t0 + t - ctx, probs.data());
    }
  }
}

// The windowed decoder's shape, one chunk: reads BOS and the `ctx` context tokens (already decoded)
// teacher-forced, then steps; code(j, probs) gets the distribution of the chunk's token j and
// returns it, to be fed next. Same bits as teacher_forced_chunk (extend in pieces == step).
template <class Code>
void stepped_chunk(const engine::Model& m, const int32_t* context, int64_t ctx, int64_t n, int64_t bos, Code code) {
  const int64_t V = m.config().vocab_size;
  engine::Cache cache = m.new_cache(1, ctx + n);
  std::vector<int32_t> in(static_cast<size_t>(kSlice));
  std::vector<float> logits(static_cast<size_t>(kSlice * V)), probs(static_cast<size_t>(V));
  const float* last = nullptr;  // logits of the newest position
  for (int64_t t0 = 0; t0 <= ctx; t0 += kSlice) {  // BOS + ctx tokens
    const int64_t T = std::min(kSlice, ctx + 1 - t0);
    for (int64_t t = 0; t < T; ++t) in[static_cast<size_t>(t)] = t0 + t == 0 ? static_cast<int32_t>(bos) : context[t0 + t - 1];
    m.extend(in.data(), T, cache, 0, logits.data());
    last = logits.data() + (T - 1) * V;
  }
  for (int64_t j = 0; j < n; ++j) {
    engine::softmax(last, V, probs.data());
    int32_t tok = code(j, probs.data());
    if (j + 1 < n) {
      m.step(&tok, cache, logits.data());
      last = logits.data();
    }
  }
}

// The decoder's shape: the streams of group `g` advance in lock-step through engine::Model::step(),
// all from BOS at position 0; a stream that has ended is fed BOS so the batch keeps its size. For
// stream s at position i (i < its token count) `code(s, i, probs)` gets the distribution and
// returns the token coded there, which is fed back as the stream's next input.
template <class Code>
void run_lockstep(const engine::Model& m, const std::vector<ContainerChunk>& chunks, const Group& g, int64_t bos, Code code) {
  const int64_t V = m.config().vocab_size;
  const int64_t B = static_cast<int64_t>(g.n_streams);
  int64_t longest = 0;
  for (size_t s = 0; s < g.n_streams; ++s) longest = std::max<int64_t>(longest, chunks[g.first_chunk + s].n_tokens);
  engine::Cache cache = m.new_cache(B, std::max<int64_t>(longest, 1));
  std::vector<int32_t> input(static_cast<size_t>(B), static_cast<int32_t>(bos));
  std::vector<float> logits(static_cast<size_t>(B * V)), probs(static_cast<size_t>(V));
  for (int64_t i = 0; i < longest; ++i) {
    m.step(input.data(), cache, logits.data());
    for (int64_t s = 0; s < B; ++s) {
      if (i < chunks[g.first_chunk + s].n_tokens) {
        engine::softmax(logits.data() + s * V, V, probs.data());
        input[static_cast<size_t>(s)] = code(static_cast<size_t>(s), i, probs.data());
      } else {
        input[static_cast<size_t>(s)] = static_cast<int32_t>(bos);
      }
    }
  }
}

int64_t resolve_chunk(const engine::Config& cfg, int64_t chunk_tokens, int64_t& context_tokens) {
  const int64_t chunk = chunk_tokens != 0 ? chunk_tokens : cfg.max_position_embeddings - 1;  // negative: refused below
  if (chunk < 1 || chunk > cfg.max_position_embeddings - 1)
    throw std::invalid_argument("chunk_tokens must be in 1.." + std::to_string(cfg.max_position_embeddings - 1) +
                                " for this model (its context is " + std::to_string(cfg.max_position_embeddings) + ")");
  context_tokens = resolve_context_tokens(chunk, context_tokens);
  if (context_tokens >= chunk)
    throw std::invalid_argument("context_tokens must be in 0.." + std::to_string(chunk - 1) + " (below the chunk length " +
                                std::to_string(chunk) + "), got " + std::to_string(context_tokens));
  return chunk;
}

}  // namespace

int64_t resolve_context_tokens(int64_t chunk_tokens, int64_t context_tokens) {
  if (context_tokens < -1)  // only -1 means "automatic": a typo like -64 must not silently become it
    throw std::invalid_argument("context_tokens must be -1 (a quarter of the chunk), 0 (independent chunks) or a count "
                                "below the chunk length, got " + std::to_string(context_tokens));
  return context_tokens == -1 ? chunk_tokens / kAutoContextDivisor : context_tokens;
}

std::vector<ChunkSpan> plan_chunks(size_t n_tokens, int64_t chunk_tokens, int64_t context_tokens) {
  if (chunk_tokens < 1 || context_tokens < 0 || context_tokens >= chunk_tokens)
    throw std::invalid_argument("plan_chunks: need chunk_tokens >= 1 and 0 <= context_tokens < chunk_tokens, got " +
                                std::to_string(chunk_tokens) + " and " + std::to_string(context_tokens));
  std::vector<ChunkSpan> out;
  size_t start = 0;
  while (start < n_tokens) {
    const int64_t ctx = start == 0 ? 0 : context_tokens;
    const int64_t n = static_cast<int64_t>(std::min<size_t>(static_cast<size_t>(chunk_tokens - ctx), n_tokens - start));
    out.push_back({start, n, ctx});
    start += static_cast<size_t>(n);
  }
  return out;
}

std::vector<double> code_length_bits(const engine::Model& model, const std::vector<TokenSpan>& docs, int64_t chunk_tokens,
                                     int64_t context_tokens, int threads) {
  const engine::Config& cfg = model.config();
  const int64_t chunk = resolve_chunk(cfg, chunk_tokens, context_tokens);  // resolves context_tokens too
  if (cfg.bos_token_id < 0 || cfg.bos_token_id >= cfg.vocab_size)
    throw std::invalid_argument("code_length_bits: the model has no usable bos_token_id, but every coded stream starts from BOS");
  struct Piece {
    size_t doc;
    const int32_t* seq;  // context, then the chunk's tokens
    int64_t ctx, n;
  };
  std::vector<Piece> pieces;
  for (size_t d = 0; d < docs.size(); ++d)
    for (const ChunkSpan& c : plan_chunks(docs[d].size, chunk, context_tokens))
      pieces.push_back({d, docs[d].data + c.start - static_cast<size_t>(c.context), c.context, c.n});
  std::vector<double> piece_bits(pieces.size(), 0.0);
  engine::parallel_for(pieces.size(), threads, [&](size_t i) {
    const Piece& p = pieces[i];
    double bits = 0;
    teacher_forced_chunk(model, p.seq, p.ctx, p.n, cfg.bos_token_id,
                         [&](int64_t t, const float* probs) { bits += engine::code_length_bits(probs[p.seq[p.ctx + t]]); });
    piece_bits[i] = bits;
  });
  std::vector<double> out(docs.size(), 0.0);
  for (size_t i = 0; i < pieces.size(); ++i) out[pieces[i].doc] += piece_bits[i];
  return out;
}

std::string short_fp(const std::string& fp) { return fp.size() > 12 ? fp.substr(0, 12) : (fp.empty() ? "(none)" : fp); }

LmCodec::LmCodec(std::shared_ptr<const engine::Model> model, const Tokenizer& tokenizer, CodecIdentity identity)
    : model_(std::move(model)), tok_(tokenizer), id_(std::move(identity)) {
  if (!model_) throw std::invalid_argument("LmCodec: no model");
  const engine::Config& cfg = model_->config();
  if (tok_.vocab_size() != cfg.vocab_size)
    throw std::invalid_argument("tokenizer has " + std::to_string(tok_.vocab_size()) + " pieces but the model's vocab_size is " +
                                std::to_string(cfg.vocab_size));
  if (cfg.bos_token_id < 0 || cfg.bos_token_id >= cfg.vocab_size)
    throw std::invalid_argument("the model has no bos_token_id (null in config.json), but every coded stream starts from BOS");
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

double LmCodec::ideal_bits(const std::vector<int32_t>& tokens, int64_t chunk_tokens, int64_t context_tokens, int threads) const {
  return code_length_bits(*model_, {{tokens.data(), tokens.size()}}, chunk_tokens, context_tokens, threads)[0];
}

std::string LmCodec::compress(std::string_view input, const LmCodecOptions& opt, CodeStats* stats) const {
  auto t0 = std::chrono::steady_clock::now();
  const engine::Config& cfg = model_->config();
  int64_t context_tokens = opt.context_tokens;
  const int64_t chunk = resolve_chunk(cfg, opt.chunk_tokens, context_tokens);
  if (opt.group_streams < 1 || opt.group_streams > 1024)
    throw std::invalid_argument("group_streams must be in 1..1024, got " + std::to_string(opt.group_streams));

  bool dummy_prefix = false;
  std::vector<int32_t> tokens = tok_.encode_native(input, &dummy_prefix);
  const std::vector<ChunkSpan> plan = plan_chunks(tokens.size(), chunk, context_tokens);
  const int bits = choose_total_bits(cfg.vocab_size);
  const int64_t V = cfg.vocab_size;

  Container c;
  c.base_fingerprint = id_.base_fingerprint;
  c.tokenizer_fingerprint = id_.tokenizer_fingerprint;
  c.adapter_fingerprint = id_.adapter_fingerprint;
  c.adapter_domain = id_.adapter_domain;
  c.adapter_mode = id_.adapter_fingerprint.empty() ? AdapterMode::None : AdapterMode::Merged;
  c.arithmetic_version = model_->arithmetic_version();
  c.total_bits = bits;
  c.chunk_tokens = chunk;
  // W is recorded only when it shapes the file (more than one chunk), so a short input gives the
  // same bytes whatever W was asked for.
  c.context_tokens = plan.size() > 1 ? context_tokens : 0;
  c.flags = (dummy_prefix ? kFlagDummyPrefix : 0u) | (c.context_tokens > 0 ? kFlagChunkContext : 0u);
  c.group_streams = opt.group_streams;
  c.original_bytes = input.size();
  c.original_xxh64 = xxh64(input);

  const size_t n_chunks = plan.size();
  c.chunks.resize(n_chunks);
  for (size_t i = 0; i < n_chunks; ++i) c.chunks[i].n_tokens = static_cast<uint32_t>(plan[i].n);

  // Each chunk teacher-forced on its own (with its context, all known here): the same
  // distributions the decoder's lock-step or stepping gives.
  std::vector<double> chunk_ideal(n_chunks, 0.0);
  engine::parallel_for(n_chunks, opt.threads, [&](size_t ci) {
    const ChunkSpan& sp = plan[ci];
    const int32_t* seq = tokens.data() + sp.start - static_cast<size_t>(sp.context);
    RangeEncoder enc;
    std::vector<uint32_t> cdf(static_cast<size_t>(V + 1));
    double ideal = 0;
    teacher_forced_chunk(*model_, seq, sp.context, sp.n, cfg.bos_token_id, [&](int64_t i, const float* probs) {
      const int32_t t = seq[sp.context + i];
      quantize_cdf(probs, V, bits, cdf.data());
      enc.encode(cdf[t], cdf[t + 1] - cdf[t], bits);
      ideal += engine::code_length_bits(probs[t]);
    });
    c.chunks[ci].payload = enc.finish();
    chunk_ideal[ci] = ideal;
  });

  std::string out;
  bool stored = false;
  if (opt.format == ContainerFormat::Full) {
    out = c.serialize();
  } else {
    CompactFile f;
    f.dummy_prefix = dummy_prefix;
    f.arithmetic_version = c.arithmetic_version;
    f.base_tag = fingerprint_tag16(id_.base_fingerprint);
    f.tokenizer_tag = fingerprint_tag8(id_.tokenizer_fingerprint);
    f.has_adapter = !id_.adapter_fingerprint.empty();
    f.adapter_tag = f.adapter_tag_for(id_.adapter_fingerprint);
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
    stats->format_version = opt.format == ContainerFormat::Full ? kContainerVersion : kCompactVersion;
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

Container LmCodec::expand(const CompactFile& f, const std::string& name) const {
  const engine::Config& cfg = model_->config();
  Container c;
  c.base_fingerprint = id_.base_fingerprint;
  c.tokenizer_fingerprint = id_.tokenizer_fingerprint;
  c.adapter_fingerprint = id_.adapter_fingerprint;
  c.adapter_domain = id_.adapter_domain;
  c.adapter_mode = id_.adapter_fingerprint.empty() ? AdapterMode::None : AdapterMode::Merged;
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
  // The token count must be what the recorded chunks can hold before the plan is laid out, so a
  // forged count cannot make the reader allocate more than the file's size allows.
  const uint64_t n_chunks = f.chunks.size();
  const uint64_t room = n_chunks == 0 ? 0 : static_cast<uint64_t>(chunk) + (n_chunks - 1) * static_cast<uint64_t>(chunk - context);
  if (f.n_tokens > room)
    throw std::runtime_error(name + ": " + std::to_string(f.n_tokens) + " tokens cannot fit " + std::to_string(n_chunks) +
                             " chunks of this model (the header was altered)");
  const std::vector<ChunkSpan> plan = plan_chunks(static_cast<size_t>(f.n_tokens), chunk, context);
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

std::string LmCodec::decompress(std::string_view file, const std::string& name, int threads, CodeStats* stats) const {
  auto t0 = std::chrono::steady_clock::now();
  std::string out;
  Container c;
  bool stored = false;
  const int version = container_version(file, name);
  if (is_compact_version(version)) {
    const CompactFile f = CompactFile::parse(file, name);
    check_identity(f, id_, name);
    if (f.stored) {
      out = f.stored_bytes;
      stored = true;
    } else {
      // Versions 4 and 3 decode alike; only the integrity check differs (v4: a seal over the
      // header and the decoded bytes, v3: the content's length and checksum).
      c = expand(f, name);
      out = decode(c, name, threads);
      if (f.version == kCompactVersion) {
        if (!CompactFile::seal_matches(file, out))
          throw std::runtime_error(name + ": decoded bytes fail the file's seal (" + std::to_string(out.size()) +
                                   " bytes decoded): the file was corrupted, truncated or had bytes appended, or decoding "
                                   "diverged from encoding because the model is not the one the file was coded with (another "
                                   "base, adapter or tokenizer whose fingerprint begins with the same tag, or a lorazip whose "
                                   "engine computes differently)");
      } else if (out.size() != f.original_bytes || check32(out) != f.original_check) {
        throw std::runtime_error(name + ": decoded bytes fail the checksum (" + std::to_string(out.size()) + " bytes, expected " +
                                 std::to_string(f.original_bytes) +
                                 "): decoding diverged from encoding, so the model is not the one the file was coded with "
                                 "(another base, adapter or tokenizer whose fingerprint begins with the same tag, or a "
                                 "lorazip whose engine computes differently) or the file was altered and its checksum forged");
      }
    }
  } else {
    c = Container::parse(file, name);
    check_identity(c, id_, name);
    out = decode(c, name, threads);
    if (out.size() != c.original_bytes || xxh64(out) != c.original_xxh64)
      throw std::runtime_error(name + ": decoded bytes fail the checksum (" + std::to_string(out.size()) + " bytes, expected " +
                               std::to_string(c.original_bytes) +
                               "): decoding diverged from encoding, so the probabilities differ from the encoder's (weights "
                               "other than the fingerprints say, or a lorazip whose engine computes differently) or the "
                               "payload was altered and its checksum forged");
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
    stats->stored = stored;
    stats->format_version = version;
    stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return out;
}

std::string LmCodec::decode(const Container& c, const std::string& name, int threads) const {
  const engine::Config& cfg = model_->config();
  const int64_t V = cfg.vocab_size;
  if (!model_->computes_version(c.arithmetic_version))
    throw std::runtime_error(name + ": coded with engine arithmetic version " + std::to_string(c.arithmetic_version) +
                             ", but this model computes version " + std::to_string(model_->arithmetic_version()) +
                             " only (decompress it with the lorazip that wrote it)");
  if (c.adapter_mode != (c.adapter_fingerprint.empty() ? AdapterMode::None : AdapterMode::Merged))
    throw std::runtime_error(name + ": adapter mode '" + adapter_mode_name(c.adapter_mode) + "' is not one this version of lorazip codes with");
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
  const int bits = c.total_bits;
  std::vector<size_t> start(c.chunks.size() + 1, 0);
  for (size_t i = 0; i < c.chunks.size(); ++i) start[i + 1] = start[i] + c.chunks[i].n_tokens;
  std::vector<int32_t> tokens(start.back());
  // The engine's bits do not depend on the batch, so the decoder may cut its groups as it likes:
  // at most group_streams streams each, and at least one group per worker, evenly filled.
  const size_t n_chunks = c.chunks.size();
  const size_t workers = threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
  const size_t cap = static_cast<size_t>(c.group_streams);
  const size_t n_groups = std::max((n_chunks + cap - 1) / cap, std::min(workers, n_chunks));
  std::vector<Group> groups = make_groups(n_chunks, n_groups ? static_cast<int64_t>((n_chunks + n_groups - 1) / n_groups) : 1);

  auto overrun = [&](size_t chunk_index) {
    return std::runtime_error(name + ": chunk " + std::to_string(chunk_index) +
                              ": the coded stream ran out before its tokens were decoded (the file is truncated or "
                              "corrupted, or its probabilities are not this model's: another model, adapter or engine)");
  };
  if (c.context_tokens > 0) {
    // Windowed: chunk i reads the W tokens chunk i - 1 (and before) decoded, so chunks go in order.
    std::vector<uint32_t> cdf(static_cast<size_t>(V + 1));
    for (size_t i = 0; i < n_chunks; ++i) {
      const int64_t ctx = i == 0 ? 0 : c.context_tokens;
      const std::string& pl = c.chunks[i].payload;
      RangeDecoder dec(reinterpret_cast<const uint8_t*>(pl.data()), pl.size());
      stepped_chunk(*model_, tokens.data() + start[i] - static_cast<size_t>(ctx), ctx, c.chunks[i].n_tokens, cfg.bos_token_id,
                    [&](int64_t j, const float* probs) -> int32_t {
                      quantize_cdf(probs, V, bits, cdf.data());
                      int t = find_symbol(cdf.data(), static_cast<int>(V), dec.target(bits));
                      dec.consume(cdf[t], cdf[t + 1] - cdf[t], bits);
                      tokens[start[i] + static_cast<size_t>(j)] = t;
                      return t;
                    });
      if (dec.overrun()) throw overrun(i);
    }
    groups.clear();
  }
  engine::parallel_for(groups.size(), threads, [&](size_t gi) {
    const Group& g = groups[gi];
    std::vector<RangeDecoder> dec;
    dec.reserve(g.n_streams);
    for (size_t s = 0; s < g.n_streams; ++s) {
      const std::string& pl = c.chunks[g.first_chunk + s].payload;
      dec.emplace_back(reinterpret_cast<const uint8_t*>(pl.data()), pl.size());
    }
    std::vector<uint32_t> cdf(static_cast<size_t>(V + 1));
    run_lockstep(*model_, c.chunks, g, cfg.bos_token_id, [&](size_t s, int64_t i, const float* probs) -> int32_t {
      quantize_cdf(probs, V, bits, cdf.data());
      int t = find_symbol(cdf.data(), static_cast<int>(V), dec[s].target(bits));
      dec[s].consume(cdf[t], cdf[t + 1] - cdf[t], bits);
      tokens[start[g.first_chunk + s] + static_cast<size_t>(i)] = t;
      return t;
    });
    for (size_t s = 0; s < g.n_streams; ++s)
      if (dec[s].overrun()) throw overrun(g.first_chunk + s);
  });

  return tok_.decode_native(tokens.data(), tokens.size(), (c.flags & kFlagDummyPrefix) != 0);
}

}  // namespace lorazip
