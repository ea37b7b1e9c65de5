// Conditioned coding measured: each response of a JSONL corpus ("text" beside its "prompt") coded
// from BOS alone and given its prompt (rendered as `lorazip compress --context-file` renders it),
// per domain: the ideal code lengths, the saving, and the compact files' bytes; every conditioned
// file is decoded with its prompt and compared with the response. With --peer and --llama-zip,
// llama-zip (which codes text alone and writes no header) on the same responses and GGUF. With
// --archive DIR, the sampled records (their lines as they are) as one JSONL file in DIR, stored by
// the classical codecs, by `lorazip archive create --jsonl` (responses coded from BOS alone, prompts
// in the zstd index) and by `--conversations` (each prompt coded, then its response given it), both
// archives decoded and compared with the file.
//
//   bench_conditioned -m BASE [-a ADAPTER] [--docs N] [--seed S] [--split test|any] [--template T]
//                     [--threads N] [--peer PYTHON --llama-zip DIR] [--archive DIR] CORPUS...
//
// CORPUS: a corpus root (one sub-directory per domain holding *.jsonl), a domain directory or one
// .jsonl file. Records without a prompt are left out. --split test (the default) samples prepare's
// test split (the document's hash, as `lorazip prepare` splits), N records per domain with a seeded
// generator (same --seed, same records).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/peer.h"
#include "runtime/archive_io.h"
#include "codec/classical.h"
#include "codec/lm_codec.h"
#include "runtime/model_setup.h"
#include "common/fs.h"
#include "data/prepare.h"
#include "gen/context.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

struct Args {
  std::string model, adapter, split = "test", template_name = "auto", peer, llama_zip, archive_dir;
  std::vector<std::string> inputs;
  int64_t docs = 20;
  uint64_t seed = 1;
  int threads = 0;
};

struct Record {
  std::string prompt, text, line;
};

struct Domain {
  std::string name;
  std::vector<Record> records;
};

std::vector<Record> read_records(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::vector<Record> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ":" + std::to_string(n) + ": not JSON (" + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) continue;
    if (!j.contains("prompt") || !j["prompt"].is_string()) continue;
    Record r{j["prompt"].get<std::string>(), j["text"].get<std::string>(), line};
    if (!r.text.empty() && !r.prompt.empty()) out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> jsonl_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".jsonl") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

Domain sample(const std::string& name, const std::vector<std::string>& files, const Args& a) {
  std::vector<Record> all;
  for (const auto& f : files)
    for (auto& r : read_records(f))
      if (a.split != "test" || split_of_document(r.text, SplitConfig{}) == 2) all.push_back(std::move(r));
  if (all.empty()) throw std::runtime_error("domain '" + name + "': no records with a prompt" + (a.split == "test" ? " in the test split" : ""));
  std::vector<size_t> idx(all.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::mt19937_64 rng(a.seed ^ std::hash<std::string>{}(name));
  for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
  Domain d{name, {}};
  for (size_t i = 0; i < idx.size() && static_cast<int64_t>(i) < a.docs; ++i) d.records.push_back(all[idx[i]]);
  return d;
}

std::vector<Domain> collect(const Args& a) {
  std::vector<Domain> out;
  for (const auto& in : a.inputs) {
    if (fs::is_directory(in)) {
      if (!jsonl_files(in).empty()) {
        out.push_back(sample(fs::path(in).filename().string(), jsonl_files(in), a));
        continue;
      }
      std::vector<std::string> subdirs;
      for (const auto& e : fs::directory_iterator(in))
        if (e.is_directory() && !jsonl_files(e.path().string()).empty()) subdirs.push_back(e.path().string());
      std::sort(subdirs.begin(), subdirs.end());
      if (subdirs.empty()) throw std::runtime_error("'" + in + "' holds no *.jsonl, directly or one level down");
      for (const auto& d : subdirs) out.push_back(sample(fs::path(d).filename().string(), jsonl_files(d), a));
    } else if (fs::path(in).extension() == ".jsonl") {
      out.push_back(sample(fs::path(in).stem().string(), {in}, a));
    } else {
      throw std::runtime_error("'" + in + "' is neither a directory nor a .jsonl file");
    }
  }
  return out;
}

struct Row {
  int64_t docs = 0, bytes = 0, tokens = 0, context_tokens = 0, file_plain = 0, file_given = 0;
  double bits_plain = 0, bits_given = 0;
  void add(const Row& o) {
    docs += o.docs, bytes += o.bytes, tokens += o.tokens, context_tokens += o.context_tokens;
    file_plain += o.file_plain, file_given += o.file_given, bits_plain += o.bits_plain, bits_given += o.bits_given;
  }
};

void print_row(const std::string& name, const Row& r) {
  std::printf("| %s | %lld | %lld | %lld | %lld | %.1f | %.1f | %.1f%% | %lld | %lld |\n", name.c_str(), (long long)r.docs,
              (long long)r.bytes, (long long)r.tokens, (long long)r.context_tokens, r.bits_plain, r.bits_given,
              r.bits_plain > 0 ? 100.0 * (1.0 - r.bits_given / r.bits_plain) : 0.0, (long long)r.file_plain, (long long)r.file_given);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"conditioned coding: each response from BOS alone and given its prompt"};
  Args a;
  app.add_option("-m,--model", a.model, "base model (a .gguf file or a Hugging Face directory)")->required();
  app.add_option("-a,--adapter", a.adapter, "adapter directory (PEFT) to code with");
  app.add_option("inputs", a.inputs, "corpus root, domain directory or .jsonl file")->required();
  app.add_option("--docs", a.docs, "records sampled per domain")->check(CLI::PositiveNumber);
  app.add_option("--seed", a.seed, "seed of the sample");
  app.add_option("--split", a.split, "records of prepare's test split ('test') or any ('any')")->check(CLI::IsMember({"test", "any"}));
  app.add_option("--template", a.template_name, "how the prompt is rendered: auto, chatml or plain")->capture_default_str();
  app.add_option("--threads", a.threads, "worker threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--peer", a.peer, "a venv's python with llama-cpp-python, for llama-zip");
  app.add_option("--llama-zip", a.llama_zip, "with --peer: llama-zip's folder (its llama_zip.py)");
  app.add_option("--archive", a.archive_dir, "also store the sampled records as JSONL in this folder: classical codecs and lorazip archives");
  CLI11_PARSE(app, argc, argv);
  try {
    if (a.llama_zip.empty() != a.peer.empty()) throw std::invalid_argument("--peer and --llama-zip go together");
    const gen::ContextTemplate t = gen::parse_context_template(a.template_name);
    const std::vector<Domain> domains = collect(a);
    LoadedModel base = load_model(a.model);
    const gen::ContextRenderer renderer(a.model, *base.tokenizer, t);
    CodecSet codecs(base);
    const LmCodec& codec = codecs.get(a.adapter);
    LmCodecOptions opt;
    opt.format = ContainerFormat::Compact;
    opt.threads = a.threads;

    std::printf("model %s%s, template %s, %s split, %lld records a domain (seed %llu)\n\n", a.model.c_str(),
                a.adapter.empty() ? "" : (", adapter " + a.adapter).c_str(), a.template_name.c_str(), a.split.c_str(),
                (long long)a.docs, (unsigned long long)a.seed);
    std::printf("| domain | records | response bytes | response tokens | context tokens | BOS-only ideal bits | conditioned ideal bits "
                "| saved | BOS-only file bytes | conditioned file bytes |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    Row all;
    std::vector<std::string> responses;  // for llama-zip
    for (const Domain& d : domains) {
      Row row;
      for (size_t i = 0; i < d.records.size(); ++i) {
        const Record& r = d.records[i];
        const gen::RenderedContext ctx = renderer.render(r.prompt);
        CodeStats plain, given;
        opt.context = nullptr;
        const std::string f0 = codec.compress(r.text, opt, &plain);
        opt.context = &ctx.tokens;
        const std::string f1 = codec.compress(r.text, opt, &given);
        const std::string where = d.name + " record " + std::to_string(i);
        if (codec.decompress(f1, where, a.threads, nullptr, nullptr, &ctx.tokens) != r.text)
          throw std::runtime_error(where + ": the conditioned file did not decode to the response");
        ++row.docs;
        row.bytes += static_cast<int64_t>(r.text.size());
        row.tokens += plain.tokens;
        row.context_tokens += given.prefix_tokens;
        row.bits_plain += plain.ideal_bits;
        row.bits_given += given.ideal_bits;
        row.file_plain += static_cast<int64_t>(f0.size());
        row.file_given += static_cast<int64_t>(f1.size());
        responses.push_back(r.text);
      }
      print_row(d.name, row);
      all.add(row);
    }
    print_row("**all**", all);
    std::printf("\nprompts rendered by %s; files: lorazip's compact format, headers included\n", renderer.template_name().c_str());
    if (!a.archive_dir.empty()) {
      std::string jsonl;
      for (const Domain& d : domains)
        for (const Record& r : d.records) jsonl += r.line + "\n";
      fs::create_directories(a.archive_dir);
      const std::string path = (fs::path(a.archive_dir) / "records.jsonl").string();
      write_file_atomic(path, jsonl);
      std::printf("\nthe %lld records as JSONL (%s): %lld bytes\n\n| stored by | bytes | of the JSONL |\n|---|---:|---:|\n",
                  (long long)all.docs, path.c_str(), (long long)jsonl.size());
      auto row = [&](const std::string& what, size_t bytes) {
        std::printf("| %s | %zu | %.4f |\n", what.c_str(), bytes, double(bytes) / double(jsonl.size()));
      };
      for (Classical c : all_classical()) row(classical_name(c), classical_compress(c, jsonl).size());
      const TurnRendererFactory renderers = gen::archive_turn_renderers(a.model, *base.tokenizer);
      std::vector<std::pair<std::string, ArchiveWriteStats>> made;
      for (const bool conversations : {false, true}) {
        AdapterSelector fixed(codecs, {a.adapter, "", ""});
        ArchiveCodingOptions c;
        c.threads = a.threads;
        c.conversations = conversations;
        c.renderers = renderers;
        c.turn_template = gen::resolve_turn_template(a.model, *base.tokenizer, t);
        const std::string lza = (fs::path(a.archive_dir) / (conversations ? "conversations.lza" : "records.lza")).string();
        const ArchiveWriteStats st = archive_create(lza, fixed, documents_from_jsonl(jsonl, conversations), c, true);
        auto src = open_file_source(lza);
        const ArchiveLayout L = read_archive_layout(*src, lza);
        std::vector<size_t> which;
        for (size_t k = 0; k < L.index.members.size(); ++k)
          if (!L.index.members[k].same_record) which.push_back(k);
        std::string back;
        for (auto& e : archive_extract_members(*src, L, which, fixed, a.threads, lza, nullptr, renderers)) {
          if (e.error) std::rethrow_exception(e.error);
          back += e.doc;
        }
        if (back != jsonl) throw std::runtime_error(lza + ": the archive did not give the JSONL file back");
        row(conversations ? "lorazip archive --conversations (prompt coded, then the response given it)"
                          : "lorazip archive --jsonl (responses from BOS alone, the rest in the index)",
            st.file_bytes);
        made.emplace_back(conversations ? "--conversations" : "--jsonl", st);
      }
      std::printf("\nboth archives decoded to the JSONL file byte for byte; turns rendered in %s\n\n| archive | turns | role | text bytes | coded bytes | of the text |\n|---|---|---:|---:|---:|---:|\n",
                  gen::turn_template_name(gen::resolve_turn_template(a.model, *base.tokenizer, t)));
      for (const auto& [name, st] : made) {
        if (st.by_role.empty()) {
          std::printf("| %s | responses | %zu | %llu | %llu | %.4f |\n", name.c_str(), st.members, (unsigned long long)st.input_bytes,
                      (unsigned long long)st.data_bytes, double(st.data_bytes) / double(std::max<uint64_t>(1, st.input_bytes)));
          continue;
        }
        for (const auto& [role, b] : st.by_role)
          std::printf("| %s | %s | %zu | %llu | %llu | %.4f |\n", name.c_str(), role.empty() ? "(none)" : role.c_str(), b.turns,
                      (unsigned long long)b.input_bytes, (unsigned long long)b.data_bytes,
                      double(b.data_bytes) / double(std::max<uint64_t>(1, b.input_bytes)));
      }
    }
    if (!a.peer.empty()) {
      const PeerDocuments docs(responses);
      PeerRequest req;
      req.python = a.peer;
      req.gguf = a.model;
      req.threads = a.threads > 0 ? a.threads : 1;
      req.files = docs.paths();
      req.llama_zip_dir = a.llama_zip;
      const PeerFigures p = run_peer_llamacpp(req);
      if (!p.llama_zip) throw std::runtime_error("the peer script ran no llama-zip");
      std::printf("llama-zip on the same %lld responses (text alone, no header): %lld bytes, round trip %s; lorazip conditioned: "
                  "%lld bytes (%.1f%% of llama-zip's), BOS-only: %lld bytes (%.1f%%)\n",
                  (long long)responses.size(), (long long)p.llama_zip->bytes_out, p.llama_zip->round_trip_exact ? "exact" : "FAILED",
                  (long long)all.file_given, 100.0 * all.file_given / std::max<int64_t>(1, p.llama_zip->bytes_out),
                  (long long)all.file_plain, 100.0 * all.file_plain / std::max<int64_t>(1, p.llama_zip->bytes_out));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_conditioned: %s\n", e.what());
    return 1;
  }
}
