// The LM codec measured on real documents: per domain, what the model's ideal code length is,
// what the range coder actually writes, the container's fixed cost, the ratio with and without an
// adapter beside xz -9 and zstd -19, the codec's speed, and the peak resident memory of
// compressing and decompressing a 1 MB input.
//
//   bench_codec -m BASE_DIR [-a ADAPTER_DIR] [--docs N] [--seed S] [--threads N]
//               [--chunk-tokens N] [--context-tokens W] [--context-sweep W,W...] [--modes-only]
//               [--group-streams N] [--repeat R] [--rss-bytes N | --no-rss] INPUT...
//
// INPUT: a corpus root (../shared/data/llm-text: one sub-directory per domain holding *.jsonl),
// one domain directory of *.jsonl, one .jsonl file (a domain named after the file), or any other
// file (one document, its own row). From JSONL, the "text" field of N documents per domain is
// sampled with a seeded generator (same --seed, same documents); each document is compressed
// alone, as `lorazip compress` would compress it as a file, and decompressed to check it.
//
// Speed: the sampled documents compressed and decompressed by the LM codec on the coding engine
// with each --threads count, one document after another and all the files decoded at once, each
// the best of --repeat runs.
// Chunk modes: the sampled documents longer than one chunk, each coded alone with independent
// chunks (W = 0), with the codec's W (--context-tokens) and with each W of --context-sweep:
// bits/token and tokens/s of each (--modes-only: this section alone, after the table).
// Peak memory: the program runs itself again (fork + exec, so VmHWM starts from nothing) once to
// load the model only, once to compress and once to decompress a --rss-bytes input built by
// repeating the sampled documents; each child reports VmHWM from /proc/self/status.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/peer.h"
#include "bench/run_self.h"
#include "codec/classical.h"
#include "codec/lm_codec.h"
#include "runtime/model_setup.h"
#include "common/fs.h"
#include "data/prepare.h"
#include "model/gguf.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

struct Args {
  std::string model_dir;
  std::string adapter_dir;
  std::vector<std::string> inputs;
  int64_t docs = 20;             // documents sampled per JSONL domain
  uint64_t seed = 1;             // picks the sample
  int threads = 0;               // 0 = all cores
  int64_t chunk_tokens = 0;      // 0 = the model's context - 1 (the codec's default)
  int64_t group_streams = 32;    // the codec's default
  int64_t context_tokens = kDefaultContextTokens;  // W; -1 = the codec's default (chunk / 4)
  std::vector<int64_t> context_sweep;              // further W to measure in the chunk-modes section
  std::vector<int> speed_threads = {1, 2};         // speed section: thread counts
  std::string peer;              // python of a venv with llama-cpp-python ("auto": scripts/peer_venv.sh's); empty: no peers
  std::string llama_zip;         // llama-zip's folder (its llama_zip.py), for the end-to-end comparison
  std::string lorazip_bin;       // the program for the end-to-end runs (default: lorazip beside this program)
  bool modes_only = false;                         // skip the speed and memory sections
  int repeat = 3;                // speed section: best of this many runs
  int64_t rss_bytes = 1 << 20;   // input size for the peak-memory runs
  bool no_rss = false;
  std::string split = "test";    // JSONL documents: of prepare's test split (seed 17, 10% val, 10% test), or "any"
  int64_t min_bytes = 0, max_bytes = 0;  // documents of these sizes only (0: no bound)
  bool versions = true;          // the arithmetic-versions section
  bool versions_only = false;    // only the arithmetic-versions section
  bool speed_only = false;       // skip the per-domain table and chunk modes
  // Hidden: the child side of a peak-memory run.
  std::string child_mode;        // load | compress | decompress
  std::string child_in, child_out;
};

struct Domain {
  std::string name;
  std::vector<std::string> docs;
};

// ---- inputs -----------------------------------------------------------------------------------

std::vector<std::string> read_jsonl_texts(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::vector<std::string> texts;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ":" + std::to_string(n) + ": not a JSON object (" + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      throw std::runtime_error(path + ":" + std::to_string(n) + ": no string field \"text\"");
    std::string t = j["text"].get<std::string>();
    if (!t.empty()) texts.push_back(std::move(t));
  }
  return texts;
}

std::vector<std::string> jsonl_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".jsonl") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

Domain sample_domain(const std::string& name, const std::vector<std::string>& files, const Args& a) {
  std::vector<std::string> all;
  for (const auto& f : files)
    for (auto& t : read_jsonl_texts(f)) {
      if (a.split == "test" && split_of_document(t, SplitConfig{}) != 2) continue;
      if (a.min_bytes > 0 && static_cast<int64_t>(t.size()) < a.min_bytes) continue;
      if (a.max_bytes > 0 && static_cast<int64_t>(t.size()) > a.max_bytes) continue;
      all.push_back(std::move(t));
    }
  if (all.empty()) throw std::runtime_error("domain '" + name + "': no documents with text" + (a.split == "test" ? " in the test split" : "") +
                                            " within the size bounds");
  // Seeded Fisher-Yates over the indices, then the first N: the same seed gives the same sample.
  std::vector<size_t> idx(all.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::mt19937_64 rng(a.seed ^ std::hash<std::string>{}(name));
  for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
  Domain d{name, {}};
  for (size_t i = 0; i < idx.size() && static_cast<int64_t>(i) < a.docs; ++i) d.docs.push_back(all[idx[i]]);
  return d;
}

std::vector<Domain> collect_domains(const Args& a) {
  std::vector<Domain> out;
  for (const auto& in : a.inputs) {
    if (fs::is_directory(in)) {
      std::vector<std::string> here = jsonl_files(in);
      if (!here.empty()) {
        out.push_back(sample_domain(fs::path(in).filename().string(), here, a));
        continue;
      }
      std::vector<std::string> subdirs;
      for (const auto& e : fs::directory_iterator(in))
        if (e.is_directory() && !jsonl_files(e.path().string()).empty()) subdirs.push_back(e.path().string());
      std::sort(subdirs.begin(), subdirs.end());
      if (subdirs.empty()) throw std::runtime_error("'" + in + "' holds no *.jsonl, directly or one level down");
      for (const auto& d : subdirs) out.push_back(sample_domain(fs::path(d).filename().string(), jsonl_files(d), a));
    } else if (fs::path(in).extension() == ".jsonl") {
      out.push_back(sample_domain(fs::path(in).stem().string(), {in}, a));
    } else {
      out.push_back(Domain{fs::path(in).filename().string(), {read_file(in)}});
    }
  }
  return out;
}

// ---- measurements -----------------------------------------------------------------------------

struct Totals {
  int64_t docs = 0, bytes = 0, tokens = 0, payload_bytes = 0, file_bytes = 0, header_bytes = 0;
  double ideal_bits = 0, compress_s = 0, decompress_s = 0;
  int64_t xz = 0, zstd = 0;
  void add(const Totals& o) {
    docs += o.docs, bytes += o.bytes, tokens += o.tokens, payload_bytes += o.payload_bytes;
    file_bytes += o.file_bytes, header_bytes += o.header_bytes, ideal_bits += o.ideal_bits;
    compress_s += o.compress_s, decompress_s += o.decompress_s, xz += o.xz, zstd += o.zstd;
  }
};

// Compresses each document alone, checks that it decompresses to its bytes.
Totals code_documents(const LmCodec& codec, const std::vector<std::string>& docs, const LmCodecOptions& opt,
                      const std::string& where) {
  Totals t;
  for (size_t i = 0; i < docs.size(); ++i) {
    CodeStats cs, ds;
    const std::string file = codec.compress(docs[i], opt, &cs);
    const std::string back = codec.decompress(file, where + " document " + std::to_string(i), opt.threads, &ds);
    if (back != docs[i]) throw std::runtime_error(where + " document " + std::to_string(i) + ": round trip changed the bytes");
    ++t.docs;
    t.bytes += cs.bytes;
    t.tokens += cs.tokens;
    t.payload_bytes += cs.payload_bytes;
    t.file_bytes += cs.file_bytes;
    t.header_bytes += cs.file_bytes - cs.payload_bytes;
    t.ideal_bits += cs.ideal_bits;
    t.compress_s += cs.seconds;
    t.decompress_s += ds.seconds;
  }
  return t;
}

void add_classical(Totals& t, const std::vector<std::string>& docs) {
  for (const auto& d : docs) {
    t.xz += static_cast<int64_t>(classical_compressed_size(Classical::Xz9, d));
    t.zstd += static_cast<int64_t>(classical_compressed_size(Classical::Zstd19, d));
  }
}

void print_header() {
  std::printf("\n%-20s %-10s %5s %9s %8s %11s %11s %8s %7s %9s %6s %6s %7s %7s %7s %9s %9s\n", "domain", "model", "docs",
              "bytes", "tokens", "ideal_bits", "coded_bits", "over%", "hdr_B", "file_B", "b/tok", "b/byte", "ratio", "xz-9",
              "zstd-19", "c_tok/s", "d_tok/s");
}

void print_row(const std::string& domain, const std::string& model, const Totals& t) {
  const double coded = 8.0 * static_cast<double>(t.payload_bytes);
  std::printf("%-20s %-10s %5lld %9lld %8lld %11.0f %11.0f %+8.3f %7lld %9lld %6.3f %6.3f %7.4f %7.4f %7.4f %9.0f %9.0f\n",
              domain.c_str(), model.c_str(), (long long)t.docs, (long long)t.bytes, (long long)t.tokens, t.ideal_bits, coded,
              t.ideal_bits > 0 ? 100.0 * (coded / t.ideal_bits - 1.0) : 0.0, (long long)t.header_bytes, (long long)t.file_bytes,
              t.tokens ? coded / static_cast<double>(t.tokens) : 0.0, t.bytes ? 8.0 * t.file_bytes / static_cast<double>(t.bytes) : 0.0,
              t.bytes ? static_cast<double>(t.file_bytes) / t.bytes : 0.0, t.bytes ? static_cast<double>(t.xz) / t.bytes : 0.0,
              t.bytes ? static_cast<double>(t.zstd) / t.bytes : 0.0, t.compress_s > 0 ? t.tokens / t.compress_s : 0.0,
              t.decompress_s > 0 ? t.tokens / t.decompress_s : 0.0);
}

// ---- peak memory (child processes) ---------------------------------------------------------------

int64_t vm_hwm_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

// The child: load, then (maybe) code child_in into child_out; prints "VmHWM_kB <n> tokens <t> seconds <s>".
int run_child(const Args& a) {
  LoadedModel base = load_model(a.model_dir);
  CodecSet set(base);
  LmCodec* codec = &set.get(a.adapter_dir);
  LmCodecOptions opt;
  opt.chunk_tokens = a.chunk_tokens;
  opt.context_tokens = a.context_tokens;
  opt.group_streams = a.group_streams;
  opt.threads = a.threads;
  CodeStats s;
  if (a.child_mode == "compress") {
    write_file_atomic(a.child_out, codec->compress(read_file(a.child_in), opt, &s));
  } else if (a.child_mode == "decompress") {
    write_file_atomic(a.child_out, codec->decompress(read_file(a.child_in), a.child_in, a.threads, &s));
  } else if (a.child_mode != "load") {
    throw std::invalid_argument("unknown --child mode '" + a.child_mode + "'");
  }
  std::printf("VmHWM_kB %lld tokens %lld seconds %.3f\n", (long long)vm_hwm_kb(), (long long)s.tokens, s.seconds);
  return 0;
}

struct ChildResult {
  int64_t hwm_kb = -1, tokens = 0;
  double seconds = 0;
};

ChildResult spawn_child(const Args& a, const std::string& mode, const std::string& in, const std::string& out) {
  std::vector<std::string> args = {"bench_codec", "-m", a.model_dir, "--threads", std::to_string(a.threads),
                                   "--chunk-tokens", std::to_string(a.chunk_tokens), "--context-tokens",
                                   std::to_string(a.context_tokens), "--group-streams",
                                   std::to_string(a.group_streams), "--child", mode, "--child-in", in, "--child-out", out};
  if (!a.adapter_dir.empty()) args.insert(args.end(), {"-a", a.adapter_dir});
  const std::string text = run_self(args, "peak-memory child (" + mode + ")");
  ChildResult r;
  std::istringstream ss(text);
  std::string k1, k2, k3;
  ss >> k1 >> r.hwm_kb >> k2 >> r.tokens >> k3 >> r.seconds;
  if (k1 != "VmHWM_kB") throw std::runtime_error("peak-memory child (" + mode + ") printed: " + text);
  return r;
}

// Speed of the engine in this process (the model loaded once): every sampled document coded alone,
// one after another, at each thread count of --speed-threads; then all of them decoded at once
// (LmCodec::decompress_many), against the same documents decoded one by one.
struct SpeedRow {
  int threads = 0;
  int64_t tokens = 0;
  double encode_s = 0, decode_s = 0, batch_s = 0;
};

std::vector<SpeedRow> run_speed(const Args& a, const std::vector<LmCodec*>& codecs,
                                const std::vector<std::string>& names, const std::vector<Domain>& domains) {
  std::vector<std::string> docs;
  for (const auto& d : domains) docs.insert(docs.end(), d.docs.begin(), d.docs.end());
  std::vector<SpeedRow> rows;
  if (docs.empty()) return rows;
  const LmCodec& codec = *codecs[0];
  std::printf("\nspeed in this process (model loaded once; %s, %zu documents of %s), engine kernels %s\n", names[0].c_str(),
              docs.size(), a.split == "test" ? "the test split" : "any split",
              engine::select_isa() == engine::Isa::Avx512 && engine::isa_available(engine::Isa::Avx512Vnni)
                  ? "avx512 (integer products: avx512vnni)"
                  : engine::isa_name(engine::select_isa()));
  std::printf("%8s %8s | %12s %12s | %14s %12s\n", "threads", "tokens", "encode_tok/s", "decode_tok/s", "batch_dec_tok/s",
              "batch/alone");
  for (int t : a.speed_threads) {
    LmCodecOptions opt;
    opt.chunk_tokens = a.chunk_tokens;
    opt.context_tokens = a.context_tokens;
    opt.group_streams = a.group_streams;
    opt.threads = t;
    opt.format = ContainerFormat::Compact;
    SpeedRow best;
    best.threads = t;
    best.encode_s = best.decode_s = best.batch_s = 1e300;
    std::vector<std::string> files(docs.size());
    for (int r = 0; r < a.repeat; ++r) {
      double es = 0, ds = 0;
      int64_t tokens = 0;
      for (size_t i = 0; i < docs.size(); ++i) {
        CodeStats cs, dst;
        files[i] = codec.compress(docs[i], opt, &cs);
        if (codec.decompress(files[i], "speed", t, &dst) != docs[i]) throw std::runtime_error("speed: a round trip changed the bytes");
        es += cs.seconds, ds += dst.seconds, tokens += cs.tokens;
      }
      std::vector<LmCodec::DecodeJob> jobs;
      for (size_t i = 0; i < docs.size(); ++i) jobs.push_back({&codec, files[i], "doc " + std::to_string(i)});
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<LmCodec::DecodeResult> back = LmCodec::decompress_many(jobs, t, a.group_streams);
      const double bs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (size_t i = 0; i < docs.size(); ++i)
        if (back[i].error || back[i].data != docs[i]) throw std::runtime_error("speed: a document decoded together came back wrong");
      best.tokens = tokens;
      best.encode_s = std::min(best.encode_s, es);
      best.decode_s = std::min(best.decode_s, ds);
      best.batch_s = std::min(best.batch_s, bs);
    }
    const double n = static_cast<double>(best.tokens);
    std::printf("%8d %8lld | %12.1f %12.1f | %14.1f %12.2f\n", t, (long long)best.tokens, n / best.encode_s, n / best.decode_s,
                n / best.batch_s, best.decode_s / best.batch_s);
    rows.push_back(best);
  }
  std::printf("  (best of %d runs; encode = compress's coding, decode = decompress's, per document one after another;\n"
              "   batch = all the documents' files decoded at once, every stream in the same engine calls)\n",
              a.repeat);
  engine::set_threads(0);
  return rows;
}

// A child program's wall time and peak resident memory, measured by timed_exec (beside this program)
// so that this process's own resident pages do not count toward the child's peak.
struct Timed {
  double seconds = 0;
  int64_t max_rss_kb = 0;
  int status = 0;
};

std::string beside_self(const std::string& name) {
  std::vector<char> buf(4096);
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  const std::string self = n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : "";
  return self.substr(0, self.find_last_of('/') + 1) + name;
}

Timed run_timed(const std::vector<std::string>& args, const std::string& stdout_path) {
  const std::string timer = beside_self("timed_exec");
  const std::string report = stdout_path + ".timed";
  std::vector<std::string> full{timer, stdout_path};
  full.insert(full.end(), args.begin(), args.end());
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int fd = ::open(report.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) ::_exit(126);
    ::dup2(fd, STDOUT_FILENO);
    std::vector<char*> argv;
    for (const auto& x : full) argv.push_back(const_cast<char*>(x.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) throw std::runtime_error("waitpid failed");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(timer + " " + describe_status(status) + " (built beside bench_codec?)");
  Timed t;
  long long kb = 0;
  if (std::sscanf(read_file(report).c_str(), "seconds %lf max_rss_kb %lld status %d", &t.seconds, &kb, &t.status) != 3)
    throw std::runtime_error(report + ": not timed_exec's report");
  fs::remove(report);
  t.max_rss_kb = kb;
  if (!WIFEXITED(t.status) || WEXITSTATUS(t.status) != 0)
    throw std::runtime_error(args[0] + " " + args[args.size() > 3 ? 3 : 1] + " " + describe_status(t.status));
  return t;
}

std::string default_lorazip_bin() { return beside_self("lorazip"); }

// lorazip beside llama.cpp and llama-zip on the same GGUF, documents and thread counts, in one run:
// llama.cpp's prompt processing and token generation against lorazip's per-document encoding and
// decoding (this process, model loaded), and llama-zip's compress / decompress against lorazip's
// program end to end (one process per document, load included), with peak memory and load time.
int run_peers(const Args& a, const std::vector<Domain>& domains, const std::vector<SpeedRow>& speed) {
  std::string python = a.peer;
  if (python == "auto") {
    std::string why;
    std::optional<std::string> p = find_peer_python(&why);
    if (!p) {
      std::printf("\npeers: skipped: %s\n", why.c_str());
      return 0;
    }
    python = *p;
  }
  if (!is_gguf_path(a.model_dir)) throw std::invalid_argument("--peer needs a .gguf model (llama.cpp reads GGUF)");
  std::vector<std::string> docs;
  for (const auto& d : domains) docs.insert(docs.end(), d.docs.begin(), d.docs.end());
  const std::string bin = a.lorazip_bin.empty() ? default_lorazip_bin() : a.lorazip_bin;
  PeerDocuments files(docs);
  const std::string tmp = (fs::temp_directory_path() / ("bench_codec_peer_" + std::to_string(::getpid()))).string();
  fs::create_directories(tmp);
  std::vector<PeerFigures> peers;
  struct Ours {
    double compress_s = 0, decompress_s = 0, load_s = 0;
    int64_t bytes_out = 0, rss_kb = 0;
  };
  std::vector<Ours> ours;
  for (size_t k = 0; k < speed.size(); ++k) {
    const int t = speed[k].threads;
    PeerRequest req;
    req.python = python;
    req.gguf = a.model_dir;
    req.threads = t;
    req.repeat = a.repeat;
    req.files = files.paths();
    req.llama_zip_dir = a.llama_zip;
    peers.push_back(run_peer_llamacpp(req));
    Ours o;
    const std::string ts = std::to_string(t);
    write_file_atomic(tmp + "/empty.txt", "");
    o.load_s = run_timed({bin, "-q", "-t", ts, "compress", "-c", "-m", a.model_dir, tmp + "/empty.txt"}, tmp + "/empty.lz").seconds;
    for (size_t i = 0; i < files.paths().size(); ++i) {
      const std::string lz = tmp + "/doc-" + std::to_string(i) + ".lz", back = tmp + "/doc-" + std::to_string(i) + ".out";
      const Timed c = run_timed({bin, "-q", "-t", ts, "compress", "-c", "-m", a.model_dir, files.paths()[i]}, lz);
      const Timed d = run_timed({bin, "-q", "-t", ts, "decompress", "-c", "-m", a.model_dir, lz}, back);
      if (read_file(back) != docs[i]) throw std::runtime_error("end to end: document " + std::to_string(i) + " did not round-trip");
      o.compress_s += c.seconds, o.decompress_s += d.seconds;
      o.bytes_out += static_cast<int64_t>(fs::file_size(lz));
      o.rss_kb = std::max({o.rss_kb, c.max_rss_kb, d.max_rss_kb});
    }
    ours.push_back(o);
  }
  fs::remove_all(tmp);
  std::printf("\n%s", format_peer_table(peers).c_str());
  int64_t in_bytes = 0;
  for (const auto& d : docs) in_bytes += static_cast<int64_t>(d.size());
  std::printf("\nside by side: %s, %zu documents (%lld bytes), this machine\n", fs::path(a.model_dir).filename().c_str(), docs.size(),
              (long long)in_bytes);
  std::printf("| threads | llama.cpp prompt tok/s | lorazip encode tok/s | ratio | llama.cpp generation tok/s | lorazip decode tok/s | ratio |\n"
              "|---:|---:|---:|---:|---:|---:|---:|\n");
  for (size_t k = 0; k < speed.size(); ++k) {
    const double n = static_cast<double>(speed[k].tokens);
    const double enc = n / speed[k].encode_s, dec = n / speed[k].decode_s;
    std::printf("| %d | %.1f | %.1f | %.2fx | %.1f | %.1f | %.2fx |\n", speed[k].threads, peers[k].pp_tok_s, enc,
                enc / peers[k].pp_tok_s, peers[k].tg_tok_s, dec, dec / peers[k].tg_tok_s);
  }
  if (!a.llama_zip.empty()) {
    std::printf("\n| threads | llama-zip compress s | lorazip compress s | ratio | llama-zip decompress s | lorazip decompress s | ratio "
                "| llama-zip bytes | lorazip bytes | lorazip load s | lorazip peak MB |\n"
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t k = 0; k < speed.size(); ++k) {
      if (!peers[k].llama_zip) continue;
      const LlamaZipFigures& z = *peers[k].llama_zip;
      std::printf("| %d | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2fx | %lld | %lld | %.2f | %.0f |\n", speed[k].threads, z.compress_s,
                  ours[k].compress_s, z.compress_s / ours[k].compress_s, z.decompress_s, ours[k].decompress_s,
                  z.decompress_s / ours[k].decompress_s, (long long)z.bytes_out, (long long)ours[k].bytes_out, ours[k].load_s,
                  ours[k].rss_kb / 1024.0);
    }
    std::printf("  (end to end: llama-zip's totals hold one model load; lorazip's one program run a document, each loading the\n"
                "   model; ratios > 1: lorazip faster; load s: a run coding an empty file)\n");
  }
  return 0;
}

int run(const Args& a) {
  const int threads = a.threads;
  LoadedModel base = load_model(a.model_dir);
  const LlamaConfig& cfg = base.config;
  CodecSet set(base);
  std::vector<LmCodec*> codecs;
  std::vector<std::string> names = {"base"};
  codecs.push_back(&set.get(""));
  if (!a.adapter_dir.empty()) {
    codecs.push_back(&set.get(a.adapter_dir));
    names.push_back("+" + codecs.back()->identity().adapter_domain);
  }
  LmCodecOptions opt;
  opt.chunk_tokens = a.chunk_tokens;
  opt.context_tokens = a.context_tokens;
  opt.group_streams = a.group_streams;
  opt.threads = a.threads;
  const Chunking chunking = Chunking::resolve(cfg.max_position_embeddings, a.chunk_tokens, a.context_tokens);
  const int64_t chunk = chunking.chunk, context = chunking.window;

  std::printf("bench_codec: base %s (%s; hidden %lld, %lld layers, vocab %lld, context %lld, %lld parameters)\n",
              a.model_dir.c_str(), short_fp(base.fingerprint).c_str(), (long long)cfg.hidden_size,
              (long long)cfg.num_hidden_layers, (long long)cfg.vocab_size, (long long)cfg.max_position_embeddings,
              (long long)cfg.num_parameters());
  if (!a.adapter_dir.empty())
    std::printf("  adapter %s (%s)\n", a.adapter_dir.c_str(), short_fp(codecs.back()->identity().adapter_fingerprint).c_str());
  std::printf("  threads %d, chunk_tokens %lld, context_tokens %lld, group_streams %lld, docs/domain %lld, seed %llu\n", threads,
              (long long)chunk, (long long)context, (long long)a.group_streams, (long long)a.docs, (unsigned long long)a.seed);

  std::vector<Domain> domains = collect_domains(a);
  std::string joined;
  if (!a.speed_only && !a.versions_only) {
    print_header();
    std::vector<Totals> all(codecs.size());
    std::string joined;
    std::vector<std::string> long_docs;  // documents of more than one chunk
    for (const auto& d : domains) {
      std::vector<Totals> per(codecs.size());
      for (size_t k = 0; k < codecs.size(); ++k) {
        per[k] = code_documents(*codecs[k], d.docs, opt, d.name);
        add_classical(per[k], d.docs);
        print_row(d.name, names[k], per[k]);
        all[k].add(per[k]);
      }
      if (codecs.size() > 1 && per[0].payload_bytes > 0)
        std::printf("%-20s adapter saves %.2f%% of the coded bits (%.2f%% of the ideal bits)\n", d.name.c_str(),
                    100.0 * (1.0 - static_cast<double>(per[1].payload_bytes) / per[0].payload_bytes),
                    100.0 * (1.0 - per[1].ideal_bits / per[0].ideal_bits));
      for (const auto& doc : d.docs) {
        joined += doc;
        if (static_cast<int64_t>(codecs[0]->tokenize(doc).size()) > chunk) long_docs.push_back(doc);
      }
    }
    for (size_t k = 0; k < codecs.size(); ++k) print_row("all", names[k], all[k]);
    std::printf("  (documents coded one at a time; hdr_B = container bytes beside the payload; c/d_tok/s per document,\n"
                "   including tokenization)\n");

    // Chunk modes on the documents that need more than one chunk (W changes nothing on the others).
    std::vector<int64_t> widths = {0, context};
    for (int64_t w : a.context_sweep)
      if (std::find(widths.begin(), widths.end(), w) == widths.end()) widths.push_back(w);
    std::printf("\nchunk modes: the %zu sampled documents longer than one chunk (%lld tokens), each coded alone, %s\n",
                long_docs.size(), (long long)chunk, names[0].c_str());
    std::printf("%6s %5s %9s %8s %9s %9s %8s %9s %9s\n", "W", "docs", "tokens", "chunks", "ideal_b/t", "coded_b/t", "saving%",
                "c_tok/s", "d_tok/s");
    double base_coded = 0;
    for (int64_t w : widths) {
      LmCodecOptions o = opt;
      o.context_tokens = w;
      Totals t;
      int64_t chunks = 0;
      for (size_t i = 0; i < long_docs.size(); ++i) {
        CodeStats cs, ds;
        const std::string file = codecs[0]->compress(long_docs[i], o, &cs);
        if (codecs[0]->decompress(file, "long document", a.threads, &ds) != long_docs[i])
          throw std::runtime_error("chunk modes: round trip changed the bytes of long document " + std::to_string(i));
        t.tokens += cs.tokens, t.payload_bytes += cs.payload_bytes, t.ideal_bits += cs.ideal_bits;
        t.compress_s += cs.seconds, t.decompress_s += ds.seconds, chunks += cs.chunks;
      }
      const double coded = 8.0 * static_cast<double>(t.payload_bytes);
      if (w == 0) base_coded = coded;
      std::printf("%6lld %5zu %9lld %8lld %9.4f %9.4f %8.2f %9.0f %9.0f\n", (long long)w, long_docs.size(), (long long)t.tokens,
                  (long long)chunks, t.tokens ? t.ideal_bits / t.tokens : 0.0, t.tokens ? coded / t.tokens : 0.0,
                  base_coded > 0 ? 100.0 * (1.0 - coded / base_coded) : 0.0, t.compress_s > 0 ? t.tokens / t.compress_s : 0.0,
                  t.decompress_s > 0 ? t.tokens / t.decompress_s : 0.0);
    }
    std::printf("  (W = 0: independent chunks, decoded in parallel; W > 0: each later chunk reads the previous W tokens\n"
                "   first, and a file's chunks decode one after another)\n");


  } else {
    for (const auto& d : domains)
      for (const auto& doc : d.docs) joined += doc;
  }
  if (a.modes_only) return 0;

  if (a.versions) {
    // Arithmetic versions: the ideal code length of every sampled document under version 1 (float32
    // weights, quantized ones dequantized; the adapter merged; a float32 key/value cache) and under
    // version 2 (weights as stored, int8 activations for quantized matrices, a half key/value
    // cache, the adapter beside the weights). What version 2 costs in bits.
    std::printf("\narithmetic versions: ideal bits of the sampled documents, each coded alone (chunking as above)\n");
    std::printf("%-20s %-10s %5s %8s %12s %12s %9s\n", "domain", "model", "docs", "tokens", "v1_bits/tok", "v2_bits/tok", "v2/v1-1%");
    for (size_t k = 0; k < codecs.size(); ++k) {
      const std::shared_ptr<const LoadedAdapter> ad = k == 0 ? nullptr : set.adapter(a.adapter_dir);
      const std::shared_ptr<const engine::Model> v1 = base.version1_model(ad.get());
      double all1 = 0, all2 = 0;
      int64_t all_tokens = 0, all_docs = 0;
      for (const auto& d : domains) {
        std::vector<std::vector<int32_t>> ids;
        std::vector<TokenSpan> spans;
        int64_t tokens = 0;
        for (const auto& doc : d.docs) ids.push_back(codecs[k]->tokenize(doc));
        for (const auto& v : ids) spans.push_back({v.data(), v.size()}), tokens += static_cast<int64_t>(v.size());
        double b1 = 0, b2 = 0;
        for (double b : code_length_bits(*v1, spans, a.chunk_tokens, a.context_tokens, a.threads)) b1 += b;
        for (double b : code_length_bits(codecs[k]->model(), spans, a.chunk_tokens, a.context_tokens, a.threads)) b2 += b;
        std::printf("%-20s %-10s %5zu %8lld %12.5f %12.5f %+9.3f\n", d.name.c_str(), names[k].c_str(), d.docs.size(), (long long)tokens,
                    tokens ? b1 / tokens : 0.0, tokens ? b2 / tokens : 0.0, b1 > 0 ? 100.0 * (b2 / b1 - 1.0) : 0.0);
        all1 += b1, all2 += b2, all_tokens += tokens, all_docs += static_cast<int64_t>(d.docs.size());
      }
      std::printf("%-20s %-10s %5lld %8lld %12.5f %12.5f %+9.3f\n", "all", names[k].c_str(), (long long)all_docs,
                  (long long)all_tokens, all_tokens ? all1 / all_tokens : 0.0, all_tokens ? all2 / all_tokens : 0.0,
                  all1 > 0 ? 100.0 * (all2 / all1 - 1.0) : 0.0);
    }
  }
  if (a.versions_only) return 0;

  const std::vector<SpeedRow> speed = run_speed(a, codecs, names, domains);
  if (!a.peer.empty()) run_peers(a, domains, speed);

  if (!a.no_rss && !joined.empty()) {
    const std::string dir = (fs::temp_directory_path() / ("bench_codec_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir);
    std::string big;
    while (static_cast<int64_t>(big.size()) < a.rss_bytes) big += joined;
    big.resize(static_cast<size_t>(a.rss_bytes));
    write_file_atomic(dir + "/in.txt", big);
    std::printf("\npeak resident memory (VmHWM of a fresh process: fork + exec of this program), %lld-byte input, %s\n",
                (long long)big.size(), names.back().c_str());
    ChildResult load = spawn_child(a, "load", "", "");
    ChildResult comp = spawn_child(a, "compress", dir + "/in.txt", dir + "/in.lrz");
    ChildResult dec = spawn_child(a, "decompress", dir + "/in.lrz", dir + "/out.txt");
    const bool same = read_file(dir + "/out.txt") == big;
    std::printf("%-12s %10s %10s %9s %10s\n", "run", "VmHWM_MB", "+load_MB", "tokens", "tokens/s");
    auto row = [&](const char* n, const ChildResult& r) {
      std::printf("%-12s %10.1f %10.1f %9lld %10.0f\n", n, r.hwm_kb / 1024.0, (r.hwm_kb - load.hwm_kb) / 1024.0,
                  (long long)r.tokens, r.seconds > 0 ? r.tokens / r.seconds : 0.0);
    };
    row("load only", load);
    row("compress", comp);
    row("decompress", dec);
    std::printf("  round trip of the %lld-byte input: %s; file %lld bytes\n", (long long)big.size(), same ? "ok" : "FAILED",
                (long long)fs::file_size(dir + "/in.lrz"));
    fs::remove_all(dir);
    if (!same) return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // rows appear as they are measured, also into a file
  Args a;
  CLI::App app{"bench_codec: the LM codec's ideal and coded bits, ratios beside xz/zstd, speed and peak memory"};
  app.add_option("-m,--model", a.model_dir, "base model directory (HF Llama + tokenizer.model)")->required();
  app.add_option("-a,--adapter", a.adapter_dir, "adapter directory (PEFT); rows with and without it");
  app.add_option("inputs", a.inputs, "corpus root, domain directory, .jsonl file or plain file");
  app.add_option("--docs", a.docs, "documents sampled per JSONL domain")->check(CLI::PositiveNumber);
  app.add_option("--seed", a.seed, "seed of the document sample");
  app.add_option("--threads", a.threads, "worker threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--chunk-tokens", a.chunk_tokens, "tokens per stream (0 = context - 1)")->check(CLI::NonNegativeNumber);
  app.add_option("--context-tokens", a.context_tokens, "W: tokens a later chunk reads first (-1 = chunk / 4, 0 = independent)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 30));
  app.add_option("--context-sweep", a.context_sweep, "further W to measure in the chunk-modes section")->delimiter(',');
  app.add_flag("--modes-only", a.modes_only, "stop after the chunk-modes section (no speed or memory sections)");
  app.add_option("--group-streams", a.group_streams, "streams per batch group")->check(CLI::PositiveNumber);
  app.add_option("--repeat", a.repeat, "speed section: best of this many runs")->check(CLI::PositiveNumber);
  app.add_option("--rss-bytes", a.rss_bytes, "input size for the peak-memory runs")->check(CLI::PositiveNumber);
  app.add_flag("--no-rss", a.no_rss, "skip the peak-memory runs");
  app.add_option("--split", a.split, "JSONL documents from prepare's test split ('test', the default) or any ('any')")
      ->check(CLI::IsMember({"test", "any"}));
  app.add_option("--min-bytes", a.min_bytes, "sample only documents of at least this many bytes")->check(CLI::NonNegativeNumber);
  app.add_option("--max-bytes", a.max_bytes, "sample only documents of at most this many bytes")->check(CLI::NonNegativeNumber);
  app.add_flag("!--no-versions", a.versions, "skip the arithmetic-versions section");
  app.add_flag("--versions-only", a.versions_only, "only the arithmetic-versions section (no per-domain table, chunk modes, speed or memory)");
  app.add_flag("--speed-only", a.speed_only, "skip the per-domain table and the chunk modes");
  app.add_option("--speed-threads", a.speed_threads, "speed section: thread counts, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(0, 4096));
  app.add_option("--peer", a.peer, "side by side with llama.cpp: a venv's python with llama-cpp-python ('auto': the venv of "
                                   "scripts/peer_venv.sh); needs a .gguf model");
  app.add_option("--llama-zip", a.llama_zip, "with --peer: llama-zip's folder (its llama_zip.py), end to end beside lorazip's program");
  app.add_option("--lorazip", a.lorazip_bin, "with --peer: the lorazip program to time end to end (default: beside bench_codec)");
  app.add_option("--child", a.child_mode)->group("");
  app.add_option("--child-in", a.child_in)->group("");
  app.add_option("--child-out", a.child_out)->group("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (!a.child_mode.empty()) return run_child(a);
    if (a.inputs.empty()) throw std::invalid_argument("no inputs: pass a corpus directory, .jsonl files or plain files");
    if (a.max_bytes > 0 && a.min_bytes > a.max_bytes)
      throw std::invalid_argument("--min-bytes " + std::to_string(a.min_bytes) + " is above --max-bytes " + std::to_string(a.max_bytes));
    if (a.peer.empty() && (!a.llama_zip.empty() || !a.lorazip_bin.empty()))
      throw std::invalid_argument("--llama-zip and --lorazip time programs beside llama.cpp: they need --peer");
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_codec: %s\n", e.what());
    return 1;
  }
}
