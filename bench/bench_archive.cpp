// Short documents, one file each or all in one archive, beside the classical answers: for the
// last N records of each JSONL file, the model's ideal code length, the compact (version 3) and
// full (version 2) files one per document, one lorazip archive of all of them, and brotli-11 /
// zstd-19 per document and concatenated, and zstd-19 per document with a dictionary trained
// (ZDICT_trainFromBuffer, 16 KiB) on other records of the same file.
//
//   bench_archive -m BASE [-a ADAPTER | -A ADAPTERS_DIR] [--docs N] [--dict-docs M] FILE.jsonl...
//
// Test documents: the last N records; dictionary training: the M records before them (disjoint).
// Round trips are the tests' business (tests/test_lm_codec.cpp); this program only measures.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/archive_io.h"
#include "codec/classical.h"
#include "codec/lm_codec.h"
#include "runtime/model_setup.h"
#include "common/fs.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> texts_of(const std::string& path) {
  std::vector<std::string> out;
  for (const ArchiveDocument& d : documents_from_jsonl(read_file(path)))
    if (!d.raw_line && !d.bytes.empty()) out.push_back(d.bytes);
  return out;
}

// Per-document zstd-19 sizes with a dictionary trained on `train`; sets *dict_bytes.
size_t zstd_dict_total(const std::vector<std::string>& train, const std::vector<std::string>& docs, size_t* dict_bytes) {
  const std::string dict = train_zstd_dictionary(train);
  *dict_bytes = dict.size();
  size_t total = 0;
  for (const auto& d : docs) total += zstd19_dict_compressed_size(dict, d);
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lorazip files and archives of short documents beside brotli-11, zstd-19 and zstd-19 with a dictionary"};
  std::string model_dir, adapter_dir, adapters_dir;
  std::vector<std::string> inputs;
  size_t n_docs = 20, dict_docs = 200;
  int threads = 0;
  app.add_option("-m,--model", model_dir, "base model")->required();
  app.add_option("-a,--adapter", adapter_dir, "adapter for every document");
  app.add_option("-A,--adapters", adapters_dir, "adapters directory: each document routed to the cheapest");
  app.add_option("--docs", n_docs, "test documents per file (the last N records)")->capture_default_str();
  app.add_option("--dict-docs", dict_docs, "records before them that train the zstd dictionary")->capture_default_str();
  app.add_option("-t,--threads", threads, "threads (0 = all cores)")->capture_default_str();
  app.add_option("inputs", inputs, "JSONL files")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    LoadedModel base = load_model(model_dir);
    CodecSet codecs(base);
    AdapterSelector selector(codecs, {adapter_dir, adapters_dir, ""});
    std::printf("| input | docs | bytes | ideal | compact files | ideal + 8/doc | full files | archive | brotli-11 docs | zstd-19 docs | "
                "zstd-19+dict docs (dict) | brotli-11 concat | zstd-19 concat |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& in : inputs) {
      const std::vector<std::string> all = texts_of(in);
      if (all.size() < n_docs + 10) throw std::invalid_argument(in + ": only " + std::to_string(all.size()) + " records");
      const std::vector<std::string> docs(all.end() - static_cast<long>(n_docs), all.end());
      const size_t train_from = all.size() - n_docs > dict_docs ? all.size() - n_docs - dict_docs : 0;
      const std::vector<std::string> train(all.begin() + static_cast<long>(train_from), all.end() - static_cast<long>(n_docs));
      size_t bytes = 0, compact = 0, full = 0, br = 0, zs = 0, stored = 0;
      double ideal_bits = 0;
      std::string concat;
      std::vector<ArchiveDocument> adocs;
      for (size_t i = 0; i < docs.size(); ++i) {
        const std::string& d = docs[i];
        LmCodec& codec = *selector.pick(d, 0, -1).codec;
        LmCodecOptions o;
        o.threads = threads;
        o.format = ContainerFormat::Compact;
        CodeStats cs;
        const std::string file = codec.compress(d, o, &cs);
        o.format = ContainerFormat::Full;
        CodeStats fs2;
        full += codec.compress(d, o, &fs2).size();
        compact += file.size();
        stored += cs.stored;
        ideal_bits += fs2.ideal_bits;
        bytes += d.size();
        br += classical_compressed_size(Classical::Brotli11, d);
        zs += classical_compressed_size(Classical::Zstd19, d);
        concat += d;
        adocs.push_back(file_document("doc" + std::to_string(i), d));
      }
      ArchiveCodingOptions ao;
      ao.threads = threads;
      const std::string tmp = (fs::temp_directory_path() / ("bench_archive_" + std::to_string(::getpid()) + ".lza")).string();
      const ArchiveWriteStats st = archive_create(tmp, selector, adocs, ao, true);
      fs::remove(tmp);
      size_t dict_bytes = 0;
      const size_t zd = zstd_dict_total(train, docs, &dict_bytes);
      const double ideal = ideal_bits / 8;
      auto r = [&](double v) { return v / static_cast<double>(bytes); };
      std::printf("| %s | %zu | %zu | %.0f (%.4f) | %zu (%.4f, %zu stored) | %.0f (%.4f) | %zu (%.4f) | %llu (%.4f) | %zu (%.4f) | %zu (%.4f) | %zu (%.4f) (%zu) | "
                  "%zu (%.4f) | %zu (%.4f) |\n",
                  fs::path(in).filename().c_str(), docs.size(), bytes, ideal, r(ideal), compact, r(compact), stored, ideal + 8.0 * docs.size(),
                  r(ideal + 8.0 * docs.size()), full, r(full), (unsigned long long)st.file_bytes, r(static_cast<double>(st.file_bytes)), br, r(br),
                  zs, r(zs), zd, r(zd), dict_bytes, classical_compressed_size(Classical::Brotli11, concat),
                  r(classical_compressed_size(Classical::Brotli11, concat)), classical_compressed_size(Classical::Zstd19, concat),
                  r(classical_compressed_size(Classical::Zstd19, concat)));
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_archive: %s\n", e.what());
    return 1;
  }
  return 0;
}
