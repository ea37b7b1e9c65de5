// lorazip compress / decompress / info, with gzip's habits: files or stdin -> stdout (-c), -o OUT,
// keep the input unless --rm, never overwrite without -f, a default suffix, and no partial output
// file on any error (outputs are written to a temporary sibling and renamed).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>

#include "cli/commands.h"
#include "runtime/model_setup.h"
#include "codec/compact.h"
#include "codec/container.h"
#include "runtime/selector.h"
#include "codec/verify.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/progress.h"
#include "gen/context.h"

namespace fs = std::filesystem;

namespace lorazip {
namespace {

std::string read_stdin() {
  std::string data((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (std::cin.bad()) throw std::runtime_error("read error on standard input");
  return data;
}

void write_stdout(const std::string& data) {
  if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size() || std::fflush(stdout) != 0)
    throw std::runtime_error("write error on standard output");
}

bool is_stdin(const std::string& p) { return p.empty() || p == "-"; }

// An input that is missing or not a regular file is named the way gzip names it.
void check_input(const std::string& in) {
  if (is_stdin(in)) return;
  std::error_code ec;
  const fs::file_status st = fs::status(in, ec);
  if (!fs::exists(st)) throw std::runtime_error(in + ": No such file or directory");
  if (!fs::is_regular_file(st)) throw std::invalid_argument("'" + in + "' is not a regular file");
}

// Files decoded together in one batch: at most this many (their bytes are held at once).
constexpr size_t kDecodeBatch = 64;

std::string output_path(const CodecCliOptions& o, const std::string& in, bool compress) {
  if (!o.output.empty()) return o.output;
  if (compress) return in + o.suffix;
  if (in.size() > o.suffix.size() && in.compare(in.size() - o.suffix.size(), o.suffix.size(), o.suffix) == 0)
    return in.substr(0, in.size() - o.suffix.size());
  throw std::invalid_argument("'" + in + "' does not end in '" + o.suffix + "': name the output with -o, or use -c");
}

void report(const std::string& name, const CodeStats& s, bool compress) {
  if (s.stored) {
    std::fprintf(stderr, "%s: %lld bytes, stored as they are (the model's code was not shorter), file %lld bytes | %.2f s %s\n",
                 name.c_str(), (long long)s.bytes, (long long)s.file_bytes, s.seconds, compress ? "compressed" : "decompressed");
    return;
  }
  double ratio = s.bytes ? static_cast<double>(s.file_bytes) / s.bytes : 0;
  // The decoder does not score the text, so only the encoder knows the ideal code length.
  char ideal[96] = "";
  if (compress) {
    double overhead = s.ideal_bits > 0 ? 100.0 * (s.coded_bits() / s.ideal_bits - 1.0) : 0;
    std::snprintf(ideal, sizeof ideal, "ideal %.2f bits, coded %.0f bits (overhead %+.3f%%)", s.ideal_bits, s.coded_bits(), overhead);
  } else {
    std::snprintf(ideal, sizeof ideal, "coded %.0f bits", s.coded_bits());
  }
  char given[96] = "";
  if (!s.context_fingerprint.empty())
    std::snprintf(given, sizeof given, " (given a context: %lld tokens read, fingerprint %s)", (long long)s.prefix_tokens,
                  short_fp(s.context_fingerprint).c_str());
  std::fprintf(stderr,
               "%s: %lld bytes, %lld tokens%s, %lld chunks | %s, file %lld bytes | "
               "%.4f bits/byte, %.3f bits/token, ratio %.4f | %.2f s (%.0f tokens/s, %.0f bytes/s) %s\n",
               name.c_str(), (long long)s.bytes, (long long)s.tokens, given, (long long)s.chunks, ideal, (long long)s.file_bytes,
               s.bytes ? 8.0 * s.file_bytes / s.bytes : 0.0, s.tokens ? s.coded_bits() / s.tokens : 0.0, ratio, s.seconds,
               s.seconds > 0 ? s.tokens / s.seconds : 0.0, s.seconds > 0 ? s.bytes / s.seconds : 0.0,
               compress ? "compressed" : "decompressed");
}

void check_targets(const CodecCliOptions& o) {
  if (!o.output.empty() && o.inputs.size() > 1) throw std::invalid_argument("-o names one output, but " + std::to_string(o.inputs.size()) + " inputs were given");
  if (!o.output.empty() && o.to_stdout) throw std::invalid_argument("-o and -c cannot be combined");
  if (o.model_dir.empty()) throw std::invalid_argument("no base model: pass -m DIR (a Hugging Face Llama directory with tokenizer.model) or -m FILE.gguf");
  if (!o.adapter_dir.empty() && !o.adapters_dir.empty()) throw std::invalid_argument("-a and -A cannot be combined");
  if (o.remove_input && o.to_stdout) throw std::invalid_argument("--rm cannot be combined with -c");
  if (!o.router.empty() && o.adapters_dir.empty()) throw std::invalid_argument("--router needs -A, the directory of the clusters' adapters");
  if (!o.prompt_file.empty() && o.router.empty()) throw std::invalid_argument("--prompt-file needs --router");
  if (!o.prompt_file.empty() && o.inputs.size() > 1) throw std::invalid_argument("--prompt-file routes one input, but " + std::to_string(o.inputs.size()) + " were given");
}

// --context-file's prompt rendered for `base` (nullopt without the option), logged once.
std::optional<gen::RenderedContext> read_context(const CodecCliOptions& o, const LoadedModel& base) {
  const gen::ContextTemplate t = gen::parse_context_template(o.template_name);
  if (o.context_file.empty()) {
    if (o.template_name != "auto") throw std::invalid_argument("--template renders --context-file's prompt: give --context-file too");
    return std::nullopt;
  }
  if (!o.router.empty()) throw std::invalid_argument("--context-file cannot be combined with --router yet: code given a context with -a or -A");
  check_input(o.context_file);
  gen::RenderedContext r = gen::render_context(o.model_dir, *base.tokenizer, read_file(o.context_file), t);
  log_info("context: " + o.context_file + " rendered by " + r.template_name + ", " + std::to_string(r.tokens.size()) +
           " tokens, fingerprint " + short_fp(context_fingerprint(r.tokens)));
  return r;
}

// The command's adapter choice: -a, -A, or --router with -A.
AdapterOptions adapter_options(const CodecCliOptions& o) {
  if (o.router.empty() && !o.prompt_file.empty())
    throw std::invalid_argument("--prompt-file routes a document only with --router ROUTER.json (from lorazip cluster) and -A ADAPTERS");
  return {o.adapter_dir, o.adapters_dir, o.router};
}

// Writes `data` to `out` (refusing to overwrite without -f), then removes `in` when asked.
void deliver(const CodecCliOptions& o, const std::string& in, const std::string& out, const std::string& data) {
  if (o.to_stdout || (is_stdin(in) && o.output.empty())) {
    if (o.to_stdout || !::isatty(STDOUT_FILENO)) return write_stdout(data);
    throw std::invalid_argument("refusing to write binary data to a terminal: redirect stdout or use -o");
  }
  if (!o.force && fs::exists(out)) throw std::invalid_argument("'" + out + "' already exists; use -f to overwrite");
  write_file_atomic(out, data);
  if (o.remove_input && !is_stdin(in)) fs::remove(in);
}

// The coder's settings from the command line (--format checked).
LmCodecOptions compress_options(const CodecCliOptions& o, const GlobalOptions& g, const std::vector<int32_t>* ctx) {
  LmCodecOptions opt;
  opt.group_streams = o.group_streams;
  opt.chunk_tokens = o.chunk_tokens;
  opt.context_tokens = o.context_tokens;
  opt.threads = g.threads;
  opt.context = ctx;
  if (o.format == "compact") opt.format = ContainerFormat::Compact;
  else if (o.format == "full") opt.format = ContainerFormat::Full;
  else throw std::invalid_argument("--format must be 'compact' or 'full', got '" + o.format + "'");
  return opt;
}

}  // namespace

int cmd_compress(const CodecCliOptions& o, const GlobalOptions& g) {
  check_targets(o);
  std::vector<std::string> inputs = o.inputs.empty() ? std::vector<std::string>{"-"} : o.inputs;
  LoadedModel base = load_model(o.model_dir);
  CodecSet codecs(base);
  AdapterSelector selector(codecs, adapter_options(o));
  const bool routed = selector.kind() == AdapterSelector::Kind::ByPrompt;
  if (routed && o.prompt_file.empty()) throw std::invalid_argument("--router needs the prompt: --prompt-file FILE");
  const std::optional<gen::RenderedContext> context = read_context(o, base);
  const std::vector<int32_t>* ctx = context ? &context->tokens : nullptr;
  LmCodecOptions opt = compress_options(o, g, ctx);
  const std::string prompt = routed ? read_file(o.prompt_file) : "";
  for (const auto& in : inputs) {
    std::string name = is_stdin(in) ? "(stdin)" : in;
    check_input(in);
    std::string out = (o.to_stdout || is_stdin(in)) ? o.output : output_path(o, in, true);
    if (!out.empty() && !o.force && fs::exists(out)) throw std::invalid_argument("'" + out + "' already exists; use -f to overwrite");
    std::string data = is_stdin(in) ? read_stdin() : read_file(in);
    CodeStats stats;
    ProgressMeter meter(name, 0, stderr, g.progress);
    opt.progress = &meter;
    AdapterSelector::Pick picked;
    const std::string packed = selector.compress(data, opt, routed ? &prompt : nullptr, &stats, &picked);
    if (o.verbose && selector.kind() == AdapterSelector::Kind::FewestBits)
      log_info(name + ": -A picked " + (picked.adapter_dir.empty() ? std::string("the base model") : "adapter " + picked.adapter_dir));
    if (o.verbose && routed) log_info(name + ": the prompt routes to cluster " + picked.cluster + " (not stored in the file)");
    // --verify (and always before --rm removes the input): decode what would be written and
    // compare; on a mismatch nothing is written and the input is kept.
    auto deliver_packed = [&] { deliver(o, in, out, packed); };
    if (o.verify || o.remove_input) {
      auto decode = [&](const std::string& file) {
        return decode_any(selector, {file, name + " (verify)", ctx, routed ? &prompt : nullptr}, g.threads);
      };
      verify_then_deliver(data, packed, decode, deliver_packed, name, o.remove_input);
    } else {
      deliver_packed();
    }
    meter.finish();
    if (o.verbose) report(name, stats, true);
  }
  return 0;
}

namespace {

// Inputs [first, first + n) of `inputs`, read and decoded as one batch (decode_any: every file's
// chunks in the same engine calls, a prompt-routed one given `prompt`). Each file's failure
// (unreadable, damaged, wrong model) is its own result's error; `names` gets their names.
std::vector<DecodedFile> decode_batch(const std::vector<std::string>& inputs, size_t first, size_t n, AdapterSelector& selector,
                                      const std::string* prompt, const GlobalOptions& g, std::vector<std::string>& names,
                                      const std::vector<int32_t>* context) {
  names.clear();
  std::vector<std::string> datas(n);
  std::vector<DecodedFile> results(n);
  std::vector<FileToDecode> batch;
  std::vector<size_t> where;  // result index of each batch entry
  int64_t total = 0;
  for (size_t k = 0; k < n; ++k) {
    const std::string& in = inputs[first + k];
    names.push_back(is_stdin(in) ? "(stdin)" : in);
    try {
      check_input(in);
      datas[k] = is_stdin(in) ? read_stdin() : read_file(in);
      total += LmCodec::token_count(datas[k]);
    } catch (...) {
      results[k].error = std::current_exception();
      continue;
    }
    batch.push_back({datas[k], names[k], context, prompt});
    where.push_back(k);
  }
  ProgressMeter meter(n == 1 ? names[0] : std::to_string(n) + " files", total, stderr, g.progress);
  std::vector<DecodedFile> r = decode_any(selector, batch, g.threads, &meter);
  for (size_t b = 0; b < r.size(); ++b) results[where[b]] = std::move(r[b]);
  return results;
}

std::string error_text(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
}

}  // namespace

int cmd_decompress(const CodecCliOptions& o, const GlobalOptions& g) {
  check_targets(o);
  std::vector<std::string> inputs = o.inputs.empty() ? std::vector<std::string>{"-"} : o.inputs;
  for (const auto& in : inputs) {  // every refusal before any work
    check_input(in);
    const std::string out = (o.to_stdout || is_stdin(in)) ? o.output : output_path(o, in, false);
    if (!out.empty() && !o.force && fs::exists(out)) throw std::invalid_argument("'" + out + "' already exists; use -f to overwrite");
  }
  LoadedModel base = load_model(o.model_dir);
  CodecSet codecs(base);
  AdapterSelector selector(codecs, adapter_options(o));
  const std::string prompt = o.prompt_file.empty() ? "" : read_file(o.prompt_file);
  const std::optional<gen::RenderedContext> context = read_context(o, base);
  int bad = 0;
  // Files go in batches that decode together (every file's chunks in the same engine calls).
  std::vector<std::string> names;
  for (size_t first = 0; first < inputs.size(); first += kDecodeBatch) {
    const size_t n = std::min(kDecodeBatch, inputs.size() - first);
    std::vector<DecodedFile> results =
        decode_batch(inputs, first, n, selector, o.prompt_file.empty() ? nullptr : &prompt, g, names,
                     context ? &context->tokens : nullptr);
    for (size_t k = 0; k < n; ++k) {
      const std::string& in = inputs[first + k];
      try {
        if (results[k].error) std::rethrow_exception(results[k].error);
        const std::string out = (o.to_stdout || is_stdin(in)) ? o.output : output_path(o, in, false);
        deliver(o, in, out, results[k].data);
        if (o.verbose) report(names[k], results[k].stats, false);
      } catch (const std::exception& e) {
        if (inputs.size() == 1) throw;
        std::fprintf(stderr, "lorazip: %s\n", e.what());  // the other files still decode, as gzip does
        ++bad;
      }
    }
  }
  return bad ? 1 : 0;
}

int cmd_test(const CodecCliOptions& o, const GlobalOptions& g) {
  if (o.inputs.empty()) throw std::invalid_argument("test: name at least one compressed file");
  if (o.model_dir.empty()) throw std::invalid_argument("no base model: pass -m DIR or -m FILE.gguf (the model the files were compressed with)");
  LoadedModel base = load_model(o.model_dir);
  CodecSet codecs(base);
  AdapterSelector selector(codecs, {o.adapter_dir, o.adapters_dir, ""});
  const std::optional<gen::RenderedContext> context = read_context(o, base);
  int bad = 0;
  std::vector<std::string> names;
  for (size_t first = 0; first < o.inputs.size(); first += kDecodeBatch) {
    const size_t n = std::min(kDecodeBatch, o.inputs.size() - first);
    const std::vector<DecodedFile> results =
        decode_batch(o.inputs, first, n, selector, nullptr, g, names, context ? &context->tokens : nullptr);
    for (size_t k = 0; k < n; ++k) {
      if (results[k].error) {
        std::fprintf(stderr, "lorazip: %s: FAILED: %s\n", names[k].c_str(), error_text(results[k].error).c_str());
        ++bad;
      } else if (o.verbose) {
        std::fprintf(stderr, "%s: OK (%lld bytes%s)\n", names[k].c_str(), (long long)results[k].stats.bytes,
                     results[k].stats.stored ? ", stored" : "");
      }
    }
  }
  return bad ? 1 : 0;
}

namespace {

void print_compact_info(const std::string& name, const std::string& data) {
  const CompactFile c = CompactFile::parse(data, name);
  std::printf("%s\n", name.c_str());
  std::printf("  format version     %d (compact)%s\n", c.version,
              c.stored ? "" : (", engine arithmetic version " + std::to_string(c.arithmetic_version)).c_str());
  if (c.stored || c.version == kCompactVersionLegacy) {
    std::printf("  original bytes     %llu (xxh64 low 32 bits %08x)\n", (unsigned long long)c.original_bytes, c.original_check);
    std::printf("  compressed bytes   %zu (ratio %.4f)\n", data.size(), c.original_bytes ? double(data.size()) / c.original_bytes : 0.0);
  } else {
    std::printf("  original bytes     not recorded in versions 4 and 5 (`lorazip test -v` decodes and prints it)\n");
    std::printf("  compressed bytes   %zu (seal %08x, checked after decoding)\n", data.size(), c.seal.value_or(0));
  }
  if (c.stored) {
    std::printf("  coding             stored: the input as it is (the model's code was not shorter); needs no model\n");
    return;
  }
  uint64_t payload = 0;
  for (const auto& p : c.chunks) payload += p.size();
  std::printf("  coding             language model (arithmetic coded)\n");
  std::printf("  base model         fingerprint begins %04x\n", c.base_tag);
  std::printf("  tokenizer          fingerprint begins %02x\n", c.tokenizer_tag);
  if (c.has_adapter)
    std::printf("  adapter            fingerprint begins %0*x (decompress with -a that adapter, or -A a directory holding it)\n",
                c.adapter_tag_digits(), c.adapter_tag);
  else std::printf("  adapter            (none)\n");
  if (c.version == kCompactVersionContext)
    std::printf("  context            coded given a context whose fingerprint begins %04x (decode with the same --context-file "
                "and --template)\n", c.context_tag);
  else std::printf("  context            none (coded from BOS alone)\n");
  if (c.chunk_tokens > 0)
    std::printf("  chunking           chunks of <= %lld tokens, context %lld tokens\n", (long long)c.chunk_tokens, (long long)c.context_tokens);
  else
    std::printf("  chunking           the model's defaults (context length - 1 per chunk, a quarter of it as context)\n");
  std::printf("  tokenization       %s\n", c.dummy_prefix ? "with the model's dummy-prefix space" : "as the bytes are");
  std::printf("  chunks             %zu (%llu tokens, %llu payload bytes, %.3f bits/token)\n", c.chunks.size(),
              (unsigned long long)c.n_tokens, (unsigned long long)payload, c.n_tokens ? 8.0 * payload / c.n_tokens : 0.0);
}

}  // namespace

int cmd_info(const std::vector<std::string>& files) {
  if (files.empty()) throw std::invalid_argument("info: name at least one compressed file");
  for (const auto& f : files) {
    std::string data = is_stdin(f) ? read_stdin() : read_file(f);
    if (is_compact_version(container_version(data, f))) {
      print_compact_info(f, data);
      continue;
    }
    Container c = Container::parse(data, f);
    int64_t payload = 0, tokens = 0;
    for (const auto& ch : c.chunks) payload += static_cast<int64_t>(ch.payload.size()), tokens += ch.n_tokens;
    std::printf("%s\n", f.c_str());
    std::printf("  format version     %u, engine arithmetic version %d\n", static_cast<unsigned>(kContainerVersion),
                c.arithmetic_version);
    std::printf("  original bytes     %llu (xxh64 %016llx)\n", (unsigned long long)c.original_bytes, (unsigned long long)c.original_xxh64);
    std::printf("  compressed bytes   %zu (ratio %.4f)\n", data.size(), c.original_bytes ? double(data.size()) / c.original_bytes : 0.0);
    std::printf("  base model         %s\n", c.base_fingerprint.c_str());
    std::printf("  tokenizer          %s\n", c.tokenizer_fingerprint.c_str());
    std::printf("  adapter            %s%s%s\n", c.adapter_fingerprint.empty() ? "(none)" : c.adapter_fingerprint.c_str(),
                c.adapter_domain.empty() ? "" : (" (domain " + c.adapter_domain + ")").c_str(),
                (c.flags & kFlagPromptRouted) ? " (an adapter set: the adapter is chosen from the prompt, which is not stored)" : "");
    std::printf("  coder              %d-bit frequencies, chunks of <= %lld tokens, %lld streams per group, adapter %s\n",
                c.total_bits, (long long)c.chunk_tokens, (long long)c.group_streams, adapter_mode_name(c.adapter_mode).c_str());
    std::printf("  chunk context      %s\n", c.context_tokens > 0
                                             ? ("each chunk after the first reads the previous " + std::to_string(c.context_tokens) +
                                                " tokens (decoded in order)").c_str()
                                             : "none (independent chunks)");
    if (c.flags & kFlagContext)
      std::printf("  context            coded given the context %s, the first chunk reading its last %lld tokens (decode with "
                  "the same --context-file and --template)\n", c.context_fingerprint.c_str(), (long long)c.prefix_tokens);
    else std::printf("  context            none (coded from BOS alone)\n");
    std::printf("  tokenization       %s\n", (c.flags & kFlagDummyPrefix) ? "with the model's dummy-prefix space" : "as the bytes are");
    std::printf("  chunks             %zu (%lld tokens, %lld payload bytes, %.3f bits/token)\n", c.chunks.size(), (long long)tokens,
                (long long)payload, tokens ? 8.0 * payload / tokens : 0.0);
  }
  return 0;
}

}  // namespace lorazip
