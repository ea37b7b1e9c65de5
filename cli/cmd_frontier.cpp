// lorazip frontier: the compression–compute chart of the lossy protocols. Reads the result files of
// `lorazip rewrite -o` and `lorazip qa eval -o`, finds their original (reference) responses, codes
// those with gzip/xz/zstd/brotli, the base LM codec and optionally base + an adapter, and writes the
// chart (OUT.svg) and the table of the same points (OUT.md, OUT.csv). Library: gen/frontier.h.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>
#include <stdexcept>

#include "cli/commands.h"
#include "codec/classical.h"
#include "runtime/model_setup.h"
#include "model/llama_tensors.h"
#include "common/fs.h"
#include "common/log.h"
#include "gen/frontier.h"
#include "gen/harness.h"

namespace lorazip {
namespace {

struct FrontierOptions {
  std::string model, adapter, reference, reference_model, rewrite, qa, qa_answerer = "oracle", out;
};

// The original responses of a set, in record order, each checked against the byte count its run recorded.
std::vector<std::string> originals(const std::map<std::string, gen::ReferenceAnswer>& refs, const std::string& file,
                                   const std::vector<std::pair<std::string, int64_t>>& id_bytes, const std::string& bench) {
  std::vector<std::string> out;
  for (const auto& [id, bytes] : id_bytes) {
    auto it = refs.find(id);
    if (it == refs.end())
      throw std::runtime_error(file + ": problem '" + id + "' has no " + bench +
                               " answer of that --reference-model in --reference (give the files the run used)");
    if (static_cast<int64_t>(it->second.answer.size()) != bytes)
      throw std::runtime_error(file + ": problem '" + id + "': the run recorded " + std::to_string(bytes) + " original bytes, the reference file's answer has " +
                               std::to_string(it->second.answer.size()) + " (another reference file or model?)");
    out.push_back(it->second.answer);
  }
  return out;
}

// Classical codecs, the base LM codec and base + adapter on `texts` (each text coded alone).
void add_codec_points(gen::Frontier& f, CodecSet& codecs, const FrontierOptions& o, const std::vector<std::string>& texts, const std::string& set,
                      int threads, double* base_bits_out) {
  double bytes = 0;
  for (const auto& t : texts) bytes += static_cast<double>(t.size());
  for (Classical c : all_classical()) {
    gen::FrontierPoint p;
    p.set = set;
    p.label = classical_name(c);
    p.kind = "classical";
    p.original_bytes = bytes;
    for (const auto& t : texts) p.bits += 8.0 * static_cast<double>(classical_compressed_size(c, t));
    p.note = "each response compressed alone";
    f.points.push_back(p);
  }
  LmCodecOptions opt;
  opt.threads = threads;
  std::vector<std::pair<std::string, std::string>> codecs_to_run = {{"", "base LM"}};
  if (!o.adapter.empty()) codecs_to_run.push_back({o.adapter, "base + adapter " + describe_adapter(o.adapter).domain});
  for (const auto& [dir, label] : codecs_to_run) {
    gen::FrontierPoint p;
    p.set = set;
    p.label = label;
    p.kind = "lossless";
    p.original_bytes = bytes;
    int64_t stored = 0;
    for (const auto& t : texts) {
      CodeStats s;
      codecs.get(dir).compress(t, opt, &s);
      p.bits += s.coded_bits();
      p.positions += 2.0 * static_cast<double>(s.tokens + s.chunks);  // BOS + tokens per chunk, coded and decoded
      stored += s.stored;
    }
    p.note = "arithmetic-coded payload, each response alone" + (stored ? ", " + std::to_string(stored) + " stored raw" : std::string());
    if (dir.empty() && base_bits_out) *base_bits_out = p.bits;
    f.points.push_back(p);
  }
}

std::string set_name(const std::string& bench, size_t n) { return bench + " (" + std::to_string(n) + " responses)"; }

}  // namespace

struct FrontierCommand {
  FrontierOptions o;
  CLI::App* app = nullptr;
};

FrontierCommand* add_frontier_command(CLI::App& app) {
  static FrontierCommand c;
  FrontierOptions& o = c.o;
  c.app = app.add_subcommand("frontier", "chart compression ratio against compute for rewrite, QA, the LM codec and classical codecs on the "
                                         "same original responses (OUT.svg, OUT.md, OUT.csv)");
  c.app->add_option("-m,--model", o.model, "the model the runs used (GGUF or HF directory): codes the originals, counts parameters")->required();
  c.app->add_option("-a,--adapter", o.adapter, "also code the originals with base + this adapter (a PEFT directory)");
  c.app->add_option("--reference", o.reference, "the --reference JSONL the runs used (holds the original responses)")->required();
  c.app->add_option("--reference-model", o.reference_model, "the --reference-model the runs used")->required();
  c.app->add_option("--rewrite", o.rewrite, "OUT.jsonl of lorazip rewrite -o OUT");
  c.app->add_option("--qa", o.qa, "OUT.jsonl of lorazip qa eval -o OUT");
  c.app->add_option("--qa-answerer", o.qa_answerer, "the answerer that QA run used (a label: oracle, self, a model name)")->capture_default_str();
  c.app->add_option("-o,--out", o.out, "write OUT.svg, OUT.md and OUT.csv")->required();
  return &c;
}

int run_frontier_command(FrontierCommand* c, const GlobalOptions& g) {
  if (!*c->app) return -1;
  const FrontierOptions& o = c->o;
  if (o.rewrite.empty() && o.qa.empty()) throw std::invalid_argument("frontier needs a run's results: --rewrite RW.jsonl and/or --qa QA.jsonl");
  std::vector<gen::RewriteRecordIn> rw;
  std::vector<gen::QaRecordIn> qa;
  if (!o.rewrite.empty()) rw = gen::load_rewrite_results(o.rewrite);
  if (!o.qa.empty()) qa = gen::load_qa_results(o.qa);
  LoadedModel base = load_model(o.model);
  CodecSet codecs(base);
  gen::Frontier f;
  f.model = o.model.substr(o.model.find_last_of('/') == std::string::npos ? 0 : o.model.find_last_of('/') + 1);
  for (const auto& [key, shape] : expected_llama_tensors(base.config)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    f.parameters += n;
  }

  if (!rw.empty()) {
    const std::string bench = rw.front().bench;
    std::vector<std::pair<std::string, int64_t>> ids;
    double recorded = 0;
    for (const auto& r : rw) {
      if (r.bench != bench || r.reference_model != o.reference_model)
        throw std::invalid_argument(o.rewrite + ": problem '" + r.id + "' is from bench '" + r.bench + "', reference model '" + r.reference_model +
                                    "'; expected '" + bench + "' and --reference-model '" + o.reference_model + "'");
      ids.push_back({r.id, r.original_bytes});
      recorded += r.original_coded_bits;
    }
    const auto texts = originals(gen::load_reference_answers(o.reference, bench, o.reference_model), o.rewrite, ids, bench);
    const std::string set = set_name(bench, texts.size());
    double base_bits = 0;
    add_codec_points(f, codecs, o, texts, set, g.threads, &base_bits);
    f.points.push_back(gen::rewrite_point(rw, set));
    log_info("frontier: " + set + ": base LM codes the originals in " + std::to_string(static_cast<int64_t>(base_bits)) + " bits; the rewrite run recorded " +
             std::to_string(static_cast<int64_t>(recorded)) + (base_bits == recorded ? " (same)" : " (differs: another model?)"));
  }
  if (!qa.empty()) {
    const std::string bench = qa.front().bench;
    std::vector<std::pair<std::string, int64_t>> ids;
    for (const auto& r : qa) {
      if (r.bench != bench) throw std::invalid_argument(o.qa + ": problem '" + r.id + "' is from bench '" + r.bench + "', the first from '" + bench + "'");
      ids.push_back({r.id, r.llm_bytes});
    }
    const auto texts = originals(gen::load_reference_answers(o.reference, bench, o.reference_model), o.qa, ids, bench);
    const std::string set = set_name(bench, texts.size());
    add_codec_points(f, codecs, o, texts, set, g.threads, nullptr);
    f.points.push_back(gen::qa_point(qa, set, o.qa_answerer));
  }
  const std::string md = gen::frontier_markdown(f);
  write_file_atomic(o.out + ".svg", gen::frontier_svg(f));
  write_file_atomic(o.out + ".md", md);
  write_file_atomic(o.out + ".csv", gen::frontier_csv(f));
  std::fwrite(md.data(), 1, md.size(), stdout);
  return 0;
}

}  // namespace lorazip
