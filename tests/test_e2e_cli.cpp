// End-to-end: the program's command line and its refusals of bad input, driving the real binary.
// Help texts, unknown flags, strict YAML errors (file:line:key), and a bad corpus line in prepare.
#include <regex>

#include "e2e/e2e_util.h"

using namespace e2e;

namespace {

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

TEST(E2eCli, CompressHelpDocumentsItsFlags) {
  TempDir t;
  for (const char* sub : {"compress", "decompress"}) {
    Result r = lorazip({sub, "--help"}, t.path());
    EXPECT_EQ(r.rc, 0) << r.describe();
    for (const char* flag : {"-m,", "-a,", "-A,", "-c,", "-o,", "-f,", "--rm", "-v,"})
      EXPECT_TRUE(has(r.out, flag)) << sub << " --help does not document " << flag << ":\n" << r.out;
  }
}

TEST(E2eCli, TrainingHelpSaysHowToTrainDataParallel) {
  TempDir t;
  for (const char* sub : {"pretrain", "train", "run"}) {
    Result r = lorazip({sub, "--help"}, t.path());
    EXPECT_EQ(r.rc, 0) << r.describe();
    for (const char* what : {"torchrun", "--no_python", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "--dist-timeout"})
      EXPECT_TRUE(has(r.out, what)) << sub << " --help does not mention " << what << ":\n" << r.out;
  }
}

TEST(E2eCli, UnknownFlagIsAnErrorWithAMessage) {
  TempDir t;
  Result r = lorazip({"compress", "--no-such-flag", "x"}, t.path());
  EXPECT_NE(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err + r.out, "--no-such-flag")) << r.describe();
  Result s = lorazip({"--bogus"}, t.path());
  EXPECT_NE(s.rc, 0) << s.describe();
  EXPECT_TRUE(has(s.err + s.out, "--bogus")) << s.describe();
  Result u = lorazip({"frobnicate"}, t.path());
  EXPECT_NE(u.rc, 0) << u.describe();
  EXPECT_TRUE(has(u.err + u.out, "frobnicate")) << u.describe();
  Result none = lorazip({}, t.path());
  EXPECT_NE(none.rc, 0) << none.describe();
  EXPECT_TRUE(has(none.err, "subcommand")) << none.describe();
  // A required option left out.
  Result d = lorazip({"train", kTinyYaml.string()}, t.path());
  EXPECT_NE(d.rc, 0) << d.describe();
  EXPECT_TRUE(has(d.err, "--domain")) << d.describe();
}

TEST(E2eCli, MissingModelIsAnErrorWithAMessage) {
  TempDir t;
  spill(t / "a.txt", "hello");
  Result r = lorazip({"compress", "a.txt"}, t.path());
  EXPECT_NE(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, "-m")) << r.describe();
  EXPECT_FALSE(fs::exists(t / "a.txt.lz"));
  Result m = lorazip({"compress", "-m", (t / "no-model").string(), "a.txt"}, t.path());
  EXPECT_NE(m.rc, 0) << m.describe();
  EXPECT_TRUE(has(m.err, "no-model")) << m.describe();
  EXPECT_FALSE(fs::exists(t / "a.txt.lz"));
}

// Writes tiny.yaml into `dir` with `line` inserted after the line that equals `after`; returns
// the new file's path and sets *line_no to the inserted line's number (1-based).
fs::path config_with(const fs::path& dir, const std::string& after, const std::string& line, int* line_no) {
  std::istringstream in(tiny_yaml_text_absolute());
  std::string out, l;
  int n = 0;
  *line_no = 0;
  while (std::getline(in, l)) {
    out += l + "\n";
    ++n;
    if (l == after && *line_no == 0) {
      out += line + "\n";
      *line_no = ++n;
    }
  }
  EXPECT_GT(*line_no, 0) << "tiny.yaml has no line '" << after << "'";
  fs::path p = dir / "job.yaml";
  spill(p, out);
  return p;
}

// Writes tiny.yaml into `dir` with the first line that starts with `prefix` replaced.
fs::path config_replacing(const fs::path& dir, const std::string& prefix, const std::string& line, int* line_no) {
  std::istringstream in(tiny_yaml_text_absolute());
  std::string out, l;
  int n = 0;
  *line_no = 0;
  while (std::getline(in, l)) {
    ++n;
    if (*line_no == 0 && l.rfind(prefix, 0) == 0) {
      out += line + "\n";
      *line_no = n;
    } else {
      out += l + "\n";
    }
  }
  EXPECT_GT(*line_no, 0) << "tiny.yaml has no line starting with '" << prefix << "'";
  fs::path p = dir / "job.yaml";
  spill(p, out);
  return p;
}

TEST(E2eConfig, UnknownKeyNamesFileLineAndKey) {
  TempDir t;
  int line = 0;
  fs::path cfg = config_with(t.path(), "train:", "  learning_rate_typo: 0.1", &line);
  for (const char* sub : {"run", "prepare", "train"}) {
    std::vector<std::string> args{sub, cfg.string(), "--work-dir", (t / "w").string()};
    if (std::string(sub) == "train") args.insert(args.end(), {"--domain", "math"});
    Result r = lorazip(args, t.path());
    EXPECT_NE(r.rc, 0) << r.describe();
    EXPECT_TRUE(has(r.err, cfg.string() + ":" + std::to_string(line))) << "no file:line (" << cfg << ":" << line << ")\n" << r.describe();
    EXPECT_TRUE(has(r.err, "learning_rate_typo")) << r.describe();
    EXPECT_TRUE(has(r.err, "unknown")) << r.describe();
  }
  EXPECT_FALSE(fs::exists(t / "w" / "data.h5"));

  // A top-level key too.
  TempDir t2;
  fs::path cfg2 = config_with(t2.path(), "threads: 1", "epochs: 3", &line);
  Result r = lorazip({"run", cfg2.string(), "--work-dir", (t2 / "w").string()}, t2.path());
  EXPECT_NE(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, cfg2.string() + ":" + std::to_string(line))) << r.describe();
  EXPECT_TRUE(has(r.err, "epochs")) << r.describe();
}

TEST(E2eConfig, WrongTypeNamesFileLineAndKey) {
  TempDir t;
  int line = 0;
  fs::path cfg = config_replacing(t.path(), "  steps: 16", "  steps: eight", &line);
  Result r = lorazip({"run", cfg.string(), "--work-dir", (t / "w").string()}, t.path());
  EXPECT_NE(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, cfg.string() + ":" + std::to_string(line))) << "no file:line (" << cfg << ":" << line << ")\n" << r.describe();
  EXPECT_TRUE(has(r.err, "steps")) << r.describe();
  EXPECT_TRUE(has(r.err, "eight")) << r.describe();

  TempDir t2;
  fs::path cfg2 = config_replacing(t2.path(), "  classical:", "  classical: maybe", &line);
  Result s = lorazip({"eval", cfg2.string(), "--work-dir", (t2 / "w").string()}, t2.path());
  EXPECT_NE(s.rc, 0) << s.describe();
  EXPECT_TRUE(has(s.err, cfg2.string() + ":" + std::to_string(line))) << s.describe();
  EXPECT_TRUE(has(s.err, "classical")) << s.describe();

  TempDir t4;
  fs::path cfg4 = config_replacing(t4.path(), "  classical: true", "  classical: true\n  context_template: llama3", &line);
  Result v = lorazip({"eval", cfg4.string(), "--work-dir", (t4 / "w").string()}, t4.path());
  EXPECT_EQ(v.rc, 2) << v.describe();
  EXPECT_TRUE(has(v.err, "context_template") && has(v.err, "must be auto, chatml or plain, got 'llama3'")) << v.describe();

  TempDir t3;
  fs::path cfg3 = config_replacing(t3.path(), "  targets:", "  targets: {q: 1}", &line);
  Result u = lorazip({"run", cfg3.string(), "--work-dir", (t3 / "w").string()}, t3.path());
  EXPECT_NE(u.rc, 0) << u.describe();
  EXPECT_TRUE(has(u.err, cfg3.string() + ":" + std::to_string(line))) << u.describe();
  EXPECT_TRUE(has(u.err, "targets")) << u.describe();
}

// --device / device: (docs/training.md, 'CUDA'): coding never leaves the CPU; cuda runs only on a
// CUDA build with a GPU, and is refused, before any work, with a message saying why.
TEST(E2eCli, DeviceCudaIsRefusedWhereItCannotRun) {
  TempDir t;
  spill(t / "a.txt", "hello");
  Result c = lorazip({"compress", "--device", "cuda", "-m", (t / "m").string(), "a.txt"}, t.path());
  EXPECT_EQ(c.rc, 2) << c.describe();
  EXPECT_TRUE(has(c.err, "coding") && has(c.err, "always runs on the CPU")) << c.describe();
  EXPECT_FALSE(fs::exists(t / "a.txt.lz"));

  Result p = lorazip({"pretrain", kTinyYaml.string(), "--device", "cuda", "--work-dir", (t / "w").string()}, t.path());
  EXPECT_EQ(p.rc, 2) << p.describe();
#ifndef LORAZIP_CUDA
  EXPECT_TRUE(has(p.err, "built against a libtorch without CUDA")) << p.describe();
#else
  if (!has(p.err, "no CUDA GPU is visible")) GTEST_SKIP() << "a GPU is here: pretrain --device cuda may run";
#endif
  EXPECT_FALSE(fs::exists(t / "w" / "base"));
  Result u = lorazip({"train", kTinyYaml.string(), "-d", "math", "--device", "tpu"}, t.path());
  EXPECT_NE(u.rc, 0) << u.describe();
  EXPECT_TRUE(has(u.err + u.out, "tpu")) << u.describe();
}

TEST(E2eConfig, DeviceKeyIsCheckedAndRefusedWithoutCuda) {
  TempDir t;
  int line = 0;
  fs::path bad = config_with(t.path(), "threads: 1", "device: gpu", &line);
  Result r = lorazip({"pretrain", bad.string(), "--work-dir", (t / "w").string()}, t.path());
  EXPECT_EQ(r.rc, 2) << r.describe();
  EXPECT_TRUE(has(r.err, bad.string() + ":" + std::to_string(line))) << r.describe();
  EXPECT_TRUE(has(r.err, "device") && has(r.err, "cpu or cuda")) << r.describe();

  TempDir t2;
  fs::path cuda = config_with(t2.path(), "threads: 1", "device: cuda", &line);
  for (const char* sub : {"pretrain", "run"}) {
    Result s = lorazip({sub, cuda.string(), "--work-dir", (t2 / "w").string()}, t2.path());
    EXPECT_EQ(s.rc, 2) << s.describe();
#ifndef LORAZIP_CUDA
    EXPECT_TRUE(has(s.err, "device cuda: this lorazip is built against a libtorch without CUDA")) << s.describe();
#endif
    EXPECT_FALSE(fs::exists(t2 / "w" / "data.h5")) << sub << " did work before refusing the device";
  }
}

TEST(E2eConfig, MissingConfigFileIsNamed) {
  TempDir t;
  Result r = lorazip({"run", (t / "nope.yaml").string(), "--work-dir", (t / "w").string()}, t.path());
  EXPECT_NE(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, "nope.yaml")) << r.describe();
}

TEST(E2ePrepare, BadCorpusLineNamesFileAndLine) {
  TempDir t;
  const std::string good = "{\"text\": \"A fine answer about fractions and decimals.\"}\n";
  spill(t / "broken.jsonl", good + good + "{\"text\": \"an unterminated string}\n" + good);
  Result r = lorazip({"prepare", kTinyYaml.string(), "--work-dir", (t / "w").string(), "-i", "math=" + (t / "broken.jsonl").string()},
                     t.path());
  EXPECT_NE(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, "broken.jsonl:3")) << r.describe();
  EXPECT_FALSE(fs::exists(t / "w" / "data.h5"));

  // A record whose text field is not a string.
  spill(t / "typed.jsonl", good + "{\"text\": 42}\n");
  Result s = lorazip({"prepare", kTinyYaml.string(), "--work-dir", (t / "w2").string(), "-i", "math=" + (t / "typed.jsonl").string()},
                     t.path());
  EXPECT_NE(s.rc, 0) << s.describe();
  EXPECT_TRUE(has(s.err, "typed.jsonl:2")) << s.describe();
  EXPECT_FALSE(fs::exists(t / "w2" / "data.h5"));
}

}  // namespace

// base_model: ${VAR} expands from the environment, and a GGUF base also tokenizes the corpus when
// the config names no tokenizer (here the file does not exist, so prepare stops on opening it).
TEST(E2eConfig, BaseModelExpandsVariablesAndBringsItsTokenizer) {
  TempDir t;
  int line = 0;
  fs::path cfg = config_replacing(t.path(), "base_model:", "base_model: ${LORAZIP_CACHE}/none.gguf", &line);
  const char* old = std::getenv("LORAZIP_CACHE");
  const std::string saved = old ? old : "";
  ::setenv("LORAZIP_CACHE", t.path().c_str(), 1);
  Result r = lorazip({"prepare", cfg.string(), "--work-dir", (t / "w").string()}, t.path());
  if (old) ::setenv("LORAZIP_CACHE", saved.c_str(), 1);
  else ::unsetenv("LORAZIP_CACHE");
  const std::string want = (t / "none.gguf").string();
  EXPECT_NE(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, "\"base_model\": \"" + want + "\"")) << r.describe();
  EXPECT_TRUE(has(r.err, "GGUF file '" + want + "': cannot open")) << r.describe();

  TempDir t2;
  fs::path cfg2 = config_replacing(t2.path(), "base_model:", "base_model: ${LORAZIP_TEST_UNSET_VARIABLE}/m.gguf", &line);
  Result u = lorazip({"prepare", cfg2.string(), "--work-dir", (t2 / "w").string()}, t2.path());
  EXPECT_NE(u.rc, 0) << u.describe();
  EXPECT_TRUE(has(u.err, cfg2.string() + ":" + std::to_string(line))) << u.describe();
  EXPECT_TRUE(has(u.err, "LORAZIP_TEST_UNSET_VARIABLE")) << u.describe();
}

// A base directory without a tokenizer is refused when the config is read, naming the key and
// what is missing (before, prepare trained a tokenizer of its own and training failed later).
TEST(E2eConfig, BaseDirectoryWithoutTokenizerIsRefusedByName) {
  TempDir t;
  fs::create_directories(t / "bare-base");
  int line = 0;
  fs::path cfg = config_replacing(t.path(), "base_model:", "base_model: " + (t / "bare-base").string(), &line);
  Result r = lorazip({"prepare", cfg.string(), "--work-dir", (t / "w").string()}, t.path());
  EXPECT_NE(r.rc, 0) << r.describe();
  EXPECT_TRUE(has(r.err, cfg.string() + ":" + std::to_string(line))) << r.describe();
  EXPECT_TRUE(has(r.err, "tokenizer.model or tokenizer.json")) << r.describe();
  EXPECT_FALSE(fs::exists(t / "w" / "data.h5")) << r.describe();
}
