// End-to-end: `lorazip run` on tests/e2e/tiny.yaml writes every artefact a user looks for, a second
// run is served from the stage cache and rewrites nothing, a change in the train section reruns the
// adapters only, and an edited extra corpus reruns eval.
#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

using namespace e2e;

namespace {

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

const std::vector<std::string> kAdapterDomains = {"math", "code"};
const std::vector<std::string> kDomains = {"chat", "math", "code"};

TEST(E2ePipeline, RunWritesEveryArtefact) {
  Result first;
  fs::path t = tiny_pipeline(&first);
  ASSERT_FALSE(t.empty());
  if (!first.cmd.empty()) {
    // This process ran the pipeline: its log names each stage.
    for (const char* stage : {"[1/5] prepare", "[2/5] pretrain", "[3/5] adapter", "[4/5] eval", "[5/5] codec check"})
      EXPECT_TRUE(has(first.err, stage)) << "no '" << stage << "' in the log\n" << first.describe();
    EXPECT_TRUE(has(first.out, "round trip byte for byte: ok")) << first.out;
    std::printf("[ e2e ] the tiny pipeline ran in %.1f s\n", first.seconds);
  }
  for (const char* f : {"data.h5", "tokenizer.model", "base/config.json", "base/model.safetensors", "base/tokenizer.model", "report.md",
                        "report.json", "report.csv", "report.svg"}) {
    EXPECT_TRUE(fs::is_regular_file(t / f)) << "missing " << (t / f);
    if (fs::is_regular_file(t / f)) {
      EXPECT_GT(fs::file_size(t / f), 0u) << (t / f) << " is empty";
    }
  }
  for (const auto& d : kAdapterDomains)
    for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "lorazip.json"})
      EXPECT_TRUE(fs::is_regular_file(t / "adapters" / d / f)) << "missing " << (t / "adapters" / d / f);
  EXPECT_FALSE(fs::exists(t / "adapters" / "chat")) << "tiny.yaml asks for adapters on math and code only";

  // The base is a Hugging Face Llama config with the tiny sizes.
  auto cfg = nlohmann::json::parse(slurp(t / "base/config.json"));
  EXPECT_EQ(cfg.value("hidden_size", 0), 64);
  EXPECT_EQ(cfg.value("num_hidden_layers", 0), 2);
  EXPECT_EQ(cfg.value("vocab_size", 0), 512);

  // report.json: per domain, base and adapter bits/token, finite and positive.
  auto rep = nlohmann::json::parse(slurp(t / "report.json"));
  ASSERT_TRUE(rep.contains("domains")) << rep.dump(2);
  std::map<std::string, nlohmann::json> by_domain;
  for (const auto& d : rep["domains"]) by_domain[d.value("domain", "")] = d;
  for (const auto& name : kDomains) {
    ASSERT_TRUE(by_domain.count(name)) << "report.json has no domain " << name << "\n" << rep.dump(2);
    const auto& d = by_domain[name];
    double base = d["ideal"].value("base_bits_per_token", -1.0);
    double adapter = d["ideal"].value("adapter_bits_per_token", -1.0);
    EXPECT_GT(base, 0.5) << name;
    EXPECT_LT(base, 20.0) << name;
    EXPECT_GT(adapter, 0.5) << name;
    EXPECT_LT(adapter, 20.0) << name;
    EXPECT_GT(d.value("tokens", 0), 0) << name;
    EXPECT_TRUE(d["coded_sample"].value("roundtrip_ok", false)) << name << ": the sampled documents did not round-trip";
    // The same sample documents as one archive: header, members and index, never less than its
    // members' coded data nor more than stored bytes plus the formats' overhead.
    const int64_t archive = d["coded_sample"].value("archive_bytes", int64_t{0});
    EXPECT_GT(archive, 0) << name << ": no archive measured";
    EXPECT_LT(archive, d["coded_sample"].value("bytes", int64_t{0}) + 200) << name;
  }
  for (const auto& name : kAdapterDomains) {
    EXPECT_EQ(by_domain[name].value("own_adapter", ""), name);
    EXPECT_TRUE(by_domain[name]["cross"].contains(name)) << by_domain[name].dump(2);
  }
  // The embedded samples carry prompts: every domain is also scored given them (base and each
  // adapter), rendered plain (the tiny base has no chat template), the prompt's tokens read.
  for (const auto& name : kDomains) {
    const auto& d = by_domain[name];
    ASSERT_TRUE(d.contains("conditioned")) << name << ": no conditioned columns\n" << d.dump(2);
    const auto& c = d["conditioned"];
    EXPECT_EQ(c.value("template", ""), "plain") << name;
    EXPECT_GT(c.value("context_tokens", int64_t{0}), 0) << name;
    EXPECT_GT(c.value("base_bits_per_token", -1.0), 0.5) << name;
    EXPECT_NE(c.value("base_bits", -1.0), d["ideal"].value("base_bits", -1.0)) << name << ": the prompt changed nothing";
    for (const auto& a : kAdapterDomains) EXPECT_TRUE(c["cross"].contains(a)) << name << " lacks adapter " << a;
    // The same records as JSONL lines under the classical codecs: a record holds its response, so
    // each codec's bytes exceed what it takes for the responses alone (both each document alone).
    EXPECT_GT(c.value("prompt_bytes", int64_t{0}), 0) << name;
    ASSERT_TRUE(c.contains("classical_jsonl_per_record_bytes")) << name << "\n" << c.dump(2);
    for (const auto& [codec, bytes] : c["classical_jsonl_per_record_bytes"].items())
      EXPECT_GT(bytes.get<int64_t>(), d["classical_per_doc_bytes"].value(codec, int64_t{0})) << name << " " << codec;
  }
  // The Markdown report names every domain, the CSV has a row per domain and model, the SVG is SVG.
  std::string md = slurp(t / "report.md");
  for (const auto& name : kDomains) EXPECT_TRUE(has(md, name)) << md;
  EXPECT_TRUE(has(md, "| files over ideal, bytes/doc | 3% of ideal + 8 B, bytes/doc | archive ratio | archive over ideal |")) << md;
  EXPECT_TRUE(has(md, "### Conditioned on the prompt")) << md;
  EXPECT_TRUE(has(md, "#### The same records in bytes, beside the classical codecs")) << md;
  EXPECT_TRUE(has(slurp(t / "report.csv"), "base:given_prompt")) << "report.csv lacks the conditioned rows";
  std::string csv = slurp(t / "report.csv");
  EXPECT_TRUE(has(csv, "chat,")) << csv;
  EXPECT_TRUE(has(csv, "adapter:math")) << csv;
  EXPECT_TRUE(has(slurp(t / "report.svg"), "<svg")) << "report.svg is not SVG";

  // lorazip.json records the domain and the fingerprints the codec checks.
  for (const auto& name : kAdapterDomains) {
    auto info = nlohmann::json::parse(slurp(t / "adapters" / name / "lorazip.json"));
    EXPECT_EQ(info.value("domain", ""), name);
    EXPECT_EQ(info.value("base_fingerprint", ""), rep["base"].value("fingerprint", "?"));
    EXPECT_FALSE(info.value("adapter_fingerprint", "").empty());
    EXPECT_FALSE(info.value("tokenizer_sha256", "").empty());
  }
}

TEST(E2ePipeline, SecondRunIsCached) {
  fs::path t = tiny_pipeline();
  ASSERT_FALSE(t.empty());
  // Work on a copy so that tests running at the same time see the shared directory unchanged.
  TempDir tmp;
  fs::copy(t, tmp / "w", fs::copy_options::recursive);
  // What each stage wrote; a cached stage must not rewrite it.
  const std::vector<std::string> outputs = {"data.h5", "tokenizer.model", "base/model.safetensors", "report.json",
                                            "adapters/math/adapter_model.safetensors", "adapters/math/lorazip.json",
                                            "adapters/code/adapter_model.safetensors", "adapters/code/lorazip.json"};
  std::map<std::string, std::string> before;
  for (const auto& f : outputs) before[f] = slurp(tmp / "w" / f);
  Result r = lorazip({"run", kTinyYaml.string(), "--work-dir", (tmp / "w").string()}, tmp.path());
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, "prepare: cached")) << r.describe();
  EXPECT_TRUE(has(r.err, "pretrain: cached")) << r.describe();
  for (const auto& d : kAdapterDomains) EXPECT_TRUE(has(r.err, "'" + d + "': cached")) << r.describe();
  EXPECT_TRUE(has(r.err, "eval: cached")) << r.describe();
  EXPECT_FALSE(has(r.err, "': training")) << r.describe();
  EXPECT_FALSE(has(r.err, "prepare: corpus")) << r.describe();
  EXPECT_TRUE(has(r.out, "round trip byte for byte: ok")) << r.out;
  for (const auto& f : outputs) EXPECT_TRUE(slurp(tmp / "w" / f) == before[f]) << f << " changed in a fully cached run";
}

TEST(E2ePipeline, TrainChangeRerunsAdaptersOnly) {
  fs::path t = tiny_pipeline();
  ASSERT_FALSE(t.empty());
  TempDir tmp;
  fs::copy(t, tmp / "w", fs::copy_options::recursive);
  std::string base_before = slurp(tmp / "w/base/model.safetensors");
  std::string store_before = slurp(tmp / "w/data.h5");
  std::string adapter_before = slurp(tmp / "w/adapters/math/adapter_model.safetensors");

  // Same config with the adapters trained for 12 steps instead of 16 (and data paths made absolute,
  // which resolve to the same files).
  std::string text = tiny_yaml_text_absolute();
  const std::string from = "train:\n  steps: 16\n";
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << "tiny.yaml's train section does not start with 'steps: 16'";
  text.replace(at, from.size(), "train:\n  steps: 12\n");
  spill(tmp / "changed.yaml", text);

  Result r = lorazip({"run", (tmp / "changed.yaml").string(), "--work-dir", (tmp / "w").string()}, tmp.path());
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, "prepare: cached")) << r.describe();
  EXPECT_TRUE(has(r.err, "pretrain: cached")) << r.describe();
  for (const auto& d : kAdapterDomains) {
    EXPECT_FALSE(has(r.err, "'" + d + "': cached")) << r.describe();
    EXPECT_TRUE(has(r.err, "'" + d + "': training")) << r.describe();
  }
  EXPECT_FALSE(has(r.err, "eval: cached")) << "eval depends on the adapters\n" << r.describe();
  EXPECT_EQ(slurp(tmp / "w/base/model.safetensors"), base_before) << "the base was rewritten";
  EXPECT_EQ(slurp(tmp / "w/data.h5"), store_before) << "the token store was rewritten";
  auto info = nlohmann::json::parse(slurp(tmp / "w/adapters/math/lorazip.json"));
  EXPECT_EQ(info["config"]["train"].value("steps", 0), 12) << info.dump(2);
  EXPECT_EQ(info.value("steps", -1), 12) << "the kept adapter is the last one (tiny.yaml evaluates only at the end)\n" << info.dump(2);
  EXPECT_TRUE(slurp(tmp / "w/adapters/math/adapter_model.safetensors") != adapter_before)
      << "the adapter was not retrained: its tensors are those of the 16-step run";
}

// train.conditioned: the adapters are retrained on each response given its prompt (the embedded
// samples carry prompts), the log says how many documents were read after their prompt, and the
// adapter records the option.
TEST(E2ePipeline, ConditionedTrainingReadsThePrompts) {
  fs::path t = tiny_pipeline();
  ASSERT_FALSE(t.empty());
  TempDir tmp;
  fs::copy(t, tmp / "w", fs::copy_options::recursive);
  std::string text = tiny_yaml_text_absolute();
  const std::string from = "train:\n  steps: 16\n";
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << "tiny.yaml's train section does not start with 'steps: 16'";
  text.replace(at, from.size(), "train:\n  steps: 16\n  conditioned: true\n");
  spill(tmp / "cond.yaml", text);
  Result r = lorazip({"run", (tmp / "cond.yaml").string(), "--work-dir", (tmp / "w").string()}, tmp.path());
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, "prepare: cached")) << r.describe();
  for (const auto& d : kAdapterDomains) {
    EXPECT_TRUE(has(r.err, "'" + d + "': training")) << r.describe();
    EXPECT_TRUE(has(r.err, "adapter " + d + ": conditioned loss: ")) << r.describe();
  }
  EXPECT_FALSE(has(r.err, "conditioned loss: 0 of")) << "a domain's documents were not matched to their prompts\n" << r.describe();
  auto info = nlohmann::json::parse(slurp(tmp / "w/adapters/math/lorazip.json"));
  EXPECT_TRUE(info["config"]["train"].value("conditioned", false)) << info.dump(2);
}

// eval depends on its whole config section and on the bytes of each extra corpus: editing an
// extra corpus's text reruns eval, and the rerun's report has the new text's figures.
TEST(E2ePipeline, EditedExtraCorpusRerunsEval) {
  fs::path t = tiny_pipeline();
  ASSERT_FALSE(t.empty());
  TempDir tmp;
  fs::copy(t, tmp / "w", fs::copy_options::recursive);
  spill(tmp / "extra.jsonl", "{\"text\": \"The sum of the first ten odd numbers is 100, a perfect square.\"}\n");
  std::string text = tiny_yaml_text_absolute();
  const std::string from = "  classical: true\n";
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << "tiny.yaml's eval section has no 'classical: true'";
  text.replace(at, from.size(), from + "  extra:\n    - {name: elsewhere, path: " + (tmp / "extra.jsonl").string() + ", adapter: math}\n");
  spill(tmp / "extra.yaml", text);
  auto run = [&] { return lorazip({"run", (tmp / "extra.yaml").string(), "--work-dir", (tmp / "w").string()}, tmp.path()); };
  auto elsewhere_tokens = [&] {
    auto rep = nlohmann::json::parse(slurp(tmp / "w/report.json"));
    for (const auto& d : rep["domains"])
      if (d.value("domain", "") == "elsewhere") return d.value("tokens", int64_t{-1});
    return int64_t{-1};
  };

  Result first = run();
  ASSERT_EQ(first.rc, 0) << first.describe();
  EXPECT_FALSE(has(first.err, "eval: cached")) << "a new extra corpus must rerun eval\n" << first.describe();
  const int64_t tokens_before = elsewhere_tokens();
  EXPECT_GT(tokens_before, 0) << slurp(tmp / "w/report.json");
  Result same = run();
  ASSERT_EQ(same.rc, 0) << same.describe();
  EXPECT_TRUE(has(same.err, "eval: cached")) << "nothing changed\n" << same.describe();

  // Same number of corpora, same name and path, other bytes.
  spill(tmp / "extra.jsonl",
        "{\"text\": \"The sum of the first ten odd numbers is 100, a perfect square; the first twenty give 400, "
        "and in general the first n odd numbers add up to n squared.\"}\n");
  Result edited = run();
  ASSERT_EQ(edited.rc, 0) << edited.describe();
  EXPECT_TRUE(has(edited.err, "prepare: cached")) << edited.describe();
  EXPECT_TRUE(has(edited.err, "'math': cached")) << edited.describe();
  EXPECT_FALSE(has(edited.err, "eval: cached")) << "the extra corpus's text changed\n" << edited.describe();
  EXPECT_GT(elsewhere_tokens(), tokens_before) << "the report still has the old text's figures";
}

}  // namespace

namespace {

// The same pipeline by hand, one subcommand per stage, as a user who wants control runs it.
TEST(E2eStages, PreparePretrainTrainEvalOneByOne) {
  TempDir t;
  const std::string w = (t / "w").string();
  const std::string cfg = kTinyYaml.string();

  Result p = lorazip({"prepare", cfg, "-w", w}, t.path());
  ASSERT_EQ(p.rc, 0) << p.describe();
  EXPECT_TRUE(fs::is_regular_file(t / "w/data.h5"));
  EXPECT_TRUE(fs::is_regular_file(t / "w/tokenizer.model"));
  for (const char* d : {"chat", "math", "code"}) EXPECT_TRUE(has(p.out, d)) << "prepare's statistics do not name " << d << "\n" << p.out;

  Result b = lorazip({"pretrain", cfg, "-w", w}, t.path());
  ASSERT_EQ(b.rc, 0) << b.describe();
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.model"}) EXPECT_TRUE(fs::is_regular_file(t / "w/base" / f)) << f;
  EXPECT_EQ(slurp(t / "w/base/tokenizer.model"), slurp(t / "w/tokenizer.model"));

  Result a = lorazip({"train", cfg, "-w", w, "--domain", "math"}, t.path());
  ASSERT_EQ(a.rc, 0) << a.describe();
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "lorazip.json"})
    EXPECT_TRUE(fs::is_regular_file(t / "w/adapters/math" / f)) << f;

  // A domain the store does not have: the message names it and lists the ones there are.
  Result bad = lorazip({"train", cfg, "-w", w, "--domain", "poetry"}, t.path());
  EXPECT_NE(bad.rc, 0) << bad.describe();
  EXPECT_TRUE(has(bad.err, "poetry")) << bad.describe();
  EXPECT_TRUE(has(bad.err, "math")) << bad.describe();
  EXPECT_FALSE(fs::exists(t / "w/adapters/poetry"));

  // eval with an extra corpus from elsewhere.
  spill(t / "other.jsonl",
        "{\"text\": \"To solve 3x + 4 = 19, subtract 4 from both sides and divide by 3: x = 5.\"}\n"
        "{\"text\": \"The derivative of x^3 is 3x^2, by the power rule.\"}\n");
  Result e = lorazip({"eval", cfg, "-w", w, "-e", "elsewhere=" + (t / "other.jsonl").string(), "--sample-docs", "1"}, t.path());
  ASSERT_EQ(e.rc, 0) << e.describe();
  auto rep = nlohmann::json::parse(slurp(t / "w/report.json"));
  std::map<std::string, nlohmann::json> rows;
  for (const auto& d : rep["domains"]) rows[d.value("domain", "")] = d;
  for (const char* d : {"chat", "math", "code", "elsewhere"}) EXPECT_TRUE(rows.count(d)) << "report.json has no row " << d << "\n" << rep.dump(2);
  EXPECT_EQ(rows["math"].value("own_adapter", ""), "math");
  EXPECT_EQ(rows["code"].value("own_adapter", "?"), "") << "code has no adapter in this work directory";
  EXPECT_TRUE(rows["elsewhere"]["cross"].contains("math")) << rows["elsewhere"].dump(2);
  EXPECT_TRUE(has(e.out, "elsewhere")) << e.out;
  for (const char* f : {"report.md", "report.csv", "report.svg"}) EXPECT_TRUE(fs::is_regular_file(t / "w" / f)) << f;
}

}  // namespace

namespace {

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "tiny.yaml has no '" << from << "'";
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// `run` on a Llama from the Hub (TinyStories 260K): no pretraining, the corpus prepared with the
// model's own tokenizer, adapters trained on it, and a cached second run.
TEST(E2eStages, RunOnAHuggingFaceBase) {
  const fs::path model = fs::path(LORAZIP_SHARED_DIR) / "models/tinystories-260k-hf";
  if (!fs::exists(model / "config.json")) GTEST_SKIP() << "../shared not found: " << model << " (the TinyStories reference model)";
  TempDir t;
  std::string text = tiny_yaml_text_absolute();
  text = replace_once(text, "  tokenizer: {vocab_size: 512, type: bpe}", "  tokenizer: {model: " + (model / "tokenizer.model").string() + "}");
  text = replace_once(text, "base_model: \"\"", "base_model: " + model.string());
  size_t a = text.find("model:\n  vocab_size"), b = text.find("pretrain:");
  ASSERT_TRUE(a != std::string::npos && b != std::string::npos && a < b);
  text.erase(a, b - a);  // the size comes from the model's config.json
  text = replace_once(text, "adapters: [math, code]", "adapters: [math]");
  text = replace_once(text, "train:\n  steps: 16\n", "train:\n  steps: 4\n");
  text = replace_once(text, "  classical: true", "  classical: false");
  for (const char* d : {"chat", "math", "code"})
    text = replace_once(text, std::string(d) + ".jsonl, max_docs: 16}", std::string(d) + ".jsonl, max_docs: 8}");
  spill(t / "hub.yaml", text);

  const std::string w = (t / "w").string();
  Result r = lorazip({"run", (t / "hub.yaml").string(), "-w", w}, t.path());
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, "base: using " + model.string())) << r.describe();
  EXPECT_FALSE(fs::exists(t / "w/base")) << "pretrained although the config names a base";
  EXPECT_FALSE(fs::exists(t / "w/tokenizer.model")) << "trained a tokenizer although the config names one";
  EXPECT_TRUE(has(r.out, "round trip byte for byte: ok")) << r.out;
  auto info = nlohmann::json::parse(slurp(t / "w/adapters/math/lorazip.json"));
  auto rep = nlohmann::json::parse(slurp(t / "w/report.json"));
  EXPECT_EQ(info.value("base_fingerprint", "?"), rep["base"].value("fingerprint", "!"));

  // The adapter codes with the Hub model as its base.
  spill(t / "m.txt", sample_text());
  Result c = lorazip({"compress", "-m", model.string(), "-a", (t / "w/adapters/math").string(), "m.txt"}, t.path());
  ASSERT_EQ(c.rc, 0) << c.describe();
  Result d = lorazip({"decompress", "-m", model.string(), "-A", (t / "w/adapters").string(), "-c", "m.txt.lz"}, t.path());
  ASSERT_EQ(d.rc, 0) << d.describe();
  EXPECT_EQ(d.out, sample_text());

  Result again = lorazip({"run", (t / "hub.yaml").string(), "-w", w}, t.path());
  ASSERT_EQ(again.rc, 0) << again.describe();
  EXPECT_TRUE(has(again.err, "prepare: cached")) << again.describe();
  EXPECT_TRUE(has(again.err, "'math': cached")) << again.describe();
  EXPECT_TRUE(has(again.err, "eval: cached")) << again.describe();
}

}  // namespace

namespace {

// Starts lorazip in the background (stdout and stderr to files); returns its process id.
pid_t spawn_lorazip(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644), e = ::open(err.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv{const_cast<char*>(kBin.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(kBin.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// A `run` killed (SIGKILL) during pretraining, run again, resumes from the last checkpoint and
// ends with exactly the weights of a run that was never interrupted (the shared pipeline).
TEST(E2eStages, KilledRunResumesToTheSameResult) {
  fs::path ref = tiny_pipeline();
  ASSERT_FALSE(ref.empty());
  TempDir t;
  const std::string w = (t / "w").string();
  const fs::path ckpt = t / "w/runs/pretrain/checkpoint.pt";
  pid_t pid = spawn_lorazip({"run", kTinyYaml.string(), "-w", w}, t / "run1.out", t / "run1.err");
  ASSERT_GT(pid, 0);
  int status = 0;
  bool exited = false;
  auto t0 = std::chrono::steady_clock::now();
  while (!fs::exists(ckpt)) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    ASSERT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 300.0) << "no checkpoint after 300 s";
    ::usleep(20000);
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ASSERT_FALSE(exited) << "the run ended before its first checkpoint (exit " << WEXITSTATUS(status) << ")\n" << slurp(t / "run1.err");
  ASSERT_FALSE(fs::exists(t / "w/base/model.safetensors")) << "pretraining had already finished when the run was killed";

  Result r = lorazip({"run", kTinyYaml.string(), "-w", w}, t.path());
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, "prepare: cached")) << r.describe();
  EXPECT_TRUE(has(r.err, "(resuming)")) << r.describe();
  EXPECT_TRUE(slurp(t / "w/base/model.safetensors") == slurp(ref / "base/model.safetensors"))
      << "the resumed pretraining ended with other weights than an uninterrupted one";
  for (const char* d : {"math", "code"})
    EXPECT_TRUE(slurp(t / "w/adapters" / d / "adapter_model.safetensors") == slurp(ref / "adapters" / d / "adapter_model.safetensors"))
        << "adapter " << d << " differs from the uninterrupted run's";
}

}  // namespace
