// End-to-end: compress / decompress / info with the tiny pipeline's base and adapters, as a user
// runs them: files (default suffix, input kept), -c, stdin/stdout, -o, -f, --rm, -a / -A, thread
// counts, and the refusals (existing output, wrong or missing adapter, corrupted or truncated
// files) that must leave no output file behind.
#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

using namespace e2e;

namespace {

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

class E2eCodec : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = tiny_pipeline();
    if (work_.empty()) GTEST_SKIP() << "the tiny pipeline failed (see the failure above)";
    base_ = (work_ / "base").string();
    adapters_ = (work_ / "adapters").string();
    math_ = (work_ / "adapters/math").string();
    code_ = (work_ / "adapters/code").string();
  }
  Result lz(const std::vector<std::string>& args, const fs::path& stdin_file = "/dev/null") { return lorazip(args, t_.path(), stdin_file); }
  // Compresses every file of `files` in one call (default suffix), removes the originals,
  // decompresses all in one call and checks each is back byte for byte.
  void round_trip_files(const std::map<std::string, std::string>& files, const std::vector<std::string>& c_args,
                        const std::vector<std::string>& d_args) {
    std::vector<std::string> c{"compress", "-m", base_}, d{"decompress", "-m", base_};
    c.insert(c.end(), c_args.begin(), c_args.end());
    d.insert(d.end(), d_args.begin(), d_args.end());
    for (const auto& [name, data] : files) {
      spill(t_ / name, data);
      c.push_back(name);
      d.push_back(name + ".lz");
    }
    Result rc = lz(c);
    ASSERT_EQ(rc.rc, 0) << rc.describe();
    for (const auto& f : files) {
      EXPECT_TRUE(fs::exists(t_ / (f.first + ".lz"))) << f.first;
      fs::remove(t_ / f.first);
    }
    Result rd = lz(d);
    ASSERT_EQ(rd.rc, 0) << rd.describe();
    for (const auto& [name, data] : files) {
      ASSERT_TRUE(fs::exists(t_ / name)) << name << " was not restored";
      EXPECT_EQ(slurp(t_ / name), data) << name << " did not round-trip";
      fs::remove(t_ / (name + ".lz"));
    }
  }

  TempDir t_;
  fs::path work_;
  std::string base_, adapters_, math_, code_;
};

TEST_F(E2eCodec, VerboseReportsIdealOnlyWhenCompressingAndSpeedBoth) {
  const std::string text = sample_text();
  spill(t_ / "v.txt", text);
  Result c = lz({"compress", "-v", "-m", base_, "v.txt"});
  ASSERT_EQ(c.rc, 0) << c.describe();
  EXPECT_TRUE(has(c.err, "ideal ") && has(c.err, "overhead ")) << "compress -v lacks the ideal code length:\n" << c.err;
  EXPECT_TRUE(has(c.err, "tokens/s, ") && has(c.err, " bytes/s) compressed")) << c.err;
  fs::remove(t_ / "v.txt");
  Result d = lz({"decompress", "-v", "-m", base_, "v.txt.lz"});
  ASSERT_EQ(d.rc, 0) << d.describe();
  // The decoder never scores the text: it must not print a made-up ideal length or overhead.
  EXPECT_FALSE(has(d.err, "ideal ") || has(d.err, "overhead")) << d.err;
  EXPECT_TRUE(has(d.err, "coded ") && has(d.err, " bytes/s) decompressed")) << d.err;
  EXPECT_EQ(slurp(t_ / "v.txt"), text);
}

// Conditioned coding from the command line: the response coded given its prompt (--context-file),
// which decoding and testing need too; without it, with another one, or given to a plain file,
// the file is refused naming the context's fingerprint; info says the file needs a context.
TEST_F(E2eCodec, ContextFileConditionsCodingAndIsRequiredToDecode) {
  const std::string text = sample_text();
  spill(t_ / "r.txt", text);
  spill(t_ / "p.txt", "Write a short story about a little robot who learns to paint.");
  spill(t_ / "q.txt", "Write a short story about a little robot who learns to sing.");
  for (const std::string format : {"compact", "full"}) {
    Result c = lz({"compress", "-v", "-m", base_, "-a", math_, "--format", format, "--context-file", "p.txt", "-f", "r.txt"});
    ASSERT_EQ(c.rc, 0) << c.describe();
    EXPECT_TRUE(has(c.err, "context: p.txt rendered by plain")) << c.err;  // a base without a chat template
    EXPECT_TRUE(has(c.err, "(given a context: ")) << c.err;
    Result d = lz({"decompress", "-m", base_, "-a", math_, "--context-file", "p.txt", "-c", "r.txt.lz"});
    ASSERT_EQ(d.rc, 0) << format << "\n" << d.describe();
    EXPECT_EQ(d.out, text) << format;
    Result none = lz({"decompress", "-m", base_, "-a", math_, "-c", "r.txt.lz"});
    EXPECT_EQ(none.rc, 1) << none.describe();
    EXPECT_TRUE(has(none.err, "r.txt.lz: coded given a context") && has(none.err, "--context-file")) << none.err;
    Result other = lz({"decompress", "-m", base_, "-a", math_, "--context-file", "q.txt", "-c", "r.txt.lz"});
    EXPECT_EQ(other.rc, 1) << other.describe();
    EXPECT_TRUE(has(other.err, "but the context given is")) << other.err;
    EXPECT_EQ(other.out, "") << "nothing may be written for a refused file";
    Result t = lz({"test", "-m", base_, "-a", math_, "--context-file", "p.txt", "r.txt.lz"});
    EXPECT_EQ(t.rc, 0) << t.describe();
    Result t2 = lz({"test", "-m", base_, "-a", math_, "r.txt.lz"});
    EXPECT_EQ(t2.rc, 1) << t2.describe();
    Result i = lz({"info", "r.txt.lz"});
    ASSERT_EQ(i.rc, 0) << i.describe();
    EXPECT_TRUE(has(i.out, "  context            coded given ") && has(i.out, "--context-file")) << i.out;
  }
  // A plain file refuses a context; the template needs a prompt; ChatML needs the markers.
  Result plain = lz({"compress", "-m", base_, "-f", "r.txt"});
  ASSERT_EQ(plain.rc, 0) << plain.describe();
  Result given = lz({"decompress", "-m", base_, "--context-file", "p.txt", "-c", "r.txt.lz"});
  EXPECT_EQ(given.rc, 1) << given.describe();
  EXPECT_TRUE(has(given.err, "coded without a context")) << given.err;
  Result tmpl = lz({"compress", "-m", base_, "--template", "plain", "-c", "r.txt"});
  EXPECT_EQ(tmpl.rc, 2) << tmpl.describe();
  EXPECT_TRUE(has(tmpl.err, "--template renders --context-file's prompt")) << tmpl.err;
  Result chatml = lz({"compress", "-m", base_, "--context-file", "p.txt", "--template", "chatml", "-c", "r.txt"});
  EXPECT_EQ(chatml.rc, 1) << chatml.describe();
  EXPECT_TRUE(has(chatml.err, "has no <|im_start|> token")) << chatml.err;
  Result missing = lz({"compress", "-m", base_, "--context-file", "nope.txt", "-c", "r.txt"});
  EXPECT_NE(missing.rc, 0);
  EXPECT_TRUE(has(missing.err, "nope.txt: No such file or directory")) << missing.err;
}

TEST_F(E2eCodec, FilesWithDefaultSuffixKeepTheInput) {
  const std::string text = sample_text();
  spill(t_ / "notes.txt", text);
  Result c = lz({"compress", "-m", base_, "notes.txt"});
  ASSERT_EQ(c.rc, 0) << c.describe();
  EXPECT_TRUE(c.out.empty()) << "compress to a file wrote to stdout";
  ASSERT_TRUE(fs::exists(t_ / "notes.txt.lz"));
  EXPECT_EQ(slurp(t_ / "notes.txt"), text) << "the input was changed or removed";
  EXPECT_LT(fs::file_size(t_ / "notes.txt.lz"), text.size()) << "the tiny model did not compress text at all";

  fs::rename(t_ / "notes.txt", t_ / "original.txt");
  Result d = lz({"decompress", "-m", base_, "notes.txt.lz"});
  ASSERT_EQ(d.rc, 0) << d.describe();
  EXPECT_EQ(slurp(t_ / "notes.txt"), text);
  EXPECT_TRUE(fs::exists(t_ / "notes.txt.lz")) << "decompress removed its input without --rm";

  // Several files at once.
  spill(t_ / "a.txt", "first file\n");
  spill(t_ / "b.txt", "second file, a little longer\n");
  Result m = lz({"compress", "-m", base_, "a.txt", "b.txt"});
  ASSERT_EQ(m.rc, 0) << m.describe();
  fs::remove(t_ / "a.txt");
  fs::remove(t_ / "b.txt");
  Result n = lz({"decompress", "-m", base_, "a.txt.lz", "b.txt.lz"});
  ASSERT_EQ(n.rc, 0) << n.describe();
  EXPECT_EQ(slurp(t_ / "a.txt"), "first file\n");
  EXPECT_EQ(slurp(t_ / "b.txt"), "second file, a little longer\n");
}

TEST_F(E2eCodec, EmptyBinaryAndInvalidUtf8RoundTrip) {
  const std::map<std::string, std::string> files = {
      {"empty", ""},
      {"binary.bin", binary_bytes()},
      {"nul", std::string(1, '\0')},
      {"text.md", sample_text()},
      // Whitespace runs, CR LF and blank lines (a normalising tokenizer would lose these).
      {"spaces.txt", "  \n\n\t\t  \r\n   x  \n\n\n"},
  };
  round_trip_files(files, {}, {});
  round_trip_files(files, {"-a", math_}, {"-a", math_});
}

TEST_F(E2eCodec, StdoutStdinAndOutputOption) {
  const std::string text = sample_text();
  spill(t_ / "in.txt", text);
  // -c: the compressed bytes on stdout, the input kept, no .lz file.
  Result c = lz({"compress", "-m", base_, "-c", "in.txt"});
  ASSERT_EQ(c.rc, 0) << c.describe();
  EXPECT_FALSE(fs::exists(t_ / "in.txt.lz"));
  EXPECT_TRUE(fs::exists(t_ / "in.txt"));
  ASSERT_FALSE(c.out.empty());
  spill(t_ / "via-c.lz", c.out);
  Result dc = lz({"decompress", "-m", base_, "-c", "via-c.lz"});
  ASSERT_EQ(dc.rc, 0) << dc.describe();
  EXPECT_EQ(dc.out, text);
  EXPECT_TRUE(fs::exists(t_ / "via-c.lz"));

  // stdin -> stdout, both ways (no file arguments, and "-").
  Result s = lz({"compress", "-m", base_}, t_ / "in.txt");
  ASSERT_EQ(s.rc, 0) << s.describe();
  EXPECT_EQ(s.out, c.out) << "stdin and file input coded the same bytes differently";
  spill(t_ / "via-stdin.lz", s.out);
  Result ds = lz({"decompress", "-m", base_, "-"}, t_ / "via-stdin.lz");
  ASSERT_EQ(ds.rc, 0) << ds.describe();
  EXPECT_EQ(ds.out, text);

  // -o OUT from a file and from stdin.
  Result o = lz({"compress", "-m", base_, "-o", "named.bin", "in.txt"});
  ASSERT_EQ(o.rc, 0) << o.describe();
  EXPECT_EQ(slurp(t_ / "named.bin"), c.out);
  Result od = lz({"decompress", "-m", base_, "-o", "restored.txt"}, t_ / "named.bin");
  ASSERT_EQ(od.rc, 0) << od.describe();
  EXPECT_EQ(slurp(t_ / "restored.txt"), text);
  EXPECT_TRUE(od.out.empty());

  // A name without the suffix needs -o or -c.
  Result bad = lz({"decompress", "-m", base_, "named.bin"});
  EXPECT_NE(bad.rc, 0) << bad.describe();
  EXPECT_TRUE(has(bad.err, ".lz")) << bad.describe();
}

TEST_F(E2eCodec, RefusesToOverwriteWithoutForce) {
  spill(t_ / "doc.txt", "some text to compress\n");
  spill(t_ / "doc.txt.lz", "precious");
  Result c = lz({"compress", "-m", base_, "doc.txt"});
  EXPECT_NE(c.rc, 0) << c.describe();
  EXPECT_TRUE(has(c.err, "doc.txt.lz")) << c.describe();
  EXPECT_TRUE(has(c.err, "-f")) << c.describe();
  EXPECT_EQ(slurp(t_ / "doc.txt.lz"), "precious") << "the existing output was touched";
  Result o = lz({"compress", "-m", base_, "-o", "doc.txt.lz", "doc.txt"});
  EXPECT_NE(o.rc, 0) << o.describe();
  EXPECT_EQ(slurp(t_ / "doc.txt.lz"), "precious");

  Result f = lz({"compress", "-m", base_, "-f", "doc.txt"});
  ASSERT_EQ(f.rc, 0) << f.describe();
  EXPECT_NE(slurp(t_ / "doc.txt.lz"), "precious");

  // decompress into an existing file, likewise.
  spill(t_ / "doc.txt", "the user's newer version");
  Result d = lz({"decompress", "-m", base_, "doc.txt.lz"});
  EXPECT_NE(d.rc, 0) << d.describe();
  EXPECT_TRUE(has(d.err, "doc.txt")) << d.describe();
  EXPECT_EQ(slurp(t_ / "doc.txt"), "the user's newer version");
  Result df = lz({"decompress", "-m", base_, "-f", "doc.txt.lz"});
  ASSERT_EQ(df.rc, 0) << df.describe();
  EXPECT_EQ(slurp(t_ / "doc.txt"), "some text to compress\n");
  EXPECT_EQ(listing(t_.path()), (std::vector<std::string>{"doc.txt", "doc.txt.lz"})) << "stray files left behind";
}

TEST_F(E2eCodec, RmRemovesTheInputAfterSuccess) {
  const std::string text = sample_text();
  spill(t_ / "gone.txt", text);
  Result c = lz({"compress", "-m", base_, "--rm", "gone.txt"});
  ASSERT_EQ(c.rc, 0) << c.describe();
  EXPECT_FALSE(fs::exists(t_ / "gone.txt"));
  ASSERT_TRUE(fs::exists(t_ / "gone.txt.lz"));
  Result d = lz({"decompress", "-m", base_, "--rm", "gone.txt.lz"});
  ASSERT_EQ(d.rc, 0) << d.describe();
  EXPECT_FALSE(fs::exists(t_ / "gone.txt.lz"));
  EXPECT_EQ(slurp(t_ / "gone.txt"), text);

  // A failure keeps the input: the output exists and -f is not given.
  spill(t_ / "gone.txt.lz", "in the way");
  Result e = lz({"compress", "-m", base_, "--rm", "gone.txt"});
  EXPECT_NE(e.rc, 0) << e.describe();
  EXPECT_TRUE(fs::exists(t_ / "gone.txt"));
}

// --verify on a good input succeeds and writes the same file as without it (also with -o), keeping
// the input unless --rm is given. A correct coder never fails the check, so its failure path
// (nothing written, the input kept) is tested in tests/test_verify.cpp with a wrong decoder.
TEST_F(E2eCodec, VerifyWritesTheSameFileAndKeepsTheInputUnlessRm) {
  const std::string text = sample_text();
  spill(t_ / "v.txt", text);
  Result plain = lz({"compress", "-m", base_, "-o", "plain.lz", "v.txt"});
  ASSERT_EQ(plain.rc, 0) << plain.describe();
  const std::string expected = slurp(t_ / "plain.lz");
  Result v = lz({"compress", "-m", base_, "--verify", "v.txt"});
  ASSERT_EQ(v.rc, 0) << v.describe();
  EXPECT_EQ(slurp(t_ / "v.txt.lz"), expected);
  Result vo = lz({"compress", "-m", base_, "--verify", "-o", "out.lz", "v.txt"});
  ASSERT_EQ(vo.rc, 0) << vo.describe();
  EXPECT_EQ(slurp(t_ / "out.lz"), expected);
  EXPECT_EQ(slurp(t_ / "v.txt"), text) << "--verify without --rm removed or changed the input";
  fs::remove(t_ / "v.txt.lz");
  Result rm = lz({"compress", "-m", base_, "--verify", "--rm", "v.txt"});
  ASSERT_EQ(rm.rc, 0) << rm.describe();
  EXPECT_FALSE(fs::exists(t_ / "v.txt"));
  EXPECT_EQ(slurp(t_ / "v.txt.lz"), expected);
}

TEST_F(E2eCodec, AdapterChoiceAndHeader) {
  const std::string text = sample_text();
  spill(t_ / "m.txt", text);
  // -a --format full: the header names the adapter; info prints the fingerprints.
  Result c = lz({"compress", "-m", base_, "-a", math_, "--format", "full", "-o", "m.lz", "m.txt"});
  ASSERT_EQ(c.rc, 0) << c.describe();
  Result i = lz({"info", "m.lz"});
  ASSERT_EQ(i.rc, 0) << i.describe();
  auto rep = nlohmann::json::parse(slurp(work_ / "report.json"));
  auto math_info = nlohmann::json::parse(slurp(fs::path(math_) / "lorazip.json"));
  const std::string base_fp = rep["base"].value("fingerprint", "?");
  const std::string tok_fp = rep.value("tokenizer_fingerprint", "?");
  const std::string math_fp = math_info.value("adapter_fingerprint", "?");
  EXPECT_TRUE(has(i.out, base_fp)) << "info does not print the base fingerprint " << base_fp << "\n" << i.out;
  EXPECT_TRUE(has(i.out, tok_fp)) << "info does not print the tokenizer fingerprint " << tok_fp << "\n" << i.out;
  EXPECT_TRUE(has(i.out, math_fp)) << "info does not print the adapter fingerprint " << math_fp << "\n" << i.out;
  EXPECT_TRUE(has(i.out, "math")) << i.out;
  EXPECT_TRUE(has(i.out, std::to_string(text.size()))) << "info does not print the original size\n" << i.out;
  // The default compact file: info prints the fingerprints' first digits, which name what it needs.
  Result cc = lz({"compress", "-m", base_, "-a", math_, "-o", "mc.lz", "m.txt"});
  ASSERT_EQ(cc.rc, 0) << cc.describe();
  Result ic = lz({"info", "mc.lz"});
  ASSERT_EQ(ic.rc, 0) << ic.describe();
  EXPECT_TRUE(has(ic.out, "begins " + base_fp.substr(0, 4))) << ic.out;
  EXPECT_TRUE(has(ic.out, "begins " + math_fp.substr(0, 2) + " ")) << ic.out;  // version 4: an 8-bit adapter tag
  // Version 4 does not record the input's length; `test -v` decodes and prints it.
  EXPECT_TRUE(has(ic.out, "not recorded")) << ic.out;
  Result tc = lz({"test", "-v", "-m", base_, "-A", adapters_, "mc.lz"});
  ASSERT_EQ(tc.rc, 0) << tc.describe();
  EXPECT_TRUE(has(tc.err, "OK (" + std::to_string(text.size()) + " bytes")) << tc.describe();
  Result dc = lz({"decompress", "-m", base_, "-A", adapters_, "-c", "mc.lz"});
  ASSERT_EQ(dc.rc, 0) << dc.describe();
  EXPECT_EQ(dc.out, text);

  // decompress -A finds the adapter from the header.
  Result d = lz({"decompress", "-m", base_, "-A", adapters_, "-o", "m.out", "m.lz"});
  ASSERT_EQ(d.rc, 0) << d.describe();
  EXPECT_EQ(slurp(t_ / "m.out"), text);

  // compress -A picks, per file, the cheapest configuration; whatever it picked, info says so and
  // decompress -A restores the bytes.
  spill(t_ / "chat.txt", "Sure! Here is a short answer to your question about the weather.\n");
  Result ca = lz({"compress", "-m", base_, "-A", adapters_, "-v", "m.txt", "chat.txt"});
  ASSERT_EQ(ca.rc, 0) << ca.describe();
  EXPECT_TRUE(has(ca.err, "picked")) << "-v does not say what -A picked\n" << ca.describe();
  for (const char* f : {"m.txt", "chat.txt"}) {
    std::string orig = slurp(t_ / f);
    Result info = lz({"info", std::string(f) + ".lz"});
    ASSERT_EQ(info.rc, 0) << info.describe();
    EXPECT_TRUE(has(info.out, "adapter")) << info.out;
    fs::remove(t_ / f);
    Result da = lz({"decompress", "-m", base_, "-A", adapters_, std::string(f) + ".lz"});
    ASSERT_EQ(da.rc, 0) << da.describe();
    EXPECT_EQ(slurp(t_ / f), orig) << f;
  }
  // A PEFT adapter made elsewhere has no lorazip.json: decompress -A finds it by its tensors.
  fs::create_directories(t_ / "foreign");
  fs::copy(math_, t_ / "foreign" / "peft-math", fs::copy_options::recursive);
  fs::remove(t_ / "foreign/peft-math/lorazip.json");
  Result cf = lz({"compress", "-m", base_, "-a", "foreign/peft-math", "-o", "f.lz", "m.txt"});
  ASSERT_EQ(cf.rc, 0) << cf.describe();
  Result df = lz({"decompress", "-m", base_, "-A", "foreign", "-c", "f.lz"});
  ASSERT_EQ(df.rc, 0) << df.describe();
  EXPECT_EQ(df.out, text);

  // -v reports the numbers per file.
  Result v = lz({"compress", "-m", base_, "-a", code_, "-v", "-c", "m.txt"});
  ASSERT_EQ(v.rc, 0) << v.describe();
  EXPECT_TRUE(has(v.err, "bits/token")) << v.describe();
  EXPECT_TRUE(has(v.err, "ratio")) << v.describe();
}

TEST_F(E2eCodec, WrongOrMissingAdapterIsRefusedNamingTheExpectedOne) {
  const std::string text = sample_text();
  spill(t_ / "x.txt", text);
  // The full container (version 2) carries the adapter's whole fingerprint and domain: both are named.
  ASSERT_EQ(lz({"compress", "--format", "full", "-m", base_, "-a", math_, "-o", "x.lz", "x.txt"}).rc, 0);
  const std::string math_fp = nlohmann::json::parse(slurp(fs::path(math_) / "lorazip.json")).value("adapter_fingerprint", "?");
  const std::string short_math = math_fp.substr(0, 12);

  // A compact file (the default) carries an 8-bit tag of it: the refusal names that prefix. When
  // the code adapter happens to share it (1 in 256), decoding runs and the seal refuses instead.
  const std::string code_fp = nlohmann::json::parse(slurp(fs::path(code_) / "lorazip.json")).value("adapter_fingerprint", "?");
  const bool tags_collide = code_fp.substr(0, 2) == math_fp.substr(0, 2);
  ASSERT_EQ(lz({"compress", "-m", base_, "-a", math_, "-o", "xc.lz", "x.txt"}).rc, 0);
  for (const std::vector<std::string>& with : {std::vector<std::string>{"-a", code_}, std::vector<std::string>{}}) {
    std::vector<std::string> args{"decompress", "-m", base_, "-o", "x.out", "xc.lz"};
    args.insert(args.begin() + 3, with.begin(), with.end());
    Result r = lz(args);
    EXPECT_NE(r.rc, 0) << r.describe();
    if (tags_collide && !with.empty())
      EXPECT_TRUE(has(r.err, "fail the file's seal")) << r.describe();
    else
      EXPECT_TRUE(has(r.err, "adapter whose fingerprint begins " + math_fp.substr(0, 2) + ",")) << "the message does not name the expected adapter's tag\n"
                                                                                       << r.describe();
    EXPECT_FALSE(fs::exists(t_ / "x.out"));
  }

  Result wrong = lz({"decompress", "-m", base_, "-a", code_, "-o", "x.out", "x.lz"});
  EXPECT_NE(wrong.rc, 0) << wrong.describe();
  EXPECT_TRUE(has(wrong.err, "math")) << "the message does not name the expected adapter\n" << wrong.describe();
  EXPECT_TRUE(has(wrong.err, short_math)) << wrong.describe();
  EXPECT_FALSE(fs::exists(t_ / "x.out"));

  Result none = lz({"decompress", "-m", base_, "-o", "x.out", "x.lz"});
  EXPECT_NE(none.rc, 0) << none.describe();
  EXPECT_TRUE(has(none.err, "math")) << none.describe();
  EXPECT_TRUE(has(none.err, short_math)) << none.describe();
  EXPECT_FALSE(fs::exists(t_ / "x.out"));

  // An adapters directory without it.
  fs::create_directories(t_ / "only-code");
  fs::copy(code_, t_ / "only-code" / "code", fs::copy_options::recursive);
  Result missing = lz({"decompress", "-m", base_, "-A", "only-code", "-o", "x.out", "x.lz"});
  EXPECT_NE(missing.rc, 0) << missing.describe();
  EXPECT_TRUE(has(missing.err, "math")) << missing.describe();
  EXPECT_TRUE(has(missing.err, short_math)) << missing.describe();
  EXPECT_FALSE(fs::exists(t_ / "x.out"));
  Result missing_c = lz({"decompress", "-m", base_, "-A", "only-code", "-o", "x.out", "xc.lz"});
  EXPECT_NE(missing_c.rc, 0) << missing_c.describe();
  if (tags_collide)
    EXPECT_TRUE(has(missing_c.err, "fail the file's seal")) << missing_c.describe();
  else
    EXPECT_TRUE(has(missing_c.err, "begins " + math_fp.substr(0, 2) + ",") && has(missing_c.err, "only-code")) << missing_c.describe();
  EXPECT_FALSE(fs::exists(t_ / "x.out"));
  fs::remove_all(t_ / "only-code");

  // The other way round: coded without an adapter, decoded with -a. The header says the base
  // alone coded it, and decoding follows the header (decode_any), as an archive's members do.
  ASSERT_EQ(lz({"compress", "-m", base_, "-o", "plain.lz", "x.txt"}).rc, 0);
  Result extra = lz({"decompress", "-m", base_, "-a", math_, "-o", "x.out", "plain.lz"});
  EXPECT_EQ(extra.rc, 0) << extra.describe();
  EXPECT_EQ(slurp(t_ / "x.out"), text);
  fs::remove(t_ / "x.out");

  // Another base model: the pipeline's base re-exported with an adapter merged has other weights.
  Result ex = lz({"export", "-m", base_, "-a", math_, "--merged", "-o", "merged"});
  ASSERT_EQ(ex.rc, 0) << ex.describe();
  Result other = lz({"decompress", "-m", "merged", "-o", "x.out", "plain.lz"});
  EXPECT_NE(other.rc, 0) << other.describe();
  EXPECT_TRUE(has(other.err, "base model")) << other.describe();
  EXPECT_FALSE(fs::exists(t_ / "x.out"));
}

TEST_F(E2eCodec, CorruptedAndTruncatedFilesAreRefusedWithoutOutput) {
  const std::string text = sample_text();
  spill(t_ / "c.txt", text);
  ASSERT_EQ(lz({"compress", "-m", base_, "-o", "good.lz", "c.txt"}).rc, 0);
  fs::remove(t_ / "c.txt");
  const std::string good = slurp(t_ / "good.lz");
  ASSERT_GT(good.size(), 40u);

  std::vector<std::pair<std::string, std::string>> bad;
  for (size_t pos : {size_t(5), good.size() / 2, good.size() - 1}) {  // header, payload, last byte
    std::string b = good;
    b[pos] = static_cast<char>(b[pos] ^ 0x10);
    bad.emplace_back("flip-" + std::to_string(pos), b);
  }
  for (size_t len : {size_t(0), size_t(30), good.size() - 1}) bad.emplace_back("cut-" + std::to_string(len), good.substr(0, len));
  bad.emplace_back("appended", good + "x");

  for (const auto& [name, bytes] : bad) {
    spill(t_ / (name + ".lz"), bytes);
    const auto before = listing(t_.path());
    // The default output name (NAME without .lz) must not appear, nor any temporary file.
    Result d = lz({"decompress", "-m", base_, name + ".lz"});
    EXPECT_NE(d.rc, 0) << name << "\n" << d.describe();
    EXPECT_LT(d.rc, 128) << name << ": crashed\n" << d.describe();
    EXPECT_TRUE(has(d.err, name + ".lz")) << name << ": the message does not name the file\n" << d.describe();
    EXPECT_EQ(listing(t_.path()), before) << name << ": an output (or temporary) file was left behind";
    Result t = lz({"test", "-m", base_, name + ".lz"});
    EXPECT_EQ(t.rc, 1) << name << ": lorazip test did not report the damaged file\n" << t.describe();
    EXPECT_TRUE(has(t.err, name + ".lz: FAILED")) << t.describe();
  }
  // -o, -f over an existing file, stdin -> stdout, and info on a few of them.
  spill(t_ / "keep.txt", "an existing file");
  Result o = lz({"decompress", "-m", base_, "-f", "-o", "keep.txt", bad[1].first + ".lz"});
  EXPECT_NE(o.rc, 0) << o.describe();
  EXPECT_EQ(slurp(t_ / "keep.txt"), "an existing file") << "a failed decompress -f replaced the existing output";
  Result o2 = lz({"decompress", "-m", base_, "-o", "new.txt", bad[5].first + ".lz"});
  EXPECT_NE(o2.rc, 0) << o2.describe();
  EXPECT_FALSE(fs::exists(t_ / "new.txt"));
  Result s = lz({"decompress", "-m", base_}, t_ / (bad[2].first + ".lz"));
  EXPECT_NE(s.rc, 0) << s.describe();
  EXPECT_LT(s.rc, 128) << s.describe();
  EXPECT_TRUE(s.out.empty()) << s.out.size() << " bytes written to stdout before the error";
  // info reads the header without the model, so it refuses what the header shows (an empty file,
  // bad magic, a file cut inside its header); a coded file's seal is checked by decoding (above).
  spill(t_ / "cut-3.lz", good.substr(0, 3));
  spill(t_ / "magic.lz", "X" + good.substr(1));
  for (const std::string name : {bad[3].first, std::string("cut-3"), std::string("magic")}) {
    Result i = lz({"info", name + ".lz"});
    EXPECT_NE(i.rc, 0) << name << "\n" << i.describe();
    EXPECT_LT(i.rc, 128) << i.describe();
    EXPECT_TRUE(has(i.err, name + ".lz")) << i.describe();
  }
  fs::remove(t_ / "cut-3.lz");
  fs::remove(t_ / "magic.lz");
  for (const auto& b : bad) fs::remove(t_ / (b.first + ".lz"));
  EXPECT_EQ(listing(t_.path()), (std::vector<std::string>{"good.lz", "keep.txt"}));

  // The intact file still decodes.
  Result ok = lz({"decompress", "-m", base_, "-c", "good.lz"});
  ASSERT_EQ(ok.rc, 0) << ok.describe();
  EXPECT_EQ(ok.out, text);
}

TEST_F(E2eCodec, ThreadCountDoesNotChangeTheBytes) {
  // Long enough for many chunks, so that two workers share the coding.
  std::string text;
  for (int i = 0; i < 4; ++i) text += sample_text();
  spill(t_ / "long.txt", text);
  Result c1 = lz({"--threads", "1", "compress", "-m", base_, "-a", math_, "-c", "long.txt"});
  ASSERT_EQ(c1.rc, 0) << c1.describe();
  Result c2 = lz({"--threads", "2", "compress", "-m", base_, "-a", math_, "--chunk", "40", "--group", "3", "-o", "two.lz", "long.txt"});
  ASSERT_EQ(c2.rc, 0) << c2.describe();
  // The global option also works after the subcommand.
  Result c2b = lz({"compress", "--threads", "2", "-m", base_, "-a", math_, "-o", "two-default.lz", "long.txt"});
  ASSERT_EQ(c2b.rc, 0) << c2b.describe();
  EXPECT_EQ(slurp(t_ / "two-default.lz"), c1.out) << "compressing on 2 threads coded other bytes than on 1";

  Result d1 = lz({"--threads", "1", "decompress", "-m", base_, "-a", math_, "-o", "back.txt", "two.lz"});
  ASSERT_EQ(d1.rc, 0) << d1.describe();
  EXPECT_EQ(slurp(t_ / "back.txt"), text);
  Result i = lz({"info", "two.lz"});
  EXPECT_TRUE(has(i.out, "40 tokens")) << i.out;
  spill(t_ / "one.lz", c1.out);
  Result d2 = lz({"--threads", "2", "decompress", "-m", base_, "-A", adapters_, "-c", "one.lz"});
  ASSERT_EQ(d2.rc, 0) << d2.describe();
  EXPECT_EQ(d2.out, text);
}

// lorazip 0.1 computed probabilities with libtorch + OpenBLAS, whose kernel (picked per CPU type,
// forced here with OPENBLAS_CORETYPE) changed the floats: files failed to decode under another
// kernel. The coding engine uses no BLAS: every kernel must give the same file, and each file must
// decode under every other kernel.
TEST_F(E2eCodec, OpenBlasKernelDoesNotChangeTheBytes) {
  std::string text;
  for (int i = 0; i < 3; ++i) text += sample_text();
  spill(t_ / "in.txt", text);
  const char* saved = std::getenv("OPENBLAS_CORETYPE");
  const std::string restore = saved ? saved : "";
  const std::vector<std::string> cores = {"Haswell", "SkylakeX", "Prescott"};
  std::vector<std::string> files;
  for (const auto& core : cores) {
    ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
    Result c = lz({"--threads", "2", "compress", "-m", base_, "-a", math_, "-o", core + ".lz", "in.txt"});
    ASSERT_EQ(c.rc, 0) << core << ": " << c.describe();
    files.push_back(slurp(t_ / (core + ".lz")));
  }
  for (size_t i = 1; i < files.size(); ++i)
    EXPECT_TRUE(files[i] == files[0]) << cores[i] << " compressed to other bytes than " << cores[0];
  for (const auto& core : cores)
    for (const auto& from : cores) {
      if (core == from) continue;
      ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
      Result d = lz({"--threads", "1", "decompress", "-m", base_, "-a", math_, "-c", from + ".lz"});
      EXPECT_EQ(d.rc, 0) << "compressed under " << from << ", decompressed under " << core << ": " << d.describe();
      EXPECT_TRUE(d.out == text) << "compressed under " << from << ", decompressed under " << core;
    }
  if (saved) ::setenv("OPENBLAS_CORETYPE", restore.c_str(), 1);
  else ::unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace

namespace {

// A Llama checkpoint from the Hub (TinyStories 260K, in Hugging Face layout with its
// tokenizer.model) codes files without any lorazip-made artefacts.
TEST(E2eHubModel, CompressWithAHuggingFaceLlamaDirectory) {
  const fs::path model = fs::path(LORAZIP_SHARED_DIR) / "models/tinystories-260k-hf";
  if (!fs::exists(model / "config.json")) GTEST_SKIP() << "../shared not found: " << model << " (the TinyStories reference model)";
  TempDir t;
  const std::string story =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog.\n"
      "One day, she saw a big red ball under a tree. \"Can I play with it?\" she asked her mom. Her mom said yes.\n"
      "Lily and her dog played with the ball all day. They ran and jumped and laughed. When the sun went down, "
      "Lily was tired and happy. She went home and had a big dinner with her family. Then she went to bed.\n";
  spill(t / "story.txt", story);
  Result c = lorazip({"compress", "-m", model.string(), "-v", "story.txt"}, t.path());
  ASSERT_EQ(c.rc, 0) << c.describe();
  // Half the size or less, counting the container's header (about 120 bytes; the payload is near 1 bit/byte).
  EXPECT_LT(fs::file_size(t / "story.txt.lz"), story.size() / 2) << "TinyStories should code a tiny story well\n" << c.describe();
  fs::remove(t / "story.txt");
  Result d = lorazip({"decompress", "-m", model.string(), "story.txt.lz"}, t.path());
  ASSERT_EQ(d.rc, 0) << d.describe();
  EXPECT_EQ(slurp(t / "story.txt"), story);
  const std::string bin = binary_bytes();
  spill(t / "bin", bin);
  ASSERT_EQ(lorazip({"compress", "-m", model.string(), "bin"}, t.path()).rc, 0);
  Result b = lorazip({"decompress", "-m", model.string(), "-c", "bin.lz"}, t.path());
  ASSERT_EQ(b.rc, 0) << b.describe();
  EXPECT_EQ(b.out, bin);
}

}  // namespace

// lorazip test (like gzip -t): good files pass and nothing is written; a damaged one fails the run,
// named on stderr, while the good ones are still checked. compress --verify decodes before success.
TEST_F(E2eCodec, TestChecksFilesAndVerifyDecodesBeforeSuccess) {
  const std::string text = sample_text();
  spill(t_ / "v.txt", text);
  Result c = lz({"compress", "-m", base_, "-a", math_, "--verify", "-v", "v.txt"});
  ASSERT_EQ(c.rc, 0) << c.describe();
  spill(t_ / "noise.bin", std::string(3000, '\x9c') + "\x01\x02\xff");
  ASSERT_EQ(lz({"compress", "-m", base_, "--rm", "noise.bin"}).rc, 0);
  EXPECT_FALSE(fs::exists(t_ / "noise.bin")) << "--rm kept the input after a verified compress";
  std::string damaged = slurp(t_ / "v.txt.lz");
  damaged[damaged.size() / 2] ^= 0x08;
  spill(t_ / "bad.lz", damaged);
  const std::vector<std::string> before = listing(t_.path());
  Result ok = lz({"test", "-m", base_, "-A", adapters_, "-v", "v.txt.lz", "noise.bin.lz"});
  EXPECT_EQ(ok.rc, 0) << ok.describe();
  EXPECT_TRUE(has(ok.err, "v.txt.lz: OK")) << ok.describe();
  Result bad = lz({"test", "-m", base_, "-A", adapters_, "v.txt.lz", "bad.lz", "noise.bin.lz"});
  EXPECT_EQ(bad.rc, 1) << bad.describe();
  EXPECT_TRUE(has(bad.err, "bad.lz")) << bad.describe();
  EXPECT_FALSE(has(bad.err, "v.txt.lz:")) << "a good file was reported\n" << bad.describe();
  EXPECT_TRUE(bad.out.empty());
  EXPECT_EQ(listing(t_.path()), before) << "lorazip test wrote a file";
}

// Several files given to one decompress decode together (every file's chunks in the same engine
// calls, each with its own adapter): the outputs are the bytes of decoding them one by one; a
// damaged file among them is named and the others are still written.
TEST_F(E2eCodec, ManyFilesDecodeTogetherAsEachAlone) {
  const std::string text = sample_text();
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    const std::string name = "m" + std::to_string(i) + ".txt";
    spill(t_ / name, text.substr(static_cast<size_t>(i) * 97, 300 + 150 * static_cast<size_t>(i)));
    names.push_back(name);
  }
  std::vector<std::string> c{"compress", "-m", base_, "-A", adapters_, "--chunk", "24", "--context-tokens", "6"};
  c.insert(c.end(), names.begin(), names.end());
  ASSERT_EQ(lz(c).rc, 0);
  std::vector<std::string> one_by_one;
  for (const auto& n : names) {
    Result r = lz({"decompress", "-m", base_, "-A", adapters_, "-c", n + ".lz"});
    ASSERT_EQ(r.rc, 0) << r.describe();
    one_by_one.push_back(r.out);
    EXPECT_EQ(r.out, slurp(t_ / n)) << n;
  }
  for (const auto& n : names) fs::rename(t_ / n, t_ / (n + ".orig"));
  std::vector<std::string> d{"decompress", "-m", base_, "-A", adapters_};
  for (const auto& n : names) d.push_back(n + ".lz");
  Result all = lz(d);
  ASSERT_EQ(all.rc, 0) << all.describe();
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(slurp(t_ / names[i]), one_by_one[i]) << names[i];

  for (const auto& n : names) fs::remove(t_ / n);
  std::string damaged = slurp(t_ / (names[2] + ".lz"));
  damaged[damaged.size() / 2] ^= 0x20;
  spill(t_ / (names[2] + ".lz"), damaged);
  Result bad = lz(d);
  EXPECT_EQ(bad.rc, 1) << bad.describe();
  EXPECT_TRUE(has(bad.err, names[2] + ".lz")) << bad.describe();
  EXPECT_FALSE(fs::exists(t_ / names[2])) << "a damaged file left an output";
  for (size_t i = 0; i < names.size(); ++i)
    if (i != 2) EXPECT_EQ(slurp(t_ / names[i]), one_by_one[i]) << names[i] << " was not written beside a damaged file";
}

// lorazip archive: create from a directory tree, list, extract one member or all under -C,
// append, a JSONL file in and out byte for byte, and a damaged member named while others extract.
TEST_F(E2eCodec, ArchiveCreateListExtractAddAndJsonl) {
  fs::create_directories(t_ / "tree/sub");
  spill(t_ / "tree/a.txt", sample_text());
  spill(t_ / "tree/sub/b.txt", "A short answer.\n");
  spill(t_ / "tree/sub/empty.txt", "");
  spill(t_ / "tree/bin.dat", std::string("\x00\xff\x10\x80", 4) + std::string(500, '\x07'));
  Result c = lz({"archive", "create", "docs.lza", "tree", "-m", base_, "-A", adapters_, "-v"});
  ASSERT_EQ(c.rc, 0) << c.describe();
  Result l = lz({"archive", "list", "docs.lza"});
  ASSERT_EQ(l.rc, 0) << l.describe();
  EXPECT_EQ(l.out, "a.txt\nbin.dat\nsub/b.txt\nsub/empty.txt\n");
  Result again = lz({"archive", "create", "docs.lza", "tree", "-m", base_});
  EXPECT_NE(again.rc, 0) << "create replaced an archive without -f\n" << again.describe();

  Result one = lz({"archive", "extract", "docs.lza", "sub/b.txt", "-m", base_, "-A", adapters_, "-c"});
  ASSERT_EQ(one.rc, 0) << one.describe();
  EXPECT_EQ(one.out, "A short answer.\n");
  Result all = lz({"archive", "extract", "docs.lza", "-m", base_, "-A", adapters_, "-C", "out"});
  ASSERT_EQ(all.rc, 0) << all.describe();
  for (const char* f : {"a.txt", "bin.dat", "sub/b.txt", "sub/empty.txt"})
    EXPECT_EQ(slurp(t_ / "out" / f), slurp(t_ / "tree" / f)) << f;

  spill(t_ / "late.txt", "Appended later.\n");
  ASSERT_EQ(lz({"archive", "add", "docs.lza", "late.txt", "-m", base_}).rc, 0);
  Result late = lz({"archive", "extract", "docs.lza", "late.txt", "-m", base_, "-c"});
  ASSERT_EQ(late.rc, 0) << late.describe();
  EXPECT_EQ(late.out, "Appended later.\n");
  EXPECT_EQ(lz({"archive", "test", "docs.lza", "-m", base_, "-A", adapters_}).rc, 0);

  // An add killed halfway through its bytes: every reader and a further add refuse the archive
  // naming `archive repair`, which cuts it back to the bytes before that add.
  const std::string before_add = slurp(t_ / "docs.lza");
  spill(t_ / "later.txt", sample_text());
  ASSERT_EQ(lz({"archive", "add", "docs.lza", "later.txt", "-m", base_}).rc, 0);
  const std::string after_add = slurp(t_ / "docs.lza");
  ASSERT_GT(after_add.size(), before_add.size());
  spill(t_ / "docs.lza", after_add.substr(0, before_add.size() + (after_add.size() - before_add.size()) / 2));
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"archive", "list", "docs.lza"}, {"archive", "add", "docs.lza", "late.txt", "-m", base_}}) {
    Result cut = lz(args);
    EXPECT_NE(cut.rc, 0) << cut.describe();
    EXPECT_TRUE(has(cut.err, "incomplete append after byte " + std::to_string(before_add.size())) &&
                has(cut.err, "lorazip archive repair docs.lza"))
        << cut.describe();
  }
  Result fix = lz({"archive", "repair", "docs.lza"});
  ASSERT_EQ(fix.rc, 0) << fix.describe();
  EXPECT_TRUE(has(fix.out, "cut " + std::to_string((after_add.size() - before_add.size()) / 2) + " bytes") && has(fix.out, "5 members"))
      << fix.describe();
  EXPECT_TRUE(slurp(t_ / "docs.lza") == before_add) << "repair did not give back the archive before the add";
  Result intact = lz({"archive", "repair", "docs.lza"});
  ASSERT_EQ(intact.rc, 0) << intact.describe();
  EXPECT_TRUE(has(intact.out, "nothing changed")) << intact.describe();
  EXPECT_TRUE(slurp(t_ / "docs.lza") == before_add);

  std::string jsonl;
  for (int i = 0; i < 5; ++i)
    jsonl += "{\"text\": \"Answer " + std::to_string(i) + ":\\nthe value is " + std::to_string(i * 7) + ".\", \"model\": \"m\"}\n";
  spill(t_ / "r.jsonl", jsonl);
  ASSERT_EQ(lz({"archive", "create", "r.lza", "--jsonl", "r.jsonl", "-m", base_}).rc, 0);
  Result back = lz({"archive", "extract", "r.lza", "-m", base_, "-o", "back.jsonl"});
  ASSERT_EQ(back.rc, 0) << back.describe();
  EXPECT_EQ(slurp(t_ / "back.jsonl"), jsonl);

  // Conversations: the same kind of file coded turn by turn (the tiny base has no chat template:
  // auto renders plain); extract gives the file back, list names each record once, -v its turns;
  // a record's later turns come out with it by its name.
  std::string chats;
  for (int i = 0; i < 3; ++i)
    chats += "{\"messages\": [{\"role\": \"user\", \"content\": \"Question " + std::to_string(i) +
             "?\"}, {\"role\": \"assistant\", \"content\": \"Answer " + std::to_string(i) + ":\\nthe value is " + std::to_string(i * 7) +
             ".\"}], \"model\": \"m\"}\n";
  spill(t_ / "c.jsonl", chats);
  Result cc = lz({"archive", "create", "c.lza", "--jsonl", "--conversations", "c.jsonl", "-m", base_, "-v"});
  ASSERT_EQ(cc.rc, 0) << cc.describe();
  EXPECT_TRUE(has(cc.err, "c.lza: turns rendered in plain") && has(cc.err, "3 records as 6 members") && has(cc.err, "assistant")) << cc.describe();
  Result cback = lz({"archive", "extract", "c.lza", "-m", base_, "-o", "cback.jsonl"});
  ASSERT_EQ(cback.rc, 0) << cback.describe();
  EXPECT_EQ(slurp(t_ / "cback.jsonl"), chats);
  Result clist = lz({"archive", "list", "c.lza"});
  EXPECT_EQ(clist.out, "line 1\nline 2\nline 3\n") << clist.describe();
  Result clistv = lz({"archive", "list", "c.lza", "-v"});
  EXPECT_TRUE(has(clistv.out, "rendered in plain") && has(clistv.out, "line 2  (turn 1, assistant)")) << clistv.describe();
  Result cone = lz({"archive", "extract", "c.lza", "line 2", "-m", base_, "-c"});
  ASSERT_EQ(cone.rc, 0) << cone.describe();
  EXPECT_EQ(cone.out, chats.substr(chats.find('\n') + 1, chats.find('\n', chats.find('\n') + 1) - chats.find('\n')));
  EXPECT_EQ(lz({"archive", "test", "c.lza", "-m", base_}).rc, 0);
  // Misuse is refused by name: --conversations without --jsonl or on add, --template alone,
  // ChatML on a base without its markers.
  Result nojsonl = lz({"archive", "create", "x.lza", "--conversations", "c.jsonl", "-m", base_});
  EXPECT_TRUE(nojsonl.rc != 0 && has(nojsonl.err, "give --jsonl")) << nojsonl.describe();
  Result onadd = lz({"archive", "add", "c.lza", "--jsonl", "--conversations", "c.jsonl", "-m", base_});
  EXPECT_TRUE(onadd.rc != 0 && has(onadd.err, "add follows the archive")) << onadd.describe();
  Result lone = lz({"archive", "create", "x.lza", "--jsonl", "--template", "plain", "c.jsonl", "-m", base_});
  EXPECT_TRUE(lone.rc != 0 && has(lone.err, "give --conversations too")) << lone.describe();
  Result chatml = lz({"archive", "create", "x.lza", "--jsonl", "--conversations", "--template", "chatml", "c.jsonl", "-m", base_});
  EXPECT_TRUE(chatml.rc != 0 && has(chatml.err, "no <|im_start|> token")) << chatml.describe();
  EXPECT_FALSE(fs::exists(t_ / "x.lza"));
  ASSERT_EQ(lz({"archive", "add", "c.lza", "--jsonl", "c.jsonl", "-m", base_}).rc, 0) << "add of records to a conversation archive";
  Result cback2 = lz({"archive", "extract", "c.lza", "-m", base_, "-c"});
  EXPECT_EQ(cback2.out, chats + chats) << cback2.describe();

  // Damage the middle of a.txt's data (the first member): it is named, the others extract.
  std::string bytes = slurp(t_ / "docs.lza");
  bytes[40] ^= 0x20;
  spill(t_ / "hurt.lza", bytes);
  Result hurt = lz({"archive", "extract", "hurt.lza", "-m", base_, "-A", adapters_, "-C", "hurt"});
  EXPECT_EQ(hurt.rc, 1) << hurt.describe();
  EXPECT_TRUE(has(hurt.err, "member 'a.txt'")) << hurt.describe();
  EXPECT_EQ(slurp(t_ / "hurt/sub/b.txt"), "A short answer.\n");
  EXPECT_FALSE(fs::exists(t_ / "hurt/a.txt"));
}

// A missing input is reported as missing, naming it, as gzip does, by every coding command.
TEST_F(E2eCodec, MissingInputIsNamedAsMissing) {
  const std::vector<std::vector<std::string>> calls = {
      {"compress", "-m", base_, "nosuch.txt"},        {"decompress", "-m", base_, "nosuch.lz"},
      {"test", "-m", base_, "nosuch.lz"},             {"info", "nosuch.lz"},
      {"archive", "create", "x.lza", "nosuch.txt", "-m", base_}};
  for (const auto& args : calls) {
    Result r = lz(args);
    EXPECT_NE(r.rc, 0) << r.describe();
    EXPECT_TRUE(r.err.find(args[args[0] == "archive" ? 3 : args.size() - 1]) != std::string::npos) << r.describe();
    EXPECT_TRUE(r.err.find("No such file or directory") != std::string::npos) << r.describe();
  }
  EXPECT_FALSE(fs::exists(t_ / "x.lza"));
}
